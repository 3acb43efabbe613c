//! The trace recorder: turns one iteration of a hot loop, as the interpreter executes it, into IR.
//!
//! Owns the recorder's model of the executing frames (the trace's root context, which is real,
//! and every frame inlined above it, which is virtual: its arguments, temporaries and stack are
//! IR values), the objects the trace keeps virtual (argument Arrays, temporaries, Blocks made on
//! the trace), and the snapshot of that model at every guard (`deopt::ExitState`).
//!
//! It runs *beside* the interpreter, LuaJIT-style: before each bytecode executes (in the plain
//! interpreter: every send a real activation), `observe` reads the bytecode and the concrete
//! operands and emits the IR that computes the same result, with a guard for every decision the
//! concrete values made (receiver classes at sends, branch directions, SmallInt-ness, bounds,
//! overflow). It never changes the interpreter's state, and it aborts — never guesses — on
//! anything it does not model: an unsupported primitive, a virtual object escaping into the heap,
//! a loop trace's return out of the root frame, an inner loop without a trace of its own, a
//! trace that grows too long. An inner loop that has a trace ends the recording at its header
//! instead (`Step::EntersLoop`). A tail (the side trace of an exit that ends the loop) follows
//! returns out of the loop's frame into the real contexts below (`Recorder::descend`). A side trace of an exit inside inlined frames, or of one whose state has
//! virtual objects, inherits the exit's state (`start_inherited`): those frames and objects
//! stay virtual. Otherwise a return from a real frame (a
//! context a side trace started from) frees that context as the interpreter's return would
//! (`Helper::FreeContext`).
//!
//! Every guard's snapshot is the state *before* the bytecode being recorded, and a bytecode's
//! effects (stores) are emitted after its guards, so an exit resumes the interpreter at the start
//! of that bytecode, which then does the whole thing itself.

use crate::heap::{Kind, Value};
use crate::interp::{class, ctx, meth, SiteRef, Vm};
use crate::jit::deopt::{CtxLoc, ExitState, FrameDesc, FrameKind, Loc, ObjDesc};
use crate::jit::ir::{Helper, Op, Ref, SnapId, Trace};
use crate::jit::runtime::allocatable;
use crate::jit::Traced;
use hashbrown::HashMap;

/// Bytecodes one trace may record before it is abandoned.
pub const MAX_BYTECODES: usize = 3000;
/// Inlined frames deeper than this abort (runaway recursion on the trace).
pub const MAX_DEPTH: usize = 40;
/// Activations of one method the trace may inline inside each other. Recording a deep
/// recursion to `MAX_DEPTH` before giving up cost about 0.8 ms per attempt (every snapshot
/// describes every frame): a loop calling a 60-deep recursion spent 6.2 ms recording, 0.5 ms
/// with this limit. LuaJIT unrolls recursion twice (`recunroll`).
pub const MAX_RECURSION: usize = 4;
/// Why a recording stops at `MAX_RECURSION`.
pub const ABORT_RECURSION: &str = "recursion inlined too deep";
/// Frame-buffer word of an inheriting side trace's copy of its parent's exit word 0 (words
/// 0–3 are the loop's context, arguments, temporaries and stack, as in every trace of the tree).
pub const INHERITED_BASE: u16 = 4;

/// A value as the recorder knows it: computed by the trace, or an object the trace did not
/// allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sym {
    Ir(Ref),
    Virt(u32),
}

/// A context a virtual Block refers to: a frame of the trace (by id), or a real context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CtxRef {
    Frame(u32),
    Real(Ref),
}

#[derive(Clone, Debug)]
enum VObj {
    Array(Vec<Sym>),
    Block { method: Value, body: u32, arg_location: u32, creator: CtxRef, home: CtxRef, args: Sym, temps: Sym },
}

#[derive(Clone, Copy, Debug)]
enum FrameType {
    Real { ctx: Ref },
    Method,
    Block { block: Sym },
}

#[derive(Clone, Debug)]
struct Frame {
    id: u32,
    ty: FrameType,
    method: Value,
    args: Sym,
    temps: Sym,
    stack: Vec<Sym>,
    /// Where the frame resumes (the top frame's is the bytecode being recorded).
    ip: usize,
    stack_size: u32,
    /// The context a `^` in this frame returns from (None: not yet loaded, for a real block frame).
    home: Option<CtxRef>,
    /// A block was made while this frame was live: the interpreter marked its context (and every
    /// context below) escaped then, so a real frame's context is not freed when it returns.
    escaped: bool,
}

/// Where recording began.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// The method of the outermost frame, whose loop this is.
    pub method: Value,
    pub header: usize,
    pub root_ctx: Value,
    /// The method running where recording began (the parent's exit, for a side trace).
    pub top_method: Value,
    /// For a side trace: (parent trace, exit snapshot).
    pub parent: Option<(u32, u32)>,
}

/// A real frame's arguments and temporaries Arrays (trace inputs) and how many of their slots the
/// trace reads unchecked (entry checks them).
#[derive(Clone, Copy, Debug)]
struct RealInputs {
    args: Ref,
    temps: Ref,
    need_args: usize,
    need_temps: usize,
}

/// What entering a trace requires of each real frame (outermost first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryFrame {
    pub method: Value,
    pub sp: usize,
}

/// Returns a tail may follow out of its bottom frame into the real contexts below
/// (`Recorder::descend`): from an inner loop's frame, through the block that ran it, to the
/// outer loop's frame, and a little further.
pub const MAX_DESCENTS: u32 = 4;

/// The bytecodes (inlined ones included) a tail must record to be compiled (`Recorder::pays_off`).
pub const MIN_TAIL_STEPS: usize = 16;

/// Why a tail's recording is abandoned when it is too short (`Recorder::pays_off`).
pub const ABORT_SHORT_TAIL: &str = "tail after the loop too short to pay off";

/// What `observe` decided.
pub enum Step {
    /// Go on executing and recording.
    Continue,
    /// Control is back at the loop header: the trace is complete.
    Closed,
    /// A side trace reached the back edge of another loop: it ends there (`close_link`), and the
    /// interpreter takes that back edge, where the other loop's own trace is entered.
    Linked,
    /// A side trace reached a return (`^`, or a block's non-local `^`) out of the loop's frame:
    /// the loop is over. It ends there with an exit before the return (`close_returning`), and
    /// the interpreter makes the return. (A loop trace's recording aborts there instead: that
    /// iteration did not loop.)
    Returns,
    /// A loop trace's recording (or a tail's that went on past its loop) reached the header of
    /// an inner loop that has a loop trace of its own: it ends there (`close_entering`), and the
    /// VM enters that trace next. LuaJIT links a root trace to another root trace the same way.
    /// Without it an inner loop's trace is only entered at its first back edge, so every outer
    /// iteration would interpret one inner one.
    EntersLoop,
}

/// A finished recording.
pub struct Recording {
    pub key: u64,
    pub trace: Trace,
    pub exits: Vec<ExitState>,
    pub start: Start,
    /// Per real frame at entry (outermost first): its method and stack depth, and how many of
    /// its arguments and temporaries the trace reads unchecked. Entry requires all of it.
    pub entry: Vec<EntryFrame>,
    pub needs: Vec<(usize, usize)>,
    pub log: Vec<String>,
    /// Per snapshot: whether leaving by it means the loop has ended (a branch in the root frame
    /// whose other side jumps past the loop's back edge), which is not a sign of a bad trace.
    pub loop_exits: Vec<bool>,
    /// A side trace's last exit (back at the loop header).
    pub end_exit: Option<usize>,
    /// A side trace's last exit at another loop's back edge (see `Step::Linked`).
    pub link_exit: Option<usize>,
    /// A side trace's last exit at a return out of the loop's frame (see `Step::Returns`).
    pub return_exit: Option<usize>,
    /// A root trace's last exit at an inner loop's header, whose trace is entered next (see
    /// `Step::EntersLoop`). Such a trace has no loop of its own.
    pub enter_exit: Option<usize>,
    /// The (class, selector) lookups the trace folded: it depends on their answers.
    pub lookups: Vec<(Value, Value)>,
    /// The ip of the loop's back edge (`usize::MAX` when not seen).
    pub loop_end: usize,
    /// Per snapshot: it was taken where the loop's frame had returned (a tail that descended
    /// into the contexts below it, `Recorder::descend`). There the bottom frame is not the
    /// loop's: no side trace, no link (frame-buffer words 0–3 would not be the loop's context).
    pub below_loop: Vec<bool>,
    /// For a tail that went on into the next iteration of an outer loop: its snapshots from
    /// this one on are in that iteration (where the tail guessed the path it would take).
    pub crossed_at: Option<usize>,
    /// For a side trace that inherits its parent's exit state: the parent's exit words it reads
    /// (as frame-buffer words `INHERITED_BASE + k`), which the parent's linked exit must write.
    /// Such a trace is entered by that link only, never from the VM.
    pub inherited: Option<Vec<u16>>,
    /// For a recording that ends at an inner loop's header: that loop's trace.
    pub enters: Option<u32>,
}

pub struct Recorder {
    /// The entry key of the loop run being recorded (see `Vm::entry_key`).
    pub key: u64,
    trace: Trace,
    exits: Vec<ExitState>,
    pub start: Start,
    frames: Vec<Frame>,
    objs: Vec<VObj>,
    next_frame: u32,
    consts: HashMap<u64, Ref>,
    const_of: HashMap<Ref, Value>,
    real: Vec<RealInputs>,
    entry: Vec<EntryFrame>,
    end_exit: Option<usize>,
    link_exit: Option<usize>,
    return_exit: Option<usize>,
    enter_exit: Option<usize>,
    /// The snapshot of the state before the current bytecode, once a guard needed it.
    snap: Option<SnapId>,
    /// Per IR value and per virtual object: (snapshot number, its word or object index in that
    /// snapshot) — so that building a snapshot finds what it has numbered in constant time.
    /// Deep traces have snapshots of a hundred values; searching them was a tenth of the
    /// recording time of `poly.st`.
    word_of: Vec<(u32, u16)>,
    object_of: Vec<(u32, u16)>,
    /// The last snapshot's numbers of words and virtual objects.
    snapshots_last: Option<(u32, u32)>,
    pre_stack: Vec<Sym>,
    pre_ip: usize,
    steps: usize,
    /// A side trace from an exit that ends the loop (a *tail*: the code after the loop, through
    /// returns into the contexts below (`descend`) and once through an outer loop's back edge,
    /// up to an inner loop's header or where it cannot go on). See `Recorder::pays_off`.
    pub tail: bool,
    /// Returns a tail made out of its bottom frame (`descend`), and the first snapshot taken for
    /// the first of them.
    descended: u32,
    below_loop: Option<usize>,
    /// A tail went on through an outer loop's back edge into its next iteration, and the
    /// number of snapshots taken before that.
    crossed: bool,
    crossed_at: Option<usize>,
    /// A tail may go on into the next outer iteration (false once such a tail of the same exit
    /// guessed that iteration's path wrong too often: `Vm::judge_crossing`).
    pub may_cross: bool,
    /// (snapshot, the other side's ip) of every branch guard in the root frame.
    root_branches: Vec<(SnapId, usize)>,
    /// The ip of the loop's back edge (its last instruction), once seen.
    loop_end: usize,
    lookups: Vec<(Value, Value)>,
    /// Method-identity guards (`method_guard`) by receiver: the receiver and the guard.
    method_guards: Vec<(Ref, Ref)>,
    /// The nil object (operands of helper calls).
    nil: Value,
    /// For a side trace that inherits its parent's exit state (`start_inherited`): the parent's
    /// exit words it reads, each as frame-buffer word `INHERITED_BASE + k`.
    inherited: Option<Vec<u16>>,
    /// The inner loop's trace a `Step::EntersLoop` ending enters.
    enters: Option<u32>,
    /// One line per recorded bytecode (only when dumping).
    pub log: Option<Vec<String>>,
}

