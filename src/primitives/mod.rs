//! The numbered primitives (SMALLWORLD-VM.md §4), except the few that change control flow
//! (6, 8, 19, 34, 35, 101, 117, 122), which live in the interpreter.
//!
//! Each primitive pops exactly its arguments (push order: `args[0]` was pushed first) and answers
//! one value. A soft failure answers nil, as the reference VM does (the image tests for it). A wrong
//! argument class, a bad index or an unknown number is a `Fault`: the interpreter turns it into a
//! Smalltalk `error:` with a backtrace. Nothing here may panic on values from Smalltalk.
//!
//! tracevm's own primitives (numbers free in the reference VM):
//! * 120 `<120 aString>` writes the bytes to standard output; answers the string.
//! * 121 `<121 aString>` writes the bytes to standard error; answers the string.
//! * 122 `<122 message backtrace>` stops the run with an error report (headless `Object>>error:`).
//! * 123 `<123 aMethod>` answers the method's send-site and branch data (`Method>>sendAndBranchData`).

pub mod float_format;
mod host;
mod send_data;

pub use host::HostTables;

use crate::heap::{Kind, Value, MAX_OBJECT_WORDS};
use crate::interp::Vm;
use std::io::{Read, Write};

/// A host fault: the reference VM would have thrown a Java exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub String);

type Prim = Result<Value, Fault>;

fn fail<T>(msg: impl Into<String>) -> Result<T, Fault> {
    Err(Fault(msg.into()))
}

fn arg(args: &[Value], i: usize, p: u8) -> Result<Value, Fault> {
    args.get(i).copied().ok_or_else(|| Fault(format!("primitive {p}: expected at least {} arguments", i + 1)))
}

fn int(args: &[Value], i: usize, p: u8) -> Result<i32, Fault> {
    arg(args, i, p)?.as_int().ok_or_else(|| Fault(format!("primitive {p}: argument {} is not a SmallInt", i + 1)))
}

fn pointers(args: &[Value], i: usize, p: u8) -> Result<Value, Fault> {
    let v = arg(args, i, p)?;
    if v.is_ptr() && v.kind() == Kind::Pointers {
        Ok(v)
    } else {
        fail(format!("primitive {p}: argument {} is not an object with slots", i + 1))
    }
}

fn bytes(args: &[Value], i: usize, p: u8) -> Result<Value, Fault> {
    let v = arg(args, i, p)?;
    if v.is_ptr() && v.kind() == Kind::Bytes {
        Ok(v)
    } else {
        fail(format!("primitive {p}: argument {} is not a String or ByteArray", i + 1))
    }
}

fn float(args: &[Value], i: usize, p: u8) -> Result<f64, Fault> {
    let v = arg(args, i, p)?;
    if v.is_ptr() && v.kind() == Kind::Float {
        Ok(v.float())
    } else {
        fail(format!("primitive {p}: argument {} is not a Float", i + 1))
    }
}

/// A 1-based index into something of length `len`, as a 0-based index.
fn index(args: &[Value], i: usize, len: usize, p: u8) -> Result<usize, Fault> {
    let k = int(args, i, p)?;
    if k >= 1 && (k as usize) <= len {
        Ok(k as usize - 1)
    } else {
        fail(format!("primitive {p}: index {k} out of range 1..{len}"))
    }
}

/// A size for a new object.
fn size(args: &[Value], i: usize, p: u8) -> Result<usize, Fault> {
    let n = int(args, i, p)?;
    if n < 0 || n as usize > MAX_OBJECT_WORDS / 2 {
        return fail(format!("primitive {p}: cannot allocate an object of size {n}"));
    }
    Ok(n as usize)
}

fn class_arg(args: &[Value], i: usize, p: u8) -> Result<Value, Fault> {
    let c = arg(args, i, p)?;
    if c.is_ptr() && c.kind() == Kind::Pointers && c.len() > crate::interp::class::SIZE {
        Ok(c)
    } else {
        fail(format!("primitive {p}: argument {} is not a class", i + 1))
    }
}

fn small_int_result(vm: &Vm, r: Option<i64>) -> Value {
    r.and_then(Value::from_i64).unwrap_or(vm.k.nil)
}

/// Runs primitive `p` on `args`.
/// Primitive 26's order of two byte strings (and so `String <` and `=`): Java compares signed
/// bytes, lexicographically.
pub fn string_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter().map(|&x| x as i8).cmp(b.iter().map(|&x| x as i8))
}

