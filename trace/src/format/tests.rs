use super::*;
use crate::graph::{GraphBlock, HeapGraph, Ref, RootInfo, RootKind};
use crate::varint::{self, Cursor};

fn sample() -> Vec<Record> {
    vec![
        Record::RunStart {
            module: "leaky.wasm".into(),
            start_unix_ms: 1_700_000_000_000,
            memories: vec![MemoryInfo {
                initial_pages: 2,
                maximum_pages: None,
                memory64: false,
                page_size_log2: 16,
            }],
        },
        Record::String("main".into()),
        Record::String("leaky.c".into()),
        Record::Frame(FrameRecord {
            function: 0,
            file: Some(1),
            line: 12,
            column: 5,
            func_index: 4,
            code_offset: 0x99,
        }),
        Record::Stack {
            parent: 0,
            frame: 0,
        },
        Record::Alloc {
            kind: 1,
            ptr: 70_000,
            size: 24,
            align: 0,
            stack: 1,
        },
        Record::Alloc {
            kind: 2,
            ptr: 70_040,
            size: 300,
            align: 0,
            stack: 1,
        },
        Record::Time(1500),
        Record::Free {
            kind: 4,
            ptr: 70_000,
            stack: 1,
        },
        Record::Realloc {
            kind: 3,
            old: 70_040,
            new: 90_000,
            size: 1000,
            stack: 1,
        },
        Record::Grow {
            memory: 0,
            delta: 1,
            old_pages: Some(2),
            stack: 1,
        },
        Record::Grow {
            memory: 0,
            delta: 100_000,
            old_pages: None,
            stack: 0,
        },
        Record::InvocationStart {
            index: 0,
            name: "process".into(),
        },
        Record::InvocationEnd {
            index: 0,
            ok: false,
            message: "boom".into(),
        },
        Record::Warmup(500),
        Record::Layout(MemoryLayout {
            data_end: 5_312,
            stack_lo: 5_312,
            stack_hi: 70_848,
            heap_base: 70_848,
        }),
        Record::MemoryData {
            memory: 1,
            data_end: 1_024,
        },
        Record::InvocationStats(InvocationStats {
            index: 0,
            outcome: InvocationOutcome::PluginError,
            allocs: 12,
            frees: 10,
            bytes: 4_100,
            live_bytes: 2_056,
            live_blocks: 2,
            pages: 17,
            duration_us: 31,
            output_bytes: Some(0),
        }),
        Record::String("x".repeat(300)),
        Record::ExitBlock {
            ptr: 70_040,
            kind: LeakKind::Possible,
            rule: None,
        },
        Record::InvalidFree {
            ptr: 70_000,
            stack: 1,
            alloc_stack: 1,
            free_stack: 1,
        },
        Record::ExitBlock {
            ptr: 90_000,
            kind: LeakKind::Definite,
            rule: Some(1),
        },
        Record::HeapGraph(small_graph()),
        Record::SiteType { stack: 1, ty: 1 },
        Record::Module(ModuleInfo {
            index: 0,
            module_id: 0,
            name: "app".into(),
            instance_path: "root/app".into(),
            memories: vec![0, 3],
            instrumented: true,
            reason: None,
            layout: Some(MemoryLayout {
                data_end: 1_024,
                stack_lo: 1_024,
                stack_hi: 66_560,
                heap_base: 66_560,
            }),
        }),
        Record::Module(ModuleInfo {
            index: 1,
            module_id: 2,
            name: "<wasi adapter>".into(),
            instance_path: "root".into(),
            memories: vec![],
            instrumented: false,
            reason: Some("no allocator found".into()),
            layout: None,
        }),
        Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(3),
            message: String::new(),
        },
    ]
}

/// How many records of `recs` there are up to its heap graph, that one
/// included.
fn whole_graph(recs: &[Record]) -> usize {
    1 + recs
        .iter()
        .position(|r| matches!(r, Record::HeapGraph(_)))
        .unwrap()
}

