//! The command line: argument parsing (clap), image selection, running programs, and reporting
//! errors — once, here, at the edge.
//!
//! Exit status: 0 on success; 1 when a program fails (Smalltalk error, compile error, missing
//! file, bad image); 2 for bad usage; `SmallWorld quit` exits with 0.

use crate::boot::{self, RunError};
use crate::interp::{Vm, VmError};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Name of the base image, looked for in `../shared/images/`.
pub const BASE_IMAGE: &str = "SmallWorld-2015.image";

#[derive(Parser, Debug)]
#[command(name = "tracevm", version, about = "A virtual machine for SmallWorld 2015 (Little Smalltalk) images")]
pub struct Cli {
    /// Print VM statistics (sends, inline-cache misses, collections, heap; traces compiled,
    /// recording aborts by reason, trace entries and exits, JIT time) to stderr at exit.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Describe every trace (start, bytecodes recorded, IR before and after optimisation with its
    /// snapshots, machine code) and every aborted recording, to stderr or to FILE.
    #[arg(long, global = true, value_name = "FILE", num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    pub dump_traces: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// File in programs (in the image's file-in format) in order, or evaluate an expression.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Image to boot. Default: $TRACEVM_IMAGE, else ../shared/images/SmallWorld-2015.image.
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Where `File saveImage` (primitive 116) may write. Without it, saveImage is an error, so
    /// the image the VM started from is never overwritten by accident.
    #[arg(long, value_name = "PATH")]
    pub save_image: Option<PathBuf>,
    /// Stop with "out of memory" when live objects exceed MIB mebibytes (runaway recursion or
    /// allocation otherwise grows until the machine runs out of memory).
    #[arg(long, value_name = "MIB", default_value_t = crate::interp::DEFAULT_MAX_HEAP_MIB)]
    pub max_heap: usize,
    /// Interpreter only: never record or run traces.
    #[arg(long)]
    pub no_jit: bool,
    /// Back edges of a loop before it is recorded as a trace (in a loop's first run, up to 4 times as many while earlier first-run traces have not paid off).
    #[arg(long, value_name = "N", default_value_t = crate::jit::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(u32).range(1..))]
    pub jit_threshold: u32,
    /// Debugging: every guard of every trace fails the first time it runs, so every
    /// deoptimisation path runs at least once (also TRACEVM_JIT_FORCE_EXITS=1).
    #[arg(long)]
    pub jit_force_exits: bool,
    /// Compile with the image's own Smalltalk compiler, run by the interpreter (milliseconds per
    /// method). Without it, tracevm's native port of that compiler compiles whatever it builds
    /// exactly as the image would, and hands the rest (and every compile error) to the image's.
    #[arg(long)]
    pub image_compiler: bool,
    /// Evaluate EXPR (after filing in any FILEs) and print the printString of its result.
    #[arg(short = 'e', long = "eval", value_name = "EXPR", allow_hyphen_values = true)]
    pub eval: Option<String>,
    /// Programs to file in, in order.
    #[arg(value_name = "FILE.st")]
    pub files: Vec<PathBuf>,
}

/// Finds the image to boot.
pub fn resolve_image(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("TRACEVM_IMAGE") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = vec![PathBuf::from("../shared/images").join(BASE_IMAGE)];
    if let Ok(exe) = std::env::current_exe() {
        // target/release/tracevm → <repo>/../shared/images
        if let Some(repo) = exe.parent().and_then(|p| p.parent()).and_then(|p| p.parent()) {
            candidates.push(repo.join("../shared/images").join(BASE_IMAGE));
        }
    }
    candidates.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images")).join(BASE_IMAGE));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        format!("no image found: pass --image PATH or set TRACEVM_IMAGE (looked for ../shared/images/{BASE_IMAGE})")
    })
}

fn report(vm_err: &mut dyn Write, e: &RunError) -> i32 {
    match e {
        RunError::Runtime { err: VmError::Quit(code), .. } => return *code,
        RunError::Runtime { at, err } => {
            match err {
                VmError::Smalltalk { message, .. } => {
                    let _ = writeln!(vm_err, "Error: {message}");
                }
                other => {
                    let _ = writeln!(vm_err, "Error: {other}");
                }
            }
            if let Some(bt) = e.backtrace() {
                let _ = writeln!(vm_err, "{}", bt.trim_end());
            }
            if let Some(at) = at {
                let _ = writeln!(vm_err, "  at {at}");
            }
        }
        other => {
            let _ = writeln!(vm_err, "tracevm: {other}");
        }
    }
    1
}

