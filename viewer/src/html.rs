//! `heapscope report`: one self-contained HTML file (no network, no external
//! assets) with the summary, an interactive heap timeline, the leak table,
//! flamegraphs switchable by weight, the peak snapshot, advice and, for
//! actor traces, the growth per invocation.
//!
//! Every name from the module reaches the page through askama's HTML
//! escaping or as JSON inside a `<script type="application/json">` block
//! with `<`, `>` and `&` escaped; the page's script only ever sets
//! `textContent`. The characters XML 1.0 forbids (C0 controls, U+FFFE,
//! U+FFFF), which HTML also rejects, are replaced on the whole page
//! ([`crate::escape::xml_chars`]). Flamegraphs are inferno SVGs in
//! sandboxed iframes, well-formed XML whatever the names ([`crate::flame`]).

use crate::advice::Advice;
use crate::analysis::{compact_range, Analysis, FrameView};
use crate::facts::Kind as FactKind;
use crate::flame::Weight;
use crate::text::{bytes_human, thousands};
use askama::Template;
use base64::Engine as _;

/// JSON that is safe inside a `<script>` element: no `<`, `>` or `&` (nor
/// the line separators JavaScript once rejected) appear literally.
pub fn script_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A stack as the report shows it.
pub struct StackRow {
    /// The innermost user frame, or the innermost frame.
    pub top: String,
    /// Frames shown, innermost first: (function, location).
    pub frames: Vec<(String, String)>,
    /// Frames hidden above and below.
    pub hidden: usize,
}

impl StackRow {
    /// What the hidden frames are: `1 library or runtime frame hidden`.
    pub fn hidden_note(&self) -> String {
        format!(
            "{} hidden",
            crate::text::plural(
                self.hidden as u64,
                "library or runtime frame",
                "library and runtime frames"
            )
        )
    }
}

/// A frame as the report lists it: (function, `file:line`).
fn frame_row(f: &FrameView) -> (String, String) {
    let loc = match (&f.file, f.line) {
        (Some(file), 0) => file.clone(),
        (Some(file), line) => format!("{file}:{line}"),
        (None, _) => String::new(),
    };
    (f.function.clone(), loc)
}

fn stack_row(frames: &[FrameView]) -> StackRow {
    // A component run's root frame (the core module) is always shown.
    let (body, module) = crate::analysis::split_module(frames);
    let range = compact_range(body);
    let mut shown: Vec<(String, String)> = body[range.clone()].iter().map(frame_row).collect();
    shown.extend(module.map(frame_row));
    StackRow {
        top: shown
            .first()
            .map(|f| f.0.clone())
            .unwrap_or_else(|| "(no stack)".into()),
        hidden: frames.len() - shown.len(),
        frames: shown,
    }
}

/// A row of the leak table.
pub struct LeakRow {
    /// Bytes, as text.
    pub bytes: String,
    /// Blocks.
    pub blocks: String,
    /// Leak kind or suppression.
    pub kind: String,
    /// Allocating function.
    pub allocator: String,
    /// The stack.
    pub stack: StackRow,
}

/// A row of the peak table.
pub struct SiteRow {
    /// Bytes at the peak.
    pub bytes: String,
    /// Share of the peak, percent.
    pub share: String,
    /// Blocks at the peak.
    pub blocks: String,
    /// The stack.
    pub stack: StackRow,
}

/// A flamegraph tab.
pub struct Flame {
    /// Weight name (`allocated-bytes`, ...).
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// The total, as text.
    pub total: String,
    /// The SVG as a data: URI.
    pub uri: String,
    /// Height for its frame, in pixels.
    pub height: usize,
}

/// How the run stopped, when it did not finish: a trap, a limit, an error
/// or an interruption, with the stack the run's message gives.
pub struct Stopped {
    /// The banner: `TRAP: wasm trap: out of bounds memory access`.
    pub banner: String,
    /// The stack as `run` and `summary` print it ([`crate::trap::stack_lines`]):
    /// the user's code first, innermost first.
    pub frames: Vec<(String, String)>,
    /// What those fold (`folded: 2 library frames above, from dlfree`).
    pub folded: Vec<String>,
    /// Every frame of the message (`--full-stacks`), innermost first.
    pub all: Vec<(String, String)>,
}

