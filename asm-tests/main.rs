//! Backend tests: each IR operation assembled alone by the x86-64 backend, run on a frame
//! buffer, and checked — including the overflow and guard-failure exits — plus whole loops.

mod alloc;
mod helpers;
mod links;
mod loops;
mod new_ops;
mod optimizer;
mod registers;
mod world;

use tracevm::heap::{Heap, Value};
use tracevm::jit::ir::{Op, Ref, SnapId, Trace};
use tracevm::jit::x64::{compile, BackendError, CompiledTrace, Constants};

/// Stand-ins for the true/false objects: comparisons answer these constants.
const K: Constants = Constants { true_: Value::from_int(1), false_: Value::from_int(0) };

/// Enters compiled code. Every test frame holds SmallInts or live objects of the test's own heap
/// with the slots the trace reads, which is `CompiledTrace::run`'s contract.
fn run(code: &CompiledTrace, frame: &mut [u64]) -> Result<SnapId, BackendError> {
    // SAFETY: see above: the tests build each frame to satisfy the trace's assumptions.
    unsafe { code.run(frame) }
}

fn int(i: i32) -> u64 {
    Value::from_int(i).raw()
}

/// A trace computing `op` on inputs 0 and 1, writing the result to slot 2 through s1; s0 is the
/// instruction's own exit (overflow), which writes nothing.
fn binary(op: fn(Ref, Ref) -> Op) -> Trace {
    let mut t = Trace::new(3);
    let a = t.push(Op::Input(0), None);
    let b = t.push(Op::Input(1), None);
    let fail = t.snapshot(vec![]);
    let r = t.push(op(a, b), Some(fail));
    let done = t.snapshot(vec![(2, r)]);
    t.push(Op::Exit, Some(done));
    t
}

/// Runs a two-input trace; answers (exit, slot 2).
fn run2(t: &Trace, x: u64, y: u64) -> (u32, u64) {
    let code = compile(t, K).expect("compiles");
    let mut frame = [x, y, 0];
    let exit = run(&code, &mut frame).expect("runs");
    (exit.0, frame[2])
}

#[test]
fn add_sub_mul_compute_smallints_and_exit_on_overflow() {
    let add = binary(Op::AddOv);
    assert_eq!(run2(&add, int(2), int(40)), (1, int(42)));
    assert_eq!(run2(&add, int(-7), int(3)), (1, int(-4)));
    assert_eq!(run2(&add, int(i32::MAX), int(0)), (1, int(i32::MAX)));
    assert_eq!(run2(&add, int(i32::MAX), int(1)).0, 0, "MAX + 1 overflows");
    assert_eq!(run2(&add, int(i32::MIN), int(-1)).0, 0, "MIN - 1 overflows");

    let sub = binary(Op::SubOv);
    assert_eq!(run2(&sub, int(10), int(25)), (1, int(-15)));
    assert_eq!(run2(&sub, int(i32::MIN), int(1)).0, 0);
    assert_eq!(run2(&sub, int(0), int(i32::MIN)).0, 0, "0 - MIN overflows");

    let mul = binary(Op::MulOv);
    assert_eq!(run2(&mul, int(-6), int(7)), (1, int(-42)));
    assert_eq!(run2(&mul, int(46340), int(46340)), (1, int(2_147_395_600)));
    assert_eq!(run2(&mul, int(46341), int(46341)).0, 0);
    assert_eq!(run2(&mul, int(-1), int(i32::MIN)).0, 0);
    assert_eq!(run2(&mul, int(65536), int(65536)).0, 0);
}

#[test]
fn comparisons_answer_true_or_false() {
    let lt = binary(Op::Lt);
    let le = binary(Op::Le);
    let eq = binary(Op::Eq);
    for (x, y) in [(1, 2), (2, 1), (3, 3), (-5, 4), (i32::MIN, i32::MAX), (i32::MAX, i32::MIN)] {
        let b = |c: bool| if c { K.true_.raw() } else { K.false_.raw() };
        assert_eq!(run2(&lt, int(x), int(y)), (1, b(x < y)), "{x} < {y}");
        assert_eq!(run2(&le, int(x), int(y)), (1, b(x <= y)), "{x} <= {y}");
        assert_eq!(run2(&eq, int(x), int(y)), (1, b(x == y)), "{x} == {y}");
    }
}

