//! CI gates: limits a run must stay within, checked against a
//! [`Summary`]. One definition for every command that gates: `run` checks
//! them as the run ends, `leaks` against a trace's replayed summary.
//!
//! `--fail-on-leak[=KIND]` fails when blocks of KIND or a worse one are
//! live at exit (definite and indirect < possible < reachable; `definite` by default).
//! Suppressed blocks never count. Blocks the run could not classify (its
//! leak scan did not run) count as definitely lost: a gate does not pass on
//! what it could not check.
//!
//! `--fail-on-invalid-free` fails when the run made invalid frees (the
//! summary's `invalid_frees`). The frees of blocks heapscope did not see
//! allocated (`frees_of_unseen_blocks`) and the possibly invalid frees of
//! such a run are not the program's bug and never fail it: the gate's note
//! says how many it left out.

use crate::format::LeakKind;
use crate::growth::MIN_FITTED;
use crate::model::{Gate, Summary};
use crate::units::thousands;

/// The gates to check. A `None` gate is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// Fail when blocks of this kind, or a worse one, are live at the end
    /// (definite < possible < reachable), suppressed blocks left out.
    pub fail_on_leak: Option<LeakKind>,
    /// Fail when live bytes peak above this.
    pub max_peak: Option<u64>,
    /// Fail when more bytes than this are definitely, indirectly or possibly lost.
    pub max_leaked: Option<u64>,
    /// Fail when more blocks than this are allocated in all.
    pub max_allocs: Option<u64>,
    /// Fail when live heap grows by more than this many bytes per
    /// invocation after the warm-up (rounded to whole bytes). Not checked
    /// (the run is undecided) when fewer than [`MIN_FITTED`] invocations
    /// were fitted.
    pub max_growth: Option<u64>,
    /// Fail when the run made invalid frees; frees of blocks heapscope did
    /// not see allocated never count.
    pub fail_on_invalid_free: bool,
}

impl Gates {
    /// Check the gates against a summary.
    pub fn check(&self, s: &Summary) -> Vec<Gate> {
        let kinds = s.leak_kinds.clone().unwrap_or_default();
        let mut out = Vec::new();
        let gate = |name: String, limit: u64, actual: u64, measured: String| Gate {
            gate: name,
            limit,
            actual,
            passed: actual <= limit,
            note: None,
            measured,
            not_checked: None,
        };
        if let Some(k) = self.fail_on_leak {
            let classified = [
                &kinds.definite,
                &kinds.indirect,
                &kinds.possible,
                &kinds.reachable,
                &kinds.suppressed,
            ];
            let unclassified_blocks = s
                .curr_blocks
                .saturating_sub(classified.iter().map(|a| a.blocks).sum());
            let unclassified_bytes = s
                .curr_bytes
                .saturating_sub(classified.iter().map(|a| a.bytes).sum());
            // Indirectly lost blocks are lost too: they count with the
            // definitely lost ones that hold them; blocks the run could not
            // classify count as definitely lost.
            let mut counted = vec![&kinds.definite, &kinds.indirect];
            if k >= LeakKind::Possible {
                counted.push(&kinds.possible);
            }
            if k >= LeakKind::Reachable {
                counted.push(&kinds.reachable);
            }
            let blocks = unclassified_blocks + counted.iter().map(|a| a.blocks).sum::<u64>();
            let bytes = unclassified_bytes + counted.iter().map(|a| a.bytes).sum::<u64>();
            let name = match k {
                LeakKind::Definite | LeakKind::Indirect => "definite",
                LeakKind::Possible => "possible",
                LeakKind::Reachable => "reachable",
            };
            // Indirectly lost blocks are named when there are some.
            let words = match (k, kinds.indirect.blocks > 0) {
                (LeakKind::Definite | LeakKind::Indirect, true) => "definitely or indirectly lost",
                (LeakKind::Possible, true) => "definitely, indirectly or possibly lost",
                _ => leak_words(k),
            };
            out.push(gate(
                format!("fail-on-leak={name}"),
                0,
                blocks,
                format!(
                    "{} ({}) {words}",
                    plural(blocks, "block", "blocks"),
                    plural(bytes, "byte", "bytes")
                ),
            ));
            if unclassified_blocks > 0 {
                if let Some(g) = out.last_mut() {
                    g.note = Some(format!(
                        "{} the leak scan did not classify counted as definitely lost",
                        plural(unclassified_blocks, "block", "blocks")
                    ));
                }
            }
        }
        if let Some(l) = self.max_peak {
            out.push(gate(
                "max-peak".into(),
                l,
                s.max_bytes,
                format!("{} live at the peak", plural(s.max_bytes, "byte", "bytes")),
            ));
        }
        if let Some(l) = self.max_leaked {
            let lost = kinds.definite.bytes + kinds.indirect.bytes + kinds.possible.bytes;
            out.push(gate(
                "max-leaked".into(),
                l,
                lost,
                format!(
                    "{} definitely, indirectly or possibly lost",
                    plural(lost, "byte", "bytes")
                ),
            ));
        }
        if let Some(l) = self.max_allocs {
            out.push(gate(
                "max-allocs".into(),
                l,
                s.total_blocks,
                format!("{} allocated", plural(s.total_blocks, "block", "blocks")),
            ));
        }
        if let Some(l) = self.max_growth {
            let slope = s
                .growth
                .as_ref()
                .map_or(0, |g| g.bytes_per_invocation.round().max(0.0) as u64);
            out.push(gate(
                "max-growth".into(),
                l,
                slope,
                format!(
                    "live heap grows by {} per invocation",
                    plural(slope, "byte", "bytes")
                ),
            ));
            let too_few = match &s.growth {
                Some(g) => g.too_few_invocations(),
                None => Some(format!(
                    "too few invocations to fit growth: none after the warm-up (at least {MIN_FITTED} are needed)"
                )),
            };
            if let (Some(why), Some(g)) = (too_few, out.last_mut()) {
                g.passed = false;
                g.not_checked = Some(why);
            }
        }
        if self.fail_on_invalid_free {
            out.push(Gate {
                gate: "fail-on-invalid-free".into(),
                limit: 0,
                actual: s.invalid_frees,
                passed: s.invalid_frees == 0,
                note: (s.frees_of_unseen_blocks > 0).then(|| {
                    format!(
                        "not counted: {} of blocks heapscope did not see allocated{}",
                        plural(s.frees_of_unseen_blocks, "free", "frees"),
                        match s.possible_invalid_frees {
                            0 => String::new(),
                            n => format!(
                                ", {} (double or inside a live block) in a run that missed allocations",
                                plural(n, "possibly invalid free", "possibly invalid frees")
                            ),
                        }
                    )
                }),
                measured: plural(s.invalid_frees, "invalid free", "invalid frees"),
                not_checked: None,
            });
        }
        out
    }
}

