//! Programs whose expected output comes from the Java reference VM (`tests/reference/`, see its
//! README): each `NAME.st` must print `NAME.out` on stdout and `NAME.err` on stderr (its
//! `{FILE}` being the program's path), exiting 1 when `NAME.err` is not empty and 0 otherwise —
//! interpreted, and with the JIT recording every loop after two back edges.

mod common;

use common::{describe, diff, run, stderr, stdout};

const DIR: &str = "tests/reference";

/// Every `NAME` with a `NAME.st` in the directory, sorted.
fn programs() -> Vec<String> {
    common::program_names(&std::path::Path::new(common::ROOT).join(DIR))
}

fn expected(name: &str, ext: &str) -> String {
    let p = std::path::Path::new(common::ROOT).join(DIR).join(format!("{name}.{ext}"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Runs every program with `flags`; answers a description of each mismatch.
fn mismatches(flags: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    for name in programs() {
        let file = format!("{DIR}/{name}.st");
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.push(&file);
        let out = run(&args, None);
        let (want_out, want_err) = (expected(&name, "out"), expected(&name, "err").replace("{FILE}", &file));
        let want_status = if want_err.is_empty() { 0 } else { 1 };
        if out.status.code() != Some(want_status) {
            failures.push(format!("{name} {flags:?}: expected exit status {want_status}; {}", describe(&out)));
        } else if stdout(&out) != want_out {
            failures.push(format!("{name} {flags:?}: stdout differs:\n{}", diff(&want_out, &stdout(&out))));
        } else if stderr(&out) != want_err {
            failures.push(format!("{name} {flags:?}: stderr differs:\n{}", diff(&want_err, &stderr(&out))));
        }
    }
    failures
}

#[test]
fn interpreted_programs_print_what_the_reference_vm_printed() {
    assert!(programs().len() >= 30, "tests/reference has {} programs", programs().len());
    let failures = mismatches(&["--no-jit"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn with_the_jit_programs_print_what_the_reference_vm_printed() {
    let failures = mismatches(&["--jit-threshold=2"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
