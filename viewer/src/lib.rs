//! # heapscope-viewer: the reporting stage
//!
//! Consumes heap traces ([`heapscope_trace::format`]); produces analyses —
//! the run summary and the blocks live at exit grouped by stack — and
//! renders them as text for terminals and CI logs, or JSON for tools.
//! Analyses stream the trace: memory grows with live blocks and distinct
//! stacks, not with the trace's length.
#![deny(missing_docs)]

pub mod advice;
pub mod analysis;
pub mod ci;
pub mod diff;
pub mod escape;
pub mod export;
pub mod facts;
pub mod flame;
pub mod html;
pub mod profile;
pub mod retainers;
pub mod snapshots;
pub mod text;
pub mod timeline;
pub mod trap;

pub use analysis::{analyze, Analysis, LeakGroup, ViewerError};
