//! Trace optimisation: constant folding, history-based common-subexpression elimination (with
//! load/store forwarding and alias disambiguation by `GuardNe`), removal of guards already
//! implied by earlier facts, loop peeling (`peel`), and dead-code elimination.
//!
//! Owns rewriting one verified trace into an equivalent one. "Equivalent" means: for every frame
//! buffer, the optimised trace leaves by a snapshot standing for the same recorded snapshot (the
//! same number, or a copy of it: `Snapshot::copy_of`) with the same frame contents and the same
//! stores done (the property tests check exactly this through the backend). Recorded snapshot
//! numbers are kept, so the recorder's map from snapshot to interpreter location stays valid. It
//! never reorders stores, and never moves a store across a guard.
//!
//! Facts are collected in one forward pass. In a trace written with its own `Loop` and phis,
//! values defined before `Loop` never change, so facts about them stay valid inside the loop,
//! and slot loads are forgotten at `Loop`. A loop as the recorder makes it is peeled instead.

use crate::heap::{Kind, Value};
use crate::jit::ir::{Booleans, Helper, Inst, Op, Ref, SnapId, Snapshot, Trace};
use hashbrown::{HashMap, HashSet};

/// Optimises a verified trace (see the module doc).
pub fn optimize(trace: &Trace, booleans: Booleans) -> Trace {
    optimize_with(trace, booleans, Options::default())
}

/// Choices the JIT makes per trace.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Add `GuardNe`s to keep loads across stores into other objects. Off for a loop whose
    /// earlier trace left by one (the objects were the same after all).
    pub alias_guards: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { alias_guards: true }
    }
}

/// Optimises a verified trace with `options`. Each `GuardNe` it adds exits by a snapshot of its
/// own (a copy: `Snapshot::copy_of`), so that the JIT can tell when one fails.
pub fn optimize_with(trace: &Trace, booleans: Booleans, options: Options) -> Trace {
    let folded = match recorded_loop(trace) {
        Some(l) => peel::peel(trace, booleans, l, options),
        None => {
            let mut f = Forward::new(trace, booleans);
            f.alias_guards = options.alias_guards;
            f.run()
        }
    };
    eliminate_dead_code(&folded)
}

/// Where a store writes: a fixed slot, or the element at a (SmallInt) index.
#[derive(Clone, Copy)]
enum Place {
    Slot(u32),
    Elem(Ref),
}

/// `GuardNe`s one store may add to keep what other objects' loads answered.
const MAX_ALIAS_GUARDS: usize = 4;

/// The shape the recorder gives a loop trace: inputs (and constants), `Loop`, then one iteration
/// of the body without phis. Answers where the `Loop` is.
fn recorded_loop(t: &Trace) -> Option<usize> {
    let l = t.loop_start()?;
    let before = t.insts[..l].iter().all(|i| matches!(i.op, Op::Input(_) | Op::Const(_)));
    let phis = t.insts.iter().any(|i| matches!(i.op, Op::Phi { .. }));
    (before && !phis && l + 1 < t.insts.len()).then_some(l)
}

/// A snapshot's entries with each recorded value replaced by what `map` says stands for it.
fn mapped_entries(s: &Snapshot, map: &[Option<Ref>]) -> Vec<(u16, Ref)> {
    s.entries
        .iter()
        .map(|&(slot, r)| (slot, map[r.0 as usize].expect("snapshot values are values (verified)")))
        .collect()
}

#[derive(Clone)]
struct Forward<'t> {
    src: &'t Trace,
    out: Trace,
    b: Booleans,
    /// Old instruction index → the new value standing for it.
    map: Vec<Option<Ref>>,
    consts: HashMap<Ref, Value>,
    const_refs: HashMap<u64, Ref>,
    ints: HashSet<Ref>,
    classes: HashMap<Ref, Value>,
    is: HashMap<Ref, Value>,
    is_not: HashSet<(Ref, u64)>,
    pure: HashMap<Op, Ref>,
    loads: HashMap<(Ref, u32), Ref>,
    /// Element loads (object, index) until the next store that may alias them.
    elems: HashMap<(Ref, Ref), Ref>,
    /// Byte loads (object, index) until the next byte store that may alias them.
    bytes: HashMap<(Ref, Ref), Ref>,
    /// Facts from passed guards: kinds, slot counts (more than k), indices in range, unwatched.
    kinds: HashMap<Ref, u8>,
    lens: HashMap<Ref, u32>,
    indices: HashSet<(Ref, Ref)>,
    unwatched: HashSet<Ref>,
    /// Pairs of values known not to be identical (ordered low, high), from `GuardNe`.
    distinct: HashSet<(Ref, Ref)>,
    /// Objects the trace allocated (`New`): each differs from every value computed before it.
    fresh: HashSet<Ref>,
    /// The snapshot of the last instruction that may exit, while no store has followed it: the
    /// state a guard added here may exit to (nothing the interpreter can see has changed since).
    last_snap: Option<SnapId>,
    alias_guards: bool,
    /// Phis whose `next` (an old reference) is resolved at the end.
    phis: Vec<(Ref, Ref)>,
}

