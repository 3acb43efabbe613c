//! The trace IR: linear SSA over one-word Values, with guards that exit through snapshots.
//!
//! Owns the instruction set, the builder that keeps it well formed, the verifier, and the text
//! form that `--dump-traces` and the optimizer's tests read. It never executes anything and never
//! looks at the heap: object addresses appear only as constants.
//!
//! Every value is a tagged Value word (SmallInt `i << 1 | 1`, or an object address), so a value
//! can be written back into an interpreter frame unchanged. A trace works on a *frame buffer* of
//! `slots` words: `Input(k)` reads slot k as the trace is entered; a snapshot says which slots
//! get which values when a guard fails, and the trace answers the snapshot's number. (Which
//! interpreter location a snapshot stands for is the recorder's business, kept beside the trace.)
//!
//! Loops follow LuaJIT's shape: instructions before `Loop` run once; those after it repeat.
//! A `Phi` right after `Loop` is a loop-carried value: `init` on the first iteration, then the
//! value its `next` had at the end of the previous one.

use crate::heap::Value;
use std::fmt::{self, Write};
use thiserror::Error;

/// The largest object `Op::New` allocates on the trace (larger ones are left to the interpreter,
/// which checks sizes its own way).
pub const MAX_NEW_SLOTS: i32 = 4096;

/// A runtime function compiled code calls (`Op::Call`), named after the primitive it does.
/// Each answers a Value, or 0 when the primitive would fail or needs what compiled code must not
/// do (a collection): then the trace exits and the interpreter runs the primitive itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helper {
    /// Primitive 50 (class, int): a new Float of the class.
    AsFloat,
    /// Primitives 51–54 (class, p, q): a new Float of the class, q + p, q − p, q × p, q ÷ p.
    FloatAdd,
    FloatSub,
    FloatMul,
    FloatDiv,
    /// Primitives 55 and 56 (p, q): q < p, q = p, as true or false.
    FloatLt,
    FloatEq,
    /// Primitive 26 (a, b): −1, 0 or 1, comparing two byte objects' signed bytes.
    Compare,
    /// Primitive 20 (class, n): a new byte object of the class with n zero bytes.
    NewBytes,
    /// Primitive 24, `String>>+` (class, b, a): a new byte object of the class (a's, guarded)
    /// with a's bytes, then b's.
    Concat,
    /// A return from a real (materialised) frame on the trace (ctx, nil, nil): frees the context
    /// as the interpreter's return would (`interp::free_returned_context`). Answers nil; never
    /// exits.
    FreeContext,
    /// A send's method-identity guard (receiver, selector, method): answers true when looking
    /// the selector up from the receiver's class finds that method, else 0 (the trace exits).
    /// Reads only. The recorder uses it instead of a class guard at a send site whose receivers
    /// have been of several classes that all found the same method (an inherited method).
    Finds,
}

impl Helper {
    pub const ALL: [Helper; 12] = [
        Helper::AsFloat,
        Helper::FloatAdd,
        Helper::FloatSub,
        Helper::FloatMul,
        Helper::FloatDiv,
        Helper::FloatLt,
        Helper::FloatEq,
        Helper::Compare,
        Helper::NewBytes,
        Helper::Concat,
        Helper::FreeContext,
        Helper::Finds,
    ];

    /// The name in the IR's text form.
    pub fn name(self) -> &'static str {
        match self {
            Helper::AsFloat => "float.from_int",
            Helper::FloatAdd => "float.add",
            Helper::FloatSub => "float.sub",
            Helper::FloatMul => "float.mul",
            Helper::FloatDiv => "float.div",
            Helper::FloatLt => "float.lt",
            Helper::FloatEq => "float.eq",
            Helper::Compare => "bytes.compare",
            Helper::NewBytes => "bytes.new",
            Helper::Concat => "bytes.concat",
            Helper::FreeContext => "context.free",
            Helper::Finds => "method.finds",
        }
    }

    pub fn from_name(name: &str) -> Option<Helper> {
        Helper::ALL.into_iter().find(|h| h.name() == name)
    }

    /// True for the helpers that answer a new object (of the class they are given first).
    pub fn allocates(self) -> bool {
        !matches!(self, Helper::FloatLt | Helper::FloatEq | Helper::Compare | Helper::FreeContext | Helper::Finds)
    }
}

/// The objects that comparisons answer (and that folding may produce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Booleans {
    pub true_: Value,
    pub false_: Value,
}

