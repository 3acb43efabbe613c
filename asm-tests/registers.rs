//! Backend tests for register allocation: more live values than registers, values live across
//! helper calls and read by the call's own exit, and loop-carried values whose back-edge copies
//! form cycles. Each trace's answers are checked against Rust computing the same thing.

use super::world::world;
use super::{int, run, K};
use tracevm::heap::Value;
use tracevm::jit::ir::{Helper, Op, Ref, SnapId, Trace};
use tracevm::jit::x64::{compile, compile_with, Options};

/// Slot k of `frame` as a SmallInt.
fn small(frame: &[u64], k: usize) -> i32 {
    let raw = frame[k];
    assert_eq!(raw & 1, 1, "slot {k} holds a SmallInt");
    ((raw as i64) >> 1) as i32
}

/// `n` inputs, the sum of each neighbouring pair (all kept live to the end), and an exit that
/// writes every input and every sum. A guard in the middle exits with all the inputs.
fn pressure(n: u16) -> Trace {
    let mut t = Trace::new(3 * n);
    let xs: Vec<Ref> = (0..n).map(|k| t.push(Op::Input(k), None)).collect();
    let keep_inputs = t.snapshot(xs.iter().enumerate().map(|(k, &x)| (n + k as u16, x)).collect());
    let sums: Vec<Ref> =
        (0..n as usize).map(|k| t.push(Op::AddOv(xs[k], xs[(k + 1) % n as usize]), Some(keep_inputs))).collect();
    t.push(Op::GuardInt(sums[0]), Some(keep_inputs));
    let mut all: Vec<(u16, Ref)> = xs.iter().enumerate().map(|(k, &x)| (n + k as u16, x)).collect();
    all.extend(sums.iter().enumerate().map(|(k, &s)| (2 * n + k as u16, s)));
    let done = t.snapshot(all);
    t.push(Op::Exit, Some(done));
    t
}

#[test]
fn more_live_values_than_registers_all_reach_the_exit() {
    for n in [3u16, 8, 9, 20] {
        let t = pressure(n);
        let xs: Vec<i32> = (0..n as i32).map(|k| 1000 * k - 7).collect();
        let mut frame = vec![0u64; 3 * n as usize];
        for (k, &x) in xs.iter().enumerate() {
            frame[k] = int(x);
        }
        let code = compile(&t, K).expect("compiles");
        assert_eq!(run(&code, &mut frame).expect("runs"), SnapId(1));
        for (k, &x) in xs.iter().enumerate() {
            assert_eq!(small(&frame, n as usize + k), x, "input {k} of {n}");
            assert_eq!(small(&frame, 2 * n as usize + k), x + xs[(k + 1) % n as usize], "sum {k} of {n}");
        }
        // Forced exits leave by the first sum's exit: every input still where the exit reads it.
        let forced = compile_with(&t, K, Options { force_exits: true, ..Options::default() }).expect("compiles");
        let mut frame2 = frame.clone();
        frame2[n as usize..].iter_mut().for_each(|w| *w = 0);
        assert_eq!(run(&forced, &mut frame2).expect("runs"), SnapId(0));
        for (k, &x) in xs.iter().enumerate() {
            assert_eq!(small(&frame2, n as usize + k), x, "input {k} of {n} at the forced exit");
        }
    }
}

#[test]
fn values_survive_helper_calls_and_reach_the_calls_own_exit() {
    let mut w = world();
    const N: usize = 10;
    // Inputs: a class, an argument for AsFloat, N SmallInts. Each SmallInt gets 1 added before
    // the call; all N sums are live across it and written by its exit and by the last one.
    let mut t = Trace::new((2 + 2 * N) as u16);
    let class = t.push(Op::Input(0), None);
    let arg = t.push(Op::Input(1), None);
    let none = t.snapshot(vec![]);
    let one = t.push(Op::Const(Value::from_int(1)), None);
    let xs: Vec<Ref> = (0..N).map(|k| t.push(Op::Input(2 + k as u16), None)).collect();
    let sums: Vec<Ref> = xs.iter().map(|&x| t.push(Op::AddOv(x, one), Some(none))).collect();
    let keep = t.snapshot(sums.iter().enumerate().map(|(k, &s)| ((2 + N + k) as u16, s)).collect());
    let f = t.push(Op::Call(Helper::AsFloat, class, arg, arg), Some(keep));
    let mut all = t.snapshots[keep.0 as usize].entries.clone();
    all.push((1, f));
    let done = t.snapshot(all);
    t.push(Op::Exit, Some(done));
    let code = compile_with(&t, K, Options { runtime: w.runtime.address(), ..Options::default() }).expect("compiles");
    let float = w.heap.alloc_float(w.class, 2.5).raw();
    for (argument, exit) in [(int(3), done), (float, keep)] {
        let mut frame = vec![0u64; 2 + 2 * N];
        frame[0] = w.class.raw();
        frame[1] = argument;
        for k in 0..N {
            frame[2 + k] = int(100 * k as i32);
        }
        w.attach();
        // SAFETY: the inputs are SmallInts and live objects of `w.heap`, whose runtime is attached.
        let left = unsafe { code.run(&mut frame) }.expect("runs");
        w.runtime.detach();
        assert_eq!(left, exit, "AsFloat answers a Float for a SmallInt and exits for a Float");
        for k in 0..N {
            assert_eq!(small(&frame, 2 + N + k), 100 * k as i32 + 1, "value {k} after the call (exit {exit:?})");
        }
        if exit == done {
            assert!(frame[1] != argument && frame[1] & 1 == 0, "the call's answer, an object, reached the exit");
        }
    }
}

