//! `heapscope leaks`

use anyhow::Context;
use std::path::PathBuf;

/// List the blocks live at exit, grouped by allocation stack, largest first.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope leaks heapscope.trace
  heapscope leaks app.trace --top 5
  heapscope leaks app.trace --json > leaks.json
  heapscope leaks app.trace --fail-on-leak    # exit 1 when anything is live at exit

Exit status:
  0    report printed
  1    --fail-on-leak was given and blocks are live at exit
  2    the trace cannot be read")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Show only the N largest stacks (0: all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    top: usize,
    /// Show whole stacks: library frames above your code and runtime frames
    /// below `main` included.
    #[arg(long)]
    full_stacks: bool,
    /// Print JSON (summary, leak groups with every frame) instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when any block is live at exit.
    #[arg(long)]
    fail_on_leak: bool,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let a = heapscope_viewer::analyze(&self.trace).context("cannot report leaks")?;
        if self.json {
            super::print(&(serde_json::to_string_pretty(&a)? + "\n"))?;
        } else {
            super::print(&heapscope_viewer::text::leaks(
                &a,
                self.top,
                self.full_stacks,
            ))?;
        }
        Ok(if self.fail_on_leak && a.summary.curr_blocks > 0 {
            1
        } else {
            0
        })
    }
}