impl Booleans {
    pub fn of(&self, b: bool) -> Value {
        if b {
            self.true_
        } else {
            self.false_
        }
    }
}

/// A value defined by an earlier instruction (its index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(pub u32);

/// A snapshot's index; also the number a trace answers when it exits through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnapId(pub u32);

/// The values an instruction reads (at most three; inline, as every pass asks for them).
pub type Operands = smallvec::SmallVec<[Ref; 3]>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Frame slot `k` as the trace was entered.
    Input(u16),
    /// A constant Value.
    Const(Value),
    /// SmallInt arithmetic with 32-bit signed overflow (SMALLWORLD-VM.md §6): operands must
    /// already be known SmallInts; on overflow the trace exits through the instruction's snapshot.
    AddOv(Ref, Ref),
    SubOv(Ref, Ref),
    MulOv(Ref, Ref),
    /// SmallInt truncated quotient and remainder (primitives 11 and 12: Java `/` and `%`, so
    /// `MIN / -1` wraps to MIN); a zero divisor exits through the snapshot.
    Quo(Ref, Ref),
    Rem(Ref, Ref),
    /// SmallInt comparisons answering the `true` or `false` object.
    Lt(Ref, Ref),
    Le(Ref, Ref),
    /// Identity comparison (`==`) answering `true` or `false`.
    Eq(Ref, Ref),
    /// Exits unless the value is a SmallInt.
    GuardInt(Ref),
    /// Exits unless the value is a heap object whose class is the given one.
    GuardClass(Ref, Value),
    /// Exits unless the value is identical to the constant (e.g. a branch on `true`).
    GuardIs(Ref, Value),
    /// Exits if the value is identical to the constant.
    GuardIsNot(Ref, Value),
    /// Exits if the two values are identical. The optimizer adds it so that a store into one
    /// object need not forget what it loaded from another (alias disambiguation).
    GuardNe(Ref, Ref),
    /// Exits unless the value is a heap object of this `heap::Kind` (as its byte).
    GuardKind(Ref, u8),
    /// Exits unless the object (known to be a heap object) has more than `k` slots or bytes.
    GuardLen(Ref, u32),
    /// Exits unless the SmallInt `index` is within 1..=len of the object (known to be a heap
    /// object): the check primitives 5 and 30 make.
    GuardIndex(Ref, Ref),
    /// Exits if the object (known to be a heap object) carries lookup watch flags: a store into
    /// it must flush the caches, which only the interpreter does.
    GuardUnwatched(Ref),
    /// Slot `i` (0-based) of a pointer object known to have more than `i` slots.
    LoadSlot(Ref, u32),
    /// Stores the value into slot `i` of a pointer object known to have more than `i` slots.
    StoreSlot(Ref, u32, Ref),
    /// The slot or byte count of an object, as a SmallInt.
    LoadLen(Ref),
    /// Element `index` (a SmallInt, 1-based, already checked by `GuardIndex`) of a pointer object.
    LoadElem(Ref, Ref),
    /// Stores the value as element `index` (1-based, checked by `GuardIndex`).
    StoreElem(Ref, Ref, Ref),
    /// Byte `index` (1-based, checked by `GuardIndex`) of a byte object, as a SmallInt 0..=255.
    LoadByte(Ref, Ref),
    /// Stores the low 8 bits of the SmallInt value as byte `index` (1-based, checked by
    /// `GuardIndex`) of a byte object: primitive 22.
    StoreByte(Ref, Ref, Ref),
    /// A new pointer object of the class with `len` (a SmallInt) nil slots: primitive 7. Exits,
    /// before allocating, when the length is not a SmallInt in `0..=MAX_NEW_SLOTS` or the heap
    /// wants a collection (compiled code never collects; the interpreter does, at its next
    /// safepoint, and then allocates).
    New(Ref, Value),
    /// A runtime helper on up to three values (unused ones repeat the last used). Exits when
    /// the helper answers 0 (see `Helper`).
    Call(Helper, Ref, Ref, Ref),
    /// Start of the loop body.
    Loop,
    /// Loop-carried value (see the module doc). `next` is set when the loop is closed.
    Phi {
        init: Ref,
        next: Option<Ref>,
    },
    /// Leaves the trace through its snapshot unconditionally.
    Exit,
}

