//! The trace driver (mutated traces through every view) and the event
//! buffer driver (forged buffers through the collector's decoder).

use crate::{no_panic, Rng};
use anyhow::{bail, Result};
use heapscope_trace::abi::{self, EventRecord, Site, SiteFrame, SiteTable};
use heapscope_trace::format::{
    FrameRecord, InvocationOutcome, InvocationStats, LeakKind, MemoryInfo, Record, RunStatus,
};
use heapscope_trace::TraceWriter;
use heapscope_viewer::flame::Weight;
use heapscope_viewer::text::TopBy;

/// How one mutated trace came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceVerdict {
    /// Read whole (the mutation left it valid), every view made.
    Whole,
    /// Read in part; every view made and the warning given.
    Partial,
    /// Refused with an error, as a bad file should be.
    Refused,
}

/// A `Write` into a shared buffer, for the trace sink's thread.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A valid trace of a small run: strings, frames, a trie of stacks,
/// allocations, frees, reallocations, grows, a failed growth, an invalid
/// free, invocation statistics, the exit blocks and the end of the run.
/// `checked`: written as `heapscope run` writes, in compressed blocks with
/// checksums; else as plain records (the format's older form).
pub fn base_trace(checked: bool) -> Vec<u8> {
    if checked {
        let out = Shared::default();
        let sink = heapscope_trace::format::BlockSink::new(out.clone());
        let mut w = TraceWriter::new(sink).expect("a writer");
        // A block per 25 records, as the collector flushes every 100 ms:
        // a mutation then meets sync records and blocks after damage.
        for (i, r) in base_records().iter().enumerate() {
            w.write(r).expect("writing to memory");
            if i % 25 == 24 {
                w.flush().expect("writing to memory");
            }
        }
        w.finish()
            .expect("writing to memory")
            .finish()
            .expect("writing to memory");
        let bytes = out.0.lock().expect("not poisoned").clone();
        return bytes;
    }
    let mut w = TraceWriter::new(Vec::new()).expect("a writer on a Vec");
    for r in base_records() {
        w.write(&r).expect("writing to a Vec");
    }
    w.finish().expect("writing to a Vec")
}

fn base_records() -> Vec<Record> {
    let mut recs = vec![Record::RunStart {
        module: "fuzz.wasm".into(),
        start_unix_ms: 1_700_000_000_000,
        memories: vec![MemoryInfo {
            initial_pages: 2,
            maximum_pages: Some(64),
            memory64: false,
            page_size_log2: 16,
        }],
    }];
    for name in [
        "main",
        "parse\u{1b}[2J",
        "alloc_node",
        "grow_table",
        "lib.c",
    ] {
        recs.push(Record::String(name.into()));
    }
    for f in 0..4u32 {
        recs.push(Record::Frame(FrameRecord {
            function: f,
            file: Some(4),
            line: 10 + f,
            column: 1,
            func_index: f,
            code_offset: 100 * f,
        }));
    }
    // Stacks 1..=6: main, main>parse, main>parse>alloc_node, main>grow,
    // main>parse>parse, main>parse>parse>alloc_node.
    for (parent, frame) in [(0, 0), (1, 1), (2, 2), (1, 3), (2, 1), (5, 2)] {
        recs.push(Record::Stack { parent, frame });
    }
    recs.push(Record::Warmup(1));
    let mut live = Vec::new();
    for i in 0..60u64 {
        let ptr = 70_000 + i * 32;
        let stack = [3, 6, 2][i as usize % 3];
        recs.push(Record::Alloc {
            kind: 1,
            ptr,
            size: 8 + i,
            align: 8,
            stack,
        });
        live.push(ptr);
        if i % 4 == 1 {
            recs.push(Record::Free {
                kind: 2,
                ptr: live.remove(0),
                stack: 2,
            });
        }
        if i % 7 == 3 {
            let old = live.pop().expect("a block");
            recs.push(Record::Realloc {
                kind: 4,
                old,
                new: old + 4,
                size: 40,
                stack: 6,
            });
            live.push(old + 4);
        }
        if i % 10 == 0 {
            recs.push(Record::Grow {
                memory: 0,
                delta: 1,
                old_pages: Some(2 + i / 10),
                stack: 4,
            });
            recs.push(Record::Time(1000 * i));
            recs.push(Record::InvocationStats(InvocationStats {
                index: i / 10,
                outcome: InvocationOutcome::Ok,
                allocs: 10,
                frees: 3,
                bytes: 200 + i,
                live_bytes: 100 * i,
                live_blocks: i,
                pages: 2 + i / 10,
                duration_us: 50,
                output_bytes: Some(4),
            }));
        }
    }
    recs.push(Record::Grow {
        memory: 0,
        delta: 1000,
        old_pages: None,
        stack: 4,
    });
    recs.push(Record::InvalidFree {
        ptr: 12,
        stack: 3,
        alloc_stack: 0,
        free_stack: 0,
    });
    // As the collector writes them: the exit blocks, then the end of the
    // run, last.
    for (i, &ptr) in live.iter().enumerate() {
        let kind = [LeakKind::Definite, LeakKind::Possible, LeakKind::Reachable][i % 3];
        recs.push(Record::ExitBlock {
            ptr,
            kind,
            rule: None,
        });
    }
    recs.push(Record::RunEnd {
        status: RunStatus::Exited,
        exit_code: Some(0),
        message: String::new(),
    });
    recs
}

