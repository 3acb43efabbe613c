//! Backend tests for `Call`: every runtime helper (Float arithmetic and comparison, SmallInt to
//! Float, byte-object comparison, allocation and concatenation, the method-identity guard) run by
//! compiled code on objects of a real heap and checked against Rust's own answer, and the exits a
//! helper takes instead of failing.

use super::world::{world, World};
use super::K;
use tracevm::heap::Value;
use tracevm::jit::ir::{Helper, Op, SnapId, Trace};
use tracevm::jit::x64::{compile_with, CompiledTrace, Options};

const UNTOUCHED: u64 = Value::from_int(-123_456_789).raw();
const CALL_EXIT: SnapId = SnapId(0);
const DONE: SnapId = SnapId(1);

/// `call helper` on inputs 0, 1, 2, then `then` on its result and input 3 (if any); writes the
/// final value to [4]. The helper's exit writes nothing.
fn trace(helper: Helper, then: Option<Helper>) -> Trace {
    let mut t = Trace::new(5);
    let ins: Vec<_> = (0..4).map(|k| t.push(Op::Input(k), None)).collect();
    let s0 = t.snapshot(vec![]);
    let mut r = t.push(Op::Call(helper, ins[0], ins[1], ins[2]), Some(s0));
    if let Some(h) = then {
        r = t.push(Op::Call(h, r, ins[3], ins[3]), Some(s0));
    }
    let done = t.snapshot(vec![(4, r)]);
    t.push(Op::Exit, Some(done));
    t
}

fn compiled(w: &World, helper: Helper, then: Option<Helper>) -> CompiledTrace {
    let options = Options { runtime: w.runtime.address(), ..Options::default() };
    compile_with(&trace(helper, then), K, options).expect("compiles")
}

fn run(w: &mut World, code: &CompiledTrace, inputs: [u64; 4]) -> (SnapId, u64) {
    let mut frame = [inputs[0], inputs[1], inputs[2], inputs[3], UNTOUCHED];
    w.attach();
    // SAFETY: every input is a SmallInt or a live object of `w.heap`; the helpers check kinds
    // themselves, and the runtime is attached to that heap, which nothing else uses meanwhile.
    let exit = unsafe { code.run(&mut frame) }.expect("runs");
    w.runtime.detach();
    (exit, frame[4])
}

const FLOATS: [f64; 10] = [0.0, -0.0, 1.0, -2.5, 3.25, 1e300, -1e-300, 7.0e9, f64::INFINITY, f64::MIN_POSITIVE];

fn int(i: i32) -> u64 {
    Value::from_int(i).raw()
}

fn boolean(b: bool) -> u64 {
    if b { K.true_ } else { K.false_ }.raw()
}

#[test]
fn float_arithmetic_answers_what_rust_computes() {
    let mut w = world();
    let class = w.class.raw();
    type Arithmetic = fn(f64, f64) -> f64;
    let ops: [(Helper, Arithmetic); 4] = [
        (Helper::FloatAdd, |q, p| q + p),
        (Helper::FloatSub, |q, p| q - p),
        (Helper::FloatMul, |q, p| q * p),
        (Helper::FloatDiv, |q, p| q / p),
    ];
    for (helper, f) in ops {
        // The result, then `float.eq` against Rust's answer (as a Float): [4] is true.
        let code = compiled(&w, helper, Some(Helper::FloatEq));
        for p in FLOATS {
            for q in FLOATS {
                let expected = f(q, p);
                if expected.is_nan() {
                    continue; // NaN equals nothing; covered by the comparison test
                }
                let pf = w.heap.alloc_float(w.class, p);
                let qf = w.heap.alloc_float(w.class, q);
                let ef = w.heap.alloc_float(w.class, expected);
                let got = run(&mut w, &code, [class, pf.raw(), qf.raw(), ef.raw()]);
                assert_eq!(got, (DONE, boolean(true)), "{helper:?} q={q} p={p}");
            }
        }
    }
}

#[test]
fn float_comparisons_and_conversion_answer_what_rust_computes() {
    let mut w = world();
    let lt = compiled(&w, Helper::FloatLt, None);
    let eq = compiled(&w, Helper::FloatEq, None);
    let values: Vec<f64> = FLOATS.iter().copied().chain([f64::NAN]).collect();
    for &p in &values {
        for &q in &values {
            let (pf, qf) = (w.heap.alloc_float(w.class, p), w.heap.alloc_float(w.class, q));
            let x = [pf.raw(), qf.raw(), qf.raw(), 0];
            assert_eq!(run(&mut w, &lt, x), (DONE, boolean(q < p)), "{q} < {p}");
            assert_eq!(run(&mut w, &eq, x), (DONE, boolean(q == p)), "{q} = {p}");
        }
    }
    let class = w.class.raw();
    let as_float = compiled(&w, Helper::AsFloat, Some(Helper::FloatEq));
    for i in [0, 1, -1, 12345, i32::MAX, i32::MIN] {
        let e = w.heap.alloc_float(w.class, i as f64);
        assert_eq!(run(&mut w, &as_float, [class, int(i), int(i), e.raw()]), (DONE, boolean(true)), "{i}");
    }
}

