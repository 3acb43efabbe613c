//! The x86-64 backend: assembles a verified trace with iced-x86 into executable memory.
//!
//! Owns instruction selection, the frame layout of compiled code, exit stubs and disassembly.
//! It never decides what a trace means (the IR does) and never touches the interpreter: a trace
//! talks to the outside world only through its frame buffer and the exit number it answers.
//!
//! Register use: `regalloc` gives every IR value one home for its life — one of eight
//! registers, its own 8-byte word of the trace's value area (spilled; owned by the
//! `CompiledTrace`, and a trace never runs twice at once), or none (constants are immediates).
//! Each instruction loads its operands into scratch registers (rax, rcx, rdx), computes, and
//! writes its result home. rbx holds the value area, r12 the frame buffer. A guard jumps to its
//! snapshot's exit stub, which stores the snapshot's register-held values into the value area
//! and answers the snapshot number; `CompiledTrace::run` then copies the snapshot's values from
//! the value area into their frame-buffer words. Exits are data, not code: a stub is a few
//! instructions however many values its snapshot holds, which keeps traces small and quick to
//! assemble (iced-x86 costs about 0.1–0.2 µs per instruction).
//!
//! Calling convention (`CompiledTrace::run`): sysv64, `rdi` = frame buffer, result in `eax`.

mod code_memory;
mod regalloc;

use crate::heap::{Value, BODY_OFFSET, FLAGS_OFFSET, KIND_OFFSET, LEN_OFFSET};
use crate::jit::ir::{IrError, Op, Ref, SnapId, Trace};
use code_memory::CodeMemory;
use iced_x86::code_asm::*;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use regalloc::{Home, REGS};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("invalid trace: {0}")]
    Ir(#[from] IrError),
    #[error("assembler: {0}")]
    Asm(String),
    #[error("code memory: {0}")]
    Memory(#[from] std::io::Error),
    #[error("frame buffer has {given} slots; the trace needs {needed}")]
    FrameTooSmall { given: usize, needed: usize },
}

impl From<IcedError> for BackendError {
    fn from(e: IcedError) -> Self {
        BackendError::Asm(e.to_string())
    }
}

/// Objects the generated code needs as constants (what comparisons answer).
pub use crate::jit::ir::Booleans as Constants;

/// A trace's machine code, ready to run.
pub struct CompiledTrace {
    code: CodeMemory,
    /// Frame-buffer words the trace reads and writes.
    slots: u16,
    /// One word per IR value: where spilled values live, and where exit stubs put the ones held
    /// in registers. The code embeds its address, so it lives (and stays put) as long as the
    /// code.
    values: Box<[std::cell::Cell<u64>]>,
    /// Per snapshot: (frame-buffer word, index in `values` of its value) to copy when leaving
    /// by it (see `exit_cells`).
    exits: Vec<Vec<(u16, u32)>>,
    /// `Options::force_exits`: one byte per exit point, set once it has forced its exit. The code
    /// embeds this block's address, so it lives (and stays put) as long as the code.
    _forced: Box<[u8]>,
    /// Back edges taken (the code increments it in place; boxed so that its address is fixed).
    iterations: Box<std::cell::Cell<u64>>,
    /// Entries, from the VM and by links from other traces (the code counts them in place).
    entries: Box<std::cell::Cell<u64>>,
    /// Per linkable exit (see `ExitLink`): the address its stub jumps to, 0 for none. The code
    /// reads it in place, so it lives (and stays put) as long as the code.
    link_cells: Box<[std::cell::Cell<u64>]>,
    /// Per snapshot: where the common exit continues (a side trace's parent entry; 0 for none)
    /// when it is linkable with `ExitLink::stack` None. The code reads it in place.
    later_links: Box<[std::cell::Cell<u64>]>,
    /// Per snapshot, if it is linkable: its index in `link_cells`, and whether its stub writes
    /// the stack itself (`ExitLink::stack` is Some).
    link_of: Vec<Option<(u16, bool)>>,
    /// Where another trace's linked exit jumps in (past the prologue, see `ExitLink`).
    link_entry: u64,
    /// Where its parent's linked exit jumps in (see `ParentLink`).
    parent_entry: Option<u64>,
    /// The trace number its exits answer with (`Options::trace_id`).
    id: u32,
}

/// An exit that may continue straight into another trace (a *link*), without the VM: its
/// interpreter state has the loop's real frame outermost (the one in frame-buffer words 0–3,
/// which the other trace reads as its own). Control jumps to the address in the exit's link
/// cell (`CompiledTrace::set_link`), if any.
///
/// Two kinds, by which trace is compiled first:
/// * `stack: Some(..)` — the exit (one frame) writes its stack into the frame's stack Array in
///   its own stub, with the values still in registers, and enters the other (older) trace at
///   its `link_entry`. A side trace's last exit, back in its loop trace. With no fuel left or a
///   stack Array too short, it leaves.
/// * `stack: None` — the other trace is compiled later (a side trace of this exit): the common
///   exit, after saving the registers, jumps to its `parent_entry`, which reads this trace's
///   exit values where they now are (`ParentLink`). It costs the stub nothing, so any exit can
///   be one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitLink {
    pub snap: SnapId,
    pub stack: Option<Vec<LinkValue>>,
}

/// A value a linked exit writes into its frame's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkValue {
    /// The value the snapshot gives frame-buffer word `w` (the input itself if it gives none).
    Word(u16),
    Const(Value),
    /// The word at this address (a value in another trace's value area).
    At(u64),
}

/// A side trace entered from its parent's exit by a link (`ExitLink` with `stack: None`): its
/// `parent_entry` writes the stack of the parent's exit state into the frame's stack Array,
/// then runs the trace. With no fuel left or a stack Array too short it leaves as the parent's
/// exit (`trace_id`, `exit`), whose values are in the parent's value area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentLink {
    pub trace_id: u32,
    pub exit: SnapId,
    pub stack: Vec<LinkValue>,
    /// Frame-buffer words written too, before the trace reads its inputs: the parent's exit
    /// values a side trace that inherits its parent's state reads (`Recorder::start_inherited`).
    pub words: Vec<(u16, LinkValue)>,
}

/// Frame-buffer word of the root frame's stack Array (words 0–3: context, arguments,
/// temporaries, stack).
const ROOT_STACK_WORD: i32 = 3;

/// How to compile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Every instruction that may exit leaves by its snapshot the first time it runs (a debug
    /// mode that runs every deoptimisation path once).
    pub force_exits: bool,
    /// A fuel counter (the address of a `u64` that outlives the code, or 0 for none) that every
    /// arrival at the loop head decrements; when it reaches zero the trace leaves by `fuel_exit`, a snapshot of
    /// the state at the loop header. Bounds a trace's run (execution budgets, tests).
    pub fuel: u64,
    pub fuel_exit: Option<SnapId>,
    /// The address of the `jit::runtime::Runtime` the code's helper calls get (0: none; then
    /// every `New` exits).
    pub runtime: u64,
    /// Answered with every exit (see `CompiledTrace::enter`): after links, the trace that left.
    pub trace_id: u32,
}

