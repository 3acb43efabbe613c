//! Links between traces (`ExitLink`, `ParentLink`): an exit that continues in another trace in
//! machine code writes the loop frame's stack Array, enters the other trace, and the exit that
//! finally leaves names its own trace. Unlinked, refused (stack Array too short) and relinked
//! exits leave as ordinary exits.

use super::K;
use tracevm::heap::{Heap, Value};
use tracevm::jit::ir::{Op, SnapId, Trace};
use tracevm::jit::x64::{compile_linked, CompiledTrace, ExitLink, LinkValue, Options, ParentLink};

fn int(i: i32) -> u64 {
    Value::from_int(i).raw()
}

/// Trace 1: y = word 4 + 1; leaves by s0 (writing y to word 5) when y is not below 10, else by
/// s1 (writing y to word 6). Its s0 may link to a trace compiled later.
fn parent() -> Trace {
    let mut t = Trace::new(8);
    let x = t.push(Op::Input(4), None);
    let one = t.push(Op::Const(Value::from_int(1)), None);
    let overflow = t.snapshot(vec![]);
    let y = t.push(Op::AddOv(x, one), Some(overflow));
    let ten = t.push(Op::Const(Value::from_int(10)), None);
    let below = t.push(Op::Lt(y, ten), None);
    let big = t.snapshot(vec![(5, y)]);
    t.push(Op::GuardIs(below, K.true_), Some(big));
    let done = t.snapshot(vec![(6, y)]);
    t.push(Op::Exit, Some(done));
    t
}

/// Trace 2: reads slot 0 and 1 of the stack Array (word 3) and leaves writing their sum to
/// word 7.
fn child() -> Trace {
    let mut t = Trace::new(8);
    let stack = t.push(Op::Input(3), None);
    let a = t.push(Op::LoadSlot(stack, 0), None);
    let b = t.push(Op::LoadSlot(stack, 1), None);
    let overflow = t.snapshot(vec![]);
    let sum = t.push(Op::AddOv(a, b), Some(overflow));
    let done = t.snapshot(vec![(7, sum)]);
    t.push(Op::Exit, Some(done));
    t
}

/// Trace 3, a side trace that inherits its parent's exit state: words 6 and 7 are its inputs,
/// which its parent link writes; it leaves writing their sum to word 5.
fn inheriting_child() -> Trace {
    let mut t = Trace::new(8);
    let a = t.push(Op::Input(6), None);
    let b = t.push(Op::Input(7), None);
    let overflow = t.snapshot(vec![]);
    let sum = t.push(Op::AddOv(a, b), Some(overflow));
    let done = t.snapshot(vec![(5, sum)]);
    t.push(Op::Exit, Some(done));
    t
}

fn options(id: u32) -> Options {
    Options { trace_id: id, ..Options::default() }
}

fn enter(code: &CompiledTrace, frame: &mut [u64]) -> (u32, u32) {
    // SAFETY: word 3 of every frame here is a live Array of the test's heap (the only object
    // the traces read), and every trace a link reaches reads only that.
    let (id, s) = unsafe { code.enter(frame) }.expect("runs");
    (id, s.0)
}

fn stack_array(heap: &mut Heap, len: usize) -> Value {
    let class = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
    heap.alloc_pointers(class, len, Value::from_int(0))
}

#[test]
fn a_parent_exit_continues_in_its_side_trace_and_the_side_trace_exit_is_reported() {
    let big = SnapId(1);
    let links = [ExitLink { snap: big, stack: None }];
    let a = compile_linked(&parent(), K, options(1), &links, None).expect("parent compiles");
    assert!(a.links_later(big));
    // The side trace's stack: the parent's y (from its value area) and the constant 100.
    let y_at = a.exit_value_at(big, 5).expect("s0 gives word 5 a value");
    let stack = vec![LinkValue::At(y_at), LinkValue::Const(Value::from_int(100))];
    let link = ParentLink { trace_id: 1, exit: big, stack, words: Vec::new() };
    let b = compile_linked(&child(), K, options(2), &[], Some(&link)).expect("child compiles");
    let mut heap = Heap::new();
    let array = stack_array(&mut heap, 2);
    let frame = |x: i32| [0, 0, 0, array.raw(), int(x), 0, 0, 0];

    // Unlinked: the parent's own exit.
    let mut f = frame(20);
    assert_eq!(enter(&a, &mut f), (1, 1));
    a.copy_exit(big, &mut f);
    assert_eq!(f[5], int(21));

    // Linked: the child runs on the stack the link wrote, and its exit is reported as its own.
    assert!(a.set_link(big, b.parent_entry()));
    assert!(a.is_linked(big));
    let mut f = frame(20);
    assert_eq!(enter(&a, &mut f), (2, 1));
    b.copy_exit(SnapId(1), &mut f);
    assert_eq!(f[7], int(121));
    assert_eq!((array.slot(0), array.slot(1)), (Value::from_int(21), Value::from_int(100)));
    assert_eq!((a.entries(), b.entries()), (2, 1));

    // The path that does not exit by s0 is unaffected.
    let mut f = frame(3);
    assert_eq!(enter(&a, &mut f), (1, 2));
    a.copy_exit(SnapId(2), &mut f);
    assert_eq!(f[6], int(4));

    // A stack Array too short for the link: the child refuses, and it is the parent's exit.
    let short = stack_array(&mut heap, 1);
    let mut f = [0, 0, 0, short.raw(), int(30), 0, 0, 0];
    assert_eq!(enter(&a, &mut f), (1, 1));
    a.copy_exit(big, &mut f);
    assert_eq!(f[5], int(31));
    assert_eq!(short.slot(0), Value::from_int(0), "a refused link writes nothing");

    // Unlinked again (the child was dropped): the parent's exit.
    assert!(a.set_link(big, None));
    let mut f = frame(50);
    assert_eq!(enter(&a, &mut f), (1, 1));
}

