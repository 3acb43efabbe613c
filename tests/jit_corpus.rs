//! The JIT through the binary, on the shared benchmark corpus (`../shared/bench/NAME.st` with
//! the reference outputs `NAME.out`):
//!
//! * every program prints exactly the reference bytes with every loop recorded after one back
//!   edge and every guard failing the first time it runs (`--jit-threshold=1
//!   --jit-force-exits`: every deoptimisation path runs), and with a low threshold (3);
//! * `--no-jit --stats` reports the JIT off, not compiled traces;
//! * `--dump-traces=FILE` describes each trace (start, IR, exits, machine code) without changing
//!   what the program prints, and refuses to overwrite an input program.

mod common;

use common::{assert_status, describe, diff, run, shared, stderr, stdout, TempDir};
use std::path::PathBuf;

/// Every `NAME.st` in `../shared/bench`, sorted by name.
fn corpus() -> Vec<String> {
    common::program_names(&shared("bench"))
}

fn program(name: &str) -> PathBuf {
    shared(&format!("bench/{name}.st"))
}

fn expected(name: &str) -> Vec<u8> {
    let p = shared(&format!("bench/{name}.out"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Runs `tracevm [global…] run [flags…] NAME.st`; answers a description of how its stdout
/// differs from `NAME.out` (or of its failure), or None when it matches and the exit status is 0.
fn mismatch(name: &str, global: &[&str], flags: &[&str]) -> Option<String> {
    let path = program(name);
    let mut args: Vec<&str> = global.to_vec();
    args.push("run");
    args.extend_from_slice(flags);
    args.push(path.to_str().expect("utf-8 path"));
    let out = run(&args, None);
    let want = expected(name);
    if out.status.code() != Some(0) {
        return Some(format!("{name} {args:?}: {}", describe(&out)));
    }
    if out.stdout != want {
        return Some(format!(
            "{name} {args:?}: stdout differs from {name}.out:\n{}--- stderr ---\n{}",
            diff(&String::from_utf8_lossy(&want), &stdout(&out)),
            stderr(&out)
        ));
    }
    None
}

/// Runs every program of the corpus with `flags`; fails naming every mismatch.
fn check_corpus(flags: &[&str]) {
    let names = corpus();
    assert!(names.len() >= 12, "the corpus has {} programs", names.len());
    let failures: Vec<String> = names.iter().filter_map(|n| mismatch(n, &[], flags)).collect();
    assert!(failures.is_empty(), "{} of {} programs differ:\n{}", failures.len(), names.len(), failures.join("\n"));
}

#[test]
fn corpus_with_threshold_1_and_forced_exits() {
    check_corpus(&["--jit-threshold=1", "--jit-force-exits"]);
}

#[test]
fn corpus_with_threshold_3() {
    check_corpus(&["--jit-threshold=3"]);
}

/// The `jit:` lines of `--stats` (stderr).
fn jit_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("jit:")).collect()
}

/// `--no-jit` compiles nothing, and `--stats` says the JIT is off; the same program with the JIT
/// does compile traces (so the two runs differ in what the statistics claim to measure).
#[test]
fn no_jit_stats_report_jit_off() {
    let sieve = program("sieve");
    let sieve = sieve.to_str().expect("utf-8 path");
    let off = run(&["--stats", "run", "--no-jit", sieve], None);
    assert_status(&off, 0);
    assert_eq!(off.stdout, expected("sieve"), "--no-jit output");
    let err = stderr(&off);
    assert_eq!(jit_lines(&err), ["jit: off (--no-jit)"], "{err}");
    assert!(!err.contains("traces compiled") && !err.contains("jit: trace"), "{err}");

    let on = run(&["--stats", "run", "--jit-threshold=3", sieve], None);
    assert_status(&on, 0);
    let err = stderr(&on);
    let summary = jit_lines(&err)
        .into_iter()
        .find(|l| l.contains("traces compiled"))
        .unwrap_or_else(|| panic!("no 'traces compiled' line: {err}"));
    let n: u64 = summary
        .strip_prefix("jit: ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the trace count in {summary:?}"));
    assert!(n > 0, "the sieve compiles traces with the JIT on: {err}");
}

/// A trace depends on the lookups it folded, not on every method in the system: defining a
/// method of another class, or of another selector, leaves it running; redefining a method it
/// inlined stops it, and the loop is traced again with the new method.
#[test]
fn only_traces_that_folded_a_changed_lookup_are_invalidated() {
    let dir = TempDir::new();
    let prog = dir.write(
        "inv.st",
        "EVAL Class addNewClass: (Object subclass: 'Inv' variables: '' classVariables: '')\n\
         META Inv\n\
         f: x\n\
           ^ x + 1\n\
         !\n\
         META Inv\n\
         run: n | i s |\n\
           i <- 0. s <- 0.\n\
           [i < n] whileTrue: [s <- s + (self f: i). i <- i + 1].\n\
           ^ s\n\
         !\n\
         EVAL Transcript show: (Inv run: 1000) printString\n\
         METHOD Inv\n\
         f: x\n\
           ^ 0\n\
         !\n\
         META Inv\n\
         g: x\n\
           ^ x\n\
         !\n\
         EVAL Transcript show: (Inv run: 1000) printString\n\
         META Inv\n\
         f: x\n\
           ^ x + 2\n\
         !\n\
         EVAL Transcript show: (Inv run: 1000) printString\n\
         ",
    );
    let out = run(&["--stats", "run", prog.to_str().expect("utf-8 path")], None);
    assert_status(&out, 0);
    // Σ (i + 1) for i < 1000, twice; then Σ (i + 2).
    assert_eq!(stdout(&out), "500500\n500500\n501500\n");
    let err = stderr(&out);
    let traces: Vec<&str> = jit_lines(&err).into_iter().filter(|l| l.starts_with("jit: trace ")).collect();
    assert_eq!(traces.len(), 2, "one trace before the redefinition of f:, one after: {err}");
    assert!(
        traces[0].starts_with("jit: trace 0 MetaInv>>run: @ 6: 2 entries,") && traces[0].ends_with("(invalidated)"),
        "the first trace ran in both of the first two runs, then was invalidated: {err}"
    );
    assert!(
        traces[1].starts_with("jit: trace 1 MetaInv>>run: @ 6: 1 entries,") && !traces[1].ends_with("(invalidated)")
    );
}

