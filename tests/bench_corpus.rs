//! The shared benchmark corpus (`../shared/bench/NAME.st`) against the reference outputs of the
//! Java SmallWorld VM (`NAME.out`): each program must exit with status 0 and print exactly the
//! reference bytes on stdout. A mismatch panics with the first differing lines.

mod common;

use common::{assert_status, diff, run, shared, stderr, stdout};

/// Runs `../shared/bench/NAME.st` and compares stdout with `NAME.out` byte for byte.
fn check(name: &str) {
    let program = shared(&format!("bench/{name}.st"));
    let expected_path = shared(&format!("bench/{name}.out"));
    let expected =
        std::fs::read(&expected_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", expected_path.display()));
    let started = std::time::Instant::now();
    let out = run(&["run", program.to_str().expect("utf-8 path")], None);
    eprintln!("{name}: {:.2} s", started.elapsed().as_secs_f64());
    assert_status(&out, 0);
    if out.stdout != expected {
        panic!(
            "{name}: stdout differs from {}:\n{}\n--- stderr ---\n{}",
            expected_path.display(),
            diff(&String::from_utf8_lossy(&expected), &stdout(&out)),
            stderr(&out)
        );
    }
}

macro_rules! bench_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

bench_tests!(blocks, deep, fib, floats, largeint, loops, objects, poly, recursion, redefine, sieve, strings,);

/// The list above must cover every program in the directory, so a new benchmark is not
/// silently skipped.
#[test]
fn corpus_is_complete() {
    let listed = [
        "blocks",
        "deep",
        "fib",
        "floats",
        "largeint",
        "loops",
        "objects",
        "poly",
        "recursion",
        "redefine",
        "sieve",
        "strings",
    ];
    let mut found: Vec<String> = std::fs::read_dir(shared("bench"))
        .expect("../shared/bench exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".st").map(str::to_string))
        .collect();
    found.sort();
    assert_eq!(found, listed, "programs in ../shared/bench");
    for name in listed {
        assert!(shared(&format!("bench/{name}.out")).is_file(), "{name}.out is missing");
    }
}

/// The failure report used above names the first differing line with both versions, and shows a
/// missing final newline.
#[test]
fn diff_names_the_first_differing_line() {
    assert_eq!(diff("a\nb\n", "a\nb\n"), "");
    let d = diff("one\ntwo\nthree\n", "one\n2\nthree\n");
    assert!(d.contains("line 2:"), "{d}");
    assert!(d.contains("expected: \"two\\n\""), "{d}");
    assert!(d.contains("got:      \"2\\n\""), "{d}");
    assert!(!d.contains("line 1:") && !d.contains("line 3:"), "{d}");
    let d = diff("x\n", "x");
    assert!(d.contains("line 1:"), "{d}");
    let d = diff("x\ny\n", "x\n");
    assert!(d.contains("line 2:") && d.contains("<no line>"), "{d}");
}