/// A loop rotating `width` values each iteration (v0 <- v1 <- … <- v(width-1) <- v0 + v1) for
/// `n` iterations: the back edge's copies form one cycle through every phi.
fn rotation(width: usize) -> Trace {
    let mut t = Trace::new((1 + width) as u16);
    let n = t.push(Op::Input(0), None);
    let inits: Vec<Ref> = (0..width).map(|k| t.push(Op::Input(1 + k as u16), None)).collect();
    let zero = t.push(Op::Const(Value::from_int(0)), None);
    let one = t.push(Op::Const(Value::from_int(1)), None);
    t.push(Op::Loop, None);
    let i = t.push(Op::Phi { init: zero, next: None }, None);
    let vs: Vec<Ref> = inits.iter().map(|&v| t.push(Op::Phi { init: v, next: None }, None)).collect();
    let state: Vec<(u16, Ref)> = vs.iter().enumerate().map(|(k, &v)| (1 + k as u16, v)).collect();
    let out = t.snapshot(state);
    let lt = t.push(Op::Lt(i, n), None);
    t.push(Op::GuardIs(lt, K.true_), Some(out));
    let sum = t.push(Op::AddOv(vs[0], vs[1]), Some(out));
    let i1 = t.push(Op::AddOv(i, one), Some(out));
    t.close_phi(i, i1);
    for k in 0..width {
        t.close_phi(vs[k], if k + 1 < width { vs[k + 1] } else { sum });
    }
    t
}

#[test]
fn loop_carried_values_rotate_through_the_back_edge() {
    for width in [2usize, 3, 5, 9, 12] {
        let code = compile(&rotation(width), K).expect("compiles");
        for n in [0i32, 1, 2, 7, 30] {
            let mut expect: Vec<i32> = (0..width as i32).map(|k| k * 3 - 4).collect();
            for _ in 0..n {
                let next = expect[0] + expect[1];
                expect.rotate_left(1);
                expect[width - 1] = next;
            }
            let mut frame = vec![int(n)];
            frame.extend((0..width as i32).map(|k| int(k * 3 - 4)));
            assert_eq!(run(&code, &mut frame).expect("runs"), SnapId(0));
            let got: Vec<i32> = (0..width).map(|k| small(&frame, 1 + k)).collect();
            assert_eq!(got, expect, "width {width}, {n} iterations");
        }
    }
}

#[test]
fn phis_that_swap_need_no_extra_value() {
    // x, y <- y, x: a two-phi cycle with nothing computed.
    let mut t = Trace::new(3);
    let n = t.push(Op::Input(0), None);
    let x0 = t.push(Op::Input(1), None);
    let y0 = t.push(Op::Input(2), None);
    let zero = t.push(Op::Const(Value::from_int(0)), None);
    let one = t.push(Op::Const(Value::from_int(1)), None);
    t.push(Op::Loop, None);
    let i = t.push(Op::Phi { init: zero, next: None }, None);
    let x = t.push(Op::Phi { init: x0, next: None }, None);
    let y = t.push(Op::Phi { init: y0, next: None }, None);
    let out = t.snapshot(vec![(1, x), (2, y)]);
    let lt = t.push(Op::Lt(i, n), None);
    t.push(Op::GuardIs(lt, K.true_), Some(out));
    let i1 = t.push(Op::AddOv(i, one), Some(out));
    t.close_phi(i, i1);
    t.close_phi(x, y);
    t.close_phi(y, x);
    let code = compile(&t, K).expect("compiles");
    for n in 0..5 {
        let mut frame = [int(n), int(10), int(20)];
        run(&code, &mut frame).expect("runs");
        let want = if n % 2 == 0 { (10, 20) } else { (20, 10) };
        assert_eq!((small(&frame, 1), small(&frame, 2)), want, "{n} swaps");
    }
}
