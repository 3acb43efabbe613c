//! Primitive 123: a method's send-site and branch data, in the spirit of Sista's
//! `sendAndBranchData`.
//!
//! Answers an Array with one entry per send site that has executed and per conditional branch
//! that has executed, in bytecode order:
//!
//! * send:   `#('send' offset sends entries megamorphic)` where `entries` is an Array of
//!   `#(class method hits)` (empty when megamorphic) and `megamorphic` is a Boolean;
//! * branch: `#('branch' offset executed taken)`.
//!
//! Offsets are 0-based bytecode offsets of the send or branch instruction. Counts saturate at the
//! SmallInt maximum. It reads `MethodData` and never changes it.

use super::{Fault, Prim};
use crate::heap::Value;
use crate::interp::Vm;

fn count(n: u64) -> Value {
    Value::from_int(n.min(i32::MAX as u64) as i32)
}

pub fn send_and_branch_data(vm: &mut Vm, method: Value) -> Prim {
    if method.is_int() || method.slot_checked(crate::interp::meth::BYTECODES).is_none() {
        return Err(Fault("sendAndBranchData: receiver is not a Method".into()));
    }
    let Some(data) = vm.method_data_of(method) else {
        return Ok(vm.new_array(&[]));
    };
    // Copy out first: building Smalltalk objects needs the heap mutably.
    let mut rows: Vec<(u16, Row)> = Vec::new();
    for (site, &off) in data.sends.iter().zip(&data.send_offsets) {
        if site.sends > 0 {
            let entries = site.entries.as_slice().iter().map(|e| (e.class, e.method, e.count as u64)).collect();
            rows.push((off, Row::Send { sends: site.sends, entries, megamorphic: site.megamorphic }));
        }
    }
    for (b, &off) in data.branches.iter().zip(&data.branch_offsets) {
        if b.executed > 0 {
            rows.push((off, Row::Branch { executed: b.executed, taken: b.taken }));
        }
    }
    rows.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(rows.len());
    for (off, row) in rows {
        let v = match row {
            Row::Send { sends, entries, megamorphic } => {
                let tag = vm.new_string(b"send");
                let es: Vec<Value> = entries.into_iter().map(|(c, m, n)| vm.new_array(&[c, m, count(n)])).collect();
                let es = vm.new_array(&es);
                let mega = vm.bool(megamorphic);
                vm.new_array(&[tag, Value::from_int(off as i32), count(sends), es, mega])
            }
            Row::Branch { executed, taken } => {
                let tag = vm.new_string(b"branch");
                vm.new_array(&[tag, Value::from_int(off as i32), count(executed), count(taken)])
            }
        };
        out.push(v);
    }
    Ok(vm.new_array(&out))
}

enum Row {
    Send { sends: u64, entries: Vec<(Value, Value, u64)>, megamorphic: bool },
    Branch { executed: u64, taken: u64 },
}