#[test]
fn byte_comparison_is_signed_and_prefixes_come_first() {
    let mut w = world();
    let code = compiled(&w, Helper::Compare, None);
    let words: [&[u8]; 7] = [b"", b"a", b"ab", b"abc", b"b", &[0x80], &[0x7f]];
    for a in words {
        for b in words {
            let ao = w.heap.alloc_bytes_from(w.class, a);
            let bo = w.heap.alloc_bytes_from(w.class, b);
            let expected = a.iter().map(|&x| x as i8).cmp(b.iter().map(|&x| x as i8)) as i32;
            assert_eq!(run(&mut w, &code, [ao.raw(), bo.raw(), bo.raw(), 0]), (DONE, int(expected)), "{a:?} {b:?}");
        }
    }
}

#[test]
fn new_bytes_are_zeros_of_the_length() {
    let mut w = world();
    let class = w.class.raw();
    // New bytes, then compared with a zero-filled object made in Rust: [4] is 0.
    let code = compiled(&w, Helper::NewBytes, Some(Helper::Compare));
    for n in [0usize, 1, 7, 8, 9, 100] {
        let zeros = w.heap.alloc_bytes(w.class, n);
        assert_eq!(run(&mut w, &code, [class, int(n as i32), 0, zeros.raw()]), (DONE, int(0)), "{n}");
        let longer = w.heap.alloc_bytes(w.class, n + 1);
        assert_eq!(run(&mut w, &code, [class, int(n as i32), 0, longer.raw()]), (DONE, int(-1)), "{n}");
    }
}

#[test]
fn concatenation_copies_a_then_b_into_an_object_of_the_class_given() {
    let mut w = world();
    let class = w.class.raw();
    // `bytes.concat` (class, b, a), then compared with the concatenation made in Rust: [4] is 0.
    let code = compiled(&w, Helper::Concat, Some(Helper::Compare));
    let words: [&[u8]; 5] = [b"", b"a", b"seven77", b"eight888", &[0x80, 0, 0xff]];
    for a in words {
        for b in words {
            let (ao, bo) = (w.heap.alloc_bytes_from(w.class, a), w.heap.alloc_bytes_from(w.class, b));
            let want = w.heap.alloc_bytes_from(w.class, &[a, b].concat());
            assert_eq!(run(&mut w, &code, [class, bo.raw(), ao.raw(), want.raw()]), (DONE, int(0)), "{a:?} + {b:?}");
        }
    }
    // The new object is of the class given (not a's): a class guard on it passes.
    let other = w.heap.alloc_pointers(w.class, 5, w.nil);
    let mut t = Trace::new(5);
    let ins: Vec<_> = (0..3).map(|k| t.push(Op::Input(k), None)).collect();
    let s0 = t.snapshot(vec![]);
    let r = t.push(Op::Call(Helper::Concat, ins[0], ins[1], ins[2]), Some(s0));
    let wrong_class = t.snapshot(vec![(3, r)]);
    t.push(Op::GuardClass(r, other), Some(wrong_class));
    let done = t.snapshot(vec![(4, r)]);
    t.push(Op::Exit, Some(done));
    let options = Options { runtime: w.runtime.address(), ..Options::default() };
    let code = compile_with(&t, K, options).expect("compiles");
    let (ao, bo) = (w.heap.alloc_bytes_from(w.class, b"ab"), w.heap.alloc_bytes_from(w.class, b"cde"));
    assert_eq!(run(&mut w, &code, [other.raw(), bo.raw(), ao.raw(), 0]).0, SnapId(2));
}

