//! Method lookup and its caches: the global (class, selector) → method cache, the inline caches of
//! send sites (in `MethodData`), and their invalidation.
//!
//! Lookup scans a class's `methods` array linearly comparing selector strings by content, then the
//! parent class, as the reference VM does. Caches are only an accelerator: any store into a class
//! object's `parentClass`/`methods` slots, or into a methods array that a lookup has read, flushes
//! every cache (`Vm::note_store`). A cache never answers for a lookup that a store may have changed.

use super::{class, meth, Vm};
use crate::heap::{Kind, Value};
use crate::jit::LookupChange;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Header flag: this object is a class whose `parentClass`/`methods` slots lookups depend on.
pub const WATCH_CLASS: u8 = 1;
/// Header flag: this object is a methods array that lookups have read; any store flushes.
pub const WATCH_ALL: u8 = 2;
/// Header flag: this object is a Method, or the bytecodes or literals Array of one, whose
/// `MethodData` (quick form, stack depth, send sites) was derived from it and which traces may
/// have inlined (a literal is a constant in a trace); a store recomputes that data and drops
/// every trace.
pub const WATCH_METHOD: u8 = 16;
/// Every watch bit: a store into an object with any of them may change what a lookup answers.
pub const WATCH_MASK: u8 = WATCH_CLASS | WATCH_ALL | WATCH_METHOD;

/// Entries of the direct-mapped cache in front of `Vm::method_index`.
pub const METHOD_INDEX_CACHE: usize = 512;

/// A multiplicative hash for pairs of object addresses (std's SipHash is needlessly slow here).
#[derive(Default)]
pub struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The global lookup cache, keyed by (class, selector object) identity.
#[derive(Default)]
pub struct LookupCache {
    map: HashMap<(u64, u64), Value, BuildHasherDefault<PairHasher>>,
}

impl LookupCache {
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// True when `a` and `b` are byte objects with the same content.
fn same_selector(a: Value, b: Value) -> bool {
    a == b || (a.is_ptr() && b.is_ptr() && a.kind() == Kind::Bytes && b.kind() == Kind::Bytes && a.bytes() == b.bytes())
}

/// The method `selector` names for instances of `cls`: its `methods` array, then its parent's,
/// as the reference VM looks up. With `watch`, every class and methods array read is marked so
/// that a later store into it flushes the caches (`Vm::lookup_uncached`); without, nothing is
/// written, as compiled code's method-identity guard needs (`jit::runtime`, `Helper::Finds`).
pub fn find_method(nil: Value, mut cls: Value, selector: Value, watch: bool) -> Option<Value> {
    let mut guard = 0;
    while cls != nil && cls.is_ptr() && cls.kind() == Kind::Pointers && cls.len() > class::METHODS {
        if watch {
            cls.set_flags(cls.flags() | WATCH_CLASS);
        }
        let methods = cls.slot(class::METHODS);
        if methods.is_ptr() && methods.kind() == Kind::Pointers {
            if watch {
                methods.set_flags(methods.flags() | WATCH_ALL);
            }
            for i in 0..methods.len() {
                let m = methods.slot(i);
                if let Some(name) = m.slot_checked(meth::NAME) {
                    if same_selector(name, selector) {
                        return Some(m);
                    }
                }
            }
        }
        cls = cls.slot(class::PARENT);
        guard += 1;
        if guard > 10_000 {
            return None; // a cycle in parentClass links
        }
    }
    None
}

impl Vm {
    /// Full lookup, no caches. Marks every class and methods array it reads so that a later store
    /// into them flushes the caches.
    pub fn lookup_uncached(&mut self, cls: Value, selector: Value) -> Option<Value> {
        find_method(self.k.nil, cls, selector, true)
    }