type Abort = String;

/// Why a loop trace's recording ends when the recorded iteration leaves the loop's frame: the
/// loop ended (its last back edge was the one that started the recording). `Vm::note_abort`
/// gives such a loop one more try at its next back edge before backing off.
pub const ABORT_LOOP_RETURNED: &str = "return from the trace's root frame";
pub const ABORT_LOOP_RETURNED_NON_LOCALLY: &str = "non-local return out of the trace's root frame";

/// Classes a send site must have seen, all finding one method, before the recorder guards the
/// method rather than the class (`Recorder::method_guard`). Below it a chain of class guards is
/// short, and each is cheaper than the lookup the method guard does.
const METHOD_GUARD_CLASSES: usize = 3;

fn abort<T>(why: impl Into<String>) -> Result<T, Abort> {
    Err(why.into())
}

/// A bytecode decoded: opcode, operand, length, and the byte after the operand (when it has one).
struct Decoded {
    op: u8,
    n: u8,
    len: usize,
    extra: u8,
}

fn decode(code: &[u8], ip: usize) -> Option<Decoded> {
    let b = *code.get(ip)?;
    let (op, n, mut len) = if b >> 4 == 0 { (b & 15, *code.get(ip + 1)?, 2) } else { (b >> 4, b & 15, 1) };
    let mut extra = 0;
    if op == 12 || op == 13 || (op == 15 && matches!(n, 6..=8 | 11)) {
        extra = *code.get(ip + len)?;
        len += 1;
    }
    Some(Decoded { op, n, len, extra })
}

/// The ip of the backward jump to `header` that closes the loop starting there, if the code has
/// one (the first after the header).
fn back_edge(code: &[u8], header: usize) -> Option<usize> {
    let mut ip = header;
    while let Some(d) = decode(code, ip) {
        if d.op == 15 && d.n == 6 && d.extra as usize == header {
            return Some(ip);
        }
        ip += d.len;
    }
    None
}

/// The method an exit state's frame runs (a block frame's: its context's, which the recorder
/// checks against nothing else).
fn method_of(rec: &Recorder, fr: &FrameDesc, c: Value) -> Value {
    match &fr.kind {
        FrameKind::Method { method, .. } => *method,
        FrameKind::Block { block: Loc::Virtual(k) } => match rec.objs.get(*k as usize) {
            Some(VObj::Block { method, .. }) => *method,
            _ => Value::from_int(0),
        },
        FrameKind::Real { .. } | FrameKind::Block { .. } => c.slot(ctx::METHOD),
    }
}

/// The `n` innermost contexts of the interpreter, outermost first.
fn context_chain(vm: &Vm, n: usize) -> Result<Vec<Value>, Abort> {
    let mut chain = vec![vm.regs.ctx];
    while chain.len() < n {
        let below = chain.last().and_then(|c| c.slot_checked(ctx::PREVIOUS)).unwrap_or(vm.k.nil);
        if !below.is_pointers() || below.len() < ctx::SIZE {
            return abort("side exit's contexts are not a chain");
        }
        chain.push(below);
    }
    chain.reverse();
    Ok(chain)
}

/// `Class>>selector` of a method, for dumps and messages.
pub fn method_name(vm: &Vm, method: Value) -> String {
    let text = |v: Option<Value>| {
        v.filter(|v| v.is_bytes()).map(|v| String::from_utf8_lossy(v.bytes()).into_owned()).unwrap_or("?".into())
    };
    let cls = method.slot_checked(meth::CLASS).map(|c| vm.class_name(c)).unwrap_or("?".into());
    format!("{cls}>>{}", text(method.slot_checked(meth::NAME)))
}

fn mnemonic(d: &Decoded) -> String {
    let n = d.n;
    match d.op {
        1 => format!("pushInstance {n}"),
        2 => format!("pushArgument {n}"),
        3 => format!("pushTemporary {n}"),
        4 => format!("pushLiteral {n}"),
        5 => format!("pushConstant {n}"),
        6 => format!("assignInstance {n}"),
        7 => format!("assignTemporary {n}"),
        8 => format!("markArguments {n}"),
        9 => format!("sendMessage {n}"),
        10 => format!("sendUnary {n}"),
        11 => format!("sendBinary {n}"),
        12 => format!("pushBlock {n} end {}", d.extra),
        13 => format!("primitive {} args {n}", d.extra),
        14 => format!("pushClassVariable {n}"),
        15 => match n {
            1 => "selfReturn".into(),
            2 => "stackReturn".into(),
            3 => "blockReturn".into(),
            4 => "duplicate".into(),
            5 => "pop".into(),
            6 => format!("jump {}", d.extra),
            7 => format!("branchIfTrue {}", d.extra),
            8 => format!("branchIfFalse {}", d.extra),
            11 => format!("superSend {}", d.extra),
            _ => format!("special {n}"),
        },
        _ => format!("opcode {} {n}", d.op),
    }
}

impl Recorder {
    /// Starts recording at the loop header the interpreter has just jumped back to.
    pub fn start(vm: &Vm, dump: bool) -> Result<Recorder, Abort> {
        if vm.regs.sp != 0 {
            return abort("loop header with a non-empty stack");
        }
        Recorder::begin(vm, 1, vm.regs.ip, None, dump)
    }

    /// Starts recording a side trace where a trace has just left (and been deoptimised): the
    /// `frames` innermost contexts, all real now, are its inputs; it ends when control is back
    /// at `header` in the outermost of them.
    /// `loop_end`: the ip of the loop's back edge, as its loop trace recorded it.
    pub fn start_side(
        vm: &Vm,
        frames: usize,
        header: usize,
        loop_end: usize,
        parent: (u32, u32),
        dump: bool,
    ) -> Result<Recorder, Abort> {
        let mut rec = Recorder::begin(vm, frames, header, Some(parent), dump)?;
        rec.loop_end = loop_end;
        Ok(rec)
    }

    /// Starts recording a side trace that *inherits* the state its parent left by: LuaJIT's
    /// way, and what lets the parent's exit continue into it in machine code even when that
    /// exit is inside inlined frames. The loop's context is real (frame-buffer words 0–3, as for
    /// every trace of the tree); every frame and object that was virtual at the exit stays
    /// virtual, and each value the exit left in its word k is read from frame-buffer word
    /// `INHERITED_BASE + k`, which the parent's linked exit writes (`x64::ParentLink::words`).
    ///
    /// The interpreter meanwhile runs on the contexts the exit materialised from `state`. The
    /// recorder models them as the virtual frames they were: nothing the trace does can tell
    /// the two apart (a context that could be observed aborts, as for any inlined frame).
    pub fn start_inherited(
        vm: &Vm,
        state: &ExitState,
        header: usize,
        loop_end: usize,
        parent: (u32, u32),
        dump: bool,
    ) -> Result<Recorder, Abort> {
        let n = state.frames.len();
        let chain = context_chain(vm, n)?;
        let Some(FrameKind::Real { ctx: root_loc }) = state.frames.first().map(|f| f.kind.clone()) else {
            return abort("side exit's outermost frame is not the loop's context");
        };
        let mut rec = Recorder::begin_on(vm, &chain[..1], false, header, Some(parent), dump)?;
        rec.loop_end = loop_end;
        let FrameType::Real { ctx: root_ctx } = rec.frames[0].ty else { unreachable!("begin_on makes real frames") };
        let mut inputs: Vec<(u16, Ref)> = Vec::new();
        // Every value of the exit, as the recorder's symbol for it.
        let mut sym = |rec: &mut Recorder, l: Loc| -> Sym {
            match l {
                Loc::Const(v) => Sym::Ir(rec.konst(v)),
                Loc::Virtual(k) => Sym::Virt(k as u32),
                Loc::Slot(_) if l == root_loc => Sym::Ir(root_ctx),
                Loc::Slot(k) => match inputs.iter().find(|&&(w, _)| w == k) {
                    Some(&(_, r)) => Sym::Ir(r),
                    None => {
                        let r = rec.emit(Op::Input(INHERITED_BASE + k));
                        inputs.push((k, r));
                        Sym::Ir(r)
                    }
                },
            }
        };
        for o in &state.objects {
            let obj = match o {
                ObjDesc::Array(e) => VObj::Array(e.iter().map(|&l| sym(&mut rec, l)).collect()),
                ObjDesc::Block { method, body, arg_location, creator, home, args, temps } => {
                    let mut ctx_ref = |rec: &mut Recorder, c: CtxLoc| -> Result<CtxRef, Abort> {
                        match c {
                            CtxLoc::Frame(f) if (f as usize) < n => Ok(CtxRef::Frame(f as u32)),
                            CtxLoc::Frame(_) => abort("side exit's block refers to no frame of the exit"),
                            CtxLoc::Real(l) => match sym(rec, l) {
                                Sym::Ir(r) => Ok(CtxRef::Real(r)),
                                Sym::Virt(_) => abort("side exit's block has a virtual context"),
                            },
                        }
                    };
                    let (creator, home) = (ctx_ref(&mut rec, *creator)?, ctx_ref(&mut rec, *home)?);
                    let (args, temps) = (sym(&mut rec, *args), sym(&mut rec, *temps));
                    VObj::Block {
                        method: *method,
                        body: *body,
                        arg_location: *arg_location,
                        creator,
                        home,
                        args,
                        temps,
                    }
                }
            };
            rec.objs.push(obj);
        }
        for (i, fr) in state.frames.iter().enumerate() {
            let c = chain[i];
            let top = i + 1 == n;
            let stack: Vec<Sym> = fr.stack.iter().map(|&l| sym(&mut rec, l)).collect();
            let (ip, sp) = if top {
                (vm.regs.ip, vm.regs.sp)
            } else {
                (c.slot(ctx::BYTE_POINTER).as_int().unwrap_or(-1) as usize, stack.len())
            };
            if ip != fr.ip as usize || sp != stack.len() || c.slot(ctx::METHOD) != method_of(&rec, fr, c) {
                return abort("side exit's contexts do not match its exit state (internal)");
            }
            if i == 0 {
                let f = &mut rec.frames[0];
                (f.stack, f.ip) = (stack, ip);
                rec.entry[0].sp = sp;
                continue;
            }
            let id = i as u32;
            let (ty, args, temps, home) = match &fr.kind {
                FrameKind::Real { .. } => return abort("side exit has a real frame above the loop's"),
                &FrameKind::Method { args, temps, .. } => {
                    (FrameType::Method, sym(&mut rec, args), sym(&mut rec, temps), CtxRef::Frame(id))
                }
                &FrameKind::Block { block } => {
                    let block = sym(&mut rec, block);
                    match block {
                        Sym::Virt(k) => match rec.objs.get(k as usize) {
                            Some(&VObj::Block { args, temps, home, .. }) => {
                                (FrameType::Block { block }, args, temps, home)
                            }
                            _ => return abort("side exit's block frame runs no Block"),
                        },
                        // A real Block, as the parent guarded it when it entered the frame.
                        Sym::Ir(b) => {
                            let a = rec.emit(Op::LoadSlot(b, ctx::ARGUMENTS as u32));
                            let t = rec.emit(Op::LoadSlot(b, ctx::TEMPORARIES as u32));
                            let h = rec.emit(Op::LoadSlot(b, ctx::CREATING_CONTEXT as u32));
                            (FrameType::Block { block }, Sym::Ir(a), Sym::Ir(t), CtxRef::Real(h))
                        }
                    }
                }
            };
            rec.frames.push(Frame {
                id,
                ty,
                method: c.slot(ctx::METHOD),
                args,
                temps,
                stack,
                ip,
                stack_size: fr.stack_size,
                home: Some(home),
                escaped: false,
            });
        }
        rec.next_frame = n as u32;
        rec.pre_stack = rec.top().stack.clone();
        let words = inputs.iter().map(|&(k, _)| k).collect::<Vec<_>>();
        let needed = words.iter().map(|&k| INHERITED_BASE + k + 1).max().unwrap_or(0);
        rec.trace.slots = rec.trace.slots.max(needed);
        rec.inherited = Some(words);
        Ok(rec)
    }

