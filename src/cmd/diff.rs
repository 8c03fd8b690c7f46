//! `heapscope diff`

use heapscope_viewer::flame::Weight;
use std::path::PathBuf;

/// Compare two traces site by site: what grew, shrank, appeared or vanished,
/// as text and optionally as a differential flamegraph.
#[derive(clap::Args, Debug)]
#[command(mut_arg("code", |a| a.help("The exit code when --fail-on-increase fails (default 1); 0, 2, 3, 130 and 134 are taken")))]
#[command(after_help = "\
Examples:
  heapscope diff before.trace after.trace
  heapscope diff before.trace after.trace --weight allocated-bytes --svg diff.svg
  heapscope diff main.trace pr.trace --fail-on-increase 5     # CI: at most 5% more
  heapscope diff actor.trace#invocation:1000 actor.trace#invocation:4000   # two snapshots

TRACE#LABEL compares the bytes live by site at two snapshots of a run (labels:
invocation:N, guest:LABEL, trap, exit, start; see docs/snapshots.md), of one trace or two;
only --top, --json and --fail-on-increase apply.

Exit status:
  0    diff printed
  1    --fail-on-increase was given and the total grew by more than that
       (--gate-exit-code: another code)
  2    a trace cannot be read or the SVG cannot be written
  3    --fail-on-increase was given and a trace is not whole (cut short, damaged, no
       end-of-run record): the gate is not checked")]
pub struct Opts {
    /// The baseline trace (TRACE#LABEL: one of its snapshots).
    base: PathBuf,
    /// The trace to compare with it (TRACE#LABEL: one of its snapshots).
    new: PathBuf,
    /// What to compare: leaked-bytes (the leaks live at exit: definitely
    /// and indirectly lost, or the kinds --leak-kind asks for; never
    /// suppressed blocks), allocated-bytes, allocations or peak-bytes.
    #[arg(long, default_value = "leaked-bytes", value_name = "WEIGHT")]
    weight: Weight,
    /// For leaked-bytes: definite (definitely and indirectly lost, the
    /// default), possible (also possibly lost) or reachable (every block
    /// live at exit but the suppressed ones) — the kinds of
    /// `--fail-on-leak=KIND`.
    #[arg(long, value_name = "KIND", default_value = "definite", value_parser = super::run::parse_kind)]
    leak_kind: heapscope_trace::format::LeakKind,
    /// Show the N largest changes (0: all).
    #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// Also write a differential flamegraph (the new trace's shape, red
    /// where it grew, blue where it shrank).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Exit 1 when the total grew by more than PERCENT.
    #[arg(long, value_name = "PERCENT", value_parser = super::parse_percent)]
    fail_on_increase: Option<f64>,
    #[command(flatten)]
    gate_exit: super::GateExit,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let (base_at, new_at) = (snapshot_of(&self.base), snapshot_of(&self.new));
        if base_at.is_some() || new_at.is_some() {
            return self.snapshots(base_at, new_at);
        }
        if let Some(svg) = &self.svg {
            super::run::check_outputs(
                &[
                    ("the baseline trace", &self.base),
                    ("the new trace", &self.new),
                ],
                &[("--svg", svg)],
            )?;
        }
        let load = |p: &PathBuf| {
            if self.weight.needs_peak() {
                super::analyze_with_peak(p)
            } else {
                super::analyze(p)
            }
        };
        let (base, new) = (load(&self.base)?, load(&self.new)?);
        let d = heapscope_viewer::diff::diff_kinds(&base, &new, self.weight, self.leak_kind);
        if let Some(w) = heapscope_viewer::diff::modules_warning(&d) {
            eprintln!("heapscope: warning: {w}");
        }
        if self.json {
            super::print(&(serde_json::to_string_pretty(&d)? + "\n"))?;
        } else {
            super::print_styled(&heapscope_viewer::diff::text(&d, self.top))?;
        }
        if let Some(p) = &self.svg {
            super::write_output(p, "differential flamegraph", |w| {
                if self.weight == Weight::LeakedBytes {
                    // The leaks the text compares, of the kinds asked for.
                    heapscope_viewer::flame::differential_leaks(
                        &base,
                        &new,
                        self.leak_kind,
                        &d.title,
                        w,
                    )
                } else {
                    heapscope_viewer::flame::differential(&base, &new, self.weight, w)
                }
            })?;
        }
        self.verdict(&d, &base, &new)
    }

    /// `--fail-on-increase` on a diff.
    fn verdict(
        &self,
        d: &heapscope_viewer::diff::Diff,
        base: &heapscope_viewer::analysis::Analysis,
        new: &heapscope_viewer::analysis::Analysis,
    ) -> anyhow::Result<u8> {
        if let Some(limit) = self.fail_on_increase {
            // The one verdict (trace::gates): a trace that is not whole
            // decides nothing.
            let pct = d.change_percent();
            let verdict = heapscope_trace::gates::increase_verdict(
                [&base.summary, &new.summary],
                limit,
                pct,
                &format!(
                    "{} {} → {}",
                    d.title,
                    heapscope_trace::units::thousands(d.base_total),
                    heapscope_trace::units::thousands(d.new_total)
                ),
            );
            match verdict {
                heapscope_trace::gates::Verdict::Undecided(why) => {
                    eprintln!("heapscope: error: {why}");
                    return Ok(super::EXIT_UNDECIDED);
                }
                heapscope_trace::gates::Verdict::Fail(lines) => {
                    for line in lines {
                        eprintln!("heapscope: gate failed: {line}");
                    }
                    return Ok(self.gate_exit.code);
                }
                heapscope_trace::gates::Verdict::Pass => {}
            }
        }
        Ok(0)
    }

    /// Two snapshots compared (`TRACE#LABEL`; a plain path is its trace's
    /// `exit`).
    fn snapshots(
        &self,
        base_at: Option<(PathBuf, String)>,
        new_at: Option<(PathBuf, String)>,
    ) -> anyhow::Result<u8> {
        if self.svg.is_some() {
            anyhow::bail!(
                "--svg draws two traces' sites, not two snapshots': leave it out with TRACE#LABEL"
            );
        }
        if self.weight != Weight::LeakedBytes {
            anyhow::bail!(
                "--weight does not apply to snapshots: TRACE#LABEL compares the bytes live at each"
            );
        }
        let (bp, bl) = base_at.unwrap_or_else(|| (self.base.clone(), "exit".into()));
        let (np, nl) = new_at.unwrap_or_else(|| (self.new.clone(), "exit".into()));
        let base = super::analyze(&bp)?;
        let new = if super::run::same_file(&bp, &np) {
            None
        } else {
            Some(super::analyze(&np)?)
        };
        let new = new.as_ref().unwrap_or(&base);
        let d = heapscope_viewer::snapshots::diff(&base, &bl, new, &nl)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(w) = heapscope_viewer::diff::modules_warning(&d) {
            eprintln!("heapscope: warning: {w}");
        }
        if self.json {
            super::print(&(serde_json::to_string_pretty(&d)? + "\n"))?;
        } else {
            super::print_styled(&heapscope_viewer::diff::text(&d, self.top))?;
        }
        self.verdict(&d, &base, new)
    }
}

/// `TRACE#LABEL`: the trace and the label, when the path does not name a
/// file as it is and its part before the last `#` does.
fn snapshot_of(p: &std::path::Path) -> Option<(PathBuf, String)> {
    if p.exists() {
        return None;
    }
    let s = p.to_str()?;
    let (trace, label) = s.rsplit_once('#')?;
    (!label.is_empty() && !trace.is_empty()).then(|| (PathBuf::from(trace), label.to_string()))
}
