//! Deoptimisation: what each snapshot of a trace means, and rebuilding the interpreter's state
//! from it when the trace exits.
//!
//! Owns `ExitState` (the recorder writes one per snapshot: every frame the trace had inlined, and
//! every object it kept virtual, in terms of frame-buffer words and constants) and
//! `Vm::materialize`, which turns an exit into ordinary Context, Block and Array objects and makes
//! the innermost frame the interpreter's active context. It never runs Smalltalk code and never
//! collects (it only allocates), so the values in the frame buffer stay valid while it works.

use crate::heap::Value;
use crate::interp::{ctx, Vm};
use smallvec::SmallVec;
use std::fmt;

/// Where a value of the interpreter state is at an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    /// The frame-buffer word the exit wrote.
    Slot(u16),
    /// A value fixed when the trace was recorded.
    Const(Value),
    /// An object the trace kept virtual: index into `ExitState::objects`.
    Virtual(u16),
}

/// A context an object refers to: one of the exit's frames, or a real context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxLoc {
    Frame(u16),
    Real(Loc),
}

/// An object the trace never allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjDesc {
    /// An Array (argument arrays, temporaries of inlined frames).
    Array(Vec<Loc>),
    /// A Block made by PushBlock in `creator` (SMALLWORLD-VM.md §3.2, opcode 12).
    Block { method: Value, body: u32, arg_location: u32, creator: CtxLoc, home: CtxLoc, args: Loc, temps: Loc },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A context that existed when the trace was entered (the trace's root).
    Real { ctx: Loc },
    /// An inlined method activation.
    Method { method: Value, args: Loc, temps: Loc },
    /// An inlined block activation.
    Block { block: Loc },
}

/// One frame at an exit: what it is, where it resumes, its stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameDesc {
    pub kind: FrameKind,
    pub ip: u32,
    pub stack: Vec<Loc>,
    /// Stack length a fresh context of this frame gets (the interpreter's choice).
    pub stack_size: u32,
}

/// The interpreter state at one snapshot: frames from the root (sender-most) up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitState {
    pub frames: Vec<FrameDesc>,
    pub objects: Vec<ObjDesc>,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Loc::Slot(k) => write!(f, "[{k}]"),
            Loc::Const(v) => match v.as_int() {
                Some(i) => write!(f, "#{i}"),
                None => write!(f, "@{:x}", v.raw()),
            },
            Loc::Virtual(k) => write!(f, "v{k}"),
        }
    }
}

impl fmt::Display for CtxLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtxLoc::Frame(k) => write!(f, "frame{k}"),
            CtxLoc::Real(l) => write!(f, "{l}"),
        }
    }
}

impl fmt::Display for ExitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[Loc]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(" ");
        for (i, fr) in self.frames.iter().enumerate() {
            let kind = match &fr.kind {
                FrameKind::Real { ctx } => format!("real {ctx}"),
                FrameKind::Method { method, args, temps } => {
                    format!("method @{:x} args {args} temps {temps}", method.raw())
                }
                FrameKind::Block { block } => format!("block {block}"),
            };
            writeln!(f, "    frame{i}: {kind} ip {} stack [{}]", fr.ip, list(&fr.stack))?;
        }
        for (i, o) in self.objects.iter().enumerate() {
            match o {
                ObjDesc::Array(e) => writeln!(f, "    v{i}: Array [{}]", list(e))?,
                ObjDesc::Block { body, creator, home, .. } => {
                    writeln!(f, "    v{i}: Block body {body} creator {creator} home {home}")?
                }
            }
        }
        Ok(())
    }
}

/// Header flags the interpreter gives contexts it made (see `interp::exec`).
pub(crate) use crate::interp::{OWNS_ARGS, RECYCLABLE};

struct Materializer<'a> {
    state: &'a ExitState,
    buffer: &'a [u64],
    // Inline capacity for the usual exit (a few frames, a few virtual objects): materialising
    // runs on every exit, and three heap allocations showed in its profile.
    contexts: SmallVec<[Value; 8]>,
    objects: SmallVec<[Option<Value>; 8]>,
}

