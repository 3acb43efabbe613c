//! Bounded memory on long runs: the collector must keep allocation-heavy and call-heavy programs
//! in bounded memory (DESIGN.md, "Memory"). Each test runs `tracevm` as a child, measures the
//! child's peak resident set size, checks the program's output, and asserts the peak is at most
//! 64 MB. Measured figures are printed on stderr (see them with `--nocapture`).
//!
//! Measurement: GNU `/usr/bin/time -f %M -o FILE` (maximum RSS in KiB) when it exists; otherwise
//! the child's `VmHWM` from `/proc/<pid>/status`, polled until it exits (the high-water mark only
//! grows, so the last reading is the peak up to a few milliseconds before exit). Without either,
//! the test prints a note and checks only the output.

mod common;

use common::{assert_status, describe, run_command, stdout, TempDir, BIN, ROOT, TIMEOUT};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The bound the brief sets for every case.
const LIMIT_KB: u64 = 64 * 1024;

const TIME: &str = "/usr/bin/time";

/// Runs `tracevm ARGS` and answers its output and peak RSS in KiB (None if it cannot be
/// measured on this system).
fn run_measured(args: &[&str]) -> (Output, Option<u64>) {
    if Path::new(TIME).exists() {
        let dir = TempDir::new();
        let report = dir.file("rss");
        let mut cmd = Command::new(TIME);
        cmd.arg("-f").arg("%M").arg("-o").arg(&report).arg(BIN).args(args);
        let out = run_command(cmd, None, TIMEOUT);
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        // GNU time may put "Command exited with non-zero status N" before the figure.
        let kb = text.lines().rev().find_map(|l| l.trim().parse::<u64>().ok());
        if kb.is_some() {
            return (out, kb);
        }
        eprintln!("note: {TIME} gave no figure ({text:?}); polling /proc instead");
    }
    run_polling(args)
}

/// Runs the child directly and polls `/proc/<pid>/status` for `VmHWM`.
fn run_polling(args: &[&str]) -> (Output, Option<u64>) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        .env_remove("TRACEVM_IMAGE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tracevm");
    let status_path = format!("/proc/{}/status", child.id());
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let started = Instant::now();
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            // Between fork and exec the child is still the test harness's copy (a few KiB in
            // a vfork-style spawn); only readings of the exec'd tracevm count.
            let execed = s.lines().any(|l| l.starts_with("Name:") && l.contains("tracevm"));
            if let Some(kb) = s
                .lines()
                .filter(|_| execed)
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = Some(peak.map_or(kb, |p| p.max(kb)));
            }
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tracevm {args:?} ran longer than {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out =
        Output { status, stdout: out_t.join().expect("stdout reader"), stderr: err_t.join().expect("stderr reader") };
    (out, peak)
}

/// Runs `args`, checks exit 0 and stdout, prints the figures, and asserts peak RSS ≤ 64 MB.
fn check(case: &str, args: &[&str], expected_stdout: &str) {
    let started = Instant::now();
    let (out, peak) = run_measured(args);
    let secs = started.elapsed().as_secs_f64();
    assert_status(&out, 0);
    assert_eq!(stdout(&out), expected_stdout, "{case}: output\n{}", describe(&out));
    match peak {
        Some(kb) => {
            eprintln!("{case}: peak RSS {kb} KiB ({:.1} MiB), {secs:.2} s", kb as f64 / 1024.0);
            assert!(kb <= LIMIT_KB, "{case}: peak RSS {kb} KiB exceeds the bound of {LIMIT_KB} KiB");
        }
        None => eprintln!("note: {case}: peak RSS not measurable here (no {TIME}, no /proc); output checked only"),
    }
}

/// `SmallInt>>benchFib` (image method): 30 benchFib makes 2,692,537 calls, all garbage.
#[test]
fn bench_fib_30_runs_in_bounded_memory() {
    check("30 benchFib", &["run", "-e", "30 benchFib"], "2692537\n");
}

/// Three million short-lived 10-slot Arrays: only one is live at a time.
#[test]
fn three_million_short_lived_arrays_run_in_bounded_memory() {
    let dir = TempDir::new();
    let prog = dir.write(
        "churn.st",
        "EVAL Class addNewClass: (Object subclass: 'Churn' variables: '' classVariables: '')\n\
         META Churn\n\
         run: n | last count |\n\
         \x20 count <- 0.\n\
         \x20 1 to: n do: [:i | last <- Array new: 10. count <- count + 1].\n\
         \x20 ^ count + last size\n\
         !\n\
         EVAL Transcript show: (Churn run: 3000000)\n",
    );
    check("3000000 x Array new: 10", &["run", prog.to_str().expect("utf-8 path")], "3000010\n");
}

fn deep_expected() -> String {
    std::fs::read_to_string(common::shared("bench/deep.out")).expect("bench/deep.out")
}

/// The shared deep.st: recursion 100000 deep through methods, 50000 through blocks, and a
/// non-local return unwinding 50000 levels of `escape:` + `do:` frames. The frames are live
/// while the recursion is deep, so the peak is mostly live data: measured ≈ 61 MB in release
/// (most of it live at the bottom of `escape: 50000`; `100000 down` alone peaks at ≈ 25 MB).
#[test]
fn deep_bench_runs_in_64_mb() {
    let prog = common::shared("bench/deep.st");
    check("deep.st", &["run", prog.to_str().expect("utf-8 path")], &deep_expected());
}

/// The `/proc` fallback measures a real figure on Linux (so the fallback path is known to work
/// where `/usr/bin/time` is missing).
#[test]
fn proc_polling_fallback_measures_peak_rss() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("note: no /proc here; the polling fallback cannot be checked");
        return;
    }
    // Long enough (≈ 80 ms) for several readings at the 2 ms polling interval.
    let (out, peak) = run_polling(&["run", "-e", "27 benchFib"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "635621\n");
    let kb = peak.expect("VmHWM read from /proc/<pid>/status");
    eprintln!("27 benchFib (polled): peak RSS {kb} KiB");
    assert!((1024..=LIMIT_KB).contains(&kb), "implausible VmHWM {kb} KiB");
}