    fn begin(vm: &Vm, n: usize, header: usize, parent: Option<(u32, u32)>, dump: bool) -> Result<Recorder, Abort> {
        let chain = context_chain(vm, n)?;
        Recorder::begin_on(vm, &chain, true, header, parent, dump)
    }

    /// `begin` on the real contexts `chain` (outermost first; the last is the active one when
    /// `live_top`). `load_stacks`: the frames' stacks are read from their stack Arrays.
    fn begin_on(
        vm: &Vm,
        chain: &[Value],
        load_stacks: bool,
        header: usize,
        parent: Option<(u32, u32)>,
        dump: bool,
    ) -> Result<Recorder, Abort> {
        let n = chain.len();
        let mut trace = Trace::new(4 * n as u16);
        let mut frames = Vec::with_capacity(n);
        let mut real = Vec::with_capacity(n);
        let mut entry = Vec::with_capacity(n);
        for (i, &c) in chain.iter().enumerate() {
            let ctx_in = trace.push(Op::Input(4 * i as u16), None);
            let args_in = trace.push(Op::Input(4 * i as u16 + 1), None);
            let temps_in = trace.push(Op::Input(4 * i as u16 + 2), None);
            let stack_in = trace.push(Op::Input(4 * i as u16 + 3), None);
            let top = c == vm.regs.ctx;
            let (ip, sp) = if top {
                (vm.regs.ip, vm.regs.sp)
            } else {
                match (c.slot(ctx::BYTE_POINTER).as_int(), c.slot(ctx::STACK_TOP).as_int()) {
                    (Some(ip), Some(sp)) if ip >= 0 && sp >= 0 => (ip as usize, sp as usize),
                    _ => return abort("side exit's context has no ip or sp"),
                }
            };
            let stack_obj = c.slot(ctx::STACK);
            if !stack_obj.is_pointers() || stack_obj.len() < sp {
                return abort("side exit's context has a malformed stack");
            }
            let method = c.slot(ctx::METHOD);
            let stack = match load_stacks {
                true => (0..sp).map(|j| Sym::Ir(trace.push(Op::LoadSlot(stack_in, j as u32), None))).collect(),
                false => Vec::new(),
            };
            frames.push(Frame {
                id: i as u32,
                ty: FrameType::Real { ctx: ctx_in },
                method,
                args: Sym::Ir(args_in),
                temps: Sym::Ir(temps_in),
                stack,
                ip,
                stack_size: stack_obj.len() as u32,
                // A method context is its own home; a block context's home is loaded when needed.
                home: (c.len() < ctx::BLOCK_SIZE).then_some(CtxRef::Real(ctx_in)),
                escaped: false,
            });
            real.push(RealInputs { args: args_in, temps: temps_in, need_args: 0, need_temps: 0 });
            entry.push(EntryFrame { method, sp });
        }
        let mut exits = Vec::new();
        if parent.is_none() {
            trace.push(Op::Loop, None);
            // Snapshot 0: the loop header itself (where a trace out of fuel resumes). Its one
            // value, the context, is also frame-buffer word 0 as the trace was entered, and only
            // exits write the buffer; so it stays right even when the optimizer drops this
            // snapshot's entries (no instruction exits by it).
            exits.push(ExitState {
                frames: vec![FrameDesc {
                    kind: FrameKind::Real { ctx: Loc::Slot(0) },
                    ip: header as u32,
                    stack: Vec::new(),
                    stack_size: frames[0].stack_size,
                }],
                objects: Vec::new(),
            });
            trace.snapshot(vec![(0, Ref(0))]);
        }
        let (method, pre_ip) = (vm.regs.method, vm.regs.ip);
        Ok(Recorder {
            key: 0,
            trace,
            exits,
            start: Start { method: frames[0].method, header, root_ctx: chain[0], top_method: method, parent },
            frames,
            objs: Vec::new(),
            next_frame: n as u32,
            consts: HashMap::new(),
            const_of: HashMap::new(),
            real,
            entry,
            end_exit: None,
            link_exit: None,
            return_exit: None,
            enter_exit: None,
            nil: vm.k.nil,
            inherited: None,
            enters: None,
            snap: None,
            word_of: Vec::new(),
            object_of: Vec::new(),
            snapshots_last: None,
            pre_stack: Vec::new(),
            pre_ip,
            steps: 0,
            tail: false,
            descended: 0,
            below_loop: None,
            crossed: false,
            crossed_at: None,
            may_cross: true,
            root_branches: Vec::new(),
            loop_end: usize::MAX,
            lookups: Vec::new(),
            method_guards: Vec::new(),
            log: dump.then(Vec::new),
        })
    }

    /// Ends a side trace back at the loop header (after `Step::Closed`): an exit that leaves
    /// only the loop's context, at the header, from which the loop trace is entered again.
    pub fn close_side(&mut self) -> Result<(), Abort> {
        if self.start.parent.is_none() {
            return Ok(());
        }
        self.pre_ip = self.start.header;
        self.pre_stack = self.frames[0].stack.clone();
        self.snap = None;
        self.end_exit = Some(self.exit_here()?);
        Ok(())
    }

    /// Ends the trace with an exit to the state before the current bytecode; answers its
    /// snapshot.
    fn exit_here(&mut self) -> Result<usize, Abort> {
        let s = self.snapshot()?;
        self.trace.push(Op::Exit, Some(s));
        Ok(s.0 as usize)
    }

    /// Whether a recording that ended with `end` is worth compiling. A tail that ends at a
    /// return or at another loop's back edge exits to the interpreter there, as its parent's
    /// exit did, so all it saves is interpreting its bytecodes: fewer than `MIN_TAIL_STEPS` (a
    /// `to:do:`'s `^ self`, a sum) do not pay for a trace.
    pub fn pays_off(&self, end: &Step) -> bool {
        !(self.tail && matches!(end, Step::Linked | Step::Returns) && self.steps < MIN_TAIL_STEPS)
    }

    /// Ends a side trace at another loop's back edge (after `Step::Linked`): an exit before the
    /// jump, so that the interpreter takes it and meets that loop's trace.
    pub fn close_link(&mut self) -> Result<(), Abort> {
        self.link_exit = Some(self.exit_here()?);
        Ok(())
    }

    /// Ends a side trace at a return out of the loop's frame (after `Step::Returns`): an exit
    /// before the return, which ends the loop (so no side trace is recorded from it).
    pub fn close_returning(&mut self) -> Result<(), Abort> {
        self.return_exit = Some(self.exit_here()?);
        Ok(())
    }

    /// Ends a loop trace at an inner loop's header (after `Step::EntersLoop`): an exit at the
    /// header, after which the VM enters the inner loop's trace. The trace is not a loop: its
    /// `Loop` marker goes, and the outer loop's back edge is found in the method's code (for
    /// telling which exits end the outer loop).
    pub fn close_entering(&mut self) -> Result<(), Abort> {
        self.enter_exit = Some(self.exit_here()?);
        if self.start.parent.is_some() {
            return Ok(()); // a tail that went on past its loop: its loop is its tree's
        }
        self.trace.drop_loop();
        let code = self.start.method.slot_checked(meth::BYTECODES).filter(|c| c.is_bytes());
        let code = code.map(|c| c.bytes()).unwrap_or(&[]);
        self.loop_end = back_edge(code, self.start.header).unwrap_or(usize::MAX);
        Ok(())
    }

    /// The recording so far, as a finished trace (after `Step::Closed`).
    pub fn finish(self) -> Recording {
        let mut loop_exits = vec![false; self.exits.len()];
        for &(snap, other) in &self.root_branches {
            if other > self.loop_end {
                loop_exits[snap.0 as usize] = true;
            }
        }
        if let Some(s) = self.return_exit {
            loop_exits[s] = true;
        }
        if let (true, Some(s)) = (self.tail, self.link_exit) {
            // The loop has ended here too (it is another loop's back edge).
            loop_exits[s] = true;
        }
        let mut below_loop = vec![false; self.exits.len()];
        if let Some(first) = self.below_loop {
            // Below the loop's frame the loop is over.
            loop_exits[first..].iter_mut().for_each(|e| *e = true);
            below_loop[first..].iter_mut().for_each(|e| *e = true);
        }
        Recording {
            loop_exits,
            end_exit: self.end_exit,
            link_exit: self.link_exit,
            return_exit: self.return_exit,
            enter_exit: self.enter_exit,
            key: self.key,
            trace: self.trace,
            exits: self.exits,
            start: self.start,
            entry: self.entry,
            needs: self.real.iter().map(|r| (r.need_args, r.need_temps)).collect(),
            log: self.log.unwrap_or_default(),
            lookups: self.lookups,
            loop_end: self.loop_end,
            below_loop,
            crossed_at: self.crossed_at,
            inherited: self.inherited,
            enters: self.enters,
        }
    }