impl CompiledTrace {
    /// Runs the trace on `frame` (at least the trace's `slots` words of Values) until it exits;
    /// answers the snapshot it left by, whose values are then in `frame`.
    ///
    /// # Safety
    /// The trace trusts its inputs as far as its guards do not check them: every frame word the
    /// trace reads as an object (without a class guard first) must be a live heap object, and
    /// every `LoadSlot`/`StoreSlot`/`LoadLen` must reach an object with the slots it names. The
    /// recorder establishes this with guards; tests by construction.
    pub unsafe fn run(&self, frame: &mut [u64]) -> Result<SnapId, BackendError> {
        let (id, exit) = self.enter(frame)?;
        if id == self.id {
            self.copy_exit(exit, frame);
        }
        Ok(exit)
    }

    /// Runs the trace on `frame` until some trace leaves (this one, or one it linked to);
    /// answers that trace's `Options::trace_id` and its snapshot. The values of that snapshot are
    /// in *its* value area: `copy_exit` on it puts them into `frame`.
    ///
    /// # Safety
    /// As `run`, for this trace and for every trace its links may reach, and `frame` must have
    /// the slots of all of them.
    pub unsafe fn enter(&self, frame: &mut [u64]) -> Result<(u32, SnapId), BackendError> {
        if frame.len() < self.slots as usize {
            return Err(BackendError::FrameTooSmall { given: frame.len(), needed: self.slots as usize });
        }
        let answer = self.code.enter(frame);
        Ok(((answer >> 32) as u32, SnapId(answer as u32)))
    }

    /// Copies snapshot `exit`'s values into their frame-buffer words (after this trace left by it).
    pub fn copy_exit(&self, exit: SnapId, frame: &mut [u64]) {
        for &(slot, cell) in self.exits.get(exit.0 as usize).map(Vec::as_slice).unwrap_or(&[]) {
            frame[slot as usize] = self.values[cell as usize].get();
        }
    }

    /// Points linkable exit `exit` at `target` (`link_entry` or `parent_entry` of another
    /// trace, as the exit's kind requires), or (None) unlinks it. False when the exit is not
    /// linkable. The caller vouches that whenever this trace leaves by `exit`, the state is one
    /// the target may be entered in (see `ExitLink`).
    pub fn set_link(&self, exit: SnapId, target: Option<u64>) -> bool {
        match self.link_of.get(exit.0 as usize).copied().flatten() {
            Some((k, true)) => {
                self.link_cells[k as usize].set(target.unwrap_or(0));
                true
            }
            Some((_, false)) => {
                self.later_links[exit.0 as usize].set(target.unwrap_or(0));
                true
            }
            None => false,
        }
    }

    /// Whether exit `exit` can be linked to a trace compiled later (`ExitLink::stack` None).
    pub fn links_later(&self, exit: SnapId) -> bool {
        self.link_of.get(exit.0 as usize).copied().flatten().is_some_and(|(_, inline)| !inline)
    }

    /// The address in this trace's value area where exit `exit` leaves the value of frame-buffer
    /// word `w`, if the snapshot gives that word one.
    pub fn exit_value_at(&self, exit: SnapId, w: u16) -> Option<u64> {
        let entries = self.exits.get(exit.0 as usize)?;
        let &(_, cell) = entries.iter().find(|&&(word, _)| word == w)?;
        Some(self.values[cell as usize].as_ptr() as u64)
    }

    /// Where an older trace's linked exit enters (see `ExitLink`).
    pub fn link_entry(&self) -> u64 {
        self.link_entry
    }

    /// Where the parent's linked exit enters, if compiled with a `ParentLink`.
    pub fn parent_entry(&self) -> Option<u64> {
        self.parent_entry
    }

    /// Whether exit `exit` currently continues into another trace.
    pub fn is_linked(&self, exit: SnapId) -> bool {
        self.link_of.get(exit.0 as usize).copied().flatten().is_some_and(|(k, inline)| match inline {
            true => self.link_cells[k as usize].get() != 0,
            false => self.later_links[exit.0 as usize].get() != 0,
        })
    }

    /// Entries so far: from the VM, and by links from other traces.
    pub fn entries(&self) -> u64 {
        self.entries.get()
    }

    /// Frame-buffer words the trace needs.
    pub fn slots(&self) -> usize {
        self.slots as usize
    }

    /// How many times control reached the loop head, over all runs: for a peeled loop, the
    /// iterations completed.
    pub fn iterations(&self) -> u64 {
        self.iterations.get()
    }

    pub fn code_size(&self) -> usize {
        self.code.bytes().len()
    }

    /// Intel-syntax disassembly, one instruction per line with its address.
    pub fn disassemble(&self) -> String {
        let mut decoder = Decoder::with_ip(64, self.code.bytes(), self.code.base(), DecoderOptions::NONE);
        let mut formatter = IntelFormatter::new();
        let mut out = String::new();
        let mut line = String::new();
        for instr in decoder.iter() {
            line.clear();
            formatter.format(&instr, &mut line);
            out.push_str(&format!("{:016x} {line}\n", instr.ip()));
        }
        out
    }
}

/// An argument of a runtime call: an IR value, or a word known when compiling.
#[derive(Clone, Copy)]
enum Arg {
    Value(Ref),
    Word(u64),
}

/// The header flag bits that mark an object whose stores the lookup caches watch.
const WATCH_MASK: u8 = crate::interp::WATCH_MASK;

/// Byte offset of slot `k` of an object.
fn slot_offset(k: u32) -> i32 {
    BODY_OFFSET + 8 * k as i32
}

struct Emitter<'t> {
    a: CodeAssembler,
    trace: &'t Trace,
    /// Every value's home (`regalloc`).
    loc: Vec<Home>,
    stubs: Vec<CodeLabel>,
    k: Constants,
    /// Base address of the force-exit flags (0: not forcing).
    forced: u64,
    /// Address of the back-edge counter.
    iterations: u64,
    /// Address of the value area.
    values: u64,
    fuel: u64,
    fuel_exit: Option<SnapId>,
    runtime: u64,
    /// Address of the entry counter.
    entries: u64,
    /// Per snapshot: its link (what the stub writes) and the address of its link cell.
    links: Vec<Option<(&'t ExitLink, u64)>>,
    /// Address of the per-snapshot table of links to side traces (`ExitLink` with `stack: None`)
    /// that the common exit reads.
    later_links: u64,
    /// Index in the value area of the save word of `REGS[0]` (the others follow).
    saved_base: u32,
    trace_id: u32,
    parent: Option<&'t ParentLink>,
}

