//! Image files (SmallWorld format version 1): loading into the heap and saving in the Java order.
//!
//! Owns the file format only. It never runs code and never trusts the file: every length and
//! reference is checked before anything is allocated, so a corrupt or hostile image gets an
//! `ImageError`, never a panic or an unbounded allocation.
//!
//! Format (all integers 32-bit big-endian): a version int (1), then records until EOF:
//! `length type class nSlots slot* payload`, where `length` counts the four header ints, the slot
//! ints and the payload (ints for type 0, *bytes* for type 1). Types: 0 SmallInt (one value int),
//! 1 byte object, 2 pointer object, and tracevm's extension 3 Float (two ints: the high and low
//! halves of the IEEE bits). The Java VM drops Floats on save; tracevm keeps them, so an image
//! that tracevm saved with Floats in it cannot be read by the Java VM.

mod save;

pub use save::save;

use crate::heap::{Heap, Value};
use thiserror::Error;

/// Number of well-known root records at the start of every image.
pub const ROOT_COUNT: usize = 17;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("image is empty or shorter than its 4-byte header")]
    NoHeader,
    #[error("unsupported image version {0} (expected 1)")]
    BadVersion(i32),
    #[error("record {record} at byte {offset}: truncated (the file ends inside it)")]
    Truncated { record: usize, offset: usize },
    #[error("record {record} at byte {offset}: unknown record type {kind}")]
    UnknownType { record: usize, offset: usize, kind: i32 },
    #[error("record {record} at byte {offset}: bad length {length} for {what}")]
    BadLength { record: usize, offset: usize, length: i32, what: &'static str },
    #[error("record {record}: reference {reference} is out of range (image has {count} records)")]
    BadReference { record: usize, reference: i32, count: usize },
    #[error("record {record}: its class (record {class}) is a SmallInt, not an object")]
    IntClass { record: usize, class: i32 },
    #[error("image has only {0} records; the 17 well-known roots are missing")]
    TooFewRecords(usize),
    #[error("root record {0} has the wrong kind")]
    BadRoot(usize),
}

enum Body {
    Int(i32),
    Bytes { start: usize, len: usize },
    Pointers { start: usize, len: usize },
    Float(f64),
}

struct Record {
    class: i32,
    body: Body,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn int(&mut self) -> Option<i32> {
        let b = self.data.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A loaded image: the heap and the values of the 17 root records.
pub struct LoadedImage {
    pub heap: Heap,
    pub roots: Vec<Value>,
    pub record_count: usize,
}

fn parse(data: &[u8]) -> Result<Vec<Record>, ImageError> {
    let mut r = Reader { data, pos: 0 };
    let version = r.int().ok_or(ImageError::NoHeader)?;
    if version != 1 {
        return Err(ImageError::BadVersion(version));
    }
    let mut records = Vec::new();
    while r.pos < data.len() {
        let record = records.len();
        let offset = r.pos;
        let truncated = ImageError::Truncated { record, offset };
        let length = r.int().ok_or(truncated.clone_err())?;
        let kind = r.int().ok_or(truncated.clone_err())?;
        let class = r.int().ok_or(truncated.clone_err())?;
        let n_slots = r.int().ok_or(truncated.clone_err())?;
        let bad = |what| ImageError::BadLength { record, offset, length, what };
        if length < 4 || n_slots < 0 || n_slots > length - 4 {
            return Err(bad("a record header"));
        }
        let rest = (length - 4) as usize;
        let remaining = data.len() - r.pos;
        let body = match kind {
            0 => {
                if length != 5 || n_slots != 0 {
                    return Err(bad("a SmallInt (must be 5 with no slots)"));
                }
                Body::Int(r.int().ok_or(truncated)?)
            }
            1 => {
                let n_bytes = rest - n_slots as usize;
                if n_slots != 0 {
                    return Err(bad("a byte object with slots"));
                }
                if n_bytes > remaining {
                    return Err(truncated);
                }
                let start = r.pos;
                r.pos += n_bytes;
                Body::Bytes { start, len: n_bytes }
            }
            2 => {
                if rest != n_slots as usize {
                    return Err(bad("a pointer object"));
                }
                if rest * 4 > remaining {
                    return Err(truncated);
                }
                let start = r.pos;
                r.pos += rest * 4;
                Body::Pointers { start, len: rest }
            }
            3 => {
                if length != 6 || n_slots != 0 {
                    return Err(bad("a Float (must be 6 with no slots)"));
                }
                let hi = r.int().ok_or(truncated.clone_err())? as u32 as u64;
                let lo = r.int().ok_or(truncated)? as u32 as u64;
                Body::Float(f64::from_bits(hi << 32 | lo))
            }
            _ => return Err(ImageError::UnknownType { record, offset, kind }),
        };
        records.push(Record { class, body });
    }
    Ok(records)
}

impl ImageError {
    fn clone_err(&self) -> ImageError {
        match self {
            ImageError::Truncated { record, offset } => ImageError::Truncated { record: *record, offset: *offset },
            _ => unreachable!("only Truncated is cloned"),
        }
    }
}

fn slot_index(data: &[u8], start: usize, i: usize) -> i32 {
    let p = start + i * 4;
    i32::from_be_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]])
}

