//! The session format: how a host other than heapscope's own (the
//! JavaScript collector, `collector/js/heapscope.mjs`, in Node or a
//! browser) hands heapscope what an instrumented module reported. The
//! collector crate replays a session into a trace (`heapscope run MODULE
//! --session FILE`); this module holds the format's constants and its
//! codec, beside the trace format ([`crate::format`]) and the hook ABI
//! ([`crate::abi`]) whose event records a session carries. The JavaScript
//! collector writes sessions with the tags of `collector/js/abi.mjs`,
//! which a test in the collector crate generates from this module's and
//! [`crate::abi`]'s constants, and fails when the file is stale.
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
//! | [`TRAP_FRAMES`] | `count: u32`, then per frame `function: u32, offset: u32`: the wasm frames of the engine's own stack of a trap (V8's `error.stack`: `wasm-function[F]:0xOFFSET`, innermost first, offsets in the instrumented module's file); written just before [`END`] |
//! | [`HANDED`] | `count: u32`, then that many `u64`: integers the module passed to the app's JavaScript functions it imports (at most [`MAX_HANDED`] distinct ones), which JavaScript may keep; the leak scan calls a block only they point to possibly lost; written just before [`END`] |
//! | [`INITIAL`] | `index: u32, pages: u64`: the memory's size when the instance was made (an imported memory the app created larger than the module's declared minimum: emnapi's shared memory) |
//! | [`END`] | `status: u8` (0 exited, 1 trapped), `code: i32` (`i32::MIN`: none), `sp_init: u64`, `sp_now: u64` (`u64::MAX`: none), `globals: u32`, that many `u64`, `stack: u32` bytes of the shadow stack where a trap stopped the module (0 when it did not), message (UTF-8) |
//!
//! A session cut short (a killed process) has no [`END`]: its events are
//! still recorded and the summary says the session ended early. In Node
//! the collector streams the session to its file as it goes, whole records
//! only, and writes [`END`] only at a normal finish (`collector/js/stream.mjs`), so a
//! process killed by any signal leaves such a session.
//!
//! # Reading
//!
//! A session is untrusted input. [`Records`] reads it as a stream: a
//! record's payload is allocated only once the session is known to hold all
//! of it (the caller gives the length it may read), and only one record is
//! held at a time, so memory is bounded by the largest record, never by the
//! number of records. A record that cannot be decoded at all (an unknown
//! tag, a payload too short for its fields) is a [`SessionError::Malformed`]
//! naming its byte offset; bytes that are not a whole record are
//! [`Next::Cut`], a session cut short, which its reader records as partial.

use crate::format::InvocationOutcome;
use std::io::{BufReader, Read, Seek};

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
/// Record tag: the engine's wasm frames of a trap.
pub const TRAP_FRAMES: u8 = 8;
/// Record tag: values the module handed to the app's JavaScript.
pub const HANDED: u8 = 9;
/// Record tag: a memory's size in pages when the instance was made.
pub const INITIAL: u8 = 10;
/// Every record tag with its name, in tag order: what the JavaScript
/// collector's constants are generated from.
pub const TAGS: [(&str, u8); 10] = [
    ("EVENTS", EVENTS),
    ("GROW", GROW),
    ("INVALID", INVALID),
    ("INVOCATION_START", INVOCATION_START),
    ("INVOCATION_END", INVOCATION_END),
    ("MEMORY", MEMORY),
    ("END", END),
    ("TRAP_FRAMES", TRAP_FRAMES),
    ("HANDED", HANDED),
    ("INITIAL", INITIAL),
];
/// The most values of a [`HANDED`] record read (and the most distinct
/// values the JavaScript collector writes).
pub const MAX_HANDED: usize = 1 << 20;
/// The most frames of a trap a [`TRAP_FRAMES`] record is read for (and the
/// most the JavaScript collector writes): as many as a wasmtime run keeps.
pub const MAX_TRAP_FRAMES: usize = 1000;
/// A record's tag and length.
pub const RECORD_HEADER: u64 = 5;
/// [`INVOCATION_END`]'s outcome byte: the call returned.
pub const OUTCOME_OK: u8 = 0;
/// [`INVOCATION_END`]'s outcome byte: the plugin returned its error.
pub const OUTCOME_PLUGIN_ERROR: u8 = 1;
/// [`INVOCATION_END`]'s outcome byte: the call threw or trapped.
pub const OUTCOME_THREW: u8 = 2;
/// [`END`]'s status byte: the module's program exited.
pub const STATUS_EXITED: u8 = 0;
/// [`END`]'s status byte: the module trapped.
pub const STATUS_TRAPPED: u8 = 1;

