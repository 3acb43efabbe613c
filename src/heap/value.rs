//! `Value`: one machine word that is either a tagged SmallInt or a pointer to a heap object.
//!
//! Owns only the bit encoding. It must never dereference a pointer (that is `heap::object`'s job).

use std::fmt;

/// A SmallWorld value in one word.
///
/// * low bit 1: a SmallInt; the 32-bit signed value is in the upper bits (`raw >> 1`, arithmetic).
/// * low bit 0: the address of a heap object (always 8-aligned, never null).
///
/// SmallInts are 32-bit to match the reference VM (Java `int`): any result outside that range is a
/// primitive soft failure, and the image then builds a LargePositive/LargeNegative.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Value(u64);

impl Value {
    /// The tagged form of a SmallInt.
    #[inline(always)]
    pub const fn from_int(i: i32) -> Value {
        Value(((i as i64 as u64) << 1) | 1)
    }

    /// Tags `i` if it fits in 32 bits.
    #[inline(always)]
    pub fn from_i64(i: i64) -> Option<Value> {
        i32::try_from(i).ok().map(Value::from_int)
    }

    #[inline(always)]
    pub const fn is_int(self) -> bool {
        self.0 & 1 == 1
    }

    #[inline(always)]
    pub const fn is_ptr(self) -> bool {
        self.0 & 1 == 0
    }

    /// The SmallInt value, or `None` for a pointer.
    #[inline(always)]
    pub const fn as_int(self) -> Option<i32> {
        if self.is_int() {
            Some(((self.0 as i64) >> 1) as i32)
        } else {
            None
        }
    }

    /// The SmallInt value; meaningless for a pointer (callers check `is_int` first).
    #[inline(always)]
    pub const fn int_unchecked(self) -> i32 {
        ((self.0 as i64) >> 1) as i32
    }

    /// The raw word, for hashing, compiled code and the image writer.
    #[inline(always)]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Rebuilds a value from its raw word. Only `heap` (which hands out object addresses) and code
    /// that got the word from `raw()` may call this; a forged pointer is undefined behaviour later.
    #[inline(always)]
    pub(crate) const fn from_raw(raw: u64) -> Value {
        Value(raw)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_int() {
            Some(i) => write!(f, "{i}"),
            None => write!(f, "@{:#x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallint_round_trips_at_the_edges() {
        for i in [0, 1, -1, 9, i32::MAX, i32::MIN, 123456, -98765] {
            let v = Value::from_int(i);
            assert!(v.is_int());
            assert_eq!(v.as_int(), Some(i));
        }
        assert_eq!(Value::from_i64(i32::MAX as i64 + 1), None);
        assert_eq!(Value::from_i64(i32::MIN as i64 - 1), None);
        assert_eq!(Value::from_i64(-5).and_then(|v| v.as_int()), Some(-5));
    }

    #[test]
    fn pointers_are_not_ints() {
        let v = Value::from_raw(0x1000);
        assert!(v.is_ptr());
        assert_eq!(v.as_int(), None);
    }
}
