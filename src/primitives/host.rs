//! Host resources behind host objects (files, semaphores, GUI stand-ins), image saving, and the
//! in-place growth of primitive 32.
//!
//! A host object's handle word is `tag | index`. Files are byte-transparent and every write is
//! flushed (the image has no close primitive). It never hands a Rust resource to Smalltalk
//! directly, only handles.

use super::{class_arg, fail, Fault};
use crate::heap::{Collection, Kind, Value};
use crate::interp::Vm;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

pub const FILE_TAG: u64 = 1 << 32;
pub const SEMAPHORE_TAG: u64 = 2 << 32;
pub const GUI_TAG: u64 = 3 << 32;
const TAG_MASK: u64 = 0xffff_ffff << 32;

enum OpenFile {
    Read(BufReader<File>),
    Write(File),
}

/// Open files and the random generator.
pub struct HostTables {
    files: Vec<Option<OpenFile>>,
    rng: u64,
}

impl Default for HostTables {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        HostTables { files: Vec::new(), rng: seed | 1 }
    }
}

impl HostTables {
    pub(crate) fn mark(&self, _gc: &mut Collection<'_>) {}

    pub fn open_file(&mut self, path: &str, write: bool) -> Result<u64, String> {
        let f = if write {
            File::create(path).map(OpenFile::Write)
        } else {
            File::open(path).map(|f| OpenFile::Read(BufReader::new(f)))
        }
        .map_err(|e| format!("cannot open {path}: {e}"))?;
        self.files.push(Some(f));
        Ok(FILE_TAG | (self.files.len() - 1) as u64)
    }

    fn file(&mut self, f: Value) -> Result<&mut OpenFile, String> {
        if f.is_ptr() && f.kind() == Kind::Host && f.handle() & TAG_MASK == FILE_TAG {
            if let Some(Some(file)) = self.files.get_mut((f.handle() & !TAG_MASK) as usize) {
                return Ok(file);
            }
        }
        Err("not an open File".into())
    }

    pub fn write_file(&mut self, f: Value, data: &[u8]) -> Result<(), String> {
        match self.file(f)? {
            OpenFile::Write(w) => w.write_all(data).and_then(|_| w.flush()).map_err(|e| format!("write failed: {e}")),
            OpenFile::Read(_) => Err("File was opened for reading".into()),
        }
    }

    /// The next line without its terminator (`\n`, `\r` or `\r\n`), or None at end of file.
    pub fn read_line(&mut self, f: Value) -> Result<Option<Vec<u8>>, String> {
        let OpenFile::Read(r) = self.file(f)? else {
            return Err("File was opened for writing".into());
        };
        let mut line = Vec::new();
        loop {
            let buf = r.fill_buf().map_err(|e| format!("read failed: {e}"))?;
            if buf.is_empty() {
                return Ok(if line.is_empty() { None } else { Some(line) });
            }
            match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    let cr = buf[i] == b'\r';
                    line.extend_from_slice(&buf[..i]);
                    r.consume(i + 1);
                    if cr {
                        let next = r.fill_buf().map_err(|e| format!("read failed: {e}"))?;
                        if next.first() == Some(&b'\n') {
                            r.consume(1);
                        }
                    }
                    return Ok(Some(line));
                }
                None => {
                    let n = buf.len();
                    line.extend_from_slice(buf);
                    r.consume(n);
                }
            }
        }
    }

    /// The Semaphore index of a host object.
    pub fn semaphore_handle(&self, s: Value) -> Result<usize, Fault> {
        if s.is_ptr() && s.kind() == Kind::Host && s.handle() & TAG_MASK == SEMAPHORE_TAG {
            Ok((s.handle() & !TAG_MASK) as usize)
        } else {
            fail("not a Semaphore")
        }
    }

    /// Uniform in [0, 1) (xorshift64*; `Float random` needs no cryptographic quality).
    pub fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes the image (Java save order) to `path` through a temporary file, so a failed save leaves
/// any existing file untouched.
pub fn save_image(vm: &mut Vm, path: &Path) -> Result<(), Fault> {
    if !vm.save_target.allows(path) {
        return Err(Fault(format!(
            "refusing to overwrite the image the VM started from ({}); pass --save-image with that path to allow it",
            path.display()
        )));
    }
    let data = crate::image::save(&vm.roots);
    let tmp = path.with_extension("tracevm-tmp");
    std::fs::write(&tmp, &data)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Fault(format!("cannot save image to {}: {e}", path.display())))
}

/// Primitive 32: `obj` grows by one slot holding `x`, keeping its identity. Objects do not move,
/// so a larger copy takes over every reference to the old one (a heap walk; the primitive is rare).
pub fn grow_in_place(vm: &mut Vm, obj: Value, x: Value) -> Value {
    let n = obj.len();
    let new = vm.heap.alloc_pointers(obj.obj_class(), n + 1, x);
    for i in 0..n {
        new.set_slot(i, obj.slot(i));
    }
    new.set_flags(obj.flags());
    vm.rebind_method_data(obj, new);
    vm.heap.replace_references(obj, new);
    vm.replace_root_references(obj, new);
    vm.flush_caches();
    new
}

/// Headless GUI primitives: they build stand-in host objects and answer what the reference VM
/// answers, so GUI code runs without a display (and without blocking: nothing is ever clicked).
pub fn gui(vm: &mut Vm, p: u8, args: &[Value]) -> Result<Value, Fault> {
    let nil = vm.k.nil;
    let first = args.first().copied().unwrap_or(nil);
    let handle = |vm: &mut Vm| -> Result<Value, Fault> {
        let c = class_arg(args, 0, p)?;
        Ok(vm.heap.alloc_host(c, GUI_TAG))
    };
    match p {
        60 | 70..=76 | 85 | 90 => handle(vm),
        61 => Ok(args.get(1).copied().unwrap_or(nil)),
        62..=66 | 79 | 84 | 91 => Ok(first),
        80 | 81 => {
            let c = class_arg(args, 0, p)?;
            Ok(vm.heap.alloc_bytes(c, 0))
        }
        82 | 89 => Ok(args.get(1).copied().unwrap_or(nil)),
        83 => Ok(Value::from_int(0)),
        _ => Ok(nil),
    }
}
