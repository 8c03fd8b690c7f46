//! `heapscope run`

use anyhow::Context;
use heapscope_collector::{ActorConfig, ExtismRun, Gates, RunConfig, RunOutcome, StackMode};
use heapscope_instrument::AllocOverride;
use heapscope_trace::format::LeakKind;
use heapscope_trace::format::RunStatus;
use heapscope_trace::gates;
use heapscope_trace::HeapModel;
use heapscope_viewer::text;
use std::path::PathBuf;

/// Run a WASI command, an exported function or an Extism plugin (an actor,
/// once per message) under wasmtime and record every heap event.
///
/// Instruments the module in memory when it is not instrumented yet. The
/// guest's stdin, stdout and stderr are the terminal's; heapscope's own
/// lines go to stderr, prefixed `heapscope:`.
#[derive(clap::Args, Debug)]
#[command(
    args_override_self = true,
    after_help = "Examples, actors, the exit status and the run status: heapscope run --help",
    after_long_help = "\
Examples:
  heapscope run app.wasm -- input.txt --verbose
  heapscope run app.wasm --trace app.trace --summary-json summary.json
  heapscope run app.wasm --dir ./data::/data --env LANG=C --memory-limit 64MiB --timeout 30s
  heapscope run lib.wasm --invoke process --repeat 1000 -- 42
  heapscope run plugin.wasm --extism process --messages msgs.jsonl --outputs out.jsonl
  heapscope run --actor actor.json --messages msgs.jsonl --max-growth 0
  heapscope run app.wasm --node app.mjs -- ARGS      (the app's own JS glue, in Node 22+)
  heapscope run app.wasm --session page.hss          (a session js/browser.mjs saved)
  heapscope run --plain app.component.wasm -- ARGS   (a WASI 0.2 component, as wasmtime run runs it)
  heapscope run --plain lib.component.wasm --invoke 'keep(\"abc\")' --repeat 100

Components (WASI 0.2): a command's wasi:cli/run, or --invoke 'NAME(ARGS)' with its arguments and
results in WAVE syntax, as `wasmtime run` runs them. heapscope cannot instrument the core modules
inside a component yet: without --plain it runs one without hooks and says that nothing of its heap
was seen (no trace, a partial summary: the record is not whole).

Actors (Extism plugins): --extism FUNCTION calls FUNCTION once per line of --messages (or
once with the whole --input file) in one instance, as an Extism host does; --actor reads
the function, config and memory limit (default 16 MiB, at most 100 MiB) from a component
config file. After a warm-up (--warmup, default a tenth of the messages) live heap is fitted
against the invocation number: the summary's `growth` gives bytes and pages per invocation,
the fit's r2, and the stacks the growth comes from.

Snapshots: --snapshot-at invocation:1000,invocation:4000 and --snapshot-every N write the heap
graph (every live block, what holds it) to the trace after those invocations, labelled
invocation:N; the run's last graph is labelled exit, and an Extism call that traps takes one
labelled trap. A guest can ask for one itself by importing
  (import \"heapscope\" \"snapshot\" (func (param i32 i32)))
and calling it with a label's address and length in memory 0 (UTF-8, at most 256 bytes):
labelled guest:LABEL (a label out of bounds, longer or not UTF-8 counts as an invalid hook
call; --plain links it as a no-op). Read them with heapscope leaks TRACE --between A B and
heapscope diff TRACE#A TRACE#B (docs/snapshots.md).

Exit status (the same contract as `heapscope --help`):
  N    the guest's own exit code when it exits, 0 to 125 (as with the wasmtime CLI); for
       --node and --session, the code the session's end record gives, 0 to 255
  1    a gate failed (--fail-on-leak, --max-peak, --max-leaked, --max-allocs, --max-growth,
       --fail-on-invalid-free; --gate-exit-code chooses another code); one line per failed
       gate on stderr, and the summary's `gates` say which. Also the guest's own exit 1, and
       a WASI call that failed the run (proc_exit with 126 or more), as wasmtime exits 1
  2    heapscope could not run the module: bad input, an unreadable file, an import or
       type it cannot satisfy (status `error`, not a trap); also an output path that names
       an input or another output, a --session that is not a regular file, and a trace
       heapscope wrote that does not read back whole (no gate is checked on it)
  3    the record is not whole: the trace could not be written; the summary is partial (a
       session cut inside a record, without its end record, or whose end record
       contradicts it: records after it, an exit code outside 0 to 255); a component run
       without --plain (nothing of its heap was seen); the module
       ended in its start function (nothing to scan); gates were asked for and the run
       recorded no heap event at all, or the messages file is empty; --max-growth was
       given and too few invocations (under 10 after the warm-up) ran to fit growth, and no
       other gate failed; a --node run
       interrupted (Node is stopped, its session is partial); no gate is passed (whatever
       the guest or the gates said)
  130  interrupted (Ctrl-C, SIGTERM); the trace and summary are complete up to then
  134  the guest trapped, hit --memory-limit or ran out of time or fuel (as wasmtime exits
       on a trap); the summary's `status` says which
A failed gate's code wins over 134 when both apply (the status still says how it ended).

Run status (the summary's `status`): exited, trapped, memory_limit, timeout (--timeout
or --fuel), interrupted, error (heapscope could not run it)."
)]
pub struct Opts {
    /// The module to run (instrumented or not); with --actor, the config's.
    #[arg(required_unless_present = "actor")]
    module: Option<PathBuf>,
    /// Arguments passed to the guest.
    ///
    /// Words that start with `-` are heapscope's until `--`: put the guest's flags after it (`run app.wasm
    /// --fail-on-leak -- -v in.txt`), so a mistyped heapscope flag is an
    /// error rather than an argument the guest gets and a gate that never
    /// runs.
    #[arg(trailing_var_arg = true, value_name = "ARGS")]
    args: Vec<String>,
    /// Where to write the trace.
    #[arg(
        help_heading = "Output",
        long,
        value_name = "FILE",
        default_value = "heapscope.trace"
    )]
    trace: PathBuf,
    /// Record no trace, only the summary.
    #[arg(help_heading = "Output", long, conflicts_with = "trace")]
    no_trace: bool,
    /// Write the run summary as JSON to FILE (also when the run fails).
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// argv[0] for the guest (default: the module's file name, as wasmtime passes it).
    #[arg(help_heading = "Running", long)]
    argv0: Option<String>,
    /// Set an environment variable for the guest. Repeatable.
    #[arg(help_heading = "Running", long, value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Preopen a host directory, as GUEST in the guest (default: the same path). Repeatable.
    #[arg(help_heading = "Running", long, value_name = "HOST[::GUEST]", value_parser = parse_dir)]
    dir: Vec<(PathBuf, String)>,
    /// Largest size any of the guest's linear memories may grow to (e.g.
    /// 16MiB).
    ///
    /// heapscope's own shadow memory is not counted; the run ends with
    /// status `memory_limit` when the guest needs more.
    #[arg(help_heading = "Running", long, value_name = "SIZE", value_parser = super::parse_size)]
    memory_limit: Option<u64>,
    /// Stop the guest after this long (e.g. 30s, at least 1ms); status
    /// `timeout`.
    #[arg(help_heading = "Running", long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<std::time::Duration>,
    /// Stop the guest after about N wasm instructions; status `timeout`.
    #[arg(help_heading = "Running", long, value_name = "N")]
    fuel: Option<u64>,
    /// Name an allocator function (see `heapscope instrument --help`). Repeatable.
    #[arg(
        help_heading = "Instrumenting",
        long = "alloc-fn",
        value_name = "ROLE=NAME|INDEX"
    )]
    alloc_fns: Vec<AllocOverride>,
    /// The app's JavaScript glue, for the roles of exports no name tells.
    ///
    /// See `heapscope instrument --help`. With --node and without it,
    /// the JS files in the module's folder that call its exports are read.
    #[arg(help_heading = "Instrumenting", long, value_name = "FILE")]
    glue: Option<PathBuf>,
    /// Compile with Winch, wasmtime's baseline compiler, instead of
    /// Cranelift.
    ///
    /// As `wasmtime run -C compiler=winch`: about three times
    /// faster to compile and slower to run, for a first run of a big module
    /// that does little (the module cache makes later runs cheap anyway).
    #[arg(help_heading = "Running", long, conflicts_with_all = ["node", "session"])]
    winch: bool,
    /// Run the module as it is, with no hooks: the baseline for comparisons.
    #[arg(help_heading = "Running", long)]
    plain: bool,
    /// Show a trap's and an invalid free's whole stack.
    ///
    /// The panic machinery and library frames above the first frame of the program,
    /// and the runtime's frames below `main`, which are folded by default.
    #[arg(help_heading = "Output", long)]
    full_stacks: bool,
    /// Instrument and compile afresh, and store nothing in the cache.
    ///
    /// Even when a run of the same module with the same options left it
    /// compiled in the cache (`$HEAPSCOPE_CACHE_DIR`, else `~/.cache/heapscope`; at most
    /// `$HEAPSCOPE_CACHE_MAX_MB`, default 1024, least recently used entries
    /// go first).
    #[arg(help_heading = "Running", long)]
    no_cache: bool,
    /// Call this exported function instead of `_start`.
    ///
    /// ARGS are its arguments, and its results are printed one per line, as `wasmtime
    /// run --invoke` does. For a component (WASI 0.2), NAME is the call in WAVE syntax,
    /// `--invoke 'greet("world", 3)'`, as `wasmtime run --invoke` takes it: ARGS are then
    /// the guest's arguments, and the results are printed as wasmtime prints them.
    #[arg(help_heading = "Running", long, value_name = "NAME")]
    invoke: Option<String>,
    /// Call the `--invoke` export N times in one instance.
    #[arg(help_heading = "Running", long, value_name = "N", default_value_t = 1, requires = "invoke", value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// Run an Extism plugin: call its FUNCTION once per message (see --input,
    /// --messages), with Extism's host functions defined.
    #[arg(
        help_heading = "Extism plugins and actors",
        long,
        value_name = "FUNCTION",
        conflicts_with = "invoke"
    )]
    extism: Option<String>,
    /// Run an actor as its host would, from a component config file.
    ///
    /// Module, function, config and memory limit from the file (JSON:
    /// component, module, function, config, metadata.memory_limit_mb).
    #[arg(help_heading = "Extism plugins and actors", long, value_name = "FILE", conflicts_with_all = ["invoke", "module"])]
    actor: Option<PathBuf>,
    /// One Extism call with this file's bytes as input.
    #[arg(
        help_heading = "Extism plugins and actors",
        long,
        value_name = "FILE",
        conflicts_with = "messages"
    )]
    input: Option<PathBuf>,
    /// One Extism call per non-empty line of this file (JSON Lines).
    #[arg(help_heading = "Extism plugins and actors", long, value_name = "FILE")]
    messages: Option<PathBuf>,
    /// A plugin config value (what the PDK's `config::get` reads). Repeatable.
    #[arg(help_heading = "Extism plugins and actors", long = "config", value_name = "KEY=VALUE", value_parser = parse_env)]
    config: Vec<(String, String)>,
    /// Write each call's output or error to FILE, one JSON object per line.
    ///
    /// {"index":N,"output":TEXT}, {"index":N,"output_hex":HEX} or {"index":N,"error":MESSAGE}.
    #[arg(help_heading = "Extism plugins and actors", long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// Show the plugin's log lines of LEVEL and above (trace, debug, info,
    /// warn, error) on stderr; off by default, as in Extism.
    #[arg(help_heading = "Extism plugins and actors", long, value_name = "LEVEL")]
    log_level: Option<heapscope_collector::extism::LogLevel>,
    /// Invocations the growth fit leaves out at the start (default: a tenth
    /// of them).
    #[arg(help_heading = "Extism plugins and actors", long, value_name = "N")]
    warmup: Option<u64>,
    /// Take a heap graph after these invocations complete (actor and
    /// --invoke --repeat runs): invocation:N, comma-separated.
    ///
    /// Each is written to the trace labelled `invocation:N`, for `heapscope
    /// leaks TRACE --between invocation:1000 exit` (the blocks born after
    /// it, still live at exit, by retainer) and `heapscope diff
    /// TRACE#invocation:1000 TRACE#exit`.
    #[arg(help_heading = "Snapshots", long, value_name = "invocation:N,...", value_parser = parse_snapshot_at)]
    snapshot_at: Vec<Vec<u64>>,
    /// Take a heap graph after every N invocations (labelled invocation:N,
    /// invocation:2N, ...).
    #[arg(help_heading = "Snapshots", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: Option<u64>,
    /// Suppression file for blocks live at exit that are not leaks.
    /// Repeatable.
    ///
    /// Valgrind's format: `{ name, Memcheck:Leak, fun:..., ... }`.
    #[arg(
        help_heading = "Leaks and gates",
        long = "suppressions",
        value_name = "FILE"
    )]
    suppressions: Vec<PathBuf>,
    /// Do not apply the built-in suppressions (wasi-libc's argv, environment
    /// and preopen tables, which it allocates once and never frees).
    #[arg(help_heading = "Leaks and gates", long)]
    no_default_suppressions: bool,
    /// Fail when blocks live at exit are definitely lost (=possible: also
    /// possibly lost; =reachable: any).
    ///
    /// Suppressed blocks never count. The same rule as `heapscope leaks --fail-on-leak`.
    #[arg(help_heading = "Leaks and gates", long, value_name = "KIND", num_args = 0..=1, require_equals = true, default_missing_value = "definite", value_parser = parse_kind)]
    fail_on_leak: Option<LeakKind>,
    /// Fail when live heap bytes peak above SIZE.
    #[arg(help_heading = "Leaks and gates", long, value_name = "SIZE", value_parser = super::parse_size)]
    max_peak: Option<u64>,
    /// Fail when more than SIZE bytes are definitely, indirectly or possibly lost.
    #[arg(help_heading = "Leaks and gates", long, value_name = "SIZE", value_parser = super::parse_size)]
    max_leaked: Option<u64>,
    /// Fail when more than N blocks are allocated in all.
    #[arg(help_heading = "Leaks and gates", long, value_name = "N")]
    max_allocs: Option<u64>,
    /// Fail when live heap grows by more than BYTES per invocation after
    /// the warm-up.
    ///
    /// Not checked (undecided, with a note) when fewer than 10
    /// invocations were fitted after the warm-up: too few to tell.
    #[arg(help_heading = "Leaks and gates", long, value_name = "BYTES")]
    max_growth: Option<u64>,
    /// Fail when the run made invalid frees (double frees, frees of
    /// pointers that cannot be a block).
    ///
    /// Frees of blocks heapscope did not
    /// see allocated never count; the gate says how many it left out.
    #[arg(help_heading = "Leaks and gates", long)]
    fail_on_invalid_free: bool,
    /// How hooks learn call stacks: `shadow` (the instrumented module's
    /// shadow stack, the default) or `backtrace` (a host-side stack walk per
    /// event, far slower: the benchmarks' reference).
    #[arg(help_heading = "Instrumenting", long, value_name = "MODE", default_value = "shadow", value_parser = ["shadow", "backtrace"], hide = true)]
    stack_mode: String,
    #[command(flatten, next_help_heading = "Leaks and gates")]
    gate_exit: super::GateExit,
    #[command(flatten, next_help_heading = "Leaks and gates")]
    ci: super::CiOutput,
    /// Run this Node script instead (ARGS are its arguments), with
    /// heapscope's JavaScript collector loaded first.
    ///
    /// When the script's
    /// own glue (emscripten's, wasm-bindgen's, @extism/extism, node:wasi)
    /// compiles MODULE, the module instrumented here runs in its place and
    /// is recorded. Needs Node 22 or newer (multi-memory). With --extism
    /// FUNCTION or --invoke FUNCTION, each call of that export from
    /// JavaScript is an invocation, for the growth fit. The session is
    /// written as it goes: Node killed by any signal leaves what it held,
    /// recorded as partial; Ctrl-C or SIGTERM to heapscope is
    /// passed to Node as SIGTERM (a second one kills it).
    #[arg(help_heading = "JavaScript hosts", long, value_name = "SCRIPT", conflicts_with_all = ["plain", "actor", "messages", "input", "repeat"])]
    node: Option<PathBuf>,
    /// The `node` executable for --node (default: $HEAPSCOPE_NODE, else
    /// `node` on PATH).
    #[arg(
        help_heading = "JavaScript hosts",
        long,
        value_name = "PATH",
        requires = "node"
    )]
    node_bin: Option<PathBuf>,
    /// Record a session the JavaScript collector wrote for MODULE instead of
    /// running it.
    ///
    /// In a browser with js/browser.mjs, or in Node with `HEAPSCOPE_SESSION=FILE
    /// node --import ./js/register.mjs app.mjs`, both in heapscope's
    /// repository. With --node, keep the session in FILE.
    #[arg(help_heading = "JavaScript hosts", long, value_name = "FILE", conflicts_with_all = ["plain", "actor", "messages", "input", "repeat"])]
    session: Option<PathBuf>,
    /// Print nothing of heapscope's own on success.
    #[arg(help_heading = "Output", short, long)]
    quiet: bool,
    /// Set by `runner`: a failed gate's lines are followed by what failed
    /// it (the leaks and the functions that allocated them, the growth
    /// sites: the text of `--junit`), as a failed test says why, since
    /// cargo's output is all there is to read.
    #[arg(skip)]
    pub(super) explain_failed_gates: bool,
}

