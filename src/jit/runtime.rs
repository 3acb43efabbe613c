//! What compiled code calls back into: the allocation helper behind `Op::New`, the primitives
//! behind `Op::Call` (Floats, byte-object comparison, allocation and concatenation), freeing a
//! context a trace returned from, and the method-identity guard of inherited sends.
//!
//! Owns `Runtime` (the block of state a trace's code embeds the address of) and the helper
//! functions the backend emits calls to. A helper only reads, allocates (or frees a context nothing
//! refers to): it never collects, never runs Smalltalk and never touches the interpreter, so
//! every value a running trace holds stays valid.
//! When it cannot do its job cheaply (a collection is due, a length out of range) it answers 0
//! and the trace leaves by the instruction's snapshot, for the interpreter to do it.

use crate::heap::{Heap, Kind, Value};
use crate::jit::ir::{Helper, MAX_NEW_SLOTS};
use std::cell::Cell;

/// The VM state helpers need while a trace runs. The JIT attaches its heap just before entering
/// a trace and detaches it right after; traces embed the address of this block, which therefore
/// stays put (it is boxed) as long as any code compiled with it.
#[derive(Debug)]
pub struct Runtime {
    heap: Cell<*mut Heap>,
    objects: Cell<Objects>,
    /// Contexts compiled code has freed (`--stats`).
    freed_contexts: Cell<u64>,
}

/// The objects helpers answer or fill with.
#[derive(Clone, Copy, Debug)]
pub struct Objects {
    pub nil: Value,
    pub true_: Value,
    pub false_: Value,
}

impl Default for Runtime {
    fn default() -> Self {
        let none = Value::from_int(0);
        Runtime {
            heap: Cell::new(std::ptr::null_mut()),
            objects: Cell::new(Objects { nil: none, true_: none, false_: none }),
            freed_contexts: Cell::new(0),
        }
    }
}

impl Runtime {
    /// The address compiled code is given (`x64::Options::runtime`).
    pub fn address(&self) -> u64 {
        self as *const Runtime as u64
    }

    /// Lets helpers allocate in `heap` (pointer objects filled with `objects.nil`) until
    /// `detach`. The caller must not use `heap` otherwise while it is attached: compiled code may
    /// be allocating in it.
    pub fn attach(&self, heap: &mut Heap, objects: Objects) {
        self.heap.set(heap as *mut Heap);
        self.objects.set(objects);
    }

    /// Runs `f` on the attached heap, unless none is or it wants a collection (then `None`:
    /// the helper answers 0).
    ///
    /// # Safety
    /// Only for helpers called by compiled code, between `attach` and `detach`.
    unsafe fn with_heap<T>(&self, f: impl FnOnce(&mut Heap) -> T) -> Option<T> {
        let heap = self.heap.get();
        if heap.is_null() {
            return None;
        }
        // SAFETY: `attach` stored a heap that its caller does not otherwise use until `detach`,
        // and a trace runs only between the two (see `Vm::run_trace`); the compiled code that
        // called the helper holds no reference into the heap's allocator state.
        let heap = unsafe { &mut *heap };
        (!heap.wants_collection()).then(|| f(heap))
    }

