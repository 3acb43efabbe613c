//! Peeled loops behave like the loops as recorded: random loop bodies that load, check, compute
//! and store SmallInts in two heap Arrays are compiled as written and after `opt::optimize`
//! (which peels them, carries values in phis and keeps loads across stores behind `GuardNe`),
//! then run on the same data with the same budget of iterations. Both must leave by the same
//! snapshot (the optimised one names it through `copy_of`) with the same frame and arrays.

use proptest::prelude::*;
use tracevm::heap::{Heap, Value};
use tracevm::jit::ir::{Booleans, Op, Ref, SnapId, Trace};
use tracevm::jit::opt::optimize;
use tracevm::jit::x64::{compile_with, Options};

const B: Booleans = Booleans { true_: Value::from_int(1), false_: Value::from_int(0) };
/// Frame: the two arrays, then two words exits write.
const SLOTS: u16 = 4;
const LEN: u32 = 3;

#[derive(Clone, Debug)]
enum Step {
    Load(bool, u32),
    Store(bool, u32, usize),
    LoadElem(bool, usize),
    StoreElem(bool, usize, usize),
    Const(i32),
    Arith(u8, usize, usize),
    Compare(u8, usize, usize),
    GuardBool(usize, bool),
    GuardInt(usize),
}

fn small_int() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), Just(1), Just(-1), Just(2), Just(i32::MAX), Just(i32::MIN), -20i32..20, any::<i32>()]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0..LEN).prop_map(|(o, k)| Step::Load(o, k)),
        (any::<bool>(), 0..LEN, any::<usize>()).prop_map(|(o, k, v)| Step::Store(o, k, v)),
        (any::<bool>(), any::<usize>()).prop_map(|(o, i)| Step::LoadElem(o, i)),
        (any::<bool>(), any::<usize>(), any::<usize>()).prop_map(|(o, i, v)| Step::StoreElem(o, i, v)),
        small_int().prop_map(Step::Const),
        (0u8..3, any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Arith(o, a, b)),
        (0u8..3, any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Compare(o, a, b)),
        (any::<usize>(), any::<bool>()).prop_map(|(c, b)| Step::GuardBool(c, b)),
        any::<usize>().prop_map(Step::GuardInt),
    ]
}

/// A loop trace in the recorder's shape: inputs, `Loop`, one iteration (guards before stores).
fn build(steps: &[Step], counter: bool) -> Trace {
    let mut t = Trace::new(SLOTS);
    let arrays = [t.push(Op::Input(0), None), t.push(Op::Input(1), None)];
    t.push(Op::Loop, None);
    t.snapshot(vec![]); // s0: the loop header (where fuel runs out)
    let mut ints: Vec<Ref> = Vec::new();
    let mut bools: Vec<Ref> = Vec::new();
    if counter {
        // An induction variable in slot 0 of the first array, as `to:do:` keeps one.
        let i = t.push(Op::LoadSlot(arrays[0], 0), None);
        t.push(Op::GuardInt(i), Some(SnapId(0)));
        let one = t.push(Op::Const(Value::from_int(1)), None);
        let next = t.push(Op::AddOv(i, one), Some(SnapId(0)));
        t.push(Op::StoreSlot(arrays[0], 0, next), None);
        ints.extend([i, next]);
    }
    let snapshot = |t: &mut Trace, ints: &[Ref]| {
        let entries = ints.iter().rev().take(2).enumerate().map(|(k, &r)| (2 + k as u16, r));
        t.snapshot(entries.collect())
    };
    // Index guards need a SmallInt in 1..=LEN: take the value modulo LEN, plus one.
    let index = |t: &mut Trace, ints: &[Ref], i: usize| -> Ref {
        match ints.get(i % ints.len().max(1)) {
            Some(&v) if !i.is_multiple_of(3) => {
                let len = t.push(Op::Const(Value::from_int(LEN as i32)), None);
                let r = t.push(Op::Rem(v, len), Some(SnapId(0)));
                let r = t.push(Op::MulOv(r, r), Some(SnapId(0)));
                let r = t.push(Op::Rem(r, len), Some(SnapId(0)));
                let one = t.push(Op::Const(Value::from_int(1)), None);
                t.push(Op::AddOv(r, one), Some(SnapId(0)))
            }
            _ => t.push(Op::Const(Value::from_int(1 + (i % LEN as usize) as i32)), None),
        }
    };
    for s in steps {
        match *s {
            Step::Load(o, k) => {
                let v = t.push(Op::LoadSlot(arrays[o as usize], k), None);
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardInt(v), Some(snap));
                ints.push(v);
            }
            Step::Store(o, k, v) if !ints.is_empty() => {
                t.push(Op::StoreSlot(arrays[o as usize], k, ints[v % ints.len()]), None);
            }
            Step::LoadElem(o, i) => {
                let i = index(&mut t, &ints, i);
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardIndex(arrays[o as usize], i), Some(snap));
                let v = t.push(Op::LoadElem(arrays[o as usize], i), None);
                t.push(Op::GuardInt(v), Some(snap));
                ints.push(v);
            }
            Step::StoreElem(o, i, v) if !ints.is_empty() => {
                let i = index(&mut t, &ints, i);
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardIndex(arrays[o as usize], i), Some(snap));
                t.push(Op::StoreElem(arrays[o as usize], i, ints[v % ints.len()]), None);
            }
            Step::Const(c) => ints.push(t.push(Op::Const(Value::from_int(c)), None)),
            Step::Arith(o, a, b) if !ints.is_empty() => {
                let (a, b) = (ints[a % ints.len()], ints[b % ints.len()]);
                let snap = snapshot(&mut t, &ints);
                ints.push(t.push([Op::AddOv(a, b), Op::SubOv(a, b), Op::MulOv(a, b)][o as usize], Some(snap)));
            }
            Step::Compare(o, a, b) if !ints.is_empty() => {
                let (a, b) = (ints[a % ints.len()], ints[b % ints.len()]);
                bools.push(t.push([Op::Lt(a, b), Op::Le(a, b), Op::Eq(a, b)][o as usize], None));
            }
            Step::GuardBool(c, want) if !bools.is_empty() => {
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardIs(bools[c % bools.len()], B.of(want)), Some(snap));
            }
            Step::GuardInt(a) if !ints.is_empty() => {
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardInt(ints[a % ints.len()]), Some(snap));
            }
            _ => {}
        }
    }
    t
}