fn parse_snapshot_at(s: &str) -> Result<Vec<u64>, String> {
    heapscope_collector::SnapshotPlan::parse_at(s)
}

/// Parse a `--fail-on-leak` kind (`run` and `leaks` share it).
pub fn parse_kind(s: &str) -> Result<LeakKind, String> {
    match s {
        "definite" => Ok(LeakKind::Definite),
        "possible" => Ok(LeakKind::Possible),
        "reachable" => Ok(LeakKind::Reachable),
        _ => Err(format!(
            "`{s}` is not a leak kind: use definite, possible or reachable"
        )),
    }
}

/// The shortest `--timeout`: shorter ones stop a guest before it starts,
/// and the leak scan at exit, which shares the deadline, would never run.
pub const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1);

/// Parse `--timeout`: a duration of at least [`MIN_TIMEOUT`].
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = super::parse_duration(s)?;
    if d < MIN_TIMEOUT {
        return Err(format!(
            "`{s}` is shorter than the shortest timeout, 1ms: the guest would be stopped before it starts"
        ));
    }
    Ok(d)
}

/// What a path names, to tell whether two paths name one file: an
/// existing regular file by its device and inode (so links and hard links
/// are seen through); a path that does not exist yet by its folder, links
/// resolved, and its file name. `None` for what no write can overwrite as a
/// file: `-` (stdout), a device, a FIFO.
fn identity(p: &std::path::Path) -> Option<(u64, u64, PathBuf)> {
    if p.as_os_str() == "-" {
        return None;
    }
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => None,
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            Some((m.dev(), m.ino(), PathBuf::new()))
        }
        Err(_) => {
            let parent = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let parent = std::fs::canonicalize(parent).or_else(|_| std::path::absolute(parent));
            let name = p.file_name().map(PathBuf::from).unwrap_or_default();
            Some((0, 0, parent.ok()?.join(name)))
        }
    }
}