/// Which exits of `compare_then_guard` write the comparison's answer to slot 2.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Unread,
    /// The guard's own exit (as the interpreter's stack holds it at a branch): the backend fuses
    /// the two and writes the answer on the way out.
    ReadByGuardExit,
    /// The other exit: the backend must compute it.
    ReadAfter,
}

/// `x op y` (y an input, or the constant `k`), then a guard on its answer: exit s0 if the guard
/// fails, else s1.
fn compare_then_guard(op: fn(Ref, Ref) -> Op, guard: fn(Ref) -> Op, k: Option<i32>, answer: Answer) -> Trace {
    let mut t = Trace::new(3);
    let x = t.push(Op::Input(0), None);
    let y = match k {
        Some(k) => t.push(Op::Const(Value::from_int(k)), None),
        None => t.push(Op::Input(1), None),
    };
    let c = t.push(op(x, y), None);
    let fail = t.snapshot(if answer == Answer::ReadByGuardExit { vec![(2, c)] } else { vec![] });
    t.push(guard(c), Some(fail));
    let pass = t.snapshot(if answer == Answer::ReadAfter { vec![(2, c)] } else { vec![] });
    t.push(Op::Exit, Some(pass));
    t
}

#[test]
fn a_guard_on_a_comparison_branches_on_the_comparison() {
    type Cmp = (fn(Ref, Ref) -> Op, fn(i32, i32) -> bool);
    let ops: [Cmp; 3] = [(Op::Lt, |x, y| x < y), (Op::Le, |x, y| x <= y), (Op::Eq, |x, y| x == y)];
    type Guard = (fn(Ref) -> Op, fn(bool) -> bool);
    let guards: [Guard; 4] = [
        (|c| Op::GuardIs(c, K.true_), |b| b),
        (|c| Op::GuardIs(c, K.false_), |b| !b),
        (|c| Op::GuardIsNot(c, K.true_), |b| !b),
        (|c| Op::GuardIsNot(c, K.false_), |b| b),
    ];
    let pairs = [(1, 2), (2, 1), (3, 3), (-5, 4), (i32::MIN, i32::MAX), (i32::MAX, i32::MIN), (0, -1)];
    for (op, holds) in ops {
        for (guard, passes) in guards {
            for answer in [Answer::Unread, Answer::ReadByGuardExit, Answer::ReadAfter] {
                let by_input = compile(&compare_then_guard(op, guard, None, answer), K).expect("compiles");
                for (x, y) in pairs {
                    let by_const = compile(&compare_then_guard(op, guard, Some(y), answer), K).expect("compiles");
                    let want = if passes(holds(x, y)) { 1 } else { 0 };
                    let written = match (answer, want) {
                        (Answer::ReadByGuardExit, 0) | (Answer::ReadAfter, 1) => K.of(holds(x, y)).raw(),
                        _ => 0,
                    };
                    for code in [&by_input, &by_const] {
                        let mut frame = [int(x), int(y), 0];
                        let exit = run(code, &mut frame).expect("runs").0;
                        assert_eq!((exit, frame[2]), (want, written), "x={x} y={y} {answer:?}");
                    }
                }
            }
        }
    }
}

/// A trace that guards input 0 with `guard` (exit s0) and otherwise exits through s1.
fn guarded(guard: impl Fn(Ref) -> Op) -> Trace {
    let mut t = Trace::new(1);
    let x = t.push(Op::Input(0), None);
    let fail = t.snapshot(vec![]);
    t.push(guard(x), Some(fail));
    let pass = t.snapshot(vec![]);
    t.push(Op::Exit, Some(pass));
    t
}

fn run1(t: &Trace, x: u64) -> u32 {
    run(&compile(t, K).expect("compiles"), &mut [x]).expect("runs").0
}

