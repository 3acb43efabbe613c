//! Object memory: a non-moving heap with size-segregated pages and a mark-sweep collector.
//!
//! Owns allocation and reclamation of every Smalltalk object. It never decides *when* to collect:
//! the VM calls `collect` only at safepoints where every live value is reachable from the roots it
//! passes in (compiled code and primitives allocate but never collect). Objects never move, so raw
//! pointers held by the interpreter, the recorder and compiled traces stay valid.
//!
//! Small objects (up to `MAX_SMALL_WORDS` words including the header) live in pages, each carved
//! into cells of one size; free cells are chained through their first word. A size's first page
//! is 4 KiB and later ones 32 KiB: most of the 64 sizes hold only a few objects, and start-up
//! should not zero and fault in 2 MiB for a 200 KiB image. Larger objects
//! get their own allocation. A page that the sweep finds empty goes back to a shared pool, so a
//! program whose object sizes change over time does not keep dead pages per size. Pages are never
//! returned to the system (see `sweep`), so the heap's footprint is its peak live size plus slack.

mod object;
mod value;

pub use object::{
    body_words, Kind, Slots, BODY_OFFSET, CLASS_OFFSET, FLAGS_OFFSET, HEADER_WORDS, KIND_OFFSET, LEN_OFFSET,
    MIN_CELL_WORDS,
};
pub use value::Value;

use object::init_header;
use std::alloc::{alloc, dealloc, Layout};

/// Largest object (header included, in words) served from size-class pages.
const MAX_SMALL_WORDS: usize = 64;
/// Words per small-object page.
const PAGE_WORDS: usize = 4096;
/// Words of the first page of each cell size.
const FIRST_PAGE_WORDS: usize = 512;
/// Allocation (in words) between collections before the heap has any live data to scale by.
const MIN_GC_BUDGET_WORDS: usize = 1 << 20; // 8 MiB
/// Largest object the VM will allocate (words); beyond it allocation reports failure instead of
/// asking the system for absurd amounts.
pub const MAX_OBJECT_WORDS: usize = 1 << 28;

struct Page {
    mem: Box<[u64]>,
    cell: usize,
}

struct LargeObject {
    ptr: *mut u64,
    words: usize,
}

/// Figures from one collection.
#[derive(Clone, Copy, Debug, Default)]
pub struct GcStats {
    pub live_objects: usize,
    pub live_words: usize,
    pub freed_objects: usize,
}

