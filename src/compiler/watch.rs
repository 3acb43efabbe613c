//! `CompilerWatch`: whether the image's compiler still does what the native port does.
//!
//! The port reproduces the image's compiler as the image was loaded. A program may redefine a
//! method that compiler runs (`String>>+`, `Class>>compileMethod:`, `Collection>>includes:`, …);
//! from then on the native compiler declines for the rest of the run. "A method that compiler
//! runs" is over-approximated at boot: the selectors reachable from `compileMethod:` and
//! `parseMethod:` through every implementor in the image. A change is any difference, in any
//! class of the image, in which method (if any) answers one of those selectors, or in a class's
//! parent. Classes made by the program reach the compiler only as class objects (globals and the
//! target class), so for them only the class-side selectors the compiler sends matter.
//!
//! `error:` and `doesNotUnderstand:` are left out: the image's compiler reaches them only on
//! a compile error, where the port has already declined (the prelude redefines both).
//!
//! It keeps the methods it compares alive (`mark`), so that an address is never reused by a
//! different method behind its back.

use crate::heap::{Collection, Kind, Value};
use crate::interp::{class, meth, Vm};
use hashbrown::{HashMap, HashSet};

/// Sent to the class a method is compiled into, or to class objects named in the source.
const CLASS_SIDE: &[&[u8]] =
    &[b"compileMethod:", b"parseMethod:", b"instanceVariables", b"variables", b"name", b"==", b"class"];

/// Reached only when compilation fails.
const NOT_FOLLOWED: &[&[u8]] = &[b"error:", b"doesNotUnderstand:"];

/// One class of the image as the watch last saw it.
struct Seen {
    class: Value,
    parent: Value,
    methods: Value,
    contents: Vec<Value>,
}

#[derive(Default)]
pub struct CompilerWatch {
    /// Off: the image's compiler always runs (`--image-compiler`, and a VM without a watch).
    enabled: bool,
    intact: bool,
    seen: Vec<Seen>,
    boot_classes: HashSet<u64>,
    selectors: HashSet<Vec<u8>>,
    /// (class, selector) → the first method of that class with that name, at boot.
    answers: HashMap<(u64, Vec<u8>), Value>,
}

fn is_class_like(v: Value) -> bool {
    v.is_ptr() && v.kind() == Kind::Pointers && v.len() > class::VARIABLES
}

fn method_name(m: Value) -> Option<&'static [u8]> {
    if !m.is_ptr() || m.kind() != Kind::Pointers {
        return None;
    }
    m.slot_checked(meth::NAME).filter(|n| n.is_ptr() && n.kind() == Kind::Bytes).map(|n| n.bytes())
}

fn array_contents(a: Value) -> Vec<Value> {
    if a.is_ptr() && a.kind() == Kind::Pointers {
        (0..a.len()).map(|i| a.slot(i)).collect()
    } else {
        Vec::new()
    }
}

impl CompilerWatch {
    /// Reads the compiler's dependencies off a freshly loaded image.
    pub fn new(vm: &Vm) -> CompilerWatch {
        let mut classes = Vec::new();
        let (class_class, meta_class) = (vm.k.class, vm.k.meta_class);
        vm.heap.for_each_object(|o| {
            if !is_class_like(o) {
                return;
            }
            let meta = o.obj_class();
            if !meta.is_ptr() || meta.kind() != Kind::Pointers {
                return;
            }
            let mc = meta.obj_class();
            if mc == class_class || mc == meta_class {
                classes.push(o);
            }
        });
        let mut selectors: HashSet<Vec<u8>> = [&b"compileMethod:"[..], b"parseMethod:", b"<", b"<=", b"+"]
            .iter()
            .chain(CLASS_SIDE)
            .map(|s| s.to_vec())
            .collect();
        let mut work: Vec<Vec<u8>> = selectors.iter().cloned().collect();
        let mut implementors: HashMap<&[u8], Vec<Value>> = HashMap::new();
        for &c in &classes {
            for m in array_contents(c.slot(class::METHODS)) {
                if let Some(n) = method_name(m) {
                    implementors.entry(n).or_default().push(m);
                }
            }
        }
        while let Some(s) = work.pop() {
            for &m in implementors.get(s.as_slice()).map(|v| v.as_slice()).unwrap_or(&[]) {
                for lit in array_contents(m.slot_checked(meth::LITERALS).unwrap_or(vm.k.nil)) {
                    let is_selector = lit.is_ptr() && lit.kind() == Kind::Bytes && !NOT_FOLLOWED.contains(&lit.bytes());
                    if is_selector && selectors.insert(lit.bytes().to_vec()) {
                        work.push(lit.bytes().to_vec());
                    }
                }
            }
        }
        let mut answers = HashMap::new();
        let mut seen = Vec::new();
        for &c in &classes {
            let methods = c.slot(class::METHODS);
            let contents = array_contents(methods);
            for &m in &contents {
                if let Some(n) = method_name(m).filter(|n| selectors.contains(*n)) {
                    answers.entry((c.raw(), n.to_vec())).or_insert(m);
                }
            }
            seen.push(Seen { class: c, parent: c.slot(class::PARENT), methods, contents });
        }
        tracing::debug!(target: "tracevm::compiler", classes = seen.len(), selectors = selectors.len(), "compiler watch");
        CompilerWatch {
            enabled: true,
            intact: true,
            boot_classes: classes.iter().map(|c| c.raw()).collect(),
            seen,
            selectors,
            answers,
        }
    }