/// `GuardIs` and `GuardIsNot` against SmallInt constants: small ones are compared as an
/// immediate, large ones (whose tagged word needs more than 32 bits) through a register; both
/// must tell equal from unequal, including values that differ only above bit 31.
#[test]
fn identity_guards_on_smallint_constants() {
    let edges = [0, 1, -1, 13, -7, 1 << 29, -(1 << 29), (1 << 30) - 1, -(1 << 30), i32::MAX, i32::MIN];
    for &k in &edges {
        let is = guarded(|x| Op::GuardIs(x, Value::from_int(k)));
        let is_not = guarded(|x| Op::GuardIsNot(x, Value::from_int(k)));
        for &x in &edges {
            let same = u32::from(x == k);
            assert_eq!(run1(&is, int(x)), same, "GuardIs {x} against {k}");
            assert_eq!(run1(&is_not, int(x)), 1 - same, "GuardIsNot {x} against {k}");
        }
    }
}

fn heap_with_class() -> (Heap, Value, Value) {
    let mut heap = Heap::new();
    let class_a = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
    class_a.set_obj_class(class_a);
    let class_b = heap.alloc_pointers(class_a, 5, Value::from_int(0));
    (heap, class_a, class_b)
}

#[test]
fn guards_pass_or_exit() {
    let (mut heap, class_a, class_b) = heap_with_class();
    let obj = heap.alloc_pointers(class_b, 2, Value::from_int(9));

    let is_int = guarded(Op::GuardInt);
    assert_eq!(run1(&is_int, int(5)), 1);
    assert_eq!(run1(&is_int, obj.raw()), 0);

    let of_b = guarded(|x| Op::GuardClass(x, Value::from_int(0)));
    // A class guard on a SmallInt exits without touching memory.
    assert_eq!(run1(&of_b, int(5)), 0);
    let mut t = Trace::new(1);
    let x = t.push(Op::Input(0), None);
    let fail = t.snapshot(vec![]);
    t.push(Op::GuardClass(x, class_b), Some(fail));
    let pass = t.snapshot(vec![]);
    t.push(Op::Exit, Some(pass));
    assert_eq!(run1(&t, obj.raw()), 1);
    assert_eq!(run1(&t, class_b.raw()), 0, "class_b's class is class_a");
    assert_eq!(run1(&t, class_a.raw()), 0);

    let is_seven = guarded(|x| Op::GuardIs(x, Value::from_int(7)));
    assert_eq!(run1(&is_seven, int(7)), 1);
    assert_eq!(run1(&is_seven, int(8)), 0);
    let not_seven = guarded(|x| Op::GuardIsNot(x, Value::from_int(7)));
    assert_eq!(run1(&not_seven, int(7)), 0);
    assert_eq!(run1(&not_seven, int(8)), 1);
}

#[test]
fn loads_and_stores_reach_heap_objects() {
    let (mut heap, _, class_b) = heap_with_class();
    let obj = heap.alloc_pointers(class_b, 3, Value::from_int(0));
    obj.set_slot(1, Value::from_int(11));
    // out[1] = obj.slot(1); obj.slot(2) := in[2]; out[3] = obj size
    let mut t = Trace::new(4);
    let o = t.push(Op::Input(0), None);
    let v = t.push(Op::Input(2), None);
    let loaded = t.push(Op::LoadSlot(o, 1), None);
    t.push(Op::StoreSlot(o, 2, v), None);
    let len = t.push(Op::LoadLen(o), None);
    let done = t.snapshot(vec![(1, loaded), (3, len)]);
    t.push(Op::Exit, Some(done));
    let code = compile(&t, K).unwrap();
    let mut frame = [obj.raw(), 0, int(-3), 0];
    assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
    assert_eq!(frame[1], int(11));
    assert_eq!(frame[3], int(3));
    assert_eq!(obj.slot(2), Value::from_int(-3));

    let bytes = heap.alloc_bytes_from(class_b, b"hello");
    let mut t = Trace::new(2);
    let o = t.push(Op::Input(0), None);
    let len = t.push(Op::LoadLen(o), None);
    let done = t.snapshot(vec![(1, len)]);
    t.push(Op::Exit, Some(done));
    let mut frame = [bytes.raw(), 0];
    run(&compile(&t, K).unwrap(), &mut frame).unwrap();
    assert_eq!(frame[1], int(5));
}

