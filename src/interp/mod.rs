//! The virtual machine: state shared by the interpreter, the primitives and the host (`Vm`), and
//! the entry points the host uses to run Smalltalk code.
//!
//! Owns the roots (image roots, processes, pinned host values, caches) and garbage collection at
//! safepoints. It never prints: output goes through the `Vm`'s writers, errors go back to the host
//! as `VmError` and are reported once, at the edge (the CLI).

mod exec;
pub mod lookup;
mod method_data;
mod process;

pub(crate) use exec::{free_returned_context, MAX_TEMPORARIES, OWNS_ARGS, RECYCLABLE};
pub use lookup::{find_method, WATCH_MASK};
pub use method_data::{BranchCounts, MethodData, SendSite, SiteEntries, SiteEntry, SiteRef, POLY_LIMIT};
pub use process::{Process, Scheduler};

use crate::heap::{Heap, Kind, Value};
use crate::image;
use lookup::LookupCache;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use thiserror::Error;

/// Slot indices of Context and Block objects (SMALLWORLD-VM.md §2).
pub mod ctx {
    pub const METHOD: usize = 0;
    pub const ARGUMENTS: usize = 1;
    pub const TEMPORARIES: usize = 2;
    pub const STACK: usize = 3;
    pub const BYTE_POINTER: usize = 4;
    pub const STACK_TOP: usize = 5;
    pub const PREVIOUS: usize = 6;
    pub const SIZE: usize = 7;
    /// Block only.
    pub const ARG_LOCATION: usize = 7;
    pub const CREATING_CONTEXT: usize = 8;
    pub const OLD_BYTE_POINTER: usize = 9;
    pub const BLOCK_SIZE: usize = 10;
}

/// Slot indices of Method objects.
pub mod meth {
    pub const NAME: usize = 0;
    pub const BYTECODES: usize = 1;
    pub const LITERALS: usize = 2;
    pub const STACK_SIZE: usize = 3;
    pub const TEMP_SIZE: usize = 4;
    pub const CLASS: usize = 5;
    pub const TEXT: usize = 6;
    pub const SIZE: usize = 7;
}

/// Slot indices of class objects.
pub mod class {
    pub const NAME: usize = 0;
    pub const PARENT: usize = 1;
    pub const METHODS: usize = 2;
    pub const SIZE: usize = 3;
    pub const VARIABLES: usize = 4;
    pub const FIRST_CLASS_VARIABLE: usize = 5;
}

/// Why a run of Smalltalk code stopped without a result.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VmError {
    /// `Object>>error:` (through the headless prelude), doesNotUnderstand:, or a host fault.
    #[error("{message}")]
    Smalltalk { message: String, backtrace: String },
    /// `Object halt` (primitive 34) outside an error report.
    #[error("halted (Object halt)")]
    Halted,
    /// `SmallWorld quit` (primitive 117).
    #[error("quit")]
    Quit(i32),
    /// A state the VM cannot continue from (no doesNotUnderstand:, every process blocked, …).
    #[error("fatal: {0}")]
    Fatal(String),
}

/// Well-known objects found at boot. They are all reachable from the image roots or pinned.
#[derive(Clone, Copy, Debug)]
pub struct Specials {
    pub nil: Value,
    pub true_: Value,
    pub false_: Value,
    pub array: Value,
    pub block: Value,
    pub context: Value,
    pub small_int: Value,
    pub string: Value,
    pub class: Value,
    pub meta_class: Value,
    pub float: Value,
    pub char_: Value,
    pub byte_array: Value,
    pub file: Value,
    pub semaphore: Value,
    pub method: Value,
    pub object: Value,
}

/// Default limit on live heap data (MiB); `--max-heap` changes it.
pub const DEFAULT_MAX_HEAP_MIB: usize = 4096;

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub sends: u64,
    /// Sends answered by a quick method without a context (see `Quick`).
    pub quick_sends: u64,
    /// Contexts freed at their return because they never escaped.
    pub recycled_contexts: u64,
    pub ic_misses: u64,
    pub cache_flushes: u64,
    pub gc_count: u64,
    pub gc_time_ns: u64,
}

