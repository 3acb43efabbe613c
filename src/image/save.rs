//! Writing an image in the Java reference VM's order, so that re-saving an unchanged image gives
//! the same bytes.
//!
//! The Java VM numbers objects breadth-first from the 17 roots: for each object in discovery order
//! it enqueues the class, then the slots. SmallInts are boxed there: 0–9 are shared cache objects
//! (records 7–16), every other integer occurrence is its own object. tracevm's integers are
//! immediate, so it reproduces that by giving 0–9 the root records and every other occurrence a
//! fresh record. Host objects (File, Semaphore, GUI) are dropped and references to them become 0
//! (nil), as in Java; Floats are kept as type-3 records (see `image`).

use super::ROOT_COUNT;
use crate::heap::{Kind, Value};
use std::collections::HashMap;

enum Item {
    Int(i32),
    Object(Value),
}

/// Serialises the object graph reachable from `roots` (the 17 well-known roots, in order).
pub fn save(roots: &[Value]) -> Vec<u8> {
    assert_eq!(roots.len(), ROOT_COUNT);
    let small_int_class_record = 6;
    let mut items: Vec<Item> = Vec::new();
    let mut refs: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashMap<u64, usize> = HashMap::new();

    // Discovers `v` (or reuses its number) and returns its item index.
    let mut discover = |v: Value, items: &mut Vec<Item>, refs: &mut Vec<Vec<usize>>| -> usize {
        if let Some(i) = v.as_int() {
            if (0..=9).contains(&i) && items.len() > 7 + i as usize {
                return 7 + i as usize;
            }
            items.push(Item::Int(i));
            refs.push(Vec::new());
            return items.len() - 1;
        }
        *seen.entry(v.raw()).or_insert_with(|| {
            items.push(Item::Object(v));
            refs.push(Vec::new());
            items.len() - 1
        })
    };

    for &r in roots {
        discover(r, &mut items, &mut refs);
    }
    let mut next = 0;
    while next < items.len() {
        let mut children = Vec::new();
        match items[next] {
            Item::Int(_) => children.push(small_int_class_record),
            Item::Object(v) => {
                children.push(discover(v.obj_class(), &mut items, &mut refs));
                if v.kind() == Kind::Pointers {
                    for k in 0..v.len() {
                        children.push(discover(v.slot(k), &mut items, &mut refs));
                    }
                }
            }
        }
        refs[next] = children;
        next += 1;
    }

    // Drop host objects and renumber the rest consecutively.
    let mut number = vec![usize::MAX; items.len()];
    let mut n = 0;
    for (i, item) in items.iter().enumerate() {
        if !matches!(item, Item::Object(v) if v.kind() == Kind::Host) {
            number[i] = n;
            n += 1;
        }
    }
    let out_ref = |i: usize| -> i32 {
        if number[i] == usize::MAX {
            0
        } else {
            number[i] as i32
        }
    };

    let mut out = Vec::with_capacity(256 * 1024);
    let put = |out: &mut Vec<u8>, x: i32| out.extend_from_slice(&x.to_be_bytes());
    put(&mut out, 1);
    for (i, item) in items.iter().enumerate() {
        if number[i] == usize::MAX {
            continue;
        }
        let class = out_ref(refs[i][0]);
        match *item {
            Item::Int(v) => {
                for x in [5, 0, class, 0, v] {
                    put(&mut out, x);
                }
            }
            Item::Object(v) => match v.kind() {
                Kind::Bytes => {
                    let b = v.bytes();
                    for x in [4 + b.len() as i32, 1, class, 0] {
                        put(&mut out, x);
                    }
                    out.extend_from_slice(b);
                }
                Kind::Pointers => {
                    let slots = &refs[i][1..];
                    for x in [4 + slots.len() as i32, 2, class, slots.len() as i32] {
                        put(&mut out, x);
                    }
                    for &s in slots {
                        put(&mut out, out_ref(s));
                    }
                }
                Kind::Float => {
                    let bits = v.float().to_bits();
                    for x in [6, 3, class, 0, (bits >> 32) as u32 as i32, bits as u32 as i32] {
                        put(&mut out, x);
                    }
                }
                Kind::Host | Kind::Free => unreachable!("host objects were dropped"),
            },
        }
    }
    out
}
