//! Linear-scan register allocation for one trace (Poletto & Sarkar), without interval splitting:
//! each IR value gets one home for its whole life — a register, its word of the value area
//! (spilled), or nothing at all (constants, and values nothing reads).
//!
//! Owns liveness over the trace's linear order. It never emits code; the emitter reads the
//! answer. The rules that make one home per value correct:
//! - a value lives from its definition to its last use, where a snapshot counts as a use at the
//!   instruction that may exit by it (the exit stub stores the register into the value area,
//!   so the register must still hold the value there). Every instruction exits before it writes
//!   its result, so its result may take the register of a value only its snapshot reads;
//! - a value defined before `Loop` and used inside the loop lives to the back edge, so no value
//!   of the loop body can take its register;
//! - phis are defined at the loop head, their `init`s used there and their `next`s at the back
//!   edge; the emitter copies both sets as parallel moves, so a phi may share a register with
//!   its `init` or with its `next` (the allocator prefers that: the copy then costs nothing);
//! - a value live across a helper call (`New`, `Call`) or in its snapshot gets a callee-saved
//!   register or none, since the helper may clobber the others before the exit stub runs.

use crate::jit::ir::{Op, Ref, SnapId, Trace};
use iced_x86::code_asm::{r10, r11, r13, r14, r15, r8, r9, rbp, AsmRegister64};

/// The registers values may live in. rax, rcx and rdx stay scratch for instruction sequences;
/// rdi and rsi carry helper arguments; rbx holds the value area and r12 the frame buffer.
pub(super) const REGS: [AsmRegister64; 8] = [r8, r9, r10, r11, r13, r14, r15, rbp];
/// `REGS[CALLEE_SAVED..]` survive a helper call.
const CALLEE_SAVED: usize = 4;

/// Where a value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Home {
    /// Defines no value, or nothing reads it.
    None,
    /// `REGS[k]`.
    Reg(u8),
    /// Its word of the value area.
    Spill,
    /// A constant: no code defines it; the compiler fills its value-area word before the code
    /// first runs, for the exits that read it there.
    Const(u64),
}

