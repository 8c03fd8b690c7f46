//! The check a writer makes of the trace it has just closed: the file is
//! read back as any viewer will read it, and it must be whole (no block cut
//! short, failing its checksum or out of sequence, its run-end record
//! last) and hold every heap event the writer wrote. A trace that fails is
//! never reported as written.

use crate::format::{Record, TraceReader};
use std::path::Path;

/// What a writer wrote, to compare with what reads back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Heap event records (alloc, free, realloc, grow).
    pub heap_events: u64,
    /// Whether a run-end record was written (the last record).
    pub run_end: bool,
}

/// Read the trace at `path` back whole and compare it with `written`; the
/// reason it does not read, or does not match, as an error.
pub fn check_written(path: &Path, written: Written) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open it again: {e}"))?;
    let mut reader = TraceReader::new(std::io::BufReader::with_capacity(1 << 16, file))
        .map_err(|e| e.to_string())?;
    let mut events = 0u64;
    let mut ended = false;
    loop {
        match reader.next_record() {
            Ok(Some(r)) => {
                if ended {
                    return Err("records follow its run-end record".into());
                }
                match r {
                    Record::Alloc { .. }
                    | Record::Free { .. }
                    | Record::Realloc { .. }
                    | Record::Grow { .. } => events += 1,
                    Record::RunEnd { .. } => ended = true,
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return Err(format!("{e} after {events} heap events")),
        }
    }
    if let Some(at) = reader.damaged().first() {
        return Err(format!("a block at offset {at:#x} fails its checksum"));
    }
    if let Some(at) = reader.out_of_sequence().first() {
        return Err(format!("the block at offset {at:#x} is out of sequence"));
    }
    if events != written.heap_events {
        return Err(format!(
            "it reads back {events} heap events of the {} written",
            written.heap_events
        ));
    }
    if ended != written.run_end {
        return Err(if ended {
            "it has a run-end record that was not written".into()
        } else {
            "its run-end record does not read back".into()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BlockSink, RunStatus, TraceWriter};

    fn write(path: &Path, events: u64) {
        let mut w = TraceWriter::new(BlockSink::new(std::fs::File::create(path).unwrap())).unwrap();
        w.set_block_bytes(16);
        for i in 0..events {
            w.alloc(1, 65536 + i * 8, 8, 0, 0).unwrap();
        }
        w.write(&Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            message: String::new(),
        })
        .unwrap();
        w.finish().unwrap().finish().unwrap();
    }

    #[test]
    fn a_whole_trace_passes_and_a_cut_or_short_one_is_named() {
        let dir = std::env::temp_dir().join(format!("heapscope-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.trace");
        write(&path, 100);
        let whole = Written {
            heap_events: 100,
            run_end: true,
        };
        assert_eq!(check_written(&path, whole), Ok(()));
        assert_eq!(
            check_written(
                &path,
                Written {
                    heap_events: 101,
                    ..whole
                }
            ),
            Err("it reads back 100 heap events of the 101 written".into())
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = check_written(&path, whole).unwrap_err();
        assert!(err.contains("ends mid-record"), "{err}");
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        let err = check_written(&path, whole).unwrap_err();
        assert!(
            err.contains("fails its checksum") || err.contains("malformed"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
