//! tracevm: a virtual machine for SmallWorld 2015 images.
//!
//! The library holds the whole VM; `src/main.rs` is a thin binary over `cli`.
//! Layout: `image` (file format), `heap` (object memory and GC), `interp` (the machine and its
//! bytecode interpreter), `primitives`, `boot` (headless start-up and file-in), `cli`.

pub mod boot;
pub mod cli;
pub mod compiler;
pub mod heap;
pub mod image;
pub mod interp;
pub mod jit;
pub mod primitives;
