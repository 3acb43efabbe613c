//! Small programs checking language behaviour documented in `../shared/SMALLWORLD-VM.md`
//! against the reference semantics (the Java SmallWorld VM on the sw2015 image), plus the
//! deviations tracevm documents (§7.1 nested non-local return). Each test states the expected
//! value and why. Expressions run through `tracevm run --eval=EXPR`, which prints the
//! printString of the result; programs run as file-ins and print with `Transcript show:`.

mod common;

use common::{assert_contains, assert_eval, assert_status, assert_stdout, describe, run, run_st};

/// Runs `expr` with `-e` and asserts a Smalltalk error (exit 1) whose stderr contains `message`.
#[track_caller]
fn assert_eval_error(expr: &str, message: &str) {
    let arg = format!("--eval={expr}");
    let out = run(&["run", &arg], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "Error:");
    assert_contains(&out, "stderr", message);
    assert_eq!(out.stdout, b"", "{}", describe(&out));
}

// ---------------------------------------------------------------------------------------------
// Integers (§6)

/// `+` overflows 32 bits: opcode 11 falls back to a send, `SmallInt>>addToSmallInt:` builds
/// LargePositive. 2^31 has 10 decimal digits, so no leading zero (see the next test).
#[test]
fn addition_overflows_into_large_positive() {
    assert_eval("2147483647 + 1", "2147483648");
    assert_eval("(2147483647 + 1) class", "LargePositive");
    assert_eval("2147483646 + 1", "2147483647");
    assert_eval("(2147483646 + 1) class", "SmallInt");
}

/// `*` reaches prim 15, which answers nil on overflow, so the image multiplies Large integers.
/// `LargePositive>>printString` prints base-100 digits, each as two decimal digits except that
/// the most significant one also gets two: a number with an odd count of decimal digits prints
/// with a leading zero (reference output: `14!` prints `087178291200` in bench/largeint.out;
/// §6: `1000000 * 1000000` → `01000000000000`).
#[test]
fn multiplication_overflows_into_large_positive_with_the_leading_zero_quirk() {
    assert_eval("(100000 * 100000) class", "LargePositive");
    assert_eval("100000 * 100000", "010000000000");
    assert_eval("1000000 * 1000000", "01000000000000");
    assert_eval("2147483647 * 2147483647", "04611686014132420609");
    assert_eval("100000 * 100000 * 100000", "1000000000000000");
    assert_eval("46340 * 46340", "2147395600");
    assert_eval("(46340 * 46340) class", "SmallInt");
}

/// `-` reaches prim 16 (nil on overflow) and builds LargeNegative; Large results are never
/// demoted back to SmallInt (§6; bench/largeint.out `2^31 - 1 2147483647 LargePositive`).
#[test]
fn subtraction_overflow_and_no_demotion() {
    assert_eval("-2147483648 - 1", "-2147483649");
    assert_eval("(-2147483648 - 1) class", "LargeNegative");
    assert_eval("(2147483647 + 1) - 1", "2147483647");
    assert_eval("((2147483647 + 1) - 1) class", "LargePositive");
    assert_eval("(2147483647 + 1) > 2147483647", "true");
}

/// `rem:` follows the dividend's sign (Java `%`), `quo:` truncates toward zero, `//` floors.
#[test]
fn division_signs() {
    assert_eval("-7 rem: 2", "-1");
    assert_eval("7 rem: -2", "1");
    assert_eval("-7 quo: 2", "-3");
    assert_eval("7 quo: -2", "-3");
    assert_eval("-7 // 2", "-4");
    assert_eval("7 // -2", "-4");
    assert_eval("7 // 2", "3");
}

/// `quo:`/`rem:` test for zero in Smalltalk first: `error: 'division by zero'`.
#[test]
fn division_by_zero_is_a_smalltalk_error() {
    assert_eval_error("7 rem: 0", "division by zero");
    assert_eval_error("7 quo: 0", "division by zero");
}

/// `/` builds a Fraction; `gcd:` answers 1 for values ≤ 0, so `-4/2` is not reduced, and
/// fractions are never turned back into integers (§6).
#[test]
fn fractions_are_not_normalised() {
    assert_eval("4/2", "(2/1)");
    assert_eval("-4/2", "(-4/2)");
    assert_eval("(3 / 4) + (1 / 4)", "(1/1)");
}

