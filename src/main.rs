//! The `heapscope` command line: a thin layer over the stage crates.
//!
//! Each subcommand lives in `src/cmd/` as an `Opts` struct whose doc comment
//! is its `--help` and whose `run` reads input, calls one library function
//! and writes output.

mod cmd;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::{self, Write};
use std::process::ExitCode;

const EXIT_STATUS: &str = "\
Exit status (every command):
  0    success
  N    `run`: the guest's own exit code, 0 to 125, as the wasmtime CLI passes it; with
       --node or --session, the code the session's end record gives, 0 to 255
  1    a gate you asked for failed (`run --fail-on-leak`, `--max-peak`, ...; `leaks
       --fail-on-leak`; `diff --fail-on-increase`); --gate-exit-code CODE chooses another
       code, so a failed gate and a guest's own exit 1 differ. `run` also exits 1 when a
       WASI call fails the guest (proc_exit with 126 or more), as wasmtime does
  2    bad input or heapscope's own error (the message says which); a module that
       cannot be instantiated (an unknown import, a type clash) is this, not a trap; also
       a trace `run` wrote that does not read back whole, an output path naming an input
       or another output, a --session that is not a regular file
  3    not decided: the trace is cut short, damaged or has a block out of sequence, or
       could not be written; the summary is partial (a session cut short, without its end
       or with one it contradicts); the run ended in the module's start function; or a gated
       run recorded no heap event; no gate passes on such a record
  130  `run`: interrupted (Ctrl-C, SIGTERM); trace and summary kept up to then
  134  `run`: the guest trapped, hit --memory-limit, or ran out of time or fuel (as
       wasmtime exits on a trap)";

/// Memory profiler and leak detector for WebAssembly.
///
/// Instrument a module, run it under wasmtime recording every heap event
/// with its call stack, then read the trace: leaks, summary, top sites,
/// flamegraphs, a timeline, an HTML report, diffs and exports.
#[derive(Parser, Debug)]
#[command(name = "heapscope", version, after_help = EXIT_STATUS)]
struct Cli {
    /// More logging on stderr (-v: heapscope's steps, -vv: their details
    /// and its dependencies' notes, -vvv: everything); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Instrument(cmd::instrument::Opts),
    Run(Box<cmd::run::Opts>),
    Runner(Box<cmd::runner::Opts>),
    Leaks(cmd::leaks::Opts),
    Summary(cmd::summary::Opts),
    Top(cmd::top::Opts),
    Flamegraph(cmd::flamegraph::Opts),
    Timeline(cmd::timeline::Opts),
    Report(cmd::report::Opts),
    Diff(cmd::diff::Opts),
    Export(cmd::export::Opts),
    Dump(cmd::dump::Opts),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(argv()) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // walrus warns about harmless name-section quirks of many toolchains;
    // those are not the user's problem unless they ask for detail.
    // -v: heapscope's own steps; -vv: its details and its dependencies'
    // notes; -vvv: everything.
    const OURS: [&str; 5] = [
        "heapscope",
        "heapscope_collector",
        "heapscope_instrument",
        "heapscope_viewer",
        "heapscope_trace",
    ];
    let ours = |level: &str| {
        OURS.iter()
            .map(|c| format!(",{c}={level}"))
            .collect::<String>()
    };
    let default = match cli.verbose {
        0 => "warn,walrus=error".to_string(),
        1 => format!("warn,walrus=error{}", ours("info")),
        2 => format!("info,walrus=warn{}", ours("debug")),
        _ => "trace".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = io::IsTerminal::is_terminal(&io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .event_format(PlainLines { ours: &OURS })
        .init();

    let result = match cli.command {
        Command::Instrument(o) => o.run(),
        Command::Run(o) => o.run(),
        Command::Runner(o) => o.run(),
        Command::Leaks(o) => o.run(),
        Command::Summary(o) => o.run(),
        Command::Top(o) => o.run(),
        Command::Flamegraph(o) => o.run(),
        Command::Timeline(o) => o.run(),
        Command::Report(o) => o.run(),
        Command::Diff(o) => o.run(),
        Command::Export(o) => o.run(),
        Command::Dump(o) => o.run(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "{}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// Log lines as heapscope's other lines on stderr: `heapscope: ` and the
/// message, `warning: ` or `error: ` before it at those levels, the crate's
/// name before a dependency's; no timestamp, no level column.
struct PlainLines {
    ours: &'static [&'static str],
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PlainLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(writer, "heapscope: ")?;
        match *meta.level() {
            tracing::Level::ERROR => write!(writer, "error: ")?,
            tracing::Level::WARN => write!(writer, "warning: ")?,
            _ => {}
        }
        let krate = meta.target().split("::").next().unwrap_or_default();
        if !self.ours.contains(&krate) {
            write!(writer, "{}: ", meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The command line, with `runner`'s guest words escaped: every word after
/// its module is the guest's (`cmd::runner`).
fn argv() -> Vec<std::ffi::OsString> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The subcommand is the first word that is not a flag: heapscope's
    // global flags take no value.
    let Some(at) = argv
        .iter()
        .skip(1)
        .position(|w| !w.to_string_lossy().starts_with('-'))
        .map(|p| p + 1)
    else {
        return argv;
    };
    if argv[at] != "runner" {
        return argv;
    }
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand("runner") {
        Some(runner) => cmd::runner::guest_words_after_module(runner, argv, at + 1),
        None => argv,
    }
}

/// An error and its causes, each said once: `error: A: B` on one line when
/// short, else one `caused by:` line per cause. A cause whose text an
/// earlier message already contains (a context that quoted its source) is
/// left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        // Messages quote names from the module and paths: no raw escape
        // sequence reaches the terminal, the message's own lines stay.
        let text = heapscope_viewer::escape::terminal_lines(&c.to_string()).into_owned();
        if parts.iter().any(|p| p.contains(text.trim())) {
            continue;
        }
        parts.push(text);
    }
    let one_line = parts.iter().all(|p| !p.contains('\n'));
    if one_line && parts.iter().map(String::len).sum::<usize>() < 240 {
        return format!("error: {}", parts.join(": "));
    }
    let mut out = format!("error: {}", parts[0]);
    for p in &parts[1..] {
        let mut lines = p.lines();
        out.push_str(&format!(
            "\n  caused by: {}",
            lines.next().unwrap_or_default()
        ));
        for l in lines {
            out.push_str(&format!("\n    {l}"));
        }
    }
    out
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
