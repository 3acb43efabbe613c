//! The bytecode interpreter: registers, the dispatch loop, sends, returns, blocks and the
//! primitives that change control flow (6, 8, 19, 34, 35, 101, 117, 122).
//!
//! This is the one definition of each bytecode's meaning (SMALLWORLD-VM.md §3). Contexts are heap
//! objects with the image's layout; the registers below are a cache of the active context that is
//! written back (`save_regs`) before anything can observe it: a send, a primitive that reads
//! contexts, a process switch, a collection. It never collects except at a safepoint (sends and
//! backward jumps) and never lets a Rust panic stand for a Smalltalk error: bad operands become a
//! `error:` send to the receiver (a "host fault"), as the reference VM's exceptions do.

use super::method_data::{ArgList, Quick, SiteRef};
use super::process::Process;
use super::{class, ctx, meth, Vm, VmError};
use crate::heap::{Collection, Kind, Slots, Value};
use crate::primitives::{self, Fault};

/// Context header flag: created by a send or a block entry and not (yet) visible to Smalltalk, so
/// its return may free it and its private arrays at once (`recycle`). Cleared when the context
/// escapes: a block captures it, `Context current` answers it, or a context above it escapes.
pub(crate) const RECYCLABLE: u8 = 4;
/// Context header flag: its arguments Array was built for this send alone.
pub(crate) const OWNS_ARGS: u8 = 8;

/// Frees context `c`, which has just returned, with its private arrays, if it is `RECYCLABLE`
/// (the VM built it and nothing else can refer to it). True when it was freed. The one
/// definition for the interpreter's returns and for compiled code's (`jit::runtime`).
#[inline(always)]
pub(crate) fn free_returned_context(heap: &mut crate::heap::Heap, nil: Value, c: Value) -> bool {
    let f = c.flags();
    if f & RECYCLABLE == 0 {
        return false;
    }
    heap.free(c.slot(ctx::STACK));
    // A block context shares its home's arguments and temporaries.
    if c.len() == ctx::SIZE {
        let t = c.slot(ctx::TEMPORARIES);
        if t != nil {
            heap.free(t);
        }
        if f & OWNS_ARGS != 0 {
            heap.free(c.slot(ctx::ARGUMENTS));
        }
    }
    heap.free(c);
    true
}

/// Selector strings the VM sends itself.
pub(crate) struct VmSelectors {
    pub binary: [Value; 3],
    pub dnu: Value,
    pub error: Value,
    pub print_string: Value,
}

impl VmSelectors {
    pub fn placeholder() -> VmSelectors {
        let z = Value::from_int(0);
        VmSelectors { binary: [z; 3], dnu: z, error: z, print_string: z }
    }
    pub fn new(vm: &mut Vm) -> VmSelectors {
        VmSelectors {
            binary: [vm.new_string(b"<"), vm.new_string(b"<="), vm.new_string(b"+")],
            dnu: vm.new_string(b"doesNotUnderstand:"),
            error: vm.new_string(b"error:"),
            print_string: vm.new_string(b"printString"),
        }
    }
    pub fn mark(&self, gc: &mut Collection<'_>) {
        for v in self.binary {
            gc.mark(v);
        }
        gc.mark(self.dnu);
        gc.mark(self.error);
        gc.mark(self.print_string);
    }
}

/// The interpreter registers: a cache of the active context.
pub(crate) struct Regs {
    pub ctx: Value,
    pub method: Value,
    pub code: &'static [u8],
    pub ip: usize,
    pub literals: Slots,
    pub args: Slots,
    pub temps: Slots,
    pub stack: Slots,
    pub sp: usize,
    pub data: usize,
}

impl Regs {
    pub fn empty() -> Regs {
        let z = Value::from_int(0);
        let none = Slots::none();
        Regs {
            ctx: z,
            method: z,
            code: &[],
            ip: 0,
            literals: none,
            args: none,
            temps: none,
            stack: none,
            sp: 0,
            data: 0,
        }
    }
}

/// How a run of the current process ended.
enum Exit {
    Finished(Value),
    Blocked,
}

/// What to do after an instruction that can change context.
type Step = Result<(), Interrupt>;

/// A reason to leave the dispatch loop.
/// Kept to two words (errors boxed) so that `Step` stays in registers on the hot path.
enum Interrupt {
    /// Recording started or ended: continue in the other dispatch loop.
    Switch,
    Exit(Exit),
    Error(Box<VmError>),
    Fault(Box<str>),
}

impl From<VmError> for Interrupt {
    fn from(e: VmError) -> Self {
        Interrupt::Error(Box::new(e))
    }
}

impl From<Fault> for Interrupt {
    fn from(f: Fault) -> Self {
        Interrupt::Fault(f.0.into_boxed_str())
    }
}

fn fault<T>(msg: impl Into<String>) -> Result<T, Interrupt> {
    Err(Interrupt::Fault(msg.into().into_boxed_str()))
}

/// `v` as slots; a malformed value (only possible in contexts already checked) reads as empty.
#[inline(always)]
fn slots(v: Value) -> Slots {
    Slots::new(v).unwrap_or(Slots::none())
}

/// The largest temporarySize a method may declare. Bytecodes address 256 temporaries at most;
/// a larger size only asks for memory (a Method whose size slot was set to 2 000 000 000 made
/// activation attempt a 16 GB Array).
pub(crate) const MAX_TEMPORARIES: i32 = 1 << 16;

#[inline(always)]
fn is_array(v: Value) -> bool {
    v.is_pointers()
}

impl Vm {
    // ----- registers and contexts -------------------------------------------------------------

    /// `save_regs` for entering compiled code.
    pub(crate) fn save_regs_for_jit(&mut self) {
        self.save_regs();
    }

    /// Makes a context that deoptimisation has just built or updated the active one.
    pub(crate) fn load_context_after_exit(&mut self, c: Value) {
        if self.load_context(c).is_err() {
            // Deoptimisation builds well-formed contexts; this would be a JIT bug. Say so rather
            // than crash.
            tracing::error!(target: "tracevm::jit", "deoptimised context did not load");
        }
    }

    /// Writes ip and sp back into the active context.
    #[inline(always)]
    fn save_regs(&mut self) {
        let r = &self.regs;
        r.ctx.set_slot(ctx::BYTE_POINTER, Value::from_int(r.ip as i32));
        r.ctx.set_slot(ctx::STACK_TOP, Value::from_int(r.sp as i32));
    }

