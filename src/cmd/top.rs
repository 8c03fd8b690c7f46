//! `heapscope top`

use anyhow::Context;
use heapscope_viewer::text::TopBy;
use std::path::PathBuf;

/// List the allocation sites with the most bytes, allocations, bytes at the
/// peak or bytes live at exit.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope top heapscope.trace
  heapscope top app.trace --by peak -n 10
  heapscope top app.trace --by count

Exit status:
  0    table printed
  2    the trace cannot be read")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Sort by `bytes` allocated, allocation `count`, bytes at the `peak`, or
    /// bytes live at exit (`leaked`).
    #[arg(long, default_value = "bytes", value_name = "ORDER")]
    by: TopBy,
    /// Show the N first sites (0: all).
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    top: usize,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let a = super::analyze_with_peak(&self.trace)?;
        super::print_styled(&heapscope_viewer::text::top(&a, self.by, self.top))
            .context("cannot print")?;
        Ok(0)
    }
}
