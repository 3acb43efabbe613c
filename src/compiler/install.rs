//! The heap side of the native compiler: the names a class's methods see
//! (`Class>>instanceVariables`, the metaclass's variables, `Class at:ifAbsent:`), the Method
//! object `Encoder>>method:class:text:` builds, and `Class>>compileMethod:`'s installation.

use super::{compile, Decline, Literal};
use crate::heap::{Kind, Value};
use crate::interp::{class, meth, Vm};
use crate::primitives::string_order;

/// Guards against cycles in a corrupt or hostile parent chain.
const MAX_CHAIN: usize = 1000;

fn is_string_like(v: Value) -> bool {
    v.is_ptr() && v.kind() == Kind::Bytes
}

/// The byte strings of an Array of Strings; nil reads as none (as `nil size` is 0).
fn names_of(vm: &Vm, v: Value) -> Result<Vec<Vec<u8>>, Decline> {
    if v == vm.k.nil {
        return Ok(Vec::new());
    }
    if !v.is_ptr() || v.kind() != Kind::Pointers {
        return Err(Decline::Quirk("variable names that are not an Array"));
    }
    (0..v.len())
        .map(|i| v.slot(i))
        .map(|n| {
            if is_string_like(n) {
                Ok(n.bytes().to_vec())
            } else {
                Err(Decline::Quirk("a variable name that is not a String"))
            }
        })
        .collect()
}

/// `Class>>instanceVariables`: the inherited names first.
fn instance_variables(vm: &Vm, cls: Value) -> Result<Vec<Vec<u8>>, Decline> {
    let mut chain = Vec::new();
    let mut c = cls;
    while c != vm.k.nil {
        if !c.is_ptr() || c.kind() != Kind::Pointers || c.len() <= class::VARIABLES || chain.len() > MAX_CHAIN {
            return Err(Decline::Quirk("an unusual class chain"));
        }
        chain.push(c);
        c = c.slot(class::PARENT);
    }
    let mut names = Vec::new();
    for c in chain.iter().rev() {
        names.extend(names_of(vm, c.slot(class::VARIABLES))?);
    }
    Ok(names)
}

/// Every registered class's name must be a String for the port's name comparison to be the
/// image's (`name = x name` compares against `x name printString`).
fn registry_is_plain(vm: &Vm) -> bool {
    let Some(classes) = vm.k.class.slot_checked(class::FIRST_CLASS_VARIABLE) else { return false };
    classes.is_ptr()
        && classes.kind() == Kind::Pointers
        && (0..classes.len()).map(|i| classes.slot(i)).all(|c| {
            c.is_ptr() && c.kind() == Kind::Pointers && c.slot_checked(class::NAME).is_some_and(is_string_like)
        })
}

fn allocate_literal(vm: &mut Vm, lit: &Literal) -> Value {
    match *lit {
        Literal::Nil => vm.k.nil,
        Literal::True => vm.k.true_,
        Literal::False => vm.k.false_,
        Literal::Int(i) => Value::from_int(i),
        Literal::Float(f) => {
            let c = vm.k.float;
            vm.heap.alloc_float(c, f)
        }
        Literal::Str(ref s) => vm.new_string(s),
        Literal::Char(c) => {
            // `Char new: v` is `self in: self new at: 1 put: v`.
            let cls = vm.k.char_;
            let size = cls.slot(class::SIZE).as_int().unwrap_or(1).max(1) as usize;
            let nil = vm.k.nil;
            let ch = vm.heap.alloc_pointers(cls, size, nil);
            ch.set_slot(0, Value::from_int(c as i32));
            ch
        }
        Literal::Global(v) => v,
    }
}

