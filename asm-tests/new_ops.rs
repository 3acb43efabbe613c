//! Backend tests for the division, kind, length, index, watch and element operations: each
//! assembled alone, run on frame buffers that hold objects of a real heap, and checked against
//! Rust's own computation of the answer (including every exit); then `Options::force_exits`, and
//! an `at:`/`at:put:` loop over an Array, compiled as written and after the optimizer.

use tracevm::heap::{Heap, Kind, Value};
use tracevm::interp::lookup::{WATCH_ALL, WATCH_CLASS, WATCH_METHOD};
use tracevm::interp::WATCH_MASK;
use tracevm::jit::ir::{Op, Ref, SnapId, Trace};
use tracevm::jit::opt::optimize;
use tracevm::jit::x64::{compile, compile_with, BackendError, CompiledTrace, Constants, Options};

/// Stand-ins for the true/false objects (no operation here answers them).
const K: Constants = Constants { true_: Value::from_int(1), false_: Value::from_int(0) };

/// A word no trace here computes: slots that must stay unwritten start out holding it.
const UNTOUCHED: u64 = Value::from_int(-123_456_789).raw();

/// Enters compiled code. Every frame built below holds SmallInts, or live objects of the test's
/// own heap wherever the trace reads an object without a kind guard first, with the lengths the
/// unchecked operations (`LoadElem`/`StoreElem` after their `GuardIndex`) rely on: that is
/// `CompiledTrace::run`'s contract.
fn run(code: &CompiledTrace, frame: &mut [u64]) -> Result<SnapId, BackendError> {
    // SAFETY: see above: each test builds its frames to satisfy its trace's assumptions.
    unsafe { code.run(frame) }
}

fn int(i: i32) -> u64 {
    Value::from_int(i).raw()
}

/// The SmallInt in a word that compiled code wrote.
fn int_of(raw: u64) -> i32 {
    let v = (raw & 1 == 1).then_some(((raw as i64) >> 1) as i32);
    v.unwrap_or_else(|| panic!("{raw:#x} is not a SmallInt"))
}

fn forced() -> Options {
    Options { force_exits: true, ..Options::default() }
}

/// A heap with one class object (its own class) to give the test objects a class word.
fn heap() -> (Heap, Value) {
    let mut heap = Heap::new();
    let class = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
    class.set_obj_class(class);
    (heap, class)
}

/// A pointer object whose slots are `elems`.
fn array(heap: &mut Heap, class: Value, elems: &[Value]) -> Value {
    heap.alloc_with_slots(class, elems)
}

/// Edge and ordinary SmallInts for the division grid.
fn operands() -> impl Iterator<Item = i32> + Clone {
    const SMALL: [i32; 16] = [0, 1, -1, 2, -2, 3, -3, 7, -7, 10, -10, 13, -13, 46341, 65536, -65536];
    const EDGES: [i32; 6] = [i32::MAX, i32::MAX - 1, i32::MIN, i32::MIN + 1, i32::MAX / 2, i32::MIN / 2];
    SMALL.into_iter().chain(EDGES)
}

/// `op` on inputs 0 and 1, answering the result in slot 2 through s1. s0, the zero-divisor exit,
/// writes the dividend into slot 3, so a test sees that the exit stub ran.
fn division(op: fn(Ref, Ref) -> Op) -> Trace {
    let mut t = Trace::new(4);
    let a = t.push(Op::Input(0), None);
    let b = t.push(Op::Input(1), None);
    let by_zero = t.snapshot(vec![(3, a)]);
    let r = t.push(op(a, b), Some(by_zero));
    let done = t.snapshot(vec![(2, r)]);
    t.push(Op::Exit, Some(done));
    t
}

/// Runs a `division` trace; answers the exit and the frame.
fn divide(code: &CompiledTrace, x: i32, y: i32) -> (SnapId, [u64; 4]) {
    let mut frame = [int(x), int(y), UNTOUCHED, UNTOUCHED];
    let exit = run(code, &mut frame).expect("runs");
    (exit, frame)
}

/// Checks a compiled division against `expect` on every pair of `operands()`.
fn check_division(code: &CompiledTrace, name: &str, expect: fn(i32, i32) -> i32) {
    for x in operands() {
        for y in operands() {
            let (exit, frame) = divide(code, x, y);
            if y == 0 {
                assert_eq!(exit, SnapId(0), "{x} {name} 0 exits");
                assert_eq!(frame, [int(x), int(y), UNTOUCHED, int(x)], "{x} {name} 0 writes only its snapshot");
            } else {
                assert_eq!(exit, SnapId(1), "{x} {name} {y} does not exit");
                assert_eq!(frame[2], int(expect(x, y)), "{x} {name} {y}");
                assert_eq!(frame[3], UNTOUCHED, "{x} {name} {y}: the exit snapshot is not written");
            }
        }
    }
}

