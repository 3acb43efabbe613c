//! Runs the `file_in` fuzz target's seed corpus (`fuzz/corpus/file_in/`) through the same entry
//! point, `tracevm::boot::file_in`, on stable Rust: each seed as written, every prefix cut at a
//! line boundary, and copies with single bytes replaced. Every run must end in `Ok` or `Err`,
//! never a panic; an execution budget and a heap limit bound runaway programs.

mod inproc;

use inproc::image;
use std::panic::{self, AssertUnwindSafe};
use tracevm::boot;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/file_in");

fn run(program: &[u8]) -> Result<(), boot::RunError> {
    let mut vm = boot::boot(image()).expect("boot");
    vm.out = Box::new(std::io::sink());
    vm.err = Box::new(std::io::sink());
    vm.budget = Some(100_000);
    vm.max_heap_bytes = 64 << 20;
    boot::file_in(&mut vm, program, "seed.st")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    inproc::seed_files(CORPUS)
}

fn never_panics(name: &str, what: &str, program: &[u8]) {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(program)));
    assert!(outcome.is_ok(), "{name} ({what}) panicked");
}

#[test]
fn seeds_behave_as_named() {
    let seeds = seeds();
    assert!(seeds.len() >= 3, "seed corpus missing");
    for (name, program) in &seeds {
        let result = run(program);
        if name.starts_with("errors") {
            assert!(result.is_err(), "{name} should fail (it has a compile error)");
        } else {
            assert!(result.is_ok(), "{name} should run: {:?}", result.err().map(|e| e.to_string()));
        }
    }
}

#[test]
fn prefixes_and_mutations_never_panic() {
    for (name, program) in seeds() {
        let cuts: Vec<usize> = program.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1).collect();
        for &cut in &cuts {
            never_panics(&name, &format!("first {cut} bytes"), &program[..cut]);
        }
        // Replace bytes at a spread of positions with characters that matter to the parsers.
        for (k, i) in (0..program.len()).step_by(7).enumerate() {
            let mut p = program.clone();
            p[i] = [b'!', b'[', b']', b'^', b'(', b'\n', b':', b'#', b'<', b'\''][k % 10];
            never_panics(&name, &format!("byte {i} replaced"), &p);
        }
    }
}