/// The home of every value of `trace` (indexed by `Ref`). `fuel_exit` is the snapshot the loop
/// head may exit by, if the code checks fuel there.
pub(super) fn allocate(trace: &Trace, fuel_exit: Option<SnapId>) -> Vec<Home> {
    let n = trace.insts.len();
    let loop_at = trace.loop_start();
    // Positions: instruction i reads its operands (and may exit) at 2i and defines its value at
    // 2i + 1; a helper call clobbers registers at 2i + 1, so its exit comes then. The loop head
    // is the Loop instruction's position; the back edge comes last.
    let back_edge = 2 * n as u32;
    let head = loop_at.map(|l| 2 * l as u32);
    let mut start = vec![0u32; n];
    let mut last: Vec<Option<u32>> = vec![None; n];
    let use_at = |last: &mut Vec<Option<u32>>, r: Ref, pos: u32| {
        if let Some(l) = last.get_mut(r.0 as usize) {
            *l = Some(l.map_or(pos, |p| p.max(pos)));
        }
    };
    let mut calls = Vec::new();
    for (i, inst) in trace.insts.iter().enumerate() {
        let i32_ = i as u32;
        match inst.op {
            Op::Phi { init, next } => {
                let h = head.unwrap_or(2 * i32_);
                start[i] = h + 1;
                use_at(&mut last, init, h);
                if let Some(next) = next {
                    use_at(&mut last, next, back_edge);
                }
            }
            op => {
                start[i] = 2 * i32_ + 1;
                for r in op.operands() {
                    use_at(&mut last, r, 2 * i32_);
                }
                if matches!(op, Op::New(..) | Op::Call(..)) {
                    calls.push(2 * i32_ + 1);
                }
            }
        }
        if let Some(s) = inst.snap.and_then(|s| trace.snapshots.get(s.0 as usize)) {
            let exit_at = if matches!(inst.op, Op::New(..) | Op::Call(..)) { 2 * i32_ + 1 } else { 2 * i32_ };
            for &(_, v) in &s.entries {
                use_at(&mut last, v, exit_at);
            }
        }
    }
    if let (Some(h), Some(s)) = (head, fuel_exit.and_then(|s| trace.snapshots.get(s.0 as usize))) {
        for &(_, v) in &s.entries {
            use_at(&mut last, v, h + 1);
        }
    }
    if let Some(h) = head {
        for (s, l) in start.iter().zip(last.iter_mut()) {
            if let Some(end) = l.as_mut().filter(|e| *s < h && **e > h) {
                *end = back_edge;
            }
        }
    }

    let mut loc = vec![Home::None; n];
    let mut intervals = Vec::new();
    for (i, inst) in trace.insts.iter().enumerate() {
        match (inst.op, last[i]) {
            (Op::Const(v), _) => loc[i] = Home::Const(v.raw()),
            (op, Some(end)) if op.has_value() => intervals.push((start[i], end, i)),
            _ => {}
        }
    }
    intervals.sort_by_key(|&(s, _, i)| (s, i));
    let crosses_call = |s: u32, e: u32| calls.iter().any(|&c| s < c && c <= e);
    // Preferred registers: a phi's init's, a next's phi's (a free copy at the loop edges).
    let mut hint: Vec<Option<usize>> = vec![None; n];
    for (i, inst) in trace.insts.iter().enumerate() {
        if let Op::Phi { init, next } = inst.op {
            hint[i] = Some(init.0 as usize);
            if let Some(next) = next.filter(|x| hint[x.0 as usize].is_none()) {
                hint[next.0 as usize] = Some(i);
            }
        }
    }

    let mut free = [true; REGS.len()];
    // (end, value, register)
    let mut active: Vec<(u32, usize, usize)> = Vec::new();
    for (s, e, v) in intervals {
        active.retain(|&(end, _, reg)| {
            let live = end >= s;
            if !live {
                free[reg] = true;
            }
            live
        });
        let allowed = if crosses_call(s, e) { CALLEE_SAVED..REGS.len() } else { 0..REGS.len() };
        let hinted = hint[v].and_then(|h| match loc[h] {
            Home::Reg(k) if allowed.contains(&(k as usize)) && free[k as usize] => Some(k as usize),
            _ => None,
        });
        if let Some(reg) = hinted.or_else(|| allowed.clone().find(|&k| free[k])) {
            free[reg] = false;
            loc[v] = Home::Reg(reg as u8);
            active.push((e, v, reg));
            continue;
        }
        // No register: spill whichever of this value and the active ones that could give it a
        // register lives longest.
        let victim = active
            .iter()
            .enumerate()
            .filter(|(_, &(_, _, reg))| allowed.contains(&reg))
            .max_by_key(|(_, &(end, _, _))| end)
            .map(|(k, &a)| (k, a));
        match victim {
            Some((k, (end, other, reg))) if end > e => {
                loc[other] = Home::Spill;
                loc[v] = Home::Reg(reg as u8);
                active[k] = (e, v, reg);
            }
            _ => loc[v] = Home::Spill,
        }
    }
    loc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::Value;
    use crate::jit::ir::Trace;

    fn regs_of(loc: &[Home], refs: &[Ref]) -> Vec<Home> {
        refs.iter().map(|r| loc[r.0 as usize]).collect()
    }

    #[test]
    fn values_whose_lives_do_not_overlap_share_a_register_and_constants_get_none() {
        let mut t = Trace::new(2);
        let a = t.push(Op::Input(0), None);
        let one = t.push(Op::Const(Value::from_int(1)), None);
        let s0 = t.snapshot(vec![]);
        let b = t.push(Op::AddOv(a, one), Some(s0));
        let c = t.push(Op::AddOv(b, one), Some(s0));
        let done = t.snapshot(vec![(1, c)]);
        t.push(Op::Exit, Some(done));
        let loc = allocate(&t, None);
        assert_eq!(loc[one.0 as usize], Home::Const(Value::from_int(1).raw()));
        // a dies where b is defined, b where c is: one register serves all three.
        assert_eq!(regs_of(&loc, &[a, b, c]), vec![Home::Reg(0); 3]);
    }

    #[test]
    fn a_value_in_a_snapshot_stays_in_its_register_until_that_exit() {
        let mut t = Trace::new(2);
        let a = t.push(Op::Input(0), None);
        let none = t.snapshot(vec![]);
        let keep = t.snapshot(vec![(0, a)]);
        // b exits (by `keep`) before it writes its result: it may take a's register.
        let b = t.push(Op::AddOv(a, a), Some(keep));
        let c = t.push(Op::AddOv(b, b), Some(none));
        let d = t.push(Op::AddOv(c, c), Some(none));
        let e = t.push(Op::AddOv(d, d), Some(keep));
        let done = t.snapshot(vec![(1, e)]);
        t.push(Op::Exit, Some(done));
        let loc = allocate(&t, None);
        // ...but a is still read by e's exit, so c and d must not take it.
        for v in [b, c, d] {
            assert_ne!(loc[a.0 as usize], loc[v.0 as usize], "{v:?} would overwrite a before e's exit");
        }
        assert_eq!(loc[e.0 as usize], loc[a.0 as usize], "e writes after its exit");
    }

    #[test]
    fn values_live_across_a_helper_call_get_callee_saved_registers() {
        let mut t = Trace::new(2);
        let a = t.push(Op::Input(0), None);
        let b = t.push(Op::Input(1), None);
        let s = t.snapshot(vec![(0, a)]);
        let x = t.push(Op::Call(crate::jit::ir::Helper::Compare, b, b, b), Some(s));
        let done = t.snapshot(vec![(0, a), (1, x)]);
        t.push(Op::Exit, Some(done));
        let loc = allocate(&t, None);
        assert!(matches!(loc[a.0 as usize], Home::Reg(k) if k as usize >= CALLEE_SAVED));
        assert_eq!(loc[b.0 as usize], Home::Reg(0), "b is only an argument: any register");
    }

    #[test]
    fn loop_invariants_keep_their_register_through_the_loop_and_phis_share_with_next() {
        let mut t = Trace::new(2);
        let n = t.push(Op::Input(0), None);
        let i0 = t.push(Op::Input(1), None);
        t.push(Op::Loop, None);
        let i = t.push(Op::Phi { init: i0, next: None }, None);
        let s = t.snapshot(vec![(1, i)]);
        let lt = t.push(Op::Lt(i, n), None);
        t.push(Op::GuardIs(lt, Value::from_int(1)), Some(s));
        let next = t.push(Op::AddOv(i, i), Some(s));
        t.close_phi(i, next);
        let loc = allocate(&t, None);
        assert_eq!(loc[i.0 as usize], loc[i0.0 as usize], "the phi takes its init's register");
        assert_eq!(loc[next.0 as usize], loc[i.0 as usize], "and its next takes the phi's");
        for v in [i, lt, next] {
            assert_ne!(loc[v.0 as usize], loc[n.0 as usize], "n is live around the loop");
        }
    }

    #[test]
    fn more_live_values_than_registers_spill_the_longest_lived() {
        let mut t = Trace::new(1);
        let x = t.push(Op::Input(0), None);
        let s = t.snapshot(vec![]);
        let vals: Vec<Ref> = (0..12).map(|_| t.push(Op::AddOv(x, x), Some(s))).collect();
        let mut acc = vals[0];
        for &v in &vals[1..] {
            acc = t.push(Op::AddOv(acc, v), Some(s));
        }
        let done = t.snapshot(vec![(0, acc), (0, x)]);
        t.push(Op::Exit, Some(done));
        let loc = allocate(&t, None);
        assert_eq!(loc[x.0 as usize], Home::Spill, "x lives to the end: the first to spill");
        let spilled = vals.iter().filter(|v| loc[v.0 as usize] == Home::Spill).count();
        assert!(spilled >= 4, "13 values live at once, 8 registers");
        let mut live_regs: Vec<Home> = vals.iter().map(|v| loc[v.0 as usize]).filter(|l| *l != Home::Spill).collect();
        live_regs.sort_by_key(|l| format!("{l:?}"));
        live_regs.dedup();
        assert_eq!(live_regs.len(), vals.iter().filter(|v| loc[v.0 as usize] != Home::Spill).count());
    }
}