#[test]
fn quo_truncates_like_java_and_exits_on_a_zero_divisor() {
    let code = compile(&division(Op::Quo), K).unwrap();
    check_division(&code, "quo", i32::wrapping_div);
    // Truncation toward zero, not flooring (the grid holds these, spelled out for the reader).
    assert_eq!(divide(&code, -7, 2).1[2], int(-(7 / 2)));
    assert_eq!(divide(&code, 7, -2).1[2], int(-(7 / 2)));
    // Java's MIN / -1 is MIN (x86 idiv would trap).
    assert_eq!(divide(&code, i32::MIN, -1), (SnapId(1), [int(i32::MIN), int(-1), int(i32::MIN), UNTOUCHED]));
}

#[test]
fn rem_takes_the_dividends_sign_and_exits_on_a_zero_divisor() {
    let code = compile(&division(Op::Rem), K).unwrap();
    check_division(&code, "rem", i32::wrapping_rem);
    assert_eq!(divide(&code, -7, 2).1[2], int(-(7 % 2)));
    assert_eq!(divide(&code, 7, -2).1[2], int(7 % 2));
    // Java's MIN % -1 is 0 (x86 idiv would trap).
    assert_eq!(divide(&code, i32::MIN, -1), (SnapId(1), [int(i32::MIN), int(-1), int(0), UNTOUCHED]));
}

#[test]
fn quo_and_rem_recombine_into_the_dividend() {
    // q * y + r = x for every nonzero y (wrapping, for MIN / -1), with |r| < |y|.
    let quo = compile(&division(Op::Quo), K).unwrap();
    let rem = compile(&division(Op::Rem), K).unwrap();
    for x in operands() {
        for y in operands().filter(|&y| y != 0) {
            let q = int_of(divide(&quo, x, y).1[2]);
            let r = int_of(divide(&rem, x, y).1[2]);
            assert_eq!(q.wrapping_mul(y).wrapping_add(r), x, "{x} / {y}");
            assert!((r as i64).abs() < (y as i64).abs(), "{x} rem {y} = {r}");
            assert!(r == 0 || (r < 0) == (x < 0), "{x} rem {y} = {r} takes the dividend's sign");
        }
    }
}

/// `dividend quo: y` and `dividend rem: y` (y a constant) in a trace of `slots` words: a zero
/// divisor exits by s0 writing the dividend to `words[0]`; otherwise s1 writes the quotient and
/// the remainder to `words[1]` and `words[2]`.
fn quo_and_rem(slots: u16, dividend: Op, y: i32, words: [u16; 3]) -> Trace {
    let mut t = Trace::new(slots);
    let a = t.push(dividend, None);
    let b = t.push(Op::Const(Value::from_int(y)), None);
    let by_zero = t.snapshot(vec![(words[0], a)]);
    let q = t.push(Op::Quo(a, b), Some(by_zero));
    let r = t.push(Op::Rem(a, b), Some(by_zero));
    let done = t.snapshot(vec![(words[1], q), (words[2], r)]);
    t.push(Op::Exit, Some(done));
    t
}

#[test]
fn divisions_by_a_constant_answer_like_the_general_ones() {
    // A constant divisor other than 0 and -1 is divided by without checks; 0 and -1 keep them.
    for y in operands() {
        let code = compile(&quo_and_rem(4, Op::Input(0), y, [3, 1, 2]), K).unwrap();
        for x in operands() {
            let mut frame = [int(x), UNTOUCHED, UNTOUCHED, UNTOUCHED];
            let exit = run(&code, &mut frame).expect("runs");
            if y == 0 {
                assert_eq!((exit, frame), (SnapId(0), [int(x), UNTOUCHED, UNTOUCHED, int(x)]), "{x} / 0");
            } else {
                let want = [int(x), int(x.wrapping_div(y)), int(x.wrapping_rem(y)), UNTOUCHED];
                assert_eq!((exit, frame), (SnapId(1), want), "{x} / {y}");
            }
        }
    }
}