/// A trace's start line: `---- trace N: Class>>selector @ offset` (the class may be a
/// metaclass, e.g. `MetaFoo`).
fn is_trace_start(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---- trace ") else { return false };
    let Some((id, at)) = rest.split_once(": ") else { return false };
    let Some((method, offset)) = at.rsplit_once(" @ ") else { return false };
    let Some((class, selector)) = method.split_once(">>") else { return false };
    id.parse::<u32>().is_ok()
        && offset.parse::<u32>().is_ok()
        && !class.is_empty()
        && !class.contains(' ')
        && !selector.is_empty()
        && !selector.contains(' ')
}

#[test]
fn trace_start_lines_are_recognised() {
    assert!(is_trace_start("---- trace 0: SmallInt>>to:do: @ 3"));
    assert!(is_trace_start("---- trace 12: MetaSieveBench>>sieve: @ 43"));
    assert!(!is_trace_start("---- abort: Parser>>skipComment @ 0: unsupported primitive 7"));
    assert!(!is_trace_start("---- trace 0: SmallInt>>to:do:"));
    assert!(!is_trace_start("---- trace x: SmallInt>>to:do: @ 3"));
}

/// `--dump-traces=FILE` writes every part of a trace's description, and the program's output
/// is unchanged.
#[test]
fn dump_traces_to_file() {
    let dir = TempDir::new();
    let dump = dir.file("traces.txt");
    let arg = format!("--dump-traces={}", dump.display());
    let sieve = program("sieve");
    let out = run(&[&arg, "run", sieve.to_str().expect("utf-8 path")], None);
    assert_status(&out, 0);
    if out.stdout != expected("sieve") {
        panic!(
            "stdout with --dump-traces differs from sieve.out:\n{}",
            diff(&String::from_utf8_lossy(&expected("sieve")), &stdout(&out))
        );
    }
    let text = std::fs::read_to_string(&dump).unwrap_or_else(|e| panic!("no dump at {}: {e}", dump.display()));
    for part in ["---- trace", "IR optimised", "-- exits", "machine code"] {
        assert!(text.contains(part), "the dump lacks {part:?}:\n{}", &text[..text.len().min(3000)]);
    }
    // Sieve's side traces start inside inlined frames: they say what they inherit.
    for part in ["frames inherited)", "-- inherits the state of trace"] {
        assert!(text.contains(part), "the dump lacks {part:?}");
    }
    let starts: Vec<&str> = text.lines().filter(|l| is_trace_start(l)).collect();
    assert!(!starts.is_empty(), "no `---- trace N: Class>>selector @ offset` line:\n{}", &text[..text.len().min(3000)]);
    // The dump went to the file, not to the program's output or to stderr.
    assert!(!stdout(&out).contains("---- trace") && !stderr(&out).contains("---- trace"), "{}", describe(&out));
}

/// `--dump-traces` naming one of the programs to run is refused before anything runs: exit
/// status non-zero, the program file unchanged (a copy, never the shared corpus).
#[test]
fn dump_traces_refuses_to_overwrite_the_program() {
    let dir = TempDir::new();
    let source = std::fs::read(program("sieve")).expect("sieve.st");
    let copy = dir.write("sieve.st", &source);
    let arg = format!("--dump-traces={}", copy.display());
    let out = run(&[&arg, "run", copy.to_str().expect("utf-8 path")], None);
    assert_ne!(out.status.code(), Some(0), "dumping over the input was accepted: {}", describe(&out));
    assert!(out.stdout.is_empty(), "the program ran: {}", describe(&out));
    assert!(stderr(&out).contains("overwrite"), "{}", describe(&out));
    assert_eq!(std::fs::read(&copy).expect("the copy still exists"), source, "the program file was changed");

    // The same file named through another path (`dir/./sieve.st`) is still the input.
    let other = dir.path.join(".").join("sieve.st");
    let arg = format!("--dump-traces={}", other.display());
    let out = run(&[&arg, "run", copy.to_str().expect("utf-8 path")], None);
    assert_ne!(out.status.code(), Some(0), "dumping over the input was accepted: {}", describe(&out));
    assert_eq!(std::fs::read(&copy).expect("the copy still exists"), source, "the program file was changed");
}
