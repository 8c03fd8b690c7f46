//! Runs recorded by another host: the JavaScript collector (`js/` in the
//! repository) runs an instrumented module in Node or a browser with the
//! app's own glue, and writes a *session*: the event buffer's bytes as the
//! module wrote them, the synchronous hooks' events, invocations, and at
//! the end a snapshot of memory 0 and the globals. [`import`] replays a
//! session through the same recorder, heap model and leak scan as a run
//! under wasmtime, so the trace and summary are the ones `heapscope run`
//! gives for the same events; names and source lines come from the module
//! here, as for any run.
//!
//! # Encoding
//!
//! All integers little-endian. The file starts with [`MAGIC`] and a version
//! byte ([`VERSION`]); then records, each a tag byte, a `u32` payload
//! length and the payload:
//!
//! | tag | payload |
//! | --- | --- |
//! | [`EVENTS`] | event records as `trace::abi` lays them out (the buffer's bytes, or a synchronous hook's event encoded the same way) |
//! | [`GROW`] | `memory: u32, delta: i64, result: i64` (old size in pages, -1 failed), then the raw shadow stack |
//! | [`INVALID`] | nothing: a hook call with a shadow-stack pointer no instrumented module passes |
//! | [`INVOCATION_START`] | the export's name (UTF-8) |
//! | [`INVOCATION_END`] | `outcome: u8` (0 ok, 1 the plugin's error, 2 threw), `duration_us: u64`, `output: u64` (bytes + 1, 0 unknown), message (UTF-8) |
//! | [`MEMORY`] | `index: u32`, then the memory's bytes at the end |
//! | [`END`] | `status: u8` (0 exited, 1 trapped), `code: i32` (`i32::MIN`: none), `sp_init: u64`, `sp_now: u64` (`u64::MAX`: none), `globals: u32`, that many `u64`, `stack: u32` bytes of the shadow stack where a trap stopped the module (0 when it did not), message (UTF-8) |
//!
//! A session cut short (a killed process) has no [`END`]: its events are
//! still recorded and the summary says the session ended early.

use crate::calls::{self, Invocations};
use crate::config::{Leak, RunConfig, RunError, RunOutcome};
use crate::exit::{self, ScanLayout, Snapshot};
use crate::module::{self, Loaded};
use crate::run;
use heapscope_trace::abi;
use heapscope_trace::format::{InvocationOutcome, Record, RunStatus};
use heapscope_trace::growth::GrowthTracker;

/// The first bytes of a session file.
pub const MAGIC: &[u8; 4] = b"HSJS";
/// The session format's version, after [`MAGIC`].
pub const VERSION: u8 = 1;
/// Record tag: event records.
pub const EVENTS: u8 = 1;
/// Record tag: a `memory.grow`.
pub const GROW: u8 = 2;
/// Record tag: a forged hook call.
pub const INVALID: u8 = 3;
/// Record tag: an invocation starts.
pub const INVOCATION_START: u8 = 4;
/// Record tag: an invocation ended.
pub const INVOCATION_END: u8 = 5;
/// Record tag: a memory's bytes at the end.
pub const MEMORY: u8 = 6;
/// Record tag: how the session ended, with the scan's roots.
pub const END: u8 = 7;

/// One record of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item<'a> {
    Events(&'a [u8]),
    Grow {
        memory: u32,
        delta: i64,
        result: i64,
        stack: &'a [u8],
    },
    Invalid,
    InvocationStart(String),
    InvocationEnd {
        outcome: InvocationOutcome,
        duration_us: u64,
        output_bytes: Option<u64>,
        message: String,
    },
    Memory {
        index: u32,
        bytes: &'a [u8],
    },
    End(End),
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct End {
    trapped: bool,
    code: Option<i32>,
    sp_init: Option<u64>,
    sp_now: Option<u64>,
    globals: Vec<u64>,
    /// The raw shadow stack where a trap stopped the module.
    trap_stack: Vec<u8>,
    message: String,
}

/// Why a session could not be read.
fn malformed(path: &std::path::Path, at: usize, what: &str) -> RunError {
    RunError::Setup {
        path: path.to_path_buf(),
        message: format!("the session is malformed at byte {at:#x}: {what}"),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.at..];
        self.at = self.buf.len();
        s
    }
}