#[test]
fn folded_divisions_answer_what_the_backend_computes() {
    // Constant operands: the optimizer folds (or, for a zero divisor, keeps the exit); either way
    // the optimised trace must leave as the compiled original does.
    for x in operands() {
        for y in operands() {
            let t = quo_and_rem(2, Op::Const(Value::from_int(x)), y, [0, 0, 1]);
            let optimised = optimize(&t, K);
            if y != 0 {
                assert!(optimised.insts.iter().all(|i| !i.op.may_exit() || i.op == Op::Exit), "{x} {y}:\n{optimised}");
            }
            let mut frames = [[UNTOUCHED; 2]; 2];
            let mut exits = [SnapId(9); 2];
            for (k, trace) in [&t, &optimised].into_iter().enumerate() {
                exits[k] = run(&compile(trace, K).unwrap(), &mut frames[k]).unwrap();
            }
            assert_eq!((exits[0], frames[0]), (exits[1], frames[1]), "{x} and {y}:\n{t}\n{optimised}");
            let want = if y == 0 { [int(x), UNTOUCHED] } else { [int(x.wrapping_div(y)), int(x.wrapping_rem(y))] };
            assert_eq!(frames[0], want, "{x} and {y}");
        }
    }
}

/// A trace that guards input 0 with `guard` (exit s0, which writes input 0 into slot 1) and
/// otherwise exits through s1, which writes nothing.
fn guarded(guard: impl Fn(Ref) -> Op) -> Trace {
    let mut t = Trace::new(2);
    let x = t.push(Op::Input(0), None);
    let fail = t.snapshot(vec![(1, x)]);
    t.push(guard(x), Some(fail));
    let pass = t.snapshot(vec![]);
    t.push(Op::Exit, Some(pass));
    t
}

/// Runs a `guarded` trace on `x`: true when the guard passes. Checks that only the failing
/// exit writes the frame.
fn passes(code: &CompiledTrace, x: u64) -> bool {
    let mut frame = [x, UNTOUCHED];
    match run(code, &mut frame).expect("runs") {
        SnapId(0) => {
            assert_eq!(frame, [x, x], "the guard's exit writes its snapshot");
            false
        }
        SnapId(1) => {
            assert_eq!(frame, [x, UNTOUCHED], "passing writes nothing");
            true
        }
        other => panic!("unknown exit {other:?}"),
    }
}

/// One object of every kind the VM uses, some empty.
fn objects_of_every_kind(heap: &mut Heap, class: Value) -> Vec<Value> {
    vec![
        heap.alloc_pointers(class, 3, Value::from_int(0)),
        heap.alloc_pointers(class, 0, Value::from_int(0)),
        heap.alloc_bytes_from(class, b"hello"),
        heap.alloc_bytes(class, 0),
        heap.alloc_float(class, 2.5),
        heap.alloc_host(class, 42),
        class,
    ]
}

const KINDS: [Kind; 4] = [Kind::Pointers, Kind::Bytes, Kind::Float, Kind::Host];

#[test]
fn guard_kind_passes_only_objects_of_its_kind() {
    let (mut heap, class) = heap();
    let objects = objects_of_every_kind(&mut heap, class);
    for kind in KINDS {
        let code = compile(&guarded(|x| Op::GuardKind(x, kind as u8)), K).unwrap();
        for &obj in &objects {
            assert_eq!(passes(&code, obj.raw()), obj.kind() == kind, "{kind:?} guard on a {:?} object", obj.kind());
        }
        // SmallInts have no header: every kind guard exits on them without reading memory.
        for i in [0, 1, -1, 2, 3, i32::MAX, i32::MIN] {
            assert!(!passes(&code, int(i)), "{kind:?} guard on SmallInt {i}");
        }
    }
    // Every kind of object is covered above by at least one pass.
    for kind in KINDS {
        assert!(objects.iter().any(|o| o.kind() == kind), "{kind:?}");
    }
}

#[test]
fn guard_len_exits_unless_the_object_has_more_than_k() {
    let (mut heap, class) = heap();
    let mut objects = objects_of_every_kind(&mut heap, class);
    objects.push(heap.alloc_bytes_from(class, b"eight by"));
    objects.push(heap.alloc_bytes_from(class, b"nine bytes"));
    objects.push(heap.alloc_pointers(class, 300, Value::from_int(0)));
    for &obj in &objects {
        let len = obj.len() as u64;
        let ks = [0, 1, len.saturating_sub(1), len, len + 1, len + 2, 1 << 31, u32::MAX as u64];
        for k in ks.map(|k| k as u32) {
            let code = compile(&guarded(|x| Op::GuardLen(x, k)), K).unwrap();
            assert_eq!(passes(&code, obj.raw()), obj.len() as u64 > k as u64, "len {} > {k}", obj.len());
        }
    }
}

