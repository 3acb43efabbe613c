//! Hand-written Smalltalk programs (`tests/jit_programs/*.st`, the first line of each says what
//! it exercises) run by the interpreter alone and with the JIT, which must print the same bytes
//! on stdout and stderr and end the same way (finished, or the same error and backtrace).
//!
//! They go where the generated programs of `jit_property` do not: classes added and methods
//! redefined or removed while loops run, super chains, aliasing, collections, Floats, Fractions,
//! LargeIntegers, non-local returns from dead homes, errors and `doesNotUnderstand:` inside
//! traced loops, collections during traces, processes forked from loops and Semaphores. Modes:
//! threshold 2 (the JIT records nearly every loop), the same with every guard failing the first
//! time it runs, and threshold 1.

mod inproc;

use inproc::{image, Capture};
use tracevm::boot;
use tracevm::jit::JitOptions;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jit_programs");

/// What a run printed on stdout and stderr, how it ended, and how many traces it compiled.
#[derive(Debug, PartialEq)]
struct Outcome {
    out: String,
    err: String,
    end: String,
}

fn run(source: &[u8], name: &str, jit: JitOptions) -> (Outcome, u64) {
    let mut vm = boot::boot_with(image(), jit).expect("boot");
    let (out, err) = (Capture::default(), Capture::default());
    vm.out = Box::new(out.clone());
    vm.err = Box::new(err.clone());
    vm.budget = Some(50_000_000);
    vm.max_heap_bytes = 256 << 20;
    let compiled0 = vm.jit.stats.traces_compiled;
    let end = match boot::file_in(&mut vm, source, name) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{e}\n{}", e.backtrace().unwrap_or("")),
    };
    (Outcome { out: out.text(), err: err.text(), end }, vm.jit.stats.traces_compiled - compiled0)
}

/// Runs `tests/jit_programs/NAME.st` in every mode against the interpreter.
fn check(name: &str) {
    let file = format!("{name}.st");
    let source = std::fs::read(format!("{DIR}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (off, _) = run(&source, &file, JitOptions { enabled: false, ..JitOptions::default() });
    assert!(!off.end.contains("budget"), "{file}: the interpreter ran out of budget: {}", off.end);
    assert!(!off.out.is_empty(), "{file} printed nothing: {}", off.end);
    let modes = [
        ("threshold 2", JitOptions { threshold: 2, ..JitOptions::default() }),
        ("threshold 2, forced exits", JitOptions { threshold: 2, force_exits: true, ..JitOptions::default() }),
        ("threshold 1", JitOptions { threshold: 1, ..JitOptions::default() }),
    ];
    let mut compiled = 0;
    for (mode, options) in modes {
        let (on, traces) = run(&source, &file, options);
        assert_eq!(on, off, "{file}: the JIT ({mode}) differs from the interpreter");
        compiled += traces;
    }
    // Two of them are the JIT's own limits (a trace too long, inlining too deep): recordings
    // that abort, which the comparison covers too.
    if !matches!(name, "p12_recursion" | "p47_deeprec") {
        assert!(compiled > 0, "{file}: no trace compiled in any mode, so the JIT was not tested");
    }
}

macro_rules! programs {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every program in the directory has a test above.
        #[test]
        fn every_program_is_run() {
            let listed = [$(stringify!($name)),*];
            let mut missing: Vec<String> = std::fs::read_dir(DIR)
                .expect("tests/jit_programs")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter_map(|f| f.strip_suffix(".st").map(str::to_string))
                .filter(|n| !listed.contains(&n.as_str()))
                .collect();
            missing.sort();
            assert!(missing.is_empty(), "programs without a test: {missing:?}");
        }
    };
}

programs! {
    p01_poly_addclass p02_compile_inloop p03_super p04_alias p05_array_idx p06_bytearray
    p07_string_idx p08_nested3 p09_while_exit p10_blocks_array p11_nlr p12_recursion
    p12b_recursion_small p13_intedge p14_divmod p15_float p16_strings p17_maxmin_interval
    p18_collections p19_escape p20_rare_types p21_dnu p22_error_deep p23_largeint p24_nonbool
    p25_classvar p26_shared_temps p27_block_while p28_points p29_fraction p30_identity
    p31_deep_inline p32_remove p33_nlr_ifabsent p34_addclass_inloop p35_chars p36_minint_div
    p37_alias_args p38_licm p39_list_grow p40_nan p41_gc p42_block_arity p43_inherit_override
    p44_context p45_signed_bytes p46_dead_home p47_deeprec q01_fork_sem q02_dispatch_in_loop
    q03_strings_build q04_deep_in_loop q05_inherited_method_guard q06_array_literals q07_loop_tails
    q08_literal_stores q09_descending_tails
}