/// The records of a session, and whether it was cut short (bytes after
/// the last whole record).
fn parse<'a>(path: &std::path::Path, data: &'a [u8]) -> Result<(Vec<Item<'a>>, bool), RunError> {
    let Some(rest) = data.strip_prefix(MAGIC.as_slice()) else {
        return Err(malformed(
            path,
            0,
            "it does not start with a heapscope session's magic bytes (is it a session file written by the JavaScript collector?)",
        ));
    };
    match rest.first() {
        Some(&VERSION) => {}
        Some(&v) => {
            return Err(malformed(
                path,
                4,
                &format!("it is version {v}, this heapscope reads version {VERSION}"),
            ))
        }
        None => return Err(malformed(path, 4, "it ends before its version")),
    }
    let mut r = Reader {
        buf: data,
        at: MAGIC.len() + 1,
    };
    let mut items = Vec::new();
    let mut cut = false;
    while r.at < data.len() {
        let start = r.at;
        let (Some(tag), Some(len)) = (r.u8(), r.u32()) else {
            cut = true;
            break;
        };
        let Some(payload) = r.take(len as usize) else {
            cut = true;
            break;
        };
        let mut p = Reader {
            buf: payload,
            at: 0,
        };
        let bad = |what: &str| malformed(path, start, what);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let item = match tag {
            EVENTS => Item::Events(payload),
            GROW => {
                let (Some(memory), Some(delta), Some(result)) = (p.u32(), p.u64(), p.u64()) else {
                    return Err(bad("a growth record is too short"));
                };
                Item::Grow {
                    memory,
                    delta: delta as i64,
                    result: result as i64,
                    stack: p.rest(),
                }
            }
            INVALID => Item::Invalid,
            INVOCATION_START => Item::InvocationStart(text(payload)),
            INVOCATION_END => {
                let (Some(outcome), Some(duration_us), Some(output)) = (p.u8(), p.u64(), p.u64())
                else {
                    return Err(bad("an invocation's end record is too short"));
                };
                Item::InvocationEnd {
                    outcome: match outcome {
                        0 => InvocationOutcome::Ok,
                        1 => InvocationOutcome::PluginError,
                        _ => InvocationOutcome::Trapped,
                    },
                    duration_us,
                    output_bytes: output.checked_sub(1),
                    message: text(p.rest()),
                }
            }
            MEMORY => {
                let Some(index) = p.u32() else {
                    return Err(bad("a memory record is too short"));
                };
                Item::Memory {
                    index,
                    bytes: p.rest(),
                }
            }
            END => {
                let (Some(status), Some(code), Some(sp_init), Some(sp_now), Some(n)) =
                    (p.u8(), p.u32(), p.u64(), p.u64(), p.u32())
                else {
                    return Err(bad("the end record is too short"));
                };
                let mut globals = Vec::with_capacity((n as usize).min(payload.len() / 8));
                for _ in 0..n {
                    globals.push(
                        p.u64()
                            .ok_or_else(|| bad("the end record's globals are cut"))?,
                    );
                }
                let stack_len = p
                    .u32()
                    .ok_or_else(|| bad("the end record's stack is cut"))?;
                let trap_stack = p
                    .take(stack_len as usize)
                    .ok_or_else(|| bad("the end record's stack is cut"))?
                    .to_vec();
                let none = |v: u64| (v != u64::MAX).then_some(v);
                Item::End(End {
                    trap_stack,
                    trapped: status == 1,
                    code: (code as i32 != i32::MIN).then_some(code as i32),
                    sp_init: none(sp_init),
                    sp_now: none(sp_now),
                    globals,
                    message: text(p.rest()),
                })
            }
            other => return Err(bad(&format!("unknown record tag {other}"))),
        };
        items.push(item);
    }
    Ok((items, cut))
}

/// Whether a raw shadow stack is one an instrumented module can pass:
/// whole call-site ids within the shadow stack's region.
fn plausible_stack(raw: &[u8]) -> bool {
    raw.len().is_multiple_of(4) && raw.len() <= abi::EVENT_BASE as usize
}