/// One side of a parallel move (the loop head's and the back edge's phi copies).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Reg(AsmRegister64),
    /// Value `r`'s word of the value area.
    Mem(Ref),
    Imm(u64),
}

impl Emitter<'_> {
    fn value(&self, r: Ref) -> AsmMemoryOperand {
        qword_ptr(rbx + 8 * r.0 as i32)
    }

    fn stub(&self, snap: Option<SnapId>) -> CodeLabel {
        self.stubs[snap.expect("verified: exits have snapshots").0 as usize]
    }

    fn place(&self, r: Ref) -> Place {
        match self.loc[r.0 as usize] {
            Home::Reg(k) => Place::Reg(REGS[k as usize]),
            Home::Const(c) => Place::Imm(c),
            Home::Spill | Home::None => Place::Mem(r),
        }
    }

    /// `reg` <- value `r`.
    fn load(&mut self, reg: AsmRegister64, r: Ref) -> Result<(), IcedError> {
        match self.place(r) {
            Place::Reg(home) if home == reg => Ok(()),
            Place::Reg(home) => self.a.mov(reg, home),
            Place::Imm(c) => self.a.mov(reg, c),
            Place::Mem(r) => self.a.mov(reg, self.value(r)),
        }
    }

    /// A register holding value `r`: its home, or `scratch` loaded with it. Only for reading.
    fn reg_of(&mut self, r: Ref, scratch: AsmRegister64) -> Result<AsmRegister64, IcedError> {
        match self.place(r) {
            Place::Reg(home) => Ok(home),
            _ => self.load(scratch, r).map(|_| scratch),
        }
    }

    /// The register to compute value `at` in: its home if that is a register, else `scratch`
    /// (then `store` puts it home).
    fn target(&self, at: Ref, scratch: AsmRegister64) -> AsmRegister64 {
        match self.loc[at.0 as usize] {
            Home::Reg(k) => REGS[k as usize],
            _ => scratch,
        }
    }

    /// Writes `reg` home as value `at` (nothing if nothing reads it).
    fn store(&mut self, at: Ref, reg: AsmRegister64) -> Result<(), IcedError> {
        match self.loc[at.0 as usize] {
            Home::Reg(k) if REGS[k as usize] == reg => Ok(()),
            Home::Reg(k) => self.a.mov(REGS[k as usize], reg),
            Home::Spill => self.a.mov(self.value(at), reg),
            Home::None | Home::Const(_) => Ok(()),
        }
    }

    /// Copies every `(to, from)` at once: no copy overwrites a place another still reads
    /// (a cycle goes through rax; memory to memory through rcx).
    fn parallel_move(&mut self, mut moves: Vec<(Place, Place)>) -> Result<(), IcedError> {
        moves.retain(|(to, from)| to != from);
        while !moves.is_empty() {
            let free = (0..moves.len()).find(|&m| !moves.iter().any(|&(_, from)| from == moves[m].0));
            let Some(m) = free else {
                // Every destination is still read: park one in rax and read it from there.
                let parked = moves[0].0;
                self.move_one(Place::Reg(rax), parked)?;
                for (_, from) in moves.iter_mut().filter(|(_, from)| *from == parked) {
                    *from = Place::Reg(rax);
                }
                continue;
            };
            let (to, from) = moves.remove(m);
            self.move_one(to, from)?;
        }
        Ok(())
    }

    fn move_one(&mut self, to: Place, from: Place) -> Result<(), IcedError> {
        match (to, from) {
            (Place::Reg(t), Place::Reg(f)) => self.a.mov(t, f),
            (Place::Reg(t), Place::Imm(c)) => self.a.mov(t, c),
            (Place::Reg(t), Place::Mem(r)) => self.a.mov(t, self.value(r)),
            (Place::Mem(t), Place::Reg(f)) => self.a.mov(self.value(t), f),
            (Place::Mem(t), Place::Imm(c)) => {
                self.a.mov(rcx, c)?;
                self.a.mov(self.value(t), rcx)
            }
            (Place::Mem(t), Place::Mem(f)) => {
                self.a.mov(rcx, self.value(f))?;
                self.a.mov(self.value(t), rcx)
            }
            (Place::Imm(_), _) => Ok(()),
        }
    }

    /// `reg` <- SmallInt value of `r` (untagged, sign-extended).
    fn untag(&mut self, reg: AsmRegister64, r: Ref) -> Result<(), IcedError> {
        self.load(reg, r)?;
        self.a.sar(reg, 1)
    }

    /// Tags the 32-bit result in eax and writes it home as value `at`.
    fn tag_eax_into(&mut self, at: Ref) -> Result<(), IcedError> {
        self.a.movsxd(rax, eax)?;
        let d = self.target(at, rax);
        self.a.lea(d, qword_ptr(rax + rax + 1))?;
        self.store(at, d)
    }

    /// Calls runtime function `f` (sysv64: the runtime, then `args`) and keeps its answer as
    /// value `at`, or leaves by `snap` if it answers 0 (or there is no runtime to call with).
    fn call_helper(&mut self, at: Ref, snap: Option<SnapId>, f: u64, args: &[Arg]) -> Result<(), IcedError> {
        let stub = self.stub(snap);
        if self.runtime == 0 {
            return self.a.jmp(stub);
        }
        // rsp is 16-aligned here (see the prologue). The allocator keeps every value live
        // across the call (or read by its exit) in a callee-saved register or in memory, and
        // the argument registers hold no values: nothing to save.
        self.a.mov(rdi, self.runtime)?;
        for (&arg, reg) in args.iter().zip([rsi, rdx, rcx]) {
            match arg {
                Arg::Value(r) => self.load(reg, r)?,
                Arg::Word(w) => self.a.mov(reg, w)?,
            }
        }
        self.a.mov(rax, f)?;
        self.a.call(rax)?;
        self.a.test(rax, rax)?;
        self.a.jz(stub)?;
        self.store(at, rax)
    }

    /// A constant operand as a sign-extended 32-bit immediate, if it is one.
    /// The value of `r` when it is a SmallInt constant a division can use as it is: not 0
    /// (which exits) and not -1 (`MIN / -1` traps in `idiv`).
    fn plain_divisor(&self, r: Ref) -> Option<i32> {
        match self.loc[r.0 as usize] {
            Home::Const(c) if c & 1 == 1 => Some((c as i64 >> 1) as i32).filter(|&d| d != 0 && d != -1),
            _ => None,
        }
    }

    fn imm32(&self, r: Ref) -> Option<i32> {
        match self.loc[r.0 as usize] {
            Home::Const(c) => i32::try_from(c as i64).ok(),
            _ => None,
        }
    }

    /// Sets the flags for `a` against `b` (tagged SmallInts compare like their values: same
    /// shift, same tag bit).
    fn cmp_values(&mut self, a: Ref, b: Ref) -> Result<(), IcedError> {
        let x = self.reg_of(a, rdx)?;
        match self.imm32(b) {
            Some(k) => self.a.cmp(x, k),
            None => {
                let y = self.reg_of(b, rcx)?;
                self.a.cmp(x, y)
            }
        }
    }

    fn compare(&mut self, at: Ref, a: Ref, b: Ref, op: &Op) -> Result<(), IcedError> {
        self.cmp_values(a, b)?;
        self.a.mov(rax, self.k.false_.raw())?;
        self.a.mov(rcx, self.k.true_.raw())?;
        match op {
            Op::Lt(..) => self.a.cmovl(rax, rcx)?,
            Op::Le(..) => self.a.cmovle(rax, rcx)?,
            _ => self.a.cmove(rax, rcx)?,
        }
        self.store(at, rax)
    }

    /// If `guard` exits on comparison `cmp`'s answer being true or being false: which.
    fn branch_on(&self, cmp: Ref, guard: &crate::jit::ir::Inst) -> Option<bool> {
        let (r, v, is) = match guard.op {
            Op::GuardIs(r, v) => (r, v, true),
            Op::GuardIsNot(r, v) => (r, v, false),
            _ => return None,
        };
        if r != cmp {
            return None;
        }
        // GuardIs(true) and GuardIsNot(false) exit on false; the other two on true.
        if v == self.k.true_ {
            Some(!is)
        } else if v == self.k.false_ {
            Some(is)
        } else {
            None
        }
    }

    /// A comparison and the guard on its answer, as one compare-and-branch to the guard's exit.
    fn compare_and_branch(
        &mut self,
        a: Ref,
        b: Ref,
        op: &Op,
        exit_when: bool,
        stub: CodeLabel,
    ) -> Result<(), IcedError> {
        self.cmp_values(a, b)?;
        match (op, exit_when) {
            (Op::Lt(..), true) => self.a.jl(stub),
            (Op::Lt(..), false) => self.a.jge(stub),
            (Op::Le(..), true) => self.a.jle(stub),
            (Op::Le(..), false) => self.a.jg(stub),
            (_, true) => self.a.je(stub),
            (_, false) => self.a.jne(stub),
        }
    }

    /// A linked exit that writes its own stack (see `ExitLink`): when its cell names a trace and
    /// `write_link_stack` agrees, jump there. Falls through (to the stub's ordinary exit)
    /// otherwise. Runs after the stub stored the registers.
    fn link(&mut self, s: usize, stack: &[LinkValue], cell: u64) -> Result<(), IcedError> {
        let mut unlinked = self.a.create_label();
        self.a.mov(rax, cell)?;
        self.a.mov(rax, qword_ptr(rax))?;
        self.a.test(rax, rax)?;
        self.a.jz(unlinked)?;
        let entries = self.trace.snapshots[s].entries.clone();
        self.write_link_stack(stack, unlinked, &entries)?;
        self.a.jmp(rax)?;
        self.a.set_label(&mut unlinked)?;
        Ok(())
    }

    /// `Options::force_exits`: before an instruction that may exit, leave by its exit the first
    /// time control gets there.
    fn forced_exit(&mut self, inst: &crate::jit::ir::Inst, exit_point: &mut u64) -> Result<(), IcedError> {
        if self.forced == 0 || !inst.op.may_exit() {
            return Ok(());
        }
        let mut first_time = self.a.create_label();
        let mut skip = self.a.create_label();
        self.a.mov(rax, self.forced + *exit_point)?;
        self.a.cmp(byte_ptr(rax), 0)?;
        self.a.je(first_time)?;
        self.a.jmp(skip)?;
        self.a.set_label(&mut first_time)?;
        self.a.mov(byte_ptr(rax), 1)?;
        let stub = self.stub(inst.snap);
        self.a.jmp(stub)?;
        self.a.set_label(&mut skip)?;
        *exit_point += 1;
        Ok(())
    }

    /// Emits the trace; answers the code and the instruction indices of the link entry and of
    /// the parent entry (if any).
    fn emit(mut self) -> Result<(CodeAssembler, usize, Option<usize>), IcedError> {
        let phis: Vec<(Ref, Ref, Ref)> = self
            .trace
            .insts
            .iter()
            .enumerate()
            .filter_map(|(i, inst)| match inst.op {
                Op::Phi { init, next: Some(next) } => Some((Ref(i as u32), init, next)),
                _ => None,
            })
            .filter(|&(phi, _, _)| self.loc[phi.0 as usize] != Home::None)
            .collect();
        let mut epilogue = self.a.create_label();
        let mut loop_head = self.a.create_label();

        // Prologue: the callee-saved registers values may live in, rbx and r12. After `call`,
        // rsp ≡ 8 (mod 16); six pushes and 8 more bytes make it 0 for helper calls.
        for reg in [rbp, rbx, r12, r13, r14, r15] {
            self.a.push(reg)?;
        }
        self.a.sub(rsp, 8)?;
        self.a.mov(r12, rdi)?;
        // The link entry: a linked exit of another trace jumps here with its own prologue's
        // frame and the same frame buffer in r12.
        let link_index = self.a.instructions().len();
        let mut link_entry = self.a.create_label();
        self.a.set_label(&mut link_entry)?;
        self.a.mov(rax, self.entries)?;
        self.a.inc(qword_ptr(rax))?;
        self.a.mov(rbx, self.values)?;

        let mut exit_point = 0u64;
        // Values read once, by the guard right after them: a comparison feeding a branch guard
        // becomes a compare-and-branch (`fused`), with no true/false object in between.
        // How many exit points leave by each snapshot (only those get stubs).
        let mut exits_by = vec![0u32; self.trace.snapshots.len()];
        for s in self.trace.insts.iter().filter_map(|i| i.snap) {
            exits_by[s.0 as usize] += 1;
        }
        if let Some(s) = self.fuel_exit.filter(|_| self.fuel != 0) {
            exits_by[s.0 as usize] += 1;
        }
        let mut reads = vec![0u32; self.trace.insts.len()];
        for inst in &self.trace.insts {
            for r in inst.op.operands() {
                reads[r.0 as usize] += 1;
            }
        }
        for (_, snap) in self.trace.snapshots.iter().enumerate().filter(|&(s, _)| exits_by[s] > 0) {
            for &(_, v) in &snap.entries {
                reads[v.0 as usize] += 1;
            }
        }
        // Trampolines of fused guards whose exit reads the comparison's answer: (label, the
        // comparison, its answer when the guard exits, the snapshot's stub).
        let mut trampolines: Vec<(CodeLabel, Ref, Value, CodeLabel)> = Vec::new();
        let mut fused_guard = None;
        for (i, inst) in self.trace.insts.iter().enumerate() {
            let at = Ref(i as u32);
            if fused_guard == Some(i) {
                continue;
            }
            self.forced_exit(inst, &mut exit_point)?;
            if let (Op::Lt(x, y) | Op::Le(x, y) | Op::Eq(x, y), Some(next)) = (inst.op, self.trace.insts.get(i + 1)) {
                // The guard's own exit may read the answer too (the interpreter's stack holds it
                // at the branch): when that exit is the guard's alone, the answer there is known
                // (the one the guard exits on), and a trampoline puts it home on the way out.
                let own = next.snap.filter(|s| exits_by[s.0 as usize] == 1 && self.forced == 0).map_or(0, |s| {
                    self.trace.snapshots[s.0 as usize].entries.iter().filter(|&&(_, v)| v == at).count() as u32
                });
                if let Some(exit_when) = self.branch_on(at, next).filter(|_| reads[i] == 1 + own) {
                    self.forced_exit(next, &mut exit_point)?;
                    let stub = self.stub(next.snap);
                    let target = if own > 0 {
                        let label = self.a.create_label();
                        let answer = if exit_when { self.k.true_ } else { self.k.false_ };
                        trampolines.push((label, at, answer, stub));
                        label
                    } else {
                        stub
                    };
                    self.compare_and_branch(x, y, &inst.op, exit_when, target)?;
                    fused_guard = Some(i + 1);
                    continue;
                }
            }
            match inst.op {
                Op::Input(slot) => {
                    let d = self.target(at, rax);
                    self.a.mov(d, qword_ptr(r12 + 8 * slot as i32))?;
                    self.store(at, d)?;
                }
                Op::Const(_) => {}
                Op::AddOv(x, y) | Op::SubOv(x, y) | Op::MulOv(x, y) => {
                    self.untag(rax, x)?;
                    // A constant operand is a known SmallInt: its untagged value is the immediate.
                    match (inst.op, self.imm32(y).filter(|k| k & 1 == 1).map(|k| k >> 1)) {
                        (Op::AddOv(..), Some(k)) => self.a.add(eax, k)?,
                        (Op::SubOv(..), Some(k)) => self.a.sub(eax, k)?,
                        (_, Some(k)) => self.a.imul_3(eax, eax, k)?,
                        (op, None) => {
                            self.untag(rcx, y)?;
                            match op {
                                Op::AddOv(..) => self.a.add(eax, ecx)?,
                                Op::SubOv(..) => self.a.sub(eax, ecx)?,
                                _ => self.a.imul_2(eax, ecx)?,
                            }
                        }
                    }
                    let stub = self.stub(inst.snap);
                    self.a.jo(stub)?;
                    self.tag_eax_into(at)?;
                }
                Op::Quo(x, y) | Op::Rem(x, y) if self.plain_divisor(y).is_some() => {
                    // A constant divisor other than 0 and -1 needs neither check.
                    let d = self.plain_divisor(y).expect("guarded");
                    self.untag(rax, x)?;
                    self.a.mov(ecx, d)?;
                    self.a.cdq()?;
                    self.a.idiv(ecx)?;
                    if matches!(inst.op, Op::Rem(..)) {
                        self.a.mov(eax, edx)?;
                    }
                    self.tag_eax_into(at)?;
                }
                Op::Quo(x, y) | Op::Rem(x, y) => {
                    let stub = self.stub(inst.snap);
                    let mut general = self.a.create_label();
                    let mut done = self.a.create_label();
                    self.untag(rax, x)?;
                    self.untag(rcx, y)?;
                    self.a.test(ecx, ecx)?;
                    self.a.jz(stub)?;
                    // idiv traps on MIN / -1; Java answers MIN (quotient) and 0 (remainder).
                    self.a.cmp(ecx, -1)?;
                    self.a.jne(general)?;
                    if matches!(inst.op, Op::Quo(..)) {
                        self.a.neg(eax)?;
                    } else {
                        self.a.xor(eax, eax)?;
                    }
                    self.a.jmp(done)?;
                    self.a.set_label(&mut general)?;
                    self.a.cdq()?;
                    self.a.idiv(ecx)?;
                    if matches!(inst.op, Op::Rem(..)) {
                        self.a.mov(eax, edx)?;
                    }
                    self.a.set_label(&mut done)?;
                    self.tag_eax_into(at)?;
                }
                Op::GuardKind(x, kind) => {
                    let stub = self.stub(inst.snap);
                    let o = self.reg_of(x, rax)?;
                    self.a.test(o, 1)?;
                    self.a.jnz(stub)?;
                    self.a.cmp(byte_ptr(o + KIND_OFFSET), kind as i32)?;
                    self.a.jne(stub)?;
                }
                Op::GuardLen(x, k) => {
                    let stub = self.stub(inst.snap);
                    let o = self.reg_of(x, rax)?;
                    self.a.cmp(dword_ptr(o + LEN_OFFSET), k)?;
                    self.a.jbe(stub)?;
                }
                Op::GuardIndex(x, i) => {
                    // 1 <= i <= len  ⇔  (i - 1) unsigned < len.
                    let stub = self.stub(inst.snap);
                    let o = self.reg_of(x, rax)?;
                    self.untag(rcx, i)?;
                    self.a.sub(rcx, 1)?;
                    self.a.mov(edx, dword_ptr(o + LEN_OFFSET))?;
                    self.a.cmp(rcx, rdx)?;
                    self.a.jae(stub)?;
                }
                Op::GuardUnwatched(x) => {
                    let stub = self.stub(inst.snap);
                    let o = self.reg_of(x, rax)?;
                    self.a.test(byte_ptr(o + FLAGS_OFFSET), WATCH_MASK as i32)?;
                    self.a.jnz(stub)?;
                }
                Op::LoadElem(o, i) => {
                    let o = self.reg_of(o, rax)?;
                    self.untag(rcx, i)?;
                    let d = self.target(at, rax);
                    self.a.mov(d, qword_ptr(o + rcx * 8 + (BODY_OFFSET - 8)))?;
                    self.store(at, d)?;
                }
                Op::LoadByte(o, i) => {
                    let o = self.reg_of(o, rax)?;
                    self.untag(rcx, i)?;
                    self.a.movzx(eax, byte_ptr(o + rcx + (BODY_OFFSET - 1)))?;
                    self.tag_eax_into(at)?;
                }
                Op::StoreByte(o, i, v) => {
                    let o = self.reg_of(o, rax)?;
                    self.untag(rcx, i)?;
                    self.untag(rdx, v)?;
                    self.a.mov(byte_ptr(o + rcx + (BODY_OFFSET - 1)), dl)?;
                }
                Op::StoreElem(o, i, v) => {
                    let o = self.reg_of(o, rax)?;
                    self.untag(rcx, i)?;
                    let v = self.reg_of(v, rdx)?;
                    self.a.mov(qword_ptr(o + rcx * 8 + (BODY_OFFSET - 8)), v)?;
                }
                Op::Lt(x, y) | Op::Le(x, y) | Op::Eq(x, y) => self.compare(at, x, y, &inst.op)?,
                Op::GuardInt(x) => {
                    let v = self.reg_of(x, rax)?;
                    self.a.test(v, 1)?;
                    let stub = self.stub(inst.snap);
                    self.a.jz(stub)?;
                }
                Op::GuardClass(x, class) => {
                    let stub = self.stub(inst.snap);
                    let o = self.reg_of(x, rax)?;
                    self.a.test(o, 1)?;
                    self.a.jnz(stub)?;
                    self.a.mov(rcx, class.raw())?;
                    self.a.cmp(qword_ptr(o), rcx)?;
                    self.a.jne(stub)?;
                }
                Op::GuardNe(x, y) => {
                    let stub = self.stub(inst.snap);
                    let a = self.reg_of(x, rax)?;
                    let b = self.reg_of(y, rcx)?;
                    self.a.cmp(a, b)?;
                    self.a.je(stub)?;
                }
                Op::GuardIs(x, v) | Op::GuardIsNot(x, v) => {
                    let stub = self.stub(inst.snap);
                    let a = self.reg_of(x, rax)?;
                    // SmallInt constants fit a sign-extended immediate; object addresses do not.
                    match i32::try_from(v.raw() as i64) {
                        Ok(k) => self.a.cmp(a, k)?,
                        Err(_) => {
                            self.a.mov(rcx, v.raw())?;
                            self.a.cmp(a, rcx)?;
                        }
                    }
                    if matches!(inst.op, Op::GuardIs(..)) {
                        self.a.jne(stub)?;
                    } else {
                        self.a.je(stub)?;
                    }
                }
                Op::LoadSlot(o, k) => {
                    let o = self.reg_of(o, rax)?;
                    let d = self.target(at, rax);
                    self.a.mov(d, qword_ptr(o + slot_offset(k)))?;
                    self.store(at, d)?;
                }
                Op::StoreSlot(o, k, v) => {
                    let o = self.reg_of(o, rax)?;
                    let v = self.reg_of(v, rcx)?;
                    self.a.mov(qword_ptr(o + slot_offset(k)), v)?;
                }
                Op::LoadLen(o) => {
                    let o = self.reg_of(o, rax)?;
                    self.a.mov(eax, dword_ptr(o + LEN_OFFSET))?;
                    let d = self.target(at, rax);
                    self.a.lea(d, qword_ptr(rax + rax + 1))?;
                    self.store(at, d)?;
                }
                Op::Loop => {
                    let moves = phis.iter().map(|&(phi, init, _)| (self.place(phi), self.place(init))).collect();
                    self.parallel_move(moves)?;
                    self.a.set_label(&mut loop_head)?;
                    // Each arrival at the loop head is one iteration done (the peeled one, then
                    // every back edge), and one unit of fuel.
                    self.a.mov(rax, self.iterations)?;
                    self.a.inc(qword_ptr(rax))?;
                    if let (true, Some(exit)) = (self.fuel != 0, self.fuel_exit) {
                        self.a.mov(rax, self.fuel)?;
                        self.a.dec(qword_ptr(rax))?;
                        let stub = self.stub(Some(exit));
                        self.a.jz(stub)?;
                    }
                }
                Op::New(len, class) => {
                    let f = crate::jit::runtime::new_object as *const () as u64;
                    self.call_helper(at, inst.snap, f, &[Arg::Value(len), Arg::Word(class.raw())])?;
                }
                Op::Call(helper, a, b, c) => {
                    let f = crate::jit::runtime::helper_address(helper);
                    self.call_helper(at, inst.snap, f, &[Arg::Value(a), Arg::Value(b), Arg::Value(c)])?;
                }
                Op::Phi { .. } => {}
                Op::Exit => {
                    let stub = self.stub(inst.snap);
                    self.a.jmp(stub)?;
                }
            }
        }

        if self.trace.loop_start().is_some() {
            // Back edge: all phis take their `next` values at once.
            let moves = phis.iter().map(|&(phi, _, next)| (self.place(phi), self.place(next))).collect();
            self.parallel_move(moves)?;
            self.a.jmp(loop_head)?;
        }

        for (mut label, cmp, answer, stub) in trampolines {
            self.a.set_label(&mut label)?;
            match self.place(cmp) {
                Place::Reg(reg) => self.a.mov(reg, answer.raw())?,
                _ => {
                    self.a.mov(rcx, answer.raw())?;
                    self.a.mov(self.value(cmp), rcx)?;
                }
            }
            self.a.jmp(stub)?;
        }

        // Exit stubs, two instructions each: the snapshot's number, then the common exit. Only
        // for the snapshots something exits by (the optimizer leaves many unused). An exit that
        // writes its own stack into a link tries that first, with the values still in registers.
        let mut common_exit = self.a.create_label();
        for (s, _) in exits_by.iter().enumerate().filter(|(_, &n)| n > 0) {
            let mut label = self.stubs[s];
            self.a.set_label(&mut label)?;
            if let Some((ExitLink { stack: Some(stack), .. }, cell)) = self.links[s] {
                self.link(s, stack, cell)?;
            }
            self.a.mov(eax, s as u32)?;
            self.a.jmp(common_exit)?;
        }
        // The common exit (rax: the snapshot): every register that is some value's home goes to
        // its save word (`CompiledTrace::copy_exit` reads the snapshot's values from those and
        // the value area); then the exit's link, if it has one the side trace compiled later set
        // (`ExitLink` with `stack: None`); else the answer, this trace and the snapshot.
        self.a.set_label(&mut common_exit)?;
        for (k, &reg) in REGS.iter().enumerate() {
            if self.loc.contains(&Home::Reg(k as u8)) {
                self.a.mov(self.value(Ref(self.saved_base + k as u32)), reg)?;
            }
        }
        if self.links.iter().any(|l| matches!(l, Some((ExitLink { stack: None, .. }, _)))) {
            let mut unlinked = self.a.create_label();
            self.a.mov(rcx, self.later_links)?;
            self.a.mov(rcx, qword_ptr(rcx + rax * 8))?;
            self.a.test(rcx, rcx)?;
            self.a.jz(unlinked)?;
            self.a.jmp(rcx)?;
            self.a.set_label(&mut unlinked)?;
        }
        self.a.mov(rcx, (self.trace_id as u64) << 32)?;
        self.a.or(rax, rcx)?;

        self.a.set_label(&mut epilogue)?;
        self.a.add(rsp, 8)?;
        for reg in [r15, r14, r13, r12, rbx, rbp] {
            self.a.pop(reg)?;
        }
        self.a.ret()?;

        let parent_index = match self.parent {
            Some(p) => {
                let index = self.a.instructions().len();
                let mut refused = self.a.create_label();
                self.write_link_stack(&p.stack, refused, &[])?;
                for &(w, v) in &p.words {
                    self.link_value(rcx, v, &[])?;
                    self.a.mov(qword_ptr(r12 + 8 * w as i32), rcx)?;
                }
                self.a.jmp(link_entry)?;
                self.a.set_label(&mut refused)?;
                self.a.mov(rax, (p.trace_id as u64) << 32 | p.exit.0 as u64)?;
                self.a.jmp(epilogue)?;
                Some(index)
            }
            None => None,
        };
        Ok((self.a, link_index, parent_index))
    }

    /// The common part of a link: one unit of fuel, a long enough stack Array (else to
    /// `refused`), then `stack` written into it, a `LinkValue::Word` read from the snapshot
    /// `entries` that give it a value. rax is kept (it holds the link's target).
    fn write_link_stack(
        &mut self,
        stack: &[LinkValue],
        refused: CodeLabel,
        entries: &[(u16, Ref)],
    ) -> Result<(), IcedError> {
        if self.fuel != 0 {
            // A cycle of links is a loop too: it burns fuel like a back edge.
            self.a.mov(rcx, self.fuel)?;
            self.a.cmp(qword_ptr(rcx), 1)?;
            self.a.jbe(refused)?;
            self.a.dec(qword_ptr(rcx))?;
        }
        self.a.mov(rdx, qword_ptr(r12 + 8 * ROOT_STACK_WORD))?;
        self.a.cmp(dword_ptr(rdx + LEN_OFFSET), stack.len() as i32)?;
        self.a.jb(refused)?;
        for (k, &v) in stack.iter().enumerate() {
            self.link_value(rcx, v, entries)?;
            self.a.mov(qword_ptr(rdx + slot_offset(k as u32)), rcx)?;
        }
        Ok(())
    }

    /// `reg` <- a link's value; a `LinkValue::Word` is read from the snapshot `entries` that give
    /// it a value, else from the frame buffer.
    fn link_value(&mut self, reg: AsmRegister64, v: LinkValue, entries: &[(u16, Ref)]) -> Result<(), IcedError> {
        match v {
            LinkValue::Const(c) => self.a.mov(reg, c.raw()),
            LinkValue::At(addr) => {
                self.a.mov(reg, addr)?;
                self.a.mov(reg, qword_ptr(reg))
            }
            LinkValue::Word(w) => match entries.iter().find(|&&(word, _)| word == w) {
                Some(&(_, r)) => self.load(reg, r),
                None => self.a.mov(reg, qword_ptr(r12 + 8 * w as i32)),
            },
        }
    }
}