    /// Lookup through the global cache.
    pub fn lookup(&mut self, cls: Value, selector: Value) -> Option<Value> {
        let key = (cls.raw(), selector.raw());
        if let Some(&m) = self.cache.map.get(&key) {
            return Some(m);
        }
        let m = self.lookup_uncached(cls, selector)?;
        self.cache.map.insert(key, m);
        Some(m)
    }

    /// The `MethodData` index of a method found by lookup; None if it has no bytecodes.
    #[inline]
    pub(crate) fn data_of(&mut self, method: Value) -> Option<usize> {
        let code = method.slot_checked(meth::BYTECODES).filter(|c| c.is_bytes())?;
        Some(self.method_data_index(method, code))
    }

    /// Lookup through the inline cache of send site `site` of the method with data `data`, then the
    /// global cache. Updates the site's state and counts. Answers the method and its data index
    /// (None when the method has no bytecodes).
    #[inline]
    pub(crate) fn lookup_at_site(
        &mut self,
        data: usize,
        site: usize,
        cls: Value,
        selector: Value,
    ) -> Option<(Value, Option<usize>)> {
        let s = &mut self.method_data[data].sends[site];
        s.sends += 1;
        for e in s.entries.as_mut_slice() {
            if e.class == cls {
                e.count = e.count.saturating_add(1);
                return Some((e.method, Some(e.data as usize)));
            }
        }
        self.counters.ic_misses += 1;
        let m = self.lookup(cls, selector)?;
        let d = self.data_of(m);
        if let Some(d) = d {
            self.add_site_entry(data, site, cls, m, d);
        }
        Some((m, d))
    }

    /// The method (and its data index) a send site's inline cache holds for `cls`, without
    /// counting a send.
    #[inline]
    pub(crate) fn probe_site(&self, data: usize, site: usize, cls: Value) -> Option<(Value, usize)> {
        self.method_data[data].sends[site]
            .entries
            .as_slice()
            .iter()
            .find(|e| e.class == cls)
            .map(|e| (e.method, e.data as usize))
    }

    /// Records at a send site that a send of class `cls` found `method` (for sends the VM ran
    /// another way, such as a quick forwarding method).
    pub(crate) fn note_site_send(&mut self, data: usize, site: usize, cls: Value, method: Value, method_data: usize) {
        let s = &mut self.method_data[data].sends[site];
        s.sends += 1;
        for e in s.entries.as_mut_slice() {
            if e.class == cls {
                e.count = e.count.saturating_add(1);
                return;
            }
        }
        self.add_site_entry(data, site, cls, method, method_data);
    }

    fn add_site_entry(&mut self, data: usize, site: usize, cls: Value, method: Value, method_data: usize) {
        let s = &mut self.method_data[data].sends[site];
        let entry = super::SiteEntry { class: cls, method, count: 1, data: method_data as u32 };
        if !s.megamorphic && !s.entries.push(entry) {
            s.megamorphic = true;
            s.entries.clear();
        }
    }

    /// Flushes the global cache and every inline cache, and drops every trace.
    pub fn flush_caches(&mut self) {
        self.flush_caches_for(LookupChange::Everything);
    }

    /// Flushes the global cache and every inline cache, and drops the traces `change` may
    /// affect.
    pub(crate) fn flush_caches_for(&mut self, change: LookupChange) {
        self.invalidate_traces(change);
        self.cache.clear();
        for d in &mut self.method_data {
            d.flush_sends();
        }
        self.counters.cache_flushes += 1;
        tracing::debug!(target: "tracevm::interp", "method caches flushed");
    }

    /// A method named `selector` was added to (or replaced in) `cls`'s methods: like
    /// `note_store(cls, class::METHODS)`, but only lookups of that selector have changed.
    pub(crate) fn note_method_installed(&mut self, cls: Value, selector: &[u8]) {
        if cls.flags() & WATCH_CLASS != 0 {
            self.flush_caches_for(LookupChange::Class { class_or_methods: cls, selector: Some(selector) });
        }
    }