/// Where primitive 116 (`File saveImage`) may write.
#[derive(Clone, Debug, Default)]
pub struct SaveTarget {
    /// `--save-image PATH`: where primitive 116 writes, and the only way to overwrite the image
    /// the VM booted from.
    pub path: Option<PathBuf>,
    /// The image the VM booted from.
    pub boot_image: Option<PathBuf>,
}

impl SaveTarget {
    /// Whether a save to `target` may proceed: never onto the boot image unless `--save-image`
    /// names it.
    pub fn allows(&self, target: &std::path::Path) -> bool {
        let same = |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        match &self.boot_image {
            Some(boot) if same(boot, target) => self.path.as_deref().is_some_and(|p| same(p, target)),
            _ => true,
        }
    }
}

/// The machine.
pub struct Vm {
    pub heap: Heap,
    pub roots: Vec<Value>,
    pub k: Specials,
    pub(crate) cache: LookupCache,
    pub(crate) method_data: Vec<MethodData>,
    pub(crate) free_method_data: Vec<usize>,
    /// Method address → index in `method_data` (weak: entries die with their method).
    pub(crate) method_index: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<lookup::PairHasher>>,
    /// A direct-mapped cache in front of `method_index` (sends and returns consult it).
    pub(crate) method_index_cache: [(u64, u32); lookup::METHOD_INDEX_CACHE],
    pub(crate) sched: Scheduler,
    pub(crate) host: crate::primitives::HostTables,
    /// Selector strings the VM itself sends (`<`, `<=`, `+`, `doesNotUnderstand:`, `error:`).
    pub(crate) selectors: exec::VmSelectors,
    pub(crate) regs: exec::Regs,
    pub out: Box<dyn Write>,
    pub err: Box<dyn Write>,
    pub save_target: SaveTarget,
    pub started: Instant,
    pub counters: Counters,
    /// Safepoints (sends, block entries, backward jumps) left before the run stops with
    /// "execution budget exhausted"; None (the default) for no limit. For tests of hostile code.
    pub budget: Option<u64>,
    /// Live data beyond which a collection stops the run with "out of memory".
    pub max_heap_bytes: usize,
    /// Runs every send as a real activation and never recycles contexts: the reference
    /// behaviour the fast paths (quick methods, context recycling) are tested against.
    pub plain: bool,
    /// The `error:` activation reporting a host fault, while it may still run: a fault with it
    /// on the active context chain is fatal, not a loop of reports. Once that activation has
    /// returned, later faults are reported again (an `error:` that answers lets the program go
    /// on). A root, and never recycled, so that its address names it alone.
    pub(crate) fault_report: Option<Value>,
    /// The trace JIT (options, traces, the recording in progress).
    pub jit: crate::jit::Jit,
    /// Whether the native compiler may stand in for the image's (see `compiler`).
    pub compiler_watch: crate::compiler::CompilerWatch,
}

#[derive(Debug, Error)]
pub enum BootError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error("image has no class named {0}")]
    MissingClass(&'static str),
    #[error("the headless prelude failed: {0}")]
    Prelude(String),
}

/// The classes named `names`, found in one walk over the heap (a class is an object whose class's
/// class is `Class` or `MetaClass`); None where the image has no such class.
fn find_classes_named<const N: usize>(
    heap: &Heap,
    class_class: Value,
    meta_class: Value,
    names: [&str; N],
) -> [Option<Value>; N] {
    let mut found = [None; N];
    heap.for_each_object(|o| {
        if o.kind() != Kind::Pointers || o.len() < 5 {
            return;
        }
        let meta = o.obj_class();
        if meta.is_int() || meta.kind() != Kind::Pointers {
            return;
        }
        let mc = meta.obj_class();
        if mc != class_class && mc != meta_class {
            return;
        }
        let n = o.slot(class::NAME);
        if !n.is_ptr() || n.kind() != Kind::Bytes {
            return;
        }
        if let Some(i) = names.iter().position(|want| want.as_bytes() == n.bytes()) {
            found[i].get_or_insert(o);
        }
    });
    found
}

