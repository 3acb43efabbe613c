//! Error paths and command-line behaviour of the `tracevm` binary: bad, truncated and missing
//! images; missing programs; Smalltalk errors at run time (message on stderr with the Smalltalk
//! backtrace, exit 1, earlier output kept, later lines not run); file-in compile errors naming
//! the file and line; a 1,000,000-frame recursion that must complete; `--help`, `--version` and
//! usage errors (exit 2); and `File saveImage`, which may only write where `--save-image` says,
//! producing an image that boots again and keeps methods and Floats.

mod common;

use common::{
    assert_contains, assert_status, assert_stdout, base_image, describe, run, run_st, stderr, stdout, TempDir,
};

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------------------------
// Images

/// A file of text is not an image: its first 4 bytes, read as the version int, are not 1.
#[test]
fn garbage_image_is_rejected_with_its_path() {
    let dir = TempDir::new();
    let img = dir.write("garbage.image", "this is not a SmallWorld image\n".repeat(200));
    let out = run(&["run", "--image", path_str(&img), "-e", "3 + 4"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", path_str(&img));
    assert_contains(&out, "stderr", "bad image");
    assert_contains(&out, "stderr", "version");
    assert!(out.stdout.is_empty(), "nothing may run: {}", describe(&out));
}

/// The right version header followed by garbage records is rejected as a bad image too.
#[test]
fn garbage_records_after_a_valid_header_are_rejected() {
    let dir = TempDir::new();
    let mut bytes = vec![0, 0, 0, 1];
    bytes.extend(b"\x00\x00\x00\x05\x00\x00\x00\x09garbage garbage garbage".iter());
    let img = dir.write("records.image", bytes);
    let out = run(&["run", "--image", path_str(&img), "-e", "3 + 4"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", path_str(&img));
    assert_contains(&out, "stderr", "bad image");
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

/// An empty file is not an image.
#[test]
fn empty_image_is_rejected() {
    let dir = TempDir::new();
    let img = dir.write("empty.image", b"");
    let out = run(&["run", "--image", path_str(&img), "-e", "3 + 4"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", path_str(&img));
    assert_contains(&out, "stderr", "bad image");
}

/// The first 100000 bytes of the real image end inside a record.
#[test]
fn truncated_image_is_reported_as_truncated() {
    let data = std::fs::read(base_image()).expect("the base image is in ../shared/images");
    assert!(data.len() > 100_000);
    let dir = TempDir::new();
    let img = dir.write("truncated.image", &data[..100_000]);
    let out = run(&["run", "--image", path_str(&img), "-e", "3 + 4"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", path_str(&img));
    assert_contains(&out, "stderr", "truncated");
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

#[test]
fn missing_image_file_is_named() {
    let dir = TempDir::new();
    let img = dir.file("no-such.image");
    let out = run(&["run", "--image", path_str(&img), "-e", "3 + 4"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", path_str(&img));
    assert_contains(&out, "stderr", "cannot read image");
}

/// The default image is found without `--image` (from the crate root, `../shared/images`).
#[test]
fn default_image_boots() {
    let out = run(&["run", "-e", "3 + 4"], None);
    assert_stdout(&out, "7\n");
}

// ---------------------------------------------------------------------------------------------
// Programs

#[test]
fn missing_program_file_is_named() {
    let dir = TempDir::new();
    let prog = dir.file("no-such-program.st");
    let out = run(&["run", path_str(&prog)], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "no-such-program.st");
    assert_contains(&out, "stderr", "cannot read");
}

/// Every program is read before any runs (cli: "so a missing file fails fast"): the first,
/// valid program must not have printed anything.
#[test]
fn missing_second_program_stops_before_running_the_first() {
    let dir = TempDir::new();
    let good = dir.write("good.st", "EVAL Transcript show: 'ran'\n");
    let missing = dir.file("missing.st");
    let out = run(&["run", path_str(&good), path_str(&missing)], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "missing.st");
    assert_eq!(stdout(&out), "", "{}", describe(&out));
}

/// `nil foo`: doesNotUnderstand: → the headless `Object>>error:` → "Error: nil does not
/// understand foo" and the Smalltalk backtrace (innermost first, ending in the doIt method
/// `doItCommand`), exit 1.
#[test]
fn does_not_understand_via_eval() {
    let out = run(&["run", "-e", "nil foo"], None);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("Error:"), "{}", describe(&out));
    assert!(err.contains("does not understand foo"), "{}", describe(&out));
    assert!(err.contains("nil does not understand foo"), "{}", describe(&out));
    assert!(
        err.contains("doesNotUnderstand:[Undefined,Array,]"),
        "backtrace line of the DNU handler: {}",
        describe(&out)
    );
    assert!(err.lines().any(|l| l.starts_with("doItCommand")), "backtrace line for the doIt: {}", describe(&out));
    assert_eq!(stdout(&out), "", "{}", describe(&out));
}

/// `self error:` in the third EVAL: lines 1–2 have printed, line 4 never runs.
#[test]
fn error_in_eval_keeps_earlier_output_and_stops() {
    let (_dir, prog) = common::write_st(
        "boom.st",
        "EVAL Transcript show: 'before'\n\
         EVAL Transcript show: 1 + 1\n\
         EVAL self error: 'boom'\n\
         EVAL Transcript show: 'after'\n",
    );
    let out = run(&["run", path_str(&prog)], None);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "before\n2\n", "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.starts_with("Error: boom\n"), "{}", describe(&out));
    assert!(err.contains("doItCommand"), "{}", describe(&out));
    assert!(err.contains("boom.st:3"), "location of the EVAL: {}", describe(&out));
}

/// A compile error in a METHOD chunk names the file and the line of the `METHOD` header
/// (line 2 here); output of the EVAL before it is kept and the EVAL after it does not run.
#[test]
fn compile_error_in_method_names_file_and_header_line() {
    let (_dir, prog) = common::write_st(
        "broken.st",
        "EVAL Transcript show: 'first'\n\
         METHOD SmallInt\n\
         broken\n\
         \x20 ^ self + + )\n\
         !\n\
         EVAL Transcript show: 'after'\n",
    );
    let out = run(&["run", path_str(&prog)], None);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "first\n", "{}", describe(&out));
    assert_contains(&out, "stderr", "broken.st:2:");
    assert_contains(&out, "stderr", "cannot compile");
}

/// A compile error in an EVAL expression names the file and line of the EVAL.
#[test]
fn compile_error_in_eval_names_file_and_line() {
    let (_dir, prog) = common::write_st("badeval.st", "EVAL Transcript show: 1\nEVAL 3 +\nEVAL Transcript show: 2\n");
    let out = run(&["run", path_str(&prog)], None);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "1\n", "{}", describe(&out));
    assert_contains(&out, "stderr", "badeval.st:2:");
    assert_contains(&out, "stderr", "cannot compile");
}

#[test]
fn unknown_class_in_method_is_named() {
    let out = run_st("METHOD NoSuchClassHere\nfoo\n  ^ 1\n!\n", &[]);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "NoSuchClassHere");
    assert_contains(&out, "stderr", "unknown class");
}

/// A METHOD chunk without its closing `!` line is an error naming the header line (2), not a
/// silently dropped method.
#[test]
fn unterminated_method_chunk_is_an_error() {
    let out = run_st("EVAL Transcript show: 1\nMETHOD SmallInt\nfoo\n  ^ 1\n", &[]);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "1\n", "{}", describe(&out));
    assert_contains(&out, "stderr", "prog.st:2");
    assert_contains(&out, "stderr", "not ended");
}

/// Non-tail recursion 1,000,000 method activations deep completes (contexts live on the heap,
/// not the native stack).
#[test]
fn million_frame_recursion_completes() {
    let started = std::time::Instant::now();
    let out = run_st(
        "METHOD SmallInt\n\
         down\n\
         \x20 self = 0 ifTrue: [ ^ 0 ].\n\
         \x20 ^ (self - 1) down + 1\n\
         !\n\
         EVAL Transcript show: 1000000 down\n",
        &[],
    );
    eprintln!("1000000 down: {:.2} s", started.elapsed().as_secs_f64());
    assert_stdout(&out, "1000000\n");
}

/// `SmallWorld quit` (primitive 117) exits with status 0 at once: later EVALs do not run.
#[test]
fn smalltalk_quit_exits_zero_immediately() {
    let out = run_st("EVAL Transcript show: 1\nEVAL SmallWorld quit\nEVAL Transcript show: 2\n", &[]);
    assert_stdout(&out, "1\n");
}

// ---------------------------------------------------------------------------------------------
// Command line

#[test]
fn eval_prints_the_print_string() {
    let out = run(&["run", "-e", "3 + 4"], None);
    assert_stdout(&out, "7\n");
}

/// Files run first, then `-e`, in the same VM: the expression sees what the file defined.
#[test]
fn eval_runs_after_files() {
    let out = run_st("METHOD SmallInt\ntwice\n  ^ self * 2\n!\nEVAL Transcript show: 'loaded'\n", &["-e", "21 twice"]);
    assert_stdout(&out, "loaded\n42\n");
}

#[test]
fn help_mentions_run() {
    let out = run(&["--help"], None);
    assert_status(&out, 0);
    assert_contains(&out, "stdout", "run");
    assert_contains(&out, "stdout", "Usage");
    let out = run(&["run", "--help"], None);
    assert_status(&out, 0);
    assert_contains(&out, "stdout", "--image");
    assert_contains(&out, "stdout", "--save-image");
    assert_contains(&out, "stdout", "--eval");
}

#[test]
fn version_prints_name_and_version() {
    let out = run(&["--version"], None);
    assert_status(&out, 0);
    assert_contains(&out, "stdout", "tracevm");
    assert_contains(&out, "stdout", env!("CARGO_PKG_VERSION"));
}

#[test]
fn run_without_files_or_eval_is_a_usage_error() {
    let out = run(&["run"], None);
    assert_status(&out, 2);
    assert!(!out.stderr.is_empty(), "{}", describe(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn missing_subcommand_and_unknown_option_are_usage_errors() {
    let out = run(&[], None);
    assert_status(&out, 2);
    let out = run(&["run", "--no-such-option", "-e", "3"], None);
    assert_status(&out, 2);
    assert_contains(&out, "stderr", "--no-such-option");
}

// ---------------------------------------------------------------------------------------------
// Saving images

/// Without `--save-image`, `File saveImage` is a Smalltalk error: exit 1, the image the VM
/// booted from is unchanged, and no file appears.
#[test]
fn save_image_without_target_is_an_error_and_writes_nothing() {
    let dir = TempDir::new();
    let original = std::fs::read(base_image()).expect("base image");
    let img = dir.write("boot.image", &original);
    let prog =
        dir.write("save.st", "EVAL Transcript show: 'before'\nEVAL File saveImage\nEVAL Transcript show: 'after'\n");
    let out = run(&["run", "--image", path_str(&img), path_str(&prog)], None);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "before\n", "{}", describe(&out));
    assert_contains(&out, "stderr", "Error:");
    assert_contains(&out, "stderr", "save-image");
    assert!(std::fs::read(&img).expect("boot image") == original, "the boot image was modified");
    assert_eq!(dir.entries(), ["boot.image", "save.st"], "no new files");
}

/// `File exportImage:` naming the image the VM booted from is refused (without `--save-image`
/// naming it), so a program cannot overwrite it by accident; another name is written.
#[test]
fn export_image_never_overwrites_the_boot_image() {
    let dir = TempDir::new();
    let original = std::fs::read(base_image()).expect("base image");
    let img = dir.write("boot.image", &original);
    let other = dir.file("other.image");
    let src = format!("EVAL File exportImage: '{}'\nEVAL File exportImage: '{}'\n", path_str(&other), path_str(&img));
    let prog = dir.write("export.st", src);
    let out = run(&["run", "--image", path_str(&img), path_str(&prog)], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "refusing to overwrite");
    assert!(std::fs::read(&img).expect("boot image") == original, "the boot image was modified");
    let exported = std::fs::read(&other).expect("the other name was written");
    assert!(tracevm::image::load(&exported).is_ok(), "the exported image loads");
}

/// With `--save-image`, `File saveImage` writes a loadable image that keeps a method defined
/// before the save, a Float stored in a class variable (tracevm's own images keep Floats, where
/// the Java VM would write nil) and a Float literal in a compiled method.
#[test]
fn save_image_writes_a_bootable_image_keeping_methods_and_floats() {
    let dir = TempDir::new();
    let saved = dir.file("saved.image");
    let prog = dir.write(
        "save.st",
        "METHOD SmallInt\n\
         triple\n\
         \x20 ^ self * 3\n\
         !\n\
         EVAL Class addNewClass: (Object subclass: 'FloatBox' variables: '' classVariables: 'stored')\n\
         META FloatBox\n\
         store: x\n\
         \x20 stored <- x\n\
         !\n\
         META FloatBox\n\
         stored\n\
         \x20 ^ stored\n\
         !\n\
         META FloatBox\n\
         literal\n\
         \x20 ^ 2.25\n\
         !\n\
         EVAL FloatBox store: 2.5\n\
         EVAL File saveImage\n\
         EVAL Transcript show: 'saved'\n",
    );
    let out = run(&["run", "--save-image", path_str(&saved), path_str(&prog)], None);
    assert_status(&out, 0);
    assert!(stdout(&out).ends_with("saved\n"), "the file-in goes on after the save: {}", describe(&out));
    let bytes = std::fs::read(&saved).expect("the saved image exists");
    assert_eq!(&bytes[..4], &[0, 0, 0, 1], "version 1 header");

    let img = path_str(&saved);
    assert_stdout(&run(&["run", "--image", img, "-e", "5 triple"], None), "15\n");
    assert_stdout(&run(&["run", "--image", img, "-e", "FloatBox stored"], None), "2.5\n");
    assert_stdout(&run(&["run", "--image", img, "-e", "FloatBox stored class"], None), "Float\n");
    assert_stdout(&run(&["run", "--image", img, "-e", "FloatBox stored * 2"], None), "5.0\n");
    assert_stdout(&run(&["run", "--image", img, "-e", "FloatBox literal"], None), "2.25\n");
    // The reloaded image still runs ordinary programs and reports errors the headless way.
    let out = run(&["run", "--image", img, "-e", "nil foo"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "nil does not understand foo");
}

/// `3 - nil`: `SmallInt>>-` forwards to `nil subtractFromSmallInt: 3`, which nil does not
/// understand. The VM runs forwarding methods without a context only when the whole chain
/// succeeds, so the error's backtrace still shows the `-` frame, as the reference VM's does.
#[test]
fn errors_under_forwarding_methods_keep_their_frames() {
    let out = run(&["run", "-e", "3 - nil"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "Error: nil does not understand subtractFromSmallInt:");
    let err = stderr(&out);
    let frames: Vec<&str> = err.lines().map(str::trim_end).collect();
    let dnu = frames.iter().position(|l| l.starts_with("doesNotUnderstand:")).expect("DNU frame");
    assert_eq!(frames.get(dnu + 1).copied(), Some("-[SmallInt,Undefined,]"), "{err}");
    assert_eq!(frames.get(dnu + 2).copied(), Some("doItCommand[Undefined,]"), "{err}");
}

/// Unbounded recursion grows the heap (contexts live there); past `--max-heap` the run stops
/// with a clear message and status 1 instead of exhausting the machine's memory.
#[test]
fn runaway_recursion_stops_at_the_heap_limit() {
    let out =
        run_st("METHOD SmallInt\nforever\n  ^ (self + 1) forever + 1\n!\nEVAL 1 forever\n", &["--max-heap", "64"]);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "out of memory");
    assert_contains(&out, "stderr", "--max-heap");
}

/// A host fault (here primitive 30 given a bad index) is reported by sending `error:`. When a
/// program's `error:` answers instead of stopping, the program goes on with that answer, and a
/// later fault is reported the same way: each report has returned before the next fault. (Before,
/// the second fault of one evaluation was taken for a fault inside the first report: fatal.)
#[test]
fn a_fault_after_an_error_that_answered_is_reported_again() {
    let out = run_st(
        "EVAL Class addNewClass: (Object subclass: 'Faults' variables: '' classVariables: '')
METHOD Object
error: str
   ^ nil
!
META Faults
get: i
   ^ <30 (Array new: 3) i>
!
META Faults
run
   | s |
   s <- 0.
   (self get: 4) isNil ifTrue: [s <- s + 1].
   (self get: 5) isNil ifTrue: [s <- s + 10].
   ^ s
!
EVAL Transcript show: Faults run printString
",
        &[],
    );
    assert_stdout(&out, "11\n");
}

/// A fault inside the `error:` that reports a fault would report itself forever: it is fatal,
/// with both faults' context in the message, and status 1.
#[test]
fn a_fault_while_reporting_a_fault_is_fatal() {
    let out = run_st(
        "METHOD Object
error: str
   ^ <30 (Array new: 1) 5>
!
EVAL Transcript show: (<30 (Array new: 3) 4>) printString
",
        &[],
    );
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "index 5 out of range 1..1 (while reporting an earlier error)");
}

/// A Block whose method slot Smalltalk overwrote is refused by `value:` with an error, not
/// run (its context is loaded unchecked, as one the VM made: the VM panicked on it).
#[test]
fn a_block_whose_method_was_overwritten_is_an_error() {
    for bad in ["7", "nil", "(3 @ 4)"] {
        let out = run_st(
            &format!(
                "METHOD Object
broken | b |
   b <- [:x | x + 1].
   Object in: b at: 1 put: {bad}.
   ^ b value: 3
!
EVAL Transcript show: nil broken
"
            ),
            &[],
        );
        assert_status(&out, 1);
        assert_contains(&out, "stderr", "Error: primitive 8: malformed block");
    }
}

/// A method whose temporarySize slot was set absurdly large is refused when sent, instead of
/// asking for a 16 GB temporaries Array (which panicked).
#[test]
fn a_method_with_an_absurd_temporary_size_is_an_error() {
    let out = run_st(
        "METHOD Object
mt | a |
   a <- 3.
   ^ a
!
EVAL Object in: (Object methods inject: nil into: [:a :m | m name = 'mt' ifTrue: [m] ifFalse: [a]]) at: 5 put: 2000000000
EVAL Transcript show: nil mt
",
        &[],
    );
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "Error: sent method's temporarySize 2000000000 is out of range");
}

/// An expression of 70 000 binary messages in a row: the native compiler leaves it to the
/// image's (its parse tree would overflow the native stack, which aborted the VM), and it runs.
#[test]
fn a_very_long_message_chain_compiles() {
    let source = format!("EVAL Transcript show: 1{}\n", " + 1".repeat(70_000));
    let out = run_st(&source, &[]);
    assert_stdout(&out, "70001\n");
}

/// 30 000 nested literal Arrays: the native compiler leaves them to the image's (its recursion
/// overflowed the native stack), and they run.
#[test]
fn deeply_nested_literal_arrays_compile() {
    let n = 30_000;
    let source = format!("EVAL Transcript show: ({}{} size) printString\n", "#(".repeat(n), ")".repeat(n));
    let out = run_st(&source, &[]);
    assert_stdout(&out, "1\n");
}

/// A context whose sender slot holds 7, run by primitive 6: its return faults, and reporting
/// the fault would walk the broken chain and fault again, reporting itself until memory ran out.
/// It is fatal at once.
#[test]
fn a_fault_in_a_broken_context_chain_is_fatal() {
    let out = run_st(
        "METHOD Object
zq: x
   | t |
   t <- x * 2.
   ^ t + 1
!
METHOD Object
zr
   | o |
   o <- Context new.
   Object in: o at: 1 put: (Object methods inject: nil into: [:a :m | m name = 'zq:' ifTrue: [m] ifFalse: [a]]).
   Object in: o at: 2 put: (Array new: 2).
   (Object in: o at: 2) at: 2 put: 5.
   Object in: o at: 3 put: (Array new: 1).
   Object in: o at: 4 put: (Array new: 9).
   Object in: o at: 5 put: 0.
   Object in: o at: 6 put: 0.
   Object in: o at: 7 put: 7.
   ^ <6 o>
!
EVAL Transcript show: nil zr
",
        &["--max-heap", "64"],
    );
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "the context chain is broken, so it cannot be reported");
}

/// A send whose selector literal Smalltalk replaced by a SmallInt, in a loop the JIT traces:
/// the recorder gives up on it (it panicked naming the selector), and the run prints what the
/// interpreter prints (`error:` answers 0 here).
#[test]
fn a_selector_replaced_by_a_small_integer_is_sent_as_the_interpreter_sends_it() {
    let source = "METHOD Object
error: str
   ^ 0
!
METHOD Object
zq: x
   ^ x * 2
!
METHOD Object
run
   | s |
   s <- 0.
   1 to: 300 do: [:i | s <- s + (nil zq: i)].
   ^ s
!
EVAL (Object methods inject: nil into: [:a :m | m name = 'zq:' ifTrue: [m] ifFalse: [a]]) literals at: 1 put: 3
EVAL Transcript show: nil run
";
    for flags in [&["--no-jit"][..], &[], &["--jit-threshold", "1"], &["--jit-force-exits"]] {
        assert_stdout(&run_st(source, flags), "0\n");
    }
}
