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
  heapscope top app.trace --weight peak-bytes --top 10
  heapscope top app.trace --weight allocations --depth 3
  heapscope top app.trace --weight retained-bytes
  heapscope top app.trace --json --top 0

Exit status:
  0    table printed
  2    the trace cannot be read")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Sort by allocated-bytes, allocations, peak-bytes (live at the peak),
    /// leaked-bytes (live at exit), the names `flamegraph --weight` uses
    /// (`--by bytes|count|peak|leaked` is still understood), or
    /// retained-bytes (what the site's blocks live at exit hold: they and
    /// every block only they lead to, from the trace's heap graph).
    #[arg(
        long,
        visible_alias = "by",
        default_value = "allocated-bytes",
        value_name = "WEIGHT"
    )]
    weight: TopBy,
    /// Show the N first sites (0: all).
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    top: usize,
    /// Frames per site: N from the first frame of yours outward (0: as many
    /// as it takes to tell the rows apart).
    #[arg(long, default_value_t = 0, value_name = "N")]
    depth: usize,
    /// Print the rows as JSON: each site's numbers (allocated_bytes,
    /// allocations, peak_bytes, leaked_bytes, leaked_blocks), the label the
    /// table prints and its whole stack (frames: function, file, line); and
    /// the run's totals.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    module: super::ModuleFilter,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let mut a = super::analyze_with_peak(&self.trace)?;
        self.module.apply(&mut a, &self.trace)?;
        if !heapscope_viewer::retainers::fill_retained(&mut a) && self.weight == TopBy::Retained {
            anyhow::bail!(
                "`{}` has no heap graph, which --weight retained-bytes needs: the leak scan at exit writes it (a trace written by an older heapscope, or a run whose scan did not finish, has none)",
                self.trace.display()
            );
        }
        if self.json {
            let v = heapscope_viewer::text::top_json(&a, self.weight, self.top, self.depth);
            let text = serde_json::to_string_pretty(&v).context("cannot render JSON")?;
            return super::print(&format!("{text}\n")).map(|()| 0);
        }
        super::print_styled(&heapscope_viewer::text::top(
            &a,
            self.weight,
            self.top,
            self.depth,
        ))
        .context("cannot print")?;
        Ok(0)
    }
}