/// Loads an image from its bytes into a fresh heap.
pub fn load(data: &[u8]) -> Result<LoadedImage, ImageError> {
    let records = parse(data)?;
    let count = records.len();
    if count < ROOT_COUNT {
        return Err(ImageError::TooFewRecords(count));
    }
    let check = |record: usize, reference: i32| -> Result<usize, ImageError> {
        if reference < 0 || reference as usize >= count {
            Err(ImageError::BadReference { record, reference, count })
        } else {
            Ok(reference as usize)
        }
    };
    // Validate every reference before allocating anything.
    for (i, rec) in records.iter().enumerate() {
        let c = check(i, rec.class)?;
        if matches!(records[c].body, Body::Int(_)) && !matches!(rec.body, Body::Int(_)) {
            return Err(ImageError::IntClass { record: i, class: rec.class });
        }
        if let Body::Pointers { start, len } = rec.body {
            for k in 0..len {
                check(i, slot_index(data, start, k))?;
            }
        }
    }
    for (i, rec) in records.iter().enumerate().take(ROOT_COUNT) {
        let ok = match i {
            0..=6 => matches!(rec.body, Body::Pointers { .. }),
            _ => matches!(rec.body, Body::Int(_)),
        };
        if !ok {
            return Err(ImageError::BadRoot(i));
        }
    }

    let mut heap = Heap::new();
    let placeholder = Value::from_int(0);
    let values: Vec<Value> = records
        .iter()
        .map(|rec| match rec.body {
            Body::Int(v) => Value::from_int(v),
            Body::Bytes { start, len } => heap.alloc_bytes_from(placeholder, &data[start..start + len]),
            Body::Pointers { len, .. } => heap.alloc_pointers(placeholder, len, placeholder),
            Body::Float(f) => heap.alloc_float(placeholder, f),
        })
        .collect();
    for (rec, &v) in records.iter().zip(&values) {
        if v.is_int() {
            continue;
        }
        v.set_obj_class(values[rec.class as usize]);
        if let Body::Pointers { start, len } = rec.body {
            for k in 0..len {
                v.set_slot(k, values[slot_index(data, start, k) as usize]);
            }
        }
    }
    Ok(LoadedImage { heap, roots: values[..ROOT_COUNT].to_vec(), record_count: count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(records: &[Vec<i32>]) -> Vec<u8> {
        let mut out = 1i32.to_be_bytes().to_vec();
        for r in records {
            for i in r {
                out.extend_from_slice(&i.to_be_bytes());
            }
        }
        out
    }

    /// A minimal valid image: 7 pointer roots (class = record 3), ints 0..9.
    fn minimal() -> Vec<Vec<i32>> {
        let mut recs: Vec<Vec<i32>> = (0..7).map(|_| vec![4, 2, 3, 0]).collect();
        for i in 0..10 {
            recs.push(vec![5, 0, 6, 0, i]);
        }
        recs
    }

    #[test]
    fn loads_a_minimal_image() {
        let img = load(&image(&minimal())).unwrap();
        assert_eq!(img.record_count, 17);
        assert_eq!(img.roots[9], Value::from_int(2));
        assert_eq!(img.roots[0].obj_class(), img.roots[3]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(load(&[]).err(), Some(ImageError::NoHeader));
        assert_eq!(load(&2i32.to_be_bytes()).err(), Some(ImageError::BadVersion(2)));
        let mut recs = minimal();
        recs.push(vec![5, 9, 0, 0, 0]);
        assert!(matches!(load(&image(&recs)), Err(ImageError::UnknownType { kind: 9, .. })));
        let mut recs = minimal();
        recs.push(vec![5, 2, 0, 1, 999]);
        assert!(matches!(load(&image(&recs)), Err(ImageError::BadReference { reference: 999, .. })));
        let mut recs = minimal();
        recs.push(vec![i32::MAX, 2, 0, i32::MAX - 4]);
        assert!(matches!(load(&image(&recs)), Err(ImageError::Truncated { .. })));
        let mut bytes = image(&minimal());
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(load(&bytes), Err(ImageError::Truncated { .. })));
        let recs: Vec<_> = minimal().into_iter().take(10).collect();
        assert_eq!(load(&image(&recs)).err(), Some(ImageError::TooFewRecords(10)));
        let mut recs = minimal();
        recs.push(vec![5, 2, 7, 1, 0]);
        assert!(matches!(load(&image(&recs)), Err(ImageError::IntClass { .. })));
    }

    #[test]
    fn never_panics_on_mutated_images() {
        let base = image(&minimal());
        for i in 0..base.len() {
            for b in [0u8, 0xff, 0x7f, 0x80, 3] {
                let mut m = base.clone();
                m[i] = b;
                let _ = load(&m);
                let _ = load(&m[..i]);
            }
        }
    }
}