    /// Makes `c` the active context, reading everything from it.
    #[inline]
    fn load_context(&mut self, c: Value) -> Step {
        if c.is_ptr() && c.flags() & RECYCLABLE != 0 {
            // Never visible to Smalltalk, so still exactly as the VM built it.
            let method = c.slot(ctx::METHOD);
            let code = method.slot(meth::BYTECODES);
            let data = self.method_data_index(method, code);
            self.regs = Regs {
                ctx: c,
                method,
                code: code.bytes(),
                ip: c.slot(ctx::BYTE_POINTER).int_unchecked() as usize,
                literals: slots(method.slot(meth::LITERALS)),
                args: slots(c.slot(ctx::ARGUMENTS)),
                temps: slots(c.slot(ctx::TEMPORARIES)),
                stack: slots(c.slot(ctx::STACK)),
                sp: c.slot(ctx::STACK_TOP).int_unchecked() as usize,
                data,
            };
            return Ok(());
        }
        self.load_context_checked(c)
    }

    /// `load_context` for a context Smalltalk may have built or changed: every slot is checked.
    fn load_context_checked(&mut self, c: Value) -> Step {
        if !is_array(c) || c.len() < ctx::SIZE {
            return fault("resumed object is not a context");
        }
        let method = c.slot(ctx::METHOD);
        let args = c.slot(ctx::ARGUMENTS);
        let temps = c.slot(ctx::TEMPORARIES);
        let stack = c.slot(ctx::STACK);
        let (Some(ip), Some(sp)) = (c.slot(ctx::BYTE_POINTER).as_int(), c.slot(ctx::STACK_TOP).as_int()) else {
            return fault("context has a non-integer bytePointer or stackTop");
        };
        if !is_array(method) || method.len() < meth::SIZE - 1 {
            return fault("context's method is not a Method");
        }
        let code = method.slot(meth::BYTECODES);
        let literals = method.slot(meth::LITERALS);
        if !code.is_ptr() || code.kind() != Kind::Bytes {
            return fault("method has no bytecodes");
        }
        if !is_array(args) || args.is_empty() || !is_array(stack) || (temps != self.k.nil && !is_array(temps)) {
            return fault("context has malformed arguments, temporaries or stack");
        }
        if ip < 0 || sp < 0 || sp as usize > stack.len() {
            return fault("context has an out-of-range bytePointer or stackTop");
        }
        let data = self.method_data_index(method, code);
        self.regs = Regs {
            ctx: c,
            method,
            code: code.bytes(),
            ip: ip as usize,
            literals: slots(literals),
            args: slots(args),
            temps: slots(temps),
            stack: slots(stack),
            sp: sp as usize,
            data,
        };
        Ok(())
    }

    #[inline(always)]
    fn receiver(&self) -> Value {
        self.regs.args.get(0).unwrap_or(self.k.nil)
    }

    #[inline(always)]
    fn push(&mut self, v: Value) {
        let r = &mut self.regs;
        if !r.stack.set(r.sp, v) {
            self.grow_stack();
            let r = &mut self.regs;
            r.stack.set(r.sp, v);
        }
        self.regs.sp += 1;
    }

    #[cold]
    fn grow_stack(&mut self) {
        let old = self.regs.stack;
        let n = (old.len() * 2).max(8);
        let nil = self.k.nil;
        let array = self.k.array;
        let new = self.heap.alloc_pointers(array, n, nil);
        for i in 0..old.len() {
            new.set_slot(i, old.get(i).unwrap_or(nil));
        }
        self.regs.ctx.set_slot(ctx::STACK, new);
        self.regs.stack = slots(new);
    }

    #[inline(always)]
    fn pop(&mut self) -> Result<Value, Interrupt> {
        let r = &mut self.regs;
        if r.sp == 0 {
            return fault("stack underflow");
        }
        r.sp -= 1;
        r.stack.get(r.sp).ok_or_else(|| Interrupt::Fault("stack pointer out of range".into()))
    }

    #[inline(always)]
    fn top(&self) -> Result<Value, Interrupt> {
        let r = &self.regs;
        if r.sp == 0 {
            return fault("stack underflow");
        }
        r.stack.get(r.sp - 1).ok_or_else(|| Interrupt::Fault("stack pointer out of range".into()))
    }

    #[inline(always)]
    fn fetch(&mut self) -> Result<u8, Interrupt> {
        let r = &mut self.regs;
        match r.code.get(r.ip) {
            Some(&b) => {
                r.ip += 1;
                Ok(b)
            }
            None => fault("execution ran past the end of the method"),
        }
    }

    /// A safepoint: collect if the heap asks for it.
    #[inline(always)]
    fn safepoint(&mut self) -> Step {
        if let Some(left) = self.budget.as_mut() {
            if *left == 0 {
                return Err(VmError::Fatal("execution budget exhausted".into()).into());
            }
            *left -= 1;
        }
        if self.heap.wants_collection() {
            self.save_regs();
            self.collect_garbage();
            if self.heap.live_bytes() > self.max_heap_bytes {
                return Err(VmError::Fatal(format!(
                    "out of memory: {} MiB of live objects exceed the heap limit of {} MiB (--max-heap)",
                    self.heap.live_bytes() >> 20,
                    self.max_heap_bytes >> 20
                ))
                .into());
            }
            let c = self.regs.ctx;
            self.load_context(c)?;
        }
        Ok(())
    }

    // ----- sends ------------------------------------------------------------------------------

    /// The method `selector` finds in `cls` and its data index (None when it has no bytecodes),
    /// through send site `site`'s inline cache (of the current method) when there is one.
    #[inline(always)]
    fn find_method(&mut self, cls: Value, selector: Value, site: Option<usize>) -> Option<(Value, Option<usize>)> {
        match site {
            Some(s) => {
                let data = self.regs.data;
                self.lookup_at_site(data, s, cls, selector)
            }
            None => self.lookup(cls, selector).map(|m| (m, self.data_of(m))),
        }
    }