/// Addresses of the data a trace's code uses in place (see `CompiledTrace`).
struct DataAt {
    forced: u64,
    iterations: u64,
    values: u64,
    entries: u64,
    /// Per snapshot: its link and the address of its link cell.
    link_cells: Vec<Option<u64>>,
    /// The per-snapshot table of links to side traces.
    later_links: u64,
}

/// Assembled code, and the offsets of its link entry and parent entry.
struct Assembled {
    code: Vec<u8>,
    link_entry: u64,
    parent_entry: Option<u64>,
    /// Per snapshot: (frame-buffer word, value-area index of its value at the exit).
    exits: Vec<Vec<(u16, u32)>>,
}

fn assemble(
    trace: &Trace,
    k: Constants,
    ip: u64,
    at: &DataAt,
    o: Options,
    links: &[ExitLink],
    parent: Option<&ParentLink>,
) -> Result<Assembled, BackendError> {
    let mut a = CodeAssembler::new(64)?;
    // Every branch in its rel32 form: `encode_linear` patches displacements, never lengths.
    a.set_prefer_short_branch(false);
    let stubs = (0..trace.snapshots.len()).map(|_| a.create_label()).collect();
    let (fuel, fuel_exit) = (o.fuel, o.fuel_exit.filter(|s| (s.0 as usize) < trace.snapshots.len()));
    let DataAt { forced, iterations, values, entries, later_links, .. } = *at;
    let runtime = o.runtime;
    let loc = regalloc::allocate(trace, fuel_exit.filter(|_| fuel != 0));
    let mut by_snap: Vec<Option<(&ExitLink, u64)>> = vec![None; trace.snapshots.len()];
    for (l, cell) in links.iter().zip(&at.link_cells) {
        if let (Some(slot), Some(cell)) = (by_snap.get_mut(l.snap.0 as usize), cell) {
            *slot = Some((l, *cell));
        }
    }
    let trace_id = o.trace_id;
    let emitter = Emitter {
        a,
        trace,
        loc,
        stubs,
        k,
        forced,
        iterations,
        values,
        fuel,
        fuel_exit,
        runtime,
        entries,
        links: by_snap,
        later_links,
        saved_base: saved_base(trace),
        trace_id,
        parent,
    };
    let exits = exit_cells(trace, &emitter.loc);
    let (a, link_index, parent_index) = emitter.emit()?;
    let (code, starts) = encode_linear(&a, ip)?;
    let offset = |i: usize| starts.get(i).copied().ok_or_else(|| BackendError::Asm("entry past the code".into()));
    Ok(Assembled { code, link_entry: offset(link_index)?, parent_entry: parent_index.map(offset).transpose()?, exits })
}