/// sum <- 0. i <- 1. [i <= n] whileTrue: [sum <- sum + i. i <- i + 1] over frame [n, i, sum].
fn sum_loop() -> Trace {
    let mut t = Trace::new(3);
    let n = t.push(Op::Input(0), None);
    let i0 = t.push(Op::Input(1), None);
    let s0 = t.push(Op::Input(2), None);
    let one = t.push(Op::Const(Value::from_int(1)), None);
    t.push(Op::Loop, None);
    let i = t.push(Op::Phi { init: i0, next: None }, None);
    let s = t.push(Op::Phi { init: s0, next: None }, None);
    let c = t.push(Op::Le(i, n), None);
    // Leaving the loop (or overflowing) writes back the interpreter's view of i and sum.
    let out = t.snapshot(vec![(1, i), (2, s)]);
    t.push(Op::GuardIs(c, K.true_), Some(out));
    let s2 = t.push(Op::AddOv(s, i), Some(out));
    let i2 = t.push(Op::AddOv(i, one), Some(out));
    t.close_phi(i, i2);
    t.close_phi(s, s2);
    t
}

#[test]
fn a_loop_runs_to_its_exit_guard() {
    let code = compile(&sum_loop(), K).unwrap();
    for n in [0, 1, 10, 1000, 65535] {
        let mut frame = [int(n), int(1), int(0)];
        assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
        let expect = (n as i64) * (n as i64 + 1) / 2;
        assert_eq!(frame[1], int(n + 1), "i after the loop, n = {n}");
        assert_eq!(frame[2], int(expect as i32), "sum, n = {n}");
    }
}

#[test]
fn an_overflow_inside_a_loop_exits_with_the_last_good_values() {
    let code = compile(&sum_loop(), K).unwrap();
    // sum of 1..65536 = 2147516416 > MAX: the add at i = 65536 overflows; the snapshot holds
    // the values before that iteration's additions, so the interpreter redoes them (and builds
    // a LargePositive).
    let mut frame = [int(100_000), int(1), int(0)];
    assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
    assert_eq!(frame[1], int(65536));
    assert_eq!(frame[2], int(2_147_450_880));
}

#[test]
fn phis_swap_in_parallel() {
    // Fibonacci pairs: (a, b) <- (b, a + b) while b < limit; frame [limit, a, b].
    let mut t = Trace::new(3);
    let limit = t.push(Op::Input(0), None);
    let a0 = t.push(Op::Input(1), None);
    let b0 = t.push(Op::Input(2), None);
    t.push(Op::Loop, None);
    let a = t.push(Op::Phi { init: a0, next: None }, None);
    let b = t.push(Op::Phi { init: b0, next: None }, None);
    let c = t.push(Op::Lt(b, limit), None);
    let out = t.snapshot(vec![(1, a), (2, b)]);
    t.push(Op::GuardIs(c, K.true_), Some(out));
    let sum = t.push(Op::AddOv(a, b), Some(out));
    t.close_phi(a, b);
    t.close_phi(b, sum);
    let mut frame = [int(100), int(0), int(1)];
    run(&compile(&t, K).unwrap(), &mut frame).unwrap();
    assert_eq!((frame[1], frame[2]), (int(89), int(144)));
}

#[test]
fn bad_traces_and_small_frames_are_refused() {
    let mut t = Trace::new(1);
    t.push(Op::Input(0), None);
    assert!(matches!(compile(&t, K), Err(BackendError::Ir(_))));

    let code = compile(&sum_loop(), K).unwrap();
    assert!(matches!(run(&code, &mut [0u64; 2]), Err(BackendError::FrameTooSmall { given: 2, needed: 3 })));
}

#[test]
fn disassembly_shows_the_code() {
    let code = compile(&binary(Op::AddOv), K).unwrap();
    let text = code.disassemble();
    assert!(text.contains("jo "), "{text}");
    assert!(text.contains("ret"), "{text}");
    assert!(code.code_size() > 0);
    assert!(text.lines().count() > 10, "{text}");
}
