//! `heapscope summary`

use std::path::PathBuf;

/// Summarise a trace: totals, peak, live at exit, linear memory, growth per
/// invocation for actors, and advice.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope summary heapscope.trace
  heapscope summary app.trace --json

Exit status:
  0    summary printed
  2    the trace cannot be read")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Print the summary JSON (docs/summary.schema.json): the fields of `run
    /// --summary-json` replayed from the trace, without `host` and `gates`
    /// (the run's, not the trace's).
    #[arg(long)]
    json: bool,
    /// Show a trap's whole stack: the panic machinery and library frames
    /// above the program's first frame and the runtime's below `main`,
    /// folded by default.
    #[arg(long)]
    full_stacks: bool,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let mut a = super::analyze(&self.trace)?;
        a.full_stacks = self.full_stacks;
        if self.json {
            super::print(&(serde_json::to_string_pretty(&a.summary)? + "\n"))?;
        } else {
            super::print_styled(&heapscope_viewer::text::summary(&a))?;
        }
        Ok(0)
    }
}