#[test]
fn helpers_exit_instead_of_failing() {
    let mut w = world();
    let f = w.heap.alloc_float(w.class, 1.5).raw();
    let s = w.heap.alloc_bytes_from(w.class, b"x").raw();
    let object = w.class.raw();
    let add = compiled(&w, Helper::FloatAdd, None);
    for (p, q) in [(int(1), f), (f, int(1)), (s, f), (f, object)] {
        assert_eq!(run(&mut w, &add, [object, p, q, 0]), (CALL_EXIT, UNTOUCHED));
    }
    let lt = compiled(&w, Helper::FloatLt, None);
    assert_eq!(run(&mut w, &lt, [f, int(2), 0, 0]), (CALL_EXIT, UNTOUCHED));
    let as_float = compiled(&w, Helper::AsFloat, None);
    assert_eq!(run(&mut w, &as_float, [object, f, 0, 0]), (CALL_EXIT, UNTOUCHED));
    let compare = compiled(&w, Helper::Compare, None);
    assert_eq!(run(&mut w, &compare, [s, object, 0, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &compare, [int(3), s, 0, 0]), (CALL_EXIT, UNTOUCHED));
    let new_bytes = compiled(&w, Helper::NewBytes, None);
    assert_eq!(run(&mut w, &new_bytes, [object, int(-1), 0, 0]), (CALL_EXIT, UNTOUCHED));
    let concat = compiled(&w, Helper::Concat, None);
    assert_eq!(run(&mut w, &concat, [object, s, f, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &concat, [object, int(1), s, 0]), (CALL_EXIT, UNTOUCHED));
    // A collection due: helpers that allocate exit, comparisons still answer.
    while !w.heap.wants_collection() {
        w.heap.alloc_pointers(w.class, 1000, w.nil);
    }
    assert_eq!(run(&mut w, &add, [object, f, f, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &new_bytes, [object, int(1), 0, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &concat, [object, s, s, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &lt, [f, f, 0, 0]), (DONE, boolean(false)));
    assert_eq!(run(&mut w, &compare, [s, s, 0, 0]), (DONE, int(0)));
}

/// A class in the world's heap: `[name, parentClass, methods, size, variables]`.
fn class(w: &mut World, parent: Value, methods: &[Value]) -> Value {
    let array = w.heap.alloc_pointers(w.class, methods.len(), w.nil);
    for (i, &m) in methods.iter().enumerate() {
        array.set_slot(i, m);
    }
    let c = w.heap.alloc_pointers(w.class, 5, w.nil);
    c.set_slot(tracevm::interp::class::PARENT, parent);
    c.set_slot(tracevm::interp::class::METHODS, array);
    c
}

/// A method named `selector` (only its name slot matters to lookup).
fn method(w: &mut World, selector: &[u8]) -> Value {
    let m = w.heap.alloc_pointers(w.class, tracevm::interp::meth::SIZE, w.nil);
    m.set_slot(tracevm::interp::meth::NAME, w.heap.alloc_bytes_from(w.class, selector));
    m
}

#[test]
fn the_method_guard_answers_true_exactly_when_lookup_finds_the_method() {
    let mut w = world();
    let code = compiled(&w, Helper::Finds, None);
    let (foo, bar, foo_again) = (method(&mut w, b"foo"), method(&mut w, b"bar"), method(&mut w, b"foo"));
    let nil = w.nil;
    let base = class(&mut w, nil, &[bar, foo]);
    let sub = class(&mut w, base, &[]);
    let subsub = class(&mut w, sub, &[bar]);
    let over = class(&mut w, base, &[foo_again]);
    let instance = |w: &mut World, c: Value| w.heap.alloc_pointers(c, 1, w.nil).raw();
    let (b, s, ss, o) =
        (instance(&mut w, base), instance(&mut w, sub), instance(&mut w, subsub), instance(&mut w, over));
    // Selectors are compared by content, as the interpreter's lookup compares them.
    let selector = w.heap.alloc_bytes_from(w.class, b"foo").raw();
    let (m, other) = (foo.raw(), foo_again.raw());
    for (receiver, method, found) in
        [(b, m, true), (s, m, true), (ss, m, true), (o, m, false), (o, other, true), (b, other, false)]
    {
        let expected = if found { (DONE, boolean(true)) } else { (CALL_EXIT, UNTOUCHED) };
        assert_eq!(run(&mut w, &code, [receiver, selector, method, 0]), expected, "{receiver:#x} {method:#x}");
    }
    // SmallInts leave; so does a selector nobody defines.
    assert_eq!(run(&mut w, &code, [int(3), selector, m, 0]), (CALL_EXIT, UNTOUCHED));
    let nothing = w.heap.alloc_bytes_from(w.class, b"baz").raw();
    assert_eq!(run(&mut w, &code, [s, nothing, m, 0]), (CALL_EXIT, UNTOUCHED));
    // Nothing is cached: a method installed in between is seen at once; and nothing is marked
    // (the interpreter's watch flags stay as they were).
    let sub_methods = sub.slot(tracevm::interp::class::METHODS);
    let flags = (sub.flags(), sub_methods.flags());
    let overriding = w.heap.alloc_pointers(w.class, 1, w.nil);
    overriding.set_slot(0, foo_again);
    sub.set_slot(tracevm::interp::class::METHODS, overriding);
    assert_eq!(run(&mut w, &code, [s, selector, m, 0]), (CALL_EXIT, UNTOUCHED));
    assert_eq!(run(&mut w, &code, [s, selector, other, 0]), (DONE, boolean(true)));
    assert_eq!((sub.flags(), sub_methods.flags()), flags);
}
