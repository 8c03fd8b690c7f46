//! What CI systems show natively: JUnit XML (each gate a test case, a
//! failed gate a failed test with the stacks that failed it) and the
//! Markdown GitHub Actions appends to a job's page (`GITHUB_STEP_SUMMARY`).
//!
//! The suite names the module and the summary lines its names and
//! messages: JUnit gets them through [`xml`] (well-formed whatever they
//! hold), the step summary through [`markdown`] (no image, link, emphasis
//! or HTML from a name, no raw control character).

use crate::escape::{markdown, markdown_block, xml};
use heapscope_trace::model::Gate;
use std::fmt::Write as _;

/// A gating command's result, as CI reports show it.
#[derive(Debug, Clone, Default)]
pub struct GateReport {
    /// What was checked: `heapscope run leaky.wasm`.
    pub suite: String,
    /// The gates checked, passed or failed.
    pub gates: Vec<Gate>,
    /// Why the gates could not be decided (a trace cut short, no heap
    /// event, no message): every gate is then an error, never a pass.
    pub undecided: Option<String>,
    /// The run's numbers, one line each.
    pub summary: Vec<String>,
    /// For each gate by its full name (`fail-on-leak=definite`), what
    /// explains a failure, as text: the leaks the gate counts (never a
    /// block of a kind it does not count), the growth sites.
    pub details: Vec<(String, String)>,
}

impl GateReport {
    /// What explains a failure of `gate` (a gate's name: `fail-on-leak=definite`).
    pub fn detail(&self, gate: &str) -> &str {
        self.details
            .iter()
            .find(|(g, _)| g == gate)
            .map_or("", |(_, d)| d.as_str())
    }

    /// Gates failed.
    pub fn failures(&self) -> usize {
        if self.undecided.is_some() {
            0
        } else {
            self.gates.iter().filter(|g| failed(g)).count()
        }
    }

    /// A gate's line, as the terminal prints it: `gate failed:
    /// --fail-on-leak=definite: 3 blocks (6,666 bytes) definitely lost > 0`,
    /// `gate passed: ...`, or `--max-growth not checked: ...`.
    pub fn line(&self, g: &Gate) -> String {
        if let Some(why) = &self.undecided {
            format!("--{} not checked: {why}", g.gate)
        } else if g.not_checked.is_some() {
            gate_message(g)
        } else if g.passed {
            format!("gate passed: {}", gate_message(g))
        } else {
            format!("gate failed: {}", gate_message(g))
        }
    }
}

/// A gate that was checked and failed.
fn failed(g: &Gate) -> bool {
    !g.passed && g.not_checked.is_none()
}

fn gate_message(g: &Gate) -> String {
    crate::text::gate_message(g)
}

