//! Several instances of one module in one run: the JavaScript collector
//! records every instance of the instrumented module an app makes, on its
//! main thread and in its Workers (Node `worker_threads`, a browser's
//! dedicated Workers), each in a session of its own, and `heapscope`
//! records them as one run.
//!
//! # The files of a run
//!
//! The session file the user names (`app.hss`) holds the main thread's
//! first instance, as it always has: a run with one instance is recorded as
//! before, byte for byte (an empty session there, when the main thread made
//! none, is passed over). Every other instance writes `app.hss.T-K`: `T`
//! the thread (0 the main thread, `worker_threads`' `threadId` in Node
//! (`collector/js/worker.mjs`), a dedicated Worker's number in the order its script
//! was served in a browser (`js/browser-workers.mjs`)), `K` the instance's
//! number on that thread (from 0). An instance's file is made when the
//! instance is, so one whose thread was killed is a session without its
//! end (partial), never a missing one. Where the collector knows a case it
//! cannot record (a Worker whose script it cannot load into: Node's
//! `eval: true` Workers, a browser's blob: and data: Workers and
//! SharedWorkers), it adds a line saying so to `app.hss.unrecorded`: the
//! run is then partial (exit 3), never silently half. A module with a
//! shared memory (a threaded build) made into more than one instance makes
//! the run partial too ([`shared_memory`]). Only those names,
//! next to the named session, are read; at most [`MAX_INSTANCES`].
//!
//! # One trace
//!
//! The instances are replayed one after another, the main thread's first,
//! then by thread and number. Each instance has its own linear memory, so
//! their addresses overlap; they are kept apart this way:
//!
//! - the run's memories are every instance's, one after another: instance
//!   `i`'s memory `m` is memory `i * M + m` of the run (`M` memories each),
//!   so each instance's growth is its own memory's in the summary
//!   (`memory` is the first instance's memory 0, `other_memories` the
//!   rest; memory 0's breakdown into static data, stack and heap, which
//!   counts the run's live bytes, is given for a run of one instance only);
//! - an address of instance `i >= 1` carries its memory's index in bits 32
//!   and up (`model::INSTANCE_TAG_SHIFT`), and its events' `kind` names
//!   that memory; the heap model checks the address without its tag
//!   against that memory. The first instance's addresses have no tag, so
//!   its blocks are where they are in its memory;
//! - each instance's blocks are classified by its own snapshot (memory 0
//!   and globals) at its own addresses, above its own heap;
//! - every stack of an instance hangs from a frame naming its thread
//!   (`main thread`, `worker thread 1`, `worker thread 1, instance 2`), at
//!   the outermost end, whenever more than one instance or a Worker's is
//!   recorded; the summary's message names them ("2 instances of the
//!   module recorded: main thread, worker thread 1"), and a trap's message
//!   starts with the thread it happened on.
//!
//! The run's status is the first instance's that did not finish (an
//! instance without its end, then a trap), else the first instance's exit.
//!
//! Totals, frees, live bytes and leak kinds are therefore each instance's
//! added up, exactly. The peak of live bytes is the peak of that sequence
//! (the sessions carry no common clock to interleave them). A module with
//! a 64-bit memory cannot carry a tag: only its first instance is recorded
//! and the run says so.

use crate::recorder::Recorder;
use heapscope_trace::abi::{
    EventRecords, EVENT_ALLOC, EVENT_FREE, EVENT_REALLOC, EVENT_REALLOC_CHECK, KIND_MEMORY_SHIFT,
};
use heapscope_trace::model::INSTANCE_TAG_SHIFT;
use std::path::{Path, PathBuf};

/// The most instances a run reads (and the most memories, 256, a `kind`
/// can name, bounds it further for a module with several).
pub const MAX_INSTANCES: usize = 64;
/// The most bytes of the `.unrecorded` notes read.
const MAX_NOTES: u64 = 64 << 10;

/// One instance's session file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceFile {
    pub path: PathBuf,
    /// 0: the main thread.
    pub thread: u32,
    /// Its number on its thread.
    pub index: u32,
}

impl InstanceFile {
    /// The frame its stacks hang from.
    pub fn label(&self) -> String {
        let mut s = if self.thread == 0 {
            "main thread".to_string()
        } else {
            format!("worker thread {}", self.thread)
        };
        if self.index > 0 {
            s.push_str(&format!(", instance {}", self.index + 1));
        }
        s
    }
}