/// A trace guarding `GuardIndex(input 0, input 1)`: exit s0 (writes the index into slot 2) or
/// s1.
fn index_guard() -> Trace {
    let mut t = Trace::new(3);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let fail = t.snapshot(vec![(2, i)]);
    t.push(Op::GuardIndex(o, i), Some(fail));
    let pass = t.snapshot(vec![]);
    t.push(Op::Exit, Some(pass));
    t
}

#[test]
fn guard_index_accepts_exactly_one_to_len() {
    let (mut heap, class) = heap();
    let objects = [
        heap.alloc_pointers(class, 0, Value::from_int(0)),
        heap.alloc_pointers(class, 1, Value::from_int(0)),
        heap.alloc_pointers(class, 4, Value::from_int(0)),
        heap.alloc_bytes_from(class, b"hello"),
    ];
    let code = compile(&index_guard(), K).unwrap();
    for obj in objects {
        let len = obj.len() as i64;
        let near = [-1, 0, 1, 2, len - 1, len, len + 1, len + 2];
        let far = [i32::MIN as i64, i32::MIN as i64 + 1, -(len + 1), i32::MAX as i64];
        for i in near.into_iter().chain(far).map(|i| i as i32) {
            let mut frame = [obj.raw(), int(i), UNTOUCHED];
            let exit = run(&code, &mut frame).unwrap();
            let inside = 1 <= i as i64 && i as i64 <= len;
            assert_eq!(exit, SnapId(if inside { 1 } else { 0 }), "index {i} of a {len}-element {:?}", obj.kind());
            assert_eq!(frame[2], if inside { UNTOUCHED } else { int(i) });
        }
    }
}

#[test]
fn guard_unwatched_exits_on_any_watch_bit_and_only_then() {
    assert_eq!(WATCH_MASK, WATCH_CLASS | WATCH_ALL | WATCH_METHOD, "every lookup watch bit is in the mask");
    let (mut heap, class) = heap();
    let objects = [
        heap.alloc_pointers(class, 0, Value::from_int(0)),
        heap.alloc_pointers(class, 3, Value::from_int(0)),
        heap.alloc_pointers(class, 40, Value::from_int(0)),
        heap.alloc_bytes_from(class, b"hello"),
        class,
    ];
    let code = compile(&guarded(Op::GuardUnwatched), K).unwrap();
    for obj in objects {
        let (len, kind) = (obj.len(), obj.kind());
        for flags in 0..=u8::MAX {
            obj.set_flags(flags);
            assert_eq!(obj.flags(), flags);
            assert_eq!(passes(&code, obj.raw()), flags & WATCH_MASK == 0, "flags {flags:#010b}, len {len}");
            // The guard reads only the header.
            assert_eq!((obj.flags(), obj.len(), obj.kind()), (flags, len, kind));
        }
        obj.set_flags(!WATCH_MASK);
        assert!(passes(&code, obj.raw()), "every bit but the watch bits");
        for bit in [WATCH_CLASS, WATCH_ALL, WATCH_METHOD] {
            obj.set_flags(bit);
            assert!(!passes(&code, obj.raw()), "watch bit {bit:#x} alone");
            obj.set_flags(bit | !WATCH_MASK);
            assert!(!passes(&code, obj.raw()), "watch bit {bit:#x} among the others");
        }
        obj.set_flags(0);
    }
}

/// Element values: SmallInts at the edges and an object.
fn elements(other: Value) -> Vec<Value> {
    [i32::MIN, -1, 0, 1, i32::MAX].into_iter().map(Value::from_int).chain([other]).collect()
}

#[test]
fn load_elem_reads_the_one_based_element() {
    let (mut heap, class) = heap();
    let other = heap.alloc_bytes_from(class, b"x");
    let elems = elements(other);
    let obj = array(&mut heap, class, &elems);
    // Neighbours in the heap must not be read instead.
    let _after = heap.alloc_pointers(class, 2, Value::from_int(77));
    let mut t = Trace::new(3);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let e = t.push(Op::LoadElem(o, i), None);
    let done = t.snapshot(vec![(2, e)]);
    t.push(Op::Exit, Some(done));
    let code = compile(&t, K).unwrap();
    for index in 1..=obj.len() {
        let mut frame = [obj.raw(), int(index as i32), UNTOUCHED];
        assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
        assert_eq!(frame[2], obj.slot(index - 1).raw(), "element {index}");
        assert_eq!(frame[2], elems[index - 1].raw(), "element {index}");
    }
}

