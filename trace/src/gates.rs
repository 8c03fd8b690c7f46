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
use crate::model::{Gate, Summary};

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
    /// invocation after the warm-up (rounded to whole bytes), or when too few
    /// invocations ran to fit any growth.
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
        let mut gate = |name: String, limit: u64, actual: u64| {
            out.push(Gate {
                gate: name,
                limit,
                actual,
                passed: actual <= limit,
                note: None,
            });
        };
        if let Some(k) = self.fail_on_leak {
            let classified = kinds.definite.blocks
                + kinds.indirect.blocks
                + kinds.possible.blocks
                + kinds.reachable.blocks
                + kinds.suppressed.blocks;
            // Indirectly lost blocks are lost too: they count with the
            // definitely lost ones that hold them.
            let mut blocks = kinds.definite.blocks
                + kinds.indirect.blocks
                + s.curr_blocks.saturating_sub(classified);
            if k >= LeakKind::Possible {
                blocks += kinds.possible.blocks;
            }
            if k >= LeakKind::Reachable {
                blocks += kinds.reachable.blocks;
            }
            let name = match k {
                LeakKind::Definite | LeakKind::Indirect => "definite",
                LeakKind::Possible => "possible",
                LeakKind::Reachable => "reachable",
            };
            gate(format!("fail-on-leak={name}"), 0, blocks);
        }
        if let Some(l) = self.max_peak {
            gate("max-peak".into(), l, s.max_bytes);
        }
        if let Some(l) = self.max_leaked {
            gate(
                "max-leaked".into(),
                l,
                kinds.definite.bytes + kinds.indirect.bytes + kinds.possible.bytes,
            );
        }
        if let Some(l) = self.max_allocs {
            gate("max-allocs".into(), l, s.total_blocks);
        }
        if let Some(l) = self.max_growth {
            match &s.growth {
                Some(g) => gate(
                    "max-growth".into(),
                    l,
                    g.bytes_per_invocation.round().max(0.0) as u64,
                ),
                None => out.push(Gate {
                    gate: "max-growth".into(),
                    limit: l,
                    actual: 0,
                    passed: false,
                    note: Some(
                        "no growth to check: fewer than two invocations ran after the warm-up"
                            .into(),
                    ),
                }),
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
            });
        }
        out
    }
}

/// `n` with its noun, as the summary's text words it: `1 free`, `2 frees`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        crate::units::thousands(n),
        if n == 1 { one } else { many }
    )
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
}