impl Op {
    /// True for instructions that may exit through a snapshot.
    pub fn may_exit(&self) -> bool {
        matches!(
            self,
            Op::AddOv(..)
                | Op::SubOv(..)
                | Op::MulOv(..)
                | Op::Quo(..)
                | Op::Rem(..)
                | Op::New(..)
                | Op::Call(..)
                | Op::Exit
        ) || self.is_guard()
    }

    /// True for the guards: checks that exit through their snapshot and define no value.
    pub fn is_guard(&self) -> bool {
        matches!(
            self,
            Op::GuardInt(_)
                | Op::GuardClass(..)
                | Op::GuardIs(..)
                | Op::GuardIsNot(..)
                | Op::GuardNe(..)
                | Op::GuardKind(..)
                | Op::GuardLen(..)
                | Op::GuardIndex(..)
                | Op::GuardUnwatched(_)
        )
    }

    /// True for the stores into objects: the only instructions besides exits whose effects the
    /// interpreter sees.
    pub fn is_store(&self) -> bool {
        matches!(self, Op::StoreSlot(..) | Op::StoreElem(..) | Op::StoreByte(..))
    }

    /// True for instructions that define a value others may use.
    pub fn has_value(&self) -> bool {
        !(self.is_guard() || self.is_store() || matches!(self, Op::Loop | Op::Exit))
    }

    /// The same operation reading `f(r)` instead of each value `r` (a phi's `next` included).
    pub fn map_refs(self, f: impl Fn(Ref) -> Ref) -> Op {
        match self {
            Op::Input(_) | Op::Const(_) | Op::Loop | Op::Exit => self,
            Op::AddOv(a, b) => Op::AddOv(f(a), f(b)),
            Op::SubOv(a, b) => Op::SubOv(f(a), f(b)),
            Op::MulOv(a, b) => Op::MulOv(f(a), f(b)),
            Op::Quo(a, b) => Op::Quo(f(a), f(b)),
            Op::Rem(a, b) => Op::Rem(f(a), f(b)),
            Op::GuardKind(a, k) => Op::GuardKind(f(a), k),
            Op::GuardLen(a, k) => Op::GuardLen(f(a), k),
            Op::GuardIndex(a, i) => Op::GuardIndex(f(a), f(i)),
            Op::GuardUnwatched(a) => Op::GuardUnwatched(f(a)),
            Op::LoadElem(a, i) => Op::LoadElem(f(a), f(i)),
            Op::LoadByte(a, i) => Op::LoadByte(f(a), f(i)),
            Op::New(n, c) => Op::New(f(n), c),
            Op::Call(h, a, b, c) => Op::Call(h, f(a), f(b), f(c)),
            Op::StoreElem(a, i, v) => Op::StoreElem(f(a), f(i), f(v)),
            Op::StoreByte(a, i, v) => Op::StoreByte(f(a), f(i), f(v)),
            Op::Lt(a, b) => Op::Lt(f(a), f(b)),
            Op::Le(a, b) => Op::Le(f(a), f(b)),
            Op::Eq(a, b) => Op::Eq(f(a), f(b)),
            Op::GuardInt(a) => Op::GuardInt(f(a)),
            Op::GuardClass(a, c) => Op::GuardClass(f(a), c),
            Op::GuardIs(a, v) => Op::GuardIs(f(a), v),
            Op::GuardIsNot(a, v) => Op::GuardIsNot(f(a), v),
            Op::GuardNe(a, b) => Op::GuardNe(f(a), f(b)),
            Op::LoadSlot(o, k) => Op::LoadSlot(f(o), k),
            Op::StoreSlot(o, k, v) => Op::StoreSlot(f(o), k, f(v)),
            Op::LoadLen(o) => Op::LoadLen(f(o)),
            Op::Phi { init, next } => Op::Phi { init: f(init), next: next.map(f) },
        }
    }

    /// The values the instruction reads.
    pub fn operands(&self) -> Operands {
        match *self {
            Op::Input(_) | Op::Const(_) | Op::Loop | Op::Exit => Operands::new(),
            Op::AddOv(a, b)
            | Op::SubOv(a, b)
            | Op::MulOv(a, b)
            | Op::Quo(a, b)
            | Op::Rem(a, b)
            | Op::Lt(a, b)
            | Op::Le(a, b)
            | Op::Eq(a, b)
            | Op::GuardIndex(a, b)
            | Op::GuardNe(a, b)
            | Op::LoadElem(a, b)
            | Op::LoadByte(a, b) => Operands::from_slice(&[a, b]),
            Op::StoreElem(a, b, c) | Op::StoreByte(a, b, c) | Op::Call(_, a, b, c) => Operands::from_buf([a, b, c]),
            Op::GuardKind(a, _) | Op::GuardLen(a, _) | Op::GuardUnwatched(a) => Operands::from_slice(&[a]),
            Op::GuardInt(a)
            | Op::GuardClass(a, _)
            | Op::GuardIs(a, _)
            | Op::GuardIsNot(a, _)
            | Op::LoadSlot(a, _)
            | Op::New(a, _)
            | Op::LoadLen(a) => Operands::from_slice(&[a]),
            Op::StoreSlot(o, _, v) => Operands::from_slice(&[o, v]),
            Op::Phi { init, next } => std::iter::once(init).chain(next).collect(),
        }
    }
}

