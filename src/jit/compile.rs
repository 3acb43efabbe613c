//! Compiling a finished recording: optimise it, find which of its exits other traces may link
//! to, and assemble it.
//!
//! Owns the part of installing a trace that needs nothing of the VM: a `Job` carries the
//! recording and everything the VM worked out for it beforehand (`Vm::install`), and the VM
//! enters the result among its traces (`Vm::finish_install`). It must never touch the heap, the
//! VM or its traces, so that it could run anywhere (see "Compiling" in docs/ARCHITECTURE.md for
//! the compile thread that was tried).

use super::deopt::ExitState;
use super::recorder::Recording;
use super::{ir, linkable_exits, opt, x64, HEADER_SNAPSHOT};
use ir::{Booleans, Op, Trace};
use std::time::Instant;

/// A recording and what compiling it needs from the VM.
pub(crate) struct Job {
    pub rec: Recording,
    pub booleans: Booleans,
    /// The loop keeps its alias guards (`opt::Options::alias_guards`).
    pub alias_guards: bool,
    /// Side traces between it and its loop trace.
    pub depth: u8,
    /// `JitOptions::inherit_exits`.
    pub inherit: bool,
    /// How its parent's exit enters it (side traces that inherit their parent's state).
    pub parent_link: Option<x64::ParentLink>,
    pub options: x64::Options,
}

/// A compiled job.
pub(crate) struct Compiled {
    /// The recording, with an exit state for each snapshot of the peeled loop (empty for those
    /// the trace never leaves by).
    pub rec: Recording,
    pub optimised: Trace,
    /// Per snapshot: it is a `GuardNe`'s.
    pub alias_exits: Vec<bool>,
    pub code: Result<x64::CompiledTrace, x64::BackendError>,
    /// Its number (`x64::Options::trace_id`): the VM's trace count when the job was made.
    pub id: u32,
    /// `Job::depth`.
    pub depth: u8,
    pub optimize_ns: u64,
    pub assemble_ns: u64,
}

/// Optimises and assembles `job`.
pub(crate) fn compile(job: Job) -> Compiled {
    let Job { mut rec, booleans, alias_guards, depth, inherit, parent_link, options } = job;
    let t0 = Instant::now();
    let optimised = opt::optimize_with(&rec.trace, booleans, opt::Options { alias_guards });
    let t1 = Instant::now();
    // Only the exit states of snapshots the trace can leave by are kept: an instruction's, the
    // header's (where a trace out of fuel leaves) and the trace's end. The optimiser leaves
    // more than half unused, and the rest were most of the memory a trace kept.
    let mut kept = optimised.exited_by();
    let ends = [rec.end_exit, rec.link_exit, rec.enter_exit, rec.return_exit];
    for s in ends.into_iter().flatten().chain([HEADER_SNAPSHOT.0 as usize]) {
        if let Some(k) = kept.get_mut(s) {
            *k = true;
        }
    }
    // The peeled loop's snapshots are copies of recorded ones: same interpreter state.
    let recorded = rec.exits.len();
    for (s, &keep) in kept.iter().enumerate().skip(recorded) {
        let origin = optimised.origin(ir::SnapId(s as u32)).0 as usize;
        let state = if keep { rec.exits[origin].clone() } else { ExitState::default() };
        rec.exits.push(state);
        let ends = rec.loop_exits.get(origin).copied().unwrap_or(false);
        rec.loop_exits.resize(s, false);
        rec.loop_exits.push(ends);
        let below = rec.below_loop.get(origin).copied().unwrap_or(false);
        rec.below_loop.resize(s, false);
        rec.below_loop.push(below);
    }
    for (state, _) in rec.exits.iter_mut().zip(&kept).filter(|(_, &k)| !k) {
        *state = ExitState::default();
    }
    let mut alias_exits = vec![false; rec.exits.len()];
    for i in optimised.insts.iter().filter(|i| matches!(i.op, Op::GuardNe(..))) {
        if let Some(s) = i.snap {
            alias_exits[s.0 as usize] = true;
        }
    }
    let links = linkable_exits(&rec, &alias_exits, depth, inherit);
    let code = x64::compile_linked(&optimised, booleans, options, &links, parent_link.as_ref());
    let t2 = Instant::now();
    Compiled {
        rec,
        optimised,
        alias_exits,
        code,
        id: options.trace_id,
        depth,
        optimize_ns: (t1 - t0).as_nanos() as u64,
        assemble_ns: (t2 - t1).as_nanos() as u64,
    }
}