pub fn call(vm: &mut Vm, p: u8, args: &[Value]) -> Prim {
    let nil = vm.k.nil;
    match p {
        1 => Ok(vm.bool(arg(args, 0, p)? == arg(args, 1, p)?)),
        2 => Ok(vm.class_of(arg(args, 0, p)?)),
        4 => {
            let v = arg(args, 0, p)?;
            let n = if v.is_int() {
                0
            } else {
                match v.kind() {
                    Kind::Pointers | Kind::Bytes => v.len(),
                    _ => 0,
                }
            };
            Ok(Value::from_int(n as i32))
        }
        5 => {
            let v = arg(args, 0, p)?;
            let obj = pointers(args, 1, p)?;
            let i = index(args, 2, obj.len(), p)?;
            obj.set_slot(i, v);
            vm.note_store(obj, i);
            Ok(obj)
        }
        7 => {
            let c = class_arg(args, 0, p)?;
            let n = size(args, 1, p)?;
            Ok(vm.heap.alloc_pointers(c, n, nil))
        }
        9 => {
            let mut b = [0u8; 1];
            let r = match std::io::stdin().read(&mut b) {
                Ok(1) => b[0] as i32,
                _ => -1,
            };
            Ok(Value::from_int(r))
        }
        10 => Ok(small_int_result(vm, Some(int(args, 0, p)? as i64 + int(args, 1, p)? as i64))),
        11 | 12 => {
            let (a, b) = (int(args, 0, p)?, int(args, 1, p)?);
            if b == 0 {
                return fail("division by zero");
            }
            // Java semantics: truncating, MIN / -1 wraps to MIN, MIN % -1 is 0.
            Ok(Value::from_int(if p == 11 { a.wrapping_div(b) } else { a.wrapping_rem(b) }))
        }
        13 => Ok(vm.bool(int(args, 0, p)? < int(args, 1, p)?)),
        14 => Ok(vm.bool(int(args, 0, p)? == int(args, 1, p)?)),
        15 => Ok(small_int_result(vm, Some(int(args, 0, p)? as i64 * int(args, 1, p)? as i64))),
        16 => Ok(small_int_result(vm, Some(int(args, 0, p)? as i64 - int(args, 1, p)? as i64))),
        17 => {
            let c = class_arg(args, 0, p)?;
            let i = int(args, 1, p)?;
            Ok(vm.heap.alloc_bytes_from(c, i.to_string().as_bytes()))
        }
        18 => {
            let v = arg(args, 0, p)?;
            tracing::trace!(target: "tracevm::primitives", "debug primitive 18: {v:?}");
            Ok(v)
        }
        20 => {
            let c = class_arg(args, 0, p)?;
            let n = size(args, 1, p)?;
            Ok(vm.heap.alloc_bytes(c, n))
        }
        21 => {
            let b = bytes(args, 0, p)?;
            let i = index(args, 1, b.len(), p)?;
            Ok(Value::from_int(b.bytes()[i] as i32))
        }
        22 => {
            let v = int(args, 0, p)?;
            let b = bytes(args, 1, p)?;
            let i = index(args, 2, b.len(), p)?;
            b.bytes_mut()[i] = v as u8;
            if b.flags() & crate::interp::lookup::WATCH_METHOD != 0 {
                vm.refresh_method_data(b);
            }
            Ok(b)
        }
        23 => {
            let obj = arg(args, 0, p)?;
            let c = class_arg(args, 1, p)?;
            if obj.is_ptr() && obj.kind() == Kind::Bytes {
                let data = obj.bytes().to_vec();
                Ok(vm.heap.alloc_bytes_from(c, &data))
            } else {
                Ok(obj)
            }
        }
        24 => {
            let b = bytes(args, 0, p)?;
            let a = bytes(args, 1, p)?;
            let mut data = a.bytes().to_vec();
            data.extend_from_slice(b.bytes());
            let c = a.obj_class();
            Ok(vm.heap.alloc_bytes_from(c, &data))
        }
        26 => {
            let ord = string_order(bytes(args, 0, p)?.bytes(), bytes(args, 1, p)?.bytes());
            Ok(Value::from_int(ord as i32))
        }
        29 => {
            let name = bytes(args, 0, p)?;
            let path = String::from_utf8_lossy(name.bytes()).into_owned();
            host::save_image(vm, std::path::Path::new(&path))?;
            Ok(name)
        }
        30 => {
            let obj = pointers(args, 0, p)?;
            let i = index(args, 1, obj.len(), p)?;
            Ok(obj.slot(i))
        }
        31 => {
            let x = arg(args, 0, p)?;
            let a = pointers(args, 1, p)?;
            let c = a.obj_class();
            let n = a.len();
            let new = vm.heap.alloc_pointers(c, n + 1, x);
            for i in 0..n {
                new.set_slot(i, a.slot(i));
            }
            Ok(new)
        }
        32 => {
            let x = arg(args, 0, p)?;
            let obj = pointers(args, 1, p)?;
            Ok(host::grow_in_place(vm, obj, x))
        }
        33 => {
            let ms = int(args, 0, p)?.max(0) as u64;
            std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
            Ok(nil)
        }
        36 => {
            let c = vm.k.array;
            Ok(vm.heap.alloc_with_slots(c, args))
        }
        41 | 42 => {
            let c = class_arg(args, 0, p)?;
            let name = bytes(args, 1, p)?;
            let path = String::from_utf8_lossy(name.bytes()).into_owned();
            let h = vm.host.open_file(&path, p == 41).map_err(Fault)?;
            Ok(vm.heap.alloc_host(c, h))
        }
        43 => {
            let s = bytes(args, 0, p)?.bytes().to_vec();
            let f = arg(args, 1, p)?;
            vm.host.write_file(f, &s).map_err(Fault)?;
            Ok(nil)
        }
        44 => {
            let c = class_arg(args, 0, p)?;
            let f = arg(args, 1, p)?;
            match vm.host.read_line(f).map_err(Fault)? {
                Some(line) => Ok(vm.heap.alloc_bytes_from(c, &line)),
                None => Ok(nil),
            }
        }
        50 => {
            let c = class_arg(args, 0, p)?;
            let i = int(args, 1, p)?;
            Ok(vm.heap.alloc_float(c, i as f64))
        }
        51..=54 => {
            let c = class_arg(args, 0, p)?;
            let (pf, qf) = (float(args, 1, p)?, float(args, 2, p)?);
            let r = match p {
                51 => qf + pf,
                52 => qf - pf,
                53 => qf * pf,
                _ => qf / pf,
            };
            Ok(vm.heap.alloc_float(c, r))
        }
        55 => Ok(vm.bool(float(args, 1, p)? < float(args, 0, p)?)),
        56 => Ok(vm.bool(float(args, 1, p)? == float(args, 0, p)?)),
        57 => Ok(Value::from_int(float(args, 0, p)? as i32)),
        58 => {
            let c = class_arg(args, 0, p)?;
            let r = vm.host.random();
            Ok(vm.heap.alloc_float(c, r))
        }
        59 => {
            let c = class_arg(args, 0, p)?;
            let f = float(args, 1, p)?;
            Ok(vm.heap.alloc_bytes_from(c, float_format::java_double_to_string(f).as_bytes()))
        }
        100 => {
            let c = class_arg(args, 0, p)?;
            let h = vm.sched.semaphores.len();
            vm.sched.semaphores.push(Default::default());
            Ok(vm.heap.alloc_host(c, host::SEMAPHORE_TAG | h as u64))
        }
        116 => match vm.save_target.path.clone() {
            Some(path) => {
                host::save_image(vm, &path)?;
                Ok(vm.k.true_)
            }
            None => fail("saveImage: no --save-image PATH was given, so the image is not overwritten"),
        },
        119 => Ok(Value::from_int(vm.started.elapsed().as_millis() as u64 as i32)),
        120 | 121 => {
            let s = bytes(args, 0, p)?;
            let data = s.bytes().to_vec();
            let r = if p == 120 {
                vm.out.write_all(&data)
            } else {
                let _ = vm.out.flush();
                vm.err.write_all(&data)
            };
            r.map_err(|e| Fault(format!("cannot write output: {e}")))?;
            Ok(s)
        }
        123 => send_data::send_and_branch_data(vm, arg(args, 0, p)?),
        // GUI primitives: headless stand-ins (see `host::gui`).
        60 | 62..=66 | 70..=76 | 79..=85 | 89..=91 | 61 | 77 | 86..=88 | 118 => host::gui(vm, p, args),
        _ => fail(format!("unknown primitive {p}")),
    }
}