    /// Looks `sel` up from `cls` as the interpreter would, and notes the dependency.
    fn lookup(&mut self, vm: &mut Vm, cls: Value, sel: Value) -> Option<Value> {
        if !self.lookups.contains(&(cls, sel)) {
            self.lookups.push((cls, sel));
        }
        vm.lookup(cls, sel)
    }

    // ----- IR helpers -----------------------------------------------------------------------

    fn emit(&mut self, op: Op) -> Ref {
        self.trace.push(op, None)
    }

    fn guard(&mut self, op: Op) -> Result<Ref, Abort> {
        let s = self.snapshot()?;
        Ok(self.trace.push(op, Some(s)))
    }

    fn konst(&mut self, v: Value) -> Ref {
        if let Some(&r) = self.consts.get(&v.raw()) {
            return r;
        }
        let r = self.emit(Op::Const(v));
        self.consts.insert(v.raw(), r);
        self.const_of.insert(r, v);
        r
    }

    fn top(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("the root frame is never popped")
    }

    fn top_args(&self) -> Sym {
        self.frames.last().expect("the root frame is never popped").args
    }

    fn top_temps(&self) -> Sym {
        self.frames.last().expect("the root frame is never popped").temps
    }

    fn push(&mut self, s: Sym) {
        self.top().stack.push(s);
    }

    fn pop(&mut self) -> Result<Sym, Abort> {
        match self.top().stack.pop() {
            Some(s) => Ok(s),
            None => abort("stack underflow"),
        }
    }

    /// The value as an IR value; a virtual object here would escape.
    fn ir(&self, s: Sym, what: &str) -> Result<Ref, Abort> {
        match s {
            Sym::Ir(r) => Ok(r),
            Sym::Virt(_) => abort(format!("a virtual object escapes ({what})")),
        }
    }

    /// Element `n` of an Array the trace holds: a virtual one, the root context's arguments or
    /// temporaries (checked at entry), or another real one (guarded here).
    fn load_elem(&mut self, arr: Sym, n: usize) -> Result<Sym, Abort> {
        match arr {
            Sym::Virt(k) => match &self.objs[k as usize] {
                VObj::Array(e) => e.get(n).copied().ok_or_else(|| "index outside a virtual array".to_string()),
                VObj::Block { .. } => abort("a Block used as an array"),
            },
            Sym::Ir(r) => {
                self.guard_array(r, n)?;
                Ok(Sym::Ir(self.emit(Op::LoadSlot(r, n as u32))))
            }
        }
    }

    fn store_elem(&mut self, arr: Sym, n: usize, v: Sym) -> Result<(), Abort> {
        match arr {
            Sym::Virt(k) => match &mut self.objs[k as usize] {
                VObj::Array(e) if n < e.len() => {
                    e[n] = v;
                    Ok(())
                }
                _ => abort("store outside a virtual array"),
            },
            Sym::Ir(r) => {
                let v = self.ir(v, "stored into a real array")?;
                self.guard_array(r, n)?;
                if !self.real.iter().any(|x| x.temps == r || x.args == r) {
                    self.guard(Op::GuardUnwatched(r))?;
                }
                self.emit(Op::StoreSlot(r, n as u32, v));
                Ok(())
            }
        }
    }

    /// Makes slot `n` of the real array `r` safe to access.
    fn guard_array(&mut self, r: Ref, n: usize) -> Result<(), Abort> {
        if let Some(x) = self.real.iter_mut().find(|x| x.args == r) {
            x.need_args = x.need_args.max(n + 1);
        } else if let Some(x) = self.real.iter_mut().find(|x| x.temps == r) {
            x.need_temps = x.need_temps.max(n + 1);
        } else {
            self.guard(Op::GuardKind(r, Kind::Pointers as u8))?;
            self.guard(Op::GuardLen(r, n as u32))?;
        }
        Ok(())
    }

    /// The class of `s` (whose concrete value is `concrete`), guarding it unless it is known.
    fn class_guard(&mut self, vm: &Vm, s: Sym, concrete: Value) -> Result<Value, Abort> {
        match s {
            Sym::Virt(k) => Ok(match self.objs[k as usize] {
                VObj::Array(_) => vm.k.array,
                VObj::Block { .. } => vm.k.block,
            }),
            Sym::Ir(r) => {
                if let Some(&v) = self.const_of.get(&r) {
                    return Ok(vm.class_of(v));
                }
                let k = vm.k;
                if concrete == k.nil || concrete == k.true_ || concrete == k.false_ {
                    self.guard(Op::GuardIs(r, concrete))?;
                } else if concrete.is_int() {
                    self.guard(Op::GuardInt(r))?;
                } else if let Some(i) = self.method_guards.iter().position(|&(m, _)| m == r) {
                    // The class is guarded after all (a send to `self` in the inherited method):
                    // one class guard, at the method guard's place, costs less than the lookup.
                    // Checking the class earlier than recorded changes only which exit is taken.
                    let (_, g) = self.method_guards.swap_remove(i);
                    self.trace.insts[g.0 as usize].op = Op::GuardClass(r, vm.class_of(concrete));
                } else {
                    self.guard(Op::GuardClass(r, vm.class_of(concrete)))?;
                }
                Ok(vm.class_of(concrete))
            }
        }
    }

    // ----- snapshots --------------------------------------------------------------------------

    /// The interpreter state before the current bytecode, as a snapshot (one per bytecode).
    fn snapshot(&mut self) -> Result<SnapId, Abort> {
        if let Some(s) = self.snap {
            return Ok(s);
        }
        let number = self.exits.len() as u32 + 1;
        let mut word_of = std::mem::take(&mut self.word_of);
        let mut object_of = std::mem::take(&mut self.object_of);
        word_of.resize(word_of.len().max(self.trace.insts.len()), (0, 0));
        object_of.resize(object_of.len().max(self.objs.len()), (0, 0));
        // Consecutive snapshots are about the same size: no regrowing their lists.
        let (words, objects) = self.snapshots_last.map_or((0, 0), |s| (s.0 as usize + 4, s.1 as usize));
        let rec: &Recorder = self;
        let mut b = SnapBuilder {
            rec,
            entries: Vec::with_capacity(words),
            objects: Vec::with_capacity(objects),
            number,
            word_of: &mut word_of,
            object_of: &mut object_of,
        };
        let frame_index: Vec<u32> = rec.frames.iter().map(|f| f.id).collect();
        let mut frames = Vec::with_capacity(rec.frames.len());
        let top = rec.frames.len() - 1;
        for (i, f) in rec.frames.iter().enumerate() {
            let (ip, stack) = if i == top { (rec.pre_ip, &rec.pre_stack) } else { (f.ip, &f.stack) };
            let kind = match f.ty {
                FrameType::Real { ctx } => FrameKind::Real { ctx: b.loc(Sym::Ir(ctx), &frame_index)? },
                FrameType::Method => FrameKind::Method {
                    method: f.method,
                    args: b.loc(f.args, &frame_index)?,
                    temps: b.loc(f.temps, &frame_index)?,
                },
                FrameType::Block { block } => FrameKind::Block { block: b.loc(block, &frame_index)? },
            };
            let mut locs = Vec::with_capacity(stack.len());
            for &s in stack {
                locs.push(b.loc(s, &frame_index)?);
            }
            frames.push(FrameDesc { kind, ip: ip as u32, stack: locs, stack_size: f.stack_size });
        }
        let (entries, objects) = (b.entries, b.objects);
        (self.word_of, self.object_of) = (word_of, object_of);
        self.snapshots_last = Some((entries.len() as u32, objects.len() as u32));
        let slots = entries.len() as u16;
        if slots > self.trace.slots {
            self.trace.slots = slots;
        }
        let id = self.trace.snapshot(entries);
        self.exits.push(ExitState { frames, objects });
        self.snap = Some(id);
        Ok(id)
    }

    // ----- recording --------------------------------------------------------------------------

    /// The current frame's receiver as an IR value, guarded to be a pointer object with
    /// instance variable `n` (opcodes 1 and 6).
    fn receiver_with_slot(&mut self, vm: &Vm, n: usize) -> Result<Ref, Abort> {
        let rcv = self.load_elem(self.top_args(), 0)?;
        let r = self.ir(rcv, "instance variable of a virtual object")?;
        let c = vm.regs.args.get(0).unwrap_or(vm.k.nil);
        if c.slot_checked(n).is_none() {
            return abort("no such instance variable");
        }
        self.guard(Op::GuardKind(r, Kind::Pointers as u8))?;
        self.guard(Op::GuardLen(r, n as u32))?;
        Ok(r)
    }