/// The object heap.
pub struct Heap {
    pages: Vec<Page>,
    empty_pages: Vec<Box<[u64]>>,
    /// Head of the free-cell chain for each cell size (index = words), 0 when empty.
    free: [u64; MAX_SMALL_WORDS + 1],
    /// Whether a page was ever carved for each cell size (the first one is small).
    carved: [bool; MAX_SMALL_WORDS + 1],
    large: Vec<LargeObject>,
    allocated_since_gc: usize,
    gc_budget: usize,
    total_allocated_words: u64,
    mark_stack: Vec<Value>,
    live_words_after_gc: usize,
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap {
            pages: Vec::new(),
            empty_pages: Vec::new(),
            free: [0; MAX_SMALL_WORDS + 1],
            carved: [false; MAX_SMALL_WORDS + 1],
            large: Vec::new(),
            allocated_since_gc: 0,
            gc_budget: MIN_GC_BUDGET_WORDS,
            total_allocated_words: 0,
            mark_stack: Vec::new(),
            live_words_after_gc: 0,
        }
    }

    /// True once enough has been allocated since the last collection that the next safepoint
    /// should collect.
    #[inline(always)]
    pub fn wants_collection(&self) -> bool {
        self.allocated_since_gc >= self.gc_budget
    }

    /// Words allocated over the heap's lifetime.
    pub fn total_allocated_words(&self) -> u64 {
        self.total_allocated_words + self.allocated_since_gc as u64
    }

    /// Bytes of live objects found by the last collection.
    pub fn live_bytes(&self) -> usize {
        self.live_words_after_gc * 8
    }

    /// Bytes currently reserved from the system for objects.
    pub fn reserved_bytes(&self) -> usize {
        let pages =
            self.pages.iter().map(|p| p.mem.len()).chain(self.empty_pages.iter().map(|m| m.len())).sum::<usize>() * 8;
        pages + self.large.iter().map(|l| l.words * 8).sum::<usize>()
    }

    fn carve_page(&mut self, cell: usize) {
        let words = if self.carved[cell] { PAGE_WORDS } else { FIRST_PAGE_WORDS };
        self.carved[cell] = true;
        // Any pooled page will do: a page's cells are as many as fit in it.
        let mut mem = self.empty_pages.pop().unwrap_or_else(|| vec![0u64; words].into_boxed_slice());
        let base = mem.as_mut_ptr();
        let n = mem.len() / cell;
        let mut head = self.free[cell];
        for k in (0..n).rev() {
            // SAFETY: (k + 1) * cell <= mem.len(), so the cell is inside `mem`.
            unsafe { free_cell(base.add(k * cell), cell, &mut head) };
        }
        self.free[cell] = head;
        self.pages.push(Page { mem, cell });
    }

    /// Raw allocation of `words` words (header included); the caller writes the header and body.
    #[inline(always)]
    fn alloc_words(&mut self, words: usize) -> (*mut u64, u8) {
        self.allocated_since_gc += words;
        if words <= MAX_SMALL_WORDS {
            if self.free[words] == 0 {
                self.carve_page(words);
            }
            let p = self.free[words] as *mut u64;
            // SAFETY: free-chain entries are free cells of this size inside our pages; word 2 is
            // the link.
            self.free[words] = unsafe { p.add(2).read() };
            (p, words as u8)
        } else {
            let layout = Layout::array::<u64>(words).expect("object size checked by caller");
            // SAFETY: layout has non-zero size (words > MAX_SMALL_WORDS).
            let p = unsafe { alloc(layout) } as *mut u64;
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            self.large.push(LargeObject { ptr: p, words });
            (p, 0)
        }
    }

    #[inline(always)]
    fn alloc_object(&mut self, class: Value, kind: Kind, len: usize) -> Value {
        let words = (HEADER_WORDS + body_words(kind, len)).max(MIN_CELL_WORDS);
        assert!(words <= MAX_OBJECT_WORDS, "object too large");
        let (p, cell) = self.alloc_words(words);
        // SAFETY: `p` has `words` words, enough for the header and body.
        unsafe { init_header(p, class, len as u32, kind, cell) };
        Value::from_raw(p as u64)
    }

    /// A pointer object of `n` slots with its header written and its body not yet: from a free
    /// cell popped inline when one is ready (the common case on every send: contexts, stacks,
    /// argument Arrays), else by the general path.
    #[inline(always)]
    fn alloc_pointer_cell(&mut self, class: Value, n: usize) -> Value {
        let words = (HEADER_WORDS + n).max(MIN_CELL_WORDS);
        if words <= MAX_SMALL_WORDS && self.free[words] != 0 {
            let p = self.free[words] as *mut u64;
            self.allocated_since_gc += words;
            // SAFETY: a free-chain entry is a free cell of `words` words in one of our pages;
            // word 2 is the link, and the whole cell is ours to initialise.
            unsafe {
                self.free[words] = p.add(2).read();
                init_header(p, class, n as u32, Kind::Pointers, words as u8);
            }
            return Value::from_raw(p as u64);
        }
        self.alloc_pointer_cell_slow(class, n)
    }

    #[inline(never)]
    fn alloc_pointer_cell_slow(&mut self, class: Value, n: usize) -> Value {
        self.alloc_object(class, Kind::Pointers, n)
    }

    /// A pointer object with `n` slots, all `fill`.
    #[inline]
    pub fn alloc_pointers(&mut self, class: Value, n: usize, fill: Value) -> Value {
        let v = self.alloc_pointer_cell(class, n);
        let body = v.body_ptr();
        for i in 0..n {
            // SAFETY: the body has n words.
            unsafe { body.add(i).write(fill.raw()) };
        }
        v
    }

    /// A pointer object holding exactly `slots`.
    #[inline]
    pub fn alloc_with_slots(&mut self, class: Value, slots: &[Value]) -> Value {
        let v = self.alloc_pointer_cell(class, slots.len());
        let body = v.body_ptr();
        for (i, s) in slots.iter().enumerate() {
            // SAFETY: the body has slots.len() words.
            unsafe { body.add(i).write(s.raw()) };
        }
        v
    }

    /// A pointer object holding a copy of slots `start..start + n` of `src` (a pointer object
    /// with at least that many slots).
    #[inline]
    pub fn alloc_slots_from(&mut self, class: Value, src: Value, start: usize, n: usize) -> Value {
        assert!(src.is_pointers() && start + n <= src.len(), "source slots out of range");
        let v = self.alloc_object(class, Kind::Pointers, n);
        // SAFETY: both bodies have the needed words (checked above; `v` was just allocated with
        // n slots), and they are distinct objects.
        unsafe { std::ptr::copy_nonoverlapping(src.body_ptr().add(start), v.body_ptr(), n) };
        v
    }

    /// A byte object of `n` zero bytes.
    pub fn alloc_bytes(&mut self, class: Value, n: usize) -> Value {
        let v = self.alloc_object(class, Kind::Bytes, n);
        let body = v.body_ptr();
        for i in 0..body_words(Kind::Bytes, n) {
            // SAFETY: the body has that many words.
            unsafe { body.add(i).write(0) };
        }
        v
    }

    /// A byte object holding a copy of `bytes`.
    pub fn alloc_bytes_from(&mut self, class: Value, bytes: &[u8]) -> Value {
        let v = self.alloc_bytes(class, bytes.len());
        v.bytes_mut().copy_from_slice(bytes);
        v
    }

    pub fn alloc_float(&mut self, class: Value, f: f64) -> Value {
        let v = self.alloc_object(class, Kind::Float, 0);
        v.set_float(f);
        v
    }

    /// A host object (File, Semaphore, GUI stand-in) whose handle word is `handle`.
    pub fn alloc_host(&mut self, class: Value, handle: u64) -> Value {
        let v = self.alloc_object(class, Kind::Host, 0);
        v.set_handle(handle);
        v
    }

    /// Returns a small object to its free list at once, before any collection. The caller
    /// guarantees that nothing live refers to it (the interpreter does this for contexts and their
    /// arrays that never escaped). Large objects are left to the collector.
    #[inline]
    pub fn free(&mut self, v: Value) {
        let cell = v.cell_words() as usize;
        if cell == 0 || v.kind() == Kind::Free {
            return;
        }
        // Early frees do not count towards the next collection (they are not garbage for it).
        self.total_allocated_words += cell.min(self.allocated_since_gc) as u64;
        self.allocated_since_gc = self.allocated_since_gc.saturating_sub(cell);
        let mut head = self.free[cell];
        // SAFETY: `v` is a live small object (cell != 0), so it is a whole cell of a page.
        unsafe { free_cell(v.raw() as *mut u64, cell, &mut head) };
        self.free[cell] = head;
    }

    /// Calls `f` on every allocated object (pages and large objects).
    pub fn for_each_object(&self, mut f: impl FnMut(Value)) {
        for page in &self.pages {
            let base = page.mem.as_ptr();
            for k in 0..page.mem.len() / page.cell {
                // SAFETY: inside the page; every cell has a header.
                let meta = unsafe { base.add(k * page.cell + 1).read() };
                if (meta >> 32) as u8 != Kind::Free as u8 {
                    // SAFETY: in-bounds pointer to a live cell.
                    f(Value::from_raw(unsafe { base.add(k * page.cell) } as u64));
                }
            }
        }
        for l in &self.large {
            f(Value::from_raw(l.ptr as u64));
        }
    }

    /// Replaces every reference to `old` inside heap objects by `new` (the VM updates its own
    /// roots). Used for primitive 32, which must grow an object while keeping its identity.
    pub fn replace_references(&mut self, old: Value, new: Value) {
        self.for_each_object(|o| {
            if o.obj_class() == old {
                o.set_obj_class(new);
            }
            if o.kind() == Kind::Pointers {
                for i in 0..o.len() {
                    if o.slot(i) == old {
                        o.set_slot(i, new);
                    }
                }
            }
        });
    }

    /// Starts a collection. Mark the roots with `Collection::mark`, then call `trace`, query
    /// liveness with `is_live` (for weak tables), and `finish` to sweep.
    pub fn start_collection(&mut self) -> Collection<'_> {
        Collection { heap: self }
    }

    fn sweep(&mut self) -> GcStats {
        let mut stats = GcStats::default();
        self.free = [0; MAX_SMALL_WORDS + 1];
        let mut kept = Vec::with_capacity(self.pages.len());
        for mut page in std::mem::take(&mut self.pages) {
            let cell = page.cell;
            let base = page.mem.as_mut_ptr();
            let n = page.mem.len() / cell;
            let mut head = self.free[cell];
            let mut live = 0;
            for k in (0..n).rev() {
                // SAFETY: inside the page; every cell has a header.
                unsafe {
                    let p = base.add(k * cell);
                    let meta = p.add(1).read();
                    let kind = (meta >> 32) as u8;
                    if kind != Kind::Free as u8 && (meta >> 40) as u8 & 1 == 1 {
                        p.add(1).write(meta & !(0xffu64 << 40));
                        live += 1;
                        stats.live_words += cell;
                        continue;
                    }
                    if kind != Kind::Free as u8 {
                        stats.freed_objects += 1;
                    }
                    free_cell(p, cell, &mut head);
                }
            }
            if live == 0 {
                // Pages are kept, never returned to the system: a dead stack slot may still name
                // a cell that was freed early (`Heap::free`), and it must stay readable memory.
                self.empty_pages.push(page.mem);
            } else {
                stats.live_objects += live;
                self.free[cell] = head;
                kept.push(page);
            }
        }
        self.pages = kept;
        let mut large = Vec::with_capacity(self.large.len());
        for l in std::mem::take(&mut self.large) {
            let v = Value::from_raw(l.ptr as u64);
            if v.is_marked() {
                v.set_marked(false);
                stats.live_objects += 1;
                stats.live_words += l.words;
                large.push(l);
            } else {
                stats.freed_objects += 1;
                // SAFETY: allocated in alloc_words with this exact layout, and unreachable.
                unsafe { dealloc(l.ptr as *mut u8, Layout::array::<u64>(l.words).unwrap()) };
            }
        }
        self.large = large;
        self.total_allocated_words += self.allocated_since_gc as u64;
        self.allocated_since_gc = 0;
        self.live_words_after_gc = stats.live_words;
        // Allocate a third as much as is live (at least 8 MiB) before the next collection: peak
        // memory stays near 1.33 × the live data (deep recursions keep a lot live), and each
        // collection's work stays proportional to the allocation it pays for.
        self.gc_budget = MIN_GC_BUDGET_WORDS.max(stats.live_words / 3);
        stats
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        for l in self.large.drain(..) {
            // SAFETY: allocated in alloc_words with this exact layout; the heap is going away.
            unsafe { dealloc(l.ptr as *mut u8, Layout::array::<u64>(l.words).unwrap()) };
        }
    }
}