impl Vm {
    /// Rebuilds the interpreter state of `state` (values of `Loc::Slot` in `buffer`) and makes
    /// its innermost frame the active context.
    pub(crate) fn materialize(&mut self, state: &ExitState, buffer: &[u64]) {
        let nil = self.k.nil;
        let mut m = Materializer {
            state,
            buffer,
            contexts: SmallVec::with_capacity(state.frames.len()),
            objects: smallvec::smallvec![None; state.objects.len()],
        };
        // 1. A context object for every frame (real ones exist), so that blocks can name them.
        for fr in &state.frames {
            let c = match fr.kind {
                FrameKind::Real { ctx } => m.plain(ctx),
                FrameKind::Method { .. } => self.heap.alloc_pointers(self.k.context, ctx::SIZE, nil),
                FrameKind::Block { .. } => self.heap.alloc_pointers(self.k.context, ctx::BLOCK_SIZE, nil),
            };
            m.contexts.push(c);
        }
        // 2. Links and stacks first: a block made in a frame reads its creator's stack and sender.
        for (i, fr) in state.frames.iter().enumerate() {
            let c = m.contexts[i];
            let size = fr.stack_size.max(fr.stack.len() as u32).max(1) as usize;
            match fr.kind {
                FrameKind::Real { .. } => {
                    let old = c.slot(ctx::STACK);
                    if !old.is_pointers() || old.len() < fr.stack.len() {
                        let new = self.heap.alloc_pointers(self.k.array, size, nil);
                        for k in 0..old.len().min(size) {
                            new.set_slot(k, old.slot(k));
                        }
                        c.set_slot(ctx::STACK, new);
                    }
                }
                FrameKind::Method { method, .. } => {
                    c.set_slot(ctx::METHOD, method);
                    c.set_slot(ctx::PREVIOUS, m.contexts[i - 1]);
                    c.set_slot(ctx::STACK, self.heap.alloc_pointers(self.k.array, size, nil));
                }
                FrameKind::Block { .. } => {
                    c.set_slot(ctx::PREVIOUS, m.contexts[i - 1]);
                    c.set_slot(ctx::STACK, self.heap.alloc_pointers(self.k.array, size, nil));
                }
            }
        }
        // 3. Everything else.
        let mut escaped: SmallVec<[Value; 4]> = SmallVec::new();
        for (i, fr) in state.frames.iter().enumerate() {
            let c = m.contexts[i];
            match fr.kind {
                FrameKind::Real { .. } => {}
                FrameKind::Method { args, temps, .. } => {
                    let a = self.value_of(&mut m, args, &mut escaped);
                    let t = self.value_of(&mut m, temps, &mut escaped);
                    c.set_slot(ctx::ARGUMENTS, a);
                    c.set_slot(ctx::TEMPORARIES, t);
                    // As the interpreter made it: recyclable, owning an argument Array built for it.
                    if !self.plain {
                        c.set_flags(if matches!(args, Loc::Virtual(_)) { RECYCLABLE | OWNS_ARGS } else { RECYCLABLE });
                    }
                }
                FrameKind::Block { block } => {
                    let b = self.value_of(&mut m, block, &mut escaped);
                    for k in [ctx::METHOD, ctx::ARGUMENTS, ctx::TEMPORARIES, ctx::ARG_LOCATION, ctx::CREATING_CONTEXT] {
                        c.set_slot(k, b.slot(k));
                    }
                    c.set_slot(ctx::OLD_BYTE_POINTER, b.slot(ctx::OLD_BYTE_POINTER));
                    if !self.plain {
                        c.set_flags(RECYCLABLE);
                    }
                }
            }
            let stack = c.slot(ctx::STACK);
            for (k, &l) in fr.stack.iter().enumerate() {
                let v = self.value_of(&mut m, l, &mut escaped);
                stack.set_slot(k, v);
            }
            c.set_slot(ctx::BYTE_POINTER, Value::from_int(fr.ip as i32));
            c.set_slot(ctx::STACK_TOP, Value::from_int(fr.stack.len() as i32));
        }
        // A materialised block holds its creating context (and so every sender below it).
        for c in escaped {
            self.mark_escaped(c);
        }
        let top = *m.contexts.last().expect("an exit has at least the root frame");
        self.load_context_after_exit(top);
    }

    /// The value at `l`, materialising a virtual object (once per exit).
    fn value_of(&mut self, m: &mut Materializer<'_>, l: Loc, escaped: &mut SmallVec<[Value; 4]>) -> Value {
        match l {
            Loc::Slot(_) | Loc::Const(_) => m.plain(l),
            Loc::Virtual(k) => {
                if let Some(v) = m.objects[k as usize] {
                    return v;
                }
                let nil = self.k.nil;
                match &m.state.objects[k as usize] {
                    ObjDesc::Array(elems) => {
                        let a = self.heap.alloc_pointers(self.k.array, elems.len(), nil);
                        m.objects[k as usize] = Some(a);
                        for (i, &e) in elems.iter().enumerate() {
                            let v = self.value_of(m, e, escaped);
                            a.set_slot(i, v);
                        }
                        a
                    }
                    &ObjDesc::Block { method, body, arg_location, creator, home, args, temps } => {
                        let b = self.heap.alloc_pointers(self.k.block, ctx::BLOCK_SIZE, nil);
                        m.objects[k as usize] = Some(b);
                        let creator = m.context(creator);
                        let home = m.context(home);
                        let args = self.value_of(m, args, escaped);
                        let temps = self.value_of(m, temps, escaped);
                        let body = Value::from_int(body as i32);
                        let slots = [
                            method,
                            args,
                            temps,
                            creator.slot(ctx::STACK),
                            body,
                            Value::from_int(0),
                            creator.slot(ctx::PREVIOUS),
                            Value::from_int(arg_location as i32),
                            home,
                            body,
                        ];
                        for (i, v) in slots.into_iter().enumerate() {
                            b.set_slot(i, v);
                        }
                        escaped.push(creator);
                        b
                    }
                }
            }
        }
    }
}

impl Materializer<'_> {
    /// A value that needs no materialising.
    fn plain(&self, l: Loc) -> Value {
        match l {
            Loc::Slot(k) => Value::from_raw(self.buffer[k as usize]),
            Loc::Const(v) => v,
            Loc::Virtual(_) => unreachable!("virtual objects are materialised by value_of"),
        }
    }

    fn context(&self, c: CtxLoc) -> Value {
        match c {
            CtxLoc::Frame(i) => self.contexts[i as usize],
            CtxLoc::Real(l) => self.plain(l),
        }
    }
}
