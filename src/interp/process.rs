//! Green processes: `Block>>fork` (primitive 19) and Semaphores (primitives 100–102).
//!
//! The reference VM uses Java threads with no locking. tracevm runs one process at a time and
//! switches only when the running process waits on an unset Semaphore or finishes; a forked
//! process first runs when the forking one waits or finishes (so a top-level evaluation runs its
//! forked processes to completion, or until they all wait, before the host continues). This is
//! deterministic and runs the image's own uses (dialogs waiting on a button) correctly.
//!
//! Owns the process table and the Semaphore states. It never executes bytecode.

use crate::heap::{Collection, Value};

/// One green process.
#[derive(Clone, Debug)]
pub struct Process {
    /// Its active context while it is not running (nil when it has finished).
    pub context: Value,
    /// Contexts waiting for a primitive-6 (`perform:withArguments:`) run to finish, innermost last.
    pub barriers: Vec<Value>,
    /// Semaphore handle this process waits on.
    pub waiting_on: Option<usize>,
    /// A value to push when it resumes (the result of the wait that blocked it).
    pub resume_value: Option<Value>,
}

/// A one-shot latch (primitive 100).
#[derive(Clone, Debug, Default)]
pub struct SemaphoreState {
    pub value: Option<Value>,
}

#[derive(Default)]
pub struct Scheduler {
    pub procs: Vec<Process>,
    pub current: usize,
    pub semaphores: Vec<SemaphoreState>,
}

impl Scheduler {
    pub(crate) fn mark(&self, gc: &mut Collection<'_>) {
        for p in &self.procs {
            gc.mark(p.context);
            for &b in &p.barriers {
                gc.mark(b);
            }
            if let Some(v) = p.resume_value {
                gc.mark(v);
            }
        }
        for s in &self.semaphores {
            if let Some(v) = s.value {
                gc.mark(v);
            }
        }
    }
}
