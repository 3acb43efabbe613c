//! tinyBenchmarks for tracevm: sends/s (benchFib) and bytecodes/s (the sieve `benchmark`), as
//! Squeak's tinyBenchmarks define them, plus the wall time of every `../shared/bench` program.
//!
//! Run with `cargo bench` (or `cargo bench -- --quick` for smaller sizes). It is a harness, not a
//! test: it prints figures and asserts nothing about speed. Each figure is the best of several
//! runs in one process, with the VM booted once per program.
//!
//! * sends/s     = benchFib result ÷ seconds (the result counts the calls made)
//! * bytecodes/s = N × 500000 ÷ seconds for `N benchmark`

use std::time::Instant;
use tracevm::boot;

fn image() -> Vec<u8> {
    let path = tracevm::cli::resolve_image(None).expect("base image");
    std::fs::read(path).expect("read image")
}

fn vm(image: &[u8], jit: bool) -> tracevm::interp::Vm {
    let options = tracevm::jit::JitOptions { enabled: jit, ..Default::default() };
    let mut vm = boot::boot_with(image, options).expect("boot");
    vm.out = Box::new(std::io::sink());
    vm
}

/// Best wall time of `runs` evaluations of `expr`, and its last result's printString.
fn time_expr(image: &[u8], expr: &str, runs: usize, jit: bool) -> (f64, String) {
    let mut vm = vm(image, jit);
    let mut best = f64::INFINITY;
    let mut printed = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let v = boot::eval(&mut vm, expr, None).expect("benchmark expression");
        best = best.min(t.elapsed().as_secs_f64());
        printed = boot::print_string(&mut vm, v).expect("printString");
    }
    (best, printed)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let image = image();
    let (fib_n, sieve_n, runs) = if quick { (24, 5, 2) } else { (30, 40, 5) };

    for (jit, label) in [(false, "interpreter, --no-jit"), (true, "with the JIT")] {
        println!("tracevm tinyBenchmarks ({label}), best of {runs}");
        let (secs, result) = time_expr(&image, &format!("{fib_n} benchFib"), runs, jit);
        let calls: f64 = result.parse().expect("benchFib answers an integer");
        println!("  {fib_n} benchFib   {result:>10} calls in {secs:7.3} s  = {:8.2} M sends/s", calls / secs / 1e6);
        let (secs, _) = time_expr(&image, &format!("{sieve_n} benchmark"), runs, jit);
        let bytecodes = sieve_n as f64 * 500_000.0;
        println!(
            "  {sieve_n} benchmark                  in {secs:7.3} s  = {:8.2} M bytecodes/s",
            bytecodes / secs / 1e6
        );
    }

    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench");
    let mut programs: Vec<_> = std::fs::read_dir(shared)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "st")).collect()
        })
        .unwrap_or_default();
    programs.sort();
    println!("\n../shared/bench programs, interpreter (wall time, best of {runs}; JIT vs interpreter: jit_ratio):");
    for p in programs {
        let src = std::fs::read(&p).expect("read program");
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let mut best = f64::INFINITY;
        for _ in 0..runs {
            let mut vm = vm(&image, false);
            let t = Instant::now();
            let ok = boot::file_in(&mut vm, &src, &name).is_ok();
            best = best.min(t.elapsed().as_secs_f64());
            assert!(ok, "{name} failed");
        }
        println!("  {name:<10} {:8.1} ms", best * 1e3);
    }
}