#[test]
fn store_elem_writes_only_the_one_based_element() {
    let (mut heap, class) = heap();
    let other = heap.alloc_bytes_from(class, b"x");
    let before = heap.alloc_pointers(class, 2, Value::from_int(-5));
    let obj = heap.alloc_pointers(class, 6, Value::from_int(0));
    let after = heap.alloc_pointers(class, 2, Value::from_int(5));
    let mut t = Trace::new(3);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let v = t.push(Op::Input(2), None);
    t.push(Op::StoreElem(o, i, v), None);
    let done = t.snapshot(vec![]);
    t.push(Op::Exit, Some(done));
    let code = compile(&t, K).unwrap();
    let mut expect: Vec<Value> = (0..obj.len()).map(|k| obj.slot(k)).collect();
    let values = elements(other);
    for index in 1..=obj.len() {
        for &v in &values {
            let mut frame = [obj.raw(), int(index as i32), v.raw()];
            assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
            expect[index - 1] = v;
            let got: Vec<Value> = (0..obj.len()).map(|k| obj.slot(k)).collect();
            assert_eq!(got, expect, "after storing {v:?} at {index}");
        }
    }
    assert!((0..2).all(|k| before.slot(k) == Value::from_int(-5) && after.slot(k) == Value::from_int(5)));
}

/// Load, store and load again at one index, plus a load at another: [obj, i, j, v, 0, 0, 0].
fn load_store_load() -> Trace {
    let mut t = Trace::new(7);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let j = t.push(Op::Input(2), None);
    let v = t.push(Op::Input(3), None);
    let old = t.push(Op::LoadElem(o, i), None);
    t.push(Op::StoreElem(o, i, v), None);
    let new = t.push(Op::LoadElem(o, i), None);
    let at_j = t.push(Op::LoadElem(o, j), None);
    let done = t.snapshot(vec![(4, old), (5, new), (6, at_j)]);
    t.push(Op::Exit, Some(done));
    t
}

#[test]
fn an_element_load_after_a_store_sees_it_as_written_and_as_optimised() {
    let t = load_store_load();
    let optimised = optimize(&t, K);
    for code in [compile(&t, K).unwrap(), compile(&optimised, K).unwrap()] {
        let (mut heap, class) = heap();
        let elems: Vec<Value> = (1..=4).map(|k| Value::from_int(k * 11)).collect();
        let obj = array(&mut heap, class, &elems);
        for (i, j) in [(1, 1), (1, 4), (4, 1), (2, 3)] {
            let v = Value::from_int(-1000 * i);
            let before: Vec<Value> = (0..obj.len()).map(|k| obj.slot(k)).collect();
            let mut frame = [obj.raw(), int(i), int(j), v.raw(), 0, 0, 0];
            assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
            let (i, j) = (i as usize, j as usize);
            let want_j = if i == j { v } else { before[j - 1] };
            assert_eq!(frame[4..], [before[i - 1].raw(), v.raw(), want_j.raw()], "i {i}, j {j}");
            assert_eq!(obj.slot(i - 1), v);
        }
    }
}

/// A one-instruction trace on inputs 0 and 1 and the frame to run it on. Exit s0 belongs to the
/// operation and writes input 0 into slot 2; s1 is the normal end and writes the operation's
/// value, if any, there.
struct Case {
    name: &'static str,
    trace: Trace,
    frame: Vec<u64>,
}

fn case(name: &'static str, op: fn(Ref, Ref) -> Op, inputs: [u64; 2]) -> Case {
    let mut t = Trace::new(3);
    let a = t.push(Op::Input(0), None);
    let b = t.push(Op::Input(1), None);
    let fail = t.snapshot(vec![(2, a)]);
    let r = t.push(op(a, b), Some(fail));
    let has_value = t.insts[r.0 as usize].op.has_value();
    let done = t.snapshot(if has_value { vec![(2, r)] } else { vec![] });
    t.push(Op::Exit, Some(done));
    Case { name, trace: t, frame: vec![inputs[0], inputs[1], UNTOUCHED] }
}

