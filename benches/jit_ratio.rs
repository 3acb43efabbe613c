//! JIT versus interpreter: whole-process wall time of the release binary on every
//! `../shared/bench/*.st` program, run as `tracevm run --no-jit FILE` and `tracevm run FILE`.
//!
//!     cargo build --release && cargo bench --bench jit_ratio            # 5 runs of each
//!     cargo bench --bench jit_ratio -- --quick                          # 2 runs of each
//!     cargo bench --bench jit_ratio -- --scale 20 loops sieve           # options, program filter
//!
//! It is a harness, not a test: it prints figures and asserts nothing about speed, and a program
//! that fails or times out is reported and skipped, never a panic. The two modes alternate
//! (interpreter, JIT, interpreter, ...) and each figure is the best of its runs. Tables:
//!
//! 1. start-up: `tracevm run -e '3 + 4'` with and without `--no-jit`;
//! 2. the programs as they are, with a check that both modes print the same stdout and that it
//!    equals the program's `.out` file;
//! 3. the programs at larger sizes: the `^ <integer>` answered by the method commented
//!    "SIZE PARAMETER" is multiplied by `--scale K` (default 10) in a copy written to a temporary
//!    directory; both modes must print the same stdout (the `.out` file no longer applies).
//!
//! Options: `--quick` (2 runs instead of 5), `--runs N`, `--scale K`, `--timeout S` (per run,
//! default 10 s; a mode that times out is not run again for that program), `--budget S` (no
//! further pair of runs when one more would take the program past S seconds, default 5 s; there
//! is always one pair), and program names to run only those. The binary is `$TRACEVM_BIN`, else
//! `target/release/tracevm` (next to this bench executable, else under `CARGO_MANIFEST_DIR`); it
//! is copied to the temporary directory first, so a rebuild during the run cannot mix two builds
//! in one table.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

struct Options {
    runs: usize,
    scale: u64,
    timeout: Duration,
    budget: Duration,
    filter: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        runs: 5,
        scale: 10,
        timeout: Duration::from_secs(10),
        budget: Duration::from_secs(5),
        filter: Vec::new(),
    };
    let mut runs = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| args.next()).ok_or(format!("{name} needs a value"));
        let secs = |s: String, name: &str| -> Result<Duration, String> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(format!("{name}: not a positive number of seconds: {s}"))
        };
        match flag.as_str() {
            "--quick" => quick = true,
            // `cargo bench` passes --bench to every harness = false bench.
            "--bench" => {}
            "--runs" => {
                let v = value("--runs")?;
                runs = Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or(format!("--runs: bad count {v}"))?);
            }
            "--scale" => {
                let v = value("--scale")?;
                o.scale = v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!("--scale: bad factor {v}"))?;
            }
            "--timeout" => o.timeout = secs(value("--timeout")?, "--timeout")?,
            "--budget" => o.budget = secs(value("--budget")?, "--budget")?,
            f if f.starts_with('-') => eprintln!("jit_ratio: ignoring unknown option {f}"),
            name => o.filter.push(name.trim_end_matches(".st").to_string()),
        }
    }
    o.runs = runs.unwrap_or(if quick { 2 } else { 5 });
    Ok(o)
}

/// The release binary to measure, or a message saying how to get one.
fn find_binary() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("TRACEVM_BIN") {
        candidates.push(PathBuf::from(p));
    }
    // The bench executable is target/release/deps/jit_ratio-<hash>.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(release) = exe.parent().and_then(Path::parent) {
            candidates.push(release.join("tracevm"));
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/tracevm"));
    }
    candidates.push(Path::new(MANIFEST_DIR).join("target/release/tracevm"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "jit_ratio: no release binary found (looked for target/release/tracevm under {MANIFEST_DIR}).\n\
             Build it first:  cargo build --release   (or point TRACEVM_BIN at one)"
        )
    })
}

enum Outcome {
    Done { secs: f64, stdout: Vec<u8> },
    Failed(String),
    Timeout,
}