/// The banner of a run that did not finish, with its stack.
fn stopped(s: &heapscope_trace::model::Summary) -> Option<Stopped> {
    use heapscope_trace::format::RunStatus;
    let first = s.message.lines().next().unwrap_or_default().trim();
    let said = |what: &str| {
        if first.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {first}")
        }
    };
    let banner = match s.status {
        RunStatus::Exited => return None,
        RunStatus::Trapped => said("TRAP"),
        RunStatus::MemoryLimit => said("STOPPED AT THE MEMORY LIMIT"),
        RunStatus::Timeout => said("STOPPED BY THE TIME OR FUEL LIMIT"),
        RunStatus::Error => said("FAILED"),
        RunStatus::Interrupted => {
            "INTERRUPTED: the trace and summary cover the run until then".to_string()
        }
    };
    // The terminal's lines, read back as frames: one rule for what is
    // folded.
    let (shown, folded): (Vec<String>, Vec<String>) = crate::trap::stack_lines(&s.message, false)
        .into_iter()
        .partition(|l| l.starts_with("    at ") || l.starts_with("    by "));
    let frames = crate::trap::message_frames(&format!("\n{}", shown.join("\n")));
    let all: Vec<FrameView> = crate::trap::message_frames(&s.message)
        .into_iter()
        .filter(|f| !crate::analysis::is_wrapper(&f.function))
        .collect();
    Some(Stopped {
        banner,
        frames: frames.iter().map(frame_row).collect(),
        folded: folded
            .iter()
            .map(|l| {
                let l = l.trim().trim_start_matches('(').trim_end_matches(')');
                l.strip_suffix("; --full-stacks shows them")
                    .unwrap_or(l)
                    .to_string()
            })
            .collect(),
        all: if all.len() > frames.len() {
            all.iter().map(frame_row).collect()
        } else {
            Vec::new()
        },
    })
}