    /// Records the bytecode the interpreter is about to execute.
    pub fn observe(&mut self, vm: &mut Vm) -> Result<Step, Abort> {
        let (ctx_now, ip, sp, method) = (vm.regs.ctx, vm.regs.ip, vm.regs.sp, vm.regs.method);
        if self.steps > 0
            && self.descended == 0
            && self.frames.len() == 1
            && ctx_now == self.start.root_ctx
            && ip == self.start.header
        {
            if !self.frames[0].stack.is_empty() {
                return abort("loop closes with a non-empty stack");
            }
            return Ok(Step::Closed);
        }
        self.steps += 1;
        if self.steps > MAX_BYTECODES {
            return abort("trace too long");
        }
        if self.frames.len() > MAX_DEPTH {
            return abort("inlining too deep");
        }
        let top = self.top();
        if top.stack.len() != sp || top.method != method {
            return abort("recorder lost track of the interpreter (internal)");
        }
        top.ip = ip;
        self.pre_ip = ip;
        self.pre_stack = self.top().stack.clone();
        self.snap = None;
        let entering = self.start.parent.is_none() || self.descended > 0 || self.crossed;
        if entering && self.steps > 1 {
            if let Some(inner) = vm.loop_trace_here() {
                self.enters = Some(inner);
                return Ok(Step::EntersLoop);
            }
        }
        let Some(d) = decode(vm.regs.code, ip) else {
            return abort("bytecode runs past the end of the method");
        };
        if let Some(log) = &mut self.log {
            log.push(format!("{:>2} {} @{ip}  {}", self.frames.len() - 1, method_name(vm, method), mnemonic(&d)));
        }
        let next = ip + d.len;
        let c_top = if sp >= 1 { vm.regs.stack.get(sp - 1).unwrap_or(vm.k.nil) } else { vm.k.nil };
        let n = d.n as usize;
        match d.op {
            1 => {
                let r = self.receiver_with_slot(vm, n)?;
                let v = self.emit(Op::LoadSlot(r, n as u32));
                self.push(Sym::Ir(v));
            }
            2 => {
                let v = self.load_elem(self.top_args(), n)?;
                self.push(v);
            }
            3 => {
                let v = self.load_elem(self.top_temps(), n)?;
                self.push(v);
            }
            4 => {
                let Some(v) = vm.regs.literals.get(n) else { return abort("no such literal") };
                let r = self.konst(v);
                self.push(Sym::Ir(r));
            }
            5 => {
                let v = match n {
                    0..=9 => Value::from_int(n as i32),
                    10 => vm.k.nil,
                    11 => vm.k.true_,
                    12 => vm.k.false_,
                    _ => return abort("bad constant"),
                };
                let r = self.konst(v);
                self.push(Sym::Ir(r));
            }
            6 => {
                let Some(&v) = self.top().stack.last() else { return abort("stack underflow") };
                let v = self.ir(v, "stored into an instance variable")?;
                let r = self.receiver_with_slot(vm, n)?;
                self.guard(Op::GuardUnwatched(r))?;
                self.emit(Op::StoreSlot(r, n as u32, v));
            }
            7 => {
                let Some(&v) = self.top().stack.last() else { return abort("stack underflow") };
                if vm.regs.temps.get(n).is_none() {
                    return abort("no such temporary");
                }
                let temps = self.top().temps;
                self.store_elem(temps, n, v)?;
            }
            8 => {
                let len = self.top().stack.len();
                if len < n {
                    return abort("stack underflow");
                }
                let elems = self.top().stack.split_off(len - n);
                let k = self.objs.len() as u32;
                self.objs.push(VObj::Array(elems));
                self.push(Sym::Virt(k));
            }
            9 => {
                let Some(sel) = vm.regs.literals.get(n) else { return abort("no such literal") };
                let args = self.pop()?;
                let array = c_top;
                self.send(vm, sel, args, array, None, next)?;
            }
            10 => {
                let v = self.pop()?;
                let is_nil = match v {
                    Sym::Virt(_) => false,
                    Sym::Ir(r) => {
                        let c = c_top;
                        match self.const_of.get(&r) {
                            Some(&k) => k == vm.k.nil,
                            None if c == vm.k.nil => {
                                self.guard(Op::GuardIs(r, c))?;
                                true
                            }
                            None => {
                                self.guard(Op::GuardIsNot(r, vm.k.nil))?;
                                false
                            }
                        }
                    }
                };
                let result = match n {
                    0 => is_nil,
                    1 => !is_nil,
                    _ => return abort("bad unary opcode"),
                };
                let r = self.konst(vm.bool(result));
                self.push(Sym::Ir(r));
            }
            11 => self.binary(vm, d.n, sp, next)?,
            12 => {
                let top = self.top().clone();
                let creator = match top.ty {
                    FrameType::Real { ctx } => CtxRef::Real(ctx),
                    _ => CtxRef::Frame(top.id),
                };
                let home = self.home_of_top()?;
                let k = self.objs.len() as u32;
                self.objs.push(VObj::Block {
                    method: top.method,
                    body: next as u32,
                    arg_location: n as u32,
                    creator,
                    home,
                    args: top.args,
                    temps: top.temps,
                });
                // As the interpreter's `mark_escaped`: this frame's context and all below it.
                for f in &mut self.frames {
                    f.escaped = true;
                }
                self.push(Sym::Virt(k));
            }
            13 => self.primitive(vm, n, d.extra, sp)?,
            14 => {
                let rcv = self.load_elem(self.top_args(), 0)?;
                let c = vm.regs.args.get(0).unwrap_or(vm.k.nil);
                let cls = self.class_guard(vm, rcv, c)?;
                if cls.slot_checked(class::FIRST_CLASS_VARIABLE + n).is_none() {
                    return abort("no such class variable");
                }
                let k = self.konst(cls);
                let v = self.emit(Op::LoadSlot(k, (class::FIRST_CLASS_VARIABLE + n) as u32));
                self.push(Sym::Ir(v));
            }
            15 => match n {
                1 | 2 => {
                    if self.frames.len() == 1 {
                        if self.start.parent.is_none() || self.steps <= 1 {
                            return abort(ABORT_LOOP_RETURNED);
                        }
                        let Some(caller) = self.caller_to_descend_to(vm) else { return Ok(Step::Returns) };
                        let v = if n == 1 { self.load_elem(self.top_args(), 0)? } else { self.pop()? };
                        self.descend(caller, v)?;
                        return Ok(Step::Continue);
                    }
                    let v = if n == 1 { self.load_elem(self.top_args(), 0)? } else { self.pop()? };
                    self.end_top_frame(v)?;
                    self.push(v);
                }
                3 => {
                    let leaves = self.start.parent.is_some() && self.steps > 1;
                    let home = self.home_of_top()?;
                    let CtxRef::Frame(id) = home else {
                        if leaves {
                            return Ok(Step::Returns);
                        }
                        return abort("non-local return out of the trace");
                    };
                    let Some(h) = self.frames.iter().position(|f| f.id == id) else {
                        return abort("non-local return to a frame that has returned");
                    };
                    if h == 0 {
                        if leaves {
                            return Ok(Step::Returns);
                        }
                        return abort(ABORT_LOOP_RETURNED_NON_LOCALLY);
                    }
                    let v = self.pop()?;
                    let popped: Vec<u32> = self.frames.drain(h..).map(|f| f.id).collect();
                    for id in popped {
                        self.check_no_dangling(id, v)?;
                    }
                    self.push(v);
                }
                4 => {
                    let v = *self.top().stack.last().ok_or("stack underflow")?;
                    self.push(v);
                }
                5 => {
                    self.pop()?;
                }
                6 => {
                    let t = d.extra as usize;
                    if t < next {
                        if !(self.frames.len() == 1 && t == self.start.header && self.descended == 0) {
                            if self.start.parent.is_none() || self.steps <= 1 {
                                return abort("inner loop");
                            }
                            // A tail goes on once into the next iteration of an outer loop that
                            // has no loop trace, in its own frame or one it descended to: up to an
                            // inner loop's header, its own (`Step::Closed`) or one with a trace
                            // (`Step::EntersLoop`), instead of through the interpreter. That
                            // guesses the next iteration's path. In its own frame a wrong guess
                            // gets a side trace; below it, none, so there the outer loop's trace
                            // must show the guess right: its iteration ran into an inner loop.
                            let through = self.tail && self.may_cross && !self.crossed && self.frames.len() == 1;
                            let guess_ok = match vm.traced_at(t) {
                                Traced::Loop => false,
                                Traced::IntoInnerLoop => true,
                                Traced::No => self.descended == 0,
                            };
                            if !(through && guess_ok) {
                                return Ok(Step::Linked);
                            }
                            self.crossed = true;
                            self.crossed_at = Some(self.exits.len());
                        } else {
                            self.loop_end = ip;
                        }
                    }
                }
                7 | 8 => {
                    let cond = self.pop()?;
                    if let Sym::Ir(r) = cond {
                        if !self.const_of.contains_key(&r) {
                            let c = c_top;
                            let k = vm.k;
                            if c == k.true_ || c == k.false_ {
                                self.guard(Op::GuardIs(r, c))?;
                                if self.frames.len() == 1 && self.descended == 0 && !self.crossed {
                                    let taken = c == if n == 7 { k.true_ } else { k.false_ };
                                    let other = if taken { next } else { d.extra as usize };
                                    let snap = self.snapshot()?;
                                    self.root_branches.push((snap, other));
                                }
                            } else {
                                self.guard(Op::GuardIsNot(r, k.true_))?;
                                self.guard(Op::GuardIsNot(r, k.false_))?;
                            }
                        }
                    }
                }
                11 => {
                    let Some(sel) = vm.regs.literals.get(d.extra as usize) else { return abort("no such literal") };
                    let parent = method
                        .slot_checked(meth::CLASS)
                        .and_then(|c| c.slot_checked(class::PARENT))
                        .unwrap_or(vm.k.nil);
                    let args = self.pop()?;
                    let array = c_top;
                    self.send(vm, sel, args, array, Some(parent), next)?;
                }
                _ => return abort("bad special opcode"),
            },
            _ => return abort("bad opcode"),
        }
        Ok(Step::Continue)
    }

    /// The context a tail's bottom frame returns to, when the tail may follow the return there
    /// (`descend`): a well-formed method or block context.
    fn caller_to_descend_to(&self, vm: &Vm) -> Option<Value> {
        if !self.tail || self.descended >= MAX_DESCENTS || !matches!(self.frames[0].ty, FrameType::Real { .. }) {
            return None;
        }
        let c = vm.regs.ctx.slot_checked(ctx::PREVIOUS)?;
        if !c.is_pointers() || !(c.len() == ctx::SIZE || c.len() == ctx::BLOCK_SIZE) {
            return None;
        }
        let (args, temps) = (c.slot(ctx::ARGUMENTS), c.slot(ctx::TEMPORARIES));
        let well_formed = c.slot(ctx::METHOD).slot_checked(meth::BYTECODES).is_some_and(|b| b.is_bytes())
            && c.slot(ctx::BYTE_POINTER).as_int().is_some_and(|ip| ip >= 0)
            && args.is_pointers()
            && !args.is_empty()
            && (temps == self.nil || temps.is_pointers())
            && c.slot(ctx::STACK_TOP).as_int().is_some_and(|sp| {
                let stack = c.slot(ctx::STACK);
                sp >= 0 && stack.is_pointers() && stack.len() >= sp as usize
            });
        well_formed.then_some(c)
    }