    /// Sends `selector` with the Array `args` (receiver first). `lookup_class` overrides the
    /// receiver's class (super sends); `site` is the send site's index in the current method data.
    fn send(&mut self, selector: Value, args: Value, lookup_class: Option<Value>, site: Option<usize>) -> Step {
        if !is_array(args) || args.is_empty() {
            return fault("send without a receiver");
        }
        self.counters.sends += 1;
        let receiver = args.slot(0);
        let cls = lookup_class.unwrap_or_else(|| self.class_of(receiver));
        let owns_args = site.is_some_and(|s| self.method_data[self.regs.data].sends[s].fresh_args);
        let Some((method, data)) = self.find_method(cls, selector, site) else {
            return self.send_not_understood(cls, selector, args);
        };
        let Some(data) = data else {
            return fault("sent method has no bytecodes");
        };
        if self.method_data[data].quick != Quick::No && args.len() <= 6 && !self.plain {
            let mut vals = [Value::from_int(0); 6];
            for (i, v) in vals.iter_mut().enumerate().take(args.len()) {
                *v = args.slot(i);
            }
            if self.run_quick(method, data, &vals[..args.len()])? {
                if owns_args {
                    self.heap.free(args);
                }
                return Ok(());
            }
        }
        self.activate(method, args, owns_args, data)
    }

    /// `send` for a receiver and arguments already popped (`vals`, receiver first, at most 6),
    /// as if an Array of them had been built for this send alone: the Array is only built when a
    /// context (or `doesNotUnderstand:`) needs it, so a quick method costs no allocation.
    #[inline]
    fn send_values(&mut self, selector: Value, vals: &[Value], site: Option<usize>) -> Step {
        let Some(&receiver) = vals.first() else {
            return fault("send without a receiver");
        };
        self.counters.sends += 1;
        let cls = self.class_of(receiver);
        let Some((method, data)) = self.find_method(cls, selector, site) else {
            let args = self.new_array(vals);
            return self.send_not_understood(cls, selector, args);
        };
        let Some(data) = data else {
            return fault("sent method has no bytecodes");
        };
        if self.method_data[data].quick != Quick::No && !self.plain && self.run_quick(method, data, vals)? {
            return Ok(());
        }
        let array = self.k.array;
        let args = self.heap.alloc_with_slots(array, vals);
        self.activate(method, args, true, data)
    }

    /// No method for `selector` in `cls`: send `doesNotUnderstand:` with `#(selector args)`.
    #[cold]
    #[inline(never)]
    fn send_not_understood(&mut self, cls: Value, selector: Value, args: Value) -> Step {
        let receiver = args.slot(0);
        let dnu_sel = self.selectors.dnu;
        let Some(dnu) = self.lookup(cls, dnu_sel) else {
            return Err(VmError::Fatal(format!(
                "{} does not understand {} and has no doesNotUnderstand:",
                self.class_name(cls),
                String::from_utf8_lossy(selector.bytes())
            ))
            .into());
        };
        let inner = self.new_array(&[selector, args]);
        let dnu_args = self.new_array(&[receiver, inner]);
        let Some(code) = dnu.slot_checked(meth::BYTECODES).filter(|c| c.is_bytes()) else {
            return fault("doesNotUnderstand: has no bytecodes");
        };
        let data = self.method_data_index(dnu, code);
        self.activate(dnu, dnu_args, false, data)
    }

    /// Runs a quick method (see `Quick`) without a context. Answers false when `method` is not
    /// quick, or its primitive failed and a real activation must report it.
    #[inline]
    fn run_quick(&mut self, method: Value, data: usize, all: &[Value]) -> Result<bool, Interrupt> {
        let quick = self.method_data[data].quick;
        let pick = |list: &ArgList, out: &mut [Value; 6]| -> bool {
            for (i, &a) in list.as_slice().iter().enumerate() {
                match all.get(a as usize) {
                    Some(&v) => out[i] = v,
                    None => return false,
                }
            }
            true
        };
        let mut vals = [Value::from_int(0); 6];
        let result = match quick {
            Quick::BlockValue { args: list } => {
                let n = list.len as usize;
                if !pick(&list, &mut vals) {
                    return Ok(false);
                }
                let block = vals[n - 1];
                if !is_array(block) || block.len() < ctx::BLOCK_SIZE {
                    return Ok(false);
                }
                self.save_regs();
                let sender = self.regs.ctx;
                self.enter_block(block, &vals[..n - 1], sender)?;
                self.counters.quick_sends += 1;
                return Ok(true);
            }
            Quick::Forward { args: list, selector, site } => {
                // `^ a b … sel` forwarding to a quick method: run both without contexts, or
                // neither (a real activation then does the whole thing, observably the same).
                if !pick(&list, &mut vals) {
                    return Ok(false);
                }
                let vals = &vals[..list.len as usize];
                let Some(sel) = method.slot(meth::LITERALS).slot_checked(selector) else { return Ok(false) };
                let cls = self.class_of(vals[0]);
                let probed = match self.probe_site(data, site, cls) {
                    Some((m, d)) => Some((m, d)),
                    None => self.lookup(cls, sel).and_then(|m| self.data_of(m).map(|d| (m, d))),
                };
                let Some((target, target_data)) = probed else {
                    return Ok(false);
                };
                match self.quick_value(target, target_data, vals) {
                    Some(v) => {
                        self.counters.sends += 1;
                        self.note_site_send(data, site, cls, target, target_data);
                        v
                    }
                    None => return Ok(false),
                }
            }
            _ => match self.quick_value(method, data, all) {
                Some(v) => v,
                None => return Ok(false),
            },
        };
        self.push(result);
        self.counters.quick_sends += 1;
        Ok(true)
    }

    /// The answer of a quick method that answers a value without entering anything (returns and
    /// primitives), given its receiver and arguments; None when it is not such a method or its
    /// primitive failed.
    #[inline]
    fn quick_value(&mut self, method: Value, data: usize, args: &[Value]) -> Option<Value> {
        let quick = self.method_data[data].quick;
        let receiver = *args.first()?;
        Some(match quick {
            Quick::ReturnSelf => receiver,
            Quick::ReturnInstVar(n) => receiver.slot_checked(n)?,
            Quick::ReturnLiteral(n) => method.slot(meth::LITERALS).slot_checked(n)?,
            Quick::ReturnConstant(n) => match n {
                0..=9 => Value::from_int(n as i32),
                10 => self.k.nil,
                11 => self.k.true_,
                _ => self.k.false_,
            },
            Quick::Primitive { prim, args: list } | Quick::PrimitiveOrFallback { prim, args: list } => {
                let mut vals = [Value::from_int(0); 6];
                for (i, &a) in list.as_slice().iter().enumerate() {
                    vals[i] = *args.get(a as usize)?;
                }
                let vals = &vals[..list.len as usize];
                if let Some(v) = self.small_int_primitive(prim, vals) {
                    return Some(v);
                }
                match primitives::call(self, prim, vals) {
                    Ok(v) if v == self.k.nil && matches!(quick, Quick::PrimitiveOrFallback { .. }) => return None,
                    Ok(v) => v,
                    Err(_) => return None,
                }
            }
            Quick::No | Quick::BlockValue { .. } | Quick::Forward { .. } => return None,
        })
    }