/// Turns the cell at `p` into a free cell linked in front of `*head`. A free cell's class word is
/// the SmallInt 0, so a stale reference to it (which only introspection of dead stack slots can
/// produce) reads as an object of no class instead of following a free-list link.
///
/// # Safety
/// `p` must be the start of a `cell`-word cell inside a heap page.
#[inline(always)]
unsafe fn free_cell(p: *mut u64, cell: usize, head: &mut u64) {
    // SAFETY: the caller guarantees the cell's three header words are ours to write.
    unsafe {
        p.write(Value::from_int(0).raw());
        p.add(1).write((Kind::Free as u64) << 32 | ((cell as u64) << 56));
        p.add(2).write(*head);
    }
    *head = p as u64;
}

/// A collection in progress (see `Heap::start_collection`).
pub struct Collection<'h> {
    heap: &'h mut Heap,
}

impl Collection<'_> {
    /// Marks a root.
    #[inline]
    pub fn mark(&mut self, v: Value) {
        if v.is_ptr() && !v.is_marked() {
            v.set_marked(true);
            self.heap.mark_stack.push(v);
        }
    }

    /// Marks everything reachable from the roots marked so far.
    pub fn trace(&mut self) {
        while let Some(v) = self.heap.mark_stack.pop() {
            if v.kind() == Kind::Free {
                continue;
            }
            self.mark(v.obj_class());
            if v.kind() == Kind::Pointers {
                for i in 0..v.len() {
                    self.mark(v.slot(i));
                }
            }
        }
    }

    /// After `trace`: whether `v` survives this collection.
    pub fn is_live(&self, v: Value) -> bool {
        v.is_int() || v.is_marked()
    }

    /// Frees everything unmarked.
    pub fn finish(self) -> GcStats {
        self.heap.sweep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(heap: &mut Heap) -> Value {
        let c = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
        c.set_obj_class(c);
        c
    }

    #[test]
    fn objects_hold_slots_bytes_and_floats() {
        let mut h = Heap::new();
        let c = class(&mut h);
        let a = h.alloc_pointers(c, 3, Value::from_int(7));
        assert_eq!(a.len(), 3);
        assert_eq!(a.slot(2), Value::from_int(7));
        a.set_slot(1, a);
        assert_eq!(a.slot(1), a);
        let s = h.alloc_bytes_from(c, b"hello world, this is long");
        assert_eq!(s.bytes(), b"hello world, this is long");
        let f = h.alloc_float(c, 2.5);
        assert_eq!(f.float(), 2.5);
        assert_eq!(f.len(), 0);
        let big = h.alloc_pointers(c, 1000, Value::from_int(1));
        assert_eq!(big.slot(999), Value::from_int(1));
    }

    #[test]
    fn collection_keeps_reachable_and_frees_the_rest() {
        let mut h = Heap::new();
        let c = class(&mut h);
        let root = h.alloc_pointers(c, 2, Value::from_int(0));
        let child = h.alloc_pointers(c, 1, Value::from_int(5));
        root.set_slot(0, child);
        for _ in 0..10_000 {
            h.alloc_pointers(c, 4, Value::from_int(0));
            h.alloc_pointers(c, 200, Value::from_int(0));
        }
        let mut gc = h.start_collection();
        gc.mark(root);
        gc.trace();
        assert!(gc.is_live(child));
        let stats = gc.finish();
        assert_eq!(stats.live_objects, 3); // root, child, class
        assert!(stats.freed_objects >= 20_000);
        assert_eq!(root.slot(0), child);
        assert_eq!(child.slot(0), Value::from_int(5));
        // The freed cells are reused.
        let before = h.reserved_bytes();
        for _ in 0..10_000 {
            h.alloc_pointers(c, 4, Value::from_int(0));
        }
        assert!(h.reserved_bytes() <= before + PAGE_WORDS * 8 * 2);
    }

    #[test]
    fn repeated_garbage_stays_bounded() {
        let mut h = Heap::new();
        let c = class(&mut h);
        let mut peak = 0;
        for round in 0..50 {
            for k in 0..20_000 {
                h.alloc_pointers(c, (k + round) % 40, Value::from_int(0));
            }
            let mut gc = h.start_collection();
            gc.mark(c);
            gc.trace();
            gc.finish();
            peak = peak.max(h.reserved_bytes());
        }
        assert!(peak < 16 << 20, "heap grew to {peak} bytes");
    }

    #[test]
    fn a_few_objects_of_every_size_reserve_small_pages() {
        let mut h = Heap::new();
        let c = class(&mut h);
        let mut kept = Vec::new();
        for n in 0..=MAX_SMALL_WORDS - HEADER_WORDS {
            kept.push(h.alloc_pointers(c, n, Value::from_int(n as i32)));
        }
        // One 4 KiB first page per size (65 sizes), not 32 KiB per size (2 MiB).
        assert!(h.reserved_bytes() <= 300 << 10, "{} bytes reserved", h.reserved_bytes());
        // Later pages of a size are full-sized, and objects in both kinds of page survive a
        // collection and are all visited.
        for _ in 0..2_000 {
            kept.push(h.alloc_pointers(c, 7, Value::from_int(-1)));
        }
        let mut gc = h.start_collection();
        for &k in &kept {
            gc.mark(k);
        }
        gc.trace();
        let stats = gc.finish();
        assert_eq!(stats.live_objects, kept.len() + 1);
        let mut seen = 0;
        h.for_each_object(|_| seen += 1);
        assert_eq!(seen, kept.len() + 1);
        for (n, k) in kept.iter().enumerate().take(MAX_SMALL_WORDS - HEADER_WORDS + 1) {
            assert_eq!(k.len(), n);
            assert!(n == 0 || k.slot(n - 1) == Value::from_int(n as i32));
        }
    }

    #[test]
    fn replace_references_rewrites_slots_and_classes() {
        let mut h = Heap::new();
        let c = class(&mut h);
        let old = h.alloc_pointers(c, 1, Value::from_int(0));
        let holder = h.alloc_pointers(old, 2, old);
        let new = h.alloc_pointers(c, 2, Value::from_int(0));
        h.replace_references(old, new);
        assert_eq!(holder.slot(0), new);
        assert_eq!(holder.slot(1), new);
        assert_eq!(holder.obj_class(), new);
    }
}