    /// Turns the native compiler off for this VM.
    pub fn disable(&mut self) {
        self.enabled = false;
    }

    /// The selectors whose redefinition in an image class turns the native compiler off.
    pub fn selectors(&self) -> impl Iterator<Item = &[u8]> {
        self.selectors.iter().map(|s| s.as_slice())
    }

    /// Whether the native compiler may still run: nothing it depends on has changed.
    pub fn compiler_intact(&mut self, vm: &Vm) -> bool {
        if !self.enabled || !self.intact {
            return false;
        }
        if !self.image_classes_unchanged() || !self.program_classes_harmless(vm) {
            tracing::debug!(target: "tracevm::compiler", "a method of the image's compiler changed: native compiler off");
            self.intact = false;
        }
        self.intact
    }

    fn image_classes_unchanged(&mut self) -> bool {
        for s in &mut self.seen {
            let methods = s.class.slot(class::METHODS);
            if s.class.slot(class::PARENT) != s.parent {
                return false;
            }
            let unchanged = methods == s.methods
                && methods.is_ptr()
                && methods.kind() == Kind::Pointers
                && methods.len() == s.contents.len()
                && (0..methods.len()).all(|i| methods.slot(i) == s.contents[i]);
            if unchanged {
                continue;
            }
            let contents = array_contents(methods);
            let mut first: HashMap<&[u8], Value> = HashMap::new();
            for &m in &contents {
                if let Some(n) = method_name(m).filter(|n| self.selectors.contains(*n)) {
                    first.entry(n).or_insert(m);
                }
            }
            let before = self.answers.iter().filter(|((c, _), _)| *c == s.class.raw()).count();
            if first.len() != before
                || first.iter().any(|(n, m)| self.answers.get(&(s.class.raw(), n.to_vec())) != Some(m))
            {
                return false;
            }
            s.methods = methods;
            s.contents = contents;
        }
        true
    }

    /// A registered class made by the program, or any class between it and the image's classes,
    /// must not answer a class-side selector on its own.
    fn program_classes_harmless(&self, vm: &Vm) -> bool {
        let registry = array_contents(vm.k.class.slot_checked(class::FIRST_CLASS_VARIABLE).unwrap_or(vm.k.nil));
        for k in registry {
            if !k.is_ptr() {
                continue;
            }
            let mut c = vm.class_of(k);
            let mut steps = 0;
            while is_class_like(c) && !self.boot_classes.contains(&c.raw()) {
                let own = array_contents(c.slot(class::METHODS));
                if own.iter().filter_map(|&m| method_name(m)).any(|n| CLASS_SIDE.contains(&n)) {
                    return false;
                }
                c = c.slot(class::PARENT);
                steps += 1;
                if steps > 1000 {
                    return false;
                }
            }
        }
        true
    }

    /// Keeps the compared methods alive.
    pub(crate) fn mark(&self, gc: &mut Collection<'_>) {
        for v in self.answers.values() {
            gc.mark(*v);
        }
        for s in &self.seen {
            gc.mark(s.class);
            gc.mark(s.methods);
            for &m in &s.contents {
                gc.mark(m);
            }
        }
    }
}
