//! Helpers shared by the integration tests that run the VM in this process (rather than the
//! binary as a child, see `common`): the base image, read once, and a `Write` that captures what
//! the VM prints.
//!
//! Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// The bytes of the base SmallWorld 2015 image at `../shared/images/`.
pub fn image() -> &'static [u8] {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/SmallWorld-2015.image"))
            .expect("base image")
    })
}

/// A `Write` into a shared buffer, so the test can read what the VM printed.
#[derive(Clone, Default)]
pub struct Capture(pub Rc<RefCell<Vec<u8>>>);

impl Capture {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `.st` seeds of a cargo-fuzz corpus directory, as (file name, bytes), sorted by name.
pub fn seed_files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("seed corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "st"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).expect("seed")))
        .collect();
    out.sort();
    out
}