    /// The SmallInt primitives that quick methods call most (arithmetic and comparisons), when
    /// both arguments are SmallInts and the result needs no soft failure; None otherwise, and the
    /// general primitive runs. Same results as `primitives::call`.
    #[inline(always)]
    fn small_int_primitive(&self, prim: u8, args: &[Value]) -> Option<Value> {
        let [a, b] = args else { return None };
        let (x, y) = (a.as_int()? as i64, b.as_int()? as i64);
        match prim {
            10 => Value::from_i64(x + y),
            13 => Some(self.bool(x < y)),
            14 => Some(self.bool(x == y)),
            15 => Value::from_i64(x * y),
            16 => Value::from_i64(x - y),
            _ => None,
        }
    }

    /// Creates and enters a context for `method` with `args`, whose sender is the active context.
    #[inline]
    fn activate(&mut self, method: Value, args: Value, owns_args: bool, data: usize) -> Step {
        let code = method.slot(meth::BYTECODES);
        if !code.is_bytes() {
            return fault("sent method has no bytecodes");
        }
        let Some(temp_size) = self.method_data[data].temp_size else {
            return fault("sent method has no temporarySize");
        };
        if temp_size > MAX_TEMPORARIES {
            return fault(format!("sent method's temporarySize {temp_size} is out of range"));
        }
        self.save_regs();
        let nil = self.k.nil;
        let array = self.k.array;
        let temps = if temp_size > 0 { self.heap.alloc_pointers(array, temp_size as usize, nil) } else { nil };
        // The computed depth, not the declared stackSize: declared sizes are generous (19 is
        // common) and can also be too small (SMALLWORLD-VM.md §3.3); stacks grow either way.
        let depth = self.method_data[data].max_stack;
        let stack = self.heap.alloc_pointers(array, depth, nil);
        let zero = Value::from_int(0);
        let prev = self.regs.ctx;
        let context_class = self.k.context;
        let c = self.heap.alloc_with_slots(context_class, &[method, args, temps, stack, zero, zero, prev]);
        if !self.plain {
            c.set_flags(RECYCLABLE | if owns_args { OWNS_ARGS } else { 0 });
        }
        // Everything is known: set the registers without re-reading and re-checking the context.
        let literals = method.slot(meth::LITERALS);
        self.regs = Regs {
            ctx: c,
            method,
            code: code.bytes(),
            ip: 0,
            literals: slots(literals),
            args: slots(args),
            temps: slots(temps),
            stack: slots(stack),
            sp: 0,
            data,
        };
        Ok(())
    }

    /// Marks `c` and every context below it as escaped (no longer recyclable).
    pub(crate) fn mark_escaped(&mut self, mut c: Value) {
        while c.is_ptr() && c.flags() & RECYCLABLE != 0 {
            c.set_flags(c.flags() & !(RECYCLABLE | OWNS_ARGS));
            c = c.slot(ctx::PREVIOUS);
        }
    }

    /// Frees a context that has returned, with its private arrays, if it never escaped.
    #[inline]
    fn recycle(&mut self, c: Value) {
        if free_returned_context(&mut self.heap, self.k.nil, c) {
            self.counters.recycled_contexts += 1;
        }
    }

    /// Returns `value` to `target` (a context, or nil to end the current run).
    fn return_to(&mut self, target: Value, value: Value) -> Step {
        if target == self.k.nil {
            let pid = self.sched.current;
            if let Some(caller) = self.sched.procs[pid].barriers.pop() {
                self.load_context(caller)?;
                self.push(value);
                return Ok(());
            }
            return Err(Interrupt::Exit(Exit::Finished(value)));
        }
        self.load_context(target)?;
        self.push(value);
        Ok(())
    }

    // ----- blocks -----------------------------------------------------------------------------

    /// Opcode 12: push a new Block whose body starts here and skip the body.
    fn push_block(&mut self, arg_location: u8) -> Step {
        let end = self.fetch()? as usize;
        let r = &self.regs;
        let body = Value::from_int(r.ip as i32);
        // tracevm records the home method context (not the executing block context) so that a
        // nested block's `^` returns from the home method (SMALLWORLD-VM.md §7.1).
        let home = if r.ctx.len() >= ctx::BLOCK_SIZE { r.ctx.slot(ctx::CREATING_CONTEXT) } else { r.ctx };
        let slots = [
            r.method,
            r.args.obj(),
            r.temps.obj(),
            r.stack.obj(),
            body,
            Value::from_int(0),
            r.ctx.slot(ctx::PREVIOUS),
            Value::from_int(arg_location as i32),
            home,
            body,
        ];
        let here = r.ctx;
        self.mark_escaped(here);
        let block_class = self.k.block;
        let b = self.heap.alloc_with_slots(block_class, &slots);
        self.regs.ip = end;
        self.push(b);
        Ok(())
    }

    /// Primitive 8: `Block>>value…`. `n` counts the arguments including the block (on top).
    /// The block's context returns straight to the sender of `value`; the `value` context is done.
    fn block_value(&mut self, n: usize) -> Step {
        let block = self.pop()?;
        if !is_array(block) || block.len() < ctx::BLOCK_SIZE {
            return fault("primitive 8: receiver is not a block");
        }
        let mut vals = [Value::from_int(0); 16];
        let k = n.saturating_sub(1).min(16);
        for i in (0..k).rev() {
            vals[i] = self.pop()?;
        }
        self.save_regs();
        let value_ctx = self.regs.ctx;
        let sender = value_ctx.slot(ctx::PREVIOUS);
        self.enter_block(block, &vals[..k], sender)?;
        self.recycle(value_ctx);
        Ok(())
    }

