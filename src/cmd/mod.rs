//! One module per subcommand.

pub mod diff;
pub mod dump;
pub mod export;
pub mod flamegraph;
pub mod instrument;
pub mod leaks;
pub mod report;
pub mod run;
pub mod runner;
pub mod summary;
pub mod timeline;
pub mod top;

use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Exit code: heapscope's own error (bad input, a file it cannot read or
/// write, a module it cannot instantiate).
pub const EXIT_ERROR: u8 = 2;
/// Exit code: a gate was asked for and could not be decided, or the run's
/// record is not whole (a trace cut short or damaged, a failed trace write,
/// a run that recorded no heap event at all).
pub const EXIT_UNDECIDED: u8 = 3;

/// The exit code of a failed gate, shared by every gating command.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct GateExit {
    /// The exit code when a gate fails (default 1); 0, 2, 3, 130 and 134
    /// are taken. Under `run`, choose one the guest never exits with, so a
    /// failed gate and the guest's own exit 1 differ.
    #[arg(long = "gate-exit-code", value_name = "CODE", default_value_t = 1, value_parser = parse_gate_code)]
    pub code: u8,
}

/// Where a gating command also reports its gates for CI: `--junit FILE`,
/// and GitHub Actions' step summary when `GITHUB_STEP_SUMMARY` is set.
#[derive(clap::Args, Debug, Clone)]
pub struct CiOutput {
    /// Also write the gates as JUnit XML to FILE: one test case per gate, a
    /// failed gate a failed test with the stacks that failed it, a run that
    /// cannot be decided an error. CI systems show it as test results.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

impl CiOutput {
    /// Write the JUnit file when asked, and append the Markdown summary to
    /// `$GITHUB_STEP_SUMMARY` when it is set.
    pub fn emit(&self, r: &heapscope_viewer::ci::GateReport) -> anyhow::Result<()> {
        if let Some(p) = &self.junit {
            std::fs::write(p, heapscope_viewer::ci::junit(r))
                .with_context(|| format!("cannot write the JUnit report `{}`", p.display()))?;
        }
        if let Some(p) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .with_context(|| {
                    format!(
                        "cannot append to GITHUB_STEP_SUMMARY `{}`",
                        p.to_string_lossy()
                    )
                })?;
            f.write_all(heapscope_viewer::ci::step_summary(r).as_bytes())?;
        }
        Ok(())
    }
}

/// Parse `--gate-exit-code`: 1 to 255, and none of the codes with another
/// meaning.
pub fn parse_gate_code(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(c @ (0 | 2 | 3 | 130 | 134)) => Err(format!(
            "{c} already means something else (0 success, 2 error, 3 undecided, 130 interrupted, 134 trap); choose another code from 1 to 255"
        )),
        Ok(c) => Ok(c),
        Err(_) => Err(format!("`{s}` is not an exit code: give a number from 1 to 255")),
    }
}

/// Analyse a trace (one pass). A trace that is not whole (cut short,
/// damaged, without its end-of-run record) is said on stderr: every view
/// made from it is partial.
pub fn analyze(trace: &Path) -> anyhow::Result<heapscope_viewer::Analysis> {
    if trace.is_dir() {
        anyhow::bail!(
            "cannot read trace `{}`: it is a directory, not a trace",
            trace.display()
        );
    }
    // The viewer's errors name the trace.
    let a = heapscope_viewer::analyze(trace)?;
    for w in &a.warnings {
        eprintln!("heapscope: warning: `{}`: {w}", trace.display());
    }
    Ok(a)
}

/// `--module NAME|INDEX`: one core module of a component run's trace.
#[derive(clap::Args, Debug, Default)]
pub struct ModuleFilter {
    /// Show only one core module of a component run: its name or its
    /// run-wide index (`core N`, as `summary` lists them); an unknown one
    /// is an error listing the trace's modules.
    #[arg(long, value_name = "NAME|INDEX")]
    pub module: Option<String>,
}