/// The session files of the run whose main session is `session`: itself
/// when it exists, then every `session.T-K` next to it, by thread and
/// number (at most [`MAX_INSTANCES`]; the second value says how many more
/// there were).
pub(crate) fn instance_files(session: &Path) -> (Vec<InstanceFile>, usize) {
    let mut out = Vec::new();
    if std::fs::symlink_metadata(session).is_ok() {
        out.push(InstanceFile {
            path: session.to_path_buf(),
            thread: 0,
            index: 0,
        });
    }
    let (Some(dir), Some(name)) = (session.parent(), session.file_name()) else {
        return (out, 0);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut more = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            // Only the collector's own files: a link there could name any
            // file (the session the user named may be one).
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            let file = e.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let Some((t, k)) = rest.split_once('-') else {
                continue;
            };
            let number = |s: &str| {
                (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
            };
            if let (Some(thread), Some(index)) = (number(t), number(k)) {
                if (thread, index) != (0, 0) {
                    more.push(InstanceFile {
                        path: dir.join(&file),
                        thread,
                        index,
                    });
                }
            }
        }
    }
    more.sort_by_key(|f| (f.thread, f.index));
    out.extend(more);
    let extra = out.len().saturating_sub(MAX_INSTANCES);
    out.truncate(MAX_INSTANCES);
    (out, extra)
}

/// The path of the notes of cases the collector could not record.
pub(crate) fn notes_path(session: &Path) -> PathBuf {
    let mut p = session.as_os_str().to_owned();
    p.push(".unrecorded");
    PathBuf::from(p)
}

/// The path of the notes of what the collector saw run unrecorded beside
/// the module without making the run partial: a module not instrumented
/// instantiated with the recorded module's memory (an emscripten side
/// module, a dynamic library). Its lines are the run's warnings.
pub(crate) fn unseen_path(session: &Path) -> PathBuf {
    let mut p = session.as_os_str().to_owned();
    p.push(".unseen");
    PathBuf::from(p)
}

/// The cases the collector said it could not record (one a line, at most
/// [`MAX_NOTES`] bytes read, at most 20 lines kept).
pub(crate) fn unrecorded(session: &Path) -> Vec<String> {
    notes(&notes_path(session))
}

/// What the collector said it saw beside the module and could not see
/// into ([`unseen_path`]; read as [`unrecorded`]'s notes are).
pub(crate) fn unseen(session: &Path) -> Vec<String> {
    notes(&unseen_path(session))
}

fn notes(path: &Path) -> Vec<String> {
    use std::io::Read;
    let path = path.to_path_buf();
    if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let mut text = String::new();
    let Ok(f) = crate::files::open_without_waiting(&path) else {
        return vec![format!(
            "the collector's notes `{}` cannot be read",
            path.display()
        )];
    };
    let mut bytes = Vec::new();
    let _ = f.take(MAX_NOTES).read_to_end(&mut bytes);
    text.push_str(&String::from_utf8_lossy(&bytes));
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let l = heapscope_trace::text::terminal(l).into_owned();
        if !out.contains(&l) && out.len() < 20 {
            out.push(l);
        }
    }
    out
}

/// Remove the files an earlier run left for `session` (its instances and
/// notes), so that they are not taken for this run's.
pub(crate) fn remove_old(session: &Path) {
    let _ = std::fs::remove_file(session);
    let _ = std::fs::remove_file(notes_path(session));
    let _ = std::fs::remove_file(unseen_path(session));
    for f in instance_files(session).0 {
        let _ = std::fs::remove_file(f.path);
    }
}

/// Whether the module (the original) has a shared memory: a threaded
/// build, whose instances (one a thread) share one heap. Their sessions
/// cannot be replayed one after another (a block one thread allocates
/// another frees), so a run of more than one instance of it is partial.
pub(crate) fn shared_memory(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                for imp in s.into_imports().flatten() {
                    if matches!(imp.ty, wasmparser::TypeRef::Memory(m) if m.shared) {
                        return true;
                    }
                }
            }
            Ok(wasmparser::Payload::MemorySection(s))
                if s.clone().into_iter().flatten().any(|m| m.shared) =>
            {
                return true;
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return false,
            _ => {}
        }
    }
    false
}

/// How instance `i`'s events become the run's: its memory `m` is the
/// run's `base + m`, and its addresses carry that index (see the module
/// docs). The first instance (`base` 0) is recorded as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// Index of its memory 0 among the run's memories.
    pub base: u32,
    /// Memories per instance.
    pub per: u32,
}

impl Placement {
    /// The run's memory for the instance's memory `m`, if it has one.
    pub fn memory(self, m: u32) -> Option<u32> {
        (m < self.per).then_some(self.base + m)
    }

    /// `kind` naming the run's memory, and `ptr` with its tag; `None` for
    /// an event no instance of a 32-bit module can make.
    fn place(self, kind: i32, ptrs: &mut [&mut u64]) -> Option<i32> {
        let m = ((kind >> KIND_MEMORY_SHIFT) & 0xff) as u32;
        let j = self.memory(m)?;
        if j > 0xff {
            return None;
        }
        for p in ptrs {
            if **p > u64::from(u32::MAX) {
                return None;
            }
            if **p != 0 && j > 0 {
                **p |= u64::from(j) << INSTANCE_TAG_SHIFT;
            }
        }
        Some((kind & !(0xff << KIND_MEMORY_SHIFT)) | ((j as i32) << KIND_MEMORY_SHIFT))
    }
}

