//! `heapscope leaks`

use std::path::PathBuf;

/// List the blocks live at exit, grouped by allocation stack, largest first.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope leaks heapscope.trace
  heapscope leaks app.trace --top 5
  heapscope leaks app.trace --json > leaks.json
  heapscope leaks app.trace --fail-on-leak    # exit 1 when blocks are definitely lost
  heapscope leaks app.trace --fail-on-leak=possible
  heapscope leaks app.trace --fail-on-invalid-free
  heapscope leaks actor.trace --between invocation:1000 exit   # born since, still live, by retainer

Exit status:
  0    report printed
  1    --fail-on-leak was given and blocks of that kind (or a worse one) are live at
       exit, or --fail-on-invalid-free and the run made invalid frees; the same rules as
       `heapscope run`'s (--gate-exit-code: another code)
  2    the trace cannot be read at all
  3    a gate was given and the trace is not whole (cut short, damaged, or without its
       end-of-run record) or has nothing to check (no heap event, no message): the gate
       is not checked (the same verdict as `heapscope run`'s)")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Show only the N largest stacks (0: all).
    #[arg(short = 'n', long, default_value_t = 0, value_name = "N")]
    top: usize,
    /// Show whole stacks: library frames above your code and runtime frames
    /// below `main` included.
    #[arg(long)]
    full_stacks: bool,
    /// Print JSON (summary, leak groups with every frame and, when the trace
    /// has a heap graph, their retainer paths; the lost cycles) instead of
    /// text.
    #[arg(long)]
    json: bool,
    /// Exit 1 when blocks live at exit are definitely lost (the default;
    /// with =possible, also possibly lost; with =reachable, any); suppressed
    /// blocks never count. The same rule as `heapscope run --fail-on-leak`.
    #[arg(long, value_name = "KIND", num_args = 0..=1, require_equals = true, default_missing_value = "definite", value_parser = super::run::parse_kind)]
    fail_on_leak: Option<heapscope_trace::format::LeakKind>,
    /// Exit 1 when the run made invalid frees. Frees of blocks heapscope
    /// did not see allocated never count. The same rule as `heapscope run
    /// --fail-on-invalid-free`.
    #[arg(long)]
    fail_on_invalid_free: bool,
    /// Show the blocks born after snapshot A and still live at snapshot B,
    /// grouped by what holds them (labels: invocation:N, guest:LABEL, trap,
    /// exit, or start for the run's beginning).
    ///
    /// Snapshots are taken by `run --snapshot-at`, `--snapshot-every` or the
    /// guest (docs/snapshots.md); every trace has `start` and `exit`.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["fail_on_leak", "fail_on_invalid_free", "full_stacks"])]
    between: Option<Vec<String>>,
    #[command(flatten)]
    module: super::ModuleFilter,
    #[command(flatten)]
    gate_exit: super::GateExit,
    #[command(flatten)]
    ci: super::CiOutput,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let ci = super::run::ci_outputs(&self.ci);
        let ci: Vec<_> = ci.iter().map(|(f, p)| (*f, p.as_path())).collect();
        super::run::check_outputs(&[("the trace", &self.trace)], &ci)?;
        let mut a = super::analyze(&self.trace)?;
        self.module.apply(&mut a, &self.trace)?;
        if let Some([from, to]) = self.between.as_deref() {
            let b = heapscope_viewer::snapshots::between(&a, from, to)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", self.trace.display()))?;
            if self.json {
                super::print(&(serde_json::to_string_pretty(&b)? + "\n"))?;
            } else {
                super::print_styled(&heapscope_viewer::snapshots::between_text(&b, self.top))?;
            }
            return Ok(0);
        }
        if self.json {
            let v = heapscope_viewer::retainers::leaks_json(&a)?;
            super::print(&(serde_json::to_string_pretty(&v)? + "\n"))?;
        } else {
            super::print_styled(&heapscope_viewer::text::leaks(
                &a,
                self.top,
                self.full_stacks,
            ))?;
        }
        let gates = heapscope_trace::gates::Gates {
            fail_on_leak: self.fail_on_leak,
            fail_on_invalid_free: self.fail_on_invalid_free,
            ..Default::default()
        };
        if gates == Default::default() {
            return Ok(0);
        }
        // The one verdict (trace::gates): a trace that is not whole (its
        // summary's `partial`), or one with nothing to check, decides nothing.
        let mut summary = a.summary.clone();
        summary.gates = gates.check(&summary);
        let facts = heapscope_trace::gates::RunFacts::default();
        let undecided = heapscope_trace::gates::record_undecided(&summary, &facts);
        if let Some(why) = &undecided {
            heapscope_trace::gates::mark_not_checked(&mut summary.gates, why);
        }
        self.ci.emit(&heapscope_viewer::ci::GateReport {
            suite: format!("heapscope leaks {}", self.trace.display()),
            gates: summary.gates.clone(),
            undecided,
            summary: heapscope_viewer::text::summary_lines(&a.module, &a.summary),
            details: summary
                .gates
                .iter()
                .map(|g| {
                    (
                        g.gate.clone(),
                        heapscope_viewer::text::gate_leaks(&a, &g.gate, 5),
                    )
                })
                .collect(),
        })?;
        let code = match heapscope_trace::gates::verdict(&summary, &facts) {
            heapscope_trace::gates::Verdict::Undecided(why) => {
                // Which gates a whole-record reason leaves unchecked.
                let names: Vec<String> = summary
                    .gates
                    .iter()
                    .filter(|g| !why.contains(&format!("--{} not checked", g.gate)))
                    .map(|g| format!("--{}", g.gate.split('=').next().unwrap_or_default()))
                    .collect();
                if names.is_empty() || why.starts_with("gates not checked") {
                    eprintln!("heapscope: error: {why}");
                } else {
                    eprintln!("heapscope: error: {} not checked: {why}", names.join(", "));
                }
                return Ok(super::EXIT_UNDECIDED);
            }
            heapscope_trace::gates::Verdict::Fail(lines) => {
                for line in lines {
                    eprintln!("heapscope: gate failed: {line}");
                }
                self.gate_exit.code
            }
            heapscope_trace::gates::Verdict::Pass => 0,
        };
        for line in heapscope_viewer::text::gate_notes(&summary.gates) {
            eprintln!("heapscope: {line}");
        }
        Ok(code)
    }
}