/// One instruction: its operation and, for instructions that may exit, the snapshot to exit by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inst {
    pub op: Op,
    pub snap: Option<SnapId>,
}

/// The frame-buffer slots to write, and the values to write there, when leaving by this snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub entries: Vec<(u16, Ref)>,
    /// Set on the optimizer's copies for the peeled loop body: the recorded snapshot this one
    /// stands for (same interpreter state, described by the second iteration's values).
    pub copy_of: Option<SnapId>,
}

/// A trace: instructions, snapshots, and the size of the frame buffer it works on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub insts: Vec<Inst>,
    pub snapshots: Vec<Snapshot>,
    pub slots: u16,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IrError {
    #[error("instruction {at}: operand {operand} is not an earlier value")]
    BadOperand { at: u32, operand: u32 },
    #[error("instruction {at}: operand {operand} defines no value")]
    NoValue { at: u32, operand: u32 },
    #[error("instruction {at}: it may exit but has no snapshot")]
    MissingSnapshot { at: u32 },
    #[error("instruction {at}: snapshot {snap} does not exist")]
    BadSnapshot { at: u32, snap: u32 },
    #[error("snapshot {snap}: slot {slot} is outside the frame buffer ({slots} slots)")]
    BadSlot { snap: u32, slot: u16, slots: u16 },
    #[error("snapshot {snap}: value {value} is not a value")]
    BadSnapshotValue { snap: u32, value: u32 },
    #[error("instruction {at}: input slot {slot} is outside the frame buffer ({slots} slots)")]
    BadInput { at: u32, slot: u16, slots: u16 },
    #[error("instruction {at}: phi outside the loop header, or loop not closed")]
    BadPhi { at: u32 },
    #[error("snapshot {snap}: copy of a snapshot that does not exist")]
    BadCopy { snap: u32 },
    #[error("more than one Loop")]
    TwoLoops,
    #[error("the trace neither loops nor ends with Exit")]
    NoEnd,
}

impl Trace {
    pub fn new(slots: u16) -> Trace {
        Trace { insts: Vec::new(), snapshots: Vec::new(), slots }
    }

    /// Appends an instruction; answers its value.
    pub fn push(&mut self, op: Op, snap: Option<SnapId>) -> Ref {
        self.insts.push(Inst { op, snap });
        Ref(self.insts.len() as u32 - 1)
    }

    /// Adds a snapshot.
    pub fn snapshot(&mut self, entries: Vec<(u16, Ref)>) -> SnapId {
        self.snapshots.push(Snapshot { entries, copy_of: None });
        SnapId(self.snapshots.len() as u32 - 1)
    }

    /// The snapshots without their entries (a pass that rewrites every instruction fills the
    /// entries in at its end, from the values it mapped them to).
    pub fn snapshot_shells(&self) -> Vec<Snapshot> {
        self.snapshots.iter().map(|s| Snapshot { entries: Vec::new(), copy_of: s.copy_of }).collect()
    }

    /// Per snapshot: whether an instruction exits by it (the optimiser leaves many unused).
    pub fn exited_by(&self) -> Vec<bool> {
        let mut used = vec![false; self.snapshots.len()];
        for s in self.insts.iter().filter_map(|i| i.snap) {
            if let Some(u) = used.get_mut(s.0 as usize) {
                *u = true;
            }
        }
        used
    }

    /// The recorded snapshot that `s` stands for: itself, or what it is a copy of.
    pub fn origin(&self, s: SnapId) -> SnapId {
        self.snapshots.get(s.0 as usize).and_then(|x| x.copy_of).unwrap_or(s)
    }