/// Refuse, before anything is read or written, an output path that names
/// an input or another output: heapscope would overwrite the one with the
/// other. Each path comes with what names it (`--junit`, `the module`).
pub fn check_outputs(
    inputs: &[(&str, &std::path::Path)],
    outputs: &[(&str, &std::path::Path)],
) -> anyhow::Result<()> {
    for (i, (flag, out)) in outputs.iter().enumerate() {
        let Some(id) = identity(out) else { continue };
        let named = inputs
            .iter()
            .map(|(f, p)| (f, p, "heapscope would overwrite it"));
        let earlier = outputs[..i]
            .iter()
            .map(|(f, p)| (f, p, "one would replace the other"));
        for (other, path, what) in named.chain(earlier) {
            if identity(path).as_ref() == Some(&id) {
                anyhow::bail!(
                    "{flag} `{}` names the same file as {other} `{}`: {what}; name another file",
                    out.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The files a gating command's CI report is written to: `--junit`, and
/// `$GITHUB_STEP_SUMMARY` when it is set.
pub fn ci_outputs(ci: &super::CiOutput) -> Vec<(&'static str, PathBuf)> {
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let junit = ci.junit.clone().map(|p| ("--junit", p));
    junit
        .into_iter()
        .chain(step_summary.map(|p| ("GITHUB_STEP_SUMMARY", p)))
        .collect()
}

/// Whether `a` and `b` name one existing file (through links and `..`).
pub fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The JS glue that calls `module`'s exports as allocators (only for a
/// module that is not instrumented already): one in the module's folder,
/// else one the app `script` would load that carries the module inside
/// itself as base64 (the module file is then a copy taken out of it).
fn glue_of(
    module: &std::path::Path,
    script: &std::path::Path,
) -> Option<heapscope_instrument::glue::Glue> {
    let bytes = std::fs::read(module).ok()?;
    if heapscope_instrument::is_instrumented(&bytes) {
        return None;
    }
    let exports = heapscope_instrument::glue::function_exports(&bytes);
    heapscope_instrument::glue::find_beside(module, &exports)
        .or_else(|| heapscope_instrument::glue::find_embedding(&bytes, script, &exports))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

fn parse_dir(s: &str) -> Result<(PathBuf, String), String> {
    match s.split_once("::") {
        Some((h, g)) if !h.is_empty() && !g.is_empty() => Ok((h.into(), g.into())),
        Some(_) => Err(format!("expected HOST[::GUEST], got `{s}`")),
        None => Ok((s.into(), s.into())),
    }
}

impl Opts {
    /// The collector configuration these options describe (reading the
    /// actor config and message files they name).
    pub fn config(&self) -> anyhow::Result<RunConfig> {
        let actor = match &self.actor {
            Some(p) => Some(ActorConfig::load(p).map_err(anyhow::Error::msg)?),
            None => None,
        };
        if let Some(a) = &actor {
            for w in &a.warnings {
                eprintln!("heapscope: warning: {w}");
            }
        }
        let js = self.node.is_some() || self.session.is_some();
        // In a JavaScript host, the app makes the calls: --extism and
        // --invoke name the export whose calls are invocations.
        let function = if js {
            None
        } else {
            self.extism
                .clone()
                .or_else(|| actor.as_ref().map(|a| a.function.clone()))
        };
        let extism = match &function {
            None => {
                if let Some(o) = [
                    ("--input", self.input.is_some()),
                    ("--messages", self.messages.is_some()),
                    ("--outputs", self.outputs.is_some()),
                    ("--config", !self.config.is_empty()),
                ]
                .iter()
                .find(|o| o.1)
                {
                    anyhow::bail!(
                        "{} is for Extism plugins: add --extism FUNCTION or --actor FILE",
                        o.0
                    );
                }
                None
            }
            Some(function) => {
                let messages = match (&self.input, &self.messages) {
                    (Some(p), _) => vec![std::fs::read(p)
                        .with_context(|| format!("cannot read input `{}`", p.display()))?],
                    (None, Some(p)) => {
                        let m = heapscope_collector::extism::read_messages(p).with_context(
                            || format!("cannot read messages `{}`", p.display()),
                        )?;
                        if m.is_empty() {
                            // Never quiet: an empty file is most likely a mistake.
                            eprintln!(
                                "heapscope: warning: `{}` holds no messages: `{function}` is never called, and no gate is checked",
                                p.display()
                            );
                        }
                        m
                    }
                    (None, None) => anyhow::bail!(
                        "an Extism run needs its inputs: --input FILE (one call) or --messages FILE.jsonl (one call per line)"
                    ),
                };
                let mut config = actor.as_ref().map(|a| a.config.clone()).unwrap_or_default();
                config.extend(self.config.iter().cloned());
                Some(ExtismRun {
                    function: function.clone(),
                    messages,
                    config,
                    outputs: self.outputs.clone(),
                    log_level: self.log_level,
                })
            }
        };
        let module = match (&self.module, &actor) {
            (Some(m), _) => m.clone(),
            (None, Some(a)) => a.module.clone(),
            (None, None) => anyhow::bail!("no module to run"),
        };
        let mut inputs: Vec<(&str, &std::path::Path)> = vec![("the module", &module)];
        let mut outputs: Vec<(&str, &std::path::Path)> = Vec::new();
        if !self.no_trace && !self.plain {
            outputs.push(("--trace", &self.trace));
        }
        let session_in = self.session.as_ref().filter(|_| self.node.is_none());
        let session_kept = self.session.as_ref().filter(|_| self.node.is_some());
        for (flag, path) in [
            ("--actor", self.actor.as_ref()),
            ("--input", self.input.as_ref()),
            ("--messages", self.messages.as_ref()),
            ("--node", self.node.as_ref()),
            ("--node-bin", self.node_bin.as_ref()),
            ("--glue", self.glue.as_ref()),
            ("--session", session_in),
        ] {
            inputs.extend(path.map(|p| (flag, p.as_path())));
        }
        for (flag, path) in [
            ("--summary-json", self.summary_json.as_ref()),
            ("--outputs", self.outputs.as_ref()),
            // With --node, the session is kept there: an output.
            ("--session", session_kept),
        ] {
            outputs.extend(path.map(|p| (flag, p.as_path())));
        }
        inputs.extend(
            self.suppressions
                .iter()
                .map(|p| ("--suppressions", p.as_path())),
        );
        let ci = ci_outputs(&self.ci);
        outputs.extend(ci.iter().map(|(f, p)| (*f, p.as_path())));
        check_outputs(&inputs, &outputs)?;
        let snapshots = self.snapshot_plan(js, extism.as_ref())?;
        Ok(RunConfig {
            extism,
            warmup: self.warmup,
            snapshots,
            module,
            args: self.args.clone(),
            argv0: self.argv0.clone(),
            env: self.env.clone(),
            dirs: self.dir.clone(),
            trace: (!self.no_trace && !self.plain).then(|| self.trace.clone()),
            memory_limit: self.memory_limit.or(actor.as_ref().map(|a| a.memory_limit)),
            timeout: self.timeout,
            fuel: self.fuel,
            winch: self.winch,
            alloc_fns: self.alloc_fns.clone(),
            glue: match &self.glue {
                Some(p) => Some(super::instrument::read_glue(p)?),
                None => None,
            },
            plain: self.plain,
            cache: if self.no_cache {
                None
            } else {
                heapscope_collector::Cache::from_env()
            },
            invoke: if js { None } else { self.invoke.clone() },
            repeat: self.repeat,
            suppressions: self.suppressions.clone(),
            default_suppressions: !self.no_default_suppressions,
            interrupt: None,
            stack_mode: if self.stack_mode == "backtrace" {
                StackMode::Backtrace
            } else {
                StackMode::Shadow
            },
            progress: !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            gates: Gates {
                fail_on_leak: self.fail_on_leak,
                max_peak: self.max_peak,
                max_leaked: self.max_leaked,
                max_allocs: self.max_allocs,
                max_growth: self.max_growth,
                fail_on_invalid_free: self.fail_on_invalid_free,
            },
        })
    }

    /// `--snapshot-at` and `--snapshot-every`, checked against the run:
    /// only runs of invocations take them, and a point past the last
    /// invocation would never be reached.
    fn snapshot_plan(
        &self,
        js: bool,
        extism: Option<&ExtismRun>,
    ) -> anyhow::Result<heapscope_collector::SnapshotPlan> {
        let mut at: Vec<u64> = self.snapshot_at.iter().flatten().copied().collect();
        at.sort_unstable();
        at.dedup();
        let plan = heapscope_collector::SnapshotPlan {
            at,
            every: self.snapshot_every,
        };
        if plan.is_empty() {
            return Ok(plan);
        }
        let flag = if self.snapshot_at.is_empty() {
            "--snapshot-every"
        } else {
            "--snapshot-at"
        };
        if self.plain {
            anyhow::bail!("{flag} needs the hooks: a --plain run records nothing to snapshot");
        }
        if js {
            anyhow::bail!(
                "{flag} is for runs heapscope makes the calls of (--extism, --actor, --invoke): with --node or --session the app makes them"
            );
        }
        let planned = match (extism, &self.invoke) {
            (Some(x), _) => x.messages.len() as u64,
            (None, Some(_)) => self.repeat,
            (None, None) => anyhow::bail!(
                "{flag} takes snapshots after invocations: add --invoke NAME --repeat N, --extism FUNCTION or --actor FILE (a command's guest can ask for one itself: the heapscope.snapshot import, see --help)"
            ),
        };
        let beyond = plan.beyond(planned);
        if !beyond.is_empty() {
            let points: Vec<String> = beyond.iter().map(|n| format!("invocation:{n}")).collect();
            anyhow::bail!(
                "--snapshot-at {}: the run makes only {planned} invocation(s), so it would never be taken",
                points.join(",")
            );
        }
        Ok(plan)
    }

    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let mut cfg = self.config()?;
        // Ctrl-C or SIGTERM stops the guest; the trace and summary are
        // finished as for any other end of the run.
        let interrupt = heapscope_collector::Interrupt::new();
        let handle = interrupt.clone();
        // A `--plain` run's guest stops at its next call to the host; a
        // second Ctrl-C ends one that makes none (there is no trace).
        let handler = move || {
            match (handle.trigger(), handle.stops_at_host_calls()) {
            (_, false) => {}
            (1, true) => eprintln!(
                "heapscope: interrupted: the guest stops at its next call to the host; press Ctrl-C again to stop it now"
            ),
            (_, true) => {
                eprintln!("heapscope: interrupted again: stopped at once");
                std::process::exit(130);
            }
        }
        };
        if ctrlc::set_handler(handler).is_ok() {
            cfg.interrupt = Some(interrupt);
        }
        let outcome = match (&self.node, &self.session) {
            (Some(script), keep) => {
                // The roles it gives are a note of the run's summary.
                if cfg.glue.is_none() && !self.plain {
                    cfg.glue = glue_of(&cfg.module, script);
                }
                let node = heapscope_collector::session::NodeRun {
                    script: script.clone(),
                    args: cfg.args.clone(),
                    node: self
                        .node_bin
                        .clone()
                        .or_else(|| std::env::var_os("HEAPSCOPE_NODE").map(PathBuf::from))
                        .unwrap_or_else(|| PathBuf::from("node")),
                    invocations: self.extism.iter().chain(&self.invoke).cloned().collect(),
                    extism: self.extism.is_some(),
                    keep_session: keep.clone(),
                };
                heapscope_collector::session::run_node(&cfg, &node)
            }
            (None, Some(session)) => heapscope_collector::session::import(&cfg, session),
            (None, None) => heapscope_collector::run(&cfg),
        };
        // Never quiet: a record that is not whole must not pass for one,
        // in the summary either.
        let mut outcome = outcome;
        let unreadable = outcome
            .as_ref()
            .ok()
            .and_then(|o| o.trace_unreadable.clone());
        // The one verdict (trace::gates): what nothing can be decided of
        // marks every gate not checked, in the summary JSON too.
        let facts = outcome.as_ref().ok().map(|o| run_facts(&cfg, o));
        let undecided = match (&outcome, &facts) {
            (Ok(o), Some(f)) => gates::record_undecided(&o.summary, f),
            _ => None,
        };
        if let (Ok(o), Some(why)) = (&mut outcome, &undecided) {
            gates::mark_not_checked(&mut o.summary.gates, why);
        }
        if let Some(p) = &self.summary_json {
            let summary = match &outcome {
                Ok(o) => o.summary.clone(),
                Err(e) => HeapModel::new().summary(RunStatus::Error, None, &with_causes(e)),
            };
            let json = serde_json::to_string_pretty(&summary)?;
            std::fs::write(p, json + "\n")
                .with_context(|| format!("cannot write `{}`", p.display()))?;
        }
        // Every error of a run names the module already.
        let outcome = outcome?;
        if !outcome.results.is_empty() {
            super::print(
                &outcome
                    .results
                    .iter()
                    .map(|r| format!("{r}\n"))
                    .collect::<String>(),
            )?;
        }
        // A run that saw none of the heap (a component, run without hooks)
        // shows no numbers: the verdict below says why, once.
        let bare = self.quiet || self.plain || outcome.unseen.is_some();
        if !bare {
            eprint!("{}", self.report(&cfg, &outcome));
        } else if outcome.summary.invalid_frees > 0 {
            // Invalid frees are the program's bugs: never silent, as a trap.
            eprint!(
                "heapscope: {}\n{}",
                text::plural(
                    outcome.summary.invalid_frees,
                    "invalid free",
                    "invalid frees"
                ),
                invalid_frees_text(&outcome, self.full_stacks)
            );
        }
        if bare && outcome.summary.status != RunStatus::Exited {
            // A trap, a limit or an interrupt is never silent, -q or --plain.
            let status = heapscope_viewer::facts::facts(
                &format!("`{}`", cfg.module.display()),
                &outcome.summary,
            )
            .into_iter()
            .find(|f| f.kind == heapscope_viewer::facts::Kind::Status)
            .map(|f| f.text)
            .unwrap_or_default();
            eprint!(
                "heapscope: {}\n{}",
                status,
                stack_text(&outcome.summary, self.full_stacks)
            );
        }
        if outcome.leak_scan_cut {
            eprintln!(
                "heapscope: warning: the leak scan at exit did not finish within --timeout: blocks live at exit are not classified (gates count them as definitely lost)"
            );
        }
        let report = heapscope_viewer::ci::GateReport {
            suite: format!("heapscope run {}", cfg.module.display()),
            gates: outcome.summary.gates.clone(),
            undecided: undecided.clone(),
            summary: text::summary_lines(&format!("`{}`", cfg.module.display()), &outcome.summary),
            details: run_details(&outcome),
        };
        self.ci.emit(&report)?;
        let failed = match gates::verdict(&outcome.summary, &facts.unwrap_or_default()) {
            gates::Verdict::Undecided(why) => {
                eprintln!("heapscope: error: {why}");
                return Ok(if unreadable.is_some() {
                    super::EXIT_ERROR
                } else {
                    super::EXIT_UNDECIDED
                });
            }
            gates::Verdict::Fail(lines) => lines,
            gates::Verdict::Pass => Vec::new(),
        };
        // Each failed gate's line, then (for `runner`) what failed it.
        let failed_gates = outcome
            .summary
            .gates
            .iter()
            .filter(|g| !g.passed && g.not_checked.is_none());
        for (line, g) in failed.iter().zip(failed_gates) {
            eprintln!("heapscope: gate failed: {line}");
            if self.explain_failed_gates {
                for line in report.detail(&g.gate).lines() {
                    eprintln!("heapscope:   {line}");
                }
            }
        }
        for line in outcome
            .summary
            .gates
            .iter()
            .filter_map(|g| g.not_checked.as_ref().map(|_| text::gate_message(g)))
        {
            eprintln!("heapscope: {line}");
        }
        for line in text::gate_notes(&outcome.summary.gates) {
            eprintln!("heapscope: {line}");
        }
        if !failed.is_empty() {
            return Ok(self.gate_exit.code);
        }
        Ok(exit_code(&outcome))
    }

    /// What a run prints of its own after the guest: the verdict when it
    /// leaked or grew, how it ended, allocations, peak and live, leaks or
    /// none, warnings and hints, and where the trace is
    /// ([`heapscope_viewer::facts`]'s brief facts; `summary` has the rest).
    fn report(&self, cfg: &RunConfig, o: &RunOutcome) -> String {
        use heapscope_viewer::facts::{self, Kind};
        let s = &o.summary;
        let all = facts::facts(&format!("`{}`", cfg.module.display()), s);
        let mut out = String::new();
        for f in &all {
            // A record that is not whole is the error `run` ends with.
            if f.kind == Kind::Detail || f.key == "partial" {
                continue;
            }
            out.push_str(&format!("heapscope: {}\n", facts::line(f)));
            // Where a trap or a timeout stopped the guest.
            if f.kind == Kind::Status {
                out.push_str(&stack_text(s, self.full_stacks));
            }
            if f.key == "invalid-frees" {
                out.push_str(&invalid_frees_text(o, self.full_stacks));
            }
        }
        if let Some(f) = &o.refused_growth {
            out.push_str(&format!(
                "heapscope: the memory limit refused a growth from {}\n",
                text::user_functions(f)
            ));
        }
        if let (Some(t), None, None) = (&cfg.trace, &o.trace_error, &o.trace_unreadable) {
            let leaked = all.iter().any(|f| f.kind == Kind::Verdict);
            out.push_str(&format!(
                "heapscope: trace written to `{}`; see `heapscope {} {}`\n",
                t.display(),
                if leaked { "leaks" } else { "summary" },
                t.display()
            ));
        }
        out
    }
}

/// What the run knows of its record beyond the summary, for the one gate
/// verdict ([`gates::verdict`]): a trace that failed to write or does not
/// read back whole, a run that ended in its start function, no message,
/// no allocator found.
fn run_facts(cfg: &RunConfig, o: &RunOutcome) -> gates::RunFacts {
    let trace_problem = if let (Some(e), Some(t)) = (&o.trace_unreadable, &cfg.trace) {
        // Exit 2, not 3: heapscope failed to write a readable trace, which
        // says nothing of the guest.
        Some(format!(
            "the trace `{}` does not read back whole ({e}): it is not a record of the run, and no gate is checked on it; please report this as a heapscope bug",
            t.display()
        ))
    } else if let (Some(e), Some(t)) = (&o.trace_error, &cfg.trace) {
        Some(format!(
            "writing the trace `{}` failed ({e}); it holds only the events before",
            t.display()
        ))
    } else {
        None
    };
    gates::RunFacts {
        trace_problem,
        ended_in_start: o.ended_in_start,
        no_allocator: o
            .instrumented
            .as_ref()
            .is_some_and(|r| r.allocators.is_empty()),
        no_messages: cfg.extism.as_ref().is_some_and(|e| e.messages.is_empty()),
    }
}

/// An error and its causes, one after the other (`failed to instrument
/// `x.wasm`: the module has no linear memory...`): the summary's message.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The guest's stack where it stopped (the summary message's lines after
/// the first), as the terminal shows it: the program's frames first, the
/// rest folded unless `full` (see [`heapscope_viewer::trap::stack_lines`]).
fn stack_text(s: &heapscope_trace::model::Summary, full: bool) -> String {
    if !matches!(s.status, RunStatus::Trapped | RunStatus::Timeout) {
        return String::new();
    }
    heapscope_viewer::trap::stack_lines(&s.message, full)
        .iter()
        .map(|l| format!("heapscope: {l}\n"))
        .collect()
}

/// How many invalid frees `run` shows with their stacks; `leaks` shows
/// them all.
const INVALID_FREES_SHOWN: usize = 3;

/// The run's invalid frees as Valgrind reports them (what each was, its
/// stack, where the block was first freed and allocated), the first
/// [`INVALID_FREES_SHOWN`], then how many more `heapscope leaks` shows.
/// A double free or a pointer inside a block in a run that missed
/// allocations is possibly no bug: not shown here (`leaks` shows it as
/// possibly invalid).
fn invalid_frees_text(o: &RunOutcome, full: bool) -> String {
    use heapscope_viewer::analysis::FrameView;
    let frames = |f: &[(String, Option<String>, u32)]| -> Vec<FrameView> {
        f.iter()
            .filter(|(function, _, _)| !heapscope_viewer::analysis::is_wrapper(function))
            .map(|(function, file, line)| FrameView {
                function: heapscope_viewer::analysis::display_name(function, file.as_deref())
                    .into_owned(),
                file: file.clone(),
                line: *line,
            })
            .collect()
    };
    let unseen = o.summary.frees_of_unseen_blocks > 0;
    let counted: Vec<_> = o
        .invalid_frees
        .iter()
        .filter(|f| !(unseen && (f.double_free || f.inside.is_some())))
        .collect();
    let mut text = String::new();
    for (i, f) in counted.iter().take(INVALID_FREES_SHOWN).enumerate() {
        let view = heapscope_viewer::analysis::InvalidFreeView {
            ptr: f.ptr,
            stack: frames(&f.frames),
            allocated_at: f.allocated_at.as_deref().map(frames),
            freed_at: f.freed_at.as_deref().map(frames),
            inside: f
                .inside
                .map(|(start, size)| heapscope_viewer::analysis::InsideBlock {
                    start,
                    size,
                    offset: f.ptr - start,
                }),
            double_free: f.double_free,
            possible: false,
        };
        text::invalid_free(&mut text, i + 1, &view, full);
    }
    let more = o
        .summary
        .invalid_frees
        .saturating_sub(INVALID_FREES_SHOWN as u64);
    if more > 0 {
        text.push_str(&format!(
            "\n... and {} more: `heapscope leaks` shows them all\n",
            text::thousands(more)
        ));
    }
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("heapscope:   {l}\n"))
        .collect()
}

/// The process exit code for a run: the guest's own when it exited (or 1
/// when a WASI call failed the run, as wasmtime exits), 134 (what the
/// wasmtime CLI exits with on a trap) when it trapped or hit a limit, 2
/// when the host failed.
fn exit_code(o: &RunOutcome) -> u8 {
    match (o.summary.status, o.summary.exit_code) {
        (RunStatus::Exited | RunStatus::Trapped, Some(c)) => u8::try_from(c).unwrap_or(1),
        (RunStatus::Error, _) => super::EXIT_ERROR,
        (RunStatus::Interrupted, _) => 130,
        _ => 134,
    }
}

/// What explains a failed gate of a run, by the gate's name: the largest
/// leaks the gate counts (by their functions; never a block of a kind it
/// does not count), the growth sites for --max-growth.
fn run_details(o: &RunOutcome) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in &o.summary.gates {
        let text = if g.gate == "max-growth" {
            let Some(growth) = &o.summary.growth else {
                continue;
            };
            growth
                .sites
                .iter()
                .take(5)
                .map(|site| {
                    format!(
                        "{} bytes per invocation from {}",
                        text::decimal(site.bytes_per_invocation),
                        text::user_functions(&site.functions)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            // The groups' one order (trace::leaks), filtered; groups whose
            // lines would read the same (their first functions of yours
            // alike) are one line, summed.
            let mut lines: Vec<(String, String, u64, u64)> = Vec::new();
            for l in o
                .leaks
                .iter()
                .filter(|l| gates::counts_blocks(&g.gate, l.kind, l.suppressed_by.is_some()))
            {
                let kind = l.kind.map_or("not classified", text::kind_words);
                let by = text::user_functions(&l.frames);
                match lines.iter_mut().find(|(k, f, _, _)| k == kind && *f == by) {
                    Some(line) => {
                        line.2 = line.2.saturating_add(l.bytes);
                        line.3 += l.blocks;
                    }
                    None => lines.push((kind.to_string(), by, l.bytes, l.blocks)),
                }
            }
            lines
                .iter()
                .take(5)
                .map(|(kind, by, bytes, blocks)| {
                    format!(
                        "{} in {} {kind}, allocated by {by}",
                        text::plural(*bytes, "byte", "bytes"),
                        text::plural(*blocks, "block", "blocks"),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        if !text.is_empty() {
            out.push((g.gate.clone(), text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        o: Opts,
    }

    #[test]
    fn options_build_the_collector_config() {
        let t = T::try_parse_from([
            "t",
            "app.wasm",
            "--trace",
            "x.trace",
            "--env",
            "A=1",
            "--dir",
            "data::/d",
            "--memory-limit",
            "16MiB",
            "--",
            "-v",
            "in.txt",
        ])
        .unwrap();
        let c = t.o.config().unwrap();
        assert_eq!(c.module, PathBuf::from("app.wasm"));
        assert!(c.extism.is_none());
        assert_eq!(c.args, ["-v", "in.txt"]);
        assert_eq!(c.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(c.dirs, [(PathBuf::from("data"), "/d".to_string())]);
        assert_eq!(c.trace, Some(PathBuf::from("x.trace")));
        assert_eq!(c.memory_limit, Some(16 << 20));
        let plain = T::try_parse_from(["t", "app.wasm", "--plain"])
            .unwrap()
            .o
            .config()
            .unwrap();
        assert_eq!(plain.trace, None);
        assert!(plain.plain);
    }
}
