//! The trace-recording JIT (DESIGN.md): hot-loop detection, recording, optimisation, x86-64
//! code, entering traces and deoptimising out of them.
//!
//! Owns the JIT's state in the VM (`Jit`: options, compiled traces, the recording in progress,
//! statistics) and the decisions the interpreter delegates at a loop's back edge (`Vm::loop_edge`):
//! count, record, or enter a trace — and from there follow side traces attached to hot exits back
//! into their loop trace, or an inner loop's trace where a trace ends at its header
//! (`Vm::enter_trace`), and which exits continue into which traces in machine code
//! (`Vm::link_exits`; a side trace that inherits its parent's exit state is entered only that
//! way). Must never enter a trace whose assumptions may have changed:
//! every lookup-affecting store flushes the caches, and that drops every trace
//! (`Vm::invalidate_traces`).

pub mod compile;
pub mod deopt;
pub mod ir;
pub mod opt;
pub mod recorder;
pub mod runtime;
pub mod x64;

use crate::heap::{Collection, Value};
use crate::interp::Vm;
use deopt::ExitState;
use ir::{Booleans, Op, Trace};
use recorder::{method_name, Recorder, Recording, Step};
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

/// Default `--jit-threshold`: back edges of one loop before it is recorded (LuaJIT uses 56).
pub const DEFAULT_THRESHOLD: u32 = 50;
/// Each aborted recording of a loop doubles the back edges before the next attempt, up to
/// 2^MAX_BACKOFF times the threshold: a loop that cannot be traced costs one recorded iteration
/// per `threshold << MAX_BACKOFF` iterations (about 0.1% of its time).
pub const MAX_BACKOFF: u8 = 10;

/// A loop in its first run waits up to 2^MAX_FIRST_RUN_SHIFT times the threshold, while loop
/// traces compiled in their loop's first run keep failing to pay off (`Jit::first_run_shift`).
pub const MAX_FIRST_RUN_SHIFT: u8 = 2;
/// Iterations (and entries) after which an invalidated loop trace counts as having paid for
/// its compiling (about 0.1 ms, a few hundred interpreted iterations of a small loop), so
/// that the invalidation does not back its loop off (`Vm::invalidate_traces`).
pub const PAID_OFF_ITERATIONS: u64 = 1000;
/// Entry keys (each with its own counter, back-off and trace) kept for one loop header.
pub const MAX_TRACES_PER_LOOP: usize = 16;
/// Laps of a loop trace's tree per retirement check (see `Vm::count_tree_run`): a loop trace
/// that no longer fits what its loop does (e.g. its sum became a LargePositive) is retired.
pub const RETIRE_AFTER_ENTRIES: u64 = 64;

#[derive(Clone, Copy, Debug)]
pub struct JitOptions {
    pub enabled: bool,
    pub threshold: u32,
    pub force_exits: bool,
    /// Side traces from exits inside inlined frames, or with virtual objects in their state,
    /// inherit the parent's exit state and are entered from it in machine code
    /// (`Recorder::start_inherited`). Off: they start from the contexts the exit materialised,
    /// entered through the VM (the older way, kept for tests).
    pub inherit_exits: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions { enabled: true, threshold: DEFAULT_THRESHOLD, force_exits: false, inherit_exits: true }
    }
}

/// Per loop header (kept in the method's `MethodData`): one `KeyState` per entry key seen
/// there (see `Vm::entry_key`; `to:do:` runs many blocks through one header).
#[derive(Clone, Debug, Default)]
pub struct LoopSlot {
    pub ip: u32,
    pub keys: SmallVec<[KeyState; 2]>,
}

/// Hotness, back-off and trace of one (loop header, entry key).
#[derive(Clone, Debug, Default)]
pub struct KeyState {
    pub key: u64,
    pub counter: u32,
    pub aborts: u8,
    pub trace: Option<u32>,
    /// A trace of this key left by a `GuardNe`: record the next one without them.
    pub no_alias_guards: bool,
    /// The last recording ended with the loop and was given one more try (`Vm::note_abort`).
    pub retried: bool,
    /// Runs of the loop seen so far, up to 2 (see `Vm::loop_edge`).
    pub runs: u8,
}

impl KeyState {
    /// Back edges before the next recording: the threshold, doubled for each abort so far and,
    /// in the loop's first run, `first_run_shift` more times.
    fn needed(&self, threshold: u32, first_run_shift: u8) -> u32 {
        let first_run = if self.runs < 2 { first_run_shift } else { 0 };
        threshold.saturating_mul(1 << (self.aborts.min(MAX_BACKOFF) + first_run))
    }
}

impl LoopSlot {
    /// The state for `key`. When all `MAX_TRACES_PER_LOOP` are taken, a new key replaces the
    /// coldest key without a trace (`to:do:` sees the blocks of a whole program, most of them
    /// run a few times); when every key has a trace, the last one stands for all others.
    fn key_state(&mut self, key: u64) -> &mut KeyState {
        let i = match self.keys.iter().position(|k| k.key == key) {
            Some(i) => i,
            None if self.keys.len() < MAX_TRACES_PER_LOOP => {
                self.keys.push(KeyState { key, ..KeyState::default() });
                self.keys.len() - 1
            }
            None => {
                let coldest =
                    self.keys.iter().enumerate().filter(|(_, k)| k.trace.is_none()).min_by_key(|(_, k)| k.counter);
                match coldest {
                    Some((i, _)) => {
                        self.keys[i] = KeyState { key, ..KeyState::default() };
                        i
                    }
                    None => self.keys.len() - 1,
                }
            }
        };
        &mut self.keys[i]
    }
}

/// A compiled trace and what the VM needs to enter and leave it.
pub struct TraceEntry {
    pub id: u32,
    pub start: String,
    pub code: Option<x64::CompiledTrace>,
    pub exits: Vec<ExitState>,
    /// What entering requires of each real frame (outermost first), and how many arguments and
    /// temporaries of each the trace reads unchecked.
    pub entry: Vec<recorder::EntryFrame>,
    pub needs: Vec<(usize, usize)>,
    /// For a side trace: (parent trace, the parent's exit it continues from).
    pub parent: Option<(u32, u32)>,
    /// It inherits its parent's exit state (`Recording::inherited`): entered by the parent's
    /// link only, never from the VM.
    pub inherits: bool,
    /// For a side trace: its last exit, back at the loop header.
    pub end_exit: Option<usize>,
    /// For a side trace that ends at another loop's back edge: that last exit, which the
    /// interpreter continues from (a side trace of it would start at the backward jump).
    pub link_exit: Option<usize>,
    /// A side trace's last exit at a return out of the loop's frame (see `Step::Returns`).
    pub return_exit: Option<usize>,
    /// For a root trace without a loop of its own: its last exit, at the header of an inner loop
    /// whose trace the VM enters next (see `recorder::Step::EntersLoop`).
    pub enter_exit: Option<usize>,
    /// The loop trace at the root of its tree (itself for a loop trace), and how many side
    /// traces lie between the two.
    pub root: u32,
    pub depth: u8,
    /// The ip of the loop's back edge in its method (for telling which exits end the loop).
    pub loop_end: usize,
    /// Per snapshot: it is below the loop's frame (see `Recording::below_loop`), so leaving by
    /// it gets no side trace.
    pub below_loop: Vec<bool>,
    /// For a tail that went on into the next outer iteration: its first snapshot there
    /// (`Recording::crossed_at`), and how often it left by one of that iteration's guards.
    pub crossed_at: Option<usize>,
    pub crossed_exits: u64,
    /// Per exit: its tail must not go on into the next outer iteration (one did, and guessed
    /// wrong too often: `Vm::judge_crossing`).
    pub no_crossing: Vec<bool>,
    /// Per exit: its tail was abandoned as too short (`recorder::ABORT_SHORT_TAIL`).
    pub short_tails: Vec<bool>,
    /// For a loop trace: the side trace attached to each exit, and aborted attempts to record one.
    pub side: Vec<Option<u32>>,
    pub side_aborts: Vec<u8>,
    /// Objects the trace embeds: the collector keeps them alive.
    pub constants: Vec<Value>,
    /// The (class, selector) lookups it folded (see `Vm::invalidate_traces`).
    pub lookups: Vec<(Value, Value)>,
    pub exit_counts: Vec<u64>,
    /// Entries from the VM (`entries()` also counts links).
    pub vm_entries: u64,
    /// Per snapshot: leaving by it ends the loop (see `Recording::loop_exits`).
    pub loop_exits: Vec<bool>,
    /// Per snapshot: it is a `GuardNe`'s (two objects the trace assumed distinct).
    pub alias_exits: Vec<bool>,
    /// Entries in the current window of `RETIRE_AFTER_ENTRIES`, and how many of them left
    /// before one iteration by an exit that does not end the loop.
    window_entries: u64,
    window_misses: u64,
    /// Runs in the window in which the loop trace itself completed an iteration.
    window_own: u64,
    /// Iterations its code ran, once the code is dropped (for `--stats`).
    iterations_when_dropped: u64,
    /// Entries its code counted (from the VM and by links), once the code is dropped.
    entries_when_dropped: u64,
    /// Its exits linked to other traces: (snapshot, target trace).
    links: Vec<(u32, u32)>,
    /// For a loop trace: the arguments and temporaries of the loop's frame that any trace of
    /// its tree reads unchecked. Entering any of them checks all of these, so that links
    /// between them need no checks (see `Vm::link_exits`).
    tree_needs: (usize, usize),
}

