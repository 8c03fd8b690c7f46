//! `heapscope export`

use heapscope_viewer::flame::Weight;
use std::path::PathBuf;

/// Export a trace for other tools: folded stacks (flamegraph.pl, inferno,
/// speedscope), a pprof profile (`go tool pprof`, the pprof web UI), or
/// DHAT JSON (Valgrind's `dh_view.html`).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope export app.trace --format folded -o app.folded && inferno-flamegraph app.folded > app.svg
  heapscope export app.trace --format pprof -o app.pb.gz && go tool pprof -top app.pb.gz
  heapscope export app.trace --format dhat -o dhat.json     # open with dh_view.html

pprof sample types: alloc_objects, alloc_space, inuse_objects, inuse_space (live at
exit, the default) and peak_space (live at the peak of live bytes).
DHAT: times are heap events; t-gmax is the peak of live bytes, t-end the end.

Exit status:
  0    written
  2    the trace cannot be read or the output cannot be written")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// folded, pprof or dhat.
    #[arg(long, value_parser = ["folded", "pprof", "dhat"])]
    format: String,
    /// For folded stacks: what the counts measure (allocated-bytes,
    /// allocations, leaked-bytes, peak-bytes).
    #[arg(long, default_value = "allocated-bytes", value_name = "WEIGHT")]
    weight: Weight,
    /// Keep whole stacks: by default the library frames above your code
    /// (the standard library, allocator internals, dependencies) are folded
    /// into your first frame, and stacks start at your entry point (`main`,
    /// an export) without the start-up frames below it (`_start`,
    /// `std::rt::lang_start`); stacks with no frame of yours are kept whole.
    /// DHAT always gets whole stacks (dh_view folds them itself).
    #[arg(long)]
    full_stacks: bool,
    /// Where to write (`-`: stdout); by default heapscope.folded,
    /// heapscope.pb.gz or heapscope.dhat.json by --format.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    module: super::ModuleFilter,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let needs_peak = self.format != "folded" || self.weight.needs_peak();
        let mut a = if needs_peak {
            super::analyze_with_peak(&self.trace)?
        } else {
            super::analyze(&self.trace)?
        };
        a.full_stacks = self.full_stacks;
        self.module.apply(&mut a, &self.trace)?;
        let output = self.output.clone().unwrap_or_else(|| {
            PathBuf::from(match self.format.as_str() {
                "folded" => "heapscope.folded",
                "pprof" => "heapscope.pb.gz",
                _ => "heapscope.dhat.json",
            })
        });
        super::run::check_outputs(&[("the trace", &self.trace)], &[("-o", &output)])?;
        let what = match self.format.as_str() {
            "folded" => "folded stacks",
            "pprof" => "pprof profile",
            _ => "DHAT profile",
        };
        super::write_output(&output, what, |w| match self.format.as_str() {
            "folded" => {
                for line in heapscope_viewer::flame::folded(&a, self.weight) {
                    writeln!(w, "{line}")?;
                }
                Ok(())
            }
            "pprof" => heapscope_viewer::export::pprof(&a, w),
            _ => {
                serde_json::to_writer(&mut *w, &heapscope_viewer::export::dhat(&a))?;
                writeln!(w)
            }
        })?;
        Ok(0)
    }
}
