//! The trace-recording JIT (DESIGN.md): trace IR, optimizer, x86-64 backend, deoptimisation.
//!
//! Status: the IR (`ir`), the optimizer (`opt`) and the backend (`x64`, with `asm-tests/`) exist;
//! the recorder and deoptimisation into interpreter contexts come next (issue "The trace-recording
//! JIT"). Nothing here is wired into the interpreter yet, so the VM's behaviour does not depend
//! on it. Must never be entered with a trace that has not passed `ir::Trace::verify`.

pub mod ir;
pub mod opt;
pub mod x64;
