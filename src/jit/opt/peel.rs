//! Loop peeling (LuaJIT's LOOP pass): the recorded iteration runs once as a preamble, and a copy
//! of it, optimised with everything the preamble established, becomes the loop.
//!
//! Owns turning `inputs; Loop; body` into `inputs; body₁; Loop; phis; body₂`. The second copy is
//! emitted through the same forward pass, so its guards, loads and arithmetic are checked
//! against the first copy's: whatever does not change between iterations (class guards on
//! loop-invariant objects, loads nothing stores to, their length and kind checks) is done once
//! in the preamble and vanishes from the loop.
//!
//! Why the loop copy may use the preamble's values (the inductive argument LuaJIT makes): the
//! second copy is the first with every recorded value `r` replaced by `map₂[r]`. Where a value
//! `y` of the preamble is used by the loop copy but computed again there as `z ≠ y` (it is
//! *variant*), the loop reads `y` as "the value this computation had one iteration ago": a phi
//! whose next value is `z`. Two things could break that, and both are checked, never assumed:
//! - one value standing for two things (a constant or input also produced by a variant
//!   computation, or two recorded values that meet in the preamble and part in the loop):
//!   peeling then carries nothing over from the preamble;
//! - a fact about `y` (its class, that it is a SmallInt, …) that does not also hold for `z` at
//!   the end of the loop body: the facts about `y` are forgotten and the copy is made again.
//!
//! Snapshots used in the loop copy are copies of the recorded ones (`Snapshot::copy_of`): same
//! interpreter state, described by the loop's values.

use super::{mapped_entries, Forward, Options};
use crate::jit::ir::{Booleans, Op, Ref, SnapId, Snapshot, Trace};
use hashbrown::{HashMap, HashSet};

/// Copies with fewer carried facts tried before giving up on carrying anything.
const ATTEMPTS: usize = 4;

/// Peels the recorded loop trace `src`, whose `Loop` is instruction `l` (see the module doc).
pub(super) fn peel(src: &Trace, b: Booleans, l: usize, options: Options) -> Trace {
    let mut first = Forward::new(src, b);
    first.alias_guards = options.alias_guards;
    first.out.snapshots = src.snapshot_shells();
    for (i, inst) in src.insts.iter().enumerate().take(l) {
        first.map[i] = first.step(inst.op, inst.snap);
    }
    let preamble_start = first.out.insts.len();
    for (i, inst) in src.insts.iter().enumerate().skip(l + 1) {
        first.map[i] = first.step(inst.op, inst.snap);
    }
    let peeled = Peeled { first: &first, l, preamble_start };
    let mut forget: HashSet<Ref> = HashSet::new();
    for _ in 0..ATTEMPTS {
        match peeled.loop_copy(Some(&forget)) {
            Outcome::Done(t) => return t,
            Outcome::Forget(more) => forget.extend(more),
            Outcome::CarryNothing => break,
        }
    }
    match peeled.loop_copy(None) {
        Outcome::Done(t) => t,
        _ => unreachable!("a loop copy that carries nothing from the preamble needs no phis"),
    }
}

enum Outcome {
    Done(Trace),
    /// These preamble values have facts the loop does not keep true: try again without them.
    Forget(Vec<Ref>),
    /// A preamble value stands for two things: carry nothing over.
    CarryNothing,
}

struct Peeled<'a, 't> {
    /// The forward pass after the preamble (inputs, then body₁).
    first: &'a Forward<'t>,
    /// The recorded `Loop`.
    l: usize,
    /// The preamble's first instruction (everything before it is an input or constant).
    preamble_start: usize,
}

impl Peeled<'_, '_> {
    fn in_preamble(&self, r: Ref) -> bool {
        (r.0 as usize) >= self.preamble_start && (r.0 as usize) < self.first.out.insts.len()
    }

