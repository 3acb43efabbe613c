//! What compiled code calls back into: the allocation helper behind `Op::New`.
//!
//! Owns `Runtime` (the block of state a trace's code embeds the address of) and the helper
//! functions the backend emits calls to. A helper only allocates: it never collects, never runs
//! Smalltalk and never touches the interpreter, so every value a running trace holds stays valid.
//! When it cannot do its job cheaply (a collection is due, a length out of range) it answers 0
//! and the trace leaves by the instruction's snapshot, for the interpreter to do it.

use crate::heap::{Heap, Value};
use crate::jit::ir::MAX_NEW_SLOTS;
use std::cell::Cell;

/// The VM state helpers need while a trace runs. The JIT attaches its heap just before entering
/// a trace and detaches it right after; traces embed the address of this block, which therefore
/// stays put (it is boxed) as long as any code compiled with it.
#[derive(Debug)]
pub struct Runtime {
    heap: Cell<*mut Heap>,
    nil: Cell<u64>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime { heap: Cell::new(std::ptr::null_mut()), nil: Cell::new(0) }
    }
}

impl Runtime {
    /// The address compiled code is given (`x64::Options::runtime`).
    pub fn address(&self) -> u64 {
        self as *const Runtime as u64
    }

    /// Lets helpers allocate in `heap` (objects filled with `nil`) until `detach`. The caller
    /// must not use `heap` otherwise while it is attached: compiled code may be allocating in it.
    pub fn attach(&self, heap: &mut Heap, nil: Value) {
        self.heap.set(heap as *mut Heap);
        self.nil.set(nil.raw());
    }

    pub fn detach(&self) {
        self.heap.set(std::ptr::null_mut());
    }
}

/// `Op::New`: a pointer object of `class` with `len` nil slots, or 0 (the trace exits).
///
/// # Safety
/// `rt` is the address of a live `Runtime`; compiled code passes the one it was compiled with.
pub unsafe extern "sysv64" fn new_object(rt: *const Runtime, len: u64, class: u64) -> u64 {
    // SAFETY: compiled code passes the address of the boxed Runtime its JIT owns (the caller's
    // contract above); it outlives the code.
    let rt = unsafe { &*rt };
    let heap = rt.heap.get();
    let n = Value::from_raw(len).as_int().filter(|n| (0..=MAX_NEW_SLOTS).contains(n));
    let Some(n) = n else { return 0 };
    if heap.is_null() {
        return 0;
    }
    // SAFETY: `attach` stored a heap that its caller does not otherwise use until `detach`, and
    // a trace runs only between the two (see `Vm::run_trace`); the code that called us holds no
    // reference into the heap's allocator state.
    let heap = unsafe { &mut *heap };
    if heap.wants_collection() {
        return 0;
    }
    heap.alloc_pointers(Value::from_raw(class), n as usize, Value::from_raw(rt.nil.get())).raw()
}
