//! Backend tests for `New`: the helper call allocates a nil-filled object of the class in the
//! attached heap, and every case the trace must leave to the interpreter exits before
//! allocating — a bad length, no heap attached, no runtime, a collection due.

use super::world::{world, World};
use super::K;
use tracevm::heap::Value;
use tracevm::jit::ir::{Op, SnapId, Trace, MAX_NEW_SLOTS};
use tracevm::jit::x64::{compile_with, CompiledTrace, Options};

/// A word no trace here computes.
const UNTOUCHED: u64 = Value::from_int(-123_456_789).raw();

/// Exits of the probe trace.
const FIRST_NEW: SnapId = SnapId(0);
const SECOND_NEW: SnapId = SnapId(1);
const WRONG_CLASS: SnapId = SnapId(2);
const DONE: SnapId = SnapId(3);

/// Two `New`s of input 0 slots, then checks on them written as words: [2] the first's length,
/// [3] whether the two are identical, and (when the length is known to be `len` ≥ 1) [4] and [5]
/// whether the first's first slot and the second's last slot are input 1 (nil). A wrong class
/// leaves by `WRONG_CLASS`.
fn probe(class: Value, len: usize) -> Trace {
    let mut t = Trace::new(6);
    let n = t.push(Op::Input(0), None);
    let nil = t.push(Op::Input(1), None);
    let s0 = t.snapshot(vec![]);
    let a = t.push(Op::New(n, class), Some(s0));
    let s1 = t.snapshot(vec![]);
    let b = t.push(Op::New(n, class), Some(s1));
    let wrong = t.snapshot(vec![]);
    t.push(Op::GuardClass(a, class), Some(wrong));
    t.push(Op::GuardClass(b, class), Some(wrong));
    let la = t.push(Op::LoadLen(a), None);
    let same = t.push(Op::Eq(a, b), None);
    let mut entries = vec![(2, la), (3, same)];
    if len >= 1 {
        let first = t.push(Op::LoadSlot(a, 0), None);
        let last = t.push(Op::LoadSlot(b, len as u32 - 1), None);
        let first_nil = t.push(Op::Eq(first, nil), None);
        let last_nil = t.push(Op::Eq(last, nil), None);
        entries.extend([(4, first_nil), (5, last_nil)]);
    }
    let done = t.snapshot(entries);
    t.push(Op::Exit, Some(done));
    t
}

fn compiled(w: &World, len: usize, force_exits: bool) -> CompiledTrace {
    let options = Options { runtime: w.runtime.address(), force_exits, ..Options::default() };
    compile_with(&probe(w.class, len), K, options).expect("compiles")
}

/// Runs with the heap attached (unless `attach` is false); answers the exit and the frame.
fn run(w: &mut World, code: &CompiledTrace, len: u64, attach: bool) -> (SnapId, [u64; 6]) {
    let mut frame = [len, w.nil.raw(), UNTOUCHED, UNTOUCHED, UNTOUCHED, UNTOUCHED];
    if attach {
        w.attach();
    }
    // SAFETY: the trace reads input 0 only through `New` (which checks it) and the objects it
    // allocated itself (guarded by class, read within their length); its helper calls get the
    // runtime it was compiled with, attached to a heap nothing else uses while the code runs,
    // or detached.
    let exit = unsafe { code.run(&mut frame) }.expect("runs");
    w.runtime.detach();
    (exit, frame)
}

fn int(i: i32) -> u64 {
    Value::from_int(i).raw()
}

fn allocated(w: &World) -> u64 {
    w.heap.total_allocated_words()
}

#[test]
fn new_answers_two_distinct_nil_filled_objects_of_the_class() {
    let mut w = world();
    for len in [0, 1, 2, 7, 100, MAX_NEW_SLOTS as usize] {
        let code = compiled(&w, len, false);
        let before = allocated(&w);
        let (exit, frame) = run(&mut w, &code, int(len as i32), true);
        assert_eq!(exit, DONE, "length {len}");
        assert_eq!(frame[2], int(len as i32), "length {len}");
        assert_eq!(frame[3], K.false_.raw(), "two allocations, two objects");
        if len >= 1 {
            assert_eq!(&frame[4..], &[K.true_.raw(); 2], "slots are nil (length {len})");
        }
        assert!(allocated(&w) >= before + 2 * len as u64, "the heap counted them");
    }
}

#[test]
fn new_exits_before_allocating_on_a_bad_length() {
    let mut w = world();
    let code = compiled(&w, 0, false);
    let object = w.class.raw();
    for len in [int(-1), int(MAX_NEW_SLOTS + 1), int(i32::MIN), int(i32::MAX), object] {
        let before = allocated(&w);
        let (exit, frame) = run(&mut w, &code, len, true);
        assert_eq!((exit, frame[2]), (FIRST_NEW, UNTOUCHED), "length word {len:#x}");
        assert_eq!(allocated(&w), before, "nothing allocated");
    }
}

#[test]
fn new_exits_without_a_heap_or_a_runtime() {
    let mut w = world();
    let code = compiled(&w, 3, false);
    assert_eq!(run(&mut w, &code, int(3), false).0, FIRST_NEW, "runtime detached");
    let bare = compile_with(&probe(w.class, 3), K, Options::default()).expect("compiles");
    assert_eq!(run(&mut w, &bare, int(3), true).0, FIRST_NEW, "compiled without a runtime");
    assert_eq!(run(&mut w, &code, int(3), true).0, DONE, "attached again");
}

#[test]
fn new_exits_once_a_collection_is_due() {
    let mut w = world();
    let code = compiled(&w, 2, false);
    assert_eq!(run(&mut w, &code, int(2), true).0, DONE);
    while !w.heap.wants_collection() {
        w.heap.alloc_pointers(w.class, 1000, w.nil);
    }
    let before = allocated(&w);
    let (exit, frame) = run(&mut w, &code, int(2), true);
    assert_eq!((exit, frame[2]), (FIRST_NEW, UNTOUCHED), "no allocation while a collection is due");
    assert_eq!(allocated(&w), before);
}

#[test]
fn a_forced_exit_from_new_allocates_nothing() {
    let mut w = world();
    let code = compiled(&w, 2, true);
    let before = allocated(&w);
    assert_eq!(run(&mut w, &code, int(2), true).0, FIRST_NEW);
    assert_eq!(allocated(&w), before);
    // Each run spends one forced exit: the second New's, then the class guards'.
    assert_eq!(run(&mut w, &code, int(2), true).0, SECOND_NEW);
    assert_eq!(run(&mut w, &code, int(2), true).0, WRONG_CLASS);
    assert_eq!(run(&mut w, &code, int(2), true).0, WRONG_CLASS);
    assert_eq!(run(&mut w, &code, int(2), true).0, DONE);
}
