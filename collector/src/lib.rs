//! # heapscope-collector: the recording stage
//!
//! Consumes a WebAssembly module (instrumenting it in memory when it is not
//! instrumented yet) and runs it under wasmtime with the hooks of
//! [`heapscope_trace::abi`] defined; produces a heap trace
//! ([`heapscope_trace::format`]) and a [`heapscope_trace::Summary`].
//!
//! ```no_run
//! use heapscope_collector::{run, RunConfig};
//! let outcome = run(&RunConfig::new("app.wasm")).unwrap();
//! assert_eq!(outcome.summary.curr_blocks, 0, "app.wasm leaks");
//! ```
#![deny(missing_docs)]

pub mod gates;
pub mod leakscan;
pub mod recorder;
mod run;
pub mod suppress;

pub use gates::Gates;
pub use run::{define_hooks, memory_infos, run, RunConfig, RunError, RunOutcome};
