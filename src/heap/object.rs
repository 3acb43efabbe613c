//! The fixed layout of a heap object and the accessors that read and write it.
//!
//! Every object starts with a two-word header at fixed offsets, so compiled code can load a
//! class, a length or a slot with one instruction:
//!
//! ```text
//! word 0  class            (a Value)
//! word 1  len: u32 | kind: u8 | mark: u8 | flags: u8 | cell: u8
//! word 2… body             Pointers: len slots; Bytes: len bytes, padded to words;
//!                          Float: one f64; Host: one handle word
//! ```
//!
//! This module owns the pointer arithmetic and nothing else; it never allocates or frees. Every
//! accessor relies on one invariant kept by `heap` and the garbage collector: a pointer `Value`
//! held by the VM points at a live object (objects never move, and the collector frees only what no
//! root reaches).

use super::value::Value;

/// Byte offset of the class word.
pub const CLASS_OFFSET: i32 = 0;
/// Byte offset of the u32 length (slot count or byte count).
pub const LEN_OFFSET: i32 = 8;
/// Byte offset of the kind byte.
pub const KIND_OFFSET: i32 = 12;
/// Byte offset of the flags byte (lookup watch bits, context recycling bits).
pub const FLAGS_OFFSET: i32 = 14;
/// Byte offset of the first slot / byte / float payload.
pub const BODY_OFFSET: i32 = 16;
/// Header size in words.
pub const HEADER_WORDS: usize = 2;
/// Smallest cell: a free cell keeps its free-list link in word 2.
pub const MIN_CELL_WORDS: usize = 3;

/// What the body of an object holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `len` Values (Array, Context, Method, class objects, ordinary instances).
    Pointers = 0,
    /// `len` raw bytes (String, ByteArray).
    Bytes = 1,
    /// One IEEE double (Float). Reported as 0 slots, like the reference VM's host objects.
    Float = 2,
    /// A handle into a VM table (File, Semaphore, GUI stand-ins): one body word.
    Host = 3,
    /// A free cell inside a heap page (never seen by the VM).
    Free = 255,
}

impl Kind {
    fn from_u8(b: u8) -> Kind {
        match b {
            0 => Kind::Pointers,
            1 => Kind::Bytes,
            2 => Kind::Float,
            3 => Kind::Host,
            _ => Kind::Free,
        }
    }
}

/// Number of body words an object of `kind` with `len` needs.
pub fn body_words(kind: Kind, len: usize) -> usize {
    match kind {
        Kind::Pointers => len,
        Kind::Bytes => len.div_ceil(8),
        Kind::Float | Kind::Host => 1,
        Kind::Free => 0,
    }
}

#[inline(always)]
fn meta_word(len: u32, kind: Kind, cell: u8) -> u64 {
    (len as u64) | ((kind as u64) << 32) | ((cell as u64) << 56)
}

/// Writes a fresh header at `p`. Used only by the allocator.
///
/// # Safety
/// `p` must point at `HEADER_WORDS + body_words(kind, len)` writable words owned by the heap.
#[inline(always)]
pub(crate) unsafe fn init_header(p: *mut u64, class: Value, len: u32, kind: Kind, cell: u8) {
    // SAFETY: the caller guarantees the two header words are writable.
    unsafe {
        p.write(class.raw());
        p.add(1).write(meta_word(len, kind, cell));
    }
}

impl Value {
    #[inline(always)]
    fn words(self) -> *mut u64 {
        assert!(self.is_ptr(), "object access on a SmallInt");
        self.raw() as *mut u64
    }

    #[inline(always)]
    fn meta(self) -> u64 {
        // SAFETY: pointer Values point at live objects (module invariant); word 1 is the header.
        unsafe { self.words().add(1).read() }
    }

    /// The class word of a heap object (SmallInts have no header; ask the VM for their class).
    #[inline(always)]
    pub fn obj_class(self) -> Value {
        // SAFETY: pointer Values point at live objects; word 0 is the class.
        Value::from_raw(unsafe { self.words().read() })
    }