/// Whether blocks of `kind` (`None`: not classified, the leak scan did not
/// run: counted as definitely lost) count as leaks of the kinds `asked`
/// (`--fail-on-leak=KIND`, `diff --leak-kind KIND`): definitely and
/// indirectly lost for `definite`, and possibly lost for `possible`,
/// anything for `reachable`. Suppressed blocks never count.
pub fn leak_counted(asked: LeakKind, kind: Option<LeakKind>, suppressed: bool) -> bool {
    !suppressed && kind.is_none_or(|k| k <= asked.max(LeakKind::Indirect))
}

/// Whether the gate named `gate` (`fail-on-leak=possible`, `max-leaked`)
/// counts blocks of `kind` ([`leak_counted`]), so that what explains its
/// failure lists only those.
pub fn counts_blocks(gate: &str, kind: Option<LeakKind>, suppressed: bool) -> bool {
    let asked = match gate {
        "fail-on-leak=definite" => LeakKind::Definite,
        "fail-on-leak=possible" | "max-leaked" => LeakKind::Possible,
        "fail-on-leak=reachable" => LeakKind::Reachable,
        _ => return false,
    };
    leak_counted(asked, kind, suppressed)
}

/// The kinds of leak `asked` counts, in words: `definitely lost` (with
/// the indirectly lost blocks they hold), `definitely or possibly lost`,
/// `live at exit, not suppressed`.
pub fn leak_words(asked: LeakKind) -> &'static str {
    match asked {
        LeakKind::Definite | LeakKind::Indirect => "definitely lost",
        LeakKind::Possible => "definitely or possibly lost",
        LeakKind::Reachable => "live at exit, not suppressed",
    }
}

/// The units a gate's limit is in: bytes for the byte gates, none for
/// the counts (whose measured value names its unit).
fn limit_text(g: &Gate) -> String {
    match g.gate.as_str() {
        "max-peak" | "max-leaked" | "max-growth" => plural(g.limit, "byte", "bytes"),
        _ => thousands(g.limit),
    }
}

