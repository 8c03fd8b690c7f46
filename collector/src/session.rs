//! Runs recorded by another host: the JavaScript collector (`collector/js/`,
//! which `js/` in the repository refers to) runs an instrumented module in Node or a browser with the
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
//! The format, its tags and its codec are `heapscope_trace::session`'s,
//! beside the trace format: a magic and version, then records (a tag byte,
//! a `u32` length, the payload). The JavaScript collector this crate ships
//! (`collector/js/`, see [`run_node`]) writes them with the constants of
//! `collector/js/abi.mjs`, generated from `heapscope_trace`'s (`js_abi`, a
//! test that fails when the file is stale). A session cut short (a killed
//! process) has no [`END`]: its events are still recorded and the summary
//! says the session ended early. In Node the collector streams the session
//! to its file as it goes, whole records only, and writes [`END`] only at
//! a normal finish (`collector/js/stream.mjs`), so a process killed by any
//! signal leaves such a session.
//!
//! # Several instances
//!
//! Each instance of the module an app makes (on its main thread, in a Node
//! or browser Worker) writes a session of its own, beside the named one
//! (`app.hss.T-K`); they are recorded as one run, kept apart as
//! `sessions` (this crate's) documents.
//!
//! # Reading a session
//!
//! A session is untrusted input. It is read as a stream: only a regular
//! file is read (`/dev/zero`, a FIFO or a terminal is refused before it is
//! opened), a record's payload is allocated only once the file is known to
//! hold all of it, and only one record is held at a time (plus the last
//! snapshot of memory 0, which the leak scan needs), so memory is bounded
//! by the largest record, never by the number of records. A first pass
//! over the record headers checks every record before anything is
//! written, and counts them: at most [`MAX_RECORDS`] are read.
//!
//! A session is *partial*, and the run's summary says why in `partial`
//! (so `heapscope run` decides no gate and exits 3), when:
//!
//! - it ends inside a record, or has no [`END`] record;
//! - it holds more than [`MAX_RECORDS`] records (those are recorded);
//! - its [`END`] record contradicts the session: records follow it, its
//!   status is neither 0 nor 1, or its exit code is outside 0 to 255 (no
//!   process exits with another). Such an end record is not used: the run
//!   is recorded as a session without its end.
//!
//! The trace of a partial session has no end-of-run record, so it reads
//! back as partial too: a later `heapscope leaks --fail-on-leak` on it
//! decides nothing either.
//!
//! A record that cannot be decoded at all (an unknown tag, a payload too
//! short for its fields) makes the session malformed: an error naming the
//! byte offset, and nothing is recorded.

use crate::calls::{self, Invocations};
use crate::config::{Leak, RunConfig, RunError, RunOutcome};
use crate::exit::{self, ScanLayout, Snapshot};
use crate::module::{self, Loaded};
use crate::run;
use heapscope_trace::abi;
use heapscope_trace::format::{Record, RunStatus};
use heapscope_trace::growth::GrowthTracker;
use std::io::{Read, Seek};
use std::path::Path;

use heapscope_trace::session::{End, Item, Next, Records, SessionError};
pub use heapscope_trace::session::{
    END, EVENTS, GROW, HANDED, INITIAL, INVALID, INVOCATION_END, INVOCATION_START, MAGIC,
    MAX_HANDED, MAX_TRAP_FRAMES, MEMORY, TRAP_FRAMES, VERSION,
};

// A session keeps as many frames of a trap as a wasmtime run does.
const _: () = assert!(MAX_TRAP_FRAMES == crate::exit::TRAP_BACKTRACE_FRAMES);

/// The most records a session is read for (16,777,216: a buffer flush
/// or a synchronous hook each writes one, so a long browser session holds
/// millions at most). A session holding more is recorded up to there and
/// is partial. Each record's events are bounded by its length.
pub const MAX_RECORDS: u64 = 1 << 24;