/// A piece of advice with its stack.
pub struct AdviceRow {
    /// The advice.
    pub advice: Advice,
    /// Its stack.
    pub stack: StackRow,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Report<'a> {
    module: &'a str,
    status: String,
    warnings: &'a [String],
    headlines: Vec<String>,
    stopped: Option<Stopped>,
    facts: Vec<(String, String)>,
    leaks: Vec<LeakRow>,
    more_leaks: usize,
    peak: Vec<SiteRow>,
    peak_facts: Vec<(&'static str, String)>,
    flames: Vec<Flame>,
    folded_startup: bool,
    events: u64,
    peak_label: Option<String>,
    advice: Vec<AdviceRow>,
    growth: Option<String>,
    data: String,
    /// The "Who holds it" section, escaped markup
    /// ([`crate::retainers::html_section`]), when the trace has a heap graph.
    retainers: Option<String>,
}

/// Width of the report's flamegraphs, in pixels.
pub const FLAME_WIDTH: usize = 1300;
/// Height of a flamegraph's frame when its SVG gives none.
const FLAME_FALLBACK_HEIGHT: usize = 200;

/// The `height` of an SVG's root element, in pixels.
pub fn svg_height(svg: &[u8]) -> Option<usize> {
    let head = String::from_utf8_lossy(&svg[..svg.len().min(4096)]);
    let tag = &head[head.find("<svg")?..];
    let tag = &tag[..tag.find('>')?];
    tag.split(" height=\"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()
}
/// How many leak groups and peak sites the report lists.
pub const TABLE_ROWS: usize = 200;
/// Invocation points the growth chart keeps at most.
pub const INVOCATION_POINTS: usize = 2000;

/// Render the report. `a` should have its peak snapshot taken.
pub fn report(a: &Analysis) -> Result<String, String> {
    let s = &a.summary;
    let status = crate::text::ended(s);
    let m = &s.memory;
    let page = m.page_size.max(1);
    // The run's facts in the one wording `run` and `summary` use: the
    // verdicts are the red headlines, the status is the header's, the
    // warnings stand above the summary, the rest is its list.
    // (The status fact names the module; the report's header does.)
    let all = crate::facts::facts(&a.module, s);
    let headlines: Vec<String> = all
        .iter()
        .filter(|f| f.kind == FactKind::Verdict)
        .map(|f| f.text.clone())
        .collect();
    let mut warnings: Vec<String> = a.warnings.clone();
    warnings.extend(
        all.iter()
            .filter(|f| f.kind == FactKind::Warning)
            .map(|f| f.text.clone()),
    );
    let mut facts: Vec<(String, String)> = all
        .iter()
        .filter(|f| {
            !matches!(
                f.kind,
                FactKind::Verdict | FactKind::Status | FactKind::Warning
            )
        })
        .map(|f| (f.label.clone(), f.text.clone()))
        .collect();
    // A component run's core modules, one line each (as `summary`'s table).
    if s.modules.len() > 1 || s.modules.iter().any(|m| !m.instrumented) {
        facts.extend(s.modules.iter().map(crate::text::module_fact));
    }
    // What the trace's profile adds to the summary.
    facts.push(("heap events".into(), thousands(s.events)));
    facts.push((
        "short-lived blocks".into(),
        format!(
            "{} freed within {} events",
            thousands(a.profile.short_lived),
            crate::profile::SHORT_LIVED_EVENTS
        ),
    ));
    facts.push((
        "longest realloc chain".into(),
        thousands(a.profile.longest_chain.0),
    ));

    let leaks: Vec<LeakRow> = a
        .leaks
        .iter()
        .take(TABLE_ROWS)
        .map(|g| LeakRow {
            bytes: thousands(g.bytes),
            blocks: thousands(g.blocks),
            kind: match (&g.suppressed_by, g.kind) {
                (Some(r), _) => format!("suppressed ({r})"),
                (None, Some(k)) => crate::text::wire_name(&k),
                (None, None) => "live".into(),
            },
            allocator: g.allocator.name().to_string(),
            stack: stack_row(&g.frames),
        })
        .collect();

    let mut at_peak: Vec<_> = a
        .profile
        .active()
        .filter(|(_, st)| st.peak_bytes > 0)
        .collect();
    at_peak.sort_by(|x, y| y.1.peak_bytes.cmp(&x.1.peak_bytes).then(x.0.cmp(&y.0)));
    let peak: Vec<SiteRow> = at_peak
        .iter()
        .take(TABLE_ROWS)
        .map(|(id, st)| SiteRow {
            bytes: thousands(st.peak_bytes),
            share: format!(
                "{:.1}",
                st.peak_bytes as f64 * 100.0 / s.max_bytes.max(1) as f64
            ),
            blocks: thousands(st.peak_blocks),
            stack: stack_row(a.stacks.get(id).map_or(&[][..], Vec::as_slice)),
        })
        .collect();
    let mut peak_facts = Vec::new();
    if let Some(p) = &a.peak {
        peak_facts.push((
            "at heap event",
            format!("{} of {}", thousands(p.seq), thousands(s.events)),
        ));
        peak_facts.push((
            "live",
            format!(
                "{} in {}",
                bytes_human(p.live_bytes),
                crate::text::plural(p.live_blocks, "block", "blocks")
            ),
        ));
        peak_facts.push((
            "linear memory",
            format!(
                "{} pages ({})",
                thousands(p.pages),
                bytes_human(p.pages * page)
            ),
        ));
        peak_facts.push((
            "heap span",
            format!(
                "{:#x}–{:#x}: {}, of which {} between live blocks",
                p.span.0,
                p.span.1,
                bytes_human(p.span.1 - p.span.0),
                bytes_human(p.free_in_span)
            ),
        ));
        if let Some((at, len)) = p.largest_gap {
            peak_facts.push((
                "largest free gap",
                format!("{} at {at:#x}", bytes_human(len)),
            ));
        }
    }

    let mut flames = Vec::new();
    for w in Weight::ALL {
        let total = crate::flame::total(a, w);
        if total == 0 && w != Weight::AllocatedBytes {
            continue;
        }
        let mut svg = Vec::new();
        crate::flame::flamegraph_sized(a, w, Some(FLAME_WIDTH), &mut svg)
            .map_err(|e| e.to_string())?;
        flames.push(Flame {
            // The frame is exactly as tall as the graph inferno drew: one
            // row per frame of the deepest stack shown, plus its title.
            height: svg_height(&svg).unwrap_or(FLAME_FALLBACK_HEIGHT),
            id: w.name(),
            title: w.title(),
            total: w.amount(total),
            uri: format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&svg)
            ),
        });
    }
    let folded_startup = !a.full_stacks
        && a.profile
            .active()
            .any(|(id, _)| crate::flame::frames(a, id).len() < a.export_frames(id).len());