/// Runs the binary once and measures its whole-process wall time; kills it after `timeout`.
fn run_once(bin: &Path, args: &[&str], timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut child = match Command::new(bin)
        .args(args)
        .current_dir(MANIFEST_DIR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0) // so that a timeout kills anything it started, too
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start {}: {e}", bin.display())),
    };
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = pipe(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = pipe(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    // A watchdog kills the child at the deadline unless told that it has been waited for; the
    // main thread blocks in wait(), so the end of the run is seen at once, without polling.
    let (done, watch) = mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(timeout) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
            true
        } else {
            false
        }
    });
    let status = child.wait();
    let secs = start.elapsed().as_secs_f64();
    let _ = done.send(());
    if watchdog.join().unwrap_or(false) {
        return Outcome::Timeout; // the readers end when the pipes close; no need to wait for them
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Ok(s) if s.success() => Outcome::Done { secs, stdout },
        Ok(s) => {
            let text = String::from_utf8_lossy(&stderr);
            let first: Vec<&str> = text.lines().take(3).collect();
            Outcome::Failed(format!("{s}: {}", first.join(" | ")))
        }
        Err(e) => Outcome::Failed(format!("wait failed: {e}")),
    }
}

/// What one mode (interpreter or JIT) did over its runs.
#[derive(Default)]
struct Mode {
    best: Option<f64>,
    runs: usize,
    stdout: Option<Vec<u8>>,
    /// Stdout differed between two runs of the same mode.
    unstable: bool,
    /// Why the mode stopped: a failure or a timeout (it is not run again).
    stopped: Option<String>,
}

impl Mode {
    fn record(&mut self, outcome: Outcome, timeout: Duration) {
        match outcome {
            Outcome::Done { secs, stdout } => {
                self.runs += 1;
                self.best = Some(self.best.map_or(secs, |b| b.min(secs)));
                match &self.stdout {
                    Some(prev) if *prev != stdout => self.unstable = true,
                    Some(_) => {}
                    None => self.stdout = Some(stdout),
                }
            }
            Outcome::Failed(why) => self.stopped = Some(format!("FAILED ({why})")),
            Outcome::Timeout => self.stopped = Some(format!("TIMEOUT (> {} s)", timeout.as_secs_f64())),
        }
    }

    fn live(&self) -> bool {
        self.stopped.is_none()
    }

    fn cell(&self) -> String {
        match (&self.stopped, self.best) {
            (Some(why), _) if why.starts_with("TIMEOUT") => "timeout".into(),
            (Some(_), _) => "FAILED".into(),
            (None, Some(b)) => format!("{b:.3}"),
            (None, None) => "-".into(),
        }
    }
}

/// Runs `base ++ [--no-jit] ++ tail` and `base ++ tail` alternately, up to `runs` times each,
/// stopping early once the pair has used up the budget.
fn compare(bin: &Path, base: &[&str], tail: &[&str], runs: usize, budget: Duration, timeout: Duration) -> (Mode, Mode) {
    let interp_args: Vec<&str> = base.iter().chain(&["--no-jit"]).chain(tail).copied().collect();
    let jit_args: Vec<&str> = base.iter().chain(tail).copied().collect();
    let (mut interp, mut jit) = (Mode::default(), Mode::default());
    let start = Instant::now();
    for _ in 0..runs {
        let pair_start = Instant::now();
        if interp.live() {
            interp.record(run_once(bin, &interp_args, timeout), timeout);
        }
        if jit.live() {
            jit.record(run_once(bin, &jit_args, timeout), timeout);
        }
        if !interp.live() && !jit.live() {
            break;
        }
        if start.elapsed() + pair_start.elapsed() > budget {
            break;
        }
    }
    (interp, jit)
}

fn ratio(interp: &Mode, jit: &Mode) -> Option<f64> {
    match (interp.live(), jit.live(), interp.best, jit.best) {
        (true, true, Some(i), Some(j)) if j > 0.0 => Some(i / j),
        _ => None,
    }
}

/// "yes", "no" or "-" (not known) for "interpreter and JIT printed the same stdout".
fn same_output(interp: &Mode, jit: &Mode) -> &'static str {
    match (&interp.stdout, &jit.stdout) {
        (Some(a), Some(b)) if a == b && !interp.unstable && !jit.unstable => "yes",
        (Some(_), Some(_)) => "MISMATCH",
        _ => "-",
    }
}

/// Where two outputs first differ, for the MISMATCH message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                return format!("line {n}: --no-jit {:?} vs JIT {:?}", x.unwrap_or("<end>"), y.unwrap_or("<end>"))
            }
        }
    }
    unreachable!()
}