/// `SmallInt>>=` sends `equalToSmallInt:` to the argument, which only integers implement, so
/// `3 = nil` and `3 = 3.0` raise doesNotUnderstand: (exit 1), while `3.0 = 3` is true (§6).
#[test]
fn integer_equality_with_non_integers_does_not_understand() {
    assert_eval_error("3 = nil", "nil does not understand equalToSmallInt:");
    assert_eval_error("3 = 3.0", "does not understand equalToSmallInt:");
    assert_eval("3.0 = 3", "true");
    assert_eval("3 = 3", "true");
    assert_eval("3 = (2147483647 + 1)", "false");
}

// ---------------------------------------------------------------------------------------------
// Floats (prim 59: Java `Double.toString`)

/// Shortest round-trip digits; plain notation for 1e-3 ≤ |f| < 1e7, otherwise `d.dddE±n`
/// without a `+` sign; always at least one digit after the point.
#[test]
fn float_printing_follows_java() {
    assert_eval("0.1 + 0.2", "0.30000000000000004");
    assert_eval("(1 / 3) asFloat", "0.3333333333333333");
    assert_eval("100 asFloat", "100.0");
    assert_eval("1000000 asFloat * 100", "1.0E8");
    assert_eval("10000000 asFloat", "1.0E7");
    assert_eval("9999999 asFloat", "9999999.0");
    assert_eval("(1 / 1000) asFloat", "0.001");
    assert_eval("(1 / 10000) asFloat", "1.0E-4");
    assert_eval("(0.0 - 1.0) * 0.0", "-0.0");
}

/// `asInteger` is Java's `(int)` cast: truncation toward zero.
#[test]
fn float_to_integer_truncates() {
    assert_eval("2.5 asInteger", "2");
    assert_eval("-2.5 asInteger", "-2");
    assert_eval("1.5 < 2", "true");
}

// ---------------------------------------------------------------------------------------------
// Blocks and control flow (§7)

const QUIRKS: &str = "EVAL Class addNewClass: (Object subclass: 'Quirks' variables: '' classVariables: '')
META Quirks
nested
  #(1 2) do: [:x | #(3) do: [:y | ^ y ] ].
  ^ 'fell through'
!
META Quirks
single
  #(1 2 3) do: [:x | x = 2 ifTrue: [ ^ x * 10 ] ].
  ^ 'fell through'
!
META Quirks
sumAfter | sum |
  sum <- [:n | n = 0 ifTrue: [0] ifFalse: [(sum value: n - 1) + n]].
  ^ sum value: 3
!
META Quirks
sumBefore | sum |
  sum <- [:n | n = 0 ifTrue: [0] ifFalse: [n + (sum value: n - 1)]].
  ^ sum value: 3
!
";

/// §7.1: the reference VM returns 'fell through' (the inner `^` returns from the outer block's
/// `value` send); tracevm deliberately records the home context, so the nested `^ y` returns 3
/// from the method. A `^` at depth 1 returns from the method in both VMs.
#[test]
fn nested_non_local_return_returns_from_the_home_method() {
    let out =
        run_st(&format!("{QUIRKS}EVAL Transcript show: Quirks nested\nEVAL Transcript show: Quirks single\n"), &[]);
    assert_stdout(&out, "3\n20\n");
}

/// §7.3: block arguments live in the home method's temporaries, shared by every activation of
/// the block. A recursive sum that reads `n` after the recursive call sees the innermost value
/// (0) at every level: 0 + 0 + 0 + 0 = 0 instead of 6. Reading `n` before the call pushes it
/// first, so that order gives 6.
#[test]
fn recursive_blocks_share_their_arguments() {
    let out = run_st(
        &format!("{QUIRKS}EVAL Transcript show: Quirks sumAfter\nEVAL Transcript show: Quirks sumBefore\n"),
        &[],
    );
    assert_stdout(&out, "0\n6\n");
}

/// §7.6: inlined conditionals test only for identity with true/false: a non-Boolean receiver
/// takes the ifTrue: arm (branch-if-false does not jump), so `nil ifTrue: [4]` is 4.
#[test]
fn inlined_conditionals_do_not_check_for_booleans() {
    assert_eval("nil ifTrue: [4]", "4");
    assert_eval("3 ifTrue: [4] ifFalse: [5]", "4");
    assert_eval("false ifTrue: [4]", "nil");
    assert_eval("true ifFalse: [4]", "nil");
    assert_eval("3 < 4 ifTrue: ['yes'] ifFalse: ['no']", "yes");
}

