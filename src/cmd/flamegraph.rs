//! `heapscope flamegraph`

use heapscope_viewer::flame::Weight;
use std::path::PathBuf;

/// Draw a flamegraph (SVG, through inferno) of the trace's allocation stacks,
/// weighted by bytes allocated, allocations, bytes live at exit or bytes
/// live at the peak.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope flamegraph heapscope.trace -o alloc.svg
  heapscope flamegraph app.trace --weight leaked-bytes -o leaks.svg
  heapscope flamegraph app.trace --weight peak-bytes -o peak.svg

Exit status:
  0    SVG written
  2    the trace cannot be read or the output cannot be written")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// What widths measure: allocated-bytes, allocations, leaked-bytes (live
    /// at exit) or peak-bytes (live at the peak).
    #[arg(long, default_value = "allocated-bytes", value_name = "WEIGHT")]
    weight: Weight,
    /// Keep whole stacks: by default the library frames above your code
    /// (the standard library, allocator internals, dependencies) are folded
    /// into your first frame, and flames start at your entry point (`main`,
    /// an export) without the start-up frames below it (`_start`,
    /// `std::rt::lang_start`); stacks with no frame of yours are kept whole.
    #[arg(long)]
    full_stacks: bool,
    /// Where to write the SVG (`-`: stdout).
    #[arg(short, long, value_name = "FILE", default_value = "flamegraph.svg")]
    output: PathBuf,
    #[command(flatten)]
    module: super::ModuleFilter,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        super::run::check_outputs(&[("the trace", &self.trace)], &[("-o", &self.output)])?;
        let mut a = if self.weight.needs_peak() {
            super::analyze_with_peak(&self.trace)?
        } else {
            super::analyze(&self.trace)?
        };
        a.full_stacks = self.full_stacks;
        self.module.apply(&mut a, &self.trace)?;
        super::write_output(&self.output, "flamegraph", |w| {
            heapscope_viewer::flame::flamegraph(&a, self.weight, w)
        })?;
        Ok(0)
    }
}