/// A case for each operation that may exit (besides `Exit`), with inputs that make it pass.
fn passing_cases(heap: &mut Heap, class: Value) -> Vec<Case> {
    let o = array(heap, class, &[Value::from_int(5), Value::from_int(6)]).raw();
    vec![
        case("quo", Op::Quo, [int(17), int(5)]),
        case("rem", Op::Rem, [int(17), int(5)]),
        case("guard.kind", |x, _| Op::GuardKind(x, Kind::Pointers as u8), [o, 0]),
        case("guard.len", |x, _| Op::GuardLen(x, 1), [o, 0]),
        case("guard.index", Op::GuardIndex, [o, int(2)]),
        case("guard.unwatched", |x, _| Op::GuardUnwatched(x), [o, 0]),
    ]
}

#[test]
fn force_exits_leaves_by_each_snapshot_once_then_runs_normally() {
    let (mut heap, class) = heap();
    for Case { name, trace: t, frame } in passing_cases(&mut heap, class) {
        let last = frame.len() - 1;
        // Compiled normally, the inputs pass.
        let mut normal = frame.clone();
        assert_eq!(run(&compile(&t, K).unwrap(), &mut normal).unwrap(), SnapId(1), "{name} passes");
        let code = compile_with(&t, K, forced()).unwrap();
        let mut first = frame.clone();
        assert_eq!(run(&code, &mut first).unwrap(), SnapId(0), "{name}: first run is forced out");
        let mut want = frame.clone();
        want[last] = frame[0];
        assert_eq!(first, want, "{name}: the forced exit writes its snapshot");
        for round in 0..3 {
            let mut again = frame.clone();
            assert_eq!(run(&code, &mut again).unwrap(), SnapId(1), "{name}: run {} passes", round + 2);
            assert_eq!(again, normal, "{name}: and computes what normal code does");
        }
    }
}

#[test]
fn force_exits_does_not_mask_a_real_exit() {
    // After the forced exit, a failing input still leaves by the guard's snapshot.
    let (mut heap, class) = heap();
    let bytes = heap.alloc_bytes_from(class, b"abc");
    let code = compile_with(&guarded(|x| Op::GuardKind(x, Kind::Pointers as u8)), K, forced()).unwrap();
    let pointers = heap.alloc_pointers(class, 1, Value::from_int(0));
    assert!(!passes(&code, pointers.raw()), "forced");
    assert!(!passes(&code, bytes.raw()), "a real failure");
    assert!(passes(&code, pointers.raw()));

    let code = compile_with(&division(Op::Quo), K, forced()).unwrap();
    assert_eq!(divide(&code, 9, 3).0, SnapId(0), "forced");
    assert_eq!(divide(&code, 9, 0).0, SnapId(0), "division by zero");
    assert_eq!(divide(&code, 9, 3), (SnapId(1), [int(9), int(3), int(9i32.wrapping_div(3)), UNTOUCHED]));
}

/// `sum <- 0. i <- 1. [i <= arr size] whileTrue: [x <- arr at: i. sum <- sum + (x rem: d).
/// arr at: i put: (x quo: d). i <- i + 1]` over the frame [arr, i, sum, d], as a recorder
/// would guard it. Exits: s0 (entry), s1 (loop end: index out of range), s2 (anything else).
/// Every exit precedes the store, so re-entering at any exit redoes nothing twice.
fn array_loop() -> Trace {
    let mut t = Trace::new(4);
    let arr = t.push(Op::Input(0), None);
    let i0 = t.push(Op::Input(1), None);
    let s0 = t.push(Op::Input(2), None);
    let d = t.push(Op::Input(3), None);
    let entry = t.snapshot(vec![]);
    t.push(Op::GuardKind(arr, Kind::Pointers as u8), Some(entry));
    let one = t.push(Op::Const(Value::from_int(1)), None);
    t.push(Op::Loop, None);
    let i = t.push(Op::Phi { init: i0, next: None }, None);
    let s = t.push(Op::Phi { init: s0, next: None }, None);
    let end = t.snapshot(vec![(1, i), (2, s)]);
    let out = t.snapshot(vec![(1, i), (2, s)]);
    t.push(Op::GuardIndex(arr, i), Some(end));
    let x = t.push(Op::LoadElem(arr, i), None);
    t.push(Op::GuardInt(x), Some(out));
    let q = t.push(Op::Quo(x, d), Some(out));
    let r = t.push(Op::Rem(x, d), Some(out));
    let s2 = t.push(Op::AddOv(s, r), Some(out));
    let i2 = t.push(Op::AddOv(i, one), Some(out));
    t.push(Op::GuardUnwatched(arr), Some(out));
    // The same element again (the optimizer shares it).
    let x_again = t.push(Op::LoadElem(arr, i), None);
    t.push(Op::GuardInt(x_again), Some(out));
    t.push(Op::StoreElem(arr, i, q), None);
    t.close_phi(i, i2);
    t.close_phi(s, s2);
    t
}