#[test]
fn a_parent_link_writes_the_words_an_inheriting_side_trace_reads() {
    let big = SnapId(1);
    let links = [ExitLink { snap: big, stack: None }];
    let a = compile_linked(&parent(), K, options(1), &links, None).expect("parent compiles");
    let y_at = a.exit_value_at(big, 5).expect("s1 gives word 5 a value");
    let words = vec![(6, LinkValue::At(y_at)), (7, LinkValue::Const(Value::from_int(1000)))];
    let link = ParentLink { trace_id: 1, exit: big, stack: Vec::new(), words };
    let c = compile_linked(&inheriting_child(), K, options(3), &[], Some(&link)).expect("child compiles");
    assert!(a.set_link(big, c.parent_entry()));
    let mut heap = Heap::new();
    let array = stack_array(&mut heap, 2);
    let mut f = [0, 0, 0, array.raw(), int(20), 0, int(-1), int(-1)];
    assert_eq!(enter(&a, &mut f), (3, 1), "the parent's exit continued in the inheriting trace");
    c.copy_exit(SnapId(1), &mut f);
    assert_eq!(f[5], int(21 + 1000));
    assert_eq!((f[6], f[7]), (int(21), int(1000)), "the link wrote both words before the trace read them");
    assert_eq!(f[3], array.raw(), "the loop frame's words are as they were");
    // The other path never reaches the link.
    let mut f = [0, 0, 0, array.raw(), int(3), 0, int(-1), int(-1)];
    assert_eq!(enter(&a, &mut f), (1, 2));
    assert_eq!((f[6], f[7]), (int(-1), int(-1)));
}

#[test]
fn an_exit_that_writes_its_own_stack_enters_an_older_trace() {
    // The older trace reads the stack (like a loop trace entered at its header); the newer one
    // ends by an exit whose stub writes y and word 4's input, then enters the older one.
    let older = compile_linked(&child(), K, options(2), &[], None).expect("older compiles");
    let big = SnapId(1);
    let links = [ExitLink { snap: big, stack: Some(vec![LinkValue::Word(5), LinkValue::Word(4)]) }];
    let newer = compile_linked(&parent(), K, options(1), &links, None).expect("newer compiles");
    assert!(!newer.links_later(big), "it writes the stack itself");
    let mut heap = Heap::new();
    let array = stack_array(&mut heap, 2);
    let mut f = [0, 0, 0, array.raw(), int(40), 0, 0, 0];
    assert_eq!(enter(&newer, &mut f), (1, 1), "not linked yet");
    assert!(newer.set_link(big, Some(older.link_entry())));
    let mut f = [0, 0, 0, array.raw(), int(40), 0, 0, 0];
    assert_eq!(enter(&newer, &mut f), (2, 1));
    older.copy_exit(SnapId(1), &mut f);
    assert_eq!(f[7], int(41 + 40));
    // An exit that is not linkable cannot be linked.
    assert!(!newer.set_link(SnapId(2), Some(older.link_entry())));
}

#[test]
fn fuel_runs_out_at_a_link() {
    // A budget of one unit: the link refuses, and the trace leaves by its own exit.
    let fuel = Box::new(std::cell::Cell::new(1u64));
    let big = SnapId(1);
    let links = [ExitLink { snap: big, stack: Some(vec![LinkValue::Word(5), LinkValue::Word(4)]) }];
    let with_fuel =
        |id| Options { trace_id: id, fuel: fuel.as_ptr() as u64, fuel_exit: Some(SnapId(0)), ..Options::default() };
    let older = compile_linked(&child(), K, with_fuel(2), &[], None).expect("older compiles");
    let newer = compile_linked(&parent(), K, with_fuel(1), &links, None).expect("newer compiles");
    assert!(newer.set_link(big, Some(older.link_entry())));
    let mut heap = Heap::new();
    let array = stack_array(&mut heap, 2);
    let mut f = [0, 0, 0, array.raw(), int(40), 0, 0, 0];
    assert_eq!(enter(&newer, &mut f), (1, 1));
    fuel.set(2);
    let mut f = [0, 0, 0, array.raw(), int(40), 0, 0, 0];
    assert_eq!(enter(&newer, &mut f), (2, 1));
    assert_eq!(fuel.get(), 1, "a link spends one unit");
}