/// A heap graph of two roots and three blocks (stacks 0 and 1, as
/// [`sample`] defines): a static holding a block that holds another, and
/// a lost block pointing at itself.
fn small_graph() -> HeapGraph {
    HeapGraph {
        label: "exit".into(),
        invocation: Some(7),
        seq: 12,
        roots: vec![
            RootInfo {
                kind: RootKind::Variable,
                name: "g_registry".into(),
                ty: Some("struct node *".into()),
                file: Some("registry.c".into()),
                line: 5,
                addr: 1_024,
                size: 4,
            },
            RootInfo {
                kind: RootKind::Stack,
                name: "the C stack".into(),
                ty: None,
                file: None,
                line: 0,
                addr: 60_000,
                size: 4_096,
            },
        ],
        blocks: vec![
            GraphBlock {
                ptr: 70_040,
                size: 44,
                stack: 1,
                seq: 3,
                holder: Ref::Root(0),
                interior: false,
                idom: Ref::Root(0),
                cycle: 0,
            },
            GraphBlock {
                ptr: 70_100,
                size: 44,
                stack: 1,
                seq: 9,
                holder: Ref::Block(0),
                interior: true,
                idom: Ref::Block(0),
                cycle: 0,
            },
            GraphBlock {
                ptr: 90_000,
                size: 56,
                stack: 0,
                seq: 11,
                holder: Ref::Block(2),
                interior: false,
                idom: Ref::None,
                cycle: 1,
            },
        ],
    }
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(bytes: &[u8]) -> (Vec<Record>, Option<TraceError>) {
    let mut r = match TraceReader::new(bytes) {
        Ok(r) => r,
        Err(e) => return (vec![], Some(e)),
    };
    let mut out = vec![];
    loop {
        match r.next_record() {
            Ok(Some(rec)) => out.push(rec),
            // Damaged blocks were skipped: said as the first one.
            Ok(None) => {
                let err = r.damaged().first().map(|&offset| TraceError::Damaged {
                    offset,
                    records: r.records(),
                });
                return (out, err);
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Whether `part` is `whole` with some records left out, in order.
fn subsequence(part: &[Record], whole: &[Record]) -> bool {
    let mut it = whole.iter();
    part.iter().all(|p| it.any(|w| w == p))
}

#[test]
fn round_trip() {
    let recs = sample();
    let bytes = encode(&recs);
    let (back, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back, recs);
}

#[test]
fn events_are_compact() {
    // An alloc followed by its free, with a one-byte stack id: 7 + 5 bytes.
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    w.alloc(1, 70_000, 24, 0, 5).unwrap();
    let after_alloc = w.len();
    w.free(4, 70_000, 5).unwrap();
    assert_eq!(after_alloc - 12, 2 + 1 + 3 + 1 + 1 + 1);
    assert_eq!(w.len() - after_alloc, 2 + 1 + 1 + 1);
}

#[test]
fn truncated_mid_record_yields_every_whole_record() {
    let recs = sample();
    let bytes = encode(&recs);
    // Offsets where each record ends, and the records of the file read
    // by then (a heap graph is several).
    let mut ends = vec![12];
    let mut read = vec![0];
    let mut r = TraceReader::new(&bytes[..]).unwrap();
    while r.next_record().unwrap().is_some() {
        ends.push(r.offset() as usize);
        read.push(r.records() as usize);
    }
    assert_eq!(read[whole_graph(&recs)] - read[whole_graph(&recs) - 1], 4);
    for cut in 12..bytes.len() {
        let (got, err) = read_all(&bytes[..cut]);
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        assert_eq!(got, recs[..whole], "cut at {cut}");
        if ends.contains(&cut) {
            assert!(
                err.is_none(),
                "cut at a record boundary {cut} is a clean end"
            );
        } else {
            match err {
                Some(TraceError::Truncated { records, offset }) => {
                    // Cut inside a heap graph's parts, or inside a record:
                    // cut where the graph or the record begins.
                    assert_eq!(records as usize, read[whole], "cut at {cut}");
                    assert_eq!(offset as usize, ends[whole], "cut at {cut}");
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn compressed_blocks_read_like_the_records_they_hold() {
    let recs = sample();
    let path = std::env::temp_dir().join(format!("hs-block-{}.trace", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let mut w = TraceWriter::new(BlockSink::new(file)).unwrap();
    for r in &recs {
        w.write(r).unwrap();
    }
    // Force a block boundary in the middle, then the rest.
    w.flush().unwrap();
    for _ in 0..10_000 {
        w.alloc(1, 70_000, 24, 0, 1).unwrap();
        w.free(4, 70_000, 1).unwrap();
    }
    w.finish().unwrap().finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(bytes[12], kind::CHECKED_BLOCK);
    let (back, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back[..recs.len()], recs[..]);
    assert_eq!(back.len(), recs.len() + 20_000);
    assert_eq!(
        back[recs.len() + 1],
        Record::Free {
            kind: 4,
            ptr: 70_000,
            stack: 1
        }
    );
    // 20,000 repetitive events compress to far less than a byte each.
    assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
    // Cut inside the second block: the first block's records survive.
    let (cut, err) = read_all(&bytes[..bytes.len() - 10]);
    assert!(matches!(err, Some(TraceError::Truncated { .. })));
    assert_eq!(cut, recs);
}

#[test]
fn corrupt_lengths_fail_instead_of_allocating() {
    let mut bytes = encode(&[]);
    bytes.extend_from_slice(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    let (_, err) = read_all(&bytes);
    assert!(
        matches!(err, Some(TraceError::Malformed { kind: 0x10, .. })),
        "{err:?}"
    );
}

/// An event naming a stack the trace never defined (0xFFFFFFFF in a
/// 78-byte trace made every viewer resize a table to that index and
/// abort) is malformed; the records before it still read.
#[test]
fn events_naming_undefined_stacks_are_malformed() {
    for bad in [
        Record::Alloc {
            kind: 1,
            ptr: 16,
            size: 8,
            align: 0,
            stack: u32::MAX,
        },
        Record::Free {
            kind: 4,
            ptr: 16,
            stack: 1,
        },
        Record::Grow {
            memory: 0,
            delta: 1,
            old_pages: Some(1),
            stack: 7,
        },
        Record::InvalidFree {
            ptr: 16,
            stack: 0,
            alloc_stack: 0,
            free_stack: u32::MAX,
        },
        // A site type naming a stack or a string the trace never defined.
        Record::SiteType { stack: 9, ty: 0 },
        Record::SiteType { stack: 0, ty: 0 },
    ] {
        let good = Record::Alloc {
            kind: 1,
            ptr: 16,
            size: 8,
            align: 0,
            stack: 0,
        };
        let (records, err) = read_all(&encode(&[good.clone(), bad.clone()]));
        assert_eq!(records, [good], "{bad:?}");
        assert!(
            matches!(err, Some(TraceError::Malformed { .. })),
            "{bad:?}: {err:?}"
        );
    }
}

/// A trace as the collector writes it: checked blocks behind a header
/// that says so.
fn sink_trace(name: &str, records: &[Record], blocks: usize) -> Vec<u8> {
    // One file per test: the tests run in parallel in one process.
    let path = std::env::temp_dir().join(format!(
        "heapscope-sink-{}-{name}.trace",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let mut w = TraceWriter::new(BlockSink::new(file)).unwrap();
    for chunk in records.chunks(records.len().div_ceil(blocks)) {
        for r in chunk {
            w.write(r).unwrap();
        }
        w.flush().unwrap();
    }
    w.finish().unwrap().finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// Every single-byte flip of a checked trace either leaves the records
/// read unchanged (the flip hit a header byte readers ignore) or is
/// reported (damaged, malformed, bad magic or version): none changes
/// the numbers silently.
#[test]
fn a_flipped_byte_anywhere_is_reported_never_read_as_data() {
    let recs = sample();
    let bytes = sink_trace("flips", &recs, 3);
    assert_eq!(bytes[10] as u16 & FLAG_CHECKED, FLAG_CHECKED);
    let (whole, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(whole, recs);
    for at in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut flipped = bytes.clone();
            flipped[at] ^= bit;
            let (records, err) = read_all(&flipped);
            if err.is_none() {
                assert_eq!(
                    records, recs,
                    "byte {at} bit {bit:#x} changed the records silently"
                );
                assert!(
                    at == 10 || at == 11,
                    "byte {at} bit {bit:#x} went unnoticed"
                );
            } else {
                // What was read around the damage is the truth with
                // records left out, never records changed.
                assert!(subsequence(&records, &recs), "byte {at} bit {bit:#x}");
            }
        }
    }
}

#[test]
fn a_damaged_block_is_named_and_the_ones_before_it_read() {
    let recs = sample();
    let bytes = sink_trace("damaged", &recs, 3);
    // The last block's last byte: its checksum fails.
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x10;
    let (records, err) = read_all(&flipped);
    assert!(matches!(err, Some(TraceError::Damaged { .. })), "{err:?}");
    assert!(err.unwrap().is_partial());
    assert!(!records.is_empty() && records.len() < recs.len());
    assert_eq!(records[..], recs[..records.len()]);
}

/// One bad block no longer loses the blocks after it: the reader skips
/// it, fills the tables it defined with stand-ins from the next block's
/// sync record, and reads on; the damage is named.
#[test]
fn blocks_after_a_damaged_one_are_still_read() {
    let recs = sample();
    let bytes = sink_trace("resync", &recs, 3);
    // The second block: the first checked block after the header's.
    let mut at = 12;
    let mut starts = Vec::new();
    while at < bytes.len() {
        starts.push(at);
        let mut c = Cursor::new(&bytes[at + 1..]);
        let len = c.u64().unwrap() as usize;
        at += 1 + c.position() + len;
    }
    assert_eq!(starts.len(), 3, "three blocks");
    let mut flipped = bytes.clone();
    flipped[starts[1] + 8] ^= 0x01;
    let mut r = TraceReader::new(&flipped[..]).unwrap();
    let mut got = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        got.push(rec);
    }
    assert_eq!(r.damaged(), [starts[1] as u64]);
    // The first block's records, then the last block's, in order.
    let per = recs.len().div_ceil(3);
    let mut want = recs[..per].to_vec();
    want.extend_from_slice(&recs[2 * per..]);
    assert_eq!(got, want);
}

/// The blocks of a checked trace: the byte range of each top-level
/// record after the header (the trace crate's tests share it).
pub(crate) fn blocks_of(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut at = 12;
    let mut out = Vec::new();
    while at < bytes.len() {
        let mut c = Cursor::new(&bytes[at + 1..]);
        let len = c.u64().unwrap() as usize;
        let end = at + 1 + c.position() + len;
        out.push(at..end);
        at = end;
    }
    out
}

/// Many interned strings, frames and stacks with events between, as a
/// program with thousands of call sites makes.
fn interning_heavy(long: usize) -> Vec<Record> {
    let mut recs = Vec::new();
    for i in 0..3000u32 {
        let name = if i % 1000 == 999 {
            "x".repeat(long)
        } else {
            format!("function_{i}_{}", "n".repeat((i % 50) as usize))
        };
        recs.push(Record::String(name));
        recs.push(Record::Frame(FrameRecord {
            function: i,
            file: None,
            line: i,
            column: 0,
            func_index: i,
            code_offset: i,
        }));
        recs.push(Record::Stack {
            parent: i,
            frame: i,
        });
        recs.push(Record::Alloc {
            kind: 1,
            ptr: 65536 + u64::from(i) * 16,
            size: 16,
            align: 0,
            stack: i + 1,
        });
    }
    recs
}

/// Regression: a string, frame or stack record that filled the buffer
/// flushed it before it was counted, so the next block's sync record
/// was one entry short and the reader refused the trace as malformed
/// (which flush fell where depended on timing in the collector). Every
/// block size, from a record a block up, reads back whole.
#[test]
fn interning_records_at_a_block_boundary_keep_the_sync_in_step() {
    let recs = interning_heavy(300 * 1024);
    for block_bytes in [1, 7, 64, 1000, 4096, FLUSH_AT] {
        let path = std::env::temp_dir().join(format!(
            "heapscope-sync-{}-{block_bytes}.trace",
            std::process::id()
        ));
        let mut w =
            TraceWriter::new(BlockSink::new(std::fs::File::create(&path).unwrap())).unwrap();
        w.set_block_bytes(block_bytes);
        for r in &recs {
            w.write(r).unwrap();
        }
        w.finish().unwrap().finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut r = TraceReader::new(&bytes[..]).unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r
            .next_record()
            .unwrap_or_else(|e| panic!("{block_bytes}: {e}"))
        {
            got.push(rec);
        }
        assert!(r.damaged().is_empty() && r.out_of_sequence().is_empty());
        assert_eq!(got.len(), recs.len(), "block size {block_bytes}");
        assert_eq!(got, recs, "block size {block_bytes}");
    }
}

/// A string longer than a block may hold is cut, never written into a
/// block the reader refuses.
#[test]
fn strings_past_the_bound_are_cut_to_fit_a_block() {
    let huge = "é".repeat(MAX_BLOCK); // 2 bytes a character
    let recs = vec![
        Record::String(huge.clone()),
        Record::RunEnd {
            status: RunStatus::Trapped,
            exit_code: None,
            message: huge.clone(),
        },
    ];
    let bytes = sink_trace("huge", &recs, 1);
    let (got, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    let Record::String(s) = &got[0] else {
        panic!("{:?}", got[0])
    };
    assert_eq!(s.len(), MAX_STRING - 1, "cut at a character boundary");
    assert!(s.ends_with('…') && huge.starts_with(&s[..s.len() - '…'.len_utf8()]));
    let Record::RunEnd { message, .. } = &got[1] else {
        panic!("{:?}", got[1])
    };
    assert_eq!(message, s);
}

/// A whole block repeated, left out or moved is damage (the trace is
/// partial), even where every block passes its checksum and the table
/// sizes agree: the blocks' sequence numbers say so.
#[test]
fn a_block_repeated_left_out_or_moved_is_out_of_sequence() {
    // Events only after the first block: the later blocks intern
    // nothing, and a block frees what it allocates, so a repeated or
    // missing block leaves the sync records' counts and pointer bases
    // as they were.
    let mut recs = sample()[..5].to_vec();
    for i in 0..8u64 {
        recs.push(Record::Alloc {
            kind: 1,
            ptr: 70_000,
            size: 24 + i,
            align: 0,
            stack: 1,
        });
        recs.push(Record::Free {
            kind: 1,
            ptr: 70_000,
            stack: 1,
        });
    }
    let bytes = sink_trace("sequence", &recs, 7);
    let blocks = blocks_of(&bytes);
    assert!(blocks.len() >= 5, "{} blocks", blocks.len());
    let whole = read_all(&bytes);
    assert!(whole.1.is_none(), "{:?}", whole.1);
    let rebuild = |order: &[usize]| -> Vec<u8> {
        let mut out = bytes[..12].to_vec();
        for &i in order {
            out.extend_from_slice(&bytes[blocks[i].clone()]);
        }
        out
    };
    let all: Vec<usize> = (0..blocks.len()).collect();
    let mut repeated = all.clone();
    repeated.insert(3, 2);
    let mut left_out = all.clone();
    left_out.remove(2);
    let mut moved = all.clone();
    moved.swap(2, 3);
    let mut first_again = all.clone();
    first_again.insert(2, 0);
    for (what, order) in [
        ("repeated", repeated),
        ("left out", left_out),
        ("moved", moved),
        ("the first block repeated", first_again),
    ] {
        let changed = rebuild(&order);
        let mut r = TraceReader::new(&changed[..]).unwrap();
        let mut got = Vec::new();
        while let Ok(Some(rec)) = r.next_record() {
            got.push(rec);
        }
        assert!(
            !r.out_of_sequence().is_empty(),
            "{what}: read as a whole trace of {} records",
            got.len()
        );
        assert!(subsequence(&got, &recs), "{what}");
    }
}

#[test]
fn unknown_kinds_are_skipped() {
    let mut bytes = encode(&sample()[..1]);
    bytes.extend_from_slice(&[0x7f, 3, 1, 2, 3]);
    bytes.extend_from_slice(&encode(&[Record::Time(9)])[12..]);
    let (got, err) = read_all(&bytes);
    assert!(err.is_none());
    assert_eq!(got.len(), 2);
    assert_eq!(got[1], Record::Time(9));
}

#[test]
fn bad_magic_and_future_version_are_refused() {
    assert!(matches!(
        TraceReader::new(&b"not a trace at all"[..]),
        Err(TraceError::BadMagic)
    ));
    let mut bytes = encode(&[]);
    bytes[8] = 99;
    assert!(matches!(
        TraceReader::new(&bytes[..]),
        Err(TraceError::Version(99))
    ));
}

#[test]
fn stacks_resolve_outermost_first() {
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    let main = w.string("main").unwrap();
    let leaf = w.string("leaf").unwrap();
    let f0 = w
        .frame(&FrameRecord {
            function: main,
            file: None,
            line: 0,
            column: 0,
            func_index: 1,
            code_offset: 2,
        })
        .unwrap();
    let f1 = w
        .frame(&FrameRecord {
            function: leaf,
            file: None,
            line: 0,
            column: 0,
            func_index: 3,
            code_offset: 4,
        })
        .unwrap();
    let s1 = w.stack(0, f0).unwrap();
    let s2 = w.stack(s1, f1).unwrap();
    assert_eq!((s1, s2), (1, 2));
    let bytes = w.finish().unwrap();
    let mut r = TraceReader::new(&bytes[..]).unwrap();
    while r.next_record().unwrap().is_some() {}
    let names: Vec<_> = r.stack(2).iter().map(|f| f.function.as_str()).collect();
    assert_eq!(names, ["main", "leaf"]);
}

/// A heap graph of `n` blocks 48 bytes apart: a list root 0 holds (each
/// block holds the next, which it dominates), its last quarter lost
/// blocks that point at themselves.
fn list_graph(n: u32) -> HeapGraph {
    let lost = n - n / 4;
    HeapGraph {
        label: "invocation:1000".into(),
        invocation: Some(1000),
        seq: 2 * u64::from(n),
        roots: small_graph().roots,
        blocks: (0..n)
            .map(|i| {
                let prev = if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i - 1)
                };
                GraphBlock {
                    ptr: 65_536 + 48 * u64::from(i),
                    size: 40,
                    stack: 1,
                    seq: u64::from(i),
                    holder: if i < lost { prev } else { Ref::Block(i) },
                    interior: false,
                    idom: if i < lost { prev } else { Ref::None },
                    cycle: if i < lost { 0 } else { i - lost + 1 },
                }
            })
            .collect(),
    }
}

/// The records [`sample`] starts with (they define stack 1), a heap graph,
/// the end of the run.
fn graph_trace(g: HeapGraph) -> Vec<Record> {
    let mut recs = sample()[..5].to_vec();
    recs.push(Record::HeapGraph(g));
    recs.push(Record::RunEnd {
        status: RunStatus::Exited,
        exit_code: Some(0),
        message: String::new(),
    });
    recs
}

/// A graph of 10,000 blocks is several records (4,096 blocks each at
/// most), read back as the one graph whatever block boundaries fall
/// between them, in a few bytes a block.
#[test]
fn a_heap_graph_reads_back_whole_across_blocks() {
    let g = list_graph(10_000);
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    w.stack(0, 0).unwrap();
    let before = w.len();
    w.heap_graph(&g).unwrap();
    let bytes = w.len() - before;
    // Per block: ptr step 1, size 1, stack 1, seq 1-2, holder and idom
    // 1-3 each, flags 1-3.
    assert!(bytes < 11 * 10_000, "{bytes} bytes");
    eprintln!("a heap graph of 10,000 blocks: {bytes} bytes before compression");
    let recs = graph_trace(g);
    for block_bytes in [1, 1000, FLUSH_AT] {
        let path = std::env::temp_dir().join(format!(
            "heapscope-graph-{}-{block_bytes}.trace",
            std::process::id()
        ));
        let mut w =
            TraceWriter::new(BlockSink::new(std::fs::File::create(&path).unwrap())).unwrap();
        w.set_block_bytes(block_bytes);
        for r in &recs {
            w.write(r).unwrap();
        }
        let written = w.written();
        w.finish().unwrap().finish().unwrap();
        crate::verify::check_written(&path, written).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (got, err) = read_all(&bytes);
        assert!(err.is_none(), "{block_bytes}: {err:?}");
        assert_eq!(got, recs, "block size {block_bytes}");
    }
}

/// A damaged block in the middle of a graph's parts loses that graph,
/// never makes another out of the rest: the parts after it are skipped,
/// the records after them read, the damage named.
#[test]
fn a_damaged_block_inside_a_heap_graph_loses_the_graph_only() {
    let recs = graph_trace(list_graph(10_000));
    let path = std::env::temp_dir().join(format!(
        "heapscope-graph-damaged-{}.trace",
        std::process::id()
    ));
    let mut w = TraceWriter::new(BlockSink::new(std::fs::File::create(&path).unwrap())).unwrap();
    w.set_block_bytes(1000);
    for r in &recs {
        w.write(r).unwrap();
    }
    w.finish().unwrap().finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let blocks = blocks_of(&bytes);
    // The records before the graph with its graph record, its roots and
    // its first 4,096 blocks; its next 4,096; its last 1,808; the run's
    // end.
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    for damaged in 0..3 {
        let mut flipped = bytes.clone();
        flipped[blocks[damaged].start + 9] ^= 0x01;
        let mut r = TraceReader::new(&flipped[..]).unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            got.push(rec);
        }
        assert_eq!(r.damaged(), [blocks[damaged].start as u64]);
        let mut want = if damaged == 0 {
            vec![]
        } else {
            recs[..5].to_vec()
        };
        want.push(recs[6].clone());
        assert_eq!(got, want, "block {damaged} damaged");
    }
}

/// A record of `kind` holding `fields` as varints.
fn raw(kind: u8, fields: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    for &f in fields {
        varint::put_u64(&mut body, f);
    }
    let mut out = vec![kind];
    varint::put_u64(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

/// A graph record labelled "x" announcing `roots` and `blocks`.
fn raw_graph(roots: u64, blocks: u64) -> Vec<u8> {
    // "x" is a string of length 1: its byte is 0x78.
    raw(kind::HEAP_GRAPH, &[1, 0x78, 0, 5, roots, blocks])
}

/// A heap graph is untrusted input like any record: a reference past the
/// graph, a stack never defined, blocks out of order or past the count,
/// a record between its parts, a part without its graph are malformed;
/// counts larger than the file are a trace cut short, never an allocation
/// of their size. The records before it still read.
#[test]
fn malformed_heap_graphs_are_refused_never_trusted() {
    let good = Record::Alloc {
        kind: 1,
        ptr: 16,
        size: 8,
        align: 0,
        stack: 0,
    };
    // ptr, size, stack, seq, holder, idom, flags
    let block = |ptr, stack, holder, idom, flags| vec![ptr, 8, stack, 0, holder, idom, flags];
    let blocks = |bs: &[Vec<u64>]| raw(kind::GRAPH_BLOCKS, &bs.concat());
    let root = raw(kind::GRAPH_ROOT, &[0, 1, 0x67, 0, 0, 5, 1024, 4]);
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        (
            "a block past the graph's",
            [raw_graph(0, 1), blocks(&[block(16, 0, 4, 0, 0)])].concat(),
        ),
        (
            "a root past the graph's",
            [raw_graph(0, 1), blocks(&[block(16, 0, 0, 1, 0)])].concat(),
        ),
        (
            "a stack never defined",
            [raw_graph(0, 1), blocks(&[block(16, 3, 0, 0, 0)])].concat(),
        ),
        (
            "two blocks at one address",
            [
                raw_graph(0, 2),
                blocks(&[block(16, 0, 0, 0, 0), block(0, 0, 0, 0, 0)]),
            ]
            .concat(),
        ),
        (
            "an address past 2^64",
            [
                raw_graph(0, 2),
                blocks(&[block(u64::MAX, 0, 0, 0, 0), block(1, 0, 0, 0, 0)]),
            ]
            .concat(),
        ),
        (
            "more blocks than announced",
            [
                raw_graph(0, 1),
                blocks(&[block(16, 0, 0, 0, 0), block(8, 0, 0, 0, 0)]),
            ]
            .concat(),
        ),
        (
            "a cycle number past u32",
            [raw_graph(0, 1), blocks(&[block(16, 0, 0, 0, 1 << 40)])].concat(),
        ),
        (
            "blocks before the roots",
            [raw_graph(1, 1), blocks(&[block(16, 0, 1, 1, 0)])].concat(),
        ),
        (
            "more roots than announced",
            [raw_graph(1, 1), root.clone(), root.clone()].concat(),
        ),
        (
            "a root of an unknown kind",
            [
                raw_graph(1, 0),
                raw(kind::GRAPH_ROOT, &[9, 0, 0, 0, 0, 0, 0]),
            ]
            .concat(),
        ),
        (
            "an empty run of blocks",
            [raw_graph(0, 1), raw(kind::GRAPH_BLOCKS, &[])].concat(),
        ),
        (
            "another record between its parts",
            [
                raw_graph(0, 1),
                raw(kind::TIME, &[5]),
                blocks(&[block(16, 0, 0, 0, 0)]),
            ]
            .concat(),
        ),
        (
            "a graph record before the last one is whole",
            [raw_graph(0, 1), raw_graph(0, 0)].concat(),
        ),
        ("blocks without a graph", blocks(&[block(16, 0, 0, 0, 0)])),
        ("a root without a graph", root.clone()),
    ];
    for (what, bad) in malformed {
        let mut bytes = encode(std::slice::from_ref(&good));
        bytes.extend_from_slice(&bad);
        let (records, err) = read_all(&bytes);
        assert_eq!(records, std::slice::from_ref(&good), "{what}");
        assert!(
            matches!(err, Some(TraceError::Malformed { .. })),
            "{what}: {err:?}"
        );
    }
    // The same bytes made right read as a graph.
    let mut bytes = encode(std::slice::from_ref(&good));
    bytes.extend_from_slice(&raw_graph(1, 2));
    bytes.extend_from_slice(&root);
    bytes.extend_from_slice(&blocks(&[block(16, 0, 1, 1, 0), block(32, 0, 2, 2, 3)]));
    let (records, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    let Record::HeapGraph(g) = &records[1] else {
        panic!("{records:?}")
    };
    assert_eq!(g.label, "x");
    assert_eq!((g.invocation, g.seq), (None, 5));
    assert_eq!(g.roots[0].name, "g");
    assert_eq!(g.roots[0].kind, RootKind::Variable);
    assert_eq!((g.roots[0].addr, g.roots[0].size), (1024, 4));
    let got: Vec<_> = g
        .blocks
        .iter()
        .map(|b| (b.ptr, b.holder, b.idom, b.interior, b.cycle))
        .collect();
    assert_eq!(
        got,
        [
            (16, Ref::Root(0), Ref::Root(0), false, 0),
            (48, Ref::Block(0), Ref::Block(0), true, 1)
        ]
    );
    // Counts of four billion roots and blocks, and nothing after: a trace
    // cut at the graph record, read in no more memory than its bytes.
    let mut bytes = encode(std::slice::from_ref(&good));
    let at = bytes.len();
    bytes.extend_from_slice(&raw_graph(u64::from(u32::MAX), u64::from(u32::MAX)));
    bytes.extend_from_slice(&root);
    let (records, err) = read_all(&bytes);
    assert_eq!(records, std::slice::from_ref(&good));
    match err {
        Some(TraceError::Truncated { offset, records }) => {
            assert_eq!((offset as usize, records), (at, 1));
        }
        other => panic!("{other:?}"),
    }
    // Counts past u32 are malformed.
    let mut bytes = encode(std::slice::from_ref(&good));
    bytes.extend_from_slice(&raw_graph(0, 1 << 32));
    assert!(matches!(
        read_all(&bytes).1,
        Some(TraceError::Malformed { .. })
    ));
}

/// The writer never writes a graph the reader refuses: nothing of it is
/// written, and the error says why.
#[test]
fn the_writer_refuses_a_graph_the_reader_would() {
    let mut unordered = small_graph();
    unordered.blocks.swap(0, 2);
    let mut past = small_graph();
    past.blocks[1].idom = Ref::Block(3);
    let mut past_root = small_graph();
    past_root.blocks[0].holder = Ref::Root(2);
    // A fresh writer has defined no stack; the graph names stack 1.
    let undefined_stack = small_graph();
    for (g, stacks, why) in [
        (unordered, 1, "is not after"),
        (past, 1, "refers past"),
        (past_root, 1, "refers past"),
        (undefined_stack, 0, "names stack 1"),
    ] {
        let mut w = TraceWriter::new(Vec::new()).unwrap();
        for _ in 0..stacks {
            w.stack(0, 0).unwrap();
        }
        let before = w.len();
        let err = w.heap_graph(&g).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(why), "{err}");
        assert_eq!(w.len(), before, "nothing written");
    }
    // The same graph once its stack is defined.
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    w.stack(0, 0).unwrap();
    w.heap_graph(&small_graph()).unwrap();
}

/// A module record the reader cannot trust: more memories than a run has,
/// a memory number past 255, a memory listed twice. Each is malformed and
/// loses only itself; the writer refuses to write any of them.
#[test]
fn malformed_module_records_are_refused_and_never_written() {
    let good = Record::Alloc {
        kind: 1,
        ptr: 16,
        size: 8,
        align: 0,
        stack: 0,
    };
    let module = |memories: Vec<u32>| ModuleInfo {
        index: 7,
        module_id: 1,
        name: "m".into(),
        instance_path: "root".into(),
        memories,
        instrumented: true,
        reason: None,
        layout: None,
    };
    // index, module id, name, path, flags, reason, then the memories.
    let head = |n: u64| {
        let mut p = Vec::new();
        for v in [7u64, 1] {
            varint::put_u64(&mut p, v);
        }
        varint::put_str(&mut p, "m");
        varint::put_str(&mut p, "root");
        for v in [1u64, 0, n] {
            varint::put_u64(&mut p, v);
        }
        p
    };
    let record = |payload: Vec<u8>| {
        let mut r = vec![kind::MODULE];
        varint::put_u64(&mut r, payload.len() as u64);
        r.extend_from_slice(&payload);
        r
    };
    let mut too_many = head(257);
    for m in 0..257u64 {
        varint::put_u64(&mut too_many, m);
    }
    let mut past = head(1);
    varint::put_u64(&mut past, 256);
    let mut twice = head(2);
    varint::put_u64(&mut twice, 4);
    varint::put_u64(&mut twice, 4);
    // A count claiming memories the payload does not hold.
    let short = head(200);
    // A layout announced (flag bit 1) but missing.
    let mut no_layout = Vec::new();
    for v in [7u64, 1] {
        varint::put_u64(&mut no_layout, v);
    }
    varint::put_str(&mut no_layout, "m");
    varint::put_str(&mut no_layout, "root");
    for v in [3u64, 0, 1, 0] {
        varint::put_u64(&mut no_layout, v);
    }
    for bad in [too_many, past, twice, short, no_layout] {
        let mut bytes = encode(std::slice::from_ref(&good));
        bytes.extend_from_slice(&record(bad));
        let (records, err) = read_all(&bytes);
        assert_eq!(records, std::slice::from_ref(&good));
        assert!(
            matches!(err, Some(TraceError::Malformed { kind: 0x40, .. })),
            "{err:?}"
        );
    }
    // The same well-formed: read back.
    let mut ok = head(2);
    varint::put_u64(&mut ok, 0);
    varint::put_u64(&mut ok, 255);
    let mut bytes = encode(std::slice::from_ref(&good));
    bytes.extend_from_slice(&record(ok));
    let (records, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        records,
        [good.clone(), Record::Module(module(vec![0, 255]))]
    );
    // The writer refuses what the reader would.
    let mut w = TraceWriter::new(Vec::new()).unwrap();
    for memories in [(0..257).collect(), vec![256], vec![4, 4]] {
        let e = w.module(&module(memories)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert!(w.is_empty(), "nothing of a refused module is written");
}

/// A damaged block holding one module record loses that record only: the
/// module records in the blocks around it read back.
#[test]
fn a_damaged_block_loses_only_its_module_record() {
    let module = |index: u32| {
        Record::Module(ModuleInfo {
            index,
            module_id: index,
            name: format!("m{index}"),
            instance_path: "root".into(),
            memories: vec![index],
            instrumented: true,
            reason: None,
            layout: None,
        })
    };
    let recs: Vec<Record> = (0..3).map(module).collect();
    let mut bytes = sink_trace("modules", &recs, 3);
    let blocks = blocks_of(&bytes);
    assert_eq!(blocks.len(), 3);
    // A byte inside the middle block's compressed records.
    let at = blocks[1].end - 2;
    bytes[at] ^= 0x55;
    let mut r = TraceReader::new(&bytes[..]).unwrap();
    let mut got = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        got.push(rec);
    }
    assert_eq!(got, [module(0), module(2)]);
    assert_eq!(r.damaged().len(), 1);
}
