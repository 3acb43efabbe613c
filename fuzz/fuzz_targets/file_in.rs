//! Fuzz target: arbitrary bytes as a file-in program (EVAL/METHOD/META chunks, compiled by the
//! image's own compiler). Must end in output or an error, never a panic; an execution budget and
//! a heap limit bound programs that loop or recurse forever.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images/SmallWorld-2015.image"))
            .expect("the base image at ../shared/images/")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut vm = tracevm::boot::boot(image()).expect("boot");
    vm.out = Box::new(std::io::sink());
    vm.err = Box::new(std::io::sink());
    vm.budget = Some(100_000);
    vm.max_heap_bytes = 64 << 20;
    let _ = tracevm::boot::file_in(&mut vm, data, "fuzz.st");
});
