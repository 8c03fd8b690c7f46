//! Recording off the guest's thread.
//!
//! Events arrive in the layout of the module's event buffer (`trace::abi`,
//! "The event buffer"): drained from it in bulk, or one at a time from a
//! synchronous hook, which copies kind, pointers, sizes and the raw shadow
//! stack. They are buffered here and handed, 64 KiB at a time, to a
//! recorder thread that interns the stacks, updates the heap model and
//! encodes the trace, in parallel with the guest. Whenever the run needs
//! the [`Recorder`] itself (an invocation ends, memory grows, the run
//! ends), [`Deferred::sync`] waits until the
//! thread has recorded every buffer it was handed and records what is still
//! buffered here, in order, so what the caller sees is exactly what
//! recording every event as it happened would show. Runs with few events
//! between such points (an actor's invocations) never wake the thread.

use crate::recorder::Recorder;
use heapscope_trace::abi::{
    EventRecord, EventRecords, EVENT_FREE, EVENT_REALLOC, EVENT_REALLOC_CHECK,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes buffered before they are handed to the recorder thread.
const CHUNK: usize = 256 << 10;
/// Buffers in flight to the thread at most: the guest waits beyond that.
const IN_FLIGHT: usize = 4;

struct Shared {
    rec: Mutex<Recorder>,
    /// Buffers the thread has recorded, updated while it holds `rec`.
    recorded: AtomicU64,
    /// Signalled after each recorded buffer.
    progress: Condvar,
    /// The thread has ended (normally or not).
    ended: AtomicBool,
}

/// A [`Recorder`] fed from hooks through a buffer and a recorder thread.
pub struct Deferred {
    shared: Arc<Shared>,
    pending: Vec<u8>,
    handed: u64,
    to_thread: Option<SyncSender<Vec<u8>>>,
    spare: Option<Receiver<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Deferred {
    /// Record into `rec`. The thread starts with the first full buffer.
    pub fn new(rec: Recorder) -> Deferred {
        Deferred {
            shared: Arc::new(Shared {
                rec: Mutex::new(rec),
                recorded: AtomicU64::new(0),
                progress: Condvar::new(),
                ended: AtomicBool::new(false),
            }),
            pending: Vec::with_capacity(CHUNK + 4096),
            handed: 0,
            to_thread: None,
            spare: None,
            thread: None,
        }
    }

    /// Buffer an event with its raw shadow stack, encoded as the module's
    /// event records are.
    #[inline]
    pub fn event(&mut self, ev: EventRecord, stack: &[u8]) {
        ev.encode(stack, &mut self.pending);
        if self.pending.len() >= CHUNK {
            self.hand_over();
        }
    }

    /// Buffer events already encoded as [`EventRecord`]s: the module's own
    /// event buffer (`trace::abi`, "The event buffer").
    pub fn records(&mut self, records: &[u8]) {
        self.pending.extend_from_slice(records);
        if self.pending.len() >= CHUNK {
            self.hand_over();
        }
    }

    fn start(&mut self) {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (spare_tx, spare_rx) = mpsc::channel();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("heapscope-recorder".into())
            .spawn(move || run_thread(&shared, rx, spare_tx));
        match thread {
            Ok(t) => {
                self.thread = Some(t);
                self.to_thread = Some(tx);
                self.spare = Some(spare_rx);
            }
            // No thread: everything is recorded on this one, in `sync`.
            Err(e) => tracing::debug!("no recorder thread ({e}); recording inline"),
        }
    }

    fn hand_over(&mut self) {
        if self.thread.is_none() {
            self.start();
        }
        let Some(tx) = &self.to_thread else {
            let chunk = std::mem::take(&mut self.pending);
            apply_records(&mut lock(&self.shared.rec), &chunk);
            self.pending = chunk;
            self.pending.clear();
            return;
        };
        let next = self
            .spare
            .as_ref()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK + 4096));
        let chunk = std::mem::replace(&mut self.pending, next);
        match tx.send(chunk) {
            Ok(()) => self.handed += 1,
            // The thread is gone: record here.
            Err(mpsc::SendError(chunk)) => {
                self.to_thread = None;
                apply_records(&mut lock(&self.shared.rec), &chunk);
            }
        }
    }

    /// Wait until every event handed over so far is recorded, record what
    /// is still buffered here, and return the recorder: blocks while the
    /// recorder thread catches up.
    pub fn sync(&mut self) -> MutexGuard<'_, Recorder> {
        let shared = &*self.shared;
        let mut rec = lock(&shared.rec);
        while shared.recorded.load(Ordering::Acquire) < self.handed
            && !shared.ended.load(Ordering::Acquire)
        {
            rec = shared
                .progress
                .wait_timeout(rec, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if !self.pending.is_empty() {
            apply_records(&mut rec, &self.pending);
            self.pending.clear();
        }
        rec
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        self.to_thread = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_thread(shared: &Shared, rx: Receiver<Vec<u8>>, spare: Sender<Vec<u8>>) {
    struct Ended<'a>(&'a Shared);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            self.0.ended.store(true, Ordering::Release);
            self.0.progress.notify_all();
        }
    }
    let _ended = Ended(shared);
    for mut chunk in rx {
        {
            let mut rec = lock(&shared.rec);
            apply_records(&mut rec, &chunk);
            shared.recorded.fetch_add(1, Ordering::Release);
        }
        shared.progress.notify_all();
        chunk.clear();
        let _ = spare.send(chunk);
    }
}

/// Record the buffered events of `buf` in order. Bytes after the last
/// whole record (a stack length running past the buffer, a record cut
/// short: a guest writing the buffer itself) are one invalid event.
pub fn apply_records(rec: &mut Recorder, buf: &[u8]) {
    let mut records = EventRecords::new(buf);
    // The live table's slots of the events a few records ahead are asked
    // for before they are needed, so their cache misses overlap.
    let mut ahead = EventRecords::new(buf);
    for (ev, _) in ahead.by_ref().take(PREFETCH_AHEAD) {
        prefetch(rec, &ev);
    }
    for (ev, raw) in records.by_ref() {
        if let Some((next, _)) = ahead.next() {
            prefetch(rec, &next);
        }
        // free(NULL) is no event, and a reallocation's check needs its
        // stack only when its pointer is not a block.
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

/// How many records ahead [`apply_records`] prefetches the live table:
/// measured on serde_json's records (77,000 live blocks), the recorder
/// thread's CPU time, median of 9 runs, was 190 ms without a prefetch,
/// 175 ms 8 records ahead and 159 ms 32 ahead; on churn (a few live
/// blocks, every line cached) 32 ahead costs nothing measurable.
const PREFETCH_AHEAD: usize = 32;

/// Prefetch the live table's slots `ev` will look up.
#[inline]
fn prefetch(rec: &Recorder, ev: &EventRecord) {
    rec.model.prefetch(ev.a);
    if ev.tag == EVENT_REALLOC {
        rec.model.prefetch(ev.b);
    }
}