    /// Replaces the class word (used by the image loader to patch forward references).
    #[inline(always)]
    pub fn set_obj_class(self, class: Value) {
        // SAFETY: pointer Values point at live objects; word 0 is the class.
        unsafe { self.words().write(class.raw()) }
    }

    #[inline(always)]
    pub fn kind(self) -> Kind {
        Kind::from_u8((self.meta() >> 32) as u8)
    }

    #[inline(always)]
    fn kind_byte(self) -> u8 {
        (self.meta() >> 32) as u8
    }

    /// True for a heap object with slots (any Value: SmallInts answer false).
    #[inline(always)]
    pub fn is_pointers(self) -> bool {
        self.is_ptr() && self.kind_byte() == Kind::Pointers as u8
    }

    /// True for a String or ByteArray (any Value: SmallInts answer false).
    #[inline(always)]
    pub fn is_bytes(self) -> bool {
        self.is_ptr() && self.kind_byte() == Kind::Bytes as u8
    }

    /// Slot count for pointer objects, byte count for byte objects, 0 otherwise.
    #[inline(always)]
    pub fn len(self) -> usize {
        (self.meta() as u32) as usize
    }

    /// True when `len()` is zero.
    #[inline(always)]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub(crate) fn cell_words(self) -> u8 {
        (self.meta() >> 56) as u8
    }

    #[inline(always)]
    pub(crate) fn is_marked(self) -> bool {
        (self.meta() >> 40) as u8 & 1 == 1
    }

    #[inline(always)]
    pub(crate) fn set_marked(self, on: bool) {
        let m = self.meta() & !(0xffu64 << 40);
        let m = if on { m | (1u64 << 40) } else { m };
        // SAFETY: pointer Values point at live objects; word 1 is the header.
        unsafe { self.words().add(1).write(m) }
    }

    /// The VM's flag byte (cache-watch bits; see `interp::lookup`).
    #[inline(always)]
    pub fn flags(self) -> u8 {
        (self.meta() >> 48) as u8
    }

    #[inline(always)]
    pub fn set_flags(self, flags: u8) {
        let m = (self.meta() & !(0xffu64 << 48)) | ((flags as u64) << 48);
        // SAFETY: pointer Values point at live objects; word 1 is the header.
        unsafe { self.words().add(1).write(m) }
    }

    /// The handle word of a host object (File, Semaphore, GUI stand-in); 0 for other kinds.
    #[inline(always)]
    pub fn handle(self) -> u64 {
        if self.kind_byte() != Kind::Host as u8 {
            return 0;
        }
        // SAFETY: a host object has one body word.
        unsafe { self.words().add(HEADER_WORDS).read() }
    }

    pub(crate) fn set_handle(self, handle: u64) {
        assert!(self.kind_byte() == Kind::Host as u8, "not a host object");
        // SAFETY: a host object has one body word.
        unsafe { self.words().add(HEADER_WORDS).write(handle) }
    }

    /// Slot `i` (0-based) of a pointer object. Panics on a non-pointer object or a bad index:
    /// callers that take indices from Smalltalk check them first and report a Smalltalk error.
    #[inline(always)]
    pub fn slot(self, i: usize) -> Value {
        let meta = self.meta();
        assert!((meta >> 32) as u8 == Kind::Pointers as u8 && i < (meta as u32) as usize, "slot {i} out of range");
        // SAFETY: checked above that the object has more than `i` slots.
        Value::from_raw(unsafe { self.words().add(HEADER_WORDS + i).read() })
    }

    /// Stores into slot `i` of a pointer object; same checks as `slot`.
    #[inline(always)]
    pub fn set_slot(self, i: usize, v: Value) {
        let meta = self.meta();
        assert!((meta >> 32) as u8 == Kind::Pointers as u8 && i < (meta as u32) as usize, "slot {i} out of range");
        // SAFETY: checked above that the object has more than `i` slots.
        unsafe { self.words().add(HEADER_WORDS + i).write(v.raw()) }
    }

    /// Slot `i` if this is a pointer object with more than `i` slots.
    #[inline(always)]
    pub fn slot_checked(self, i: usize) -> Option<Value> {
        if self.is_ptr() {
            let meta = self.meta();
            if (meta >> 32) as u8 == Kind::Pointers as u8 && i < (meta as u32) as usize {
                // SAFETY: checked above that the object has more than `i` slots.
                return Some(Value::from_raw(unsafe { self.words().add(HEADER_WORDS + i).read() }));
            }
        }
        None
    }

    /// The bytes of a byte object (empty for any other kind).
    ///
    /// The slice borrows nothing: it must not be kept across an allocation or a safepoint.
    #[inline(always)]
    pub fn bytes<'a>(self) -> &'a [u8] {
        if self.kind_byte() != Kind::Bytes as u8 {
            return &[];
        }
        // SAFETY: a byte object's body holds `len` initialised bytes; objects do not move, and the
        // caller does not keep the slice across a collection (documented above).
        unsafe { std::slice::from_raw_parts(self.words().add(HEADER_WORDS) as *const u8, self.len()) }
    }

    /// The mutable bytes of a byte object (empty for any other kind). Same rule as `bytes`.
    #[inline(always)]
    pub fn bytes_mut<'a>(self) -> &'a mut [u8] {
        if self.kind_byte() != Kind::Bytes as u8 {
            return &mut [];
        }
        // SAFETY: as for `bytes`; the VM is single-threaded, so no other slice is live while a
        // primitive writes.
        unsafe { std::slice::from_raw_parts_mut(self.words().add(HEADER_WORDS) as *mut u8, self.len()) }
    }

    /// The payload of a Float object.
    #[inline(always)]
    pub fn float(self) -> f64 {
        assert!(self.kind() == Kind::Float, "not a float");
        // SAFETY: a Float object has one body word.
        f64::from_bits(unsafe { self.words().add(HEADER_WORDS).read() })
    }

    pub(crate) fn set_float(self, f: f64) {
        assert!(self.kind() == Kind::Float, "not a float");
        // SAFETY: a Float object has one body word.
        unsafe { self.words().add(HEADER_WORDS).write(f.to_bits()) }
    }

    /// Address of slot 0, for compiled code and bulk copies.
    pub fn body_ptr(self) -> *mut u64 {
        // SAFETY: in-bounds: every object has its header.
        unsafe { self.words().add(HEADER_WORDS) }
    }
}