/// Runs the `run` subcommand; answers the exit status.
pub fn run(args: &RunArgs, stats: bool, dump: Option<&PathBuf>) -> i32 {
    let mut stderr = std::io::stderr();
    let image_path = match resolve_image(args.image.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(stderr, "tracevm: {e}");
            return 1;
        }
    };
    let data = match std::fs::read(&image_path) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(stderr, "tracevm: cannot read image {}: {e}", image_path.display());
            return 1;
        }
    };
    // Read every program before running anything, so a missing file fails fast.
    let mut programs = Vec::new();
    for f in &args.files {
        match std::fs::read(f) {
            Ok(src) => programs.push((f.display().to_string(), src)),
            Err(e) => {
                let _ = writeln!(stderr, "tracevm: cannot read {}: {e}", f.display());
                return 1;
            }
        }
    }
    let force_env = std::env::var("TRACEVM_JIT_FORCE_EXITS").is_ok_and(|v| !v.is_empty() && v != "0");
    let jit = crate::jit::JitOptions {
        enabled: !args.no_jit,
        threshold: args.jit_threshold,
        force_exits: args.jit_force_exits || force_env,
        ..Default::default()
    };
    // Opened before anything runs; refuses to write over one of the inputs.
    let dump_sink: Option<Box<dyn Write>> = match dump {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stderr())),
        Some(p) => {
            let clobbers = |q: &PathBuf| q.canonicalize().ok().is_some_and(|q| p.canonicalize().ok() == Some(q));
            if clobbers(&image_path) || args.files.iter().any(clobbers) {
                let _ = writeln!(stderr, "tracevm: --dump-traces would overwrite an input: {}", p.display());
                return 1;
            }
            match std::fs::File::create(p) {
                Ok(f) => Some(Box::new(std::io::BufWriter::new(f))),
                Err(e) => {
                    let _ = writeln!(stderr, "tracevm: cannot write {}: {e}", p.display());
                    return 1;
                }
            }
        }
    };
    let mut vm = match boot::boot_with(&data, jit) {
        Ok(vm) => vm,
        Err(e) => {
            let _ = writeln!(stderr, "tracevm: bad image {}: {e}", image_path.display());
            return 1;
        }
    };
    vm.out = Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()));
    vm.jit.dump = dump_sink;
    if args.image_compiler {
        vm.compiler_watch.disable();
    }
    vm.save_target.path = args.save_image.clone();
    vm.max_heap_bytes = args.max_heap.saturating_mul(1 << 20);
    vm.save_target.boot_image = Some(image_path.clone());
    let status = run_programs(&mut vm, &programs, args.eval.as_deref());
    let _ = vm.out.flush();
    if let Some(d) = vm.jit.dump.as_mut() {
        let _ = d.flush();
    }
    if stats {
        print_stats(&vm);
    }
    // The process ends here: handing every heap page and trace back one by one would only
    // delay the exit (about 1 ms). Output is flushed above; the OS reclaims the rest.
    std::mem::forget(vm);
    status
}

fn run_programs(vm: &mut Vm, programs: &[(String, Vec<u8>)], eval: Option<&str>) -> i32 {
    for (name, src) in programs {
        if let Err(e) = boot::file_in(vm, src, name) {
            let _ = vm.out.flush();
            return report(&mut std::io::stderr(), &e);
        }
    }
    if let Some(expr) = eval {
        let printed = boot::eval(vm, expr, None).and_then(|v| boot::print_string(vm, v));
        match printed {
            Ok(s) => {
                let _ = writeln!(vm.out, "{s}");
            }
            Err(e) => {
                let _ = vm.out.flush();
                return report(&mut std::io::stderr(), &e);
            }
        }
    }
    0
}

fn print_stats(vm: &Vm) {
    let c = &vm.counters;
    eprintln!("tracevm stats:");
    eprintln!("  sends                {}", c.sends);
    eprintln!("    without a context  {}", c.quick_sends);
    eprintln!("  inline-cache misses  {}", c.ic_misses);
    eprintln!("  cache flushes        {}", c.cache_flushes);
    eprintln!("  contexts recycled    {}", c.recycled_contexts);
    eprintln!("  collections          {} ({:.1} ms)", c.gc_count, c.gc_time_ns as f64 / 1e6);
    eprintln!("  heap reserved        {} KiB", vm.heap.reserved_bytes() / 1024);
    eprintln!("  words allocated      {}", vm.heap.total_allocated_words());
    eprintln!("  elapsed              {:.3} s", vm.started.elapsed().as_secs_f64());
    if vm.jit.options.enabled {
        eprint!("{}", vm.jit.report());
    } else {
        eprintln!("jit: off (--no-jit)");
    }
}

/// The binary's entry point; answers the exit status.
pub fn main() -> i32 {
    // Logging is off unless RUST_LOG asks for it; then no subscriber is built at all (its
    // set-up showed in start-up profiles).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => {
            if args.files.is_empty() && args.eval.is_none() {
                eprintln!("tracevm: nothing to run: give FILE.st arguments or -e EXPR");
                return 2;
            }
            run(args, cli.stats, cli.dump_traces.as_ref())
        }
    }
}