impl TraceEntry {
    /// Iterations its code has run (see `x64::CompiledTrace::iterations`).
    pub fn iterations(&self) -> u64 {
        self.code.as_ref().map_or(self.iterations_when_dropped, |c| c.iterations())
    }

    /// Times its code was entered, by the VM or by a link from another trace.
    pub fn entries(&self) -> u64 {
        self.code.as_ref().map_or(self.entries_when_dropped, |c| c.entries())
    }

    /// The trace is never entered again (the caller unlinks the exits that led to it:
    /// `Vm::unlink_dropped`). What only a live trace needs (its exit states, the objects and
    /// lookups it depends on) goes with its code, so that a program whose traces keep being
    /// invalidated does not grow by every trace it ever compiled; what `--stats` reports stays.
    fn drop_code(&mut self) {
        if let Some(c) = self.code.take() {
            self.iterations_when_dropped = c.iterations();
            self.entries_when_dropped = c.entries();
        }
        self.exits = Vec::new();
        self.constants = Vec::new();
        self.lookups = Vec::new();
        self.links = Vec::new();
    }
}

#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub traces_compiled: u64,
    pub aborts: BTreeMap<String, u64>,
    pub invalidations: u64,
    pub record_ns: u64,
    pub optimize_ns: u64,
    pub assemble_ns: u64,
    pub trace_entries: u64,
    /// Entries from the VM into an inner loop's trace, right after a trace left at its header.
    pub inner_loop_entries: u64,
    pub exits: u64,
}

/// The JIT's state in the VM.
pub struct Jit {
    pub options: JitOptions,
    pub traces: Vec<TraceEntry>,
    pub(crate) recorder: Option<Box<Recorder>>,
    recording_since: Option<Instant>,
    /// The interpreter's `plain` setting while a recording runs (recording forces plain).
    saved_plain: bool,
    /// Set by a collection during recording: the recording is abandoned at the next bytecode.
    pub(crate) abort_pending: Option<&'static str>,
    pub stats: JitStats,
    /// `--dump-traces`: where each trace (and each abort) is described.
    pub dump: Option<Box<dyn Write>>,
    buffer: Vec<u64>,
    /// State of the generator behind `Jit::jitter` (xorshift; fixed seed, so runs repeat).
    jitter_state: u64,
    /// The last back edge taken: (context, method data, header). Another one starts a run.
    last_edge: (u64, usize, usize),
    /// How much longer than the threshold a loop's first run waits for a recording (see
    /// `KeyState::needed`). A trace compiled in its loop's first run pays for its compiling
    /// only if the run goes on long enough; a program of many loops each run once, a few
    /// dozen iterations past the threshold, was 1.8 times slower with the JIT. Each such trace
    /// that has not paid off by the next first-run recording raises this, up to
    /// `MAX_FIRST_RUN_SHIFT`; one that has paid off resets it. Programs whose loops run long
    /// (or many times) keep recording at the threshold.
    first_run_shift: u8,
    /// The last loop trace compiled in its loop's first run, not yet judged.
    unjudged_first_run: Option<u32>,
    /// The most frame-buffer words any trace uses: a run may go through several by links.
    max_slots: usize,
    /// Back edges compiled code may still take (see `x64::Options::fuel`); refilled at entry.
    fuel: Box<std::cell::Cell<u64>>,
    /// What compiled code's helper calls reach (the heap, while a trace runs).
    runtime: Box<runtime::Runtime>,
}

/// Why a loop trace stops being entered (`Vm::retire_trace`).
#[derive(Clone, Copy)]
enum Retire {
    /// It left before one iteration in most of its recent entries.
    LeftEarly,
    /// A `GuardNe` failed: two objects it assumed distinct were the same.
    AliasGuardFailed,
}

/// Snapshot 0 of every trace: the state at its loop header.
pub const HEADER_SNAPSHOT: ir::SnapId = ir::SnapId(0);

impl Default for Jit {
    fn default() -> Self {
        Jit {
            options: JitOptions::default(),
            traces: Vec::new(),
            recorder: None,
            recording_since: None,
            saved_plain: false,
            abort_pending: None,
            stats: JitStats::default(),
            dump: None,
            buffer: Vec::new(),
            max_slots: 0,
            jitter_state: 0x9e37_79b9_7f4a_7c15,
            last_edge: (0, 0, 0),
            first_run_shift: 0,
            unjudged_first_run: None,
            fuel: Box::new(std::cell::Cell::new(u64::MAX)),
            runtime: Box::default(),
        }
    }
}

impl Jit {
    /// A count of back edges, 0–15, to start a backed-off loop's counter at (LuaJIT adds such
    /// random bits to its penalties). The attempts after aborts otherwise fall at multiples of
    /// the threshold, and a loop whose path alternates with a period dividing them (a branch
    /// on `i \\ 2`) was recorded on the same untraceable path every time and never traced.
    fn jitter(&mut self) -> u32 {
        let mut x = self.jitter_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter_state = x;
        (x >> 60) as u32
    }

    /// Judges the last loop trace compiled in its loop's first run, if not yet done: whether it
    /// paid for its compiling sets how long first runs wait (`Jit::first_run_shift`). Answers
    /// whether there was one.
    fn judge_first_run_trace(&mut self) -> bool {
        let Some(t) = self.unjudged_first_run.take() else { return false };
        let t = &self.traces[t as usize];
        self.first_run_shift = if t.iterations() + t.entries() < PAID_OFF_ITERATIONS {
            (self.first_run_shift + 1).min(MAX_FIRST_RUN_SHIFT)
        } else {
            0
        };
        true
    }

    pub fn recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Marks every object a live trace embeds.
    pub(crate) fn mark(&self, gc: &mut Collection<'_>) {
        for t in self.traces.iter().filter(|t| t.code.is_some()) {
            for &c in &t.constants {
                gc.mark(c);
            }
        }
    }

    /// Statistics as text, for `--stats`.
    /// Contexts compiled code has freed (see `ir::Helper::FreeContext`).
    pub fn freed_contexts(&self) -> u64 {
        self.runtime.freed_contexts()
    }

    pub fn report(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "jit: {} traces compiled, {} invalidated; {} trace entries from the VM ({} at inner loop headers), {} by links; {} exits\n\
             jit: time recording {:.1} ms, optimising {:.1} ms, assembling {:.1} ms\n\
             jit: {} contexts freed by compiled code (side traces returning from materialised frames)\n",
            s.traces_compiled,
            s.invalidations,
            s.trace_entries,
            s.inner_loop_entries,
            self.traces.iter().map(|t| t.entries().saturating_sub(t.vm_entries)).sum::<u64>(),
            s.exits,
            s.record_ns as f64 / 1e6,
            s.optimize_ns as f64 / 1e6,
            s.assemble_ns as f64 / 1e6,
            self.freed_contexts(),
        );
        for (why, n) in &s.aborts {
            out.push_str(&format!("jit: {n} aborted: {why}\n"));
        }
        for t in &self.traces {
            let exits: u64 = t.exit_counts.iter().sum();
            let iterations = t.iterations();
            let by_snapshot: Vec<String> =
                t.exit_counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(s, n)| format!("s{s}×{n}")).collect();
            out.push_str(&format!(
                "jit: trace {} {}: {} entries, {} iterations, {} exits ({}){}{}{}\n",
                t.id,
                t.start,
                t.entries(),
                iterations,
                exits,
                by_snapshot.join(" "),
                match t.entries().saturating_sub(t.vm_entries) {
                    0 => String::new(),
                    n => format!(", {n} entries by links"),
                },
                match t.enter_exit {
                    Some(e) => format!(", no loop of its own: s{e} enters an inner loop's trace"),
                    None => String::new(),
                },
                if t.code.is_none() { " (invalidated)" } else { "" }
            ));
        }
        out
    }
}