    /// Sets the back-edge value of a Phi.
    pub fn close_phi(&mut self, phi: Ref, next: Ref) {
        if let Op::Phi { next: n, .. } = &mut self.insts[phi.0 as usize].op {
            *n = Some(next);
        }
    }

    /// Makes a recorded loop trace a straight one (a root trace that ends by entering another
    /// loop's trace): its `Loop` becomes an unused constant, so that every `Ref` stays valid.
    pub fn drop_loop(&mut self) {
        if let Some(l) = self.loop_start() {
            self.insts[l].op = Op::Const(Value::from_int(0));
        }
    }

    /// The index of the Loop instruction, if any.
    pub fn loop_start(&self) -> Option<usize> {
        self.insts.iter().position(|i| i.op == Op::Loop)
    }

    /// Checks that the trace is well formed (see `IrError`).
    pub fn verify(&self) -> Result<(), IrError> {
        let loops = self.insts.iter().filter(|i| i.op == Op::Loop).count();
        if loops > 1 {
            return Err(IrError::TwoLoops);
        }
        let loop_at = self.loop_start();
        let ends = loop_at.is_some() || self.insts.last().is_some_and(|i| i.op == Op::Exit);
        if !ends {
            return Err(IrError::NoEnd);
        }
        let defines = |r: Ref| self.insts.get(r.0 as usize).is_some_and(|i| i.op.has_value());
        for (at, inst) in self.insts.iter().enumerate() {
            let at_u = at as u32;
            for operand in inst.op.operands() {
                let later_ok = matches!(inst.op, Op::Phi { next: Some(n), .. } if n == operand);
                if operand.0 as usize >= self.insts.len() || (operand.0 >= at_u && !later_ok) {
                    return Err(IrError::BadOperand { at: at_u, operand: operand.0 });
                }
                if !defines(operand) {
                    return Err(IrError::NoValue { at: at_u, operand: operand.0 });
                }
            }
            if let Op::Input(slot) = inst.op {
                if slot >= self.slots {
                    return Err(IrError::BadInput { at: at_u, slot, slots: self.slots });
                }
            }
            if let Op::Phi { next, .. } = inst.op {
                let in_header = loop_at
                    .is_some_and(|l| at > l && self.insts[l + 1..at].iter().all(|i| matches!(i.op, Op::Phi { .. })));
                if !in_header || next.is_none() {
                    return Err(IrError::BadPhi { at: at_u });
                }
            }
            match (inst.op.may_exit(), inst.snap) {
                (true, None) => return Err(IrError::MissingSnapshot { at: at_u }),
                (_, Some(s)) if s.0 as usize >= self.snapshots.len() => {
                    return Err(IrError::BadSnapshot { at: at_u, snap: s.0 })
                }
                _ => {}
            }
        }
        for (k, snap) in self.snapshots.iter().enumerate() {
            for &(slot, value) in &snap.entries {
                if slot >= self.slots {
                    return Err(IrError::BadSlot { snap: k as u32, slot, slots: self.slots });
                }
                if !defines(value) {
                    return Err(IrError::BadSnapshotValue { snap: k as u32, value: value.0 });
                }
            }
            if snap.copy_of.is_some_and(|c| c.0 as usize >= self.snapshots.len() || c.0 as usize == k) {
                return Err(IrError::BadCopy { snap: k as u32 });
            }
        }
        Ok(())
    }
}

fn value_text(v: Value) -> String {
    match v.as_int() {
        Some(i) => format!("#{i}"),
        None => format!("@{:x}", v.raw()),
    }
}

