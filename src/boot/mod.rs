//! Headless start-up and file-in: boots a `Vm` from an image, files in the headless prelude
//! (`images/headless.st`, compiled into the binary), and runs file-in programs and expressions.
//!
//! File-in follows the image's own `File>>fileIn` (EVAL / METHOD / META chunks ended by a line that
//! is exactly `!`; other lines ignored) but is driven from the host so that a failure can name the
//! file and line. Methods and expressions are compiled by the native port of the image's compiler
//! (`crate::compiler`) when it can vouch for the result, and otherwise by the image's own
//! (`Class>>compileMethod:`, `Class>>parseMethod:`), which also reports compile errors. It never
//! prints; errors are returned as `RunError`.

use crate::heap::Value;
use crate::interp::{BootError, Vm, VmError};
use thiserror::Error;

/// The headless prelude (see SMALLWORLD-VM.md §5).
pub const PRELUDE: &str = include_str!("../../images/headless.st");

/// Where in a program an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{at}: cannot compile {what}: {message}")]
    Compile { at: Location, what: String, message: String },
    #[error("{at}: unknown class {name} in {kind}")]
    UnknownClass { at: Location, kind: &'static str, name: String },
    #[error("{at}: METHOD/META chunk is not ended by a line '!'")]
    Unterminated { at: Location },
    #[error("{err}")]
    Runtime { at: Option<Location>, err: VmError },
}

impl RunError {
    /// The Smalltalk backtrace, when the error has one.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            RunError::Runtime { err: VmError::Smalltalk { backtrace, .. }, .. } if !backtrace.is_empty() => {
                Some(backtrace)
            }
            _ => None,
        }
    }
}

/// Boots a VM from image bytes and files in the headless prelude.
pub fn boot(image: &[u8]) -> Result<Vm, BootError> {
    boot_with(image, crate::jit::JitOptions::default())
}

/// `boot` with the JIT configured before the prelude runs.
pub fn boot_with(image: &[u8], jit: crate::jit::JitOptions) -> Result<Vm, BootError> {
    let mut vm = Vm::from_image_bytes(image)?;
    vm.compiler_watch = crate::compiler::CompilerWatch::new(&vm);
    // The prelude is a fixed few milliseconds of the image's compiler, whose loops the JIT would
    // only try and abandon (they allocate): it runs interpreted, so start-up costs the same
    // with or without the JIT.
    vm.jit.options = crate::jit::JitOptions { enabled: false, ..jit };
    file_in(&mut vm, PRELUDE.as_bytes(), "images/headless.st").map_err(|e| BootError::Prelude(e.to_string()))?;
    vm.jit.options = jit;
    Ok(vm)
}

fn text(v: Value) -> String {
    String::from_utf8_lossy(v.bytes()).into_owned()
}

/// Compiles `source` (a method's text) into `class` with the image's compiler.
fn compile_method(vm: &mut Vm, class: Value, source: &[u8], at: Location, what: String) -> Result<(), RunError> {
    let s = vm.new_string(source);
    match crate::compiler::compile_method_into(vm, class, s) {
        Ok(()) => return Ok(()),
        Err(why) => tracing::debug!(target: "tracevm::compiler", %what, %why, "image compiler used"),
    }
    // The image's compiler runs interpreted for file-in chunks: each compiled method flushes the
    // caches and so drops every trace, and its loops allocate (which traces do not do yet), so
    // recording them would only cost time. Programs that compile at run time are unaffected.
    let jit = vm.jit.options.enabled;
    vm.jit.options.enabled = false;
    let result = vm.send_from_host(class, "compileMethod:", &[s]);
    vm.jit.options.enabled = jit;
    match result {
        Ok(_) => Ok(()),
        Err(VmError::Smalltalk { message, .. }) => Err(RunError::Compile { at, what, message }),
        Err(err) => Err(RunError::Runtime { at: Some(at), err }),
    }
}

/// Compiles `expr` as the image's `doIt` does (`doItCommand ^ expr`, a method of Object; only
/// the first statement counts) and runs it with nil as the receiver.
pub fn eval(vm: &mut Vm, expr: &str, at: Option<Location>) -> Result<Value, RunError> {
    let loc = at.clone().unwrap_or(Location { file: "-e".into(), line: 1 });
    let source = vm.new_string(format!("doItCommand ^{expr}").as_bytes());
    let object = vm.k.object;
    let parsed = match crate::compiler::compile_expression(vm, source) {
        Ok(method) => Ok(method),
        Err(why) => {
            tracing::debug!(target: "tracevm::compiler", %why, "image compiler used for an expression");
            let jit = vm.jit.options.enabled;
            vm.jit.options.enabled = false;
            let parsed = vm.send_from_host(object, "parseMethod:", &[source]);
            vm.jit.options.enabled = jit;
            parsed
        }
    };
    let method = match parsed {
        Ok(m) if m != vm.k.nil => m,
        Ok(_) => return Err(RunError::Compile { at: loc, what: "expression".into(), message: "parse failed".into() }),
        Err(VmError::Smalltalk { message, .. }) => {
            return Err(RunError::Compile { at: loc, what: "expression".into(), message })
        }
        Err(err) => return Err(RunError::Runtime { at, err }),
    };
    let nil = vm.k.nil;
    let args = vm.new_array(&[nil]);
    vm.run_method(method, args).map_err(|err| RunError::Runtime { at, err })
}

/// The printString of `v`, as text.
pub fn print_string(vm: &mut Vm, v: Value) -> Result<String, RunError> {
    let s = vm.send_from_host(v, "printString", &[]).map_err(|err| RunError::Runtime { at: None, err })?;
    Ok(text(s))
}

/// Files in a program in the image's file-in format.
pub fn file_in(vm: &mut Vm, source: &[u8], file: &str) -> Result<(), RunError> {
    let lines = split_lines(source);
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let at = Location { file: file.to_string(), line: i + 1 };
        i += 1;
        if line.starts_with(b"EVAL") {
            let expr = String::from_utf8_lossy(line.get(5..).unwrap_or(&[])).into_owned();
            eval(vm, &expr, Some(at))?;
        } else if line.starts_with(b"METHOD") || line.starts_with(b"META") {
            let meta = !line.starts_with(b"METHOD");
            let kind = if meta { "META" } else { "METHOD" };
            let name = String::from_utf8_lossy(line.get(kind.len() + 1..).unwrap_or(&[])).trim().to_string();
            let mut body = Vec::new();
            let mut closed = false;
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                if l == b"!" {
                    closed = true;
                    break;
                }
                body.extend_from_slice(l);
                body.push(b'\n');
            }
            if !closed {
                return Err(RunError::Unterminated { at });
            }
            let Some(mut class) = vm.find_registered_class(&name) else {
                return Err(RunError::UnknownClass { at, kind, name });
            };
            if meta {
                class = vm.class_of(class);
            }
            let selector =
                String::from_utf8_lossy(body.split(|&b| b == b'\n').next().unwrap_or(&[])).trim().to_string();
            let what = format!("{kind} {name} ({selector})");
            compile_method(vm, class, &body, at, what)?;
        }
    }
    Ok(())
}

/// Lines without terminators (`\n`, `\r\n` or `\r`), as `File>>readLine` splits them.
fn split_lines(src: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'\n' => {
                out.push(&src[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&src[start..i]);
                if src.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < src.len() {
        out.push(&src[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_split_on_every_terminator() {
        assert_eq!(split_lines(b"a\nb\r\nc\rd"), vec![&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(split_lines(b"a\n\n"), vec![&b"a"[..], b""]);
        assert!(split_lines(b"").is_empty());
    }
}