/// Why a tail was dropped to be recorded again (`Vm::judge_crossing`).
pub const RETIRED_WRONG_GUESS: &str = "retired: a tail guessed the next outer iteration wrong";

/// Exits of a loop trace taken this often get a side trace.
pub const SIDE_THRESHOLD: u64 = 10;
/// Aborted attempts to record a side trace for one exit before it is left to the interpreter.
pub const MAX_SIDE_ABORTS: u8 = 3;
/// Side traces of side traces nest at most this deep (a send site seeing many classes makes a
/// chain of them, one class each).
pub const MAX_SIDE_DEPTH: u8 = 8;

/// What a loop header has (`Vm::traced_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traced {
    No,
    Loop,
    IntoInnerLoop,
}

/// What entering a trace came to.
enum Entered {
    /// Its entry conditions did not hold.
    No,
    /// It ran (and whatever it linked to); the interpreter continues where it left.
    Ran,
    /// It ran and left by a hot exit without a side trace: record one from here.
    RecordSide(u32, u32),
}

/// How a run of compiled code ended (`Vm::run_trace`).
struct Run {
    /// The trace that left (the one entered, or one it linked to), and its exit.
    left: u32,
    exit: usize,
    /// Loop-head arrivals and links: fuel spent.
    done: u64,
    /// The tree's loop trace completed an iteration itself.
    root_done: bool,
}

/// What the interpreter does after a back edge.
pub(crate) enum Edge {
    Continue,
    /// Switch to the recording dispatch loop.
    Record,
}

impl Vm {
    /// A backward jump has just set ip to `header`: count, enter a trace, or start recording.
    pub(crate) fn loop_edge(&mut self, header: usize) -> Edge {
        if self.jit.recorder.is_some() {
            return Edge::Continue;
        }
        // The first loop: a trace may follow soon. Programs without loops never pay for it.
        x64::prepare_in_background();
        let data = self.regs.data;
        let key = self.entry_key();
        let loops = &mut self.method_data[data].loops;
        let at = match loops.iter().position(|l| l.ip == header as u32) {
            Some(i) => i,
            None => {
                loops.push(LoopSlot { ip: header as u32, ..LoopSlot::default() });
                loops.len() - 1
            }
        };
        let state = loops[at].key_state(key);
        if let (Some(tid), true) = (state.trace, state.key == key) {
            match self.enter_trace(tid) {
                Entered::No => {}
                Entered::Ran => return Edge::Continue,
                Entered::RecordSide(parent, exit) => return self.start_side_recording(parent, exit),
            }
        }
        let here = (self.regs.ctx.raw(), data, header);
        let new_run = self.jit.last_edge != here;
        self.jit.last_edge = here;
        let state = self.method_data[data].loops[at].key_state(key);
        if state.trace.is_some() {
            return Edge::Continue;
        }
        let threshold = self.jit.options.threshold;
        if new_run && state.runs < 2 {
            state.runs += 1;
            if state.runs == 2 && state.counter >= threshold {
                // Held back in its first run. Not at once: the first back edges of a run are
                // not its typical iteration.
                state.counter = threshold / 2;
            }
        }
        state.counter += 1;
        if state.counter < state.needed(threshold, self.jit.first_run_shift) {
            return Edge::Continue;
        }
        if state.runs < 2 && self.jit.judge_first_run_trace() {
            // Its wait may have changed.
            let state = self.method_data[data].loops[at].key_state(key);
            if state.counter < state.needed(threshold, self.jit.first_run_shift) {
                return Edge::Continue;
            }
        }
        self.method_data[data].loops[at].key_state(key).counter = 0;
        match Recorder::start(self, self.jit.dump.is_some()) {
            Ok(mut rec) => {
                rec.key = key;
                self.begin_recording(rec)
            }
            Err(why) => {
                let method = self.regs.method;
                self.note_abort(method, header, key, &why);
                Edge::Continue
            }
        }
    }

    /// The loop trace to enter at the current ip, when it is the header of a loop that has one
    /// for the running context's entry key. Only traces that loop: a trace that itself ends by
    /// entering another loop is never entered this way, so entering never chains without a
    /// loop's iteration (and its fuel) in between.
    pub(crate) fn loop_trace_here(&self) -> Option<u32> {
        self.loop_trace_at(self.regs.ip)
    }

    /// `loop_trace_here` for the loop whose header is `header` in the running method.
    fn loop_trace_at(&self, header: usize) -> Option<u32> {
        let tid = self.trace_at(header)?;
        (self.jit.traces[tid as usize].enter_exit.is_none()).then_some(tid)
    }

    /// The live root trace of the loop whose header is `header` in the running method, for the
    /// running context's entry key: a loop trace, or one that ends at an inner loop's header.
    fn trace_at(&self, header: usize) -> Option<u32> {
        let slot = self.method_data.get(self.regs.data)?.loops.iter().find(|l| l.ip == header as u32)?;
        let key = self.entry_key();
        let tid = slot.keys.iter().find(|k| k.key == key)?.trace?;
        let t = self.jit.traces.get(tid as usize)?;
        (t.code.is_some() && t.parent.is_none()).then_some(tid)
    }

    /// What the loop at `header` in the running context (about to jump back to it) has for this
    /// context's entry key: no trace, a loop trace, or a trace that ends at an inner loop's
    /// header (its recorded iteration ran into an inner loop).
    pub(crate) fn traced_at(&self, header: usize) -> Traced {
        match self.trace_at(header) {
            None => Traced::No,
            Some(t) if self.jit.traces[t as usize].enter_exit.is_none() => Traced::Loop,
            Some(_) => Traced::IntoInnerLoop,
        }
    }

    /// Hands the dispatch loop to `rec`.
    fn begin_recording(&mut self, rec: Recorder) -> Edge {
        self.jit.recorder = Some(Box::new(rec));
        self.jit.recording_since = Some(Instant::now());
        self.jit.saved_plain = self.plain;
        self.jit.abort_pending = None;
        // Every send a real activation, so that every bytecode passes `observe`.
        self.plain = true;
        Edge::Record
    }

    /// Starts recording a side trace from exit `exit` of trace `parent`, just deoptimised.
    fn start_side_recording(&mut self, parent: u32, exit: u32) -> Edge {
        let t = &self.jit.traces[parent as usize];
        // The exit's tree may have just been retired (`count_tree_run`): nothing to attach to.
        let Some(state) = t.exits.get(exit as usize).filter(|_| t.code.is_some()) else { return Edge::Continue };
        let frames = state.frames.len();
        let root = &self.jit.traces[t.root as usize];
        let header = root.exits.first().and_then(|s| s.frames.first()).map(|f| f.ip as usize).unwrap_or(0);
        let loop_end = root.loop_end;
        let dump = self.jit.dump.is_some();
        // A one-frame exit without virtual objects is linked to a plain side trace by copying
        // its stack (`parent_link`); otherwise only an inheriting side trace can be linked.
        let virtuals = !state.objects.is_empty();
        let tail = t.loop_exits.get(exit as usize).copied().unwrap_or(false);
        let started = if (frames > 1 || virtuals) && self.jit.options.inherit_exits && inheritable(t, exit) {
            Recorder::start_inherited(self, state, header, loop_end, (parent, exit), dump)
        } else {
            Recorder::start_side(self, frames, header, loop_end, (parent, exit), dump)
        };
        match started {
            Ok(mut rec) => {
                rec.tail = tail;
                rec.may_cross = !t.no_crossing.get(exit as usize).copied().unwrap_or(false);
                self.begin_recording(rec)
            }
            Err(why) => {
                self.note_side_abort(parent, exit, &why);
                Edge::Continue
            }
        }
    }

