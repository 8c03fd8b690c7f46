//! `heapscope report`

use std::path::PathBuf;

/// Write one self-contained HTML report: summary, heap timeline (zoomable),
/// advice, leak table (click for stacks), flamegraphs by weight, the peak
/// snapshot, allocation sizes and, for actor runs, growth per invocation.
/// No network access, no external files.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope report heapscope.trace -o report.html
  heapscope report actor.trace -o actor.html && xdg-open actor.html

Exit status:
  0    report written
  2    the trace cannot be read or the report cannot be written")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Where to write the HTML.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "heapscope-report.html"
    )]
    output: PathBuf,
    /// Print how long the report took and the process's peak memory (for
    /// the benchmarks).
    #[arg(long, hide = true)]
    stats: bool,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let started = std::time::Instant::now();
        let a = super::analyze_with_peak(&self.trace)?;
        let html = heapscope_viewer::html::report(&a).map_err(anyhow::Error::msg)?;
        super::write_output(&self.output, |w| w.write_all(html.as_bytes()))?;
        if self.output.as_os_str() != "-" {
            eprintln!(
                "heapscope: report written to `{}` ({} KiB)",
                self.output.display(),
                html.len().div_ceil(1024)
            );
        }
        if self.stats {
            eprintln!(
                "heapscope: report stats: {} ms, peak RSS {} KiB, {} bytes",
                started.elapsed().as_millis(),
                heapscope_collector::peak_rss_kib().unwrap_or(0),
                html.len()
            );
        }
        Ok(0)
    }
}