/// `aClass parseMethod: text` with the native compiler: the new Method, not installed.
/// `text` must be a String; it becomes the method's text, as in the image.
pub fn parse_method_for(vm: &mut Vm, cls: Value, text: Value) -> Result<Value, Decline> {
    let mut watch = std::mem::take(&mut vm.compiler_watch);
    let intact = watch.compiler_intact(vm);
    vm.compiler_watch = watch;
    if !intact {
        return Err(Decline::CompilerChanged);
    }
    if !is_string_like(text) || !registry_is_plain(vm) {
        return Err(Decline::Quirk("unusual text or class registry"));
    }
    let method_class = vm.k.method;
    let char_size = vm.k.char_.slot_checked(class::SIZE).and_then(|s| s.as_int());
    if method_class.slot_checked(class::SIZE).and_then(|s| s.as_int()) != Some(meth::SIZE as i32)
        || char_size.is_none_or(|s| s < 1)
    {
        return Err(Decline::Quirk("Method or Char has an unusual shape"));
    }
    let inst = instance_variables(vm, cls)?;
    let meta = vm.class_of(cls);
    let class_vars =
        names_of(vm, meta.slot_checked(class::VARIABLES).ok_or(Decline::Quirk("a metaclass without variables"))?)?;
    let source = text.bytes().to_vec();
    let compiled = {
        let vm_ref: &Vm = vm;
        let mut globals = |name: &[u8]| vm_ref.registered_class(name);
        compile(&source, &inst, &class_vars, &mut globals)?
    };
    let literals: Vec<Value> = compiled.literals.iter().map(|l| allocate_literal(vm, l)).collect();
    let literals = vm.new_array(&literals);
    let name = vm.new_string(&compiled.name);
    let byte_array = vm.k.byte_array;
    let bytecodes = vm.heap.alloc_bytes_from(byte_array, &compiled.bytecodes);
    let nil = vm.k.nil;
    let method = vm.heap.alloc_pointers(method_class, meth::SIZE, nil);
    method.set_slot(meth::NAME, name);
    method.set_slot(meth::BYTECODES, bytecodes);
    method.set_slot(meth::LITERALS, literals);
    method.set_slot(meth::STACK_SIZE, Value::from_int(compiled.stack_size));
    method.set_slot(meth::TEMP_SIZE, Value::from_int(compiled.temp_size));
    method.set_slot(meth::CLASS, cls);
    method.set_slot(meth::TEXT, text);
    Ok(method)
}

/// The class's methods, if they are an Array (what `compileMethod:` can `select:` from).
fn methods_array(vm: &Vm, cls: Value) -> Result<Value, Decline> {
    let methods = cls.slot_checked(class::METHODS).ok_or(Decline::Quirk("not a class"))?;
    if !methods.is_ptr() || methods.kind() != Kind::Pointers || methods.obj_class() != vm.k.array {
        return Err(Decline::Quirk("a methods slot that is not an Array"));
    }
    Ok(methods)
}

/// `Class>>compileMethod:`'s installation: drop the methods with the new method's name, add it,
/// and sort by name with a stable insertion sort (`asOrdered:`), into a new Array.
pub fn install_method(vm: &mut Vm, cls: Value, method: Value) -> Result<(), Decline> {
    let methods = methods_array(vm, cls)?;
    let name_of = |m: Value| -> Option<&[u8]> {
        let n = m.slot_checked(meth::NAME).filter(|n| is_string_like(*n))?;
        (m.is_ptr() && m.kind() == Kind::Pointers).then(|| n.bytes())
    };
    let new_name = name_of(method).ok_or(Decline::Quirk("a method without a name"))?.to_vec();
    let mut kept = Vec::with_capacity(methods.len() + 1);
    for i in 0..methods.len() {
        let m = methods.slot(i);
        let n = name_of(m).ok_or(Decline::Quirk("a methods Array holding something else"))?;
        if n != new_name.as_slice() {
            kept.push(m);
        }
    }
    kept.push(method);
    kept.sort_by(|&a, &b| string_order(name_of(a).unwrap_or(&[]), name_of(b).unwrap_or(&[])));
    let array = vm.new_array(&kept);
    cls.set_slot(class::METHODS, array);
    vm.note_method_installed(cls, &new_name);
    Ok(())
}

/// `aClass compileMethod: text` with the native compiler.
pub fn compile_method_into(vm: &mut Vm, cls: Value, text: Value) -> Result<(), Decline> {
    // Check the installation's preconditions first, so a decline never leaves half a change.
    methods_array(vm, cls)?;
    let method = parse_method_for(vm, cls, text)?;
    install_method(vm, cls, method)
}

/// `String>>doIt`'s compilation: `'doItCommand ^' + source` as a method of Object.
pub fn compile_expression(vm: &mut Vm, source: Value) -> Result<Value, Decline> {
    let object = vm.k.object;
    parse_method_for(vm, object, source)
}