    /// What distinguishes runs of one loop header that want different traces: the blocks the
    /// active context was given (their method, body and home receiver's class; `to:do:`, `do:`
    /// and friends run one header for many blocks) and the classes of its other arguments.
    fn entry_key(&self) -> u64 {
        let args = self.regs.args;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |x: u64| {
            h ^= x;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        for i in 0..args.len().min(8) {
            let v = args.get(i).unwrap_or(self.k.nil);
            let cls = self.class_of(v);
            mix(cls.raw());
            if cls == self.k.block && v.len() >= crate::interp::ctx::BLOCK_SIZE {
                mix(v.slot(crate::interp::ctx::METHOD).raw());
                mix(v.slot(crate::interp::ctx::OLD_BYTE_POINTER).raw());
                // The block's body is specialised on its home receiver's class too (`do:` runs
                // one block for Arrays, Strings and ByteArrays).
                let home_args = v.slot(crate::interp::ctx::ARGUMENTS);
                if home_args.is_pointers() && !home_args.is_empty() {
                    mix(self.class_of(home_args.slot(0)).raw());
                }
            }
        }
        h
    }

    /// Called before each bytecode while recording. True when recording has ended (the trace is
    /// installed or abandoned) and the plain dispatch loop should take over.
    pub(crate) fn record_step(&mut self) -> bool {
        let Some(mut rec) = self.jit.recorder.take() else { return true };
        let outcome = match self.jit.abort_pending.take() {
            Some(why) => Err(why.to_string()),
            None => rec.observe(self),
        };
        match outcome {
            Ok(Step::Continue) => {
                self.jit.recorder = Some(rec);
                false
            }
            Ok(end) => {
                self.end_recording();
                if !rec.pays_off(&end) {
                    self.note_recording_abort(&rec, recorder::ABORT_SHORT_TAIL);
                    return true;
                }
                let closed = match end {
                    Step::Linked => rec.close_link(),
                    Step::Returns => rec.close_returning(),
                    Step::EntersLoop => rec.close_entering(),
                    Step::Closed | Step::Continue => rec.close_side(),
                };
                match closed {
                    Ok(()) => self.install(rec.finish()),
                    Err(why) => self.note_recording_abort(&rec, &why),
                }
                true
            }
            Err(why) => {
                self.end_recording();
                self.note_recording_abort(&rec, &why);
                true
            }
        }
    }

    /// Abandons a recording in progress (an error, a process switch, a nested run).
    pub(crate) fn abort_recording(&mut self, why: &str) {
        if let Some(rec) = self.jit.recorder.take() {
            self.end_recording();
            self.note_recording_abort(&rec, why);
        }
    }

    /// Charges an abandoned recording to its loop (key) or, for a side trace, to its exit.
    fn note_recording_abort(&mut self, rec: &Recorder, why: &str) {
        match rec.start.parent {
            Some((parent, exit)) => self.note_side_abort(parent, exit, why),
            None => self.note_abort(rec.start.method, rec.start.header, rec.key, why),
        }
    }

    fn note_side_abort(&mut self, parent: u32, exit: u32, why: &str) {
        let t = &mut self.jit.traces[parent as usize];
        t.side_aborts[exit as usize] = if why == recorder::ABORT_SHORT_TAIL {
            // The code after a loop is the same next time: no second try (unless an outer
            // loop's trace shows where it goes on, `retry_short_tails`).
            t.short_tails[exit as usize] = true;
            MAX_SIDE_ABORTS
        } else {
            t.side_aborts[exit as usize].saturating_add(1)
        };
        *self.jit.stats.aborts.entry(format!("side trace: {why}")).or_default() += 1;
        let line = format!("---- abort: side trace of trace {parent} exit s{exit}: {why}\n");
        self.dump_line(&line);
    }

    fn dump_line(&mut self, line: &str) {
        if let Some(d) = self.jit.dump.as_mut() {
            let _ = d.write_all(line.as_bytes());
        }
    }

    fn end_recording(&mut self) {
        self.plain = self.jit.saved_plain;
        if let Some(t0) = self.jit.recording_since.take() {
            self.jit.stats.record_ns += t0.elapsed().as_nanos() as u64;
        }
    }

    fn note_abort(&mut self, method: Value, header: usize, key: u64, why: &str) {
        *self.jit.stats.aborts.entry(why.to_string()).or_default() += 1;
        tracing::debug!(target: "tracevm::jit", "abort at {} @{header}: {why}", method_name(self, method));
        if self.jit.dump.is_some() {
            let line = format!("---- abort: {} @ {header}: {why}\n", method_name(self, method));
            self.dump_line(&line);
        }
        let loop_ended = why == recorder::ABORT_LOOP_RETURNED || why == recorder::ABORT_LOOP_RETURNED_NON_LOCALLY;
        let (threshold, shift) = (self.jit.options.threshold, self.jit.first_run_shift);
        let jitter = self.jit.jitter();
        if let Some(data) = self.data_of(method) {
            if let Some(slot) = self.method_data[data].loops.iter_mut().find(|l| l.ip == header as u32) {
                let state = slot.key_state(key);
                if loop_ended && !state.retried {
                    // The back edge that started it was the loop's last: not the loop's fault.
                    // Backing off here would double the count to the next attempt, and a loop
                    // run many times with a trip count dividing the threshold (`1 to: 50 do:`)
                    // would end at every attempt and never be traced. Retry at the next back
                    // edge (the next run of the loop), once.
                    state.retried = true;
                    state.counter = state.needed(threshold, shift).saturating_sub(1);
                    return;
                }
                state.retried = false;
                state.aborts = state.aborts.saturating_add(1);
                state.counter = jitter;
            }
        }
    }

    /// Optimises, assembles and installs a finished recording.
    fn install(&mut self, rec: Recording) {
        if let Some(job) = self.compile_job(rec) {
            self.finish_install(compile::compile(job));
        }
    }

    /// What compiling `rec` needs from the VM; None when it cannot become a trace.
    fn compile_job(&mut self, rec: Recording) -> Option<compile::Job> {
        let booleans = Booleans { true_: self.k.true_, false_: self.k.false_ };
        // Side traces run once per exit, so they go without alias guards; loops have them until
        // one fails.
        let alias_guards = rec.start.parent.is_none()
            && self.data_of(rec.start.method).is_some_and(|data| {
                let loops = &self.method_data[data].loops;
                let slot = loops.iter().find(|l| l.ip == rec.start.header as u32);
                !slot.and_then(|l| l.keys.iter().find(|k| k.key == rec.key)).is_some_and(|k| k.no_alias_guards)
            });
        let id = self.jit.traces.len() as u32;
        let depth = rec.start.parent.map_or(0, |(p, _)| self.jit.traces[p as usize].depth + 1);
        let parent_link = self.parent_link(&rec);
        if let (Some(_), None, Some((p, e))) = (&rec.inherited, &parent_link, rec.start.parent) {
            // Without the link nothing could ever enter it. (A parent dropped while this was
            // recorded is not a failure: its tree is gone, see `finish_install`.)
            if self.jit.traces[p as usize].code.is_some() {
                self.note_side_abort(p, e, "the parent's exit cannot be linked (internal)");
            }
            return None;
        }
        let options = x64::Options {
            force_exits: self.jit.options.force_exits,
            fuel: self.jit.fuel.as_ptr() as u64,
            fuel_exit: Some(HEADER_SNAPSHOT),
            runtime: self.jit.runtime.address(),
            trace_id: id,
        };
        let inherit = self.jit.options.inherit_exits;
        Some(compile::Job { rec, booleans, alias_guards, depth, inherit, parent_link, options })
    }

    /// Enters a compiled recording among the traces, unless what it continues is gone.
    fn finish_install(&mut self, done: compile::Compiled) {
        let compile::Compiled { rec, optimised, alias_exits, code: compiled, id, depth, optimize_ns, assemble_ns } =
            done;
        self.jit.stats.optimize_ns += optimize_ns;
        self.jit.stats.assemble_ns += assemble_ns;
        if let Some((parent, _)) = rec.start.parent {
            if self.jit.traces[parent as usize].code.is_none() {
                return; // the parent was invalidated or retired while this was recorded
            }
        }
        let start = match rec.start.parent {
            None => format!("{} @ {}", method_name(self, rec.start.method), rec.start.header),
            Some((p, e)) => {
                let inherited = match &rec.inherited {
                    Some(_) => {
                        let frames = self.jit.traces[p as usize].exits.get(e as usize).map_or(0, |x| x.frames.len());
                        format!(", {frames} frames inherited")
                    }
                    None => String::new(),
                };
                format!("side trace of trace {p} exit s{e} ({}{inherited})", method_name(self, rec.start.top_method))
            }
        };
        let code = match compiled {
            Ok(c) => c,
            Err(e) => {
                let why = format!("backend: {e}");
                self.note_abort(rec.start.method, rec.start.header, rec.key, &why);
                return;
            }
        };
        if self.jit.dump.is_some() {
            let text = dump_text(self, id, &start, &rec, &optimised, &code);
            if let Some(d) = self.jit.dump.as_mut() {
                let _ = d.write_all(text.as_bytes());
                let _ = d.flush();
            }
        }
        tracing::debug!(target: "tracevm::jit", "trace {id} compiled: {start}");
        let mut constants = constants_of(&optimised, &rec.exits, rec.start.method);
        constants.extend(rec.lookups.iter().flat_map(|&(c, s)| [c, s]));
        let n_exits = rec.exits.len();
        let root = rec.start.parent.map_or(id, |(p, _)| self.jit.traces[p as usize].root);
        let needs0 = rec.needs.first().copied().unwrap_or((0, 0));
        self.jit.traces.push(TraceEntry {
            id,
            root,
            depth,
            loop_end: rec.loop_end,
            below_loop: rec.below_loop,
            crossed_at: rec.crossed_at,
            crossed_exits: 0,
            no_crossing: vec![false; n_exits],
            short_tails: vec![false; n_exits],
            start,
            code: Some(code),
            exits: rec.exits,
            entry: rec.entry,
            needs: rec.needs,
            parent: rec.start.parent,
            inherits: rec.inherited.is_some(),
            end_exit: rec.end_exit,
            link_exit: rec.link_exit,
            return_exit: rec.return_exit,
            enter_exit: rec.enter_exit,
            side: vec![None; n_exits],
            side_aborts: vec![0; n_exits],
            constants,
            lookups: rec.lookups,
            exit_counts: vec![0; n_exits],
            vm_entries: 0,
            loop_exits: rec.loop_exits,
            alias_exits,
            window_entries: 0,
            window_misses: 0,
            window_own: 0,
            iterations_when_dropped: 0,
            entries_when_dropped: 0,
            links: Vec::new(),
            tree_needs: needs0,
        });
        self.jit.stats.traces_compiled += 1;
        self.jit.max_slots = self.jit.max_slots.max(optimised.slots as usize);
        if let Some((parent, exit)) = rec.start.parent {
            self.jit.traces[parent as usize].side[exit as usize] = Some(id);
            let r = &mut self.jit.traces[root as usize];
            r.tree_needs = (r.tree_needs.0.max(needs0.0), r.tree_needs.1.max(needs0.1));
            self.link_exits(id);
            return;
        }
        if let Some(inner) = rec.enters {
            self.retry_short_tails(inner);
        }
        if let Some(data) = self.data_of(rec.start.method) {
            let loops = &mut self.method_data[data].loops;
            let at = match loops.iter().position(|l| l.ip == rec.start.header as u32) {
                Some(i) => i,
                None => {
                    loops.push(LoopSlot { ip: rec.start.header as u32, ..LoopSlot::default() });
                    loops.len() - 1
                }
            };
            let state = loops[at].key_state(rec.key);
            state.key = rec.key;
            state.trace = Some(id);
            state.counter = 0;
            if state.runs < 2 {
                self.jit.unjudged_first_run = Some(id);
            }
        }
    }

    /// Runs trace `tid` from the current state and deoptimises where it leaves; then follows
    /// side traces and returns to loop traces while compiled code can carry on.
    fn enter_trace(&mut self, first: u32) -> Entered {
        let mut first = first;
        let mut tid = first;
        let mut entered = false;
        // Whether a lap of `first`'s tree is under way, and whether it (a run of the loop
        // trace, then of side traces until the loop trace again) completed an iteration of the
        // loop, in any trace of the tree, and in the loop trace itself.
        let mut lap = false;
        let mut completed = false;
        let mut root_completed = false;
        loop {
            if tid == first && lap {
                self.count_tree_run(first, completed, root_completed);
                (completed, root_completed) = (false, false);
            }
            let Some(Run { left, exit, done, root_done }) = self.run_trace(tid) else {
                return if entered { Entered::Ran } else { Entered::No };
            };
            entered = true;
            lap = true;
            tid = left;
            if self.judge_crossing(left, exit) {
                self.count_tree_run(first, true, true);
                return Entered::Ran;
            }
            let t = &self.jit.traces[tid as usize];
            completed |= done > 0 || t.end_exit == Some(exit);
            root_completed |= root_done;
            if t.loop_exits.get(exit).copied().unwrap_or(false) {
                // The loop ended (perhaps into its tail's side trace): that lap was fine.
                (completed, root_completed) = (true, true);
            }
            // Where to go next without the interpreter; it takes over for collections and budgets.
            if self.heap.wants_collection() || self.budget.is_some_and(|b| b < 1000) {
                self.count_tree_run(first, completed, root_completed);
                return Entered::Ran;
            }
            if t.end_exit == Some(exit) {
                tid = t.root;
                continue;
            }
            if t.enter_exit == Some(exit) {
                // At an inner loop's header: its trace takes over, as a tree of its own.
                self.count_tree_run(first, true, true);
                let Some(inner) = self.loop_trace_here() else { return Entered::Ran };
                self.jit.stats.inner_loop_entries += 1;
                (first, tid, lap) = (inner, inner, false);
                (completed, root_completed) = (false, false);
                continue;
            }
            if let Some(side) = t.side.get(exit).copied().flatten() {
                let s = &self.jit.traces[side as usize];
                // An inheriting side trace is entered by its link alone; control is here
                // because the link refused (no fuel), so the interpreter goes on.
                if s.code.is_some() && !s.inherits {
                    tid = side;
                    continue;
                }
            }
            // A loop trace's snapshot 0 is its loop header; a side trace's is where it starts
            // (its first guard failed): a sibling path.
            let hot = t.depth < MAX_SIDE_DEPTH
                && !t.below_loop.get(exit).copied().unwrap_or(true)
                && (exit != 0 || t.parent.is_some())
                && t.return_exit != Some(exit)
                && t.link_exit != Some(exit)
                && t.exit_counts[exit] >= SIDE_THRESHOLD
                && t.side_aborts.get(exit).is_some_and(|&a| a < MAX_SIDE_ABORTS);
            let record_side = hot && t.side.get(exit) == Some(&None);
            self.count_tree_run(first, completed, root_completed);
            if record_side {
                return Entered::RecordSide(tid, exit as u32);
            }
            return Entered::Ran;
        }
    }

    /// An outer loop's trace that ends at the header of `inner`'s loop was installed: the tails
    /// of `inner`'s tree abandoned as too short may now go on into the next outer iteration
    /// (below the loop's frame a tail only does when the outer loop's trace shows that iteration
    /// runs into an inner loop), so they are tried again.
    fn retry_short_tails(&mut self, inner: u32) {
        for t in self.jit.traces.iter_mut().filter(|t| t.root == inner && t.code.is_some()) {
            for e in 0..t.side.len() {
                let abandoned = t.side[e].is_none() && t.side_aborts[e] >= MAX_SIDE_ABORTS;
                if abandoned && t.loop_exits.get(e) == Some(&true) && t.short_tails.get(e) == Some(&true) {
                    t.side_aborts[e] = 0;
                    t.short_tails[e] = false;
                }
            }
        }
    }

    /// After tail `tid` left by `exit`: when that exit is in the outer iteration it went on into
    /// (`Recording::crossed_at`) and such exits are a quarter of its runs, its guess of that
    /// iteration's path was wrong too often (in a sieve, after each prime the next number is
    /// usually not one): each wrong guess costs an exit to the interpreter, with no side trace.
    /// The tail is dropped (with its side traces) and recorded again without going on. Answers
    /// whether it was.
    fn judge_crossing(&mut self, tid: u32, exit: usize) -> bool {
        let t = &mut self.jit.traces[tid as usize];
        let (Some(at), Some((parent, from))) = (t.crossed_at, t.parent) else { return false };
        let ends = [t.enter_exit, t.link_exit, t.return_exit, t.end_exit];
        if exit < at || ends.contains(&Some(exit)) {
            return false; // not a guess: where it went, or where it ends
        }
        t.crossed_exits += 1;
        if t.crossed_exits < SIDE_THRESHOLD || 4 * t.crossed_exits < t.entries() {
            return false;
        }
        let mut dead = vec![tid];
        for t in &self.jit.traces[tid as usize + 1..] {
            if t.parent.is_some_and(|(p, _)| dead.contains(&p)) {
                dead.push(t.id);
            }
        }
        for &d in &dead {
            self.jit.traces[d as usize].drop_code();
        }
        self.unlink_dropped();
        let p = &mut self.jit.traces[parent as usize];
        p.side[from as usize] = None;
        p.no_crossing[from as usize] = true;
        *self.jit.stats.aborts.entry(RETIRED_WRONG_GUESS.into()).or_default() += 1;
        true
    }

    /// Counts one lap of loop trace `root`'s tree in its retirement window. `fine`: it
    /// completed an iteration (in the loop trace, or through a side trace back at the header),
    /// or left by an exit that ends the loop; `fine_alone`: the loop trace itself did. A loop
    /// trace no longer fits what the loop does, and is retired to be recorded again, when
    /// nearly all runs in a window did nothing, or when none went its own way (every iteration
    /// then pays for an exit into a side trace; a send site seeing many classes still takes
    /// the loop trace's way now and then, and keeps its tree).
    fn count_tree_run(&mut self, root: u32, fine: bool, fine_alone: bool) {
        let t = &mut self.jit.traces[root as usize];
        if t.parent.is_some() || t.code.is_none() {
            return;
        }
        t.window_entries += 1;
        if !fine {
            t.window_misses += 1;
        }
        if fine_alone {
            t.window_own += 1;
        }
        if t.window_entries >= RETIRE_AFTER_ENTRIES {
            let retire = 8 * t.window_misses > 7 * t.window_entries || t.window_own == 0;
            t.window_entries = 0;
            t.window_misses = 0;
            t.window_own = 0;
            if retire {
                self.retire_trace(root, Retire::LeftEarly);
            }
        }
    }

    /// Runs one trace from the current state (if its entry conditions hold), and whatever it
    /// links to, and materialises the exit control finally leaves by. Answers the trace that
    /// left, its exit, the loop-head arrivals (and links) of the whole run, and whether the
    /// root of `tid`'s tree completed an iteration itself.
    fn run_trace(&mut self, tid: u32) -> Option<Run> {
        self.save_regs_for_jit();
        let t = &self.jit.traces[tid as usize];
        t.code.as_ref()?;
        if t.inherits {
            return None; // its inputs are its parent's exit values, not contexts
        }
        let n = t.entry.len();
        let tree_needs = self.jit.traces[t.root as usize].tree_needs;
        let mut buffer = std::mem::take(&mut self.jit.buffer);
        buffer.clear();
        buffer.resize(self.jit.max_slots.max(4 * n), 0);
        // The real frames, outermost first, each checked against what the trace was recorded on.
        // The loop's own frame (the outermost) against what any trace of the tree reads: links
        // between them check nothing.
        let mut c = self.regs.ctx;
        let mut ok = true;
        for i in (0..n).rev() {
            let want = t.entry[i];
            let (mut need_args, mut need_temps) = t.needs[i];
            if i == 0 {
                need_args = need_args.max(tree_needs.0);
                need_temps = need_temps.max(tree_needs.1);
            }
            let good = c.is_pointers()
                && c.len() >= crate::interp::ctx::SIZE
                && c.slot(crate::interp::ctx::METHOD) == want.method
                && c.slot(crate::interp::ctx::STACK_TOP) == Value::from_int(want.sp as i32);
            if !good {
                ok = false;
                break;
            }
            let args = c.slot(crate::interp::ctx::ARGUMENTS);
            let temps = c.slot(crate::interp::ctx::TEMPORARIES);
            let stack = c.slot(crate::interp::ctx::STACK);
            let fits = |a: Value, need: usize| need == 0 || (a.is_pointers() && a.len() >= need);
            if !fits(args, need_args)
                || !fits(temps, need_temps)
                || (need_temps > 0 && temps.flags() & crate::interp::WATCH_MASK != 0)
                || !stack.is_pointers()
                || stack.len() < want.sp
            {
                ok = false;
                break;
            }
            buffer[4 * i] = c.raw();
            buffer[4 * i + 1] = args.raw();
            buffer[4 * i + 2] = temps.raw();
            buffer[4 * i + 3] = stack.raw();
            c = c.slot(crate::interp::ctx::PREVIOUS);
        }
        if !ok {
            self.jit.buffer = buffer;
            return None;
        }
        // An execution budget bounds compiled loops too: one back edge (or link), one safepoint.
        let fuel = self.budget.map_or(u64::MAX, |b| b.max(1));
        self.jit.fuel.set(fuel);
        // Until `detach`, only the trace's allocation helper uses the heap.
        let objects = runtime::Objects { nil: self.k.nil, true_: self.k.true_, false_: self.k.false_ };
        self.jit.runtime.attach(&mut self.heap, objects);
        let root = t.root;
        let root_before = self.jit.traces[root as usize].iterations();
        let Some(code) = self.jit.traces[tid as usize].code.as_ref() else {
            self.jit.runtime.detach();
            return None;
        };
        // SAFETY: the trace was recorded on contexts running these methods with these stack
        // depths; its inputs are those contexts and their arguments, temporaries and stack
        // Arrays, checked above to have every slot the trace reads without a guard (the loop's
        // frame: every slot any trace of the tree reads, for the traces it links to); everything
        // else it reads is guarded in the trace. The buffer has the slots of every trace.
        let left = unsafe { code.enter(&mut buffer) };
        self.jit.runtime.detach();
        let done = fuel - self.jit.fuel.get();
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(done);
        }
        let root_done = self.jit.traces[root as usize].iterations() > root_before;
        let Ok((left, exit)) = left else {
            self.jit.buffer = buffer;
            return None;
        };
        let exit = exit.0 as usize;
        self.jit.traces[tid as usize].vm_entries += 1;
        // Only live traces are linked to (`unlink_dropped`), and each answers its own number:
        // anything else is a JIT bug, and the state it left cannot be trusted.
        let t =
            self.jit.traces.get_mut(left as usize).filter(|t| t.code.is_some() && exit < t.exits.len()).unwrap_or_else(
                || panic!("JIT bug: compiled code left by trace {left} exit {exit}, not a live trace's"),
            );
        if let Some(code) = t.code.as_ref() {
            code.copy_exit(ir::SnapId(exit as u32), &mut buffer);
        }
        t.exit_counts[exit] += 1;
        let alias_failed = t.alias_exits.get(exit).copied().unwrap_or(false);
        self.jit.stats.trace_entries += 1;
        self.jit.stats.exits += 1;
        // Deoptimise: the exit map is taken out so that materialising may borrow the VM.
        let state = std::mem::take(&mut self.jit.traces[left as usize].exits[exit]);
        self.materialize(&state, &buffer);
        self.jit.traces[left as usize].exits[exit] = state;
        self.jit.buffer = buffer;
        if alias_failed {
            self.retire_trace(left, Retire::AliasGuardFailed);
        }
        Some(Run { left, exit, done, root_done })
    }