/// The report as JUnit XML: one test suite, one test case per gate
/// (`classname` heapscope.gates); a failed gate is a `<failure>` whose
/// body holds its details, an undecided run makes every gate an
/// `<error>`. With no gate asked for, one passing case says the run ended.
pub fn junit(r: &GateReport) -> String {
    let tests = r.gates.len().max(1);
    let failures = r.failures();
    let errors = if r.undecided.is_some() {
        tests
    } else {
        r.gates.iter().filter(|g| g.not_checked.is_some()).count()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"heapscope\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">",
        xml(&r.suite)
    );
    let summary = xml(&r.summary.join("\n"));
    let case =
        |out: &mut String, name: &str, body: Option<(&str, String, String)>| {
            let _ = write!(
                out,
                "    <testcase classname=\"heapscope.gates\" name=\"{}\"",
                xml(name)
            );
            match body {
                None => {
                    let _ = writeln!(out, "/>");
                }
                Some((tag, message, text)) => {
                    let _ =
                        writeln!(
                    out,
                    ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>\n    </testcase>",
                    xml(&message),
                    if tag == "failure" { "gate" } else { "undecided" },
                    xml(&text)
                );
                }
            }
        };
    if r.gates.is_empty() {
        let body = r
            .undecided
            .as_ref()
            .map(|why| ("error", why.clone(), summary.clone()));
        case(&mut out, "run", body);
    }
    for g in &r.gates {
        let body = if r.undecided.is_some() || g.not_checked.is_some() {
            Some(("error", r.line(g), r.summary.join("\n")))
        } else if !g.passed {
            let detail = r.detail(&g.gate);
            let mut text = r.summary.join("\n");
            if !detail.is_empty() {
                text.push_str("\n\n");
                text.push_str(detail);
            }
            Some(("failure", r.line(g), text))
        } else {
            None
        };
        case(&mut out, &format!("--{}", g.gate), body);
    }
    let _ = writeln!(out, "    <system-out>{summary}</system-out>");
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The report as GitHub-flavoured Markdown for a job's step summary: a
/// heading with the verdict, the gates as a table, the run's numbers, and
/// the details of each failed gate folded away.
pub fn step_summary(r: &GateReport) -> String {
    let undecided = r.undecided.clone().or_else(|| {
        r.gates
            .iter()
            .find(|g| g.not_checked.is_some())
            .filter(|_| r.failures() == 0)
            .map(gate_message)
    });
    let verdict = if r.failures() > 0 {
        format!("❌ {} of {} gates failed", r.failures(), r.gates.len())
    } else if let Some(why) = &undecided {
        format!("⚠️ not decided: {}", markdown(why))
    } else if r.gates.is_empty() {
        "no gate asked for".to_string()
    } else {
        format!("✅ {} gates passed", r.gates.len())
    };
    let mut out = format!("### heapscope: {} — {verdict}\n\n", markdown(&r.suite));
    if !r.gates.is_empty() {
        for g in &r.gates {
            let mark = if r.undecided.is_some() || g.not_checked.is_some() {
                "⚠️"
            } else if g.passed {
                "✅"
            } else {
                "❌"
            };
            let _ = writeln!(out, "- {mark} {}", markdown(&r.line(g)));
        }
        out.push('\n');
    }
    for l in &r.summary {
        let _ = writeln!(out, "- {}", markdown(l));
    }
    for g in r.gates.iter().filter(|g| failed(g)) {
        let d = r.detail(&g.gate);
        if d.is_empty() || r.undecided.is_some() {
            continue;
        }
        let _ = write!(
            out,
            "\n<details><summary>why --{} failed</summary>\n\n```text\n{}\n```\n\n</details>\n",
            xml(&g.gate),
            markdown_block(d)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(name: &str, limit: u64, actual: u64) -> Gate {
        Gate {
            gate: name.into(),
            limit,
            actual,
            passed: actual <= limit,
            note: None,
            measured: String::new(),
            not_checked: None,
        }
    }

    #[test]
    fn junit_has_a_case_per_gate_and_escapes_names() {
        let r = GateReport {
            suite: "heapscope run <a&b>.wasm".into(),
            gates: vec![
                Gate {
                    measured: "3 blocks (30 bytes) definitely lost".into(),
                    ..gate("fail-on-leak=definite", 0, 3)
                },
                Gate {
                    measured: "50 bytes live at the peak".into(),
                    ..gate("max-peak", 100, 50)
                },
            ],
            undecided: None,
            summary: vec!["3 blocks \u{1} lost".into()],
            details: vec![("fail-on-leak=definite".into(), "at f (a.c:1)".into())],
        };
        let x = junit(&r);
        assert!(x.contains("<testsuite name=\"heapscope run &lt;a&amp;b&gt;.wasm\" tests=\"2\" failures=\"1\" errors=\"0\">"), "{x}");
        assert!(x.contains("<failure message=\"gate failed: --fail-on-leak=definite: 3 blocks (30 bytes) definitely lost &gt; 0\" type=\"gate\">3 blocks \u{fffd} lost\n\nat f (a.c:1)</failure>"), "{x}");
        assert!(
            x.contains("<testcase classname=\"heapscope.gates\" name=\"--max-peak\"/>"),
            "{x}"
        );
        let md = step_summary(&r);
        assert!(
            md.starts_with(
                "### heapscope: heapscope run &lt;a&amp;b&gt;.wasm — ❌ 1 of 2 gates failed\n"
            ),
            "{md}"
        );
        // The terminal's lines, word for word.
        assert!(
            md.contains("- ❌ gate failed: --fail-on-leak=definite: 3 blocks \\(30 bytes\\) definitely lost &gt; 0\n- ✅ gate passed: --max-peak: 50 bytes live at the peak &lt;= 100 bytes\n"),
            "{md}"
        );
    }

    /// A module named `![img](http://x)` with ESC and BEL put an image, a
    /// link and raw control bytes into the step summary, and U+FFFE into
    /// JUnit XML no parser accepts.
    #[test]
    fn hostile_names_make_no_markdown_and_no_invalid_xml() {
        let name = "\u{1b}[31m![img](http://x)[a](y)\u{7}<b>*_x_*</b>\u{fffe}";
        let r = GateReport {
            suite: format!("heapscope run {name}"),
            gates: vec![gate("max-peak", 1, 2)],
            undecided: None,
            summary: vec![format!("`{name}` exited with code 0")],
            details: vec![("max-peak".into(), format!("at {name}\n```\n"))],
        };
        let md = step_summary(&r);
        // A zero-width space after `http:`: no bare link either.
        let escaped = "\\\\x1b\\[31m\\!\\[img\\]\\(http:\u{200b}//x\\)\\[a\\]\\(y\\)\\\\x07&lt;b&gt;\\*\\_x\\_\\*&lt;/b&gt;";
        assert!(
            md.starts_with(&format!(
                "### heapscope: heapscope run {escaped}\u{fffe} — "
            )),
            "{md}"
        );
        assert!(md.contains(&format!("- \\`{escaped}")), "{md}");
        assert!(
            md.contains("```text\nat \\x1b[31m![img](http://x)[a](y)\\x07<b>*_x_*</b>\u{fffe}\n'''\n\n```\n"),
            "{md}"
        );
        assert!(!md.contains('\u{1b}') && !md.contains('\u{7}'), "{md}");
        let x = junit(&r);
        assert!(!x.chars().any(crate::escape::xml_forbidden), "{x:?}");
        assert!(
            x.contains("<testsuite name=\"heapscope run \u{fffd}[31m![img](http://x)[a](y)\u{fffd}&lt;b&gt;*_x_*&lt;/b&gt;\u{fffd}\""),
            "{x}"
        );
    }

    #[test]
    fn an_undecided_run_fails_every_case_as_an_error() {
        let r = GateReport {
            suite: "s".into(),
            gates: vec![gate("max-peak", 100, 50)],
            undecided: Some("the trace is cut short".into()),
            ..Default::default()
        };
        let x = junit(&r);
        assert!(x.contains("tests=\"1\" failures=\"0\" errors=\"1\""), "{x}");
        assert!(
            x.contains(
                "<error message=\"--max-peak not checked: the trace is cut short\" type=\"undecided\">"
            ),
            "{x}"
        );
    }
}
