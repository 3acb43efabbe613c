//! Differential fuzz target: arbitrary bytes as a file-in program, run by the interpreter alone
//! and with the JIT recording every loop at once (threshold 1; the first input byte's low bit
//! also forces every guard to fail once). Both runs must print the same and end the same way.
//! Runs stopped by the execution budget or heap limit are not compared: compiled loops take
//! fewer safepoints, so the budget runs out at different points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::OnceLock;
use tracevm::jit::JitOptions;

fn image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images/SmallWorld-2015.image"))
            .expect("the base image at ../shared/images/")
    })
}

#[derive(Clone, Default)]
struct Capture(Rc<RefCell<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(data: &[u8], jit: JitOptions) -> (Vec<u8>, String) {
    let mut vm = tracevm::boot::boot_with(image(), jit).expect("boot");
    let out = Capture::default();
    vm.out = Box::new(out.clone());
    vm.err = Box::new(std::io::sink());
    vm.budget = Some(200_000);
    vm.max_heap_bytes = 64 << 20;
    let end = match tracevm::boot::file_in(&mut vm, data, "fuzz.st") {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let printed = out.0.borrow().clone();
    (printed, end)
}

fuzz_target!(|data: &[u8]| {
    let force_exits = data.first().is_some_and(|b| b & 1 == 1);
    let off = run(data, JitOptions { enabled: false, ..JitOptions::default() });
    let on = run(data, JitOptions { enabled: true, threshold: 1, force_exits, ..JitOptions::default() });
    let bounded = |end: &str| end.contains("budget") || end.contains("out of memory");
    if !bounded(&off.1) && !bounded(&on.1) {
        assert_eq!(off, on, "JIT and interpreter disagree");
    }
});
