//! Runs the `jit_diff` fuzz target's seed corpus (`fuzz/corpus/jit_diff/`) on stable Rust through
//! the same comparison: each seed, and copies with single bytes replaced, run by the interpreter
//! alone and with the JIT recording every loop at once (threshold 1, with and without forced
//! guard exits) must print the same and end the same way.

mod inproc;

use inproc::{image, Capture};
use tracevm::boot;
use tracevm::jit::JitOptions;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/jit_diff");

fn run(program: &[u8], jit: JitOptions) -> (String, String, u64) {
    let mut vm = boot::boot_with(image(), jit).expect("boot");
    let out = Capture::default();
    vm.out = Box::new(out.clone());
    vm.err = Box::new(std::io::sink());
    vm.budget = Some(200_000);
    vm.max_heap_bytes = 64 << 20;
    let end = match boot::file_in(&mut vm, program, "seed.st") {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let printed = String::from_utf8_lossy(&out.0.borrow()).into_owned();
    (printed, end, vm.jit.stats.trace_entries)
}

/// Compares the interpreter with the JIT on `program`; answers how many trace entries the JIT
/// runs made (0 for runs the budget stopped, which are not compared).
fn compare(what: &str, program: &[u8]) -> u64 {
    let off = run(program, JitOptions { enabled: false, ..JitOptions::default() });
    let mut entries = 0;
    for force_exits in [false, true] {
        let on = run(program, JitOptions { enabled: true, threshold: 1, force_exits, ..JitOptions::default() });
        let bounded = |end: &str| end.contains("budget") || end.contains("out of memory");
        if bounded(&off.1) || bounded(&on.1) {
            continue;
        }
        assert_eq!((&off.0, &off.1), (&on.0, &on.1), "{what} (force_exits {force_exits}) differs with the JIT");
        entries += on.2;
    }
    entries
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    inproc::seed_files(CORPUS)
}

#[test]
fn seeds_run_the_same_with_and_without_the_jit() {
    let seeds = seeds();
    assert!(seeds.len() >= 3, "the jit_diff seed corpus is missing");
    for (name, program) in &seeds {
        let entries = compare(name, program);
        assert!(entries > 0, "{name}: the JIT never entered a trace, so the seed tests nothing");
    }
}

#[test]
fn mutated_seeds_run_the_same_with_and_without_the_jit() {
    // Deterministic single-byte replacements inside the programs' method bodies: digits,
    // operators and selectors change, which changes what the loops compute and send.
    let replacements = [b'0', b'7', b'-', b'*', b'<', b'x', b' '];
    for (name, program) in seeds() {
        for (k, at) in (0..program.len()).step_by(31).enumerate() {
            let mut p = program.clone();
            p[at] = replacements[k % replacements.len()];
            compare(&format!("{name} with byte {at} replaced"), &p);
        }
    }
}