    /// The write barrier for lookups: called before a store of slot `index` into `obj`.
    #[inline(always)]
    pub(crate) fn note_store(&mut self, obj: Value, index: usize) {
        let f = obj.flags();
        if f != 0
            && (f & WATCH_ALL != 0 || (f & WATCH_CLASS != 0 && (index == class::PARENT || index == class::METHODS)))
        {
            self.flush_caches_for(LookupChange::Class { class_or_methods: obj, selector: None });
        }
        if f & WATCH_METHOD != 0 {
            self.refresh_method_data(obj);
        }
    }

    /// The method data index of `method`, creating it on first use.
    #[inline]
    pub(crate) fn method_data_index(&mut self, method: Value, code: Value) -> usize {
        let key = method.raw();
        let slot = (key >> 4) as usize & (METHOD_INDEX_CACHE - 1);
        let (k, i) = self.method_index_cache[slot];
        if k == key {
            return i as usize;
        }
        let i = match self.method_index.get(&key) {
            Some(&i) => i,
            None => self.new_method_data(method, code),
        };
        self.method_index_cache[slot] = (key, i as u32);
        i
    }

    /// Recomputes the data of every method that is `obj` or whose bytecodes are `obj`, in place
    /// (indices held by running contexts stay valid), and drops every trace. Called after a
    /// store into either, or into a method's literals (`WATCH_METHOD`).
    #[cold]
    pub(crate) fn refresh_method_data(&mut self, obj: Value) {
        for i in 0..self.method_data.len() {
            let m = self.method_data[i].method;
            if m == Value::from_int(0) {
                continue;
            }
            let code = m.slot_checked(meth::BYTECODES).filter(|c| c.is_bytes());
            if m == obj || code == Some(obj) || self.method_data[i].code == obj {
                let bytes = code.map(|c| c.bytes()).unwrap_or(&[]);
                let mut d = super::MethodData::for_method(m, bytes);
                d.code = code.unwrap_or(Value::from_int(0));
                if let Some(c) = code {
                    c.set_flags(c.flags() | WATCH_METHOD);
                }
                watch_literals(m);
                d.temp_size = m.slot_checked(meth::TEMP_SIZE).and_then(|t| t.as_int());
                self.method_data[i] = d;
            }
        }
        self.flush_caches();
    }

    #[cold]
    fn new_method_data(&mut self, method: Value, code: Value) -> usize {
        let mut d = super::MethodData::for_method(method, code.bytes());
        d.code = code;
        d.temp_size = method.slot_checked(meth::TEMP_SIZE).and_then(|t| t.as_int());
        method.set_flags(method.flags() | WATCH_METHOD);
        code.set_flags(code.flags() | WATCH_METHOD);
        watch_literals(method);
        let i = match self.free_method_data.pop() {
            Some(i) => {
                self.method_data[i] = d;
                i
            }
            None => {
                self.method_data.push(d);
                self.method_data.len() - 1
            }
        };
        self.method_index.insert(method.raw(), i);
        i
    }

    /// The data of a method, if it has run.
    pub fn method_data_of(&self, method: Value) -> Option<&super::MethodData> {
        let i = *self.method_index.get(&method.raw())?;
        self.method_data.get(i).filter(|d| d.method == method)
    }

    /// Forgets the data of methods the collector found dead (their addresses will be reused).
    pub(crate) fn drop_method_data(&mut self, dead: &[usize]) {
        for &i in dead {
            let m = self.method_data[i].method;
            self.method_index.remove(&m.raw());
            self.method_data[i] = super::MethodData::vacant();
            self.free_method_data.push(i);
        }
        self.method_index_cache = [(0, 0); METHOD_INDEX_CACHE];
    }
}

/// Marks `method`'s literals Array: a store into it changes what the method does.
fn watch_literals(method: Value) {
    if let Some(l) = method.slot_checked(meth::LITERALS).filter(|l| l.is_pointers()) {
        l.set_flags(l.flags() | WATCH_METHOD);
    }
}
