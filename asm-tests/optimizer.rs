//! The optimizer changes nothing observable: random straight-line traces, compiled as written
//! and after `opt::optimize`, leave by the same snapshot with the same frame buffer on random
//! inputs (SmallInts near the 32-bit edges, so overflow exits happen).

use proptest::prelude::*;
use tracevm::heap::Value;
use tracevm::jit::ir::{Booleans, Op, Ref, Trace};
use tracevm::jit::opt::optimize;
use tracevm::jit::x64::compile;

const B: Booleans = Booleans { true_: Value::from_int(1), false_: Value::from_int(0) };
const SLOTS: u16 = 4;

/// One generated step; operand numbers pick from the values built so far (modulo their count).
#[derive(Clone, Debug)]
enum Step {
    Const(i32),
    Arith(u8, usize, usize),
    Compare(u8, usize, usize),
    GuardBool(usize, bool),
    GuardInt(usize),
    Repeat(usize),
}

fn edge_int() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(-1),
        Just(2),
        Just(i32::MAX),
        Just(i32::MIN),
        Just(46341),
        Just(65536),
        -1000i32..1000,
        any::<i32>()
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        edge_int().prop_map(Step::Const),
        (0u8..3, any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Arith(o, a, b)),
        (0u8..3, any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Compare(o, a, b)),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Step::GuardBool(a, b)),
        any::<usize>().prop_map(Step::GuardInt),
        any::<usize>().prop_map(Step::Repeat),
    ]
}

/// Builds a verified trace from the steps. Every exit writes a few live values to the frame.
fn build(steps: &[Step], picks: &[usize]) -> Trace {
    let mut t = Trace::new(SLOTS);
    let mut ints: Vec<Ref> = Vec::new();
    let mut bools: Vec<Ref> = Vec::new();
    let mut arith: Vec<Op> = Vec::new();
    let entry = t.snapshot(vec![]);
    for k in 0..SLOTS {
        let r = t.push(Op::Input(k), None);
        t.push(Op::GuardInt(r), Some(entry));
        ints.push(r);
    }
    let mut pick = picks.iter().cycle();
    let mut snapshot = |t: &mut Trace, ints: &[Ref]| {
        let entries = (0..2).map(|_| (*pick.next().unwrap() as u16 % SLOTS, ints[*pick.next().unwrap() % ints.len()]));
        t.snapshot(entries.collect())
    };
    for s in steps {
        match *s {
            Step::Const(i) => ints.push(t.push(Op::Const(Value::from_int(i)), None)),
            Step::Arith(o, a, b) => {
                let (a, b) = (ints[a % ints.len()], ints[b % ints.len()]);
                let op = [Op::AddOv(a, b), Op::SubOv(a, b), Op::MulOv(a, b)][o as usize];
                let snap = snapshot(&mut t, &ints);
                ints.push(t.push(op, Some(snap)));
                arith.push(op);
            }
            Step::Compare(o, a, b) => {
                let (a, b) = (ints[a % ints.len()], ints[b % ints.len()]);
                bools.push(t.push([Op::Lt(a, b), Op::Le(a, b), Op::Eq(a, b)][o as usize], None));
            }
            Step::GuardBool(c, want) if !bools.is_empty() => {
                let c = bools[c % bools.len()];
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardIs(c, B.of(want)), Some(snap));
            }
            Step::GuardInt(a) => {
                let snap = snapshot(&mut t, &ints);
                t.push(Op::GuardInt(ints[a % ints.len()]), Some(snap));
            }
            Step::Repeat(k) if !arith.is_empty() => {
                let op = arith[k % arith.len()];
                let snap = snapshot(&mut t, &ints);
                ints.push(t.push(op, Some(snap)));
            }
            _ => {}
        }
    }
    let last = snapshot(&mut t, &ints);
    t.push(Op::Exit, Some(last));
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn optimised_traces_behave_like_the_originals(
        steps in prop::collection::vec(step(), 1..40),
        picks in prop::collection::vec(any::<usize>(), 1..16),
        inputs in prop::collection::vec(prop::collection::vec(edge_int(), SLOTS as usize), 1..6),
    ) {
        let original = build(&steps, &picks);
        prop_assert_eq!(original.verify(), Ok(()));
        let optimised = optimize(&original, B);
        prop_assert_eq!(optimised.verify(), Ok(()), "{}", optimised);
        prop_assert!(optimised.insts.len() <= original.insts.len());
        let a = compile(&original, B).unwrap();
        let b = compile(&optimised, B).unwrap();
        for frame in inputs {
            let mut fa: Vec<u64> = frame.iter().map(|&i| Value::from_int(i).raw()).collect();
            let mut fb = fa.clone();
            // SAFETY: the generated traces read no objects (SmallInt inputs and arithmetic only).
            let ea = unsafe { a.run(&mut fa) }.unwrap();
            // SAFETY: as above.
            let eb = unsafe { b.run(&mut fb) }.unwrap();
            prop_assert_eq!(ea, eb, "exits differ\n{}\n{}", original, optimised);
            prop_assert_eq!(fa, fb, "frames differ\n{}\n{}", original, optimised);
        }
    }
}