    /// Stores `args` into the block's home temporaries and enters a new block context whose
    /// sender is `sender`.
    fn enter_block(&mut self, block: Value, args: &[Value], sender: Value) -> Step {
        let Some(arg_loc) = block.slot(ctx::ARG_LOCATION).as_int() else {
            return fault("primitive 8: block has no argument location");
        };
        // The new context is loaded as one the VM made (unchecked), so the block's slots, which
        // Smalltalk can change, are checked here as `load_context_checked` checks a context's.
        let method = block.slot(ctx::METHOD);
        let runnable = is_array(method)
            && method.len() >= meth::SIZE - 1
            && method.slot(meth::BYTECODES).is_bytes()
            && block.slot(ctx::OLD_BYTE_POINTER).as_int().is_some_and(|ip| ip >= 0)
            && is_array(block.slot(ctx::ARGUMENTS))
            && !block.slot(ctx::ARGUMENTS).is_empty()
            && (block.slot(ctx::TEMPORARIES) == self.k.nil || is_array(block.slot(ctx::TEMPORARIES)));
        if !runnable {
            return fault("primitive 8: malformed block (its method, body, arguments or temporaries)");
        }
        let temps = block.slot(ctx::TEMPORARIES);
        for (i, &v) in args.iter().enumerate() {
            let at = arg_loc as usize + i;
            if !is_array(temps) || at >= temps.len() {
                return fault("wrong argument count for block");
            }
            temps.set_slot(at, v);
        }
        let c = self.new_block_context(block, sender);
        if !self.plain {
            c.set_flags(RECYCLABLE);
        }
        self.load_context(c)
    }

    /// A context that runs `block`'s body: a copy of the block's ten slots with a fresh stack as
    /// long as the block's, bytePointer at the body, and `sender` as its previous context
    /// (SMALLWORLD-VM.md §3.4). The caller checked that `block` has ten slots.
    fn new_block_context(&mut self, block: Value, sender: Value) -> Value {
        let old_stack = block.slot(ctx::STACK);
        let stack_len = if is_array(old_stack) { old_stack.len().max(1) } else { 8 };
        let nil = self.k.nil;
        let array = self.k.array;
        let stack = self.heap.alloc_pointers(array, stack_len, nil);
        let context_class = self.k.context;
        let c = self.heap.alloc_pointers(context_class, ctx::BLOCK_SIZE, nil);
        for i in 0..ctx::BLOCK_SIZE {
            c.set_slot(i, block.slot(i));
        }
        c.set_slot(ctx::STACK, stack);
        c.set_slot(ctx::BYTE_POINTER, block.slot(ctx::OLD_BYTE_POINTER));
        c.set_slot(ctx::STACK_TOP, Value::from_int(0));
        c.set_slot(ctx::PREVIOUS, sender);
        c
    }

    // ----- primitives that change control -----------------------------------------------------

    fn primitive(&mut self, argc: usize, number: u8) -> Step {
        match number {
            // Entering a block or a context is a call: a safepoint, like a send.
            8 => {
                self.safepoint()?;
                return self.block_value(argc);
            }
            6 => {
                self.safepoint()?;
                // perform:withArguments: — run the context; its return to nil comes back here.
                let target = self.pop_args(argc)?;
                let c = target[argc - 1];
                self.save_regs();
                let caller = self.regs.ctx;
                self.load_context(c)?;
                let pid = self.sched.current;
                self.sched.procs[pid].barriers.push(caller);
                return Ok(());
            }
            34 => {
                self.pop_args(argc)?;
                return Err(VmError::Halted.into());
            }
            35 => {
                self.pop_args(argc)?;
                self.save_regs();
                let c = self.regs.ctx;
                self.mark_escaped(c);
                self.push(c);
                return Ok(());
            }
            19 => {
                let a = self.pop_args(argc)?;
                let block = *a.last().ok_or(Fault("primitive 19 needs a block".into()))?;
                self.fork(block)?;
                self.push(block);
                return Ok(());
            }
            101 => {
                let a = self.pop_args(argc)?;
                let h = self.host.semaphore_handle(*a.last().ok_or(Fault("wait needs a Semaphore".into()))?)?;
                if let Some(v) = self.sched.semaphores[h].value {
                    self.push(v);
                    return Ok(());
                }
                self.save_regs();
                let pid = self.sched.current;
                self.sched.procs[pid].waiting_on = Some(h);
                self.sched.procs[pid].context = self.regs.ctx;
                return Err(Interrupt::Exit(Exit::Blocked));
            }
            102 => {
                let a = self.pop_args(argc)?;
                if a.len() < 2 {
                    return fault("set: needs a Semaphore and a value");
                }
                let (sem, v) = (a[0], a[1]);
                let h = self.host.semaphore_handle(sem)?;
                self.sched.semaphores[h].value = Some(v);
                for p in &mut self.sched.procs {
                    if p.waiting_on == Some(h) {
                        p.waiting_on = None;
                        p.resume_value = Some(v);
                    }
                }
                self.push(v);
                return Ok(());
            }
            117 => {
                self.pop_args(argc)?;
                return Err(VmError::Quit(0).into());
            }
            122 => {
                // tracevm's error report (headless prelude `Object>>error:`): message, backtrace.
                let a = self.pop_args(argc)?;
                let text = |v: Value| String::from_utf8_lossy(v.bytes()).into_owned();
                let message = a.first().map(|&v| text(v)).unwrap_or_default();
                let backtrace = a.get(1).map(|&v| text(v)).unwrap_or_default();
                return Err(VmError::Smalltalk { message, backtrace }.into());
            }
            _ => {}
        }
        let args = self.pop_args(argc)?;
        if number == 29 || number == 116 {
            self.save_regs();
        }
        let result = primitives::call(self, number, &args)?;
        self.push(result);
        Ok(())
    }

    /// Pops `n` primitive arguments, first-pushed first.
    fn pop_args(&mut self, n: usize) -> Result<smallvec::SmallVec<[Value; 6]>, Interrupt> {
        if self.regs.sp < n {
            return fault("stack underflow in primitive");
        }
        let base = self.regs.sp - n;
        let nil = self.k.nil;
        let v = (base..self.regs.sp).map(|i| self.regs.stack.get(i).unwrap_or(nil)).collect();
        self.regs.sp = base;
        Ok(v)
    }

    fn fork(&mut self, block: Value) -> Step {
        if !is_array(block) || block.len() < ctx::BLOCK_SIZE {
            return fault("fork: receiver is not a block");
        }
        let nil = self.k.nil;
        let c = self.new_block_context(block, nil);
        self.sched.procs.push(Process { context: c, barriers: Vec::new(), waiting_on: None, resume_value: None });
        Ok(())
    }

    // ----- host faults ------------------------------------------------------------------------