/// A gate's outcome in words, as a failed test reads: `--fail-on-leak=definite:
/// 3 blocks (6,666 bytes) definitely lost > 0`, `--max-peak: 6,666 bytes
/// live at the peak <= 1,000,000 bytes`, with what it did not count after it
/// (`(not counted: 3 frees of ...)`); or why it was not checked
/// (`--max-growth not checked: too few invocations ...`). The same words on
/// the terminal, in JUnit and in the step summary.
pub fn message(g: &Gate) -> String {
    if let Some(why) = &g.not_checked {
        return format!("--{} not checked: {why}", g.gate);
    }
    let measured = if g.measured.is_empty() {
        thousands(g.actual)
    } else {
        g.measured.clone()
    };
    let op = if g.actual > g.limit { ">" } else { "<=" };
    let line = format!("--{}: {measured} {op} {}", g.gate, limit_text(g));
    match &g.note {
        // A gate from an older summary that measured nothing: its note says why.
        Some(note) if !g.passed && g.actual <= g.limit => format!("--{}: {note}", g.gate),
        Some(note) => format!("{line} ({note})"),
        None => line,
    }
}

/// What a gating command knows of its record beyond the summary: `run`
/// fills it; `leaks` and `diff` read everything from the trace's summary
/// (its `partial` holds the trace's damage) and leave it default.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// The trace could not be written, or does not read back whole: why.
    pub trace_problem: Option<String>,
    /// The run ended in the module's start function, while it was being
    /// instantiated: there was no instance to scan.
    pub ended_in_start: bool,
    /// The instrumenter found no allocator: only memory growth was recorded.
    pub no_allocator: bool,
    /// An actor run was given no message (an empty messages file).
    pub no_messages: bool,
}

/// The one verdict of a gating command: what `run`, `leaks` and `diff`
/// print and exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every gate passed (or none was asked for, on a whole record).
    Pass,
    /// These gates failed, one line each ([`message`]): exit 1 or
    /// `--gate-exit-code`.
    Fail(Vec<String>),
    /// Nothing can be said, and why: exit 3, no gate passes.
    Undecided(String),
}

/// Why nothing can be decided of the whole record, when nothing can: a
/// trace problem or a partial summary, whatever the gates; or, when gates
/// were asked for, nothing to check (a run that ended in its start
/// function, no message, no allocator found, no heap event at all).
pub fn record_undecided(s: &Summary, r: &RunFacts) -> Option<String> {
    if let Some(why) = &r.trace_problem {
        return Some(why.clone());
    }
    if !s.partial.is_empty() {
        return Some(format!("the record is not whole: {}", s.partial.join("; ")));
    }
    if s.gates.is_empty() {
        return None;
    }
    let nothing = if r.ended_in_start {
        format!(
            "the run ended ({}) in the module's start function, while it was being instantiated; the {} allocations it made are recorded, but there was no instance to scan for leaks",
            s.status.name(),
            s.total_blocks
        )
    } else if r.no_messages || s.invocations == Some(0) {
        "no message was processed (the messages file is empty)".to_string()
    } else if r.no_allocator {
        // Growth alone says nothing of leaks.
        "no allocator was found, so only memory growth was recorded; if the module allocates through a function of its own, name it with --alloc-fn".to_string()
    } else if s.events == 0 && s.status == crate::format::RunStatus::Exited {
        // A gate that saw nothing proves nothing: an allocator heapscope
        // did not find looks exactly like a clean run.
        "the run recorded no heap event (no allocation, no memory growth); if the module has its own allocator, name it with --alloc-fn".to_string()
    } else {
        return None;
    };
    Some(format!("gates not checked: {nothing}"))
}

/// The verdict on `s.gates` (checked with [`Gates::check`]): undecided
/// when [`record_undecided`] says so; else failed when a gate failed;
/// else undecided when a gate could not be checked (too few invocations
/// for `--max-growth`); else passed.
pub fn verdict(s: &Summary, r: &RunFacts) -> Verdict {
    if let Some(why) = record_undecided(s, r) {
        return Verdict::Undecided(why);
    }
    let failed: Vec<String> = s
        .gates
        .iter()
        .filter(|g| !g.passed && g.not_checked.is_none())
        .map(message)
        .collect();
    if !failed.is_empty() {
        return Verdict::Fail(failed);
    }
    match s.gates.iter().find(|g| g.not_checked.is_some()) {
        Some(g) => Verdict::Undecided(message(g)),
        None => Verdict::Pass,
    }
}