/// Record the session in `data` (read from `session`) for `cfg.module`,
/// the module the session ran (instrumented, or the original it was
/// instrumented from with the same options): the trace (`cfg.trace`), the
/// leak scan on the session's memory snapshot, the summary and its gates.
pub fn import(
    cfg: &RunConfig,
    session: &std::path::Path,
    data: &[u8],
) -> Result<RunOutcome, RunError> {
    let (items, cut) = parse(session, data)?;
    if items.is_empty() && !cut {
        return Err(RunError::Setup {
            path: cfg.module.clone(),
            message: format!(
                "the session `{}` is empty: the app instantiated no instrumented module while the collector was loaded",
                session.display()
            ),
        });
    }
    let loaded = module::load_only(cfg)?;
    replay(cfg, loaded, &items, cut)
}

fn replay(
    cfg: &RunConfig,
    loaded: Loaded,
    items: &[Item<'_>],
    cut: bool,
) -> Result<RunOutcome, RunError> {
    let rules = run::rules(cfg)?;
    let mut rec = run::recorder(cfg)?;
    let Loaded {
        original,
        instrumented,
        sites,
        symbolizer,
        memories,
        ..
    } = loaded;
    rec.set_sites(sites);
    rec.symbolizer = symbolizer;
    let module_name = cfg
        .module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    rec.write_record(&Record::RunStart {
        module: module_name,
        start_unix_ms: start_ms,
        memories: memories.clone(),
    });
    rec.model.start(&memories);
    let planned = items
        .iter()
        .filter(|i| matches!(i, Item::InvocationStart(_)))
        .count() as u64;
    let mut inv = Invocations::elsewhere(
        cfg.warmup
            .unwrap_or_else(|| GrowthTracker::default_warmup(planned)),
    );
    if planned > 0 {
        rec.write_record(&Record::Warmup(inv.tracker.warmup()));
    }
    let mut open: Option<calls::Before> = None;
    let mut end: Option<&End> = None;
    let mut memory0: Option<&[u8]> = None;
    for item in items {
        match item {
            Item::Events(bytes) => crate::deferred::apply_records(&mut rec, bytes),
            Item::Grow {
                memory,
                delta,
                result,
                stack,
            } => {
                if plausible_stack(stack) {
                    let id = rec.stack(stack);
                    let old = (*result >= 0).then_some(*result as u64);
                    rec.grow(*memory, *delta as u64, old, id);
                } else {
                    rec.invalid_event();
                }
            }
            Item::Invalid => rec.invalid_event(),
            Item::InvocationStart(name) => {
                open = Some(calls::begin(&mut rec, inv.count, name));
            }
            Item::InvocationEnd {
                outcome,
                duration_us,
                output_bytes,
                message,
            } => {
                if let Some(before) = open.take() {
                    calls::end(
                        &mut rec,
                        &mut inv,
                        before,
                        *outcome,
                        message.clone(),
                        *output_bytes,
                        *duration_us,
                    );
                }
            }
            Item::Memory { index: 0, bytes } => memory0 = Some(bytes),
            Item::Memory { .. } => {}
            Item::End(e) => end = Some(e),
        }
        rec.clock();
    }
    let (status, exit_code, message) = match end {
        Some(e) if e.trapped => {
            // Where it stopped, from the shadow stack, with the original
            // module's names and lines, as a wasmtime run shows a trap.
            let mut message = e.message.clone();
            if plausible_stack(&e.trap_stack) && !e.trap_stack.is_empty() {
                let id = rec.stack(&e.trap_stack);
                let frames: Vec<String> = rec
                    .stack_text(id)
                    .iter()
                    .take(64)
                    .map(exit::frame_text)
                    .collect();
                exit::append_stack(&mut message, &frames);
            }
            (RunStatus::Trapped, None, message)
        }
        Some(e) => (RunStatus::Exited, e.code.or(Some(0)), e.message.clone()),
        None => (
            RunStatus::Error,
            None,
            "the JavaScript session ended without its end record: the process was killed or the page closed before the collector finished; the events before are recorded".to_string(),
        ),
    };
    let sp_init = end.and_then(|e| e.sp_init);
    let leaks: Option<Vec<Leak>> = match (end, memory0) {
        (Some(e), Some(memory)) => {
            let layout = ScanLayout {
                sp_init,
                data_end: module::data_end(&original),
                memories: &memories,
            };
            let deadline = cfg.timeout.map(|t| std::time::Instant::now() + t);
            exit::classify_snapshot(
                &mut rec,
                &Snapshot {
                    memory,
                    globals: e.globals.clone(),
                    sp_now: e.sp_now,
                    other_memories: Vec::new(),
                },
                &layout,
                &rules,
                deadline,
            )
        }
        _ => Some(Vec::new()),
    };
    let leak_scan_cut = leaks.is_none();
    let layout = end.is_some().then(|| {
        (
            module::layout(&original, sp_init, rec.heap_lo),
            module::data_ends(&original),
        )
    });
    run::end_trace(&mut rec, layout, status, exit_code, &message);
    let mut summary = run::summarize(
        cfg,
        &rec,
        (planned > 0).then_some(&inv),
        (status, exit_code, &message),
        None,
        instrumented.as_ref(),
    );
    if cut {
        summary.partial.push(
            "the session file ends inside a record: the events before it are recorded".into(),
        );
    }
    if end.is_some() && memory0.is_none() && summary.curr_blocks > 0 {
        summary.partial.push(
            "the session holds no snapshot of memory 0: blocks live at the end are not classified"
                .into(),
        );
    }
    Ok(RunOutcome {
        instrumented,
        trace_error: rec.io_error().map(|e| e.to_string()),
        invalid_frees: std::mem::take(&mut rec.invalid_frees),
        leaks: leaks.unwrap_or_default(),
        leak_scan_cut,
        refused_growth: None,
        invocation_ns: Vec::new(),
        results: Vec::new(),
        summary,
    })
}

/// The JavaScript collector, as `js/` in the repository holds it: written
/// next to the module for each Node run.
const JS_COLLECTOR: &str = include_str!("../../js/heapscope.mjs");
/// Its Node entry point (`node --import register.mjs app.mjs`).
const JS_REGISTER: &str = include_str!("../../js/register.mjs");
/// The exit code `register.mjs` ends Node with when the engine cannot run
/// an instrumented module (no multi-memory).
const JS_UNSUPPORTED: i32 = 70;

/// A run of a Node script that loads the module through its own glue.
#[derive(Debug, Clone, Default)]
pub struct NodeRun {
    /// The script (`app.mjs`).
    pub script: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The `node` to run (22 or newer: instrumented modules need
    /// multi-memory).
    pub node: std::path::PathBuf,
    /// Exports whose calls from JavaScript are invocations.
    pub invocations: Vec<String>,
    /// An invocation's non-zero `i32` result is the plugin's error.
    pub extism: bool,
    /// Keep the session here (else it is removed once recorded).
    pub keep_session: Option<std::path::PathBuf>,
}

/// Run `node.script` under Node with the JavaScript collector loaded first,
/// so that when the script (its glue) compiles `cfg.module`, the module
/// instrumented here runs in its place and is recorded; then record the
/// session as [`import`] does. The script's stdin, stdout and stderr are
/// the terminal's; its exit code is the run's.
pub fn run_node(cfg: &RunConfig, node: &NodeRun) -> Result<RunOutcome, RunError> {
    let setup = |message: String| RunError::Setup {
        path: cfg.module.clone(),
        message,
    };
    let loaded = module::load_only(cfg)?;
    if !loaded.is_instrumented {
        return Err(setup(
            "a Node run needs the module instrumented; it was not (--plain?)".into(),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("heapscope-node-")
        .tempdir()
        .map_err(|e| setup(format!("cannot make a directory for the collector: {e}")))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes)
            .map_err(|e| setup(format!("cannot write `{}`: {e}", p.display())))?;
        Ok::<_, RunError>(p)
    };
    write("heapscope.mjs", JS_COLLECTOR.as_bytes())?;
    let register = write("register.mjs", JS_REGISTER.as_bytes())?;
    let instrumented = write("module.hs.wasm", loaded.wasm())?;
    let session = node
        .keep_session
        .clone()
        .unwrap_or_else(|| dir.path().join("session.hss"));
    let _ = std::fs::remove_file(&session);
    let original = std::fs::canonicalize(&cfg.module).unwrap_or_else(|_| cfg.module.clone());
    let mut cmd = std::process::Command::new(&node.node);
    cmd.arg("--import")
        .arg(format!("file://{}", register.display()))
        .arg(&node.script)
        .args(&node.args)
        .env("HEAPSCOPE_SESSION", &session)
        .env("HEAPSCOPE_MODULE", &instrumented)
        .env("HEAPSCOPE_ORIGINAL", &original)
        .env("HEAPSCOPE_INVOKE", node.invocations.join(","));
    if node.extism {
        cmd.env("HEAPSCOPE_EXTISM", "1");
    } else {
        cmd.env_remove("HEAPSCOPE_EXTISM");
    }
    tracing::info!("running {cmd:?}");
    let status = cmd.status().map_err(|e| {
        setup(format!(
            "cannot start `{}`: {e}; install Node.js 22 or newer, or name it with --node-bin (or $HEAPSCOPE_NODE)",
            node.node.display()
        ))
    })?;
    let data = match std::fs::read(&session) {
        Ok(d) => d,
        Err(_) if status.code() == Some(JS_UNSUPPORTED) => {
            return Err(setup(format!(
                "`{}` cannot run an instrumented module (no multi-memory support; it said why above): use Node 22 or newer (--node-bin)",
                node.node.display()
            )))
        }
        Err(e) => {
            return Err(setup(format!(
                "Node ({status}) wrote no session `{}`: {e}",
                session.display()
            )))
        }
    };
    let (items, cut) = parse(&session, &data)?;
    if items.is_empty() && !cut {
        return Err(setup(format!(
            "`{}` ({status}) never compiled the module: give as MODULE the .wasm file the script loads (the collector runs the instrumented module in place of those bytes), or point the script at an instrumented module",
            node.script.display()
        )));
    }
    let mut outcome = replay(cfg, loaded, &items, cut)?;
    if let (None, Some(sig)) = (status.code(), unix_signal(&status)) {
        outcome
            .summary
            .partial
            .push(format!("Node was killed by signal {sig}"));
    }
    Ok(outcome)
}

#[cfg(unix)]
fn unix_signal(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

#[cfg(not(unix))]
fn unix_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
    }

    #[test]
    fn a_session_parses_and_a_cut_one_keeps_its_whole_records() {
        let mut s = MAGIC.to_vec();
        s.push(VERSION);
        let mut ev = Vec::new();
        abi::EventRecord::new(abi::EVENT_ALLOC, 1, 64, 10, 0).encode(&[4, 0, 0, 0], &mut ev);
        record(EVENTS, &ev, &mut s);
        let mut g = Vec::new();
        g.extend_from_slice(&0u32.to_le_bytes());
        g.extend_from_slice(&1i64.to_le_bytes());
        g.extend_from_slice(&2i64.to_le_bytes());
        record(GROW, &g, &mut s);
        let whole = s.len();
        record(INVOCATION_START, b"process", &mut s);
        let path = std::path::Path::new("s.hss");
        let (items, cut) = parse(path, &s).unwrap();
        assert!(!cut);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Item::Events(&ev));
        assert_eq!(
            items[1],
            Item::Grow {
                memory: 0,
                delta: 1,
                result: 2,
                stack: &[]
            }
        );
        assert_eq!(items[2], Item::InvocationStart("process".into()));
        for at in whole + 1..s.len() {
            let (items, cut) = parse(path, &s[..at]).unwrap();
            assert!(cut, "cut at {at}");
            assert_eq!(items.len(), 2, "cut at {at}");
        }
        // The end record, with a trap's stack.
        let mut end = MAGIC.to_vec();
        end.push(VERSION);
        let mut p = vec![1];
        p.extend_from_slice(&(i32::MIN as u32).to_le_bytes());
        p.extend_from_slice(&100u64.to_le_bytes());
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&7u64.to_le_bytes());
        p.extend_from_slice(&4u32.to_le_bytes());
        p.extend_from_slice(&[3, 0, 0, 0]);
        p.extend_from_slice(b"trap");
        record(END, &p, &mut end);
        let (items, cut) = parse(path, &end).unwrap();
        assert!(!cut);
        assert_eq!(
            items,
            [Item::End(End {
                trapped: true,
                code: None,
                sp_init: Some(100),
                sp_now: None,
                globals: vec![7],
                trap_stack: vec![3, 0, 0, 0],
                message: "trap".into(),
            })]
        );
        // A stack longer than the record is a malformed record.
        let n = end.len();
        end[n - 12..n - 8].copy_from_slice(&100u32.to_le_bytes());
        let e = parse(path, &end).unwrap_err().to_string();
        assert!(e.contains("stack is cut"), "{e}");
        let e = parse(path, b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let e = parse(path, b"HSJS\x09").unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        let mut bad = MAGIC.to_vec();
        bad.push(VERSION);
        record(99, b"", &mut bad);
        let e = parse(path, &bad).unwrap_err().to_string();
        assert!(e.contains("unknown record tag 99"), "{e}");
    }
}
