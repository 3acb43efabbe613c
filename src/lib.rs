//! tracevm: a virtual machine for SmallWorld 2015 images.
//!
//! The library holds the whole VM; `src/main.rs` is a thin binary over `cli`.

pub mod heap;
pub mod image;
