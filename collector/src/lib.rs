//! # heapscope-collector: the recording stage
//!
//! Consumes a WebAssembly module (instrumenting it in memory when it is not
//! instrumented yet) and runs it under wasmtime with the hooks of
//! [`heapscope_trace::abi`] defined; produces a heap trace
//! ([`heapscope_trace::format`]) and a [`heapscope_trace::Summary`].
//!
//! It is also a test library: a Rust project can assert the heap behaviour
//! of its wasm in `cargo test`, as dhat-rs's testing mode or pytest-memray's
//! `limit_leaks` do for native code:
//!
//! ```no_run
//! use heapscope_collector::{run, LeakKind, RunConfig};
//! let mut config = RunConfig::new("target/wasm32-wasip1/release/app.wasm");
//! config.args = vec!["--small-input".into()];
//! let outcome = run(&config).unwrap();
//! assert_eq!(outcome.summary.exit_code, Some(0));
//! assert!(outcome.summary.max_bytes < 16 << 20, "peak heap under 16 MiB");
//! assert_eq!(outcome.leaks_of(LeakKind::Definite).count(), 0, "{:#?}", outcome.leaks);
//! ```
#![deny(missing_docs)]

pub mod actor;
mod assemblyscript;
pub mod cache;
mod calls;
mod component;
#[allow(dead_code)] // wired into the run path by issue 30's component run
mod component_hooks;
mod config;
pub mod deferred;
mod exit;
pub mod extism;
pub(crate) mod files;
mod heapgraph;
mod host;
#[cfg(test)]
mod js_abi;
pub mod leakscan;
mod module;
mod node_child;
mod progress;
pub mod recorder;
mod rescan;
mod run;
pub mod session;
mod sessions;
mod sitetypes;
pub mod snapshots;
mod sourcemap;
pub mod suppress;
pub mod symbolize;
// Named roots for issue 31's heap graph; the exit scan (part B) calls it.
#[allow(dead_code)]
mod variables;

pub use actor::ActorConfig;
pub use cache::Cache;
pub use config::{
    ExtismRun, Interrupt, InvalidFreeReport, Leak, RunConfig, RunError, RunOutcome, StackMode,
};
pub use exit::peak_rss_kib;
pub use heapscope_trace::format::{LeakKind, RunStatus};
pub use heapscope_trace::gates::{self, Gates};
pub use host::{engine, missing_hooks, NATIVE_STACK, WASM_STACK};
pub use module::memory_infos;
pub use run::run;
pub use snapshots::SnapshotPlan;