// ---------------------------------------------------------------------------------------------
// Strings and Chars

/// §7.8: `String>>=` compares with `arg printString`, so `'3' = 3` is true.
#[test]
fn string_equality_uses_the_arguments_print_string() {
    assert_eval("'3' = 3", "true");
    assert_eval("'abc' = 'abc'", "true");
    assert_eval("'abc' = 'abd'", "false");
}

/// Chars: `value` is the code, `Char new:` makes one, comparisons by value; every `$a` literal
/// is a distinct object (§7.7), so `==` is false while `=` is true. Strings: 1-based `at:`
/// answers a Char, `+` concatenates, `from:to:` copies, `<` compares, `printString` of a String
/// is the String itself (so `Transcript show:` prints it without quotes), and two equal literals
/// are different objects.
#[test]
fn char_and_string_basics() {
    assert_eval("$a value", "97");
    assert_eval("Char new: 65", "$A");
    assert_eval("(Char new: 97) = $a", "true");
    assert_eval("$a == $a", "false");
    assert_eval("$a < $b", "true");
    assert_eval("$a asString", "a");
    assert_eval("'abc' size", "3");
    assert_eval("'hello' at: 2", "$e");
    assert_eval("('hello' at: 1) value", "104");
    assert_eval("'abc' + 'def'", "abcdef");
    assert_eval("'abc' + 12", "abc12");
    assert_eval("'hello' from: 2 to: 3", "el");
    assert_eval("'abc' < 'abd'", "true");
    assert_eval("'abd' < 'abc'", "false");
    assert_eval("'abc' printString", "abc");
    assert_eval("'a' == 'a'", "false");
    assert_eval("12 printString size", "2");
    assert_eval("-12 printString", "-12");
}

/// An unknown selector on a String is a doesNotUnderstand: naming receiver and selector.
#[test]
fn string_does_not_understand() {
    assert_eval_error("'hello' reverse", "hello does not understand reverse");
}

// ---------------------------------------------------------------------------------------------
// Method>>sendAndBranchData (prim 123, images/headless.st)

const PROBE: &str = "EVAL Class addNewClass: (Object subclass: 'Probe' variables: '' classVariables: '')
METHOD Probe
describe: x
  x isNil ifTrue: [ ^ 'nil' ].
  ^ x printString
!
METHOD Probe
show: x
  ^ x printString
!
METHOD Probe
unused
  ^ 3 printString
!
META Probe
methodNamed: aString
  self methods do: [:m | m name = aString ifTrue: [ ^ m ] ].
  ^ nil
!
META Probe
exercise | p |
  p <- self new.
  p describe: 3.
  p describe: 4.
  p describe: 'a'.
  p describe: nil.
  #(1 'a' $c 2.5 nil true false (1/2) (2147483647 + 1) (Array new: 1)) do: [:x | p show: x ].
  ^ p
!
META Probe
report: aString
  Transcript show: 'method ' + aString + ' rows ' + (self methodNamed: aString) sendAndBranchData size printString.
  (self methodNamed: aString) sendAndBranchData do: [:row |
     (row at: 1) = 'send' ifTrue: [
        Transcript show: 'send ' + (row at: 2) printString + ' ' + (row at: 3) printString + ' ' + (row at: 5) printString.
        (row at: 4) do: [:e | Transcript show: 'entry ' + (e at: 1) name + ' ' + (e at: 2) name + ' ' + (e at: 3) printString ] ].
     (row at: 1) = 'branch' ifTrue: [
        Transcript show: 'branch ' + (row at: 2) printString + ' ' + (row at: 3) printString + ' ' + (row at: 4) printString ] ].
  ^ aString
!
EVAL Probe exercise
EVAL Probe report: 'describe:'
EVAL Probe report: 'show:'
EVAL Probe report: 'unused'
EVAL Transcript show: (Probe methodNamed: 'unused') sendAndBranchData
";