impl<'t> Forward<'t> {
    fn new(src: &'t Trace, b: Booleans) -> Forward<'t> {
        Forward {
            src,
            out: Trace::new(src.slots),
            b,
            map: vec![None; src.insts.len()],
            consts: HashMap::new(),
            const_refs: HashMap::new(),
            ints: HashSet::new(),
            classes: HashMap::new(),
            is: HashMap::new(),
            is_not: HashSet::new(),
            pure: HashMap::new(),
            loads: HashMap::new(),
            elems: HashMap::new(),
            bytes: HashMap::new(),
            kinds: HashMap::new(),
            lens: HashMap::new(),
            indices: HashSet::new(),
            unwatched: HashSet::new(),
            distinct: HashSet::new(),
            fresh: HashSet::new(),
            last_snap: None,
            alias_guards: true,
            phis: Vec::new(),
        }
    }

    fn m(&self, r: Ref) -> Ref {
        self.map[r.0 as usize].expect("operands are defined earlier (verified)")
    }

    fn constant(&mut self, v: Value) -> Ref {
        if let Some(&r) = self.const_refs.get(&v.raw()) {
            return r;
        }
        let r = self.out.push(Op::Const(v), None);
        self.const_refs.insert(v.raw(), r);
        self.consts.insert(r, v);
        if v.is_int() {
            self.ints.insert(r);
        }
        r
    }

    fn int_const(&self, r: Ref) -> Option<i32> {
        self.consts.get(&r).and_then(|v| v.as_int())
    }

    /// Emits `op` unless an identical pure instruction already stands for it.
    fn pure(&mut self, op: Op, snap: Option<SnapId>) -> Ref {
        if let Some(&r) = self.pure.get(&op) {
            return r;
        }
        let r = self.out.push(op, snap);
        self.pure.insert(op, r);
        r
    }

    /// The unpeeled path: one pass over the trace as it is.
    fn run(mut self) -> Trace {
        self.out.snapshots = self.src.snapshot_shells();
        let src = self.src;
        for (i, inst) in src.insts.iter().enumerate() {
            let Inst { op, snap } = *inst;
            self.map[i] = self.step(op, snap);
        }
        for (phi, next) in std::mem::take(&mut self.phis) {
            let n = self.m(next);
            self.out.close_phi(phi, n);
        }
        for k in 0..self.out.snapshots.len() {
            let origin = self.out.origin(SnapId(k as u32)).0 as usize;
            self.out.snapshots[k].entries = mapped_entries(&src.snapshots[origin], &self.map);
        }
        self.out
    }

    /// Emits what recorded instruction `op` (exiting by `snap`) becomes; answers its value.
    fn step(&mut self, op: Op, snap: Option<SnapId>) -> Option<Ref> {
        if op.may_exit() {
            self.last_snap = snap;
        }
        let value = self.emit(op, snap);
        if op.is_store() || op == Op::Loop {
            self.last_snap = None;
        }
        value
    }

    fn emit(&mut self, op: Op, snap: Option<SnapId>) -> Option<Ref> {
        {
            let value = match op {
                Op::Input(_) => Some(self.out.push(op, None)),
                Op::Const(v) => Some(self.constant(v)),
                Op::AddOv(a, b) | Op::SubOv(a, b) | Op::MulOv(a, b) => {
                    let (a, b) = (self.m(a), self.m(b));
                    Some(self.arithmetic(op, a, b, snap))
                }
                Op::Lt(a, b) | Op::Le(a, b) | Op::Eq(a, b) => {
                    let (a, b) = (self.m(a), self.m(b));
                    Some(self.comparison(op, a, b))
                }
                Op::Quo(a, b) | Op::Rem(a, b) => {
                    let (a, b) = (self.m(a), self.m(b));
                    Some(self.division(op, a, b, snap))
                }
                Op::GuardKind(x, k) => {
                    let x = self.m(x);
                    if self.kinds.get(&x) != Some(&k) {
                        self.out.push(Op::GuardKind(x, k), snap);
                        self.kinds.insert(x, k);
                    }
                    None
                }
                Op::GuardLen(x, k) => {
                    let x = self.m(x);
                    if self.lens.get(&x).is_none_or(|&have| have < k) {
                        self.out.push(Op::GuardLen(x, k), snap);
                        self.lens.insert(x, k);
                    }
                    None
                }
                Op::GuardIndex(x, i) => {
                    let (x, i) = (self.m(x), self.m(i));
                    let implied = match self.int_const(i) {
                        Some(c) => c >= 1 && self.lens.get(&x).is_some_and(|&have| (c as i64) <= have as i64 + 1),
                        None => false,
                    };
                    if !implied && self.indices.insert((x, i)) {
                        self.out.push(Op::GuardIndex(x, i), snap);
                    }
                    None
                }
                Op::GuardUnwatched(x) => {
                    let x = self.m(x);
                    if self.unwatched.insert(x) {
                        self.out.push(Op::GuardUnwatched(x), snap);
                    }
                    None
                }
                Op::LoadElem(o, i) => {
                    let (o, i) = (self.m(o), self.m(i));
                    Some(match self.elems.get(&(o, i)) {
                        Some(&r) => r,
                        None => {
                            let r = self.out.push(Op::LoadElem(o, i), None);
                            self.elems.insert((o, i), r);
                            r
                        }
                    })
                }
                Op::LoadByte(o, i) => {
                    let (o, i) = (self.m(o), self.m(i));
                    Some(match self.bytes.get(&(o, i)) {
                        Some(&r) => r,
                        None => {
                            let r = self.out.push(Op::LoadByte(o, i), None);
                            self.bytes.insert((o, i), r);
                            self.ints.insert(r);
                            r
                        }
                    })
                }
                Op::StoreByte(o, i, v) => {
                    // Only byte stores change bytes. The stored value is not forwarded (the load
                    // answers its low 8 bits), and no `GuardNe` is spent on byte objects.
                    let (o, i, v) = (self.m(o), self.m(i), self.m(v));
                    let overwritten: Vec<(Ref, Ref)> = self
                        .bytes
                        .keys()
                        .copied()
                        .filter(|&(p, j)| self.may_share_index(i, j) && !self.known_distinct(o, p))
                        .collect();
                    for k in overwritten {
                        self.bytes.remove(&k);
                    }
                    self.out.push(Op::StoreByte(o, i, v), None);
                    None
                }
                Op::StoreElem(o, i, v) => {
                    let (o, i, v) = (self.m(o), self.m(i), self.m(v));
                    self.forget_aliases(o, Place::Elem(i));
                    self.out.push(Op::StoreElem(o, i, v), None);
                    self.elems.insert((o, i), v);
                    None
                }
                Op::GuardInt(x) => {
                    let x = self.m(x);
                    if !self.ints.contains(&x) {
                        self.out.push(Op::GuardInt(x), snap);
                        self.ints.insert(x);
                    }
                    None
                }
                Op::GuardClass(x, c) => {
                    let x = self.m(x);
                    if self.classes.get(&x) != Some(&c) {
                        self.out.push(Op::GuardClass(x, c), snap);
                        self.classes.insert(x, c);
                    }
                    None
                }
                Op::GuardIs(x, v) => {
                    let x = self.m(x);
                    let known = self.consts.get(&x).or(self.is.get(&x));
                    if known != Some(&v) {
                        self.out.push(Op::GuardIs(x, v), snap);
                        self.is.insert(x, v);
                    }
                    None
                }
                Op::GuardNe(a, b) => {
                    let (a, b) = (self.m(a), self.m(b));
                    if !self.known_distinct(a, b) {
                        self.out.push(Op::GuardNe(a, b), snap);
                        self.distinct.insert((a.min(b), a.max(b)));
                    }
                    None
                }
                Op::GuardIsNot(x, v) => {
                    let x = self.m(x);
                    let differs = self.consts.get(&x).or(self.is.get(&x)).is_some_and(|&c| c != v);
                    if !differs && !self.is_not.contains(&(x, v.raw())) {
                        self.out.push(Op::GuardIsNot(x, v), snap);
                        self.is_not.insert((x, v.raw()));
                    }
                    None
                }
                Op::LoadSlot(o, k) => {
                    let o = self.m(o);
                    Some(match self.loads.get(&(o, k)) {
                        Some(&r) => r,
                        None => {
                            let r = self.out.push(Op::LoadSlot(o, k), None);
                            self.loads.insert((o, k), r);
                            r
                        }
                    })
                }
                Op::StoreSlot(o, k, v) => {
                    let (o, v) = (self.m(o), self.m(v));
                    self.forget_aliases(o, Place::Slot(k));
                    self.out.push(Op::StoreSlot(o, k, v), None);
                    self.loads.insert((o, k), v);
                    None
                }
                Op::LoadLen(o) => {
                    let o = self.m(o);
                    let r = self.pure(Op::LoadLen(o), None);
                    self.ints.insert(r);
                    Some(r)
                }
                Op::New(n, class) => {
                    // Never shared: each one is a different object.
                    let n = self.m(n);
                    let r = self.out.push(Op::New(n, class), snap);
                    self.classes.insert(r, class);
                    self.kinds.insert(r, Kind::Pointers as u8);
                    if let Some(len) = self.int_const(n).filter(|&len| len >= 1) {
                        self.lens.insert(r, len as u32 - 1);
                    }
                    self.unwatched.insert(r);
                    self.fresh.insert(r);
                    Some(r)
                }
                Op::Call(helper, a, b, c) => {
                    // Never shared: helpers allocate, or read bytes that may change.
                    let (a, b, c) = (self.m(a), self.m(b), self.m(c));
                    let r = self.out.push(Op::Call(helper, a, b, c), snap);
                    if helper == Helper::Compare {
                        self.ints.insert(r);
                    }
                    if helper.allocates() {
                        if let Some(&class) = self.consts.get(&a) {
                            self.classes.insert(r, class);
                        }
                        let kind = match helper {
                            Helper::NewBytes | Helper::Concat => Kind::Bytes,
                            _ => Kind::Float,
                        };
                        self.kinds.insert(r, kind as u8);
                        self.unwatched.insert(r);
                        self.fresh.insert(r);
                    }
                    Some(r)
                }
                Op::Loop => {
                    self.loads.clear();
                    self.elems.clear();
                    self.bytes.clear();
                    self.out.push(Op::Loop, None);
                    None
                }
                Op::Phi { init, next } => {
                    let init = self.m(init);
                    let r = self.out.push(Op::Phi { init, next: None }, None);
                    self.phis.push((r, next.expect("verified: phis are closed")));
                    Some(r)
                }
                Op::Exit => {
                    self.out.push(Op::Exit, snap);
                    None
                }
            };
            value
        }
    }

    /// True if `a` and `b` cannot be the same object: different constants, different known
    /// classes or kinds, a `GuardNe` passed, or one allocated by the trace after the other was
    /// computed. (Instructions run in the order of their numbers; a value the loop carries
    /// over, read through a preamble value or a phi, was computed before anything of the
    /// current iteration, and an allocation of an earlier iteration is itself such a value.)
    fn known_distinct(&self, a: Ref, b: Ref) -> bool {
        let differ = |x: Option<&Value>, y: Option<&Value>| matches!((x, y), (Some(x), Some(y)) if x != y);
        let kinds = matches!((self.kinds.get(&a), self.kinds.get(&b)), (Some(x), Some(y)) if x != y);
        a != b
            && (self.distinct.contains(&(a.min(b), a.max(b)))
                || differ(self.consts.get(&a), self.consts.get(&b))
                || differ(self.classes.get(&a), self.classes.get(&b))
                || kinds
                || self.allocated_after(a, b)
                || self.allocated_after(b, a))
    }

    /// True if `a` is an object the trace allocated after computing `b`.
    /// False only when the two SmallInt indices are different constants.
    fn may_share_index(&self, i: Ref, j: Ref) -> bool {
        i == j || !matches!((self.int_const(i), self.int_const(j)), (Some(x), Some(y)) if x != y)
    }

    fn allocated_after(&self, a: Ref, b: Ref) -> bool {
        self.fresh.contains(&a) && b < a
    }

    /// Before a store into `o` at `place`: forgets each load and element it may overwrite. A load
    /// from another object `p` is kept when `p` is known to be distinct, or can be made so with a
    /// `GuardNe` (exiting by the last snapshot); a cheap check that spares reloading the value and
    /// checking it again, and in a peeled loop usually runs once, before the loop.
    fn forget_aliases(&mut self, o: Ref, place: Place) {
        let index = |i: Ref| self.int_const(i);
        // (key, object) of each remembered load or element the store may overwrite.
        let mut loads_at_risk: Vec<((Ref, u32), Ref)> = Vec::new();
        for &(p, k) in self.loads.keys() {
            let hit = match place {
                Place::Slot(s) => s == k,
                Place::Elem(i) => index(i).is_none_or(|c| c as i64 == k as i64 + 1),
            };
            if hit || (p != o && matches!(place, Place::Elem(_))) {
                loads_at_risk.push(((p, k), p));
            }
        }
        let mut elems_at_risk: Vec<((Ref, Ref), Ref)> = Vec::new();
        for &(p, j) in self.elems.keys() {
            let hit = match place {
                Place::Slot(s) => index(j).is_none_or(|c| c as i64 == s as i64 + 1),
                Place::Elem(i) => self.may_share_index(i, j),
            };
            if p != o || hit {
                elems_at_risk.push(((p, j), p));
            }
        }
        let mut others: Vec<Ref> =
            loads_at_risk.iter().map(|x| x.1).chain(elems_at_risk.iter().map(|x| x.1)).filter(|&p| p != o).collect();
        others.sort();
        others.dedup();
        let mut separate: HashSet<Ref> = HashSet::new();
        let mut added = 0;
        for p in others {
            if self.known_distinct(o, p) {
                separate.insert(p);
            } else if let (Some(last), true) = (self.last_snap, self.alias_guards && added < MAX_ALIAS_GUARDS) {
                let origin = self.out.origin(last);
                self.out.snapshots.push(Snapshot { entries: Vec::new(), copy_of: Some(origin) });
                let snap = SnapId(self.out.snapshots.len() as u32 - 1);
                self.out.push(Op::GuardNe(o, p), Some(snap));
                self.distinct.insert((o.min(p), o.max(p)));
                separate.insert(p);
                added += 1;
            }
        }
        for (key, p) in loads_at_risk {
            if !separate.contains(&p) {
                self.loads.remove(&key);
            }
        }
        for (key, p) in elems_at_risk {
            if !separate.contains(&p) {
                self.elems.remove(&key);
            }
        }
    }

    fn arithmetic(&mut self, op: Op, a: Ref, b: Ref, snap: Option<SnapId>) -> Ref {
        let (x, y) = (self.int_const(a), self.int_const(b));
        let folded = match (op, x, y) {
            (Op::AddOv(..), Some(x), Some(y)) => x.checked_add(y),
            (Op::SubOv(..), Some(x), Some(y)) => x.checked_sub(y),
            (Op::MulOv(..), Some(x), Some(y)) => x.checked_mul(y),
            _ => None,
        };
        if let Some(v) = folded {
            return self.constant(Value::from_int(v));
        }
        // Identities that cannot overflow, on operands known to be SmallInts.
        match (op, y) {
            (Op::AddOv(..), Some(0)) | (Op::SubOv(..), Some(0)) | (Op::MulOv(..), Some(1))
                if self.ints.contains(&a) =>
            {
                return a
            }
            _ => {}
        }
        if let (Op::AddOv(..) | Op::MulOv(..), Some(_), None) = (op, x, y) {
            if (matches!(op, Op::AddOv(..)) && x == Some(0) || matches!(op, Op::MulOv(..)) && x == Some(1))
                && self.ints.contains(&b)
            {
                return b;
            }
        }
        let key = match op {
            Op::AddOv(..) => Op::AddOv(a, b),
            Op::SubOv(..) => Op::SubOv(a, b),
            _ => Op::MulOv(a, b),
        };
        let r = self.pure(key, snap);
        self.ints.insert(r);
        r
    }

    fn division(&mut self, op: Op, a: Ref, b: Ref, snap: Option<SnapId>) -> Ref {
        if let (Some(x), Some(y)) = (self.int_const(a), self.int_const(b)) {
            if y != 0 {
                let v = if matches!(op, Op::Quo(..)) { x.wrapping_div(y) } else { x.wrapping_rem(y) };
                return self.constant(Value::from_int(v));
            }
        }
        let key = if matches!(op, Op::Quo(..)) { Op::Quo(a, b) } else { Op::Rem(a, b) };
        let r = self.pure(key, snap);
        self.ints.insert(r);
        r
    }

    fn comparison(&mut self, op: Op, a: Ref, b: Ref) -> Ref {
        let known = match op {
            Op::Eq(..) if a == b => Some(true),
            Op::Eq(..) => match (self.consts.get(&a), self.consts.get(&b)) {
                (Some(x), Some(y)) => Some(x == y),
                _ => None,
            },
            Op::Lt(..) | Op::Le(..) => match (self.int_const(a), self.int_const(b)) {
                (Some(x), Some(y)) => Some(if matches!(op, Op::Lt(..)) { x < y } else { x <= y }),
                _ if a == b && matches!(op, Op::Le(..)) && self.ints.contains(&a) => Some(true),
                _ if a == b && matches!(op, Op::Lt(..)) && self.ints.contains(&a) => Some(false),
                _ => None,
            },
            _ => None,
        };
        if let Some(k) = known {
            let v = self.b.of(k);
            return self.constant(v);
        }
        let key = match op {
            Op::Lt(..) => Op::Lt(a, b),
            Op::Le(..) => Op::Le(a, b),
            _ => Op::Eq(a, b),
        };
        self.pure(key, None)
    }
}

/// Removes instructions whose values nothing live uses. Guards, overflow checks, exits, stores
/// and the loop marker are live by themselves; the values their snapshots name are live too.
fn eliminate_dead_code(t: &Trace) -> Trace {
    let n = t.insts.len();
    let mut live = vec![false; n];
    let mut work: Vec<usize> = Vec::new();
    for (i, inst) in t.insts.iter().enumerate() {
        if inst.op.may_exit() || inst.op.is_store() || inst.op == Op::Loop {
            live[i] = true;
            work.push(i);
        }
    }
    while let Some(i) = work.pop() {
        let inst = &t.insts[i];
        let snap_values = inst.snap.map(|s| &t.snapshots[s.0 as usize].entries);
        let used = inst.op.operands().into_iter().chain(snap_values.into_iter().flatten().map(|&(_, r)| r));
        for r in used {
            let r = r.0 as usize;
            if !live[r] {
                live[r] = true;
                work.push(r);
            }
        }
    }
    let mut map = vec![None; n];
    let mut out = Trace::new(t.slots);
    for (i, inst) in t.insts.iter().enumerate() {
        if !live[i] {
            continue;
        }
        // A phi's `next` is a later value: keep the old reference and fix it below.
        let op = match inst.op {
            Op::Phi { init, next } => Op::Phi { init: map[init.0 as usize].expect("live"), next },
            op => op.map_refs(|r| map[r.0 as usize].expect("live values use live values")),
        };
        map[i] = Some(out.push(op, inst.snap));
    }
    for inst in &mut out.insts {
        if let Op::Phi { next: Some(next), .. } = &mut inst.op {
            *next = map[next.0 as usize].expect("a live phi's next value is live");
        }
    }
    // Snapshots keep their numbers; the entries of a snapshot no live instruction exits by may
    // name dead values and are dropped (nothing can leave by it).
    let used: HashSet<u32> = out.insts.iter().filter_map(|i| i.snap.map(|s| s.0)).collect();
    out.snapshots = t
        .snapshots
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let entries = if used.contains(&(k as u32)) {
                s.entries.iter().map(|&(slot, r)| (slot, map[r.0 as usize].unwrap())).collect()
            } else {
                Vec::new()
            };
            Snapshot { entries, copy_of: s.copy_of }
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const B: Booleans = Booleans { true_: Value::from_int(1), false_: Value::from_int(0) };

    /// Optimises `input` and compares with `expected` (both in the IR text form).
    #[track_caller]
    pub(super) fn check(input: &str, expected: &str) {
        let t = Trace::parse(input).expect("input parses");
        t.verify().expect("input verifies");
        let got = optimize(&t, B);
        got.verify().expect("output verifies");
        let want = Trace::parse(expected).expect("expected parses");
        assert_eq!(got.to_string(), want.to_string(), "\n--- input\n{t}\n--- got\n{got}\n--- want\n{want}");
    }

    #[test]
    fn constants_fold_and_repeated_guards_go() {
        check(
            "slots 2
             0000 input 0
             0001 guard.int 0000 -> s0
             0002 guard.int 0000 -> s0
             0003 const #2
             0004 const #3
             0005 add.ov 0003 0004 -> s0
             0006 add.ov 0000 0005 -> s0
             0007 add.ov 0000 0005 -> s0
             0008 lt 0003 0004
             0009 guard.is 0008 #1 -> s0
             0010 exit -> s1
             s0:
             s1: [1]=0007",
            "slots 2
             0000 input 0
             0001 guard.int 0000 -> s0
             0002 const #5
             0003 add.ov 0000 0002 -> s0
             0004 exit -> s1
             s0:
             s1: [1]=0003",
        );
    }

    #[test]
    fn overflowing_constants_are_not_folded() {
        // Unchanged: folding would hide the overflow exit.
        let trace = "slots 1
             0000 const #2147483647
             0001 const #1
             0002 add.ov 0000 0001 -> s0
             0003 exit -> s1
             s0:
             s1: [0]=0002";
        check(trace, trace);
    }

    #[test]
    fn arithmetic_results_need_no_int_guard_and_identities_vanish() {
        check(
            "slots 2
             0000 input 0
             0001 guard.int 0000 -> s0
             0002 const #0
             0003 add.ov 0000 0002 -> s0
             0004 const #1
             0005 mul.ov 0003 0004 -> s0
             0006 add.ov 0005 0005 -> s0
             0007 guard.int 0006 -> s0
             0008 exit -> s1
             s0:
             s1: [1]=0006",
            "slots 2
             0000 input 0
             0001 guard.int 0000 -> s0
             0002 add.ov 0000 0000 -> s0
             0003 exit -> s1
             s0:
             s1: [1]=0002",
        );
    }

    #[test]
    fn loads_are_reused_and_a_store_elsewhere_keeps_them_behind_a_guard_ne() {
        check(
            "slots 3
             0000 input 0
             0001 input 1
             0002 guard.class 0000 @1000 -> s0
             0003 guard.class 0000 @1000 -> s0
             0004 load.slot 0000 2
             0005 load.slot 0000 2
             0006 load.slot 0000 3
             0007 store.slot 0001 2 0006
             0008 load.slot 0000 2
             0009 load.slot 0001 2
             0010 load.slot 0000 3
             0011 exit -> s1
             s0:
             s1: [0]=0005 [1]=0008 [2]=0009",
            "slots 3
             0000 input 0
             0001 input 1
             0002 guard.class 0000 @1000 -> s0
             0003 load.slot 0000 2
             0004 load.slot 0000 3
             0005 guard.ne 0001 0000 -> s2
             0006 store.slot 0001 2 0004
             0007 exit -> s1
             s0:
             s1: [0]=0003 [1]=0003 [2]=0004
             s2=s0:",
        );
    }

    #[test]
    fn dead_values_go_and_loop_invariants_are_shared() {
        check(
            "slots 2
             0000 input 0
             0001 input 1
             0002 const #7
             0003 mul.ov 0000 0000 -> s0
             0004 lt 0000 0001
             0005 loop
             0006 phi 0001 0010
             0007 mul.ov 0000 0000 -> s1
             0008 le 0006 0007
             0009 guard.is 0008 #1 -> s1
             0010 add.ov 0006 0002 -> s1
             s0:
             s1: [1]=0006",
            "slots 2
             0000 input 0
             0001 input 1
             0002 const #7
             0003 mul.ov 0000 0000 -> s0
             0004 loop
             0005 phi 0001 0008
             0006 le 0005 0003
             0007 guard.is 0006 #1 -> s1
             0008 add.ov 0005 0002 -> s1
             s0:
             s1: [1]=0005",
        );
    }

    #[test]
    fn loads_are_forgotten_at_the_loop() {
        // A store later in the body changes slot 2 for the next iteration.
        check(
            "slots 1
             0000 input 0
             0001 load.slot 0000 2
             0002 loop
             0003 load.slot 0000 2
             0004 store.slot 0000 2 0003
             0005 guard.is 0003 #0 -> s0
             s0: [0]=0003",
            "slots 1
             0000 input 0
             0001 loop
             0002 load.slot 0000 2
             0003 store.slot 0000 2 0002
             0004 guard.is 0002 #0 -> s0
             s0: [0]=0002",
        );
    }
}

mod peel;

#[cfg(test)]
mod guard_tests;

#[cfg(test)]
mod alias_tests;

#[cfg(test)]
mod alloc_tests;