/// The verdict of `diff --fail-on-increase PERCENT`: undecided when a
/// trace is not whole (its summary's `partial`), failed when the total
/// grew by more than `limit` percent (`change`: infinite when it grew from
/// nothing); `what` names the totals: `bytes definitely lost 0 → 1,024`.
pub fn increase_verdict(summaries: [&Summary; 2], limit: f64, change: f64, what: &str) -> Verdict {
    for (s, which) in summaries.iter().zip(["baseline", "new"]) {
        if !s.partial.is_empty() {
            return Verdict::Undecided(format!(
                "--fail-on-increase not checked: the {which} trace is not whole: {}",
                s.partial.join("; ")
            ));
        }
    }
    if change > limit {
        let grew = if change.is_infinite() {
            "from nothing".to_string()
        } else {
            format!("by {change:.1}%")
        };
        Verdict::Fail(vec![format!(
            "--fail-on-increase={limit}%: {what}, grew {grew} > {limit}%"
        )])
    } else {
        Verdict::Pass
    }
}

/// Mark every gate not checked, for `why`, when nothing can be decided of
/// the whole record ([`record_undecided`]): what the summary JSON then says
/// of each gate.
pub fn mark_not_checked(gates: &mut [Gate], why: &str) {
    for g in gates {
        g.passed = false;
        if g.not_checked.is_none() {
            g.not_checked = Some(why.to_string());
        }
    }
}

/// The lines a run whose gates passed prints about what they did not
/// count, one per gate with such a note:
/// `--fail-on-invalid-free: 0 invalid frees <= 0 (not counted: 3 frees of ...)`.
pub fn notes(gates: &[Gate]) -> Vec<String> {
    gates
        .iter()
        .filter(|g| g.passed && g.note.is_some())
        .map(message)
        .collect()
}