/// [`crate::deferred::apply_records`] for an instance placed at `at`.
pub(crate) fn apply_records(rec: &mut Recorder, buf: &[u8], at: Placement) {
    if at.base == 0 {
        return crate::deferred::apply_records(rec, buf);
    }
    let mut records = EventRecords::new(buf);
    for (mut ev, raw) in records.by_ref() {
        let kind = match ev.tag {
            EVENT_ALLOC | EVENT_FREE | EVENT_REALLOC_CHECK => at.place(ev.kind, &mut [&mut ev.a]),
            EVENT_REALLOC => at.place(ev.kind, &mut [&mut ev.a, &mut ev.b]),
            _ => Some(ev.kind),
        };
        let Some(kind) = kind else {
            rec.invalid_event();
            continue;
        };
        ev.kind = kind;
        let skip = match ev.tag {
            EVENT_FREE => ev.a == 0,
            EVENT_REALLOC_CHECK => !rec.is_bad_realloc(ev.a),
            _ => false,
        };
        if !skip {
            let stack = rec.stack(raw);
            rec.event(ev, stack);
        }
    }
    if records.rest() > 0 {
        rec.invalid_event();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_files_are_the_session_then_its_siblings_by_thread_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("app.hss");
        for n in [
            "app.hss",
            "app.hss.2-0",
            "app.hss.1-1",
            "app.hss.1-0",
            "app.hss.0-1",
            "app.hss.unrecorded",
            "app.hss.x-1",
            "app.hss.1-",
            "app.hssx.1-0",
            "app.hss.0-0",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("app.hss.3-0")).unwrap();
        let (files, more) = instance_files(&s);
        assert_eq!(more, 0);
        let got: Vec<(String, String)> = files
            .iter()
            .map(|f| {
                (
                    f.path.file_name().unwrap().to_string_lossy().into_owned(),
                    f.label(),
                )
            })
            .collect();
        let want = [
            ("app.hss", "main thread"),
            ("app.hss.0-1", "main thread, instance 2"),
            ("app.hss.1-0", "worker thread 1"),
            ("app.hss.1-1", "worker thread 1, instance 2"),
            ("app.hss.2-0", "worker thread 2"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        remove_old(&s);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut left = left;
        left.sort();
        // The link is no instance's: neither read nor removed.
        let mut want = vec!["app.hss.0-0", "app.hss.1-", "app.hss.x-1", "app.hssx.1-0"];
        if cfg!(unix) {
            want.insert(2, "app.hss.3-0");
        }
        assert_eq!(left, want);
    }

    #[test]
    fn the_model_keeps_two_instances_blocks_at_one_address_apart() {
        use heapscope_trace::abi::{pack_kind, AllocFn};
        use heapscope_trace::format::MemoryInfo;
        let mut m = heapscope_trace::model::HeapModel::new();
        let one = MemoryInfo {
            initial_pages: 1,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        };
        m.start(&[one.clone(), one]);
        let (k0, k1) = (pack_kind(AllocFn::Malloc, 0), pack_kind(AllocFn::Malloc, 1));
        m.alloc(k0, 0x100, 10, 0);
        m.alloc(k1, (1 << 32) | 0x100, 20, 0);
        assert_eq!((m.curr_blocks, m.curr_bytes, m.unseen_frees), (2, 30, 0));
        // Checked against its own memory's size, without its tag.
        m.alloc(k1, (1 << 32) | 0x1_0000, 1, 0);
        // A tag that is not the memory's own is outside it.
        m.alloc(k1, (2 << 32) | 0x100, 1, 0);
        m.alloc(k0, (1 << 32) | 0x200, 1, 0);
        assert_eq!((m.curr_blocks, m.invalid_events), (2, 3));
        // Memory 0's high-water mark is the untagged blocks'.
        assert_eq!(m.heap_hi, 0x10a);
        assert!(matches!(
            m.free(k1, (1 << 32) | 0x100),
            heapscope_trace::model::FreeOutcome::Freed(_)
        ));
        assert_eq!((m.curr_blocks, m.curr_bytes), (1, 10));
    }

    #[test]
    fn an_instance_s_addresses_carry_its_memory_and_a_wider_one_is_refused() {
        let at = Placement { base: 3, per: 2 };
        let kind = heapscope_trace::abi::pack_kind(heapscope_trace::abi::AllocFn::Malloc, 1);
        let (mut a, mut b) = (0x10u64, 0u64);
        let k = at.place(kind, &mut [&mut a, &mut b]).unwrap();
        assert_eq!(heapscope_trace::abi::unpack_kind(k).1, 4);
        assert_eq!((a, b), (0x4_0000_0010, 0));
        let mut wide = 1u64 << 32;
        assert_eq!(at.place(kind, &mut [&mut wide]), None);
        let two = heapscope_trace::abi::pack_kind(heapscope_trace::abi::AllocFn::Malloc, 2);
        assert_eq!(at.place(two, &mut [&mut a]), None);
    }
}