    /// Emits `Loop` and the loop copy of the body. `carry`: the preamble values whose facts to
    /// forget (`None`: carry nothing of the preamble over, neither facts nor values).
    fn loop_copy(&self, carry: Option<&HashSet<Ref>>) -> Outcome {
        let src = self.first.src;
        let mut start = self.first.clone();
        match carry {
            Some(forget) => start.forget_facts(|r| forget.contains(&r)),
            None => {
                let out = &self.first.out;
                let carried = |r: Ref| self.in_preamble(r) && !matches!(out.insts[r.0 as usize].op, Op::Const(_));
                start.forget_facts(carried);
                start.loads.clear();
                start.elems.clear();
                start.bytes.clear();
                start.pure.retain(|_, r| !carried(*r));
            }
        }
        let mut g = start.clone();
        // The preamble's last snapshot describes the end of an iteration, not the loop's start.
        g.last_snap = None;
        let head = g.out.push(Op::Loop, None).0 as usize;
        let mut copies: HashMap<u32, SnapId> = HashMap::new();
        for (i, inst) in src.insts.iter().enumerate().skip(self.l + 1) {
            let snap = inst.snap.map(|s| {
                *copies.entry(s.0).or_insert_with(|| {
                    g.out.snapshots.push(Snapshot { entries: Vec::new(), copy_of: Some(s) });
                    SnapId(g.out.snapshots.len() as u32 - 1)
                })
            });
            g.map[i] = g.step(inst.op, snap);
        }

        // Which preamble values the loop recomputes differently (variant), and as what.
        let mut next: HashMap<Ref, Ref> = HashMap::new();
        if carry.is_some() {
            let mut same: HashSet<Ref> = HashSet::new();
            for i in self.l + 1..src.insts.len() {
                let (Some(y), Some(z)) = (self.first.map[i], g.map[i]) else { continue };
                if y == z {
                    if next.contains_key(&y) {
                        return Outcome::CarryNothing;
                    }
                    same.insert(y);
                    continue;
                }
                let itself = !self.in_preamble(y) || matches!(g.out.insts[y.0 as usize].op, Op::Const(_));
                if itself || same.contains(&y) || next.insert(y, z).is_some_and(|old| old != z) {
                    return Outcome::CarryNothing;
                }
            }
            let forget = self.broken_facts(&start, &g, &next);
            if !forget.is_empty() {
                return Outcome::Forget(forget);
            }
        }

        // The loop's snapshots; then the variant values the loop reads, each becoming a phi.
        // Snapshots made before the loop (the recorded ones, and copies for the preamble's
        // `GuardNe`s) are in the preamble's values; the loop's in its own.
        let preamble_snaps = self.first.out.snapshots.len();
        let used: HashSet<u32> = g.out.insts[head + 1..].iter().filter_map(|i| i.snap.map(|s| s.0)).collect();
        for k in 0..g.out.snapshots.len() {
            let origin = &src.snapshots[g.out.origin(SnapId(k as u32)).0 as usize];
            g.out.snapshots[k].entries = if k < preamble_snaps {
                mapped_entries(origin, &self.first.map)
            } else if used.contains(&(k as u32)) {
                mapped_entries(origin, &g.map)
            } else {
                Vec::new()
            };
        }
        let mut phis: Vec<Ref> = Vec::new();
        let mut phi_of: HashMap<Ref, u32> = HashMap::new();
        let mut read: Vec<Ref> = g.out.insts[head + 1..].iter().flat_map(|i| i.op.operands()).collect();
        read.extend(g.out.snapshots[preamble_snaps..].iter().flat_map(|s| s.entries.iter().map(|e| e.1)));
        while let Some(r) = read.pop() {
            if let Some(&z) = next.get(&r) {
                if let hashbrown::hash_map::Entry::Vacant(v) = phi_of.entry(r) {
                    v.insert(phis.len() as u32);
                    phis.push(r);
                    read.push(z);
                }
            }
        }
        debug_assert!(carry.is_some() || phis.is_empty());

        // Renumber: the phis go right after `Loop`, shifting the loop copy.
        let shift = phis.len() as u32;
        let remap = |r: Ref| {
            if (r.0 as usize) < head {
                phi_of.get(&r).map_or(r, |&k| Ref(head as u32 + 1 + k))
            } else {
                Ref(r.0 + shift)
            }
        };
        let mut out = Trace::new(src.slots);
        out.insts.extend_from_slice(&g.out.insts[..=head]);
        for &y in &phis {
            out.push(Op::Phi { init: y, next: Some(remap(next[&y])) }, None);
        }
        for inst in &g.out.insts[head + 1..] {
            out.push(inst.op.map_refs(remap), inst.snap);
        }
        out.snapshots = g.out.snapshots;
        for snap in &mut out.snapshots[preamble_snaps..] {
            for e in &mut snap.entries {
                e.1 = remap(e.1);
            }
        }
        Outcome::Done(out)
    }

    /// The variant preamble values `y` with a fact at the loop's start (`start`) that does not
    /// hold for their next value `z` at the end of the loop body (`end`).
    fn broken_facts(&self, start: &Forward, end: &Forward, next: &HashMap<Ref, Ref>) -> Vec<Ref> {
        let now = |r: Ref| next.get(&r).copied().unwrap_or(r);
        let known = |f: &Forward, r: Ref| f.consts.get(&r).or(f.is.get(&r)).copied();
        let mut broken = Vec::new();
        for (&y, &z) in next {
            let holds = (!start.ints.contains(&y) || end.ints.contains(&z))
                && start.classes.get(&y).is_none_or(|c| end.classes.get(&z) == Some(c))
                && start.is.get(&y).is_none_or(|&v| known(end, z) == Some(v))
                && start.kinds.get(&y).is_none_or(|k| end.kinds.get(&z) == Some(k))
                && start.lens.get(&y).is_none_or(|&k| end.lens.get(&z).is_some_and(|&have| have >= k))
                && (!start.unwatched.contains(&y) || end.unwatched.contains(&z))
                && start
                    .is_not
                    .iter()
                    .filter(|&&(r, _)| r == y)
                    .all(|&(_, v)| end.is_not.contains(&(z, v)) || known(end, z).is_some_and(|c| c.raw() != v));
            if !holds {
                broken.push(y);
            }
        }
        for &(a, c) in &start.distinct {
            let variant = next.contains_key(&a) || next.contains_key(&c);
            if variant && !end.known_distinct(now(a), now(c)) {
                broken.extend([a, c].into_iter().filter(|r| next.contains_key(r)));
            }
        }
        for &(o, i) in &start.indices {
            let variant = next.contains_key(&o) || next.contains_key(&i);
            if variant && !end.indices.contains(&(now(o), now(i))) {
                broken.extend([o, i].into_iter().filter(|r| next.contains_key(r)));
            }
        }
        broken.sort();
        broken.dedup();
        broken
    }
}

impl Forward<'_> {
    /// Drops every fact about the values `gone` picks.
    fn forget_facts(&mut self, gone: impl Fn(Ref) -> bool) {
        self.ints.retain(|&r| !gone(r));
        self.classes.retain(|&r, _| !gone(r));
        self.is.retain(|&r, _| !gone(r));
        self.is_not.retain(|&(r, _)| !gone(r));
        self.kinds.retain(|&r, _| !gone(r));
        self.lens.retain(|&r, _| !gone(r));
        self.indices.retain(|&(o, i)| !gone(o) && !gone(i));
        self.unwatched.retain(|&r| !gone(r));
        self.distinct.retain(|&(a, b)| !gone(a) && !gone(b));
        self.fresh.retain(|&r| !gone(r));
    }
}