    /// A tail's bottom frame (real) returns `v` to `caller`, the context below it: the tail
    /// follows it there, as LuaJIT's traces follow a return to a lower frame. The caller becomes
    /// the bottom frame, read from the heap and guarded to be the context it was when recorded
    /// (its length, method, ip and stack depth); the returning context is freed as the
    /// interpreter frees it. Every guard exits before the return, which the interpreter then
    /// makes. Exits from here on are below the loop's frame (`Recording::below_loop`).
    fn descend(&mut self, caller: Value, v: Sym) -> Result<(), Abort> {
        let FrameType::Real { ctx: done_ctx } = self.frames[0].ty else { return abort("descend from a virtual frame") };
        let s = self.snapshot()?;
        self.below_loop.get_or_insert(s.0 as usize);
        let int = |n: usize| Value::from_int(n as i32);
        let (len, method) = (caller.len(), caller.slot(ctx::METHOD));
        let ip = caller.slot(ctx::BYTE_POINTER).as_int().unwrap_or(0) as usize;
        let sp = caller.slot(ctx::STACK_TOP).as_int().unwrap_or(0) as usize;
        let stack_obj = caller.slot(ctx::STACK);
        let c = self.emit(Op::LoadSlot(done_ctx, ctx::PREVIOUS as u32));
        self.guard(Op::GuardKind(c, Kind::Pointers as u8))?;
        let l = self.emit(Op::LoadLen(c));
        self.guard(Op::GuardIs(l, int(len)))?;
        for (slot, want) in [(ctx::METHOD, method), (ctx::BYTE_POINTER, int(ip)), (ctx::STACK_TOP, int(sp))] {
            let x = self.emit(Op::LoadSlot(c, slot as u32));
            self.guard(Op::GuardIs(x, want))?;
        }
        // What the interpreter's return checks of a context Smalltalk may have changed
        // (`load_context_checked`): non-empty arguments, temporaries nil or an Array, a stack
        // Array holding `sp` values.
        let args = self.emit(Op::LoadSlot(c, ctx::ARGUMENTS as u32));
        self.guard(Op::GuardKind(args, Kind::Pointers as u8))?;
        self.guard(Op::GuardLen(args, 0))?;
        let temps = self.emit(Op::LoadSlot(c, ctx::TEMPORARIES as u32));
        match caller.slot(ctx::TEMPORARIES) {
            t if t == self.nil => self.guard(Op::GuardIs(temps, t))?,
            _ => self.guard(Op::GuardKind(temps, Kind::Pointers as u8))?,
        };
        let st = self.emit(Op::LoadSlot(c, ctx::STACK as u32));
        self.guard(Op::GuardKind(st, Kind::Pointers as u8))?;
        let mut stack = Vec::with_capacity(sp + 1);
        if sp > 0 {
            self.guard(Op::GuardLen(st, sp as u32 - 1))?;
            for j in 0..sp {
                stack.push(Sym::Ir(self.emit(Op::LoadSlot(st, j as u32))));
            }
        }
        stack.push(v);
        self.end_top_frame(v)?;
        let id = self.next_frame;
        self.next_frame += 1;
        self.frames.push(Frame {
            id,
            ty: FrameType::Real { ctx: c },
            method,
            args: Sym::Ir(args),
            temps: Sym::Ir(temps),
            stack,
            ip,
            stack_size: stack_obj.len() as u32,
            // A method context is its own home; a block context's is loaded when needed.
            home: (len < ctx::BLOCK_SIZE).then_some(CtxRef::Real(c)),
            escaped: false,
        });
        self.descended += 1;
        Ok(())
    }

    /// The home context of the top frame (loading a real block context's home once).
    fn home_of_top(&mut self) -> Result<CtxRef, Abort> {
        if let Some(h) = self.top().home {
            return Ok(h);
        }
        let FrameType::Real { ctx } = self.top().ty else { return abort("frame without a home (internal)") };
        let h = CtxRef::Real(self.emit(Op::LoadSlot(ctx, ctx::CREATING_CONTEXT as u32)));
        self.top().home = Some(h);
        Ok(h)
    }

    /// The top frame is done (it returned, or handed over to its block): it is popped, nothing
    /// it made may outlive it except through `kept`, and a real frame's context is freed as the
    /// interpreter frees it.
    fn end_top_frame(&mut self, kept: Sym) -> Result<(), Abort> {
        let free = self.free_snapshot()?;
        let done = self.frames.pop().ok_or("no frame")?;
        self.check_no_dangling(done.id, kept)?;
        self.free_context(&done, free);
        Ok(())
    }

    /// Before the top frame is popped: the snapshot a `FreeContext` of it needs (the state
    /// before the bytecode, with the frame still live), when it is a real frame that may be
    /// freed.
    fn free_snapshot(&mut self) -> Result<Option<SnapId>, Abort> {
        let top = self.frames.last().ok_or("no frame")?;
        match (top.ty, top.escaped) {
            (FrameType::Real { .. }, false) => Ok(Some(self.snapshot()?)),
            _ => Ok(None),
        }
    }

    /// A real frame (a context materialised by the exit this side trace starts from) has
    /// returned, or handed over to its block: its context is freed as the interpreter frees it
    /// there (`Vm::recycle`; the helper checks the context's flags as that does). Without this,
    /// every such context would be garbage for the collector.
    fn free_context(&mut self, done: &Frame, snap: Option<SnapId>) {
        if let (FrameType::Real { ctx }, Some(s)) = (done.ty, snap) {
            let nil = self.konst(self.nil);
            self.trace.push(Op::Call(Helper::FreeContext, ctx, nil, nil), Some(s));
        }
    }

    /// A frame has returned: no virtual Block made in it may still be reachable.
    fn check_no_dangling(&self, dead: u32, result: Sym) -> Result<(), Abort> {
        // Most traces make no blocks at all: nothing to search (this runs at every return).
        if !self.objs.iter().any(|o| matches!(o, VObj::Block { .. })) {
            return Ok(());
        }
        let mut seen = vec![false; self.objs.len()];
        let mut work: Vec<Sym> = vec![result];
        for f in &self.frames {
            work.extend(f.stack.iter().copied());
            work.push(f.args);
            work.push(f.temps);
            if let FrameType::Block { block } = f.ty {
                work.push(block);
            }
        }
        while let Some(s) = work.pop() {
            let Sym::Virt(k) = s else { continue };
            if std::mem::replace(&mut seen[k as usize], true) {
                continue;
            }
            match &self.objs[k as usize] {
                VObj::Array(e) => work.extend(e.iter().copied()),
                VObj::Block { creator, home, args, temps, .. } => {
                    if *creator == CtxRef::Frame(dead) || *home == CtxRef::Frame(dead) {
                        return abort("a block outlives the frame that made it");
                    }
                    work.push(*args);
                    work.push(*temps);
                }
            }
        }
        Ok(())
    }

    /// A send (opcode 9, 15.11, or a SendBinary that is not a SmallInt operation): the receiver's
    /// class is guarded (or known), the lookup is done now, and the method is inlined as a new
    /// virtual frame.
    fn send(
        &mut self,
        vm: &mut Vm,
        sel: Value,
        args: Sym,
        concrete_args: Value,
        lookup_class: Option<Value>,
        next: usize,
    ) -> Result<(), Abort> {
        let args = match args {
            Sym::Virt(_) => args,
            Sym::Ir(r) => self.arguments_made_off_trace(vm, r, concrete_args)?,
        };
        let Sym::Virt(k) = args else { unreachable!("arguments are virtual by now") };
        let VObj::Array(elems) = &self.objs[k as usize] else { return abort("send with a Block as arguments") };
        let Some(&rcv) = elems.first() else { return abort("send without a receiver") };
        if !concrete_args.is_pointers() || concrete_args.is_empty() {
            return abort("send without a receiver");
        }
        let c = concrete_args.slot(0);
        if lookup_class.is_none() {
            if let Some(method) = self.method_guard(vm, rcv, c, sel)? {
                return self.enter_method(vm, method, args, next);
            }
        }
        let cls = match lookup_class {
            Some(cls) => cls,
            None => self.class_guard(vm, rcv, c)?,
        };
        let Some(method) = self.lookup(vm, cls, sel) else {
            // The selector is whatever the method's literal holds (Smalltalk may store anything).
            let name = if sel.is_bytes() { String::from_utf8_lossy(sel.bytes()).into_owned() } else { "?".into() };
            return abort(format!("doesNotUnderstand: {name}"));
        };
        self.enter_method(vm, method, args, next)
    }

    /// In a side trace that starts at a send (its class guard failed in the parent), a send site
    /// whose receivers have been of several classes (`METHOD_GUARD_CLASSES` or more,
    /// or so many that the site is megamorphic) that all found one method (an inherited one:
    /// `name` sent to every metaclass) is guarded on that method instead of the receiver's class
    /// (`Helper::Finds`, a lookup at run time): one trace then serves every such class, where
    /// class guards would grow a chain of side traces, one class each. Nothing
    /// after the send relies on the class: each bytecode of the method guards what it decides
    /// itself (slots, primitives, sends to `self`). Answers the method when it emitted the guard.
    fn method_guard(&mut self, vm: &mut Vm, rcv: Sym, concrete: Value, sel: Value) -> Result<Option<Value>, Abort> {
        // Only where a class guard of this very send has failed: a side trace that starts at
        // it. The caches are per site, not per loop; a loop that sends to one class at a site
        // other code made polymorphic keeps its cheap class guard.
        if self.start.parent.is_none() || self.steps != 1 {
            return Ok(None);
        }
        let k = vm.k;
        let Sym::Ir(r) = rcv else { return Ok(None) };
        if self.const_of.contains_key(&r) || !concrete.is_ptr() || [k.nil, k.true_, k.false_].contains(&concrete) {
            return Ok(None);
        }
        let Some(data) = vm.data_of(vm.regs.method) else { return Ok(None) };
        let d = &vm.method_data[data];
        let Some(&SiteRef::Send(site)) = d.site_at.get(self.pre_ip) else { return Ok(None) };
        let site = &d.sends[site as usize];
        let megamorphic = site.megamorphic;
        // The one method every class the site remembers found (a megamorphic site remembers none).
        let entries = site.entries.as_slice();
        let shared = entries.first().map(|e| e.method).filter(|&m| {
            !megamorphic && entries.len() >= METHOD_GUARD_CLASSES && entries.iter().all(|e| e.method == m)
        });
        let cls = vm.class_of(concrete);
        let Some(found) = self.lookup(vm, cls, sel) else { return Ok(None) };
        // At a megamorphic site the method counts as shared when the receiver's class inherits it.
        let inherited = megamorphic && found.slot_checked(meth::CLASS).is_some_and(|c| c != cls);
        if shared != Some(found) && !inherited {
            return Ok(None);
        }
        let (selector, method) = (self.konst(sel), self.konst(found));
        let g = self.guard(Op::Call(Helper::Finds, r, selector, method))?;
        self.method_guards.push((r, g));
        Ok(Some(found))
    }

    /// The arguments Array of a send whose `markArguments` ran before the trace began (a side
    /// trace that starts between the two): a virtual copy of it, its class and exact size
    /// guarded. The original is referenced by that stack slot alone, which the send consumes, so
    /// nothing can tell the copy from it.
    fn arguments_made_off_trace(&mut self, vm: &Vm, r: Ref, concrete: Value) -> Result<Sym, Abort> {
        if vm.class_of(concrete) != vm.k.array || !concrete.is_pointers() || concrete.is_empty() {
            return abort("send with an argument Array that is not one");
        }
        let n = concrete.len();
        self.guard(Op::GuardClass(r, vm.k.array))?;
        self.guard(Op::GuardKind(r, Kind::Pointers as u8))?;
        let len = self.emit(Op::LoadLen(r));
        self.guard(Op::GuardIs(len, Value::from_int(n as i32)))?;
        self.guard(Op::GuardLen(r, n as u32 - 1))?;
        let elems = (0..n).map(|i| Sym::Ir(self.emit(Op::LoadSlot(r, i as u32)))).collect();
        let k = self.objs.len() as u32;
        self.objs.push(VObj::Array(elems));
        Ok(Sym::Virt(k))
    }