impl fmt::Display for Trace {
    /// The frame size, one line per instruction, `NNNN op operands  [-> snapshot]`, then the
    /// snapshots (`Trace::parse` reads the same form back):
    ///
    /// ```text
    /// slots 1
    /// 0000 input 0
    /// 0001 guard.int 0000  -> s0
    /// 0002 add.ov 0001 0001  -> s1
    /// s0: [0]=0000
    /// ```
    ///
    /// A snapshot copied for the peeled loop body names its original: `s7=s2: [1]=0012`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |r: Ref| format!("{:04}", r.0);
        writeln!(f, "slots {}", self.slots)?;
        for (i, inst) in self.insts.iter().enumerate() {
            let text = match inst.op {
                Op::Input(k) => format!("input {k}"),
                Op::Const(v) => format!("const {}", value_text(v)),
                Op::AddOv(a, b) => format!("add.ov {} {}", r(a), r(b)),
                Op::SubOv(a, b) => format!("sub.ov {} {}", r(a), r(b)),
                Op::MulOv(a, b) => format!("mul.ov {} {}", r(a), r(b)),
                Op::Quo(a, b) => format!("quo {} {}", r(a), r(b)),
                Op::Rem(a, b) => format!("rem {} {}", r(a), r(b)),
                Op::GuardKind(a, k) => format!("guard.kind {} {k}", r(a)),
                Op::GuardLen(a, k) => format!("guard.len {} {k}", r(a)),
                Op::GuardIndex(a, i) => format!("guard.index {} {}", r(a), r(i)),
                Op::GuardUnwatched(a) => format!("guard.unwatched {}", r(a)),
                Op::LoadElem(a, i) => format!("load.elem {} {}", r(a), r(i)),
                Op::LoadByte(a, i) => format!("load.byte {} {}", r(a), r(i)),
                Op::New(n, c) => format!("new {} {}", r(n), value_text(c)),
                Op::Call(h, a, b, c) => format!("call {} {} {} {}", h.name(), r(a), r(b), r(c)),
                Op::StoreElem(a, i, v) => format!("store.elem {} {} {}", r(a), r(i), r(v)),
                Op::StoreByte(a, i, v) => format!("store.byte {} {} {}", r(a), r(i), r(v)),
                Op::Lt(a, b) => format!("lt {} {}", r(a), r(b)),
                Op::Le(a, b) => format!("le {} {}", r(a), r(b)),
                Op::Eq(a, b) => format!("eq {} {}", r(a), r(b)),
                Op::GuardInt(a) => format!("guard.int {}", r(a)),
                Op::GuardClass(a, c) => format!("guard.class {} {}", r(a), value_text(c)),
                Op::GuardIs(a, v) => format!("guard.is {} {}", r(a), value_text(v)),
                Op::GuardIsNot(a, v) => format!("guard.isnot {} {}", r(a), value_text(v)),
                Op::GuardNe(a, b) => format!("guard.ne {} {}", r(a), r(b)),
                Op::LoadSlot(o, k) => format!("load.slot {} {k}", r(o)),
                Op::StoreSlot(o, k, v) => format!("store.slot {} {k} {}", r(o), r(v)),
                Op::LoadLen(o) => format!("load.len {}", r(o)),
                Op::Loop => "loop".to_string(),
                Op::Phi { init, next } => {
                    format!("phi {} {}", r(init), next.map(r).unwrap_or_else(|| "?".into()))
                }
                Op::Exit => "exit".to_string(),
            };
            let mut line = format!("{i:04} {text}");
            if let Some(s) = inst.snap {
                let _ = write!(line, "  -> s{}", s.0);
            }
            writeln!(f, "{line}")?;
        }
        for (k, snap) in self.snapshots.iter().enumerate() {
            let entries: Vec<String> = snap.entries.iter().map(|&(slot, v)| format!("[{slot}]={}", r(v))).collect();
            match snap.copy_of {
                Some(c) => writeln!(f, "s{k}=s{}: {}", c.0, entries.join(" "))?,
                None => writeln!(f, "s{k}: {}", entries.join(" "))?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("IR text line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

fn parse_value(s: &str) -> Option<Value> {
    if let Some(i) = s.strip_prefix('#') {
        return i.parse::<i32>().ok().map(Value::from_int);
    }
    let raw = u64::from_str_radix(s.strip_prefix('@')?, 16).ok()?;
    (raw & 1 == 0 && raw != 0).then(|| Value::from_raw(raw))
}

impl Trace {
    /// Reads the text form printed by `Display` (numbering must be consecutive from 0000).
    /// Object constants (`@hex`) are taken as written, so parsed traces are for tests and tools,
    /// not for running against a heap they were not printed from.
    pub fn parse(text: &str) -> Result<Trace, ParseError> {
        let mut t = Trace::new(0);
        let mut snaps: Vec<(usize, Snapshot)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |what: &str| ParseError { line, what: what.to_string() };
            let l = raw.trim();
            if l.is_empty() {
                continue;
            }
            if let Some(k) = l.strip_prefix("slots ") {
                t.slots = k.trim().parse().map_err(|_| err("bad slot count"))?;
                continue;
            }
            if let Some(rest) = l.strip_prefix('s') {
                let (id, entries) = rest.split_once(':').ok_or_else(|| err("snapshot without ':'"))?;
                let (id, copy_of) = match id.split_once("=s") {
                    Some((id, c)) => (id, Some(SnapId(c.parse().map_err(|_| err("bad snapshot number"))?))),
                    None => (id, None),
                };
                let id: usize = id.parse().map_err(|_| err("bad snapshot number"))?;
                let mut snap = Snapshot { entries: Vec::new(), copy_of };
                for e in entries.split_whitespace() {
                    let (slot, v) = e
                        .strip_prefix('[')
                        .and_then(|e| e.split_once("]="))
                        .ok_or_else(|| err("snapshot entry is not [slot]=value"))?;
                    let slot = slot.parse().map_err(|_| err("bad slot"))?;
                    let v = v.parse::<u32>().map_err(|_| err("bad value reference"))?;
                    snap.entries.push((slot, Ref(v)));
                }
                snaps.push((id, snap));
                continue;
            }
            let (body, snap) = match l.split_once("->") {
                Some((b, s)) => {
                    let s = s.trim().strip_prefix('s').and_then(|s| s.parse::<u32>().ok());
                    (b.trim(), Some(SnapId(s.ok_or_else(|| err("bad snapshot after ->"))?)))
                }
                None => (l, None),
            };
            let words: Vec<&str> = body.split_whitespace().collect();
            let number: usize = words.first().and_then(|w| w.parse().ok()).ok_or_else(|| err("no number"))?;
            if number != t.insts.len() {
                return Err(err("instructions must be numbered 0000, 0001, … in order"));
            }
            let arg = |i: usize| words.get(i + 2).copied().ok_or_else(|| err("missing operand"));
            let r = |i: usize| -> Result<Ref, ParseError> {
                arg(i)?.parse::<u32>().map(Ref).map_err(|_| err("bad value reference"))
            };
            let v = |i: usize| -> Result<Value, ParseError> { parse_value(arg(i)?).ok_or_else(|| err("bad constant")) };
            let k = |i: usize| -> Result<u32, ParseError> { arg(i)?.parse().map_err(|_| err("bad number")) };
            let op = match *words.get(1).ok_or_else(|| err("no operation"))? {
                "input" => Op::Input(k(0)? as u16),
                "const" => Op::Const(v(0)?),
                "add.ov" => Op::AddOv(r(0)?, r(1)?),
                "sub.ov" => Op::SubOv(r(0)?, r(1)?),
                "mul.ov" => Op::MulOv(r(0)?, r(1)?),
                "quo" => Op::Quo(r(0)?, r(1)?),
                "rem" => Op::Rem(r(0)?, r(1)?),
                "guard.kind" => Op::GuardKind(r(0)?, k(1)? as u8),
                "guard.len" => Op::GuardLen(r(0)?, k(1)?),
                "guard.index" => Op::GuardIndex(r(0)?, r(1)?),
                "guard.unwatched" => Op::GuardUnwatched(r(0)?),
                "load.elem" => Op::LoadElem(r(0)?, r(1)?),
                "load.byte" => Op::LoadByte(r(0)?, r(1)?),
                "new" => Op::New(r(0)?, v(1)?),
                "call" => {
                    let h = Helper::from_name(arg(0)?).ok_or_else(|| err("unknown helper"))?;
                    Op::Call(h, r(1)?, r(2)?, r(3)?)
                }
                "store.elem" => Op::StoreElem(r(0)?, r(1)?, r(2)?),
                "store.byte" => Op::StoreByte(r(0)?, r(1)?, r(2)?),
                "lt" => Op::Lt(r(0)?, r(1)?),
                "le" => Op::Le(r(0)?, r(1)?),
                "eq" => Op::Eq(r(0)?, r(1)?),
                "guard.int" => Op::GuardInt(r(0)?),
                "guard.class" => Op::GuardClass(r(0)?, v(1)?),
                "guard.is" => Op::GuardIs(r(0)?, v(1)?),
                "guard.isnot" => Op::GuardIsNot(r(0)?, v(1)?),
                "guard.ne" => Op::GuardNe(r(0)?, r(1)?),
                "load.slot" => Op::LoadSlot(r(0)?, k(1)?),
                "store.slot" => Op::StoreSlot(r(0)?, k(1)?, r(2)?),
                "load.len" => Op::LoadLen(r(0)?),
                "loop" => Op::Loop,
                "phi" => Op::Phi { init: r(0)?, next: Some(r(1)?) },
                "exit" => Op::Exit,
                other => return Err(err(&format!("unknown operation {other}"))),
            };
            t.push(op, snap);
        }
        snaps.sort_by_key(|s| s.0);
        for (i, (id, snap)) in snaps.into_iter().enumerate() {
            if id != i {
                return Err(ParseError { line: 0, what: format!("snapshot s{i} missing") });
            }
            t.snapshots.push(snap);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let t = sum_loop();
        let text = t.to_string();
        let back = Trace::parse(&text).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.to_string(), text);
        assert!(Trace::parse("slots 1\n0000 frob 1\n").is_err());
        assert!(Trace::parse("slots 1\n0001 input 0\n").is_err());
        assert!(Trace::parse("slots 1\n0000 const @3\n").is_err(), "odd addresses are not objects");
    }

    #[test]
    fn snapshot_copies_print_their_origin_and_verify() {
        let text = "slots 1\n0000 input 0\n0001 exit  -> s1\ns0: [0]=0000\ns1=s0: [0]=0000\n";
        let t = Trace::parse(text).unwrap();
        assert_eq!(t.to_string(), text);
        assert_eq!(t.origin(SnapId(1)), SnapId(0));
        assert_eq!(t.origin(SnapId(0)), SnapId(0));
        t.verify().unwrap();
        let mut bad = t.clone();
        bad.snapshots[1].copy_of = Some(SnapId(5));
        assert_eq!(bad.verify(), Err(IrError::BadCopy { snap: 1 }));
    }

    /// sum <- 0. i <- 1. [i <= n] whileTrue: [sum <- sum + i. i <- i + 1]
    fn sum_loop() -> Trace {
        let mut t = Trace::new(3);
        let n = t.push(Op::Input(0), None);
        let i0 = t.push(Op::Input(1), None);
        let s0 = t.push(Op::Input(2), None);
        let entry = t.snapshot(vec![]);
        t.push(Op::GuardInt(n), Some(entry));
        t.push(Op::GuardInt(i0), Some(entry));
        t.push(Op::GuardInt(s0), Some(entry));
        t.push(Op::Loop, None);
        let i = t.push(Op::Phi { init: i0, next: None }, None);
        let s = t.push(Op::Phi { init: s0, next: None }, None);
        let c = t.push(Op::Le(i, n), None);
        let done = t.snapshot(vec![(1, i), (2, s)]);
        t.push(Op::GuardIs(c, Value::from_int(1)), Some(done));
        let s2 = t.push(Op::AddOv(s, i), Some(done));
        let one = t.push(Op::Const(Value::from_int(1)), None);
        let i2 = t.push(Op::AddOv(i, one), Some(done));
        t.close_phi(i, i2);
        t.close_phi(s, s2);
        t
    }

    #[test]
    fn a_well_formed_loop_verifies_and_prints() {
        let t = sum_loop();
        t.verify().unwrap();
        let text = t.to_string();
        assert!(text.starts_with("slots 3\n0000 input 0\n"), "{text}");
        assert!(text.contains("0007 phi 0001 0013"), "{text}");
        assert!(text.contains("0011 add.ov 0008 0007  -> s1"), "{text}");
        assert!(text.contains("s1: [1]=0007 [2]=0008"), "{text}");
    }

    #[test]
    fn malformed_traces_are_rejected() {
        let mut t = sum_loop();
        t.insts[3].snap = None;
        assert_eq!(t.verify(), Err(IrError::MissingSnapshot { at: 3 }));

        let mut t = sum_loop();
        t.insts[10].op = Op::Le(Ref(12), Ref(0));
        assert_eq!(t.verify(), Err(IrError::BadOperand { at: 10, operand: 12 }));

        let mut t = sum_loop();
        t.insts[10].op = Op::Le(Ref(3), Ref(0));
        assert_eq!(t.verify(), Err(IrError::NoValue { at: 10, operand: 3 }));

        let mut t = sum_loop();
        t.snapshots[1].entries.push((7, Ref(0)));
        assert_eq!(t.verify(), Err(IrError::BadSlot { snap: 1, slot: 7, slots: 3 }));

        let mut t = Trace::new(1);
        t.push(Op::Input(0), None);
        assert_eq!(t.verify(), Err(IrError::NoEnd));

        let mut t = Trace::new(1);
        let x = t.push(Op::Input(0), None);
        t.push(Op::Phi { init: x, next: Some(x) }, None);
        let s = t.snapshot(vec![]);
        t.push(Op::Exit, Some(s));
        assert_eq!(t.verify(), Err(IrError::BadPhi { at: 1 }));
    }
}