/// Where `array_loop` leaves: (exit, i, sum, elements).
type LoopEnd = (SnapId, i32, i32, Vec<Value>);

/// What `array_loop` leaves, computed in Rust.
fn array_loop_in_rust(elems: &[Value], d: i32) -> LoopEnd {
    let mut elems = elems.to_vec();
    let mut sum = 0i32;
    for k in 0..elems.len() {
        let i = k as i32 + 1;
        let Some(x) = elems[k].as_int() else { return (SnapId(2), i, sum, elems) };
        if d == 0 {
            return (SnapId(2), i, sum, elems);
        }
        let Some(s2) = sum.checked_add(x.wrapping_rem(d)) else { return (SnapId(2), i, sum, elems) };
        sum = s2;
        elems[k] = Value::from_int(x.wrapping_div(d));
    }
    (SnapId(1), elems.len() as i32 + 1, sum, elems)
}

/// Runs compiled `array_loop` code from i = 1, sum = 0, re-entering after every exit but the
/// loop's end, at most `max_runs` times: answers the final (exit, i, sum, elements) and the
/// number of runs.
fn run_array_loop(code: &CompiledTrace, arr: Value, d: i32, max_runs: usize) -> (LoopEnd, usize) {
    let mut frame = [arr.raw(), int(1), int(0), int(d)];
    for runs in 1..=max_runs {
        let exit = run(code, &mut frame).unwrap();
        let i = int_of(frame[1]);
        if runs == max_runs || (exit == SnapId(1) && i as usize > arr.len()) {
            let elems = (0..arr.len()).map(|k| arr.slot(k)).collect();
            return ((exit, i, int_of(frame[2]), elems), runs);
        }
    }
    unreachable!("max_runs is at least 1")
}

fn array_inputs(heap: &mut Heap, class: Value) -> Vec<(Vec<Value>, i32)> {
    let squares: Vec<Value> = (1..=20).map(|k: i32| Value::from_int(k * k - 50)).collect();
    let mut with_object = squares.clone();
    with_object[6] = heap.alloc_bytes_from(class, b"not a SmallInt");
    let big = vec![Value::from_int(i32::MAX); 4];
    let edges = [i32::MIN, -1, i32::MAX, 0, 7].map(Value::from_int).to_vec();
    vec![
        (squares.clone(), 3),
        (squares.clone(), -4),
        (squares, 0),
        (with_object, 5),
        (big, i32::MAX - 1),
        (edges.clone(), -1),
        (edges, 2),
        ([i32::MAX - 5, 10, 3].map(Value::from_int).to_vec(), i32::MIN),
        (vec![], 3),
    ]
}

#[test]
fn an_array_loop_matches_rust_compiled_as_written_and_optimised() {
    let t = array_loop();
    let optimised = optimize(&t, K);
    assert!(optimised.insts.len() < t.insts.len(), "the repeated load and guard go:\n{optimised}");
    for code in [compile(&t, K).unwrap(), compile(&optimised, K).unwrap()] {
        let (mut heap, class) = heap();
        for (elems, d) in array_inputs(&mut heap, class) {
            let arr = array(&mut heap, class, &elems);
            // A real exit repeats when re-entered: the second run must leave the same way.
            let (got, runs) = run_array_loop(&code, arr, d, 2);
            let want = array_loop_in_rust(&elems, d);
            assert_eq!(got, want, "{elems:?} by {d}");
            assert_eq!(runs, if want.0 == SnapId(1) { 1 } else { 2 }, "{elems:?} by {d}");
        }
    }
}

#[test]
fn a_watched_array_leaves_the_loop_before_any_store() {
    let (mut heap, class) = heap();
    let elems: Vec<Value> = (1..=5).map(Value::from_int).collect();
    let arr = array(&mut heap, class, &elems);
    arr.set_flags(WATCH_ALL);
    let code = compile(&array_loop(), K).unwrap();
    let mut frame = [arr.raw(), int(1), int(0), int(2)];
    assert_eq!(run(&code, &mut frame).unwrap(), SnapId(2));
    assert_eq!(frame, [arr.raw(), int(1), int(0), int(2)], "left on the first iteration");
    assert_eq!((0..arr.len()).map(|k| arr.slot(k)).collect::<Vec<_>>(), elems, "nothing stored");
    arr.set_flags(0);
    let (got, _) = run_array_loop(&code, arr, 2, 1);
    assert_eq!(got, array_loop_in_rust(&elems, 2));
}

