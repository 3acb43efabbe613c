//! Per-method execution data: the inline cache of every send site and the counts of every
//! conditional branch (the data Sista's `sendAndBranchData` exposes, and the JIT's recorder reads).
//!
//! A method finds its data through `Vm::method_data_index` (a side table keyed by the method's
//! address, with a direct-mapped cache in front; inline-cache entries carry the index too). The data
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
    /// The method's `MethodData` index, so that a hit needs no second lookup.
    pub data: u32,
}

/// An inline cache in Cog's states: empty, monomorphic (1 entry), polymorphic (2–6), megamorphic.
#[derive(Clone, Debug, Default)]
pub struct SendSite {
    /// The argument Array this site sends was built by the MarkArguments just before it (or by
    /// the send itself), so the callee's context may free it on return.
    pub fresh_args: bool,
    pub entries: SiteEntries,
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

/// A method the interpreter can run without building a context (Cog's "quick" and primitive
/// methods). Recognised from the bytecodes, so it holds for any program, not particular ones.
/// Which method arguments (0 = self) a quick method passes on, in push order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgList {
    pub len: u8,
    pub index: [u8; 6],
}

impl ArgList {
    pub fn as_slice(&self) -> &[u8] {
        &self.index[..self.len as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quick {
    /// Build a context and interpret.
    No,
    /// `^ self` (or an empty body).
    ReturnSelf,
    /// `^ instVar`.
    ReturnInstVar(usize),
    /// `^ literal`.
    ReturnLiteral(usize),
    /// `^ constant` (PushConstant operand).
    ReturnConstant(u8),
    /// `^ <p a b …>` where every argument is a method argument: run the primitive directly; if it
    /// faults, fall back to a real activation so the error report has the right backtrace.
    Primitive { prim: u8, args: ArgList },
    /// `r <- <p args…>. r isNil ifTrue: [fallback]. ^ r` with a side-effect-free primitive (the
    /// image's idiom for a primitive with fallback code, e.g. `SmallInt>>subtractFromSmallInt:`):
    /// a non-nil result is the answer; nil runs the whole method (which repeats the primitive).
    PrimitiveOrFallback { prim: u8, args: ArgList },
    /// `^ a b … selector` (arguments only, then one send): when the method the send finds is
    /// itself a quick value (return or primitive) and succeeds, both run without contexts, so
    /// nothing can observe the missing frames; otherwise the forwarding method is activated.
    /// `site` is the send site's index in this method's data.
    Forward { args: ArgList, selector: usize, site: usize },
    /// `<8 a … self>`: `Block>>value…`, entered straight from the sender.
    BlockValue { args: ArgList },
}

/// Primitives without side effects, which may run again when their fallback code runs.
const PURE_PRIMITIVES: [u8; 21] = [1, 2, 4, 10, 11, 12, 13, 14, 15, 16, 21, 26, 30, 50, 51, 52, 53, 54, 55, 56, 57];

/// Primitives that change control flow or need the caller's registers saved; never quick.
const CONTROL_PRIMITIVES: [u8; 10] = [6, 8, 19, 29, 34, 35, 101, 116, 117, 122];

fn decode(code: &[u8], ip: usize) -> Option<(u8, u8, usize)> {
    let b = *code.get(ip)?;
    if b >> 4 == 0 {
        Some((b & 15, *code.get(ip + 1)?, ip + 2))
    } else {
        Some((b >> 4, b & 15, ip + 1))
    }
}

/// The deepest operand stack reached by any path through `code`, including block bodies (each
/// starts empty in its own context). Abstract interpretation over the control flow: every
/// instruction's stack effect is known statically (SMALLWORLD-VM.md §3.2). Paths that look
/// malformed are simply not followed; the interpreter's stacks grow on demand, so an
/// underestimate costs a copy, never correctness.
pub fn max_stack_depth(code: &[u8]) -> usize {
    let mut depth_at: Vec<Option<usize>> = vec![None; code.len() + 1];
    let mut work = vec![(0usize, 0usize)];
    let mut max = 1;
    while let Some((ip, depth)) = work.pop() {
        if ip >= code.len() || depth_at[ip].is_some_and(|d| d >= depth) || depth > 4096 {
            continue;
        }
        depth_at[ip] = Some(depth);
        max = max.max(depth);
        let Some((op, n, next)) = decode(code, ip) else { continue };
        let operand = code.get(next).copied().map(usize::from);
        let after = match op {
            1..=5 | 14 => Some(depth + 1),
            6 | 7 | 9 | 10 => Some(depth),
            8 => Some((depth + 1).saturating_sub(n as usize)),
            11 => Some(depth.saturating_sub(1)),
            12 => {
                // The block body runs in its own context; the creator skips it and pushes the block.
                work.push((next + 1, 0));
                if let Some(t) = operand {
                    work.push((t, depth + 1));
                }
                max = max.max(depth + 1);
                None
            }
            13 => {
                work.push((next + 1, (depth + 1).saturating_sub(n as usize)));
                None
            }
            15 => match n {
                1..=3 => None,
                4 => Some(depth + 1),
                5 => Some(depth.saturating_sub(1)),
                6 => {
                    if let Some(t) = operand {
                        work.push((t, depth));
                    }
                    None
                }
                7 | 8 => {
                    if let Some(t) = operand {
                        work.push((t, depth.saturating_sub(1)));
                    }
                    work.push((next + 1, depth.saturating_sub(1)));
                    None
                }
                11 => {
                    work.push((next + 1, depth));
                    None
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(d) = after {
            max = max.max(d);
            work.push((next, d));
        }
    }
    max.max(1)
}

/// Recognises quick methods (see `Quick`).
pub fn quick_form(code: &[u8]) -> Quick {
    let Some((op, n, next)) = decode(code, 0) else {
        return Quick::No;
    };
    if (op, n) == (15, 1) {
        return Quick::ReturnSelf;
    }
    let returns_next = |at: usize| decode(code, at).map(|(o, k, _)| (o, k)) == Some((15, 2));
    match op {
        2 if n == 0 && returns_next(next) => return Quick::ReturnSelf,
        1 if returns_next(next) => return Quick::ReturnInstVar(n as usize),
        4 if returns_next(next) => return Quick::ReturnLiteral(n as usize),
        5 if n <= 12 && returns_next(next) => return Quick::ReturnConstant(n),
        _ => {}
    }
    // push-argument* then a primitive.
    let mut args = ArgList { len: 0, index: [0; 6] };
    let mut ip = 0;
    while let Some((2, k, nx)) = decode(code, ip) {
        if args.len as usize == args.index.len() {
            return Quick::No;
        }
        args.index[args.len as usize] = k;
        args.len += 1;
        ip = nx;
    }
    // push-argument* MarkArguments send ^
    if let Some((8, count, nx)) = decode(code, ip) {
        if count == args.len && args.len > 0 {
            if let Some((9, selector, after_send)) = decode(code, nx) {
                if returns_next(after_send) {
                    // The send is the method's first send site.
                    return Quick::Forward { args, selector: selector as usize, site: 0 };
                }
            }
        }
        return Quick::No;
    }
    let Some((13, argc, nx)) = decode(code, ip) else {
        return Quick::No;
    };
    let Some(&prim) = code.get(nx) else {
        return Quick::No;
    };
    if argc != args.len || args.len == 0 {
        return Quick::No;
    }
    if prim == 8 {
        return Quick::BlockValue { args };
    }
    if CONTROL_PRIMITIVES.contains(&prim) {
        return Quick::No;
    }
    if returns_next(nx + 1) {
        return Quick::Primitive { prim, args };
    }
    // r <- <p …>. r isNil ifTrue: [ … ]. ^ r   (7 t; 15.5; 3 t; 10 0; 15.8 L … L: 3 t; 15.2)
    let seq = |at: usize, want: &[(u8, Option<u8>)]| -> Option<usize> {
        let mut ip = at;
        for &(op, n) in want {
            let (o, k, nx) = decode(code, ip)?;
            if o != op || n.is_some_and(|n| n != k) {
                return None;
            }
            ip = nx;
        }
        Some(ip)
    };
    let Some((7, t, _)) = decode(code, nx + 1) else { return Quick::No };
    let Some(at_branch) = seq(nx + 1, &[(7, Some(t)), (15, Some(5)), (3, Some(t)), (10, Some(0))]) else {
        return Quick::No;
    };
    let Some((15, 8, after)) = decode(code, at_branch) else { return Quick::No };
    let Some(&target) = code.get(after) else { return Quick::No };
    // The not-nil path: `ifTrue:` without `ifFalse:` leaves `push nil; pop` before `^ r`.
    let returns_temp = seq(target as usize, &[(3, Some(t)), (15, Some(2))]).is_some()
        || seq(target as usize, &[(5, Some(10)), (15, Some(5)), (3, Some(t)), (15, Some(2))]).is_some();
    if PURE_PRIMITIVES.contains(&prim) && returns_temp {
        return Quick::PrimitiveOrFallback { prim, args };
    }
    Quick::No
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
    /// How a send can run this method without a context.
    pub quick: Quick,
    /// Deepest operand stack any path through the method or its blocks reaches (see
    /// `max_stack_depth`); new contexts get a stack this long, which still grows if it is wrong.
    pub max_stack: usize,
    /// The method's bytecodes and temporarySize when this data was derived (see
    /// `Vm::refresh_method_data`).
    pub code: Value,
    pub temp_size: Option<i32>,
    /// Loop headers in this method that the JIT counts (back edges, traces).
    pub loops: Vec<crate::jit::LoopSlot>,
}

/// The entries of one inline cache: at most `POLY_LIMIT`, kept inline (a site is read on every
/// send).
#[derive(Clone, Copy, Debug)]
pub struct SiteEntries {
    len: u8,
    items: [SiteEntry; POLY_LIMIT],
}

impl Default for SiteEntries {
    fn default() -> Self {
        let empty = SiteEntry { class: Value::from_int(0), method: Value::from_int(0), count: 0, data: 0 };
        SiteEntries { len: 0, items: [empty; POLY_LIMIT] }
    }
}

impl SiteEntries {
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

impl MethodData {
    pub fn vacant() -> MethodData {
        MethodData {
            method: Value::from_int(0),
            site_at: Vec::new(),
            sends: Vec::new(),
            branches: Vec::new(),
            send_offsets: Vec::new(),
            branch_offsets: Vec::new(),
            quick: Quick::No,
            max_stack: 1,
            code: Value::from_int(0),
            temp_size: None,
            loops: Vec::new(),
        }
    }

    /// Scans `code` for send sites and conditional branches.
    pub fn for_method(method: Value, code: &[u8]) -> MethodData {
        let mut d = MethodData::vacant();
        d.method = method;
        d.site_at = vec![SiteRef::None; code.len()];
        d.quick = quick_form(code);
        d.max_stack = max_stack_depth(code);
        let mut ip = 0;
        let mut prev_op = 0;
        let mut targets = Vec::new();
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
                if op == 12 || (op == 15 && (6..=8).contains(&n)) {
                    targets.push(code.get(ip).copied().unwrap_or(0) as usize);
                }
                ip += 1;
            }
            let after_mark = prev_op == 8;
            prev_op = op;
            if start > u16::MAX as usize {
                continue;
            }
            if is_send {
                d.site_at[start] = SiteRef::Send(d.sends.len() as u16);
                d.sends.push(SendSite { fresh_args: op == 11 || after_mark, ..SendSite::default() });
                d.send_offsets.push(start as u16);
            } else if is_branch {
                d.site_at[start] = SiteRef::Branch(d.branches.len() as u16);
                d.branches.push(BranchCounts::default());
                d.branch_offsets.push(start as u16);
            }
        }
        // A send that is a jump target may receive an Array built elsewhere.
        for (site, &off) in d.sends.iter_mut().zip(&d.send_offsets) {
            if targets.contains(&(off as usize)) {
                site.fresh_args = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(a: &[u8]) -> ArgList {
        let mut l = ArgList { len: a.len() as u8, index: [0; 6] };
        l.index[..a.len()].copy_from_slice(a);
        l
    }

    #[test]
    fn stack_depth_follows_branches_and_blocks() {
        // push self, push 2, <, branch-if-false 8, push 1, jump 23 … (SmallInt>>benchFib)
        let fib = [
            32, 82, 176, 248, 8, 81, 246, 23, 32, 81, 130, 144, 129, 145, 32, 82, 130, 146, 129, 147, 178, 81, 178, 242,
        ];
        assert_eq!(max_stack_depth(&fib), 3);
        // a block body deeper than its creator: push block(end 9) { push 1 push 2 push 3 pop pop 15.2 } 15.2
        let blk = [0xC0, 9, 0x51, 0x52, 0x53, 0xF5, 0xF5, 0xF2, 0xF2, 0xF2];
        assert_eq!(max_stack_depth(&blk), 3);
        // MarkArguments 3 takes three and leaves one
        assert_eq!(max_stack_depth(&[0x51, 0x52, 0x53, 0x83, 0x51, 0xF2]), 3);
        assert_eq!(max_stack_depth(&[]), 1);
    }

    #[test]
    fn quick_forms_are_recognised() {
        assert_eq!(quick_form(&[0xF1]), Quick::ReturnSelf);
        assert_eq!(quick_form(&[0x20, 0xF2, 0xF5, 0xF1]), Quick::ReturnSelf);
        assert_eq!(quick_form(&[0x13, 0xF2]), Quick::ReturnInstVar(3));
        assert_eq!(quick_form(&[0x01, 20, 0xF2]), Quick::ReturnInstVar(20));
        assert_eq!(quick_form(&[0x5B, 0xF2]), Quick::ReturnConstant(11));
        assert_eq!(quick_form(&[0x42, 0xF2]), Quick::ReturnLiteral(2));
        // ^ <1 self arg>
        assert_eq!(quick_form(&[0x20, 0x21, 0xD2, 1, 0xF2]), Quick::Primitive { prim: 1, args: list(&[0, 1]) });
        // <8 a self>
        assert_eq!(quick_form(&[0x21, 0x20, 0xD2, 8, 0xF5, 0xF1]), Quick::BlockValue { args: list(&[1, 0]) });
        // SmallInt>>subtractFromSmallInt: from the image
        let sub = [
            33, 32, 210, 16, 112, 245, 48, 160, 248, 21, 33, 129, 144, 32, 129, 145, 130, 146, 112, 246, 22, 90, 245,
            48, 242, 245, 241,
        ];
        assert_eq!(quick_form(&sub), Quick::PrimitiveOrFallback { prim: 16, args: list(&[1, 0]) });
        // the same shape around a primitive with side effects is not quick
        let mut write = sub;
        write[3] = 43;
        assert_eq!(quick_form(&write), Quick::No);
        // a fallback that does not end by returning the temporary is not quick
        let mut other = sub;
        other[23] = 49;
        assert_eq!(quick_form(&other), Quick::No);
        // SmallInt>>- : ^ arg subtractFromSmallInt: self
        assert_eq!(
            quick_form(&[0x21, 0x20, 0x82, 0x90, 0xF2, 0xF5, 0xF1]),
            Quick::Forward { args: list(&[1, 0]), selector: 0, site: 0 }
        );
        // a forward whose MarkArguments count differs from the pushes is not quick
        assert_eq!(quick_form(&[0x21, 0x20, 0x81, 0x90, 0xF2]), Quick::No);
        // control primitives and longer bodies are not quick
        assert_eq!(quick_form(&[0x20, 0xD1, 35, 0xF2]), Quick::No);
        assert_eq!(quick_form(&[0x20, 0x21, 0xD2, 1, 0xF5, 0xF1]), Quick::No);
        assert_eq!(quick_form(&[0x20, 0x90]), Quick::No);
        assert_eq!(quick_form(&[]), Quick::No);
    }
}