    fn enter_method(&mut self, vm: &mut Vm, method: Value, args: Sym, next: usize) -> Result<(), Abort> {
        if self.frames.iter().filter(|f| f.method == method).count() >= MAX_RECURSION {
            return abort(ABORT_RECURSION);
        }
        let Some(data) = vm.data_of(method) else { return abort("method without bytecodes") };
        let d = &vm.method_data[data];
        let Some(temp_size) = d.temp_size else { return abort("method without temporarySize") };
        if temp_size > crate::interp::MAX_TEMPORARIES {
            return abort("method's temporarySize out of range");
        }
        let stack_size = d.max_stack as u32;
        let nil = self.konst(vm.k.nil);
        let temps = if temp_size > 0 {
            let k = self.objs.len() as u32;
            self.objs.push(VObj::Array(vec![Sym::Ir(nil); temp_size as usize]));
            Sym::Virt(k)
        } else {
            Sym::Ir(nil)
        };
        self.top().ip = next;
        let id = self.next_frame;
        self.next_frame += 1;
        self.frames.push(Frame {
            id,
            ty: FrameType::Method,
            method,
            args,
            temps,
            stack: Vec::new(),
            ip: 0,
            stack_size,
            home: Some(CtxRef::Frame(id)),
            escaped: false,
        });
        Ok(())
    }

    /// SendBinary: SmallInt `<`, `<=`, `+` inline, anything else a real send.
    fn binary(&mut self, vm: &mut Vm, n: u8, sp: usize, next: usize) -> Result<(), Abort> {
        let b = self.pop()?;
        let a = self.pop()?;
        let (ca, cb) = (vm.regs.stack.get(sp - 2).unwrap_or(vm.k.nil), vm.regs.stack.get(sp - 1).unwrap_or(vm.k.nil));
        if n > 2 {
            return abort("bad binary opcode");
        }
        if let (Some(x), Some(y)) = (ca.as_int(), cb.as_int()) {
            if n == 2 && x.checked_add(y).is_none() {
                return abort("SmallInt + overflows while recording");
            }
            let (ra, rb) = (self.ir(a, "arithmetic")?, self.ir(b, "arithmetic")?);
            self.guard(Op::GuardInt(ra))?;
            self.guard(Op::GuardInt(rb))?;
            let r = match n {
                0 => self.emit(Op::Lt(ra, rb)),
                1 => self.emit(Op::Le(ra, rb)),
                _ => self.guard(Op::AddOv(ra, rb))?,
            };
            self.push(Sym::Ir(r));
            return Ok(());
        }
        // A real send: guard that the SmallInt path cannot apply (a non-SmallInt operand).
        let cls = self.class_guard(vm, a, ca)?;
        if ca.is_int() {
            self.class_guard(vm, b, cb)?;
        }
        let sel = vm.selectors.binary[n as usize];
        let k = self.objs.len() as u32;
        self.objs.push(VObj::Array(vec![a, b]));
        let Some(method) = self.lookup(vm, cls, sel) else { return abort("doesNotUnderstand: binary selector") };
        self.enter_method(vm, method, Sym::Virt(k), next)
    }

    /// Opcode 13. `argc` values are on the stack, first pushed first.
    fn primitive(&mut self, vm: &mut Vm, argc: usize, p: u8, sp: usize) -> Result<(), Abort> {
        let len = self.top().stack.len();
        if len < argc || sp < argc {
            return abort("stack underflow in primitive");
        }
        let args = self.top().stack.split_off(len - argc);
        let conc: Vec<Value> = (sp - argc..sp).map(|i| vm.regs.stack.get(i).unwrap_or(vm.k.nil)).collect();
        let k = vm.k;
        let int2 = |rec: &mut Recorder| -> Result<(Ref, Ref, i32, i32), Abort> {
            if argc < 2 {
                return abort("primitive with too few arguments");
            }
            let (Some(x), Some(y)) = (conc[0].as_int(), conc[1].as_int()) else {
                return abort(format!("primitive {p} on non-SmallInts"));
            };
            let (a, b) = (rec.ir(args[0], "arithmetic")?, rec.ir(args[1], "arithmetic")?);
            rec.guard(Op::GuardInt(a))?;
            rec.guard(Op::GuardInt(b))?;
            Ok((a, b, x, y))
        };
        let result: Sym = match p {
            8 => return self.block_value(&args, &conc),
            1 => {
                if argc < 2 {
                    return abort("primitive with too few arguments");
                }
                match (args[0], args[1]) {
                    (Sym::Virt(x), Sym::Virt(y)) => Sym::Ir(self.konst(vm.bool(x == y))),
                    (Sym::Virt(_), _) | (_, Sym::Virt(_)) => Sym::Ir(self.konst(k.false_)),
                    (Sym::Ir(a), Sym::Ir(b)) => Sym::Ir(self.emit(Op::Eq(a, b))),
                }
            }
            2 => {
                if argc < 1 {
                    return abort("primitive with too few arguments");
                }
                let cls = self.class_guard(vm, args[0], conc[0])?;
                Sym::Ir(self.konst(cls))
            }
            4 => {
                if argc < 1 {
                    return abort("primitive with too few arguments");
                }
                match args[0] {
                    Sym::Virt(v) => {
                        let n = match &self.objs[v as usize] {
                            VObj::Array(e) => e.len(),
                            VObj::Block { .. } => ctx::BLOCK_SIZE,
                        };
                        Sym::Ir(self.konst(Value::from_int(n as i32)))
                    }
                    Sym::Ir(r) => {
                        let c = conc[0];
                        if c.is_int() {
                            self.guard(Op::GuardInt(r))?;
                            Sym::Ir(self.konst(Value::from_int(0)))
                        } else if matches!(c.kind(), Kind::Pointers | Kind::Bytes) {
                            self.guard(Op::GuardKind(r, c.kind() as u8))?;
                            Sym::Ir(self.emit(Op::LoadLen(r)))
                        } else {
                            return abort("size of a Float or host object");
                        }
                    }
                }
            }
            5 => {
                if argc < 3 {
                    return abort("primitive with too few arguments");
                }
                let v = self.ir(args[0], "stored by at:put:")?;
                let (obj, i) = self.indexed(args[1], args[2], conc[1], conc[2], Kind::Pointers, "at:put:")?;
                self.guard(Op::GuardUnwatched(obj))?;
                self.emit(Op::StoreElem(obj, i, v));
                Sym::Ir(obj)
            }
            30 => {
                if argc < 2 {
                    return abort("primitive with too few arguments");
                }
                if let (Sym::Virt(_), Some(k)) = (args[0], conc[1].as_int()) {
                    // An element of a virtual Array, at the index seen: the index is guarded.
                    let ri = self.ir(args[1], "index")?;
                    self.guard(Op::GuardIs(ri, conc[1]))?;
                    self.load_elem(args[0], (k as usize).wrapping_sub(1))?
                } else {
                    let (obj, i) = self.indexed(args[0], args[1], conc[0], conc[1], Kind::Pointers, "at:")?;
                    Sym::Ir(self.emit(Op::LoadElem(obj, i)))
                }
            }
            22 => {
                if argc < 3 {
                    return abort("primitive with too few arguments");
                }
                if !conc[0].is_int() {
                    return abort("byte at:put: that fails");
                }
                let v = self.ir(args[0], "stored by byte at:put:")?;
                self.guard(Op::GuardInt(v))?;
                let (obj, i) = self.indexed(args[1], args[2], conc[1], conc[2], Kind::Bytes, "byte at:put:")?;
                // A method's bytecodes are watched: storing into them refreshes its send data.
                self.guard(Op::GuardUnwatched(obj))?;
                self.emit(Op::StoreByte(obj, i, v));
                Sym::Ir(obj)
            }
            21 => {
                if argc < 2 {
                    return abort("primitive with too few arguments");
                }
                let (obj, i) = self.indexed(args[0], args[1], conc[0], conc[1], Kind::Bytes, "byte at:")?;
                Sym::Ir(self.emit(Op::LoadByte(obj, i)))
            }
            10 | 15 | 16 => {
                let (a, b, x, y) = int2(self)?;
                let r = match p {
                    10 => x.checked_add(y),
                    15 => x.checked_mul(y),
                    _ => x.checked_sub(y),
                };
                if r.is_none() {
                    return abort("SmallInt primitive overflows while recording");
                }
                let op = match p {
                    10 => Op::AddOv(a, b),
                    15 => Op::MulOv(a, b),
                    _ => Op::SubOv(a, b),
                };
                Sym::Ir(self.guard(op)?)
            }
            11 | 12 => {
                let (a, b, _, y) = int2(self)?;
                if y == 0 {
                    return abort("division by zero while recording");
                }
                Sym::Ir(self.guard(if p == 11 { Op::Quo(a, b) } else { Op::Rem(a, b) })?)
            }
            13 => {
                let (a, b, _, _) = int2(self)?;
                Sym::Ir(self.emit(Op::Lt(a, b)))
            }
            7 => {
                if argc < 2 {
                    return abort("primitive with too few arguments");
                }
                // The class is fixed on the trace (it almost always is a literal); the length
                // is checked by `New` itself. What would fail here is left to the interpreter.
                let (class, len) = (conc[0], conc[1]);
                if !is_class(class) || allocatable(len).is_none() {
                    return abort("primitive 7 the trace does not allocate");
                }
                let c = self.ir(args[0], "class to instantiate")?;
                self.guard(Op::GuardIs(c, class))?;
                let mut n = self.ir(args[1], "size to allocate")?;
                // `Class>>new` reads the size from the class: fixed with it, so that the
                // optimizer knows the object's length (`Array new: k` stays variable).
                if matches!(self.trace.insts[n.0 as usize].op, Op::LoadSlot(o, _) if o == c) {
                    self.guard(Op::GuardIs(n, len))?;
                    n = self.konst(len);
                }
                Sym::Ir(self.guard(Op::New(n, class))?)
            }
            14 => {
                let (a, b, _, _) = int2(self)?;
                Sym::Ir(self.emit(Op::Eq(a, b)))
            }
            36 => {
                // `#( … )`: a new Array of the arguments, allocated on the trace and filled in
                // after the allocation's guard (nothing can leave the trace in between).
                let n = Value::from_int(argc as i32);
                if allocatable(n).is_none() {
                    return abort("primitive 36 the trace does not allocate");
                }
                let elems =
                    args.iter().map(|&a| self.ir(a, "element of a new Array")).collect::<Result<Vec<_>, _>>()?;
                let size = self.konst(n);
                let array = self.guard(Op::New(size, k.array))?;
                for (i, e) in elems.into_iter().enumerate() {
                    self.emit(Op::StoreSlot(array, i as u32, e));
                }
                Sym::Ir(array)
            }
            20 | 24 | 26 | 50..=56 => Sym::Ir(self.helper_primitive(vm, p, &args, &conc)?),
            _ => return abort(format!("unsupported primitive {p}")),
        };
        self.push(result);
        Ok(())
    }