/// Append the record `tag` with `payload` to `out` (a session's bytes
/// after [`MAGIC`] and [`VERSION`]).
pub fn encode_record(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("a session record holds less than 4 GiB");
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
}

/// An empty session: [`MAGIC`] and [`VERSION`], records to follow.
pub fn empty() -> Vec<u8> {
    let mut s = MAGIC.to_vec();
    s.push(VERSION);
    s
}

/// One record of a session. The bulk payloads (events, memory) are
/// empty when the record was only checked, not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// [`EVENTS`]: event records as [`crate::abi::EventRecords`] reads them.
    Events(Vec<u8>),
    /// [`GROW`].
    Grow {
        /// The memory's index.
        memory: u32,
        /// Pages asked for.
        delta: i64,
        /// The old size in pages, -1 when the growth failed.
        result: i64,
        /// The raw shadow stack.
        stack: Vec<u8>,
    },
    /// [`INVALID`].
    Invalid,
    /// [`INVOCATION_START`]: the export's name.
    InvocationStart(String),
    /// [`INVOCATION_END`].
    InvocationEnd {
        /// How it ended.
        outcome: InvocationOutcome,
        /// How long it took.
        duration_us: u64,
        /// The output's size in bytes, when known.
        output_bytes: Option<u64>,
        /// The error's message.
        message: String,
    },
    /// [`MEMORY`].
    Memory {
        /// The memory's index.
        index: u32,
        /// Its bytes (empty when not read).
        bytes: Vec<u8>,
    },
    /// [`END`].
    End(End),
    /// [`TRAP_FRAMES`]: (function index, byte offset) of the instrumented
    /// module, innermost first.
    TrapFrames(Vec<(u32, u32)>),
    /// [`HANDED`]: values the module passed to the app's JavaScript.
    Handed(Vec<u64>),
    /// [`INITIAL`].
    Initial {
        /// The memory's index.
        index: u32,
        /// Its size in pages when the instance was made.
        pages: u64,
    },
}

/// How a session ended ([`END`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The status byte as written: [`STATUS_EXITED`] or [`STATUS_TRAPPED`]
    /// (anything else is a forged end its reader does not believe).
    pub status: u8,
    /// Whether the status says trapped.
    pub trapped: bool,
    /// The exit code, when there was one.
    pub code: Option<i32>,
    /// The C stack pointer's initial value, when known.
    pub sp_init: Option<u64>,
    /// The C stack pointer's value at the end, when known.
    pub sp_now: Option<u64>,
    /// The module's `i32`/`i64` globals, for the leak scan.
    pub globals: Vec<u64>,
    /// The raw shadow stack where a trap stopped the module.
    pub trap_stack: Vec<u8>,
    /// The trap's or the end's message.
    pub message: String,
}

/// Why a session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading the bytes failed.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// A record (or the file's start) is not one this version writes.
    #[error("the session is malformed at byte {at:#x}: {what}")]
    Malformed {
        /// Where the record (or the field) starts in the file.
        at: u64,
        /// What is wrong.
        what: String,
    },
}

fn malformed(at: u64, what: &str) -> SessionError {
    SessionError::Malformed {
        at,
        what: what.into(),
    }
}

/// Reads the fields of one record's payload.
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
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

/// A record's place in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The offset of its tag byte in the file.
    pub start: u64,
    /// Its tag.
    pub tag: u8,
    /// Its payload's length.
    pub len: u32,
}

/// What the next bytes of a session hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A whole record's header (its payload is in the session).
    Record(Header),
    /// No byte left.
    Done,
    /// Bytes that are not a whole record.
    Cut,
}

/// The records of a session, streamed: one record's payload in memory at
/// a time, allocated only once the session is known to hold all of it.
pub struct Records<R> {
    r: BufReader<R>,
    /// The offset of the next record.
    at: u64,
    /// Where reading stops.
    end: u64,
}

