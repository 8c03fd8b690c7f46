//! # heapscope-trace: the contract between heapscope's stages
//!
//! Every other crate depends on this one and on nothing upstream of it:
//!
//! * [`abi`] — the hook ABI: what the instrumenter (`heapscope-instrument`)
//!   adds to a module and what the collector (`heapscope-collector`) must
//!   provide: import names and signatures, the shadow call stack, the site
//!   table custom section.
//! * [`component_abi`] — the hook ABI of a core module inside a WASI 0.2
//!   component: hooks through a WIT interface, memories from a provider.
//! * [`format`] — the trace file: a versioned header followed by
//!   length-prefixed records. [`format::TraceWriter`] writes one,
//!   [`format::TraceReader`] streams it back, tolerating a file cut short.
//! * [`model`] — the heap model both the collector (live, while recording)
//!   and the viewer (replaying a trace) use to turn events into statistics,
//!   so the two always agree on what an event counts as.
//! * [`leaks`] — blocks live at exit grouped by stack, kind and
//!   suppression, in the one order every report shows.
//! * [`graph`] — the heap graph at exit and at snapshots: who holds each
//!   live block (retainer paths, dominators, lost cycles).
//! * [`gates`] — the CI gates (`--fail-on-leak`, `--max-peak`, ...), one
//!   definition for `run` and `leaks`.
//! * [`growth`] — live heap growth per invocation for actors: a streaming
//!   least-squares fit and the stacks the growth comes from.
//! * [`session`] — the session format the JavaScript collector writes
//!   (tags and codec), which the collector replays into a trace.
//! * [`varint`] — the LEB128 and zigzag encodings used by both binary formats.
#![deny(missing_docs)]

pub mod abi;
pub mod component_abi;
pub mod format;
pub mod gates;
pub mod graph;
pub mod growth;
pub mod leaks;
mod live;
pub mod model;
pub mod session;
pub mod text;
pub mod units;
pub mod varint;
pub mod verify;

pub use format::{Record, StackId, TraceError, TraceReader, TraceWriter};
pub use model::{HeapModel, Summary};