/// Where the value area keeps the registers the common exit saves: after one word per
/// instruction and one spare.
fn saved_base(trace: &Trace) -> u32 {
    trace.insts.len() as u32 + 1
}

/// Per snapshot, where each of its values is when the trace has left by it: a register's save
/// word (the common exit stores them) or the value's own word (spilled values, constants).
fn exit_cells(trace: &Trace, loc: &[Home]) -> Vec<Vec<(u16, u32)>> {
    let base = saved_base(trace);
    let cell = |v: Ref| match loc.get(v.0 as usize) {
        Some(&Home::Reg(k)) => base + k as u32,
        _ => v.0,
    };
    trace.snapshots.iter().map(|s| s.entries.iter().map(|&(w, v)| (w, cell(v))).collect()).collect()
}

/// Encodes the assembled instructions in one pass, every branch to a label in its rel32 form,
/// then patches the branch displacements. iced's `BlockEncoder` (behind `CodeAssembler::assemble`)
/// shortens branches over several passes and cost more than the encoding itself; a trace's code
/// is short-lived and compile time is what the JIT pays on every program.
fn encode_linear(a: &CodeAssembler, ip: u64) -> Result<(Vec<u8>, Vec<u64>), BackendError> {
    use iced_x86::{Encoder, OpKind};
    let mut encoder = Encoder::new(64);
    let mut labels: hashbrown::HashMap<u64, u64> = hashbrown::HashMap::new();
    let mut fixups: Vec<(usize, u64)> = Vec::new();
    let mut starts = Vec::with_capacity(a.instructions().len());
    let mut pos = 0u64;
    for instr in a.instructions() {
        starts.push(pos);
        if instr.ip() != 0 {
            labels.insert(instr.ip(), pos);
        }
        if instr.op0_kind() == OpKind::NearBranch64 {
            // Encoded as a branch to itself; the displacement is patched below.
            let mut instr = *instr;
            let target = instr.near_branch64();
            instr.set_near_branch64(ip + pos);
            let len = encoder.encode(&instr, ip + pos)?;
            pos += len as u64;
            fixups.push((pos as usize, target));
            let code = encoder.take_buffer();
            let rel = code.len().checked_sub(4).map(|at| i32::from_le_bytes(code[at..].try_into().unwrap_or([0; 4])));
            if len < 5 || rel != Some(-(len as i32)) {
                return Err(BackendError::Asm(format!("{:?} has no rel32 form", instr.code())));
            }
            encoder.set_buffer(code);
        } else {
            pos += encoder.encode(instr, ip + pos)? as u64;
        }
    }
    let mut code = encoder.take_buffer();
    for (end, label) in fixups {
        let target = *labels.get(&label).ok_or_else(|| BackendError::Asm("a branch to a label never placed".into()))?;
        let rel =
            i32::try_from(target as i64 - end as i64).map_err(|_| BackendError::Asm("branch out of range".into()))?;
        code[end - 4..end].copy_from_slice(&rel.to_le_bytes());
    }
    Ok((code, starts))
}