impl<R: Read + Seek> Records<R> {
    /// The records of the session `r`, read up to byte `end` (the file's
    /// length, or where a first pass stopped), after its magic and version
    /// (checked).
    pub fn new(mut r: R, end: u64) -> Result<Records<R>, SessionError> {
        r.rewind()?;
        let mut head = Vec::with_capacity(MAGIC.len() + 1);
        (&mut r)
            .take(MAGIC.len() as u64 + 1)
            .read_to_end(&mut head)?;
        if !head.starts_with(MAGIC) {
            return Err(malformed(
                0,
                "it does not start with a heapscope session's magic bytes (is it a session file written by the JavaScript collector?)",
            ));
        }
        match head.get(MAGIC.len()) {
            Some(&VERSION) => {}
            Some(&v) => {
                return Err(malformed(
                    4,
                    &format!("it is version {v}, this heapscope reads version {VERSION}"),
                ))
            }
            None => return Err(malformed(4, "it ends before its version")),
        }
        Ok(Records {
            r: BufReader::new(r),
            at: MAGIC.len() as u64 + 1,
            end,
        })
    }

    /// The offset of the next record (after the last one read).
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The next record's header, never past the end given to
    /// [`Records::new`]. Read its payload with [`Records::item`] before
    /// asking for the next.
    pub fn next_header(&mut self) -> Result<Next, SessionError> {
        let left = self.end.saturating_sub(self.at);
        if left == 0 {
            return Ok(Next::Done);
        }
        if left < RECORD_HEADER {
            return Ok(Next::Cut);
        }
        let mut h = [0u8; RECORD_HEADER as usize];
        self.r.read_exact(&mut h)?;
        let len = u32::from_le_bytes(h[1..].try_into().expect("4 bytes"));
        if u64::from(len) > left - RECORD_HEADER {
            return Ok(Next::Cut);
        }
        let header = Header {
            start: self.at,
            tag: h[0],
            len,
        };
        self.at += RECORD_HEADER;
        Ok(Next::Record(header))
    }