    /// After trace `id` (a side trace) is installed: its parent's exit continues into it, and
    /// its last exit into its loop trace, in machine code, when the state there is exactly
    /// what the other trace is entered with (one real frame: the loop's, at that trace's stack
    /// depth). Entry checks of the loop's frame cover the whole tree (`TraceEntry::tree_needs`).
    fn link_exits(&mut self, id: u32) {
        let t = &self.jit.traces[id as usize];
        let single = |state: &ExitState| match state.frames.as_slice() {
            [f] => Some(f.stack.len()),
            _ => None,
        };
        // (from, its exit, to, where `to` is entered)
        let mut made = Vec::new();
        if let (Some((p, e)), Some(at)) = (t.parent, t.code.as_ref().and_then(|c| c.parent_entry())) {
            made.push((p, e, id, at));
        }
        if let (Some(end), Some(first)) = (t.end_exit, t.entry.first()) {
            let r = &self.jit.traces[t.root as usize];
            if let ([want], Some(code)) = (r.entry.as_slice(), r.code.as_ref()) {
                if want.method == first.method && single(&t.exits[end]) == Some(want.sp) {
                    made.push((id, end as u32, t.root, code.link_entry()));
                }
            }
        }
        for (from, exit, to, at) in made {
            let Some(a) = self.jit.traces[from as usize].code.as_ref() else { continue };
            if a.set_link(ir::SnapId(exit), Some(at)) {
                self.jit.traces[from as usize].links.push((exit, to));
            }
        }
    }