/// Runs `t` on fresh arrays holding `data` with `fuel` arrivals at the loop head; answers the
/// snapshot it left by (as recorded), the frame words it wrote, and both arrays' contents.
fn run(t: &Trace, data: &[i32], fuel: u64) -> (SnapId, Vec<u64>, Vec<i64>) {
    let mut heap = Heap::new();
    let class = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
    let arrays: Vec<Value> = (0..2)
        .map(|a| {
            let arr = heap.alloc_pointers(class, LEN as usize, Value::from_int(0));
            for k in 0..LEN as usize {
                arr.set_slot(k, Value::from_int(data[(a * LEN as usize + k) % data.len()]));
            }
            arr
        })
        .collect();
    let fuel_cell = Box::new(std::cell::Cell::new(fuel));
    let options = Options { fuel: fuel_cell.as_ptr() as u64, fuel_exit: Some(SnapId(0)), ..Options::default() };
    let code = compile_with(t, B, options).expect("compiles");
    let mut frame = vec![arrays[0].raw(), arrays[1].raw(), 0, 0];
    // SAFETY: inputs 0 and 1 are live Arrays of LEN slots; every slot load and store names a slot
    // below LEN and every element access is behind its index guard.
    let exit = unsafe { code.run(&mut frame) }.expect("runs");
    let contents = arrays.iter().flat_map(|a| (0..LEN as usize).map(move |k| a.slot(k).raw() as i64)).collect();
    (t.origin(exit), frame[2..].to_vec(), contents)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn peeled_loops_behave_like_the_loops_as_recorded(
        steps in prop::collection::vec(step(), 1..24),
        data in prop::collection::vec(small_int(), 1..10),
        iterations in 1u64..6,
        counter in any::<bool>(),
    ) {
        let recorded = build(&steps, counter);
        prop_assert_eq!(recorded.verify(), Ok(()));
        let peeled = optimize(&recorded, B);
        prop_assert_eq!(peeled.verify(), Ok(()), "{}", peeled);
        // The recorded form reaches its loop head once before the first iteration; the peeled
        // one first after it.
        let a = run(&recorded, &data, iterations + 1);
        let b = run(&peeled, &data, iterations);
        prop_assert_eq!(a, b, "\n--- recorded\n{}\n--- peeled\n{}", recorded, peeled);
    }
}