/// `describe:` ran with 3, 4, 'a' and nil. Its conditional (`isNil` then branch-if-false over
/// the `ifTrue:` body) executed 4 times and jumped 3 times (the non-nil arguments); its one send
/// site (`printString`, after the branch in bytecode order) ran 3 times and saw SmallInt twice
/// and String once, each with the method found. `show:` saw 10 receiver classes: more than a
/// polymorphic cache holds, so it is megamorphic and lists no entries. A method that never ran
/// has no rows.
#[test]
fn send_and_branch_data_counts_classes_and_branches() {
    let out = run_st(PROBE, &[]);
    assert_status(&out, 0);
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{}", describe(&out));

    assert_eq!(lines[0], "method describe: rows 2");
    let branch: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(branch[0], "branch", "{}", describe(&out));
    assert_eq!(&branch[2..], ["4", "3"], "executed 4, taken 3: {}", lines[1]);
    let send: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(send[0], "send", "{}", describe(&out));
    assert_eq!(&send[2..], ["3", "false"], "3 sends, not megamorphic: {}", lines[2]);
    let branch_at: i32 = branch[1].parse().expect("branch offset");
    let send_at: i32 = send[1].parse().expect("send offset");
    assert!(0 <= branch_at && branch_at < send_at, "rows are in bytecode order: {text}");
    let mut entries = vec![lines[3], lines[4]];
    entries.sort();
    assert_eq!(entries, ["entry SmallInt printString 2", "entry String printString 1"], "{}", describe(&out));

    assert_eq!(lines[5], "method show: rows 1");
    let send: Vec<&str> = lines[6].split(' ').collect();
    assert_eq!(send[0], "send");
    assert_eq!(&send[2..], ["10", "true"], "10 sends, megamorphic: {}", lines[6]);

    assert_eq!(lines[7], "method unused rows 0");
    assert_eq!(lines[8], "#()");
}

// ---------------------------------------------------------------------------------------------
// Processes and Semaphores (prims 19, 100–102)

const PROCS: &str = "EVAL Class addNewClass: (Object subclass: 'Procs' variables: '' classVariables: '')
META Procs
forkAndWait | s |
  s <- Semaphore new.
  [ s set: 6 * 7 ] fork.
  ^ s wait
!
META Procs
handshake | a b |
  a <- Semaphore new.
  b <- Semaphore new.
  [ b set: a wait + 1 ] fork.
  a set: 41.
  ^ b wait
!
META Procs
latch | s |
  s <- Semaphore new.
  s set: 21.
  ^ s wait + s wait
!
EVAL Transcript show: Procs forkAndWait
EVAL Transcript show: Procs handshake
EVAL Transcript show: Procs latch
";

/// A forked block sets a semaphore that the main process waits on, and the value comes back
/// (42). In `handshake` the forked process itself waits for the main process first (41 + 1).
/// A Semaphore is a one-shot latch: once set, every `wait` answers the value at once (21 + 21).
#[test]
fn fork_and_semaphores() {
    let out = run_st(PROCS, &[]);
    assert_stdout(&out, "42\n42\n42\n");
}

// ---------------------------------------------------------------------------------------------
// Headless I/O (§5, images/headless.st)

/// `Window getString:` prints its prompt on stderr and reads one line from stdin (prim 9).
#[test]
fn get_string_reads_a_line_from_stdin() {
    let out = run(&["run", "-e", "Window getString: 'name?'"], Some(b"Alice\nBob\n"));
    assert_stdout(&out, "Alice\n");
    assert_contains(&out, "stderr", "name?");
}

/// `Transcript show:` writes `x printString` and a newline on stdout, one line per call.
#[test]
fn transcript_show_prints_print_strings() {
    let out = run_st(
        "EVAL Transcript show: 'text'\n\
         EVAL Transcript show: 42\n\
         EVAL Transcript show: $c\n\
         EVAL Transcript show: nil\n\
         EVAL Transcript show: #(1 $a 'b')\n",
        &[],
    );
    assert_stdout(&out, "text\n42\n$c\nnil\n#(1 $a b )\n");
}

/// Only the first statement of an EVAL runs (doIt compiles `doItCommand ^ expr`); wrapping in
/// `[ … ] value` runs them all.
#[test]
fn eval_runs_only_the_first_statement() {
    let out = run_st(
        "EVAL Transcript show: 1. Transcript show: 2\n\
         EVAL [ Transcript show: 3. Transcript show: 4 ] value\n",
        &[],
    );
    assert_stdout(&out, "1\n3\n4\n");
}