    /// How a side trace being compiled from `rec` is entered from its parent's exit in machine
    /// code, when it can be: it starts in the loop's frame alone, and the parent's exit is a
    /// linkable one (`ExitLink::stack` None). The stack values are read where the parent's exit
    /// stub leaves them: its value area, frame-buffer inputs, constants.
    fn parent_link(&self, rec: &Recording) -> Option<x64::ParentLink> {
        let (p, e) = rec.start.parent?;
        if let Some(words) = &rec.inherited {
            // Every exit word the trace reads, copied from the parent's value area.
            let code = self.jit.traces[p as usize].code.as_ref()?;
            let exit = ir::SnapId(e);
            let words = words
                .iter()
                .map(|&k| Some((recorder::INHERITED_BASE + k, x64::LinkValue::At(code.exit_value_at(exit, k)?))))
                .collect::<Option<Vec<_>>>()?;
            return code.links_later(exit).then_some(x64::ParentLink { trace_id: p, exit, stack: Vec::new(), words });
        }
        let [entry] = rec.entry.as_slice() else { return None };
        let parent = &self.jit.traces[p as usize];
        let code = parent.code.as_ref()?;
        let exit = ir::SnapId(e);
        let [frame] = parent.exits.get(e as usize)?.frames.as_slice() else { return None };
        if !code.links_later(exit) || frame.stack.len() != entry.sp {
            return None;
        }
        let stack =
            link_stack(frame, |w| code.exit_value_at(exit, w).map_or(x64::LinkValue::Word(w), x64::LinkValue::At))?;
        Some(x64::ParentLink { trace_id: p, exit, stack, words: Vec::new() })
    }