#[test]
fn a_forced_array_loop_exits_once_per_exit_point_and_ends_as_normal_code_does() {
    let t = array_loop();
    let exit_points = t.insts.iter().filter(|i| i.op.may_exit()).count();
    let (mut heap, class) = heap();
    let squares: Vec<Value> = (1..=20).map(|k: i32| Value::from_int(k * k - 50)).collect();
    let arr = array(&mut heap, class, &squares);
    let code = compile_with(&t, K, forced()).unwrap();
    let (got, runs) = run_array_loop(&code, arr, 3, 2 * exit_points);
    assert_eq!(got, array_loop_in_rust(&squares, 3));
    assert_eq!(runs, exit_points + 1, "each exit point forced once, then one run to the end");
}

#[test]
fn guard_ne_exits_exactly_when_both_are_the_same_value() {
    let (mut heap, class) = heap();
    let a = array(&mut heap, class, &[]);
    let b = array(&mut heap, class, &[]);
    let mut t = Trace::new(2);
    let x = t.push(Op::Input(0), None);
    let y = t.push(Op::Input(1), None);
    let same = t.snapshot(vec![]);
    t.push(Op::GuardNe(x, y), Some(same));
    let differ = t.snapshot(vec![]);
    t.push(Op::Exit, Some(differ));
    for options in [Options::default(), forced()] {
        let code = compile_with(&t, K, options).expect("compiles");
        let mut exits = Vec::new();
        for (p, q) in [(a, b), (a, a), (b, a), (b, b)] {
            exits.push(run(&code, &mut [p.raw(), q.raw()]).unwrap().0);
        }
        exits.extend([(int(3), int(3)), (int(3), int(4))].map(|(p, q)| run(&code, &mut [p, q]).unwrap().0));
        if options.force_exits {
            assert_eq!(exits[0], 0, "forced: the first run leaves by the guard");
            assert_eq!(&exits[1..], &[0, 1, 0, 0, 1]);
        } else {
            assert_eq!(exits, vec![1, 0, 1, 0, 0, 1]);
        }
    }
}

#[test]
fn load_byte_reads_the_one_based_byte_as_a_small_int() {
    let (mut heap, class) = heap();
    let data: Vec<u8> = vec![0, 1, 127, 128, 200, 255];
    let obj = heap.alloc_bytes_from(class, &data);
    let mut t = Trace::new(3);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let b = t.push(Op::LoadByte(o, i), None);
    let done = t.snapshot(vec![(2, b)]);
    t.push(Op::Exit, Some(done));
    let code = compile(&t, K).unwrap();
    for (index, &want) in data.iter().enumerate() {
        let mut frame = [obj.raw(), int(index as i32 + 1), UNTOUCHED];
        assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
        assert_eq!(frame[2], int(want as i32), "byte {}", index + 1);
    }
}

#[test]
fn store_byte_writes_the_low_eight_bits_at_the_one_based_index_only() {
    let (mut heap, class) = heap();
    let before = heap.alloc_bytes_from(class, &[0xaa; 8]);
    let obj = heap.alloc_bytes_from(class, &[7; 5]);
    let after = heap.alloc_bytes_from(class, &[0x55; 8]);
    let mut t = Trace::new(3);
    let o = t.push(Op::Input(0), None);
    let i = t.push(Op::Input(1), None);
    let v = t.push(Op::Input(2), None);
    t.push(Op::StoreByte(o, i, v), None);
    let done = t.snapshot(vec![]);
    t.push(Op::Exit, Some(done));
    let code = compile(&t, K).unwrap();
    let mut expect = obj.bytes().to_vec();
    // Primitive 22 stores `value as u8`: the low 8 bits of the 32-bit SmallInt.
    for index in 1..=obj.len() {
        for v in [0, 1, 127, 128, 255, 256, 300, -1, -200, i32::MIN, i32::MAX] {
            let mut frame = [obj.raw(), int(index as i32), int(v)];
            assert_eq!(run(&code, &mut frame).unwrap(), SnapId(0));
            expect[index - 1] = v as u8;
            assert_eq!(obj.bytes(), &expect[..], "after storing {v} at {index}");
        }
    }
    assert_eq!(before.bytes(), &[0xaa; 8]);
    assert_eq!(after.bytes(), &[0x55; 8]);
}