/// A pointer object known to have slots, with its length cached, so that indexing checks only the
/// index. The interpreter keeps its stack, temporaries, arguments and literals this way.
///
/// Sound because an object's kind and length never change while it lives, and a `Slots` is only
/// held for an object the VM keeps alive (it is referenced from the active context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    obj: Value,
    len: usize,
}

impl Slots {
    /// `v` as slots, if it is a pointer object.
    #[inline(always)]
    pub fn new(v: Value) -> Option<Slots> {
        if v.is_pointers() {
            Some(Slots { obj: v, len: v.len() })
        } else {
            None
        }
    }

    /// A handle with no slots (every access misses).
    pub const fn none() -> Slots {
        Slots { obj: Value::from_int(0), len: 0 }
    }

    #[inline(always)]
    pub fn obj(self) -> Value {
        self.obj
    }

    #[inline(always)]
    pub fn len(self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn get(self, i: usize) -> Option<Value> {
        if i < self.len {
            // SAFETY: `obj` is a live pointer object with `len` slots (type invariant).
            Some(Value::from_raw(unsafe { (self.obj.raw() as *const u64).add(HEADER_WORDS + i).read() }))
        } else {
            None
        }
    }

    /// Stores slot `i`; false (and no store) when `i` is out of range.
    #[inline(always)]
    pub fn set(self, i: usize, v: Value) -> bool {
        if i < self.len {
            // SAFETY: `obj` is a live pointer object with `len` slots (type invariant).
            unsafe { (self.obj.raw() as *mut u64).add(HEADER_WORDS + i).write(v.raw()) };
            true
        } else {
            false
        }
    }
}