impl ModuleFilter {
    /// Keep only the chosen module's stacks and numbers in `a`.
    pub fn apply(&self, a: &mut heapscope_viewer::Analysis, trace: &Path) -> anyhow::Result<()> {
        if let Some(sel) = &self.module {
            a.keep_module(sel)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", trace.display()))?;
        }
        Ok(())
    }
}

/// Analyse a trace and replay it to its peak of live bytes (two passes).
pub fn analyze_with_peak(trace: &Path) -> anyhow::Result<heapscope_viewer::Analysis> {
    let mut a = analyze(trace)?;
    heapscope_viewer::analysis::peak_snapshot(trace, &mut a)
        .with_context(|| format!("cannot analyse `{}`", trace.display()))?;
    Ok(a)
}

/// Write to `path` (`-`: stdout) through `f`; the file is written whole or
/// an error names it. Every writer says what it wrote (`what`: "flamegraph",
/// "HTML report") and where, on stderr.
pub fn write_output(
    path: &Path,
    what: &str,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        f(&mut out)?;
        out.flush()?;
        return Ok(());
    }
    if path.is_dir() {
        anyhow::bail!(
            "cannot write the {what} to `{}`: it is a directory; give a file name",
            path.display()
        );
    }
    let mut buf = Vec::new();
    f(&mut buf).with_context(|| format!("cannot render `{}`", path.display()))?;
    std::fs::write(path, &buf).with_context(|| format!("cannot write `{}`", path.display()))?;
    eprintln!(
        "heapscope: {what} written to `{}` ({})",
        path.display(),
        heapscope_viewer::text::bytes_human(buf.len() as u64)
    );
    Ok(())
}

/// Whether stdout takes colour: a terminal, `NO_COLOR` unset, `TERM` not
/// `dumb`.
pub fn colour() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Print a text report, coloured when stdout is a terminal: headings bold,
/// leaks and growth red, hidden-frame notes dim.
pub fn print_styled(text: &str) -> anyhow::Result<()> {
    if !colour() {
        return print(text);
    }
    use anstyle::{AnsiColor, Style};
    let bold = Style::new().bold();
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let dim = Style::new().dimmed();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        let t = line.trim_start();
        let style = if t.starts_with("LEAK") || t.contains("definitely lost,") && t.starts_with('#')
        {
            Some(red)
        } else if t.starts_with("warning:") {
            Some(yellow)
        } else if t.starts_with('#')
            || (t.contains("invocation") && t.ends_with(" failed"))
            || t.starts_with("growth ")
        {
            Some(bold)
        } else if t.starts_with('(') || t.starts_with("...") {
            Some(dim)
        } else {
            None
        };
        match style {
            Some(s) => out.push_str(&format!("{}{line}{}\n", s.render(), s.render_reset())),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    print(&out)
}

/// Write `text` to stdout; a closed pipe surfaces as an error `main` ignores.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Parse `16MiB`, `100MB`, `4g`, `65536` into bytes (K/M/G are binary, as
/// memory sizes are).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try 16MiB, 512KiB or 1048576)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{s}`: unknown size unit `{unit}` (use B, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parse a percentage limit: a finite number, 0 or more (`nan` would
/// make every comparison false and the gate pass).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!(
            "`{s}` is not a percentage: give a number of 0 or more, like 5 or 2.5"
        )),
    }
}

/// Parse `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 10s, 500ms or 2m)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "`{s}`: unknown duration unit `{unit}` (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{s}` must be a positive duration"));
    }
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{s}` is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
        assert_eq!(
            parse_duration("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("2m"),
            Ok(std::time::Duration::from_secs(120))
        );
        assert!(parse_duration("0s").is_err());
        // Past what a Duration holds: an error, not a panic.
        assert_eq!(
            parse_duration("18446744073709551616s"),
            Err("`18446744073709551616s` is too long a duration".into())
        );
        assert_eq!(parse_percent("5"), Ok(5.0));
        assert!(parse_percent("nan").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("inf").is_err());
    }
}
