//! Helpers shared by the integration tests that drive the `tracevm` binary as a child process.
//!
//! * [`BIN`] and [`SHARED`]: the binary Cargo built for this test run (the debug binary under
//!   plain `cargo test`) and the `../shared` directory (benchmarks, base image).
//! * [`run`]: runs the binary with arguments and optional stdin, from the crate root, with a
//!   time limit so that a hung VM fails the test instead of hanging the suite.
//! * [`TempDir`]: a unique scratch directory (temp dir + process id + counter), removed on drop.
//! * [`diff`]: a readable description of the first lines where two outputs differ.
//!
//! Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `tracevm` binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_tracevm");

/// The shared directory beside the project: `bench/`, `images/`.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");

/// The crate root; children run with it as their working directory.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Longest a child may run before it is killed and the test fails. Generous: debug builds are
/// slow and the two cores may be shared with other builds.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// A path inside `../shared`.
pub fn shared(rel: &str) -> PathBuf {
    Path::new(SHARED).join(rel)
}

/// The `NAME` of every `NAME.st` in `dir`, sorted.
pub fn program_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".st").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The base SmallWorld 2015 image.
pub fn base_image() -> PathBuf {
    shared("images/SmallWorld-2015.image")
}

/// Runs `tracevm` with `args`, feeding `stdin` (or an empty stdin) and capturing stdout and
/// stderr. Panics if the binary cannot be started or runs longer than [`TIMEOUT`].
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_with_timeout(args, stdin, TIMEOUT)
}

/// [`run`] with an explicit time limit.
pub fn run_with_timeout(args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_command(cmd, stdin, limit)
}

/// Runs an already prepared command (e.g. `tracevm` under `/usr/bin/time`) like [`run`].
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    cmd.current_dir(ROOT)
        .env_remove("TRACEVM_IMAGE")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let description = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    // Feed stdin and drain the pipes on threads, so a chatty child cannot block on a full pipe.
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out_thread = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err_thread = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} ran longer than {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: out_thread.join().expect("stdout reader"),
        stderr: err_thread.join().expect("stderr reader"),
    }
}

/// Stdout as text (lossy).
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text (lossy).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A one-line summary of a finished child for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        truncate(&stdout(out), 2000),
        truncate(&stderr(out), 2000)
    )
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_string()
    } else {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &s[..end], s.len())
    }
}

/// Asserts that the child exited with `code`.
#[track_caller]
pub fn assert_status(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "expected exit status {code}; got {}", describe(out));
}

/// Asserts exit status 0 and that stdout is exactly `expected`.
#[track_caller]
pub fn assert_stdout(out: &Output, expected: &str) {
    assert_status(out, 0);
    let got = stdout(out);
    if got != expected {
        panic!(
            "stdout differs from the expected output:\n{}\n--- stderr ---\n{}",
            diff(expected, &got),
            truncate(&stderr(out), 2000)
        );
    }
}

/// Asserts that `haystack` (stdout or stderr of `out`, as named by `which`) contains `needle`.
#[track_caller]
pub fn assert_contains(out: &Output, which: &str, needle: &str) {
    let text = match which {
        "stdout" => stdout(out),
        "stderr" => stderr(out),
        _ => panic!("assert_contains: which must be stdout or stderr"),
    };
    assert!(text.contains(needle), "expected {which} to contain {needle:?}; got {}", describe(out));
}

/// Describes how `got` differs from `expected`: line counts, then up to five differing lines,
/// each with its 1-based number and both versions (Debug-quoted, so that whitespace and a
/// missing final newline show). Empty if the two are equal.
pub fn diff(expected: &str, got: &str) -> String {
    if expected == got {
        return String::new();
    }
    let e: Vec<&str> = expected.split_inclusive('\n').collect();
    let g: Vec<&str> = got.split_inclusive('\n').collect();
    let mut report =
        format!("expected {} lines ({} bytes), got {} lines ({} bytes)\n", e.len(), expected.len(), g.len(), got.len());
    let mut shown = 0;
    for i in 0..e.len().max(g.len()) {
        let (a, b) = (e.get(i), g.get(i));
        if a == b {
            continue;
        }
        let show = |x: Option<&&str>| match x {
            Some(s) => format!("{s:?}"),
            None => "<no line>".to_string(),
        };
        report.push_str(&format!("line {}:\n  expected: {}\n  got:      {}\n", i + 1, show(a), show(b)));
        shown += 1;
        if shown == 5 {
            report.push_str("  …\n");
            break;
        }
    }
    report
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory, unique per process and per call, removed (with its contents)
/// when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tracevm-test-{}-{}", std::process::id(), n));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// Writes `contents` to `name` inside the directory; answers its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }

    /// A path inside the directory (not created).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The names of the files in the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.path)
            .expect("reading the temp dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Writes `source` as a `.st` file into a fresh [`TempDir`]; answers both (keep the dir alive
/// while the file is used).
pub fn write_st(name: &str, source: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let path = dir.write(name, source);
    (dir, path)
}

/// Files in `source` (written to a temp `.st` file) with extra arguments placed before it.
pub fn run_st(source: &str, extra: &[&str]) -> Output {
    let (_dir, path) = write_st("prog.st", source);
    let p = path.to_str().expect("utf-8 temp path");
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.push(p);
    run(&args, None)
}

/// Evaluates one expression with `run --eval=EXPR` (the `=` form, so an expression may start
/// with `-`), asserts success and answers the printed printString without its newline.
#[track_caller]
pub fn eval(expr: &str) -> String {
    let arg = format!("--eval={expr}");
    let out = run(&["run", &arg], None);
    assert_status(&out, 0);
    let s = stdout(&out);
    s.strip_suffix('\n').unwrap_or_else(|| panic!("output of {expr:?} does not end with a newline: {s:?}")).to_string()
}

/// Asserts that `expr` evaluates (with `-e`) to something whose printString is `expected`.
#[track_caller]
pub fn assert_eval(expr: &str, expected: &str) {
    let got = eval(expr);
    assert_eq!(got, expected, "printString of {expr:?}");
}
