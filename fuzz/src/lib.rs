//! heapscope's fuzz drivers, on stable Rust, each a function of a seed so
//! that any case can be replayed:
//!
//! - [`module_case`]: a wasm-smith module (every feature the reference
//!   wasmtime runs) given a synthetic bump allocator that its functions
//!   call, instrumented, then run beside the original on the same engine:
//!   the instrumented module must validate and instantiate, every export
//!   must return the same values or trap the same way, and every memory
//!   and global of the original must hold the same values afterwards.
//! - [`trace_case`]: a valid trace, mutated (flipped bytes, cuts, spliced
//!   and inserted bytes), through the reader and every view: no panic, and
//!   a trace the reader does not call whole is said to be partial.
//! - [`events_case`]: an event buffer of records with forged fields, stack
//!   lengths and garbage, through the collector's decoder and recorder: no
//!   panic, and what is not a whole record is counted as invalid.
//!
//! `heapscope-fuzz` runs many seeds; `fuzz/tests/fuzz.rs` runs a fixed set
//! in the test suite.

use anyhow::{Context, Result};
use heapscope_trace::abi;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod modules;
mod traces;

pub use modules::{generate, module_case, ModuleVerdict};
pub use traces::{base_trace, events_case, mutate, trace_case, TraceVerdict};

/// A deterministic byte stream from a seed (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// Run `f`, turning a panic into an error that names `what`.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        anyhow::anyhow!("{what} panicked: {msg}")
    })
}

/// The hook signatures of the ABI as wasmtime function types.
pub(crate) fn hook_type(engine: &wasmtime::Engine, name: &str) -> Result<wasmtime::FuncType> {
    let params = abi::hook_params(name)
        .context("a hook of the ABI")?
        .iter()
        .map(|p| match p {
            abi::HookParam::I32 => wasmtime::ValType::I32,
            abi::HookParam::I64 => wasmtime::ValType::I64,
        })
        .collect::<Vec<_>>();
    Ok(wasmtime::FuncType::new(engine, params, []))
}