/// Why the session `path` could not be read.
fn session_error(path: &Path, e: SessionError) -> RunError {
    match e {
        SessionError::Read(source) => RunError::Read {
            path: path.to_path_buf(),
            source,
        },
        e @ SessionError::Malformed { .. } => RunError::Setup {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// [`Records::new`], its errors naming `path`.
fn records<R: Read + Seek>(path: &Path, r: R, end: u64) -> Result<Records<R>, RunError> {
    Records::new(r, end).map_err(|e| session_error(path, e))
}

/// What a first pass over a session's records found: every record
/// decodes (else the session is malformed), how many there are, where a
/// replay stops and why the session is partial, if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scan {
    records: u64,
    invocations: u64,
    /// Where the last record read ends.
    stop: u64,
    /// Why the records after `stop` are not read: cut inside a record, or
    /// more than [`MAX_RECORDS`].
    partial: Option<String>,
    /// Why the process that wrote the session did not finish (killed by a
    /// signal), if it did not.
    killed: Option<String>,
    /// Memory 0's size in pages when the instance was made (its first
    /// [`INITIAL`] record), when the collector said.
    initial0: Option<u64>,
}

/// Check every record of a session, reading only what is small (events
/// and memory snapshots are passed over).
fn scan<R: Read + Seek>(path: &Path, r: R, len: u64) -> Result<Scan, RunError> {
    scan_within(path, r, len, MAX_RECORDS)
}

/// [`scan`], reading at most `max` records.
fn scan_within<R: Read + Seek>(path: &Path, r: R, len: u64, max: u64) -> Result<Scan, RunError> {
    let mut records = records(path, r, len)?;
    let err = |e| session_error(path, e);
    let mut out = Scan {
        records: 0,
        invocations: 0,
        stop: records.position(),
        partial: None,
        killed: None,
        initial0: None,
    };
    loop {
        let h = match records.next_header().map_err(err)? {
            Next::Done => break,
            Next::Cut => {
                out.partial = Some(format!(
                    "the session file ends inside a record (at byte {:#x}): the {} records before it are recorded",
                    records.position(),
                    out.records
                ));
                break;
            }
            Next::Record(h) => h,
        };
        if out.records == max {
            out.partial = Some(format!(
                "the session holds more than {max} records: the first {max} are recorded"
            ));
            break;
        }
        match records.item(h, false).map_err(err)? {
            Item::InvocationStart(_) => out.invocations += 1,
            Item::Initial { index: 0, pages } if out.initial0.is_none() => {
                out.initial0 = Some(pages)
            }
            _ => {}
        }
        out.records += 1;
        out.stop = records.position();
    }
    Ok(out)
}

/// A session file, checked to be one heapscope can read whole: a regular
/// file (a device such as `/dev/zero`, a FIFO or a terminal is refused
/// before it is opened, so it is never read), and its length.
fn open(path: &Path) -> Result<(std::fs::File, u64), RunError> {
    let read = |e: std::io::Error| RunError::Read {
        path: path.to_path_buf(),
        source: e,
    };
    let not_regular = || {
        RunError::Setup {
        path: path.to_path_buf(),
        message: "the session is not a regular file (a device, a FIFO or a folder): give the session file the JavaScript collector wrote".into(),
    }
    };
    if !std::fs::metadata(path).map_err(read)?.is_file() {
        return Err(not_regular());
    }
    let file = crate::files::open_without_waiting(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok((file, meta.len()))
}

/// The records of a whole session in memory, as [`import`] reads them.
#[cfg(test)]
fn parse(path: &Path, data: &[u8]) -> Result<(Vec<Item>, bool), RunError> {
    let s = scan(path, std::io::Cursor::new(data), data.len() as u64)?;
    let mut r = records(path, std::io::Cursor::new(data), s.stop)?;
    let err = |e| session_error(path, e);
    let mut items = Vec::new();
    while let Next::Record(h) = r.next_header().map_err(err)? {
        items.push(r.item(h, true).map_err(err)?);
    }
    Ok((items, s.partial.is_some()))
}

/// Whether a raw shadow stack is one an instrumented module can pass:
/// whole call-site ids within the shadow stack's region.
fn plausible_stack(raw: &[u8]) -> bool {
    raw.len().is_multiple_of(4) && raw.len() <= abi::EVENT_BASE as usize
}

/// Record the session file `session` for `cfg.module`, the module the
/// session ran (instrumented, or the original it was instrumented from
/// with the same options): the trace (`cfg.trace`), the leak scan on the
/// session's memory snapshot, the summary and its gates. The session is
/// read as the module docs say: streamed, checked whole before anything is
/// written.
pub fn import(cfg: &RunConfig, session: &Path) -> Result<RunOutcome, RunError> {
    let (parts, partial) = open_parts(session)?;
    if parts.is_empty() {
        let said = if partial.is_empty() {
            String::new()
        } else {
            format!("; the collector said: {}", partial.join("; "))
        };
        return Err(RunError::Setup {
            path: cfg.module.clone(),
            message: format!(
                "the session `{}` is empty: the app instantiated no instrumented module while the collector was loaded{said}",
                session.display()
            ),
        });
    }
    let loaded = module::load_only(cfg)?;
    with_unseen(replay(cfg, loaded, parts, partial), session)
}

/// The run's warnings gain what the collector saw run beside the module
/// without being recorded (`sessions::unseen`).
fn with_unseen(
    outcome: Result<RunOutcome, RunError>,
    session: &Path,
) -> Result<RunOutcome, RunError> {
    outcome.map(|mut o| {
        o.summary.warnings.extend(crate::sessions::unseen(session));
        o
    })
}

/// The sessions of the run whose main session is `session`, each checked
/// by a first pass (see `sessions`), and why the run is partial already
/// (the cases the collector said it could not record). The main session
/// is left out when it holds no record (the main thread made no instance);
/// another instance's session always counts (it was made for an instance).
fn open_parts(session: &Path) -> Result<(Vec<Part<std::fs::File>>, Vec<String>), RunError> {
    let (files, more) = crate::sessions::instance_files(session);
    if files.is_empty() {
        open(session)?;
    }
    let mut partial = crate::sessions::unrecorded(session);
    if more > 0 {
        partial.push(format!(
            "the app made more than {} instances of the module: {more} are not recorded",
            crate::sessions::MAX_INSTANCES
        ));
    }
    let mut parts = Vec::new();
    for f in files {
        let (file, len) = open(&f.path)?;
        let scanned = scan(&f.path, &file, len)?;
        if (f.thread, f.index) == (0, 0) && scanned.records == 0 && scanned.partial.is_none() {
            continue;
        }
        let records = records(&f.path, file, scanned.stop)?;
        parts.push(Part {
            records,
            scanned,
            file: f,
        });
    }
    Ok((parts, partial))
}

/// Why the end record `e` cannot be believed, when it contradicts the
/// session (see the module docs).
fn forged_end(e: &End, records_after: bool) -> Option<String> {
    if records_after {
        Some("records follow its end record".into())
    } else if e.status > 1 {
        Some(format!(
            "its end record has status {} (0 exited, 1 trapped)",
            e.status
        ))
    } else {
        e.code.filter(|c| !(0..=255).contains(c)).map(|code| {
            format!("its end record gives exit code {code}, which no process exits with (0 to 255)")
        })
    }
}

/// One instance's session, checked by a first pass ([`scan`]).
struct Part<R> {
    records: Records<R>,
    scanned: Scan,
    file: crate::sessions::InstanceFile,
}

/// What one instance's session ended with, once replayed.
#[derive(Default)]
struct Ended {
    end: Option<End>,
    /// Why its end record is not used.
    forged: Option<String>,
    memory0: Option<Vec<u8>>,
    trap_frames: Option<Vec<(u32, u32)>>,
    handed: Vec<u64>,
    /// Its lowest block address (without a tag).
    heap_lo: Option<u64>,
}

/// Replay one instance's records into `rec`, placed at `at`.
fn replay_instance<R: Read + Seek>(
    rec: &mut crate::recorder::Recorder,
    inv: &mut Invocations,
    part: &mut Part<R>,
    at: crate::sessions::Placement,
) -> Result<Ended, RunError> {
    let mut open: Option<calls::Before> = None;
    let mut out = Ended::default();
    let mut records_after_end = false;
    rec.heap_lo = None;
    let err = |e| session_error(&part.file.path, e);
    while let Next::Record(h) = part.records.next_header().map_err(err)? {
        let item = part.records.item(h, true).map_err(err)?;
        records_after_end |= out.end.is_some();
        match item {
            Item::Events(bytes) => crate::sessions::apply_records(rec, &bytes, at),
            Item::Grow {
                memory,
                delta,
                result,
                stack,
            } => {
                if plausible_stack(&stack) {
                    let id = rec.stack(&stack);
                    let old = (result >= 0).then_some(result as u64);
                    // A memory the instance does not have stays one the
                    // run does not have.
                    let memory = at.memory(memory).unwrap_or(u32::MAX);
                    rec.grow(memory, delta as u64, old, id);
                } else {
                    rec.invalid_event();
                }
            }
            Item::Invalid => rec.invalid_event(),
            Item::InvocationStart(name) => {
                open = Some(calls::begin(rec, inv.count, &name));
            }
            Item::InvocationEnd {
                outcome,
                duration_us,
                output_bytes,
                message,
            } => {
                if let Some(before) = open.take() {
                    calls::end(
                        rec,
                        inv,
                        before,
                        outcome,
                        message,
                        output_bytes,
                        duration_us,
                    );
                }
            }
            Item::Memory { index: 0, bytes } => out.memory0 = Some(bytes),
            Item::Memory { .. } => {}
            Item::End(e) => out.end = Some(e),
            Item::TrapFrames(f) => out.trap_frames = Some(f),
            Item::Handed(v) => out.handed = v,
            Item::Initial { .. } => {}
        }
        rec.clock();
    }
    // An end record that contradicts the session is not used.
    out.forged = out
        .end
        .as_ref()
        .and_then(|e| forged_end(e, records_after_end));
    if out.forged.is_some() {
        out.end = None;
    }
    out.heap_lo = rec
        .heap_lo
        .map(|p| p & ((1 << heapscope_trace::model::INSTANCE_TAG_SHIFT) - 1));
    Ok(out)
}

/// How one instance ended: status, exit code and message (a trap's with
/// where it stopped, from the engine's frames or the shadow stack).
fn instance_status(
    rec: &mut crate::recorder::Recorder,
    cfg: &RunConfig,
    ended: &Ended,
    original: &[u8],
    plain: bool,
    code_map_bytes: &[u8],
) -> (RunStatus, Option<i32>, String) {
    match &ended.end {
        Some(e) if e.trapped => {
            // Where it stopped, from the shadow stack, with the original
            // module's names and lines, as a wasmtime run shows a trap.
            let mut message = e.message.clone();
            // The engine's own frames, mapped back to the original module,
            // as a wasmtime run shows a trap; an Extism plugin's stack also
            // holds the kernel's frames, which the code map does not
            // cover: the shadow stack there.
            let code_map = abi::CodeMap::decode(code_map_bytes);
            let engine_frames = match (&ended.trap_frames, &code_map, &cfg.extism) {
                (Some(frames), Some(map), None) if !frames.is_empty() => {
                    let names = exit::ExportNames::of(original, plain);
                    let mut out = Vec::new();
                    for &(func_index, offset) in frames {
                        out.extend(exit::original_frames(
                            rec,
                            map,
                            &names,
                            exit::InstrumentedFrame {
                                func_index,
                                module_offset: Some(u64::from(offset)),
                                name: None,
                            },
                        ));
                    }
                    Some(exit::shown(out, frames.len() < MAX_TRAP_FRAMES))
                }
                _ => None,
            };
            if let Some(frames) = engine_frames {
                exit::append_stack(&mut message, &frames);
            } else if plausible_stack(&e.trap_stack) && !e.trap_stack.is_empty() {
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
            match &ended.forged {
                Some(why) => format!("the JavaScript session's end record is not used: {why}; the events before are recorded"),
                None => "the JavaScript session ended without its end record: the process was killed or the page closed before the collector finished; the events before are recorded".to_string(),
            },
        ),
    }
}

fn replay<R: Read + Seek>(
    cfg: &RunConfig,
    loaded: Loaded,
    mut parts: Vec<Part<R>>,
    mut partial: Vec<String>,
) -> Result<RunOutcome, RunError> {
    use crate::sessions::Placement;
    let rules = run::rules(cfg)?;
    let mut rec = run::recorder(cfg)?;
    let Loaded {
        original,
        instrumented,
        sites,
        symbolizer,
        memories,
        code_map_bytes,
        cache_entry,
        ..
    } = loaded;
    rec.set_sites(sites);
    rec.symbolizer = symbolizer;
    // Several instances are kept apart as `sessions` says; a 64-bit memory
    // cannot carry their tags, and a `kind` names 256 memories at most.
    let per = memories.len().max(1);
    let fit = if memories.iter().any(|m| m.memory64) {
        1
    } else {
        256 / per
    };
    if parts.len() > fit {
        let why = if fit == 1 {
            "the module has a 64-bit memory, whose addresses cannot carry an instance's tag"
                .to_string()
        } else {
            format!("a run keeps apart at most {fit} instances of a module with {per} memories")
        };
        partial.push(format!(
            "the app made {} instances of the module: {why}; only the first {fit} are recorded",
            parts.len()
        ));
        parts.truncate(fit);
    }
    if parts.len() > 1 && crate::sessions::shared_memory(&original) {
        partial.push(format!(
            "the module's memory is shared (a threaded build) and the app made {} instances of it: they share one heap, whose events heapscope cannot put in order across threads; each is recorded as if it had its own",
            parts.len()
        ));
    }
    // Memory 0 starts at the size the instance was made with (an imported
    // memory the app created larger than the declared minimum), never
    // below that minimum nor above its maximum.
    let run_memories: Vec<_> = parts
        .iter()
        .flat_map(|p| {
            let mut m = memories.clone();
            if let (Some(m0), Some(pages)) = (m.first_mut(), p.scanned.initial0) {
                if pages > m0.initial_pages && m0.maximum_pages.is_none_or(|max| pages <= max) {
                    m0.initial_pages = pages;
                }
            }
            m
        })
        .collect();
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
        memories: run_memories.clone(),
    });
    rec.model.start(&run_memories);
    let planned: u64 = parts.iter().map(|p| p.scanned.invocations).sum();
    let mut inv = Invocations::elsewhere(
        cfg.warmup
            .unwrap_or_else(|| GrowthTracker::default_warmup(planned)),
    );
    if planned > 0 {
        rec.write_record(&Record::Warmup(inv.tracker.warmup()));
    }
    // The thread is shown when there is more than the main thread's one
    // instance.
    let shown = parts.len() > 1 || parts.iter().any(|p| p.file.thread != 0);
    let labels: Vec<String> = parts.iter().map(|p| p.file.label()).collect();
    let mut ended = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter_mut().enumerate() {
        if shown {
            let root = rec.backtrace_stack(&[(labels[i].clone(), u32::MAX, 0)]);
            rec.set_root(root);
        }
        let at = Placement {
            base: (i * per) as u32,
            per: per as u32,
        };
        ended.push(replay_instance(&mut rec, &mut inv, part, at)?);
    }
    rec.set_root(0);
    rec.heap_lo = ended.first().and_then(|e| e.heap_lo);
    // Each instance's status; the run's is the first that did not exit
    // (an error, then a trap), else the first instance's exit.
    let statuses: Vec<_> = ended
        .iter()
        .map(|e| {
            instance_status(
                &mut rec,
                cfg,
                e,
                &original,
                instrumented.is_none(),
                &code_map_bytes,
            )
        })
        .collect();
    let decides = statuses
        .iter()
        .position(|s| s.0 == RunStatus::Error)
        .or_else(|| statuses.iter().position(|s| s.0 == RunStatus::Trapped))
        .unwrap_or(0);
    let (status, exit_code, mut message) =
        statuses
            .get(decides)
            .cloned()
            .unwrap_or((RunStatus::Error, None, String::new()));
    if shown {
        let list = labels.join(", ");
        message = match status {
            RunStatus::Exited => format!(
                "{} of the module recorded: {list}{}",
                match labels.len() {
                    1 => "1 instance".to_string(),
                    n => format!("{n} instances"),
                },
                if message.is_empty() {
                    String::new()
                } else {
                    format!("\n{message}")
                }
            ),
            _ => format!("{}: {message}", labels[decides]),
        };
    }
    // Why the session is not whole; then its trace has no end-of-run
    // record either, so it reads back as partial too.
    for (i, (part, e)) in parts.iter().zip(&ended).enumerate() {
        let whose = |s: String| {
            if shown {
                format!("{}: {s}", labels[i])
            } else {
                s
            }
        };
        for why in part.scanned.partial.iter().chain(&part.scanned.killed) {
            partial.push(whose(why.clone()));
        }
        match &e.forged {
            Some(why) => partial.push(whose(format!(
                "the session's end record is not believable: {why}; the session is recorded as one without its end"
            ))),
            None if e.end.is_none() && part.scanned.partial.is_none() => partial.push(whose(
                "the session has no end record: the process was killed or the page closed before the collector finished".into(),
            )),
            None => {}
        }
    }
    // Each instance's blocks classified by its own snapshot.
    let first_end = ended.first().and_then(|e| e.end.as_ref());
    let sp_init = first_end.and_then(|e| e.sp_init);
    let data_end0 = module::data_end(&original);
    let mut leaks: Option<Vec<Leak>> = Some(Vec::new());
    let mut retainers = None;
    // The heap graph's named roots, read only when a snapshot is scanned.
    let variables = if ended.iter().any(|e| e.end.is_some() && e.memory0.is_some()) {
        crate::variables::static_variables_cached(&original, cache_entry.as_ref())
    } else {
        Vec::new()
    };
    for (i, e) in ended.iter().enumerate() {
        let tags = if i == 0 {
            0..1
        } else {
            (i * per) as u64..((i + 1) * per) as u64
        };
        let several = ended.len() > 1;
        let live = if several {
            rec.model
                .live()
                .filter(|(p, _)| tags.contains(&(p >> heapscope_trace::model::INSTANCE_TAG_SHIFT)))
                .count() as u64
        } else {
            rec.model.curr_blocks
        };
        let (Some(end), Some(memory)) = (&e.end, &e.memory0) else {
            if e.end.is_some() && live > 0 {
                let whose = if shown {
                    format!(" of {}", labels[i])
                } else {
                    String::new()
                };
                partial.push(format!(
                    "the session{whose} holds no snapshot of memory 0: blocks live at the end are not classified"
                ));
            }
            continue;
        };
        let layout = ScanLayout {
            sp_init: end.sp_init,
            data_end: data_end0,
            memories: &memories,
        };
        let deadline = cfg.timeout.map(|t| std::time::Instant::now() + t);
        let found = exit::classify_snapshot(
            &mut rec,
            &Snapshot {
                memory,
                globals: end.globals.clone(),
                handed: e.handed.clone(),
                sp_now: end.sp_now,
                sp_low: None,
                other_memories: Vec::new(),
                instance: several.then_some(exit::InstanceBlocks {
                    tags,
                    heap_lo: e.heap_lo,
                }),
            },
            &layout,
            &exit::GraphNames {
                variables: &variables,
                globals: Vec::new(),
            },
            &rules,
            deadline,
        );
        if let Some(r) = found.as_ref().and_then(|f| f.retainers.clone()) {
            // The summary's, as a reader finds them: the last exit graph's.
            retainers = Some(r);
        }
        match (&mut leaks, found) {
            (Some(all), Some(mut more)) => all.append(&mut more.leaks),
            _ => leaks = None,
        }
    }
    let leak_scan_cut = leaks.is_none();
    if !variables.is_empty() {
        crate::sitetypes::write_site_types(&mut rec, &original, cache_entry.as_ref());
    }
    // Memory 0's breakdown counts the run's live bytes, which are every
    // instance's: given for a run of one instance only.
    let layout = (first_end.is_some() && ended.len() == 1).then(|| {
        (
            module::layout(&original, sp_init, rec.heap_lo),
            module::data_ends(&original),
        )
    });
    run::end_trace(
        &mut rec,
        layout,
        partial
            .is_empty()
            .then_some((status, exit_code, message.as_str())),
    );
    let mut summary = run::summarize(
        cfg,
        &rec,
        (planned > 0).then_some(&inv),
        (status, exit_code, &message),
        None,
        instrumented.as_ref(),
    );
    summary.partial.extend(partial);
    summary.retainers = retainers;
    Ok(RunOutcome {
        instrumented,
        trace_error: rec.io_error().map(|e| e.to_string()),
        trace_unreadable: rec.unreadable().map(String::from),
        invalid_frees: rec.take_invalid_frees(),
        leaks: leaks.unwrap_or_default(),
        leak_scan_cut,
        ended_in_start: false,
        refused_growth: None,
        invocation_ns: Vec::new(),
        unseen: None,
        results: Vec::new(),
        summary,
    })
}

/// The JavaScript collector, as this crate ships it (`collector/js/`;
/// the repository's `js/` refers to it): written next to the module for
/// each Node run.
const JS_COLLECTOR: &str = include_str!("../js/heapscope.mjs");
/// Its Node entry point (`node --import register.mjs app.mjs`).
const JS_REGISTER: &str = include_str!("../js/register.mjs");
/// The hook ABI's and the session format's constants the collector
/// imports, generated from `heapscope_trace`'s (`js_abi`).
const JS_ABI: &str = include_str!("../js/abi.mjs");
/// What loads it into every `worker_threads` Worker, and names each
/// instance's session file (`sessions`).
const JS_WORKER: &str = include_str!("../js/worker.mjs");
/// What streams each session to its file and handles the app's SIGINT
/// and SIGTERM.
const JS_STREAM: &str = include_str!("../js/stream.mjs");
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
    write("abi.mjs", JS_ABI.as_bytes())?;
    write("heapscope.mjs", JS_COLLECTOR.as_bytes())?;
    write("worker.mjs", JS_WORKER.as_bytes())?;
    write("stream.mjs", JS_STREAM.as_bytes())?;
    let register = write("register.mjs", JS_REGISTER.as_bytes())?;
    let instrumented = write("module.hs.wasm", loaded.wasm())?;
    let session = node
        .keep_session
        .clone()
        .unwrap_or_else(|| dir.path().join("session.hss"));
    crate::sessions::remove_old(&session);
    let original = std::fs::canonicalize(&cfg.module).unwrap_or_else(|_| cfg.module.clone());
    // Where register.mjs names the engine when it cannot run the module.
    let refusal = dir.path().join("refusal.txt");
    let mut cmd = std::process::Command::new(&node.node);
    cmd.arg("--import")
        .arg(format!("file://{}", register.display()))
        .arg(&node.script)
        .args(&node.args)
        .env("HEAPSCOPE_SESSION", &session)
        .env("HEAPSCOPE_MODULE", &instrumented)
        .env("HEAPSCOPE_ORIGINAL", &original)
        .env("HEAPSCOPE_INVOKE", node.invocations.join(","))
        .env("HEAPSCOPE_REFUSAL_FILE", &refusal);
    if node.extism {
        cmd.env("HEAPSCOPE_EXTISM", "1");
    } else {
        cmd.env_remove("HEAPSCOPE_EXTISM");
    }
    tracing::info!("running {cmd:?}");
    // Ctrl-C or SIGTERM to heapscope is forwarded to Node (`node_child`).
    let ended = crate::node_child::run(&mut cmd, cfg.interrupt.as_ref()).map_err(|e| {
        setup(format!(
            "cannot start `{}`: {e}; install Node.js 22 or newer, or name it with --node-bin (or $HEAPSCOPE_NODE)",
            node.node.display()
        ))
    })?;
    let status = ended.status;
    match open(&session) {
        Ok(_) => {}
        Err(_) if status.code() == Some(JS_UNSUPPORTED) => {
            let engine: String = std::fs::read_to_string(&refusal)
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect();
            let engine = engine.trim();
            let what = if engine.is_empty() {
                String::new()
            } else {
                format!(" is {engine}, which")
            };
            return Err(setup(format!(
                "`{}`{what} cannot run an instrumented module: instrumenting adds a second linear memory, and it has no multi-memory support; use Node 22 or newer (--node-bin, or $HEAPSCOPE_NODE)",
                node.node.display(),
            )));
        }
        // A Worker's instance wrote its own session (`sessions`).
        Err(RunError::Read { .. }) if !crate::sessions::instance_files(&session).0.is_empty() => {}
        Err(RunError::Read { source: e, .. }) => {
            return Err(setup(format!(
                "Node ({status}) wrote no session `{}`: {e}",
                session.display()
            )))
        }
        Err(e) => return Err(e),
    };
    let (mut parts, mut partial) = open_parts(&session)?;
    if parts.is_empty() && !partial.is_empty() {
        // The collector refused what it was given (a module of another
        // hook ABI version, a Worker it could not load into): its reason.
        return Err(setup(format!(
            "`{}` ({status}) recorded no instance of the module: {}",
            node.script.display(),
            partial.join("; ")
        )));
    }
    if parts.is_empty() {
        return Err(setup(format!(
            "`{}` ({status}) never compiled the module: give as MODULE the .wasm file the script loads (the collector runs the instrumented module in place of those bytes), or point the script at an instrumented module",
            node.script.display()
        )));
    }
    if let (None, Some(sig)) = (status.code(), unix_signal(&status)) {
        // Partial before the trace is closed: its trace then has no
        // end-of-run record, so a later gate on it decides nothing either.
        let why = if ended.interrupts > 0 {
            format!("heapscope was interrupted and stopped Node (signal {sig})")
        } else {
            format!("Node was killed by signal {sig}")
        };
        match parts.as_mut_slice() {
            [one] => one.scanned.killed = Some(why),
            _ => partial.push(why),
        }
    } else if ended.interrupts > 0 {
        // The app ended by its own handling of the signal heapscope sent:
        // the run was cut short all the same.
        partial.push(format!(
            "heapscope was interrupted and told Node to stop; the app ended ({status}) on that signal"
        ));
    }
    with_unseen(replay(cfg, loaded, parts, partial), &session)
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

    use heapscope_trace::session::encode_record as record;

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
        assert_eq!(items[0], Item::Events(ev.clone()));
        assert_eq!(
            items[1],
            Item::Grow {
                memory: 0,
                delta: 1,
                result: 2,
                stack: vec![]
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
                status: 1,
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

    fn session(records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.push(VERSION);
        for (tag, payload) in records {
            record(*tag, payload, &mut s);
        }
        s
    }

    #[test]
    fn a_session_cut_inside_a_record_or_past_the_record_cap_is_partial() {
        let path = Path::new("s.hss");
        let s = session(&[(INVALID, b""), (INVOCATION_START, b"a"), (EVENTS, &[0; 40])]);
        let scan_of = |b: &[u8], max| {
            scan_within(path, std::io::Cursor::new(b), b.len() as u64, max).unwrap()
        };
        let whole = scan_of(&s, MAX_RECORDS);
        assert_eq!(
            whole,
            Scan {
                records: 3,
                invocations: 1,
                stop: s.len() as u64,
                partial: None,
                killed: None,
                initial0: None,
            }
        );
        // Cut inside the events record's payload, then inside its header.
        for at in [s.len() - 1, s.len() - 44] {
            let cut = scan_of(&s[..at], MAX_RECORDS);
            assert_eq!((cut.records, cut.stop), (2, 5 + 5 + 6), "cut at {at}");
            assert_eq!(
                cut.partial.as_deref(),
                Some("the session file ends inside a record (at byte 0x10): the 2 records before it are recorded")
            );
        }
        let capped = scan_of(&s, 2);
        assert_eq!((capped.records, capped.stop), (2, 16));
        assert_eq!(
            capped.partial.as_deref(),
            Some("the session holds more than 2 records: the first 2 are recorded")
        );
        // A length past the end of the file allocates nothing: it is a cut.
        let mut huge = session(&[]);
        huge.push(EVENTS);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(scan_of(&huge, MAX_RECORDS).records, 0);
        assert!(scan_of(&huge, MAX_RECORDS).partial.is_some());
    }

    #[test]
    fn an_end_record_that_contradicts_the_session_is_not_believed() {
        let end = |status: u8, code: Option<i32>| End {
            status,
            trapped: status == 1,
            code,
            sp_init: None,
            sp_now: None,
            globals: Vec::new(),
            trap_stack: Vec::new(),
            message: String::new(),
        };
        assert_eq!(forged_end(&end(0, Some(0)), false), None);
        assert_eq!(forged_end(&end(0, Some(255)), false), None);
        assert_eq!(forged_end(&end(0, None), false), None);
        assert_eq!(forged_end(&end(1, None), false), None);
        assert_eq!(
            forged_end(&end(0, Some(300)), false).as_deref(),
            Some("its end record gives exit code 300, which no process exits with (0 to 255)")
        );
        assert_eq!(
            forged_end(&end(0, Some(-1)), false).as_deref(),
            Some("its end record gives exit code -1, which no process exits with (0 to 255)")
        );
        // A trap ends Node with a code (register.mjs exits 1).
        assert_eq!(forged_end(&end(1, Some(1)), false), None);
        assert_eq!(
            forged_end(&end(7, None), false).as_deref(),
            Some("its end record has status 7 (0 exited, 1 trapped)")
        );
        assert_eq!(
            forged_end(&end(0, Some(0)), true).as_deref(),
            Some("records follow its end record")
        );
    }

    #[test]
    fn a_device_or_a_folder_is_refused_before_it_is_read() {
        for p in ["/dev/zero", "/"] {
            let e = open(Path::new(p)).unwrap_err().to_string();
            assert_eq!(e, format!("cannot run `{p}`: the session is not a regular file (a device, a FIFO or a folder): give the session file the JavaScript collector wrote"));
        }
    }
}