/// Builds iced-x86's encoder tables on another thread. iced builds them lazily, on the first
/// instruction assembled, and that takes about 0.3 ms: paid by the first trace compiled, it made
/// short programs slower with the JIT than without. Called at the first back edge a VM with the
/// JIT on takes (in a program's file-in that is usually long before a loop is hot), so the
/// tables are ready by then, and a run without loops does not pay for the thread; once per
/// process.
pub fn prepare_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let build = || {
            let mut a = CodeAssembler::new(64).ok()?;
            a.sub(rax, 1).ok()?;
            a.assemble(0).ok()
        };
        // Without the thread the first compilation builds the tables itself: nothing is lost.
        let _ = std::thread::Builder::new().name("tracevm-iced-tables".into()).spawn(build);
    });
}

/// Verifies and compiles a trace.
pub fn compile(trace: &Trace, k: Constants) -> Result<CompiledTrace, BackendError> {
    compile_with(trace, k, Options::default())
}

/// Verifies and compiles a trace with `options`.
pub fn compile_with(trace: &Trace, k: Constants, options: Options) -> Result<CompiledTrace, BackendError> {
    compile_linked(trace, k, options, &[], None)
}

/// Verifies and compiles a trace with `options` whose exits `links` may continue in other
/// traces (`CompiledTrace::set_link`), and that its parent's exit may continue in (`parent`).
pub fn compile_linked(
    trace: &Trace,
    k: Constants,
    options: Options,
    links: &[ExitLink],
    parent: Option<&ParentLink>,
) -> Result<CompiledTrace, BackendError> {
    trace.verify()?;
    let exit_points = trace.insts.iter().filter(|i| i.op.may_exit()).count();
    let mut forced: Box<[u8]> = vec![0u8; if options.force_exits { exit_points.max(1) } else { 0 }].into_boxed_slice();
    // Written only by the compiled code from here on; Rust never reads it.
    let forced_at = if options.force_exits { forced.as_mut_ptr() as u64 } else { 0 };
    // The code does not depend on its address: every branch is relative to a label inside it and
    // every address it uses (objects, counters) is an absolute immediate. So it is assembled once,
    // at address 0, and copied into place (debug builds check that by assembling again there).
    let iterations = Box::new(std::cell::Cell::new(0u64));
    let iterations_at = iterations.as_ptr() as u64;
    // Constants have no code: exits read them from here.
    let values: Box<[std::cell::Cell<u64>]> = trace
        .insts
        .iter()
        .map(|i| std::cell::Cell::new(if let Op::Const(v) = i.op { v.raw() } else { 0 }))
        .chain(std::iter::once(Default::default()))
        .chain(REGS.iter().map(|_| Default::default()))
        .collect();
    let values_at = values.as_ptr() as u64;
    let entries = Box::new(std::cell::Cell::new(0u64));
    let link_cells: Box<[std::cell::Cell<u64>]> = links.iter().map(|_| std::cell::Cell::new(0)).collect();
    let later_links: Box<[std::cell::Cell<u64>]> = trace.snapshots.iter().map(|_| std::cell::Cell::new(0)).collect();
    let mut link_of = vec![None; trace.snapshots.len()];
    for (i, l) in links.iter().enumerate() {
        if let Some(slot) = link_of.get_mut(l.snap.0 as usize) {
            *slot = Some((i as u16, l.stack.is_some()));
        }
    }
    let at = DataAt {
        forced: forced_at,
        iterations: iterations_at,
        values: values_at,
        entries: entries.as_ptr() as u64,
        link_cells: link_cells.iter().map(|c| Some(c.as_ptr() as u64)).collect(),
        later_links: later_links.as_ptr() as u64,
    };
    let assembled = assemble(trace, k, 0, &at, options, links, parent)?;
    let region = CodeMemory::reserve(assembled.code.len())?;
    debug_assert_eq!(
        assemble(trace, k, region.base(), &at, options, links, parent)?.code,
        assembled.code,
        "trace code must not depend on its address"
    );
    let link_entry = region.base() + assembled.link_entry;
    let parent_entry = assembled.parent_entry.map(|o| region.base() + o);
    let code = region.seal(&assembled.code)?;
    tracing::debug!(target: "tracevm::jit", bytes = code.bytes().len(), "trace compiled");
    let exits = assembled.exits;
    Ok(CompiledTrace {
        code,
        slots: trace.slots,
        values,
        exits,
        _forced: forced,
        iterations,
        entries,
        link_cells,
        later_links,
        link_of,
        link_entry,
        parent_entry,
        id: options.trace_id,
    })
}
