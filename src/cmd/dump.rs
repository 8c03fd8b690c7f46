//! `heapscope dump`

use anyhow::Context;
use std::path::PathBuf;

/// Print every event of a trace, one per line, with stacks by name.
///
/// For debugging and for tests: allocations, frees, reallocations, growth
/// and the run and invocation markers, in order.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope dump heapscope.trace | less
  heapscope dump app.trace | grep '^grow'

Exit status:
  0    dumped (a trace cut short is dumped up to its last whole record, with a warning)
  2    the trace cannot be read")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let f = std::fs::File::open(&self.trace)
            .with_context(|| format!("cannot open trace `{}`", self.trace.display()))?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let warnings = heapscope_viewer::text::dump(std::io::BufReader::new(f), &mut out)
            .with_context(|| format!("cannot read trace `{}`", self.trace.display()))?;
        std::io::Write::flush(&mut out)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(0)
    }
}
