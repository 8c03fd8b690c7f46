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
mod deferred;
pub mod extism;
pub mod gates;
pub mod leakscan;
pub mod recorder;
mod run;
pub mod suppress;

pub use actor::ActorConfig;
pub use gates::Gates;
pub use heapscope_trace::format::{LeakKind, RunStatus};
pub use run::{
    define_hooks, memory_infos, peak_rss_kib, run, ExtismRun, Interrupt, Leak, RunConfig, RunError,
    RunOutcome, StackMode,
};