    /// A primitive compiled code does by calling a runtime helper (`Op::Call`): Floats (50–56),
    /// byte-object comparison (26), allocation (20) and concatenation (24). The helper checks
    /// its operands again and exits when they would make the primitive fail; a primitive that
    /// fails now is left to the interpreter. A class argument is fixed by a guard; so is the
    /// class of the byte object a concatenation copies first, which the helper is given.
    fn helper_primitive(&mut self, vm: &Vm, p: u8, args: &[Sym], conc: &[Value]) -> Result<Ref, Abort> {
        let float = |v: &Value| v.is_ptr() && v.kind() == Kind::Float;
        let bytes = |v: &Value| v.is_ptr() && v.kind() == Kind::Bytes;
        let (helper, arity) = match p {
            20 => (Helper::NewBytes, 2),
            24 => (Helper::Concat, 2),
            26 => (Helper::Compare, 2),
            50 => (Helper::AsFloat, 2),
            51 => (Helper::FloatAdd, 3),
            52 => (Helper::FloatSub, 3),
            53 => (Helper::FloatMul, 3),
            54 => (Helper::FloatDiv, 3),
            55 => (Helper::FloatLt, 2),
            _ => (Helper::FloatEq, 2),
        };
        if args.len() < arity || conc.len() < arity {
            return abort("primitive with too few arguments");
        }
        let ok = match helper {
            Helper::NewBytes => is_class(conc[0]) && allocatable(conc[1]).is_some(),
            Helper::Compare | Helper::Concat => bytes(&conc[0]) && bytes(&conc[1]),
            Helper::AsFloat => is_class(conc[0]) && conc[1].is_int(),
            Helper::FloatLt | Helper::FloatEq => float(&conc[0]) && float(&conc[1]),
            _ => is_class(conc[0]) && float(&conc[1]) && float(&conc[2]),
        };
        if !ok {
            return abort(format!("primitive {p} that fails"));
        }
        let mut refs = Vec::with_capacity(arity);
        for &a in &args[..arity] {
            refs.push(self.ir(a, "primitive argument")?);
        }
        if helper == Helper::Concat {
            // (b, a) as the primitive takes them; the helper is given a's class first.
            let class = vm.class_of(conc[1]);
            self.guard(Op::GuardClass(refs[1], class))?;
            let class = self.konst(class);
            return self.guard(Op::Call(helper, class, refs[0], refs[1]));
        }
        if helper.allocates() {
            self.guard(Op::GuardIs(refs[0], conc[0]))?;
            refs[0] = self.konst(conc[0]);
        }
        let (a, b, c) = (refs[0], refs[1], refs[arity - 1]);
        self.guard(Op::Call(helper, a, b, c))
    }

    /// An indexed access the interpreter will make (primitives 5, 21, 30) on an object of `kind`
    /// at a 1-based index: checked on the concrete values, then guarded (kind, SmallInt index,
    /// bounds) in the trace. Answers the object and the index.
    fn indexed(
        &mut self,
        obj: Sym,
        index: Sym,
        c_obj: Value,
        c_index: Value,
        kind: Kind,
        what: &str,
    ) -> Result<(Ref, Ref), Abort> {
        let in_range = c_obj.is_ptr()
            && c_obj.kind() == kind
            && c_index.as_int().is_some_and(|i| i >= 1 && (i as usize) <= c_obj.len());
        if !in_range {
            return abort(format!("{what} that fails"));
        }
        let obj = self.ir(obj, &format!("{what} of a virtual object"))?;
        let i = self.ir(index, "index")?;
        self.guard(Op::GuardKind(obj, kind as u8))?;
        self.guard(Op::GuardInt(i))?;
        self.guard(Op::GuardIndex(obj, i))?;
        Ok((obj, i))
    }

    /// Primitive 8 in `Block>>value…`: the block's body runs in a new frame whose sender is the
    /// sender of the `value` frame (which is done).
    fn block_value(&mut self, args: &[Sym], conc: &[Value]) -> Result<(), Abort> {
        let (Some(&block), Some(&cblock)) = (args.last(), conc.last()) else {
            return abort("primitive 8 without a block");
        };
        if self.frames.len() < 2 {
            return abort("block value in the trace's root frame");
        }
        if !cblock.is_pointers() || cblock.len() < ctx::BLOCK_SIZE {
            return abort("primitive 8 on a non-block");
        }
        let vals = &args[..args.len() - 1];
        let (method, body, arg_loc, bargs, btemps, home, stack_size) = match block {
            Sym::Virt(k) => {
                let VObj::Block { method, body, arg_location, home, args, temps, .. } = self.objs[k as usize].clone()
                else {
                    return abort("primitive 8 on a virtual Array");
                };
                (method, body, arg_location, args, temps, home, cblock.slot(ctx::STACK).len().max(1) as u32)
            }
            Sym::Ir(b) => {
                self.guard(Op::GuardKind(b, Kind::Pointers as u8))?;
                self.guard(Op::GuardLen(b, ctx::OLD_BYTE_POINTER as u32))?;
                let m = self.emit(Op::LoadSlot(b, ctx::METHOD as u32));
                self.guard(Op::GuardIs(m, cblock.slot(ctx::METHOD)))?;
                let body = self.emit(Op::LoadSlot(b, ctx::OLD_BYTE_POINTER as u32));
                self.guard(Op::GuardIs(body, cblock.slot(ctx::OLD_BYTE_POINTER)))?;
                let loc = self.emit(Op::LoadSlot(b, ctx::ARG_LOCATION as u32));
                self.guard(Op::GuardIs(loc, cblock.slot(ctx::ARG_LOCATION)))?;
                let (Some(body), Some(arg_loc)) =
                    (cblock.slot(ctx::OLD_BYTE_POINTER).as_int(), cblock.slot(ctx::ARG_LOCATION).as_int())
                else {
                    return abort("block with a non-integer body or argument location");
                };
                let stack = cblock.slot(ctx::STACK);
                let stack_size = if stack.is_pointers() { stack.len().max(1) } else { 8 } as u32;
                let a = self.emit(Op::LoadSlot(b, ctx::ARGUMENTS as u32));
                let t = self.emit(Op::LoadSlot(b, ctx::TEMPORARIES as u32));
                let h = self.emit(Op::LoadSlot(b, ctx::CREATING_CONTEXT as u32));
                let method = cblock.slot(ctx::METHOD);
                if !method.is_pointers() || method.len() < meth::SIZE - 1 {
                    return abort("block without a method");
                }
                (method, body as u32, arg_loc as u32, Sym::Ir(a), Sym::Ir(t), CtxRef::Real(h), stack_size)
            }
        };
        // The concrete check the interpreter makes: arguments fit the home's temporaries.
        let ctemps = cblock.slot(ctx::TEMPORARIES);
        if !vals.is_empty() && (!ctemps.is_pointers() || arg_loc as usize + vals.len() > ctemps.len()) {
            return abort("wrong argument count for block");
        }
        for (i, &v) in vals.iter().enumerate() {
            self.store_elem(btemps, arg_loc as usize + i, v)?;
        }
        let code = method.slot(meth::BYTECODES);
        if !code.is_bytes() {
            return abort("block method without bytecodes");
        }
        // The `value` frame is done; the block frame takes its place.
        self.end_top_frame(block)?;
        let id = self.next_frame;
        self.next_frame += 1;
        self.frames.push(Frame {
            id,
            ty: FrameType::Block { block },
            method,
            args: bargs,
            temps: btemps,
            stack: Vec::new(),
            ip: body as usize,
            stack_size,
            home: Some(home),
            escaped: false,
        });
        Ok(())
    }
}

/// Builds one snapshot: assigns frame-buffer slots to IR values and numbers virtual objects.
struct SnapBuilder<'r> {
    rec: &'r Recorder,
    /// (frame-buffer word, value): word k is entry k.
    entries: Vec<(u16, Ref)>,
    objects: Vec<ObjDesc>,
    /// This snapshot's number in `word_of` and `object_of` (1 + its index: 0 is never one).
    number: u32,
    /// The recorder's tables (see `Recorder::word_of`), lent for the build.
    word_of: &'r mut Vec<(u32, u16)>,
    object_of: &'r mut Vec<(u32, u16)>,
}

impl SnapBuilder<'_> {
    /// `frames`: the ids of the recorder's frames, outermost first.
    fn loc(&mut self, s: Sym, frames: &[u32]) -> Result<Loc, Abort> {
        match s {
            Sym::Ir(r) => {
                if let Some(&v) = self.rec.const_of.get(&r) {
                    return Ok(Loc::Const(v));
                }
                let seen = &mut self.word_of[r.0 as usize];
                if seen.0 == self.number {
                    return Ok(Loc::Slot(seen.1));
                }
                let k = self.entries.len() as u16;
                *seen = (self.number, k);
                self.entries.push((k, r));
                Ok(Loc::Slot(k))
            }
            Sym::Virt(v) => {
                let seen = &mut self.object_of[v as usize];
                if seen.0 == self.number {
                    return Ok(Loc::Virtual(seen.1));
                }
                let k = self.objects.len() as u16;
                *seen = (self.number, k);
                self.objects.push(ObjDesc::Array(Vec::new()));
                // The recorder is borrowed for the builder's whole life, not from `self`.
                let rec = self.rec;
                let desc = match &rec.objs[v as usize] {
                    VObj::Array(e) => {
                        let mut locs = Vec::with_capacity(e.len());
                        for &s in e {
                            locs.push(self.loc(s, frames)?);
                        }
                        ObjDesc::Array(locs)
                    }
                    &VObj::Block { method, body, arg_location, creator, home, args, temps } => ObjDesc::Block {
                        method,
                        body,
                        arg_location,
                        creator: self.ctx(creator, frames)?,
                        home: self.ctx(home, frames)?,
                        args: self.loc(args, frames)?,
                        temps: self.loc(temps, frames)?,
                    },
                };
                self.objects[k as usize] = desc;
                Ok(Loc::Virtual(k))
            }
        }
    }

    fn ctx(&mut self, c: CtxRef, frames: &[u32]) -> Result<CtxLoc, Abort> {
        match c {
            CtxRef::Frame(id) => match frames.iter().position(|&f| f == id) {
                Some(i) => Ok(CtxLoc::Frame(i as u16)),
                None => abort("a block refers to a frame that has returned"),
            },
            CtxRef::Real(r) => Ok(CtxLoc::Real(self.loc(Sym::Ir(r), frames)?)),
        }
    }
}

/// What primitives 7, 20 and 50–54 accept as a class (as `primitives::class_arg` checks it).
fn is_class(v: Value) -> bool {
    v.is_ptr() && v.kind() == Kind::Pointers && v.len() > crate::interp::class::SIZE
}