/// `n` with its noun, as the summary's text words it: `1 free`, `2 frees`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RunStatus;
    use crate::model::{Amount, HeapModel, LeakTotals};

    /// Blocks live at exit that the run could not classify (no leak scan)
    /// count as definitely lost: the gate does not pass on what it could
    /// not check. Suppressed ones never count.
    #[test]
    fn unclassified_blocks_fail_the_leak_gate_and_suppressed_ones_never_do() {
        let gate = Gates {
            fail_on_leak: Some(LeakKind::Definite),
            ..Default::default()
        };
        let mut s = HeapModel::new().summary(RunStatus::Exited, Some(0), "");
        s.curr_blocks = 4;
        assert_eq!(gate.check(&s)[0].actual, 4, "no classification at all");
        s.leak_kinds = Some(LeakTotals {
            suppressed: Amount {
                blocks: 3,
                bytes: 30,
            },
            ..Default::default()
        });
        assert_eq!(gate.check(&s)[0].actual, 1, "one block not classified");
        s.curr_blocks = 3;
        assert!(gate.check(&s)[0].passed, "all suppressed");
    }

    /// Frees of blocks heapscope did not see allocated, and the possible
    /// double frees of such a run, never fail `--fail-on-invalid-free`: the
    /// gate's note says how many it left out.
    #[test]
    fn frees_of_unseen_blocks_never_fail_the_invalid_free_gate() {
        let gate = Gates {
            fail_on_invalid_free: true,
            ..Default::default()
        };
        let mut s = HeapModel::new().summary(RunStatus::Exited, Some(0), "");
        s.frees_of_unseen_blocks = 3;
        s.possible_invalid_frees = 1;
        let g = &gate.check(&s)[0];
        assert_eq!((g.passed, g.actual), (true, 0));
        assert_eq!(
            g.note.as_deref(),
            Some("not counted: 3 frees of blocks heapscope did not see allocated, 1 possibly invalid free (double or inside a live block) in a run that missed allocations")
        );
        s.invalid_frees = 2;
        assert!(!gate.check(&s)[0].passed);
    }

    #[test]
    fn kinds_widen_and_limits_compare() {
        let mut s = HeapModel::new().summary(RunStatus::Exited, Some(0), "");
        s.max_bytes = 1000;
        s.total_blocks = 7;
        s.leak_kinds = Some(LeakTotals {
            definite: Amount {
                blocks: 0,
                bytes: 0,
            },
            possible: Amount {
                blocks: 1,
                bytes: 30,
            },
            reachable: Amount {
                blocks: 2,
                bytes: 50,
            },
            ..Default::default()
        });
        let g = |gates: Gates| {
            gates
                .check(&s)
                .into_iter()
                .map(|g| (g.gate, g.actual, g.passed))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            g(Gates {
                fail_on_leak: Some(LeakKind::Definite),
                ..Default::default()
            }),
            [("fail-on-leak=definite".into(), 0, true)]
        );
        assert_eq!(
            g(Gates {
                fail_on_leak: Some(LeakKind::Possible),
                ..Default::default()
            }),
            [("fail-on-leak=possible".into(), 1, false)]
        );
        assert_eq!(
            g(Gates {
                fail_on_leak: Some(LeakKind::Reachable),
                ..Default::default()
            }),
            [("fail-on-leak=reachable".into(), 3, false)]
        );
        assert_eq!(
            g(Gates {
                max_peak: Some(1000),
                max_leaked: Some(29),
                max_allocs: Some(6),
                ..Default::default()
            }),
            [
                ("max-peak".into(), 1000, true),
                ("max-leaked".into(), 30, false),
                ("max-allocs".into(), 7, false)
            ]
        );
    }

    /// Every gate line names its unit and kind, as a failed test reads.
    #[test]
    fn gate_lines_say_what_they_count() {
        let mut s = HeapModel::new().summary(RunStatus::Exited, Some(0), "");
        s.events = 30;
        s.max_bytes = 6666;
        s.total_blocks = 15;
        s.curr_blocks = 4;
        s.curr_bytes = 6684;
        s.leak_kinds = Some(LeakTotals {
            definite: Amount {
                blocks: 3,
                bytes: 6666,
            },
            reachable: Amount {
                blocks: 1,
                bytes: 18,
            },
            ..Default::default()
        });
        s.gates = Gates {
            fail_on_leak: Some(LeakKind::Definite),
            max_peak: Some(1 << 20),
            max_leaked: Some(1000),
            max_allocs: Some(10),
            fail_on_invalid_free: true,
            ..Default::default()
        }
        .check(&s);
        let lines: Vec<String> = s.gates.iter().map(message).collect();
        assert_eq!(
            lines,
            [
                "--fail-on-leak=definite: 3 blocks (6,666 bytes) definitely lost > 0",
                "--max-peak: 6,666 bytes live at the peak <= 1,048,576 bytes",
                "--max-leaked: 6,666 bytes definitely, indirectly or possibly lost > 1,000 bytes",
                "--max-allocs: 15 blocks allocated > 10",
                "--fail-on-invalid-free: 0 invalid frees <= 0",
            ]
        );
        assert_eq!(
            verdict(&s, &RunFacts::default()),
            Verdict::Fail(vec![lines[0].clone(), lines[2].clone(), lines[3].clone()])
        );
        // Only the blocks a gate counts explain its failure.
        assert!(counts_blocks(
            "fail-on-leak=definite",
            Some(LeakKind::Indirect),
            false
        ));
        assert!(!counts_blocks(
            "fail-on-leak=definite",
            Some(LeakKind::Reachable),
            false
        ));
        assert!(!counts_blocks(
            "fail-on-leak=reachable",
            Some(LeakKind::Definite),
            true
        ));
        assert!(counts_blocks("max-leaked", Some(LeakKind::Possible), false));
    }

    /// `--max-growth` over too few invocations is not checked: the run is
    /// undecided (exit 3) with the note, never failed by a fit of 2 points.
    #[test]
    fn growth_over_too_few_invocations_is_undecided() {
        let mut s = HeapModel::new().summary(RunStatus::Exited, Some(0), "");
        s.events = 31;
        s.invocations = Some(3);
        s.growth = Some(crate::growth::Growth {
            warmup: 1,
            fitted: 2,
            bytes_per_invocation: 2056.0,
            r2: 1.0,
            pages_per_invocation: 0.0,
            pages_r2: 1.0,
            leaking: false,
            sites: Vec::new(),
        });
        s.gates = Gates {
            max_growth: Some(0),
            ..Default::default()
        }
        .check(&s);
        let why = "--max-growth not checked: too few invocations to fit growth: 2 fitted after a warm-up of 1, at least 10 are needed";
        assert_eq!(message(&s.gates[0]), why);
        assert!(!s.gates[0].passed);
        assert_eq!(
            verdict(&s, &RunFacts::default()),
            Verdict::Undecided(why.into())
        );
        // A failed gate is a verdict even so.
        s.max_bytes = 10;
        let mut gates = Gates {
            max_growth: Some(0),
            max_peak: Some(1),
            ..Default::default()
        }
        .check(&s);
        s.gates.append(&mut gates);
        assert_eq!(
            verdict(&s, &RunFacts::default()),
            Verdict::Fail(vec!["--max-peak: 10 bytes live at the peak > 1 byte".into()])
        );
        // A partial record decides nothing, gated or not.
        s.partial = vec!["the trace is cut short".into()];
        assert_eq!(
            verdict(&s, &RunFacts::default()),
            Verdict::Undecided("the record is not whole: the trace is cut short".into())
        );
    }
}
