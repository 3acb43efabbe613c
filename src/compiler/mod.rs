//! The native method compiler: a port of the image's own compiler (`Parser`, `Encoder` and the
//! `*Node` classes, SMALLWORLD-VM.md §8) that file-in and `-e` use instead of running that
//! compiler interpreted, which costs milliseconds per method.
//!
//! It must never compile a method differently from the image. So it answers either the very
//! method the image's compiler would build (same bytecodes, literals, stack and temporary sizes;
//! `tests/compiler.rs` compares the two on every method of the image and of the corpus) or a
//! `Decline`, and then the caller runs the image's compiler, which also reports compile errors
//! in its own words. It declines:
//! - wherever the image's parser calls `error:`;
//! - on what it does not reproduce bit for bit (LargePositive literals, bytes beyond 255);
//! - once a method the image's compiler depends on has been redefined (`CompilerWatch`), since
//!   from then on only the image knows what its compiler does.
//!
//! `parse` and `encode` are pure; `install` touches the heap (building the Method object and
//! installing it as `Class>>compileMethod:` does).

mod encode;
mod install;
mod parse;
mod watch;

pub use install::{compile_expression, compile_method_into, install_method, parse_method_for};
pub use watch::CompilerWatch;

use crate::heap::Value;

/// A literal of a compiled method, before it is allocated in the heap.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Nil,
    True,
    False,
    Int(i32),
    Float(f64),
    Str(Vec<u8>),
    Char(u8),
    /// A class named in the source (`Class at: name`), already an object.
    Global(Value),
}

/// Why the native compiler left a method to the image's compiler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Decline {
    /// The image's compiler reports this error (in its own words).
    #[error("compile error: {0}")]
    Error(&'static str),
    /// The image's compiler accepts this, but not exactly as this port would build it.
    #[error("left to the image's compiler: {0}")]
    Quirk(&'static str),
    /// A method the image's compiler runs has been redefined.
    #[error("the image's compiler has been changed")]
    CompilerChanged,
}

/// What `Encoder>>method:class:text:` puts in a Method, before allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledMethod {
    pub name: Vec<u8>,
    pub bytecodes: Vec<u8>,
    pub literals: Vec<Literal>,
    pub stack_size: i32,
    pub temp_size: i32,
}

/// Compiles a method's text as the image's compiler would, given the receiver class's instance
/// variable names (inherited first), its metaclass's variable names, and the registered
/// classes (`globals`, consulted for capitalised and other unknown names).
pub fn compile(
    text: &[u8],
    inst_names: &[Vec<u8>],
    class_var_names: &[Vec<u8>],
    globals: &mut dyn FnMut(&[u8]) -> Option<Value>,
) -> Result<CompiledMethod, Decline> {
    let parsed = parse::Parser::new(text, inst_names, class_var_names, globals).parse_method()?;
    encode::encode(parsed)
}

#[cfg(test)]
mod tests;