    /// Unlinks every exit that leads to a trace whose code was dropped: its code is gone.
    fn unlink_dropped(&mut self) {
        let live: Vec<bool> = self.jit.traces.iter().map(|t| t.code.is_some()).collect();
        for t in &mut self.jit.traces {
            let Some(code) = t.code.as_ref() else {
                t.links.clear();
                continue;
            };
            t.links.retain(|&(exit, to)| {
                let keep = live[to as usize];
                if !keep {
                    code.set_link(ir::SnapId(exit), None);
                }
                keep
            });
        }
    }

    /// Stops entering loop trace `tid` (and its side traces); its loop may be recorded again.
    fn retire_trace(&mut self, tid: u32, why: Retire) {
        self.jit.traces[tid as usize].drop_code();
        // Its side traces (all of its tree) were recorded on paths through it.
        for t in self.jit.traces.iter_mut().filter(|t| t.root == tid) {
            t.drop_code();
        }
        self.unlink_dropped();
        let reason = match why {
            Retire::LeftEarly => "retired: left early too often",
            Retire::AliasGuardFailed => "retired: objects it assumed distinct were the same",
        };
        *self.jit.stats.aborts.entry(reason.to_string()).or_default() += 1;
        for d in &mut self.method_data {
            for l in &mut d.loops {
                for k in l.keys.iter_mut().filter(|k| k.trace == Some(tid)) {
                    k.trace = None;
                    match why {
                        // The same back-off as an abort.
                        Retire::LeftEarly => k.aborts = k.aborts.saturating_add(1),
                        // Recorded again soon, optimised without alias guards.
                        Retire::AliasGuardFailed => {
                            k.counter = 0;
                            k.no_alias_guards = true;
                        }
                    }
                }
            }
        }
    }

    /// The traces that may have folded a lookup `change` affects stop being entered (with their
    /// side traces), and their loops may be recorded again.
    pub(crate) fn invalidate_traces(&mut self, change: LookupChange) {
        self.abort_recording("a method or class changed during recording");
        let mut dead: Vec<u32> = Vec::new();
        let everything = matches!(change, LookupChange::Everything);
        for t in self.jit.traces.iter().filter(|t| t.code.is_some()) {
            // Everything: also traces that folded no lookup (a loop whose literals changed).
            if everything || t.lookups.iter().any(|&(cls, sel)| change.may_affect(self, cls, sel)) {
                dead.push(t.id);
            }
        }
        // Side traces continue their parents' frames: they go with them.
        let mut i = 0;
        while i < dead.len() {
            let parent = dead[i];
            for t in self.jit.traces.iter().filter(|t| t.code.is_some() && t.parent.is_some_and(|(p, _)| p == parent)) {
                if !dead.contains(&t.id) {
                    dead.push(t.id);
                }
            }
            i += 1;
        }
        if dead.is_empty() {
            return;
        }
        for &tid in &dead {
            let t = &mut self.jit.traces[tid as usize];
            t.drop_code();
            self.jit.stats.invalidations += 1;
            // A side trace's exit may get a new one.
            if let Some((p, e)) = t.parent {
                let parent = &mut self.jit.traces[p as usize];
                parent.side[e as usize] = None;
                parent.side_aborts[e as usize] = 0;
            }
        }
        self.unlink_dropped();
        let (traces, threshold, shift) = (&self.jit.traces, self.jit.options.threshold, self.jit.first_run_shift);
        for d in &mut self.method_data {
            for l in &mut d.loops {
                for k in l.keys.iter_mut() {
                    let Some(tid) = k.trace.filter(|t| dead.contains(t)) else { continue };
                    // A trace that did too little to pay for itself backs its loop off, like
                    // an aborted recording: a loop whose methods keep changing (`compileMethod:`
                    // in its outer loop) was otherwise recorded and compiled again every few
                    // dozen iterations. One that paid for itself does not: backing it off too
                    // left a loop of 5 000 iterations per change untraced after ten changes.
                    let t = &traces[tid as usize];
                    let paid_off = u64::from(k.needed(threshold, shift)).max(PAID_OFF_ITERATIONS);
                    if t.iterations() + t.entries() < paid_off {
                        k.aborts = k.aborts.saturating_add(1);
                    }
                    k.trace = None;
                    k.counter = 0;
                }
            }
        }
    }
}

/// What a store that flushes the lookup caches may have changed (`Vm::invalidate_traces`).
#[derive(Clone, Copy, Debug)]
pub enum LookupChange<'a> {
    /// Anything (a method's own bytecodes or literals, an object's identity).
    Everything,
    /// What lookups through this class, or through the class that has this methods Array,
    /// answer: for this selector only, or (None) for any.
    Class { class_or_methods: Value, selector: Option<&'a [u8]> },
}

impl LookupChange<'_> {
    /// True when looking `sel` up from `cls` may answer something else after the change: the
    /// lookup read every class from `cls` up its superclass chain (and their methods Arrays).
    fn may_affect(&self, vm: &Vm, cls: Value, sel: Value) -> bool {
        let LookupChange::Class { class_or_methods: changed, selector } = *self else { return true };
        if let Some(name) = selector {
            if !(sel.is_ptr() && sel.kind() == crate::heap::Kind::Bytes && sel.bytes() == name) {
                return false;
            }
        }
        let mut c = cls;
        for _ in 0..10_000 {
            if c == changed {
                return true;
            }
            if !(c.is_ptr() && c.kind() == crate::heap::Kind::Pointers && c.len() > crate::interp::class::METHODS) {
                return false;
            }
            if c.slot(crate::interp::class::METHODS) == changed {
                return true;
            }
            c = c.slot(crate::interp::class::PARENT);
            if c == vm.k.nil {
                return false;
            }
        }
        true // a cycle in parentClass links: assume the worst
    }
}