    /// Reports a host fault as `receiver error: message`, whose result stands for the failed
    /// instruction's result.
    fn raise_fault(&mut self, msg: String) -> Step {
        if let Some(report) = self.fault_report {
            if self.on_active_chain(report) {
                return Err(VmError::Fatal(format!("{msg} (while reporting an earlier error)")).into());
            }
        }
        if !self.chain_is_sound() {
            // The report's backtrace would walk into it and fail again, reporting itself
            // until memory runs out (a context whose sender slot Smalltalk set to 7).
            return Err(VmError::Fatal(format!("{msg} (the context chain is broken, so it cannot be reported)")).into());
        }
        tracing::debug!(target: "tracevm::interp", "host fault: {msg}");
        let faulting = self.regs.ctx;
        let receiver = self.receiver();
        let s = self.new_string(msg.as_bytes());
        let args = self.new_array(&[receiver, s]);
        let sel = self.selectors.error;
        let sent = self.send(sel, args, None, None);
        // An `error:` answered without an activation (a quick method) has already returned.
        let report = self.regs.ctx;
        self.fault_report = None;
        if report != faulting {
            self.mark_escaped(report);
            self.fault_report = Some(report);
        }
        sent
    }

    /// Whether every sender of the active context is a context, up to nil (the end of the chain).
    fn chain_is_sound(&self) -> bool {
        let mut x = self.regs.ctx;
        for _ in 0..10_000_000 {
            if x == self.k.nil {
                return true;
            }
            if !(x.is_ptr() && x.kind() == Kind::Pointers && x.len() >= ctx::SIZE) {
                return false;
            }
            x = x.slot(ctx::PREVIOUS);
        }
        true // longer than any real chain, or a cycle: the report may still work
    }

    /// Whether `c` is the active context or one of its senders (a chain made into a cycle
    /// counts as containing it).
    fn on_active_chain(&self, c: Value) -> bool {
        let mut x = self.regs.ctx;
        for _ in 0..10_000_000 {
            if x == c {
                return true;
            }
            if !(x.is_ptr() && x.kind() == Kind::Pointers && x.len() > ctx::PREVIOUS) {
                return false;
            }
            x = x.slot(ctx::PREVIOUS);
        }
        true
    }

    // ----- the dispatch loop ------------------------------------------------------------------

    /// Runs the current process until it finishes or blocks.
    fn interpret(&mut self) -> Result<Exit, VmError> {
        loop {
            let step = if self.jit.recording() { self.dispatch::<true>() } else { self.dispatch::<false>() };
            if !matches!(step, Err(Interrupt::Switch)) && self.jit.recording() {
                self.abort_recording("the run was interrupted (error, process switch or end)");
            }
            match step {
                Ok(()) => unreachable!("dispatch only returns by interrupt"),
                Err(Interrupt::Switch) => continue,
                Err(Interrupt::Exit(e)) => return Ok(e),
                Err(Interrupt::Error(e)) => return Err(*e),
                Err(Interrupt::Fault(msg)) => match self.raise_fault(msg.into_string()) {
                    Ok(()) | Err(Interrupt::Switch) => continue,
                    Err(Interrupt::Error(e)) => return Err(*e),
                    Err(Interrupt::Fault(m)) => return Err(VmError::Fatal(m.into_string())),
                    Err(Interrupt::Exit(e)) => return Ok(e),
                },
            }
        }
    }

    // ----- the bytecodes: one method each (SMALLWORLD-VM.md §3.2) -------------------------------

    #[inline(always)]
    fn op_push_instance(&mut self, n: usize) -> Step {
        match self.receiver().slot_checked(n) {
            Some(v) => {
                self.push(v);
                Ok(())
            }
            None => fault(format!("no instance variable {} in receiver", n + 1)),
        }
    }

    #[inline(always)]
    fn op_push_argument(&mut self, n: usize) -> Step {
        match self.regs.args.get(n) {
            Some(v) => {
                self.push(v);
                Ok(())
            }
            None => fault(format!("no argument {n}")),
        }
    }

    #[inline(always)]
    fn op_push_temporary(&mut self, n: usize) -> Step {
        match self.regs.temps.get(n) {
            Some(v) => {
                self.push(v);
                Ok(())
            }
            None => fault(format!("no temporary {n}")),
        }
    }

    #[inline(always)]
    fn op_push_literal(&mut self, n: usize) -> Step {
        match self.regs.literals.get(n) {
            Some(v) => {
                self.push(v);
                Ok(())
            }
            None => fault(format!("no literal {n}")),
        }
    }

    #[inline(always)]
    fn op_push_constant(&mut self, n: u8) -> Step {
        let v = match n {
            0..=9 => Value::from_int(n as i32),
            10 => self.k.nil,
            11 => self.k.true_,
            12 => self.k.false_,
            _ => return fault(format!("bad constant {n}")),
        };
        self.push(v);
        Ok(())
    }

    #[inline(always)]
    fn op_assign_instance(&mut self, n: usize) -> Step {
        let v = self.top()?;
        let rcv = self.receiver();
        if rcv.slot_checked(n).is_none() {
            return fault(format!("no instance variable {} in receiver", n + 1));
        }
        rcv.set_slot(n, v);
        self.note_store(rcv, n);
        Ok(())
    }

    #[inline(always)]
    fn op_assign_temporary(&mut self, n: usize) -> Step {
        let v = self.top()?;
        if !self.regs.temps.set(n, v) {
            return fault(format!("no temporary {n}"));
        }
        Ok(())
    }

    #[inline(always)]
    fn op_mark_arguments(&mut self, n: usize) -> Step {
        if self.regs.sp < n {
            return fault("stack underflow");
        }
        let array = self.k.array;
        let base = self.regs.sp - n;
        let a = self.heap.alloc_slots_from(array, self.regs.stack.obj(), base, n);
        self.regs.sp = base;
        self.push(a);
        Ok(())
    }

    /// markArguments `n` (1 to 6) immediately followed by send literal `lit` at offset `start`:
    /// the two bytecodes' meaning without building the arguments Array when the method found
    /// does not need one (see `send_values`).
    #[inline(always)]
    fn op_mark_and_send(&mut self, n: usize, lit: usize, start: usize) -> Step {
        if self.regs.sp < n {
            return fault("stack underflow");
        }
        self.safepoint()?;
        let Some(sel) = self.regs.literals.get(lit) else {
            return fault(format!("no literal {lit}"));
        };
        let base = self.regs.sp - n;
        let mut vals = [Value::from_int(0); 6];
        for (i, v) in vals.iter_mut().enumerate().take(n) {
            *v = self.regs.stack.get(base + i).unwrap_or(self.k.nil);
        }
        self.regs.sp = base;
        let site = self.site_at(start);
        self.send_values(sel, &vals[..n], site)
    }

