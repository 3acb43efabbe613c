//! Per-method execution data: the inline cache of every send site and the counts of every
//! conditional branch (the data Sista's `sendAndBranchData` exposes, and the JIT's recorder reads).
//!
//! A method finds its data through the aux word of its header (index + 1; 0 = none yet). The data
//! is weak in its method: the collector drops it when the method dies. It never decides what a
//! send does; `lookup` fills and flushes it.

use crate::heap::{Collection, Value};

/// Classes a polymorphic site remembers before it turns megamorphic (Cog's limit).
pub const POLY_LIMIT: usize = 6;

/// One (receiver class → method) entry of an inline cache, with its hit count.
#[derive(Clone, Copy, Debug)]
pub struct SiteEntry {
    pub class: Value,
    pub method: Value,
    pub count: u32,
}

/// An inline cache in Cog's states: empty, monomorphic (1 entry), polymorphic (2–6), megamorphic.
#[derive(Clone, Debug, Default)]
pub struct SendSite {
    pub entries: smallvec_lite::Entries,
    pub megamorphic: bool,
    /// Sends executed at this site (all states).
    pub sends: u64,
}

/// Executed / taken counts of one conditional branch.
#[derive(Clone, Copy, Debug, Default)]
pub struct BranchCounts {
    pub executed: u64,
    pub taken: u64,
}

/// Marks which kind of site lives at a bytecode offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteRef {
    None,
    Send(u16),
    Branch(u16),
}

#[derive(Clone, Debug)]
pub struct MethodData {
    /// The method this data belongs to (`Value::from_int(0)` when the entry is vacant).
    pub method: Value,
    /// For each bytecode offset, the site that starts there.
    pub site_at: Vec<SiteRef>,
    pub sends: Vec<SendSite>,
    pub branches: Vec<BranchCounts>,
    /// Offsets of the send sites / branches, in order (for reporting).
    pub send_offsets: Vec<u16>,
    pub branch_offsets: Vec<u16>,
}

/// A tiny fixed-capacity vector for cache entries (kept inline: a site is read on every send).
pub mod smallvec_lite {
    use super::{SiteEntry, POLY_LIMIT};
    use crate::heap::Value;

    #[derive(Clone, Copy, Debug)]
    pub struct Entries {
        len: u8,
        items: [SiteEntry; POLY_LIMIT],
    }

    impl Default for Entries {
        fn default() -> Self {
            let empty = SiteEntry {
                class: Value::from_int(0),
                method: Value::from_int(0),
                count: 0,
            };
            Entries {
                len: 0,
                items: [empty; POLY_LIMIT],
            }
        }
    }

    impl Entries {
        pub fn as_slice(&self) -> &[SiteEntry] {
            &self.items[..self.len as usize]
        }
        pub fn as_mut_slice(&mut self) -> &mut [SiteEntry] {
            &mut self.items[..self.len as usize]
        }
        pub fn len(&self) -> usize {
            self.len as usize
        }
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
        /// Adds an entry; false when full.
        pub fn push(&mut self, e: SiteEntry) -> bool {
            if self.len() == POLY_LIMIT {
                return false;
            }
            self.items[self.len as usize] = e;
            self.len += 1;
            true
        }
        pub fn clear(&mut self) {
            self.len = 0;
        }
    }
}

impl MethodData {
    pub fn vacant() -> MethodData {
        MethodData {
            method: Value::from_int(0),
            site_at: Vec::new(),
            sends: Vec::new(),
            branches: Vec::new(),
            send_offsets: Vec::new(),
            branch_offsets: Vec::new(),
        }
    }

    /// Scans `code` for send sites and conditional branches.
    pub fn for_method(method: Value, code: &[u8]) -> MethodData {
        let mut d = MethodData::vacant();
        d.method = method;
        d.site_at = vec![SiteRef::None; code.len()];
        let mut ip = 0;
        while ip < code.len() {
            let start = ip;
            let b = code[ip];
            ip += 1;
            let (op, n) = if b >> 4 == 0 {
                let n = code.get(ip).copied().unwrap_or(0);
                ip += 1;
                (b & 15, n)
            } else {
                (b >> 4, b & 15)
            };
            let is_send = op == 9 || op == 11 || (op == 15 && n == 11);
            let is_branch = op == 15 && (n == 7 || n == 8);
            // Operand bytes that follow the instruction.
            if op == 12 || op == 13 || (op == 15 && (6..=8).contains(&n)) || (op == 15 && n == 11) {
                ip += 1;
            }
            if start > u16::MAX as usize {
                continue;
            }
            if is_send {
                d.site_at[start] = SiteRef::Send(d.sends.len() as u16);
                d.sends.push(SendSite::default());
                d.send_offsets.push(start as u16);
            } else if is_branch {
                d.site_at[start] = SiteRef::Branch(d.branches.len() as u16);
                d.branches.push(BranchCounts::default());
                d.branch_offsets.push(start as u16);
            }
        }
        d
    }

    /// Empties every inline cache (counts of executions are kept).
    pub fn flush_sends(&mut self) {
        for s in &mut self.sends {
            s.entries.clear();
            s.megamorphic = false;
        }
    }

    pub(crate) fn mark_cached(&self, gc: &mut Collection<'_>) {
        for s in &self.sends {
            for e in s.entries.as_slice() {
                gc.mark(e.class);
                gc.mark(e.method);
            }
        }
    }
}