/// The exits of a recording that may continue straight into another trace of its tree (see
/// `x64::ExitLink`): those that leave the loop's frame (words 0–3) with its stack in frame-buffer
/// words and constants, and that may get a side trace (not the loop trace's header, not a side
/// trace's last exit at a return or at another loop's back edge, not one that finds two objects
/// the same, not below the deepest side traces; one that ends the loop may, for its tail) or are
/// a side trace's end, back at the header. With `inherit`, also those that leave inlined frames
/// above the loop's: their side traces inherit the state (`Recorder::start_inherited`).
fn linkable_exits(rec: &Recording, alias_exits: &[bool], depth: u8, inherit: bool) -> Vec<x64::ExitLink> {
    use deopt::{FrameKind, Loc};
    let mut out = Vec::new();
    for (s, state) in rec.exits.iter().enumerate() {
        let Some(frame) = state.frames.first() else { continue };
        if rec.below_loop.get(s).copied().unwrap_or(true) {
            continue;
        }
        if frame.kind != (FrameKind::Real { ctx: Loc::Slot(0) }) {
            continue;
        }
        if state.frames.len() > 1 && !inherit {
            continue;
        }
        let is_end = rec.end_exit == Some(s);
        let may_get_side = depth < MAX_SIDE_DEPTH
            && (s != HEADER_SNAPSHOT.0 as usize || rec.start.parent.is_some())
            && rec.return_exit != Some(s)
            && rec.link_exit != Some(s)
            && !alias_exits.get(s).copied().unwrap_or(true);
        if !(is_end || may_get_side) {
            continue;
        }
        if !is_end {
            // Its side trace, if it gets one, writes the stack (`Vm::parent_link`).
            out.push(x64::ExitLink { snap: ir::SnapId(s as u32), stack: None });
            continue;
        }
        if let Some(stack) = link_stack(frame, x64::LinkValue::Word) {
            out.push(x64::ExitLink { snap: ir::SnapId(s as u32), stack: Some(stack) });
        }
    }
    out
}

/// Whether a side trace of `parent`'s exit `exit` can inherit the exit's state: the exit has a
/// link cell for it, and every word of the state is one the exit leaves in the value area
/// (where the side trace's parent entry copies it from).
fn inheritable(parent: &TraceEntry, exit: u32) -> bool {
    use deopt::{FrameKind, Loc, ObjDesc};
    let Some(code) = parent.code.as_ref() else { return false };
    let Some(state) = parent.exits.get(exit as usize) else { return false };
    let snap = ir::SnapId(exit);
    let left = |l: &Loc| match *l {
        Loc::Slot(k) => code.exit_value_at(snap, k).is_some(),
        Loc::Const(_) | Loc::Virtual(_) => true,
    };
    let frames_ok = state.frames.iter().all(|f| {
        let kind_ok = match &f.kind {
            FrameKind::Real { ctx } => left(ctx),
            FrameKind::Method { args, temps, .. } => left(args) && left(temps),
            FrameKind::Block { block } => left(block),
        };
        kind_ok && f.stack.iter().all(left)
    });
    let objects_ok = state.objects.iter().all(|o| match o {
        ObjDesc::Array(e) => e.iter().all(left),
        ObjDesc::Block { creator, home, args, temps, .. } => {
            let ctx_ok = |c: &deopt::CtxLoc| match c {
                deopt::CtxLoc::Frame(_) => true,
                deopt::CtxLoc::Real(l) => left(l),
            };
            ctx_ok(creator) && ctx_ok(home) && left(args) && left(temps)
        }
    });
    code.links_later(snap) && frames_ok && objects_ok
}

/// What a link writes into `frame`'s stack: `word` says where the value of a frame-buffer word
/// is read; None when the stack holds a virtual object (a link never materialises).
fn link_stack(frame: &deopt::FrameDesc, word: impl Fn(u16) -> x64::LinkValue) -> Option<Vec<x64::LinkValue>> {
    use deopt::Loc;
    frame
        .stack
        .iter()
        .map(|&l| match l {
            Loc::Slot(w) => Some(word(w)),
            Loc::Const(v) => Some(x64::LinkValue::Const(v)),
            Loc::Virtual(_) => None,
        })
        .collect()
}

/// Every object a trace refers to: constants, guarded classes and values, methods of its frames.
fn constants_of(t: &Trace, exits: &[ExitState], method: Value) -> Vec<Value> {
    use deopt::{FrameKind, Loc, ObjDesc};
    let mut out = vec![method];
    for i in &t.insts {
        match i.op {
            Op::Const(v) | Op::GuardClass(_, v) | Op::GuardIs(_, v) | Op::GuardIsNot(_, v) if v.is_ptr() => out.push(v),
            _ => {}
        }
    }
    let mut loc = |l: &Loc| {
        if let Loc::Const(v) = l {
            if v.is_ptr() {
                out.push(*v);
            }
        }
    };
    // (The exit states of snapshots nothing exits by are empty: `compile::compile`.)
    let mut methods = Vec::new();
    for e in exits {
        for f in &e.frames {
            f.stack.iter().for_each(&mut loc);
            match &f.kind {
                FrameKind::Real { ctx } => loc(ctx),
                FrameKind::Method { method, args, temps } => {
                    methods.push(*method);
                    loc(args);
                    loc(temps);
                }
                FrameKind::Block { block } => loc(block),
            }
        }
        for o in &e.objects {
            match o {
                ObjDesc::Array(v) => v.iter().for_each(&mut loc),
                ObjDesc::Block { method, args, temps, .. } => {
                    methods.push(*method);
                    loc(args);
                    loc(temps);
                }
            }
        }
    }
    out.extend(methods);
    out.sort_by_key(|v| v.raw());
    out.dedup();
    out
}

fn dump_text(vm: &Vm, id: u32, start: &str, rec: &Recording, optimised: &Trace, code: &x64::CompiledTrace) -> String {
    let mut s = format!("---- trace {id}: {start}\n-- bytecodes (inlining depth, method @ offset, instruction)\n");
    for l in &rec.log {
        s.push_str(l);
        s.push('\n');
    }
    if let (Some(words), Some((p, e))) = (&rec.inherited, rec.start.parent) {
        // Where its inputs beyond the loop's frame come from (`Recorder::start_inherited`).
        let mut words = words.clone();
        words.sort_unstable();
        let list = words.iter().map(|k| format!("{} = [{k}]", recorder::INHERITED_BASE + k)).collect::<Vec<_>>();
        s.push_str(&format!(
            "-- inherits the state of trace {p} exit s{e}: inputs 0-3 are the loop's frame, the others \
             the exit's words, written by its link: {}\n",
            list.join(", ")
        ));
    }
    s.push_str(&format!("-- IR as recorded ({} instructions)\n{}", rec.trace.insts.len(), rec.trace));
    s.push_str(&format!("-- IR optimised ({} instructions)\n{}", optimised.insts.len(), optimised));
    s.push_str("-- exits: interpreter state at each snapshot ([k] = frame buffer word, vN = virtual object)\n");
    let used = optimised.exited_by();
    for (k, e) in rec.exits.iter().enumerate() {
        if used.get(k).copied().unwrap_or(false) {
            // Method addresses read better as names.
            let mut text = e.to_string();
            for f in &e.frames {
                if let deopt::FrameKind::Method { method, .. } = f.kind {
                    text = text.replace(&format!("method @{:x}", method.raw()), &method_name(vm, method));
                }
            }
            for (v, name) in [(vm.k.nil, "nil"), (vm.k.true_, "true"), (vm.k.false_, "false")] {
                text = text.replace(&format!("@{:x}", v.raw()), name);
            }
            let note = if rec.enter_exit == Some(k) {
                " (the trace's end: the inner loop's trace is entered here)"
            } else if rec.return_exit == Some(k) {
                " (the trace's end: a return out of the loop's frame, which the interpreter makes)"
            } else {
                ""
            };
            s.push_str(&format!("  s{k}:{note}\n{text}"));
        }
    }
    s.push_str(&format!("-- machine code ({} bytes)\n{}", code.code_size(), code.disassemble()));
    s
}