/// Mutate `base` by the recipe of `seed`: flip bytes, cut, duplicate a
/// range, insert random bytes, zero a range, or several of these.
pub fn mutate(base: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut t = base.to_vec();
    for _ in 0..=rng.below(3) {
        let n = t.len() as u64;
        match rng.below(6) {
            0 | 1 => {
                let at = rng.below(n) as usize;
                t[at] ^= 1 << rng.below(8);
            }
            2 => t.truncate(rng.below(n) as usize),
            3 => {
                let a = rng.below(n) as usize;
                let b = (a + rng.below(64) as usize).min(t.len());
                let piece = t[a..b].to_vec();
                let at = rng.below(n) as usize;
                t.splice(at..at, piece);
            }
            4 => {
                let at = rng.below(n) as usize;
                let len = rng.below(16) as usize + 1;
                let junk = rng.bytes(len);
                t.splice(at..at, junk);
            }
            _ => {
                let a = rng.below(n) as usize;
                let b = (a + rng.below(32) as usize).min(t.len());
                t[a..b].fill(0);
            }
        }
        if t.is_empty() {
            break;
        }
    }
    t
}

/// Read the mutation `seed` of the base trace and make every view of it.
/// An error is a panic, or a partial trace whose analysis gives no warning.
pub fn trace_case(seed: u64, dir: &std::path::Path) -> Result<TraceVerdict> {
    // One seed in four mutates the plain form, the rest the checked form.
    let checked = !seed.is_multiple_of(4);
    let base = base_trace(checked);
    let bytes = if seed == 0 {
        base.clone()
    } else {
        mutate(&base, seed)
    };
    let path = dir.join(format!("fuzz-{seed}.trace"));
    std::fs::write(&path, &bytes)?;
    let out = no_panic("the views", || views(&path));
    let _ = std::fs::remove_file(&path);
    let verdict = out??;
    // A checked trace reads whole only if its records are unchanged: a
    // change outside the header's version and flags is always seen.
    let body_changed =
        bytes.len() != base.len() || bytes[..8] != base[..8] || bytes[12..] != base[12..];
    if checked && verdict == TraceVerdict::Whole && body_changed {
        bail!("a changed checked trace read as whole");
    }
    Ok(verdict)
}