/// Storing into a Method (its bytecodes slot) or into its bytecodes changes what it does, even
/// after it has run and the VM has derived data from it (quick forms, stack depth, send sites).
#[test]
fn methods_changed_by_stores_run_their_new_code() {
    let out = run_st(
        "EVAL Class addNewClass: (Object subclass: 'Patched' variables: '' classVariables: '')
METHOD Patched
answer
  ^ 1
!
METHOD Patched
other
  ^ 2
!
META Patched
named: aString | ms |
  ms <- Object in: self at: 3.
  ms do: [:m | m name = aString ifTrue: [ ^ m ] ].
  ^ nil
!
META Patched
swapIn
  Object in: (self named: 'answer') at: 2 put: (Object in: (self named: 'other') at: 2)
!
META Patched
poke | code |
  code <- Object in: (self named: 'answer') at: 2.
  code at: 1 put: 83
!
EVAL Transcript show: Patched new answer printString
EVAL Patched swapIn
EVAL Transcript show: Patched new answer printString
EVAL Patched poke
EVAL Transcript show: Patched new answer printString
",
        &[],
    );
    assert_status(&out, 0);
    // 1 before; 2 after taking `other`'s bytecodes; 3 after rewriting the first bytecode to
    // `push constant 3` (0x53) in place.
    assert_stdout(&out, "1\n2\n3\n");
}

/// The image's GUI code runs headless without crashing: windows, panes, menus, inspectors and
/// browsers are built from stand-in host objects (their primitives answer what the reference VM
/// answers), `Window notify:` prints, `Transcript clear` works, and a dialog that waits for a
/// button ends the run with a deadlock message instead of hanging.
#[test]
fn gui_code_runs_headless() {
    for expr in [
        "3 inspect",
        "Object edit",
        "Class browser",
        "ClassBrowser open",
        "(Window new title: 'x') show",
        "(Menu new: 'm') on: 'x' do: [3]",
        "Pane textArea setText: 'hi'",
        "[Transcript clear. 1] value",
    ] {
        let out = common::run(&["run", &format!("--eval={expr}")], None);
        assert_status(&out, 0);
    }
    let out = common::run(&["run", "--eval=Window notify: 'hello'"], None);
    assert_stdout(&out, "hello\nhello\n");
    let out = common::run(&["run", "--eval=Object subclass"], None);
    assert_status(&out, 1);
    assert_contains(&out, "stderr", "deadlock");
}

/// `Object in: obj add: v` (primitive 32) grows an object by one slot in place: every reference
/// to it — a temporary, another Array's slot, a class variable — sees the new slot, and identity
/// is kept.
#[test]
fn in_add_grows_an_object_keeping_its_identity() {
    let out = run_st(
        "EVAL Class addNewClass: (Object subclass: 'Grow' variables: 'x' classVariables: 'kept')
META Grow
run | a holder |
  a <- Array new: 2. a at: 1 put: 10. a at: 2 put: 20.
  holder <- Array new: 1. holder at: 1 put: a.
  kept <- a.
  Object in: a add: 30.
  Transcript show: a size printString.
  Transcript show: (holder at: 1) size printString.
  Transcript show: ((holder at: 1) == a) printString.
  Transcript show: (kept == a) printString.
  Transcript show: a printString
!
EVAL Grow run
",
        &[],
    );
    assert_status(&out, 0);
    assert_stdout(&out, "3\n3\ntrue\ntrue\n#(10 20 30 )\n");
}

/// A send's selector is a literal of its method, read on every send (the reference VM's
/// `execute` fetches it from the literals Array and caches lookups by selector object and
/// class). Storing another selector into the literals Array (`Method>>literals`, primitive 5)
/// makes later sends find the new method: no inline cache outlives the store. 500 sends of
/// `bar` (1) then 500 of `baz` (100).
#[test]
fn a_selector_stored_into_a_methods_literals_is_sent_from_then_on() {
    let out = run_st(
        "EVAL Class addNewClass: (Object subclass: 'Sel' variables: '' classVariables: '')
METHOD Sel
bar
   ^ 1
!
METHOD Sel
baz
   ^ 100
!
METHOD Sel
foo
   ^ self bar
!
META Sel
run: n
   | o s lits |
   o <- Sel new. s <- 0.
   1 to: n do: [:i |
      s <- s + o foo.
      i = 500 ifTrue: [
         1 to: Sel methods size do: [:k |
            (Sel methods at: k) name = 'foo' ifTrue: [lits <- (Sel methods at: k) literals]].
         lits at: 1 put: 'baz']].
   ^ s
!
EVAL Transcript show: (Sel run: 1000) printString
",
        &["--no-jit"],
    );
    assert_stdout(&out, "50500\n");
}
