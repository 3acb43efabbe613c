//! Executable memory for compiled traces, and entering it.
//!
//! Owns the only `unsafe` of the backend. Code is written into an anonymous read-write mapping,
//! which is then turned read-execute: no page is ever writable and executable at once. It never
//! patches code in place: traces link to each other through data cells (`x64::ExitLink`).

use memmap2::{Mmap, MmapMut};

/// The calling convention of a compiled trace: it receives the frame buffer and answers the
/// number of the trace that left (high 32 bits) and of the snapshot it left by (low 32 bits).
type TraceFn = unsafe extern "sysv64" fn(*mut u64) -> u64;

/// One trace's machine code in read-execute memory.
pub struct CodeMemory {
    map: Mmap,
    len: usize,
}

impl CodeMemory {
    /// Reserves a writable region of at least `len` bytes (see `WritableCode::base`).
    pub fn reserve(len: usize) -> std::io::Result<WritableCode> {
        let map = MmapMut::map_anon(len.max(1))?;
        Ok(WritableCode { map })
    }

    /// The address of the first instruction.
    pub fn base(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    /// The code bytes (for disassembly).
    pub fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }

    /// Runs the code on `frame`.
    ///
    /// The caller (the backend) guarantees that the code was assembled from a verified trace
    /// whose frame buffer has at most `frame.len()` slots, that it follows the `TraceFn`
    /// convention, and that every object address the trace embeds or reads is live.
    pub(crate) fn enter(&self, frame: &mut [u64]) -> u64 {
        // SAFETY: the mapping holds complete machine code produced by our assembler for the
        // `TraceFn` convention (sysv64: frame pointer in rdi, trace and exit numbers in rax, callee-saved
        // registers restored); it is read-execute and lives as long as `self`. The code only
        // touches `frame[..slots]`, its own stack frame, and heap objects the trace's guards and
        // the recorder vouch for (see the caller's contract above).
        unsafe {
            let f: TraceFn = std::mem::transmute::<*const u8, TraceFn>(self.map.as_ptr());
            f(frame.as_mut_ptr())
        }
    }
}

/// A region being filled with code; becomes `CodeMemory` when sealed.
pub struct WritableCode {
    map: MmapMut,
}

impl WritableCode {
    /// Where the code will run (assemble for this address).
    pub fn base(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    /// Copies `code` in and turns the region read-execute.
    pub fn seal(mut self, code: &[u8]) -> std::io::Result<CodeMemory> {
        assert!(code.len() <= self.map.len(), "code larger than its region");
        self.map[..code.len()].copy_from_slice(code);
        let map = self.map.make_exec()?;
        Ok(CodeMemory { map, len: code.len() })
    }
}