    /// Contexts compiled code has freed so far (`Helper::FreeContext`).
    pub fn freed_contexts(&self) -> u64 {
        self.freed_contexts.get()
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
    let Some(n) = allocatable(Value::from_raw(len)) else { return 0 };
    let nil = rt.objects.get().nil;
    // SAFETY: called by compiled code while the trace runs.
    let new = unsafe { rt.with_heap(|heap| heap.alloc_pointers(Value::from_raw(class), n, nil)) };
    new.map_or(0, Value::raw)
}

/// A length `New` and `bytes.new` allocate on the trace: a SmallInt in 0..=MAX_NEW_SLOTS
/// (larger ones are left to the interpreter, which checks sizes its own way).
pub fn allocatable(n: Value) -> Option<usize> {
    n.as_int().filter(|n| (0..=MAX_NEW_SLOTS).contains(n)).map(|n| n as usize)
}

/// The Float in a word compiled code holds (a SmallInt or a live object, the trace's invariant).
fn float_of(word: u64) -> Option<f64> {
    let v = Value::from_raw(word);
    (v.is_ptr() && v.kind() == Kind::Float).then(|| v.float())
}

/// The bytes of a byte object in a word compiled code holds.
fn bytes_of<'a>(word: u64) -> Option<&'a [u8]> {
    let v = Value::from_raw(word);
    (v.is_ptr() && v.kind() == Kind::Bytes).then(|| v.bytes())
}

/// The address of `h`'s function, for the backend's call.
pub fn helper_address(h: Helper) -> u64 {
    let f: unsafe extern "sysv64" fn(*const Runtime, u64, u64, u64) -> u64 = match h {
        Helper::AsFloat => as_float,
        Helper::FloatAdd => float_add,
        Helper::FloatSub => float_sub,
        Helper::FloatMul => float_mul,
        Helper::FloatDiv => float_div,
        Helper::FloatLt => float_lt,
        Helper::FloatEq => float_eq,
        Helper::Compare => compare,
        Helper::NewBytes => new_bytes,
        Helper::Concat => concat,
        Helper::FreeContext => free_context,
        Helper::Finds => finds,
    };
    f as *const () as u64
}

/// Defines helpers with the `Op::Call` signature. Each body sees the runtime as `rt`, and the
/// operands `a`, `b`, `c` as words, and answers `Option<Value>` (`None` becomes 0: exit).
macro_rules! helpers {
    ($($(#[$doc:meta])* fn $name:ident($rt:ident, $a:ident, $b:ident, $c:ident) $body:block)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `rt` is the address of a live `Runtime` and the words are values a running trace
        /// holds (SmallInts or live objects); compiled code passes exactly that.
        unsafe extern "sysv64" fn $name(rt: *const Runtime, a: u64, b: u64, c: u64) -> u64 {
            fn body($rt: &Runtime, $a: u64, $b: u64, $c: u64) -> Option<Value> $body
            // SAFETY: see above; the Runtime is the boxed one its JIT owns.
            let rt = unsafe { &*rt };
            body(rt, a, b, c).map_or(0, Value::raw)
        }
    )*};
}

/// A new Float of `class` (a word the recorder guarded to be a class).
fn new_float(rt: &Runtime, class: u64, f: f64) -> Option<Value> {
    // SAFETY: called by the helpers below, themselves called by compiled code.
    unsafe { rt.with_heap(|heap| heap.alloc_float(Value::from_raw(class), f)) }
}

helpers! {
    /// Primitive 50.
    fn as_float(rt, class, i, _c) { Value::from_raw(i).as_int().and_then(|i| new_float(rt, class, i as f64)) }
    /// Primitive 51: q + p.
    fn float_add(rt, class, p, q) { new_float(rt, class, float_of(q)? + float_of(p)?) }
    /// Primitive 52: q − p.
    fn float_sub(rt, class, p, q) { new_float(rt, class, float_of(q)? - float_of(p)?) }
    /// Primitive 53: q × p.
    fn float_mul(rt, class, p, q) { new_float(rt, class, float_of(q)? * float_of(p)?) }
    /// Primitive 54: q ÷ p (IEEE).
    fn float_div(rt, class, p, q) { new_float(rt, class, float_of(q)? / float_of(p)?) }
    /// Primitive 55: q < p.
    fn float_lt(rt, p, q, _c) {
        let o = rt.objects.get();
        Some(if float_of(q)? < float_of(p)? { o.true_ } else { o.false_ })
    }
    /// Primitive 56: q = p.
    fn float_eq(rt, p, q, _c) {
        let o = rt.objects.get();
        Some(if float_of(q)? == float_of(p)? { o.true_ } else { o.false_ })
    }
    /// Primitive 26: the signed-byte order of two byte objects, as the interpreter computes it.
    fn compare(_rt, a, b, _c) {
        let ord = crate::primitives::string_order(bytes_of(a)?, bytes_of(b)?);
        Some(Value::from_int(ord as i32))
    }
    /// A context the trace has returned from, freed as the interpreter's return would free it.
    /// When no heap is attached or a collection is due it is left to the collector; either way
    /// the answer is nil, never 0: the trace goes on (nothing it holds refers to the context).
    fn free_context(rt, ctx, _b, _c) {
        let nil = rt.objects.get().nil;
        // SAFETY: called by compiled code while the trace runs.
        let freed = unsafe { rt.with_heap(|heap| crate::interp::free_returned_context(heap, nil, Value::from_raw(ctx))) };
        if freed == Some(true) {
            rt.freed_contexts.set(rt.freed_contexts.get() + 1);
        }
        Some(nil)
    }
    /// A send's method-identity guard: true when the receiver's class finds `method` for
    /// `selector`, looked up afresh each time (nothing cached, so no store into a class or
    /// methods Array can make it stale; nothing marked, so it writes no object). A SmallInt
    /// receiver leaves the trace.
    fn finds(rt, receiver, selector, method) {
        let r = Value::from_raw(receiver);
        if !r.is_ptr() {
            return None;
        }
        let o = rt.objects.get();
        let found = crate::interp::find_method(o.nil, r.obj_class(), Value::from_raw(selector), false)?;
        (found == Value::from_raw(method)).then_some(o.true_)
    }
    /// Primitive 24: a's bytes then b's, in a new byte object of `class` (a's class).
    fn concat(rt, class, b, a) {
        let (x, y) = (bytes_of(a)?, bytes_of(b)?);
        // SAFETY: called by compiled code while the trace runs. The heap never moves objects
        // and does not collect here, so `x` and `y` stay valid while the new object is made.
        unsafe {
            rt.with_heap(|heap| {
                let new = heap.alloc_bytes(Value::from_raw(class), x.len() + y.len());
                let to = new.bytes_mut();
                to[..x.len()].copy_from_slice(x);
                to[x.len()..].copy_from_slice(y);
                new
            })
        }
    }
    /// Primitive 20: n zero bytes.
    fn new_bytes(rt, class, n, _c) {
        let n = allocatable(Value::from_raw(n))?;
        // SAFETY: called by compiled code while the trace runs.
        unsafe { rt.with_heap(|heap| heap.alloc_bytes(Value::from_raw(class), n)) }
    }
}