impl Vm {
    /// Boots a VM from image bytes. Writers default to the process's stdout and stderr.
    pub fn from_image_bytes(data: &[u8]) -> Result<Vm, BootError> {
        let img = image::load(data)?;
        let heap = img.heap;
        let roots = img.roots;
        let (nil, true_, false_, array, block, context, small_int) =
            (roots[0], roots[1], roots[2], roots[3], roots[4], roots[5], roots[6]);
        // Array's class is MetaArray, whose class is Class; Class's class is MetaClass.
        let class_class = array.obj_class().obj_class();
        let meta_class = class_class.obj_class();
        const NAMES: [&str; 8] = ["String", "Float", "Char", "ByteArray", "File", "Semaphore", "Method", "Object"];
        let found = find_classes_named(&heap, class_class, meta_class, NAMES);
        let named = |n: &'static str| {
            let i = NAMES.iter().position(|&x| x == n).expect("a name in NAMES");
            found[i].ok_or(BootError::MissingClass(n))
        };
        let k = Specials {
            nil,
            true_,
            false_,
            array,
            block,
            context,
            small_int,
            string: named("String")?,
            class: class_class,
            meta_class,
            float: named("Float")?,
            char_: named("Char")?,
            byte_array: named("ByteArray")?,
            file: named("File")?,
            semaphore: named("Semaphore")?,
            method: named("Method")?,
            object: named("Object")?,
        };
        let mut vm = Vm {
            heap,
            roots,
            k,
            cache: LookupCache::default(),
            method_data: Vec::new(),
            free_method_data: Vec::new(),
            method_index: Default::default(),
            method_index_cache: [(0, 0); lookup::METHOD_INDEX_CACHE],
            sched: Scheduler::default(),
            host: crate::primitives::HostTables::default(),
            selectors: exec::VmSelectors::placeholder(),
            regs: exec::Regs::empty(),
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            save_target: SaveTarget::default(),
            started: Instant::now(),
            counters: Counters::default(),
            budget: None,
            max_heap_bytes: DEFAULT_MAX_HEAP_MIB << 20,
            plain: false,
            fault_report: None,
            jit: crate::jit::Jit::default(),
            compiler_watch: crate::compiler::CompilerWatch::default(),
        };
        vm.selectors = exec::VmSelectors::new(&mut vm);
        Ok(vm)
    }

    /// The class of any value.
    #[inline(always)]
    pub fn class_of(&self, v: Value) -> Value {
        if v.is_int() {
            self.k.small_int
        } else {
            v.obj_class()
        }
    }

    #[inline(always)]
    pub fn bool(&self, b: bool) -> Value {
        if b {
            self.k.true_
        } else {
            self.k.false_
        }
    }

    /// A new String with the given bytes.
    pub fn new_string(&mut self, s: &[u8]) -> Value {
        let c = self.k.string;
        self.heap.alloc_bytes_from(c, s)
    }

    /// A new Array holding `vals`.
    pub fn new_array(&mut self, vals: &[Value]) -> Value {
        let c = self.k.array;
        self.heap.alloc_with_slots(c, vals)
    }

    /// The name of a class as text (for messages).
    pub fn class_name(&self, cls: Value) -> String {
        cls.slot_checked(class::NAME)
            .filter(|n| n.is_ptr() && n.kind() == Kind::Bytes)
            .map(|n| String::from_utf8_lossy(n.bytes()).into_owned())
            .unwrap_or_else(|| "?".into())
    }

    /// A class registered in `Class classes` (the only namespace the image's compiler sees).
    pub fn find_registered_class(&self, name: &str) -> Option<Value> {
        self.registered_class(name.as_bytes())
    }

    /// `Class at: name ifAbsent:`: the first class in `Class classes` whose name has these bytes.
    pub fn registered_class(&self, name: &[u8]) -> Option<Value> {
        let classes = self.k.class.slot_checked(class::FIRST_CLASS_VARIABLE)?;
        if !classes.is_ptr() || classes.kind() != Kind::Pointers {
            return None;
        }
        (0..classes.len()).map(|i| classes.slot(i)).find(|&c| {
            c.slot_checked(class::NAME).is_some_and(|n| n.is_ptr() && n.kind() == Kind::Bytes && n.bytes() == name)
        })
    }

    /// Collects garbage. Only called at safepoints, when every live value is in a root.
    pub(crate) fn collect_garbage(&mut self) {
        let t0 = Instant::now();
        let mut gc = self.heap.start_collection();
        for &r in &self.roots {
            gc.mark(r);
        }
        let k = self.k;
        for v in [
            k.nil,
            k.true_,
            k.false_,
            k.array,
            k.block,
            k.context,
            k.small_int,
            k.string,
            k.class,
            k.meta_class,
            k.float,
            k.char_,
            k.byte_array,
            k.file,
            k.semaphore,
            k.method,
            k.object,
        ] {
            gc.mark(v);
        }
        gc.mark(self.regs.ctx);
        if let Some(r) = self.fault_report {
            gc.mark(r);
        }
        self.jit.mark(&mut gc);
        self.compiler_watch.mark(&mut gc);
        if self.jit.recording() {
            self.jit.abort_pending = Some("garbage collection during recording");
        }
        self.selectors.mark(&mut gc);
        self.sched.mark(&mut gc);
        self.host.mark(&mut gc);
        for d in &self.method_data {
            d.mark_cached(&mut gc);
        }
        gc.trace();
        // Method data is weak in its method: drop the data of methods that died.
        let dead: Vec<usize> = (0..self.method_data.len())
            .filter(|&i| {
                let m = self.method_data[i].method;
                m != Value::from_int(0) && !gc.is_live(m)
            })
            .collect();
        let stats = gc.finish();
        self.drop_method_data(&dead);
        tracing::debug!(
            target: "tracevm::heap",
            live_objects = stats.live_objects,
            live_kib = stats.live_words * 8 / 1024,
            freed = stats.freed_objects,
            reserved_kib = self.heap.reserved_bytes() / 1024,
            "collection"
        );
        self.cache.clear();
        self.counters.gc_count += 1;
        self.counters.gc_time_ns += t0.elapsed().as_nanos() as u64;
    }
}

impl Vm {
    /// Moves the method data of `old` (if it is a method that has run) to `new`.
    pub(crate) fn rebind_method_data(&mut self, old: Value, new: Value) {
        if let Some(i) = self.method_index.remove(&old.raw()) {
            self.method_data[i].method = new;
            self.method_index.insert(new.raw(), i);
        }
        self.method_index_cache = [(0, 0); lookup::METHOD_INDEX_CACHE];
    }

    /// Replaces `old` by `new` in every root the VM holds (primitive 32's identity-keeping growth).
    pub(crate) fn replace_root_references(&mut self, old: Value, new: Value) {
        let swap = |v: &mut Value| {
            if *v == old {
                *v = new;
            }
        };
        self.roots.iter_mut().for_each(swap);
        for p in &mut self.sched.procs {
            swap(&mut p.context);
            p.barriers.iter_mut().for_each(swap);
        }
        let r = &mut self.regs;
        swap(&mut r.ctx);
        swap(&mut r.method);
        for s in [&mut r.literals, &mut r.args, &mut r.temps, &mut r.stack] {
            if s.obj() == old {
                *s = crate::heap::Slots::new(new).unwrap_or(crate::heap::Slots::none());
            }
        }
    }
}