    /// `n` bytes of the current record's payload (the header said the
    /// session holds them).
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, SessionError> {
        let mut out = Vec::new();
        (&mut self.r).take(n).read_to_end(&mut out)?;
        if out.len() as u64 != n {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        self.at += n;
        Ok(out)
    }

    /// Pass over `n` bytes of the current record's payload.
    fn skip(&mut self, n: u64) -> Result<(), SessionError> {
        self.r.seek_relative(n as i64)?;
        self.at += n;
        Ok(())
    }

    /// The record `h` (its header just read), decoded; with `bulk` false,
    /// its events and memory bytes are passed over, not read (and only
    /// memory 0's bytes are ever read).
    pub fn item(&mut self, h: Header, bulk: bool) -> Result<Item, SessionError> {
        let len = u64::from(h.len);
        match h.tag {
            EVENTS if !bulk => {
                self.skip(len)?;
                return Ok(Item::Events(Vec::new()));
            }
            EVENTS => return Ok(Item::Events(self.bytes(len)?)),
            MEMORY => {
                if len < 4 {
                    return Err(malformed(h.start, "a memory record is too short"));
                }
                let index = u32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes"));
                // Only memory 0's snapshot is scanned.
                let bytes = if bulk && index == 0 {
                    self.bytes(len - 4)?
                } else {
                    self.skip(len - 4)?;
                    Vec::new()
                };
                return Ok(Item::Memory { index, bytes });
            }
            _ => {}
        }
        let payload = self.bytes(len)?;
        decode(h, &payload)
    }
}

/// The record `h` whose payload is `payload` (whole; events and memory
/// are decoded too, memory of any index).
pub fn decode(h: Header, payload: &[u8]) -> Result<Item, SessionError> {
    let mut p = Fields {
        buf: payload,
        at: 0,
    };
    let bad = |what: &str| malformed(h.start, what);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(match h.tag {
        EVENTS => Item::Events(payload.to_vec()),
        MEMORY => {
            let index = p.u32().ok_or_else(|| bad("a memory record is too short"))?;
            Item::Memory {
                index,
                bytes: p.rest().to_vec(),
            }
        }
        GROW => {
            let (Some(memory), Some(delta), Some(result)) = (p.u32(), p.u64(), p.u64()) else {
                return Err(bad("a growth record is too short"));
            };
            Item::Grow {
                memory,
                delta: delta as i64,
                result: result as i64,
                stack: p.rest().to_vec(),
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
                    OUTCOME_OK => InvocationOutcome::Ok,
                    OUTCOME_PLUGIN_ERROR => InvocationOutcome::PluginError,
                    _ => InvocationOutcome::Trapped,
                },
                duration_us,
                output_bytes: output.checked_sub(1),
                message: text(p.rest()),
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
                status,
                trap_stack,
                trapped: status == STATUS_TRAPPED,
                code: (code as i32 != i32::MIN).then_some(code as i32),
                sp_init: none(sp_init),
                sp_now: none(sp_now),
                globals,
                message: text(p.rest()),
            })
        }
        TRAP_FRAMES => {
            let n = p
                .u32()
                .ok_or_else(|| bad("a trap's frames record is too short"))?;
            let mut frames = Vec::with_capacity((n as usize).min(MAX_TRAP_FRAMES));
            for _ in 0..n {
                let (Some(f), Some(o)) = (p.u32(), p.u32()) else {
                    return Err(bad("a trap's frames record is cut"));
                };
                if frames.len() < MAX_TRAP_FRAMES {
                    frames.push((f, o));
                }
            }
            Item::TrapFrames(frames)
        }
        HANDED => {
            let n = p
                .u32()
                .ok_or_else(|| bad("a handed values record is too short"))?;
            let mut values = Vec::with_capacity((n as usize).min(MAX_HANDED));
            for _ in 0..n {
                let v = p
                    .u64()
                    .ok_or_else(|| bad("a handed values record is cut"))?;
                if values.len() < MAX_HANDED {
                    values.push(v);
                }
            }
            Item::Handed(values)
        }
        INITIAL => {
            let (Some(index), Some(pages)) = (p.u32(), p.u64()) else {
                return Err(bad("an initial size record is too short"));
            };
            Item::Initial { index, pages }
        }
        other => return Err(bad(&format!("unknown record tag {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `s`, read whole; whether it is cut.
    fn read_all(s: &[u8]) -> Result<(Vec<Item>, bool), SessionError> {
        let mut r = Records::new(std::io::Cursor::new(s), s.len() as u64)?;
        let mut items = Vec::new();
        loop {
            match r.next_header()? {
                Next::Record(h) => items.push(r.item(h, true)?),
                Next::Done => return Ok((items, false)),
                Next::Cut => return Ok((items, true)),
            }
        }
    }

    #[test]
    fn tags_are_distinct_and_listed_in_order() {
        for (i, (_, t)) in TAGS.iter().enumerate() {
            assert_eq!(usize::from(*t), i + 1);
        }
    }

    #[test]
    fn records_round_trip_and_a_cut_one_is_cut_not_malformed() {
        let mut s = empty();
        encode_record(INVOCATION_START, b"run", &mut s);
        let mut g = 1u32.to_le_bytes().to_vec();
        g.extend_from_slice(&2i64.to_le_bytes());
        g.extend_from_slice(&(-1i64).to_le_bytes());
        g.extend_from_slice(&[8, 0, 0, 0]);
        encode_record(GROW, &g, &mut s);
        let mut m = 0u32.to_le_bytes().to_vec();
        m.extend_from_slice(b"heap");
        encode_record(MEMORY, &m, &mut s);
        let (items, cut) = read_all(&s).unwrap();
        assert!(!cut);
        assert_eq!(
            items,
            [
                Item::InvocationStart("run".into()),
                Item::Grow {
                    memory: 1,
                    delta: 2,
                    result: -1,
                    stack: vec![8, 0, 0, 0]
                },
                Item::Memory {
                    index: 0,
                    bytes: b"heap".to_vec()
                },
            ]
        );
        // The same records decoded from their payloads alone.
        let h = |tag, len| Header { start: 0, tag, len };
        assert_eq!(decode(h(GROW, 24), &g).unwrap(), items[1]);
        assert_eq!(decode(h(MEMORY, 8), &m).unwrap(), items[2]);
        // Cut anywhere: the whole records before the cut are read, and a
        // cut inside a record says so.
        let ends = [5, 13, 18 + g.len(), s.len()];
        for at in 5..s.len() {
            let (items, cut) = read_all(&s[..at]).unwrap();
            let whole = ends.iter().filter(|e| **e <= at).count() - 1;
            assert_eq!(
                (items.len(), cut),
                (whole, !ends.contains(&at)),
                "cut at {at}"
            );
        }
        let e = decode(h(GROW, 3), &g[..3]).unwrap_err().to_string();
        assert_eq!(
            e,
            "the session is malformed at byte 0x0: a growth record is too short"
        );
    }
}