/// Prints the failures and mismatches of one program under its table row.
fn notes(interp: &Mode, jit: &Mode, problems: &mut Vec<String>, name: &str) {
    for (label, m) in [("--no-jit", interp), ("JIT", jit)] {
        if let Some(why) = &m.stopped {
            println!("    {label}: {why}");
            problems.push(format!("{name} {label}: {why}"));
        }
        if m.unstable {
            println!("    {label}: stdout differed between runs");
            problems.push(format!("{name} {label}: stdout differed between runs"));
        }
    }
    if let (Some(a), Some(b)) = (&interp.stdout, &jit.stdout) {
        if a != b {
            let diff = first_difference(a, b);
            println!("    !!!!! MISMATCH: --no-jit and JIT stdout differ, {diff}");
            problems.push(format!("{name}: MISMATCH between --no-jit and JIT, {diff}"));
        }
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn geomean(ratios: &[f64]) -> Option<f64> {
    (!ratios.is_empty()).then(|| (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
}

/// Copy of `src` with the integer answered after the "SIZE PARAMETER" comment multiplied by
/// `factor`, and the old and new sizes; `None` when there is no such marker.
fn scale_source(src: &str, factor: u64) -> Option<(String, u64, u64)> {
    let lines: Vec<&str> = src.split('\n').collect();
    let marker = lines.iter().position(|l| l.contains("SIZE PARAMETER"))?;
    for (i, line) in lines.iter().enumerate().skip(marker) {
        if line.trim_end_matches('\r') == "!" {
            return None; // end of the method chunk
        }
        let body = line.trim();
        let Some(num) = body.strip_prefix('^').map(str::trim) else { continue };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let old: u64 = num.parse().ok()?;
        let new = old.checked_mul(factor)?;
        let at = line.find('^')? + line[line.find('^')?..].find(num)?;
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[i] = format!("{}{new}{}", &line[..at], &line[at + num.len()..]);
        return Some((out.join("\n"), old, new));
    }
    None
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("jit_ratio: {e}");
            std::process::exit(2);
        }
    };
    let found = match find_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let tmp = std::env::temp_dir().join(format!("tracevm-jit-ratio-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        eprintln!("jit_ratio: cannot create {}: {e}", tmp.display());
        std::process::exit(1);
    }
    let age = std::fs::metadata(&found).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    // Measure a private copy, so a concurrent `cargo build` cannot swap binaries mid-table.
    let bin = tmp.join("tracevm");
    let bin = match std::fs::copy(&found, &bin) {
        Ok(_) => bin,
        Err(e) => {
            eprintln!("jit_ratio: cannot copy the binary ({e}); measuring it in place");
            found.clone()
        }
    };
    let total = Instant::now();
    let age = age.map_or(String::new(), |a| format!(", built {:.0} min ago", a.as_secs_f64() / 60.0));
    println!("tracevm: JIT vs interpreter, whole-process wall time");
    println!("binary {}{age}", found.display());
    println!(
        "best of up to {} alternating runs per mode; per program budget {} s, per run timeout {} s",
        o.runs,
        o.budget.as_secs_f64(),
        o.timeout.as_secs_f64()
    );
    let mut problems = Vec::new();

    // Start-up: cheap, so more runs, and no budget.
    let startup_runs = o.runs * 4;
    let (si, sj) = compare(&bin, &["run"], &["-e", "3 + 4"], startup_runs, Duration::MAX, o.timeout);
    println!("\nstart-up: run -e '3 + 4' (best of {startup_runs})");
    println!("  --no-jit {:>8} s", si.cell());
    println!("  JIT      {:>8} s", sj.cell());
    for m in [&si, &sj] {
        if m.stdout.as_deref().is_some_and(|s| s != b"7\n") {
            println!("    unexpected output {:?}", String::from_utf8_lossy(m.stdout.as_deref().unwrap_or_default()));
        }
    }
    notes(&si, &sj, &mut problems, "start-up");

    let shared = Path::new(MANIFEST_DIR).join("../shared/bench");
    let mut programs: Vec<PathBuf> = match std::fs::read_dir(&shared) {
        Ok(d) => {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "st")).collect()
        }
        Err(e) => {
            eprintln!("jit_ratio: cannot read {}: {e}", shared.display());
            Vec::new()
        }
    };
    programs.sort();
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if !o.filter.is_empty() {
        programs.retain(|p| o.filter.contains(&stem(p)));
    }

    println!("\n../shared/bench programs as they are");
    println!(
        "{:<10} {:>10} {:>10} {:>8} {:>5}  {:<10} {:<6}",
        "program", "interp s", "JIT s", "ratio", "runs", "interp=JIT", "=.out"
    );
    let mut ratios = Vec::new();
    for p in &programs {
        let name = stem(p);
        let file = p.to_string_lossy();
        let (interp, jit) = compare(&bin, &["run"], &[&file], o.runs, o.budget, o.timeout);
        let r = ratio(&interp, &jit);
        if same_output(&interp, &jit) == "yes" {
            ratios.extend(r);
        }
        let expected = std::fs::read(p.with_extension("out")).ok();
        let matches_out = match (&expected, &interp.stdout, &jit.stdout) {
            (None, _, _) => "no .out",
            (Some(e), Some(a), Some(b)) if a == e && b == e => "yes",
            (Some(e), a, b) if a.as_ref().is_some_and(|a| a != e) || b.as_ref().is_some_and(|b| b != e) => "DIFFERS",
            _ => "-",
        };
        println!(
            "{name:<10} {:>10} {:>10} {:>8} {:>5}  {:<10} {:<6}",
            interp.cell(),
            jit.cell(),
            ratio_cell(r),
            interp.runs.min(jit.runs),
            same_output(&interp, &jit),
            matches_out
        );
        if matches_out == "DIFFERS" {
            let which = |m: &Mode| if m.stdout == expected { "same" } else { "differs" };
            let detail = format!("--no-jit {}, JIT {}", which(&interp), which(&jit));
            println!("    stdout differs from {name}.out ({detail})");
            problems.push(format!("{name}: stdout differs from {name}.out ({detail})"));
        }
        notes(&interp, &jit, &mut problems, &name);
    }
    if let Some(g) = geomean(&ratios) {
        println!("{:<10} {:>10} {:>10} {:>8}", "geomean", "", "", format!("{g:.2}x"));
    }

    println!("\nlarger sizes: SIZE PARAMETER x{} (copies in {})", o.scale, tmp.display());
    println!(
        "{:<10} {:>16} {:>10} {:>10} {:>8} {:>5}  {:<10}",
        "program", "size", "interp s", "JIT s", "ratio", "runs", "interp=JIT"
    );
    let mut ratios = Vec::new();
    let mut skipped = Vec::new();
    for p in &programs {
        let name = stem(p);
        let Some((scaled, old, new)) = std::fs::read_to_string(p).ok().and_then(|s| scale_source(&s, o.scale)) else {
            skipped.push(name);
            continue;
        };
        let copy = tmp.join(format!("{name}.st"));
        if let Err(e) = std::fs::write(&copy, scaled) {
            println!("{name:<10} cannot write {}: {e}", copy.display());
            continue;
        }
        let file = copy.to_string_lossy();
        let (interp, jit) = compare(&bin, &["run"], &[&file], o.runs, o.budget, o.timeout);
        let r = ratio(&interp, &jit);
        if same_output(&interp, &jit) == "yes" {
            ratios.extend(r);
        }
        println!(
            "{name:<10} {:>16} {:>10} {:>10} {:>8} {:>5}  {:<10}",
            format!("{old} -> {new}"),
            interp.cell(),
            jit.cell(),
            ratio_cell(r),
            interp.runs.min(jit.runs),
            same_output(&interp, &jit)
        );
        notes(&interp, &jit, &mut problems, &format!("{name} x{}", o.scale));
    }
    if let Some(g) = geomean(&ratios) {
        println!("{:<10} {:>16} {:>10} {:>10} {:>8}", "geomean", "", "", "", format!("{g:.2}x"));
    }
    if !skipped.is_empty() {
        println!("no SIZE PARAMETER method, not scaled: {}", skipped.join(", "));
    }

    println!("\nratio = interpreter time / JIT time (above 1: the JIT is faster); geomean over rows with equal output");
    if problems.is_empty() {
        println!("all runs succeeded; --no-jit and JIT printed the same stdout everywhere");
    } else {
        println!("\n!!!!! {} problem(s):", problems.len());
        for p in &problems {
            println!("  {p}");
        }
    }
    println!("total {:.0} s", total.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&tmp);
}