    /// The send site starting at bytecode offset `start` of the current method.
    #[inline(always)]
    fn site_at(&self, start: usize) -> Option<usize> {
        match self.method_data[self.regs.data].site_at.get(start) {
            Some(SiteRef::Send(s)) => Some(*s as usize),
            _ => None,
        }
    }

    #[inline(always)]
    fn op_send(&mut self, n: usize, start: usize) -> Step {
        self.safepoint()?;
        let args = self.pop()?;
        let Some(sel) = self.regs.literals.get(n) else {
            return fault(format!("no literal {n}"));
        };
        let site = self.site_at(start);
        self.send(sel, args, None, site)
    }

    #[inline(always)]
    fn op_send_unary(&mut self, n: u8) -> Step {
        let v = self.pop()?;
        let is_nil = v == self.k.nil;
        let r = match n {
            0 => is_nil,
            1 => !is_nil,
            _ => return fault(format!("bad unary opcode {n}")),
        };
        let b = self.bool(r);
        self.push(b);
        Ok(())
    }

    #[inline(always)]
    fn op_send_binary(&mut self, n: u8, start: usize) -> Step {
        let b = self.pop()?;
        let a = self.pop()?;
        if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
            let r = match n {
                0 => Some(self.bool(x < y)),
                1 => Some(self.bool(x <= y)),
                2 => x.checked_add(y).map(Value::from_int),
                _ => return fault(format!("bad binary opcode {n}")),
            };
            if let Some(r) = r {
                self.push(r);
                return Ok(());
            }
        }
        if n > 2 {
            return fault(format!("bad binary opcode {n}"));
        }
        self.safepoint()?;
        let sel = self.selectors.binary[n as usize];
        let site = self.site_at(start);
        self.send_values(sel, &[a, b], site)
    }

    #[inline(always)]
    fn op_push_class_variable(&mut self, n: usize) -> Step {
        let cls = self.class_of(self.receiver());
        match cls.slot_checked(class::FIRST_CLASS_VARIABLE + n) {
            Some(v) => {
                self.push(v);
                Ok(())
            }
            None => fault(format!("no class variable {n}")),
        }
    }

    /// 15.1 and 15.2: return to the sender.
    #[inline(always)]
    fn op_return(&mut self, self_return: bool) -> Step {
        let v = if self_return { self.receiver() } else { self.pop()? };
        let done = self.regs.ctx;
        let target = done.slot(ctx::PREVIOUS);
        self.return_to(target, v)?;
        self.recycle(done);
        Ok(())
    }

    /// 15.3: return from the home method's sender (non-local return).
    fn op_block_return(&mut self) -> Step {
        let v = self.pop()?;
        let c = self.regs.ctx;
        let home = if c.len() >= ctx::BLOCK_SIZE { c.slot(ctx::CREATING_CONTEXT) } else { c };
        let Some(target) = home.slot_checked(ctx::PREVIOUS) else {
            return fault("block return without a home context");
        };
        self.return_to(target, v)
    }

    #[inline(always)]
    fn op_jump(&mut self) -> Step {
        let t = self.fetch()? as usize;
        if t < self.regs.ip {
            self.safepoint()?;
            self.regs.ip = t;
            if self.jit.options.enabled {
                return self.back_edge(t);
            }
            return Ok(());
        }
        self.regs.ip = t;
        Ok(())
    }

    /// A loop's back edge with the JIT on (see `Vm::loop_edge`).
    fn back_edge(&mut self, header: usize) -> Step {
        match self.loop_edge(header) {
            crate::jit::Edge::Continue => Ok(()),
            crate::jit::Edge::Record => Err(Interrupt::Switch),
        }
    }

    /// 15.7 (branch if true) and 15.8 (branch if false).
    #[inline(always)]
    fn op_branch(&mut self, on_true: bool, start: usize) -> Step {
        let t = self.fetch()? as usize;
        let v = self.pop()?;
        let want = if on_true { self.k.true_ } else { self.k.false_ };
        let taken = v == want;
        let data = self.regs.data;
        if let Some(&SiteRef::Branch(i)) = self.method_data[data].site_at.get(start) {
            let c = &mut self.method_data[data].branches[i as usize];
            c.executed += 1;
            c.taken += taken as u64;
        }
        if taken {
            self.regs.ip = t;
        }
        Ok(())
    }

    fn op_super_send(&mut self, start: usize) -> Step {
        let k = self.fetch()?;
        self.safepoint()?;
        let args = self.pop()?;
        let Some(sel) = self.regs.literals.get(k as usize) else {
            return fault(format!("no literal {k}"));
        };
        let parent = self
            .regs
            .method
            .slot_checked(meth::CLASS)
            .and_then(|c| c.slot_checked(class::PARENT))
            .unwrap_or(self.k.nil);
        let site = self.site_at(start);
        self.send(sel, args, Some(parent), site)
    }

    /// Executes one instruction given its opcode and operand (either encoding).
    fn step(&mut self, op: u8, n: u8, start: usize) -> Step {
        match op {
            1 => self.op_push_instance(n as usize),
            2 => self.op_push_argument(n as usize),
            3 => self.op_push_temporary(n as usize),
            4 => self.op_push_literal(n as usize),
            5 => self.op_push_constant(n),
            6 => self.op_assign_instance(n as usize),
            7 => self.op_assign_temporary(n as usize),
            8 => self.op_mark_arguments(n as usize),
            9 => self.op_send(n as usize, start),
            10 => self.op_send_unary(n),
            11 => self.op_send_binary(n, start),
            12 => self.push_block(n),
            13 => {
                let p = self.fetch()?;
                self.primitive(n as usize, p)
            }
            14 => self.op_push_class_variable(n as usize),
            15 => match n {
                1 | 2 => self.op_return(n == 1),
                3 => self.op_block_return(),
                4 => {
                    let v = self.top()?;
                    self.push(v);
                    Ok(())
                }
                5 => self.pop().map(|_| ()),
                6 => self.op_jump(),
                7 | 8 => self.op_branch(n == 7, start),
                11 => self.op_super_send(start),
                _ => fault(format!("bad special opcode {n}")),
            },
            _ => fault(format!("bad opcode {op}")),
        }
    }

    /// Executes bytecodes until something interrupts. The common one-byte instructions are
    /// dispatched straight from the byte (one jump table); everything else goes through `step`.
    /// `RECORD`: the recorder observes every bytecode before it runs (see `jit::recorder`).
    fn dispatch<const RECORD: bool>(&mut self) -> Step {
        loop {
            if RECORD && self.record_step() {
                return Err(Interrupt::Switch);
            }
            let start = self.regs.ip;
            let Some(&b) = self.regs.code.get(start) else {
                return fault("execution ran past the end of the method");
            };
            self.regs.ip = start + 1;
            let n = b & 15;
            match b {
                0x10..=0x1F => self.op_push_instance(n as usize)?,
                0x20..=0x2F => self.op_push_argument(n as usize)?,
                0x30..=0x3F => self.op_push_temporary(n as usize)?,
                0x40..=0x4F => self.op_push_literal(n as usize)?,
                0x50..=0x5C => self.op_push_constant(n)?,
                0x60..=0x6F => self.op_assign_instance(n as usize)?,
                0x70..=0x7F => self.op_assign_temporary(n as usize)?,
                // While recording, the recorder must see both bytecodes.
                0x81..=0x86 if !RECORD && self.regs.code.get(start + 1).is_some_and(|&c| c & 0xF0 == 0x90) => {
                    let lit = (self.regs.code[start + 1] & 15) as usize;
                    self.regs.ip = start + 2;
                    self.op_mark_and_send(n as usize, lit, start + 1)?
                }
                0x80..=0x8F => self.op_mark_arguments(n as usize)?,
                0x90..=0x9F => self.op_send(n as usize, start)?,
                0xA0 | 0xA1 => self.op_send_unary(n)?,
                0xB0..=0xB2 => self.op_send_binary(n, start)?,
                0xE0..=0xEF => self.op_push_class_variable(n as usize)?,
                0xF1 | 0xF2 => self.op_return(b == 0xF1)?,
                0xF5 => {
                    self.pop()?;
                }
                0xF6 => self.op_jump()?,
                0xF7 | 0xF8 => self.op_branch(b == 0xF7, start)?,
                0x00..=0x0F => {
                    let operand = self.fetch()?;
                    self.step(b, operand, start)?
                }
                _ => self.step(b >> 4, n, start)?,
            }
        }
    }

    // ----- entry points for the host ----------------------------------------------------------

    /// Runs `method` with the argument Array `args` (receiver first) as a new top-level process,
    /// then any processes it forked, and answers the method's result.
    pub fn run_method(&mut self, method: Value, args: Value) -> Result<Value, VmError> {
        self.fault_report = None;
        self.abort_recording("a nested run from the host");
        let nil = self.k.nil;
        let array = self.k.array;
        let (Some(_declared_stack), Some(ts)) = (
            method.slot_checked(meth::STACK_SIZE).and_then(|v| v.as_int()),
            method.slot_checked(meth::TEMP_SIZE).and_then(|v| v.as_int()),
        ) else {
            return Err(VmError::Fatal("not a method".into()));
        };
        let temps = if ts > 0 { self.heap.alloc_pointers(array, ts as usize, nil) } else { nil };
        let depth = match method.slot_checked(meth::BYTECODES).filter(|c| c.is_bytes()) {
            Some(code) => {
                let d = self.method_data_index(method, code);
                self.method_data[d].max_stack
            }
            None => 8,
        };
        let stack = self.heap.alloc_pointers(array, depth, nil);
        let zero = Value::from_int(0);
        let context_class = self.k.context;
        let c = self.heap.alloc_with_slots(context_class, &[method, args, temps, stack, zero, zero, nil]);
        let main = self.sched.procs.len();
        self.sched.procs.push(Process { context: c, barriers: Vec::new(), waiting_on: None, resume_value: None });
        let result = self.schedule(main);
        // Whatever happened, the processes of this evaluation are over.
        self.sched.procs.truncate(main);
        self.regs = Regs::empty();
        result
    }

    /// Sends `selector` to `receiver` with `args` from the host.
    pub fn send_from_host(&mut self, receiver: Value, selector: &str, args: &[Value]) -> Result<Value, VmError> {
        let sel = self.new_string(selector.as_bytes());
        let cls = self.class_of(receiver);
        let Some(method) = self.lookup(cls, sel) else {
            return Err(VmError::Smalltalk {
                message: format!("{} does not understand {selector}", self.class_name(cls)),
                backtrace: String::new(),
            });
        };
        let mut all = vec![receiver];
        all.extend_from_slice(args);
        let a = self.new_array(&all);
        self.run_method(method, a)
    }

    /// Runs processes from `main` on until `main` finishes; then runs the others that can run.
    fn schedule(&mut self, main: usize) -> Result<Value, VmError> {
        let mut pid = main;
        let mut main_result = None;
        loop {
            self.switch_to(pid).map_err(|_| VmError::Fatal("cannot resume process".into()))?;
            match self.interpret()? {
                Exit::Finished(v) => {
                    self.sched.procs[pid].context = self.k.nil;
                    self.sched.procs[pid].waiting_on = Some(usize::MAX); // finished: never runnable
                    if pid == main {
                        main_result = Some(v);
                    }
                }
                Exit::Blocked => {}
            }
            // Main first whenever it can run; otherwise any runnable process of this evaluation.
            let runnable = |i: usize, s: &super::Scheduler| i >= main && s.procs[i].waiting_on.is_none();
            if main_result.is_none() && runnable(main, &self.sched) {
                pid = main;
            } else if let Some(next) = (main..self.sched.procs.len()).find(|&i| runnable(i, &self.sched)) {
                pid = next;
            } else if let Some(v) = main_result {
                return Ok(v);
            } else {
                return Err(VmError::Fatal(
                    "deadlock: every process is waiting on a Semaphore (headless, nothing can press the \
                     button a dialog is waiting for)"
                        .into(),
                ));
            }
        }
    }

    fn switch_to(&mut self, pid: usize) -> Step {
        self.sched.current = pid;
        let c = self.sched.procs[pid].context;
        self.load_context(c)?;
        if let Some(v) = self.sched.procs[pid].resume_value.take() {
            self.push(v);
        }
        Ok(())
    }
}