fn views(path: &std::path::Path) -> Result<TraceVerdict> {
    let mut a = match heapscope_viewer::analyze(path) {
        Ok(a) => a,
        Err(_) => return Ok(TraceVerdict::Refused),
    };
    let partial = !a.warnings.is_empty();
    if heapscope_viewer::analysis::peak_snapshot(path, &mut a).is_err() {
        return Ok(TraceVerdict::Refused);
    }
    use heapscope_viewer::{diff, export, flame, html, text, timeline};
    let _ = text::leaks(&a, 0, true);
    let _ = text::summary(&a);
    for by in [TopBy::Bytes, TopBy::Count, TopBy::Peak, TopBy::Leaked] {
        let _ = text::top(&a, by, 10, 0);
    }
    for w in [
        Weight::AllocatedBytes,
        Weight::Allocations,
        Weight::LeakedBytes,
        Weight::PeakBytes,
    ] {
        let _ = flame::folded(&a, w);
        flame::flamegraph(&a, w, &mut Vec::new())?;
        let d = diff::diff(&a, &a, w);
        let _ = diff::text(&d, 10);
        flame::differential(&a, &a, w, &mut Vec::new())?;
    }
    let _ = timeline::svg(&a, 800, 300);
    let _ = html::report(&a);
    export::pprof(&a, &mut Vec::new())?;
    let _ = export::dhat(&a);
    let _ = serde_json::to_string(&a)?;
    let dumped = text::dump(std::fs::File::open(path)?, &mut Vec::new());
    if partial && a.summary.status == RunStatus::Exited && a.warnings.is_empty() {
        bail!("a partial trace read as whole");
    }
    if let Ok(w) = &dumped {
        if partial && w.is_empty() {
            bail!("`dump` said nothing of a trace `analyze` called partial");
        }
    }
    Ok(if partial {
        TraceVerdict::Partial
    } else {
        TraceVerdict::Whole
    })
}

/// An event buffer of `seed`: whole records with forged fields (tags,
/// kinds, pointers, sizes near 2^64, site ids the module lacks), then
/// possibly a record cut short or with a stack length past the buffer.
pub fn event_buffer(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut buf = Vec::new();
    for _ in 0..rng.below(40) {
        let tag = [
            abi::EVENT_ALLOC,
            abi::EVENT_FREE,
            abi::EVENT_REALLOC,
            3,
            255,
        ][rng.below(5) as usize];
        let pick = |rng: &mut Rng| match rng.below(4) {
            0 => rng.next_u64(),
            1 => u64::MAX - rng.below(16),
            _ => 1024 + rng.below(1 << 16),
        };
        let rec = EventRecord {
            tag,
            kind: (rng.below(1 << 24)) as i32 & abi::EVENT_KIND_MASK as i32,
            a: pick(&mut rng),
            b: pick(&mut rng),
            c: pick(&mut rng),
        };
        let depth = rng.below(12) as usize;
        let stack: Vec<u8> = (0..depth)
            .flat_map(|_| (rng.below(6) as u32).to_le_bytes())
            .collect();
        let start = buf.len();
        rec.encode(&stack, &mut buf);
        if rng.below(20) == 0 {
            // A stack length running past the buffer, or not whole words.
            let at = start + abi::EVENT_STACK_LEN_OFFSET as usize;
            let bad = if rng.below(2) == 0 { u32::MAX } else { 6 };
            buf[at..at + 4].copy_from_slice(&u32::to_le_bytes(bad));
        }
    }
    if rng.below(4) == 0 {
        let len = rng.below(40) as usize;
        let junk = rng.bytes(len);
        buf.extend_from_slice(&junk);
    }
    buf
}

/// Decode and record the event buffer of `seed` with the collector's
/// recorder; returns (events applied, invalid events).
pub fn events_case(seed: u64) -> Result<(u64, u64)> {
    let buf = event_buffer(seed);
    no_panic("the event decoder", || {
        let sites = SiteTable {
            sites: (0..4)
                .map(|i| Site {
                    func_index: i,
                    code_offset: 10 * i,
                    frames: vec![SiteFrame {
                        function: format!("f{i}"),
                        ..SiteFrame::default()
                    }],
                })
                .collect(),
        };
        let mut rec = heapscope_collector::recorder::Recorder::new(sites, None)?;
        rec.model.start(&[MemoryInfo {
            initial_pages: 2,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        }]);
        heapscope_collector::deferred::apply_records(&mut rec, &buf);
        let m = &rec.model;
        if m.live()
            .any(|(ptr, b)| ptr.saturating_add(b.size) > 2 * 65536)
        {
            bail!("a block outside the two-page memory was recorded");
        }
        Ok((m.events(), m.invalid_events))
    })?
}