    let advice = crate::advice::advise(a)
        .into_iter()
        .map(|advice| AdviceRow {
            stack: stack_row(&advice.frames),
            advice,
        })
        .collect();

    let growth = s.growth.as_ref().map(crate::facts::growth_line);
    let stride = a.invocations.len().div_ceil(INVOCATION_POINTS).max(1);
    let invocations: Vec<serde_json::Value> = a
        .invocations
        .iter()
        .step_by(stride)
        .map(|i| serde_json::json!([i.index, i.live_bytes, i.pages * page]))
        .collect();
    let data = serde_json::json!({
        "timeline": crate::timeline::points(a)
            .iter()
            .map(|p| serde_json::json!([p.seq, p.live_bytes, p.max_live_bytes, p.pages * page, p.live_blocks]))
            .collect::<Vec<_>>(),
        "peakSeq": a.peak_seq,
        // The summary's peak, which the timeline marks.
        "peak": (s.max_bytes > 0).then(|| serde_json::json!({
            "seq": a.peak_seq, "bytes": s.max_bytes, "blocks": s.max_blocks,
        })),
        "invocations": invocations,
        "growth": s.growth.as_ref().map(|g| serde_json::json!({
            "slope": g.bytes_per_invocation, "warmup": g.warmup, "r2": g.r2
        })),
        "sizes": a.profile.sizes.blocks.iter().enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| serde_json::json!([crate::profile::SizeHistogram::lower(i), n, a.profile.sizes.bytes[i]]))
            .collect::<Vec<_>>(),
    });
    Report {
        module: if a.module.is_empty() {
            "trace"
        } else {
            &a.module
        },
        status,
        warnings: &warnings,
        headlines,
        stopped: stopped(&a.summary),
        facts,
        more_leaks: a.leaks.len().saturating_sub(TABLE_ROWS),
        leaks,
        peak,
        peak_facts,
        flames,
        folded_startup,
        events: s.events,
        // The summary's peak, exactly: the timeline marks it.
        peak_label: (s.max_bytes > 0).then(|| {
            format!(
                "{} ({} in {}) at heap event {}",
                bytes_human(s.max_bytes),
                crate::text::plural(s.max_bytes, "byte", "bytes"),
                crate::text::plural(s.max_blocks, "block", "blocks"),
                thousands(a.peak_seq)
            )
        }),
        advice,
        growth,
        data: script_json(&data),
        retainers: crate::retainers::html_section(a),
    }
    .render()
    .map(|page| match crate::escape::xml_chars(&page) {
        std::borrow::Cow::Borrowed(_) => page,
        std::borrow::Cow::Owned(valid) => valid,
    })
    .map_err(|e| format!("cannot render the report: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            crate::escape::xml(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        let j = script_json(&serde_json::json!({"f": "</script><b>&"}));
        assert!(
            !j.contains('<') && !j.contains('>') && !j.contains('&'),
            "{j}"
        );
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["f"], "</script><b>&");
    }
}
