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
    /// Keep whole stacks: by default the library frames above your code
    /// (the standard library, allocator internals, dependencies) are folded
    /// into your first frame, and flames start at your entry point (`main`,
    /// an export) without the start-up frames below it (`_start`,
    /// `std::rt::lang_start`); stacks with no frame of yours are kept whole.
    #[arg(long)]
    full_stacks: bool,
    /// Print how long the report took and the process's peak memory (for
    /// the benchmarks).
    #[arg(long, hide = true)]
    stats: bool,
    #[command(flatten)]
    module: super::ModuleFilter,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        super::run::check_outputs(&[("the trace", &self.trace)], &[("-o", &self.output)])?;
        let started = std::time::Instant::now();
        let mut a = super::analyze_with_peak(&self.trace)?;
        a.full_stacks = self.full_stacks;
        self.module.apply(&mut a, &self.trace)?;
        let html = heapscope_viewer::html::report(&a).map_err(anyhow::Error::msg)?;
        super::write_output(&self.output, "HTML report", |w| {
            w.write_all(html.as_bytes())
        })?;
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
