//! The heapscope trace file format.
//!
//! A trace is what `heapscope run` writes and every viewer command reads. It
//! is a stream: the collector appends records as the guest runs and flushes
//! them regularly, so a run that traps, hits a limit or is killed still
//! leaves every record before the end readable; a reader stops cleanly at the
//! last whole record of a file cut short ([`TraceError::Truncated`]).
//!
//! # Header
//!
//! 12 bytes: the magic [`MAGIC`] (`"HSTRACE\0"`), the format version as a
//! little-endian `u16` ([`VERSION`]), and a little-endian `u16` of flags
//! (bit 0, [`FLAG_CHECKED`]: the records are all checked blocks; readers
//! ignore bits they do not know).
//!
//! # Records
//!
//! After the header, records follow until the end of the file. Each is
//!
//! ```text
//! kind: u8, len: varint, payload: [u8; len]
//! ```
//!
//! A reader skips a record whose kind it does not know, using `len`. The
//! format grows by adding kinds, never by changing the payload of an existing
//! one; a new kind must not change the state an old one is decoded against.
//! Inside payloads, integers are unsigned LEB128 varints, `s`-marked ones are
//! zigzag-encoded signed varints, strings are a varint length and UTF-8.
//!
//! ## Interned data: strings, frames, stacks
//!
//! Function names, files, frames and stacks are written once, the first time
//! an event needs them, and referenced by id afterwards. Ids are implicit:
//! the n-th record of a kind has id n (stacks start at 1; stack 0 is the
//! empty stack).
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x01` | string | the UTF-8 bytes (the whole payload) |
//! | `0x02` | frame | function (string id), file (string id + 1, 0 = none), line, column, func_index, code_offset |
//! | `0x03` | stack | parent (stack id, 0 = none), frame (frame id) |
//!
//! Stacks form a trie: a stack is its parent stack plus one frame *called
//! from* the parent, so a stack's frames read root (outermost) first by
//! following parents from the leaf. A frame records the original module's
//! function index and code offset (see [`crate::abi`]) as well as the
//! symbolised source location.
//!
//! ## Heap events
//!
//! `kind` is the hook's `kind` argument ([`crate::abi::pack_kind`]). Pointers
//! are delta-encoded: `ptr` fields hold the zigzag difference from the
//! previous pointer field of any heap event (0 before the first), which keeps
//! frees of recent allocations to a byte or two. `stack` is a stack id.
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x10` | alloc | kind, ptr (s, delta), size, align, stack |
//! | `0x11` | free | kind, ptr (s, delta), stack |
//! | `0x12` | realloc | kind, old (s, delta), new (s, delta from old), size, stack |
//! | `0x13` | grow | memory, delta pages, result (s: old size in pages, -1 = failed), stack |
//!
//! `alloc` with ptr 0 is a failed allocation. `realloc` follows C: `old` 0 is
//! an allocation; `new` 0 with `size` 0 frees `old`; `new` 0 with a non-zero
//! `size` failed and leaves `old` live. [`crate::model::HeapModel`] is the
//! reference implementation of what each event counts as.
//!
//! ## Markers
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x20` | run start | module (string), start time (ms since the Unix epoch), memory count, per memory: initial pages, maximum pages + 1 (0 = none), flags (bit 0: memory64), log2 of the page size |
//! | `0x21` | run end | status ([`RunStatus`] as a number), has exit code (0/1), exit code (s), message (string) |
//! | `0x22` | invocation start | index, name (string) |
//! | `0x23` | invocation end | index, ok (0/1), message (string) |
//! | `0x24` | time | microseconds since the run started |
//! | `0x25` | exit block | ptr (absolute), leak kind (0 definite, 1 possible, 2 reachable, 3 indirect), suppression rule (string id + 1, 0 = none) |
//! | `0x26` | invalid free | ptr (absolute), stack of the bad call, stack that allocated the block (0 = unknown), stack that freed it before (0 = never freed: not a heap block) |
//! | `0x27` | invocation stats | index, outcome (0 ok, 1 the plugin reported an error, 2 trapped), allocations, frees, bytes allocated, live bytes after, live blocks after, pages of memory 0 after, duration (µs), output bytes + 1 (0 = no output) |
//! | `0x28` | warm-up | invocations the growth fit leaves out (written before the first invocation) |
//! | `0x29` | layout | memory 0's layout: end of the static data, the auxiliary stack's lowest and highest address, where the heap begins ([`MemoryLayout`]) |
//! | `0x2a` | memory data | memory index, end of its static data ([`Record::MemoryData`]) |
//! | `0x2b` | unrecorded invalid events | how many hook calls the run counted as invalid without writing a record for them (unknown event tags, a shadow-stack pointer outside its region): a replay adds them to its count of invalid events |
//!
//! An invalid-free record follows the free or realloc record of a pointer
//! that was not a live block: a double free when the earlier free is known.

//!
//! Exit-block records come at the end of a run, one per block live then,
//! after the collector scanned memory for pointers to it ([`LeakKind`]).
//!
//! ## Compression
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x30` | block | uncompressed size, then an LZ4 block (`lz4_flex::block` format) holding a run of whole records |
//! | `0x31` | checked block | CRC-32 (IEEE, `u32` little-endian) of the rest of the payload, then a block's payload |
//! | `0x32` | sync | string, frame and stack table sizes, pointer base, then (in traces whose header sets [`FLAG_SEQUENCED`]) the block's sequence number: the first record of every block after the first |
//!
//! The records inside a block are read exactly as if they stood in the file
//! in its place (same ids, same pointer deltas); blocks do not nest. The
//! collector writes its trace as checked blocks of about 256 KiB of records,
//! compressed on a writer thread ([`BlockSink`]), which brings a trace to
//! two or three bytes per event. A file cut short yields every whole block
//! before the cut.
//!
//! ## Integrity (format version 2)
//!
//! A trace is trusted only when whole: in a trace whose header sets
//! [`FLAG_CHECKED`] (or once a checked block was read), every record at the
//! top level is a checked block, and each must match its checksum. A block
//! that fails it is skipped and listed by [`TraceReader::damaged`]; every
//! block after the first starts with a sync record (`0x32`: the sizes of
//! the string, frame and stack tables and the pointer base there), so the
//! reader fills what the lost block defined with stand-ins and reads on.
//! Any other record where a checked block belongs (a flipped kind byte or
//! length), or records before the first checked block of a checked trace,
//! is damage the reader cannot step over: [`TraceError::Damaged`] names
//! its offset, and everything before it is read. A file cut short is
//! [`TraceError::Truncated`]. A trace without its run-end record is partial
//! (the run was killed). Version 1 traces (plain blocks, no checksums)
//! still read.
//!
//! ## Block sequence (flag [`FLAG_SEQUENCED`])
//!
//! A checksum proves a block whole, not in its place: a block written
//! twice, left out or moved would read as a whole trace with other
//! numbers. So every sync record also carries its block's sequence
//! number: the first block is 0 (it needs no sync record), the n-th
//! block after it carries n. A reader expects each block's number to be
//! the one after the last it read: a lower number (a block repeated or
//! moved back), a higher one than the checksum failures in between
//! explain (blocks left out), or a later block with no sync record at
//! its start is damage, listed by [`TraceReader::out_of_sequence`]; the
//! trace is then partial, as with a failed checksum.
//!
//! ## Bounds writer and reader share
//!
//! A block holds at most [`MAX_BLOCK`] bytes of records ([`block_holds`]
//! decides, for both sides), and every string at most [`MAX_STRING`]
//! bytes: the writer cuts a longer string at a character boundary (its
//! last character then is `…`), so one record always fits in a block of
//! its own, and the reader refuses a string record past that bound. The
//! writer never writes a block the reader would refuse: such a write fails
//! instead.
//!
//! Time records are written at most once per millisecond, not per event;
//! an event happened at the time of the last time record before it. The
//! sequence number of an event is its position among the heap events.

use crate::varint::{self, Cursor};
use std::io::{self, Read, Write};

/// The largest record a reader accepts (a corrupt length fails instead of
/// allocating without bound).
pub const MAX_RECORD: usize = 64 << 20;
/// The most bytes of records one block holds: a reader refuses a larger
/// one, and a writer never makes one ([`block_holds`]).
pub const MAX_BLOCK: usize = 16 << 20;

/// The longest string a record holds, in bytes: the writer cuts longer ones
/// (function names, files, messages), the reader refuses a longer string
/// record.
pub const MAX_STRING: usize = 1 << 20;

/// Whether one block may hold `len` bytes of records: the one rule the
/// writer obeys and the reader enforces.
pub fn block_holds(len: usize) -> bool {
    len <= MAX_BLOCK
}

/// Records a writer buffers before it starts a new block.
const FLUSH_AT: usize = 256 * 1024;

// A block is what was buffered before the threshold plus one more record
// (at most a capped string and its header), plus its sync record: always
// within what a reader accepts.
const _: () = assert!(FLUSH_AT + MAX_STRING + 64 <= MAX_BLOCK);

/// The first 8 bytes of every trace.
pub const MAGIC: [u8; 8] = *b"HSTRACE\0";
/// Header flag (bytes 10..12, little-endian): every top-level record is a
/// checked block (see "Integrity"). [`BlockSink`] sets it.
pub const FLAG_CHECKED: u16 = 1;
/// Header flag: every sync record carries its block's sequence number (see
/// "Block sequence"). [`TraceWriter`] sets it.
pub const FLAG_SEQUENCED: u16 = 2;

/// The format version this crate writes; it reads this and every older one.
/// Version 2 added checked blocks (see "Integrity").
pub const VERSION: u16 = 2;

/// Record kind numbers. See the module documentation for the payloads.
pub mod kind {
    /// Interned string.
    pub const STRING: u8 = 0x01;
    /// Interned frame.
    pub const FRAME: u8 = 0x02;
    /// Interned stack node.
    pub const STACK: u8 = 0x03;
    /// Allocation.
    pub const ALLOC: u8 = 0x10;
    /// Free.
    pub const FREE: u8 = 0x11;
    /// Reallocation.
    pub const REALLOC: u8 = 0x12;
    /// Linear memory growth.
    pub const GROW: u8 = 0x13;
    /// Start of the run.
    pub const RUN_START: u8 = 0x20;
    /// End of the run.
    pub const RUN_END: u8 = 0x21;
    /// Start of one invocation of an export.
    pub const INVOCATION_START: u8 = 0x22;
    /// End of one invocation.
    pub const INVOCATION_END: u8 = 0x23;
    /// Clock tick.
    pub const TIME: u8 = 0x24;
    /// An LZ4-compressed run of whole records.
    pub const BLOCK: u8 = 0x30;
    /// A block with a CRC-32 of its payload (format version 2).
    pub const CHECKED_BLOCK: u8 = 0x31;
    /// The table sizes and pointer base where a block's records begin
    /// (the first record of every block after the first): what a reader
    /// needs to go on after a damaged block.
    pub const SYNC: u8 = 0x32;
    /// Leak classification of a block live at the end.
    pub const EXIT_BLOCK: u8 = 0x25;
    /// A free of a pointer that was not a live block.
    pub const INVALID_FREE: u8 = 0x26;
    /// [`super::Record::InvocationStats`]
    pub const INVOCATION_STATS: u8 = 0x27;
    /// [`super::Record::Layout`]
    pub const LAYOUT: u8 = 0x29;
    /// [`super::Record::Warmup`]
    pub const WARMUP: u8 = 0x28;
    /// [`super::Record::MemoryData`]
    pub const MEMORY_DATA: u8 = 0x2a;
    /// [`super::Record::UnrecordedInvalid`]
    pub const UNRECORDED_INVALID: u8 = 0x2b;
}

/// How a block live at the end of a run is referenced, as Valgrind's
/// memcheck classifies it.
///
/// Ordered as Valgrind lists them, from the most certain leak to the least:
/// definite < indirect < possible < reachable (the numbers are the trace
/// format's, not the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakKind {
    /// Nothing points to it: definitely lost.
    Definite = 0,
    /// Only pointers into its middle: possibly lost.
    Possible = 1,
    /// A chain of pointers from the data, the stack or a global reaches its
    /// start: still reachable.
    Reachable = 2,
    /// Only lost blocks point to it: indirectly lost (the nodes of a lost
    /// list, say).
    Indirect = 3,
}

impl LeakKind {
    fn from_u8(v: u8) -> Option<LeakKind> {
        match v {
            0 => Some(LeakKind::Definite),
            1 => Some(LeakKind::Possible),
            2 => Some(LeakKind::Reachable),
            3 => Some(LeakKind::Indirect),
            _ => None,
        }
    }

    fn rank(self) -> u8 {
        match self {
            LeakKind::Definite => 0,
            LeakKind::Indirect => 1,
            LeakKind::Possible => 2,
            LeakKind::Reachable => 3,
        }
    }
}

impl PartialOrd for LeakKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LeakKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Id of an interned stack; 0 is the empty stack.
pub type StackId = u32;

/// What one invocation of an export (one actor message) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvocationStats {
    /// Invocation number, from 0.
    pub index: u64,
    /// How it ended.
    pub outcome: InvocationOutcome,
    /// Blocks allocated during it (a reallocation counts one).
    pub allocs: u64,
    /// Blocks freed during it (a reallocation counts one).
    pub frees: u64,
    /// Bytes allocated during it.
    pub bytes: u64,
    /// Live heap bytes after it.
    pub live_bytes: u64,
    /// Live heap blocks after it.
    pub live_blocks: u64,
    /// Size of linear memory 0 after it, in pages.
    pub pages: u64,
    /// Wall-clock time of the call, hooks included, in microseconds.
    pub duration_us: u64,
    /// Bytes of output the plugin set, if it set any.
    pub output_bytes: Option<u64>,
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvocationOutcome {
    /// Returned normally.
    Ok = 0,
    /// Returned an error of its own (an Extism plugin's error or non-zero
    /// return code); the instance is intact.
    PluginError = 1,
    /// Trapped or hit a limit.
    Trapped = 2,
}

impl InvocationOutcome {
    fn from_u64(v: u64) -> InvocationOutcome {
        match v {
            0 => InvocationOutcome::Ok,
            1 => InvocationOutcome::PluginError,
            _ => InvocationOutcome::Trapped,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The guest returned or called `proc_exit`.
    Exited,
    /// The guest trapped.
    Trapped,
    /// The guest needed more memory than the limit allows.
    MemoryLimit,
    /// The run took longer than the timeout or ran out of fuel.
    Timeout,
    /// The host failed (a bug or I/O error); the trace holds what came before.
    Error,
    /// The user or the system stopped the run (SIGINT, SIGTERM).
    Interrupted,
}

impl RunStatus {
    /// Its name in the summary JSON (`exited`, `trapped`, `memory_limit`,
    /// `timeout`, `error`, `interrupted`).
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Exited => "exited",
            RunStatus::Trapped => "trapped",
            RunStatus::MemoryLimit => "memory_limit",
            RunStatus::Timeout => "timeout",
            RunStatus::Error => "error",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            RunStatus::Exited => 0,
            RunStatus::Trapped => 1,
            RunStatus::MemoryLimit => 2,
            RunStatus::Timeout => 3,
            RunStatus::Error => 4,
            RunStatus::Interrupted => 5,
        }
    }
    fn from_u8(v: u8) -> RunStatus {
        match v {
            0 => RunStatus::Exited,
            1 => RunStatus::Trapped,
            2 => RunStatus::MemoryLimit,
            3 => RunStatus::Timeout,
            5 => RunStatus::Interrupted,
            _ => RunStatus::Error,
        }
    }
}

/// Where memory 0's regions lie, as the linker laid them out (wasm-ld:
/// the data segments, the auxiliary C stack below `__stack_pointer`'s
/// initial value, the heap from `__heap_base`). Addresses in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryLayout {
    /// Where the static data ends (`__data_end`, or the end of the active
    /// data segments).
    pub data_end: u64,
    /// The auxiliary stack's lowest address (equal to `stack_hi`: none).
    pub stack_lo: u64,
    /// Its highest address: `__stack_pointer`'s initial value.
    pub stack_hi: u64,
    /// Where the heap begins (`__heap_base`, else the end of the data or
    /// the stack, whichever is higher; never above the lowest block).
    pub heap_base: u64,
}

/// A linear memory as declared by the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Initial size in pages.
    pub initial_pages: u64,
    /// Declared maximum in pages.
    pub maximum_pages: Option<u64>,
    /// Whether the memory is indexed by i64.
    pub memory64: bool,
    /// log2 of the page size (16 for the usual 64 KiB pages).
    pub page_size_log2: u8,
}

/// An interned frame as stored in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    /// Function name (string id).
    pub function: u32,
    /// Source file (string id), if known.
    pub file: Option<u32>,
    /// Source line, 0 when unknown.
    pub line: u32,
    /// Source column, 0 when unknown.
    pub column: u32,
    /// Function index in the original module.
    pub func_index: u32,
    /// Code offset of the call in the original module.
    pub code_offset: u32,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An interned string.
    String(String),
    /// An interned frame.
    Frame(FrameRecord),
    /// An interned stack node.
    Stack {
        /// Parent stack id (0 = this frame is outermost).
        parent: StackId,
        /// Frame id.
        frame: u32,
    },
    /// An allocation.
    Alloc {
        /// Hook kind (role and memory).
        kind: i32,
        /// Returned pointer, 0 when the allocation failed.
        ptr: u64,
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment, 0 when none was given.
        align: u64,
        /// Stack of the call.
        stack: StackId,
    },
    /// A free.
    Free {
        /// Hook kind.
        kind: i32,
        /// Freed pointer.
        ptr: u64,
        /// Stack of the call.
        stack: StackId,
    },
    /// A reallocation.
    Realloc {
        /// Hook kind.
        kind: i32,
        /// Old pointer (0: this is an allocation).
        old: u64,
        /// New pointer (0: failed, or freed when `size` is 0).
        new: u64,
        /// New size in bytes.
        size: u64,
        /// Stack of the call.
        stack: StackId,
    },
    /// A `memory.grow`.
    Grow {
        /// Memory index.
        memory: u32,
        /// Requested growth in pages.
        delta: u64,
        /// Old size in pages, `None` when the growth failed.
        old_pages: Option<u64>,
        /// Stack of the instruction.
        stack: StackId,
    },
    /// Start of the run.
    RunStart {
        /// Module file name.
        module: String,
        /// Wall-clock start, ms since the Unix epoch.
        start_unix_ms: u64,
        /// The module's memories as declared.
        memories: Vec<MemoryInfo>,
    },
    /// End of the run.
    RunEnd {
        /// How it ended.
        status: RunStatus,
        /// The guest's exit code, when it exited.
        exit_code: Option<i32>,
        /// Trap or error message, empty when none.
        message: String,
    },
    /// Start of an invocation.
    InvocationStart {
        /// Invocation number, from 0.
        index: u64,
        /// Export name.
        name: String,
    },
    /// End of an invocation.
    InvocationEnd {
        /// Invocation number.
        index: u64,
        /// Whether it returned normally.
        ok: bool,
        /// Error message, empty when ok.
        message: String,
    },
    /// What one invocation did (follows its [`Record::InvocationEnd`]).
    InvocationStats(InvocationStats),
    /// How many invocations the growth fit leaves out as warm-up.
    Warmup(u64),
    /// Memory 0's layout, for the breakdown of its pages.
    Layout(MemoryLayout),
    /// Where the static data of a memory other than memory 0 ends (the end
    /// of its active data segments), for the breakdown of its pages.
    MemoryData {
        /// The memory's index (1 or more).
        memory: u32,
        /// The end of its data segments, in bytes.
        data_end: u64,
    },
    /// Microseconds since the run started.
    Time(u64),
    /// Hook calls the run counted as invalid without a record of their
    /// own (an unknown event tag, a shadow-stack pointer outside its
    /// region): a replay adds them to its invalid events.
    UnrecordedInvalid(u64),
    /// A free or reallocation of a pointer that was not a live block.
    InvalidFree {
        /// The pointer.
        ptr: u64,
        /// Stack of the bad call.
        stack: StackId,
        /// Stack that allocated the block, when known (0: unknown).
        alloc_stack: StackId,
        /// Stack that freed it before (0: it was never freed: not a block).
        free_stack: StackId,
    },
    /// How a block live at the end is referenced.
    ExitBlock {
        /// The block.
        ptr: u64,
        /// Its classification.
        kind: LeakKind,
        /// The suppression rule that matched it (a string id), if any.
        rule: Option<u32>,
    },
}

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading the underlying file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file does not start with the trace magic.
    #[error(
        "not a heapscope trace (bad magic); expected a file written by `heapscope run --trace`"
    )]
    BadMagic,
    /// The file was written by a newer, incompatible format version.
    #[error("trace format version {0} is newer than this heapscope reads ({VERSION}); upgrade heapscope")]
    Version(u16),
    /// The file ends in the middle of a record; every record before is valid.
    #[error("trace ends mid-record at offset {offset:#x} after {records} whole records")]
    Truncated {
        /// Byte offset where the partial record starts.
        offset: u64,
        /// Records read before it.
        records: u64,
    },
    /// A checked block does not match its checksum, or something other
    /// than a checked block stands where one belongs; every record before
    /// it is valid.
    #[error("trace is damaged at offset {offset:#x} (a block fails its checksum) after {records} whole records")]
    Damaged {
        /// Byte offset of the damaged record.
        offset: u64,
        /// Records read before it.
        records: u64,
    },
    /// A record's payload does not decode.
    #[error("malformed {kind:#04x} record at offset {offset:#x}")]
    Malformed {
        /// Record kind.
        kind: u8,
        /// Byte offset of the record.
        offset: u64,
    },
}

impl TraceError {
    /// Whether the records read before the error are still good: a trace
    /// cut short or damaged, where a reader reports what it could read.
    pub fn is_partial(&self) -> bool {
        matches!(
            self,
            TraceError::Truncated { .. } | TraceError::Damaged { .. }
        )
    }
}

/// Writes a trace. Buffered: call [`TraceWriter::flush`] to push records to
/// the file (the collector does so on every time record and at the end).
pub struct TraceWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    last_ptr: u64,
    strings: u32,
    frames: u32,
    stacks: u32,
    bytes_written: u64,
    /// Bytes at the start of `buf` that are only its sync record.
    sync_len: usize,
    /// Writes that held records so far: the sequence number of the next
    /// block.
    blocks: u64,
    /// Buffered bytes past which the next record starts a new block.
    flush_at: usize,
    /// What was written, for [`crate::verify::check_written`].
    written: crate::verify::Written,
}

impl<W: Write> TraceWriter<W> {
    /// Start a trace: writes the header.
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = TraceWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            last_ptr: 0,
            strings: 0,
            frames: 0,
            stacks: 0,
            bytes_written: 0,
            sync_len: 0,
            blocks: 0,
            flush_at: FLUSH_AT,
            written: Default::default(),
        };
        w.buf.extend_from_slice(&MAGIC);
        w.buf.extend_from_slice(&VERSION.to_le_bytes());
        w.buf.extend_from_slice(&FLAG_SEQUENCED.to_le_bytes());
        Ok(w)
    }

    /// Start a new block once `bytes` of records are buffered instead of
    /// about 256 KiB (at least 1; never more than the default). Smaller
    /// blocks make more block boundaries: tests use it to put a boundary
    /// after every kind of record.
    pub fn set_block_bytes(&mut self, bytes: usize) {
        self.flush_at = bytes.clamp(1, FLUSH_AT);
    }

    /// What this writer wrote so far, to check the file against once it
    /// is closed ([`crate::verify::check_written`]).
    pub fn written(&self) -> crate::verify::Written {
        self.written
    }

    /// Bytes handed to the underlying writer plus those still buffered.
    pub fn len(&self) -> u64 {
        self.bytes_written + self.buf.len() as u64
    }

    /// True before anything but the header was written.
    pub fn is_empty(&self) -> bool {
        self.len() <= 12
    }

    /// Begin a record: kind byte and a one-byte length placeholder. A
    /// full buffer is written first, so that the sync record starting the
    /// next block counts every record before this one (a record is counted
    /// once it is whole, never while a flush may fall inside it).
    #[inline]
    fn begin(&mut self, kind: u8) -> io::Result<usize> {
        if self.buf.len() >= self.flush_at {
            self.flush_buffer()?;
        }
        self.buf.push(kind);
        self.buf.push(0);
        Ok(self.buf.len())
    }

    /// Finish a record begun at `start`, fixing up its length. Never
    /// flushes: the caller counts the record after this.
    #[inline]
    fn end(&mut self, start: usize) -> io::Result<()> {
        let len = self.buf.len() - start;
        if len < 0x80 {
            self.buf[start - 1] = len as u8;
        } else {
            let mut l = Vec::with_capacity(5);
            varint::put_u64(&mut l, len as u64);
            self.buf.splice(start - 1..start, l);
        }
        Ok(())
    }

    /// A string field, cut to [`MAX_STRING`] bytes.
    fn put_str(&mut self, s: &str) {
        varint::put_str(&mut self.buf, &cap_string(s));
    }

    #[inline]
    fn ptr(&mut self, p: u64) {
        varint::put_i64(&mut self.buf, p.wrapping_sub(self.last_ptr) as i64);
        self.last_ptr = p;
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buf.len() == self.sync_len {
            // Nothing but the sync record: nothing to write.
            return Ok(());
        }
        // The header (the first 12 bytes of the first write) is not part of
        // a block.
        let header = if self.bytes_written == 0 { 12 } else { 0 };
        let records = self.buf.len().saturating_sub(header);
        if !block_holds(records) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a block of {records} bytes of records is more than a trace reader accepts ({MAX_BLOCK})"
                ),
            ));
        }
        self.out.write_all(&self.buf)?;
        self.bytes_written += self.buf.len() as u64;
        if records > 0 {
            self.blocks += 1;
        }
        self.buf.clear();
        // The next write (a block, through a `BlockSink`) starts with the
        // tables' sizes and the pointer base, so a reader can go on there
        // when a block before it is damaged.
        self.buf.push(kind::SYNC);
        self.buf.push(0);
        let start = self.buf.len();
        for v in [
            u64::from(self.strings),
            u64::from(self.frames),
            u64::from(self.stacks),
            self.last_ptr,
            self.blocks,
        ] {
            varint::put_u64(&mut self.buf, v);
        }
        self.buf[start - 1] = (self.buf.len() - start) as u8;
        self.sync_len = self.buf.len();
        Ok(())
    }

    /// Write buffered records and flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        self.out.flush()
    }

    /// Flush and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// Intern a string; returns its id.
    pub fn string(&mut self, s: &str) -> io::Result<u32> {
        let start = self.begin(kind::STRING)?;
        self.buf.extend_from_slice(cap_string(s).as_bytes());
        self.end(start)?;
        self.strings += 1;
        Ok(self.strings - 1)
    }

    /// Intern a frame; returns its id.
    pub fn frame(&mut self, f: &FrameRecord) -> io::Result<u32> {
        let start = self.begin(kind::FRAME)?;
        let b = &mut self.buf;
        varint::put_u64(b, f.function.into());
        varint::put_u64(b, f.file.map_or(0, |x| u64::from(x) + 1));
        varint::put_u64(b, f.line.into());
        varint::put_u64(b, f.column.into());
        varint::put_u64(b, f.func_index.into());
        varint::put_u64(b, f.code_offset.into());
        self.end(start)?;
        self.frames += 1;
        Ok(self.frames - 1)
    }

    /// Intern a stack node (parent stack + frame called from it); returns its
    /// id, from 1.
    pub fn stack(&mut self, parent: StackId, frame: u32) -> io::Result<StackId> {
        let start = self.begin(kind::STACK)?;
        varint::put_u64(&mut self.buf, parent.into());
        varint::put_u64(&mut self.buf, frame.into());
        self.end(start)?;
        self.stacks += 1;
        Ok(self.stacks)
    }

    /// Record an allocation.
    #[inline]
    pub fn alloc(
        &mut self,
        kind: i32,
        ptr: u64,
        size: u64,
        align: u64,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::ALLOC)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(ptr);
        varint::put_u64(&mut self.buf, size);
        varint::put_u64(&mut self.buf, align);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a free.
    #[inline]
    pub fn free(&mut self, kind: i32, ptr: u64, stack: StackId) -> io::Result<()> {
        let start = self.begin(kind::FREE)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(ptr);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a reallocation.
    #[inline]
    pub fn realloc(
        &mut self,
        kind: i32,
        old: u64,
        new: u64,
        size: u64,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::REALLOC)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(old);
        self.ptr(new);
        varint::put_u64(&mut self.buf, size);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a `memory.grow`.
    pub fn grow(
        &mut self,
        memory: u32,
        delta: u64,
        old_pages: Option<u64>,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::GROW)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, memory.into());
        varint::put_u64(&mut self.buf, delta);
        varint::put_i64(&mut self.buf, old_pages.map_or(-1, |p| p as i64));
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a clock tick.
    pub fn time(&mut self, micros: u64) -> io::Result<()> {
        let start = self.begin(kind::TIME)?;
        varint::put_u64(&mut self.buf, micros);
        self.end(start)
    }

    /// Write any record. Interning records get the next id of their kind, as
    /// with the dedicated methods.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        match r {
            Record::String(s) => self.string(s).map(drop),
            Record::Frame(f) => self.frame(f).map(drop),
            Record::Stack { parent, frame } => self.stack(*parent, *frame).map(drop),
            Record::Alloc {
                kind,
                ptr,
                size,
                align,
                stack,
            } => self.alloc(*kind, *ptr, *size, *align, *stack),
            Record::Free { kind, ptr, stack } => self.free(*kind, *ptr, *stack),
            Record::Realloc {
                kind,
                old,
                new,
                size,
                stack,
            } => self.realloc(*kind, *old, *new, *size, *stack),
            Record::Grow {
                memory,
                delta,
                old_pages,
                stack,
            } => self.grow(*memory, *delta, *old_pages, *stack),
            Record::Time(t) => self.time(*t),
            Record::RunStart {
                module,
                start_unix_ms,
                memories,
            } => {
                let start = self.begin(kind::RUN_START)?;
                let b = &mut self.buf;
                varint::put_str(b, &cap_string(module));
                varint::put_u64(b, *start_unix_ms);
                varint::put_u64(b, memories.len() as u64);
                for m in memories {
                    varint::put_u64(b, m.initial_pages);
                    varint::put_u64(b, m.maximum_pages.map_or(0, |x| x + 1));
                    varint::put_u64(b, u64::from(m.memory64));
                    varint::put_u64(b, m.page_size_log2.into());
                }
                self.end(start)
            }
            Record::RunEnd {
                status,
                exit_code,
                message,
            } => {
                let start = self.begin(kind::RUN_END)?;
                self.written.run_end = true;
                let b = &mut self.buf;
                varint::put_u64(b, status.to_u8().into());
                varint::put_u64(b, u64::from(exit_code.is_some()));
                varint::put_i64(b, exit_code.unwrap_or(0).into());
                varint::put_str(b, &cap_string(message));
                self.end(start)
            }
            Record::InvocationStart { index, name } => {
                let start = self.begin(kind::INVOCATION_START)?;
                varint::put_u64(&mut self.buf, *index);
                self.put_str(name);
                self.end(start)
            }
            Record::InvalidFree {
                ptr,
                stack,
                alloc_stack,
                free_stack,
            } => {
                let start = self.begin(kind::INVALID_FREE)?;
                for v in [
                    *ptr,
                    u64::from(*stack),
                    u64::from(*alloc_stack),
                    u64::from(*free_stack),
                ] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::ExitBlock { ptr, kind, rule } => {
                let start = self.begin(kind::EXIT_BLOCK)?;
                varint::put_u64(&mut self.buf, *ptr);
                varint::put_u64(&mut self.buf, *kind as u64);
                varint::put_u64(&mut self.buf, rule.map_or(0, |r| u64::from(r) + 1));
                self.end(start)
            }
            Record::InvocationStats(st) => {
                let start = self.begin(kind::INVOCATION_STATS)?;
                for v in [
                    st.index,
                    st.outcome as u64,
                    st.allocs,
                    st.frees,
                    st.bytes,
                    st.live_bytes,
                    st.live_blocks,
                    st.pages,
                    st.duration_us,
                    st.output_bytes.map_or(0, |b| b + 1),
                ] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::Warmup(n) => {
                let start = self.begin(kind::WARMUP)?;
                varint::put_u64(&mut self.buf, *n);
                self.end(start)
            }
            Record::Layout(l) => {
                let start = self.begin(kind::LAYOUT)?;
                for v in [l.data_end, l.stack_lo, l.stack_hi, l.heap_base] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::MemoryData { memory, data_end } => {
                let start = self.begin(kind::MEMORY_DATA)?;
                varint::put_u64(&mut self.buf, u64::from(*memory));
                varint::put_u64(&mut self.buf, *data_end);
                self.end(start)
            }
            Record::UnrecordedInvalid(n) => {
                let start = self.begin(kind::UNRECORDED_INVALID)?;
                varint::put_u64(&mut self.buf, *n);
                self.end(start)
            }
            Record::InvocationEnd { index, ok, message } => {
                let start = self.begin(kind::INVOCATION_END)?;
                varint::put_u64(&mut self.buf, *index);
                varint::put_u64(&mut self.buf, u64::from(*ok));
                self.put_str(message);
                self.end(start)
            }
        }
    }
}

/// `s` cut to at most [`MAX_STRING`] bytes at a character boundary, its last
/// character then `…`.
pub fn cap_string(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_STRING {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_STRING - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// A `Write` for [`TraceWriter`] that compresses each chunk it is given into
/// a [`kind::BLOCK`] record and writes it on a thread of its own, so the
/// thread producing events never waits on compression or the file. The
/// first 12 bytes (the header) pass through uncompressed. Every `write`
/// call is one chunk and must end on a record boundary, as
/// `TraceWriter`'s buffer flushes do. Dropping it (or [`BlockSink::finish`])
/// waits for everything to reach the file.
pub struct BlockSink {
    tx: Option<std::sync::mpsc::SyncSender<Option<Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    error: SinkError,
}

/// The first error a [`BlockSink`]'s thread met, readable after the sink is
/// gone (a `TraceWriter` drops its sink when it finishes).
pub type SinkError = std::sync::Arc<std::sync::Mutex<Option<String>>>;

impl BlockSink {
    /// Compress into `out` on a new thread.
    pub fn new<W: Write + Send + 'static>(mut out: W) -> BlockSink {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Option<Vec<u8>>>(8);
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let error = SinkError::default();
        let (w, f, err) = (written.clone(), failed.clone(), error.clone());
        let fail = move |e: io::Error| -> io::Result<()> {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
            *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            Err(e)
        };
        let thread = std::thread::Builder::new()
            .name("heapscope-trace".into())
            .spawn(move || -> io::Result<()> {
                let mut header = true;
                let mut rec = Vec::new();
                let run = |rec: &mut Vec<u8>,
                           out: &mut W,
                           header: &mut bool,
                           msg: Option<Vec<u8>>|
                 -> io::Result<()> {
                    let Some(chunk) = msg else { return out.flush() };
                    let mut body = &chunk[..];
                    if *header {
                        let n = body.len().min(12);
                        let mut head = body[..n].to_vec();
                        if let Some(flags) = head.get_mut(10) {
                            *flags |= FLAG_CHECKED as u8;
                        }
                        out.write_all(&head)?;
                        w.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        body = &body[n..];
                        *header = false;
                    }
                    if body.is_empty() {
                        return Ok(());
                    }
                    let compressed = lz4_flex::block::compress(body);
                    let mut payload = Vec::with_capacity(compressed.len() + 5);
                    varint::put_u64(&mut payload, body.len() as u64);
                    payload.extend_from_slice(&compressed);
                    rec.clear();
                    rec.push(kind::CHECKED_BLOCK);
                    varint::put_u64(rec, 4 + payload.len() as u64);
                    rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
                    rec.extend_from_slice(&payload);
                    out.write_all(rec)?;
                    w.fetch_add(rec.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                };
                for msg in rx {
                    if let Err(e) = run(&mut rec, &mut out, &mut header, msg) {
                        return fail(e);
                    }
                }
                out.flush().or_else(fail)
            })
            .expect("spawning the trace writer thread");
        BlockSink {
            tx: Some(tx),
            thread: Some(thread),
            written,
            failed,
            error,
        }
    }

    /// The first error writing the file, once the thread met one.
    pub fn error(&self) -> SinkError {
        self.error.clone()
    }

    /// Bytes written to the file so far (compressed), updated by the thread.
    pub fn written(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.written.clone()
    }

    /// Wait until everything sent has reached the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the trace writer thread panicked"))),
            None => Ok(()),
        }
    }

    fn send(&mut self, msg: Option<Vec<u8>>) -> io::Result<()> {
        let dead = || io::Error::other("the trace writer thread stopped");
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(self.close().err().unwrap_or_else(dead));
        }
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| dead()),
            None => Err(dead()),
        }
    }
}

impl Write for BlockSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(Some(buf.to_vec()))?;
        Ok(buf.len())
    }

    /// Asks the thread to flush the file once it has written what it has;
    /// does not wait.
    fn flush(&mut self) -> io::Result<()> {
        self.send(None)
    }
}

impl Drop for BlockSink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Whether a checked block's payload (its CRC-32, then the block) matches
/// its checksum.
pub(crate) fn checksum_holds(payload: &[u8]) -> bool {
    payload.len() >= 4 && payload[..4] == crc32fast::hash(&payload[4..]).to_le_bytes()
}

/// Decompress a block's payload (its uncompressed size, then LZ4) into
/// `out`; `None` when it is larger than a block may hold or does not
/// decompress to its stated size.
pub(crate) fn unpack_block(payload: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut c = Cursor::new(payload);
    let size = usize::try_from(c.u64()?).ok().filter(|&s| block_holds(s))?;
    out.resize(size, 0);
    let n = lz4_flex::block::decompress_into(&payload[c.position()..], out).ok()?;
    (n == size).then_some(())
}

/// A frame resolved against the trace's string table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Function name.
    pub function: String,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line (0 = unknown).
    pub line: u32,
    /// Source column (0 = unknown).
    pub column: u32,
    /// Function index in the original module.
    pub func_index: u32,
    /// Code offset of the call in the original module.
    pub code_offset: u32,
}

impl Frame {
    /// `function (file:line)`, or just the function when there is no file.
    pub fn display(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), 0) => format!("{} ({f})", self.function),
            (Some(f), l) => format!("{} ({f}:{l})", self.function),
            (None, _) => self.function.clone(),
        }
    }
}

/// Streams records out of a trace and keeps its interned tables, so stacks
/// can be resolved as records arrive. Memory grows with distinct strings,
/// frames and stacks, never with the number of events.
pub struct TraceReader<R: Read> {
    input: R,
    offset: u64,
    records: u64,
    last_ptr: u64,
    payload: Vec<u8>,
    /// The decompressed records of the block being read.
    block: Vec<u8>,
    block_pos: usize,
    block_offset: u64,
    tables: Tables,
    skipped: u64,
    /// A checked block was read: only checked blocks may follow.
    checked: bool,
    /// A record stood at the top level outside checked blocks.
    plain_seen: bool,
    /// Offsets of damaged checked blocks skipped.
    damaged: Vec<u64>,
    /// A damaged block was skipped and no sync record read since.
    resync: bool,
    /// The header sets [`FLAG_SEQUENCED`], or a sync record carried a
    /// sequence number: every block after the first must say its number.
    sequenced: bool,
    /// The sequence number the next checked block should carry.
    next_seq: u64,
    /// Checked blocks read or skipped so far.
    checked_blocks: u64,
    /// Blocks that failed their checksum since the last one read whole
    /// (their numbers are unknown).
    unread_since: u64,
    /// Offsets of whole blocks out of their place: repeated, moved, or
    /// after blocks that are missing.
    out_of_sequence: Vec<u64>,
}

enum Fill {
    Full,
    Eof,
}

impl<R: Read> TraceReader<R> {
    /// Read and check the header.
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut h = [0u8; 12];
        let mut got = 0;
        while got < h.len() {
            match input.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if got < 8 || h[..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        if got < 12 {
            return Err(TraceError::Truncated {
                offset: got as u64,
                records: 0,
            });
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version > VERSION {
            return Err(TraceError::Version(version));
        }
        let flags = u16::from_le_bytes([h[10], h[11]]);
        let checked = flags & FLAG_CHECKED != 0;
        Ok(TraceReader {
            input,
            offset: 12,
            records: 0,
            last_ptr: 0,
            payload: Vec::new(),
            block: Vec::new(),
            block_pos: 0,
            block_offset: 0,
            tables: Tables::default(),
            skipped: 0,
            checked,
            plain_seen: false,
            damaged: Vec::new(),
            resync: false,
            sequenced: flags & FLAG_SEQUENCED != 0,
            next_seq: 0,
            checked_blocks: 0,
            unread_since: 0,
            out_of_sequence: Vec::new(),
        })
    }

    fn fill(&mut self, buf_len: usize) -> Result<Fill, TraceError> {
        let mut got = 0;
        while got < buf_len {
            match self.input.read(&mut self.payload[got..buf_len]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Fill::Full)
    }

    fn byte(&mut self) -> Result<Option<u8>, TraceError> {
        let mut b = [0u8; 1];
        loop {
            match self.input.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next record, `Ok(None)` at a clean end of file, or
    /// [`TraceError::Truncated`] when the file ends inside a record (every
    /// record returned before is whole and valid). Records of unknown kinds
    /// are skipped.
    pub fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        loop {
            if self.block_pos < self.block.len() {
                let decoded = self.next_in_block();
                match self.settle(decoded, kind::BLOCK, self.block_offset) {
                    Some(out) => return out,
                    None => continue,
                }
            }
            let start = self.offset;
            let truncated = |records| TraceError::Truncated {
                offset: start,
                records,
            };
            let damaged = |records| TraceError::Damaged {
                offset: start,
                records,
            };
            let Some(kind) = self.byte()? else {
                return Ok(None);
            };
            let mut len: u64 = 0;
            let mut shift = 0;
            let mut hdr = 1u64;
            loop {
                let b = self.byte()?.ok_or_else(|| truncated(self.records))?;
                hdr += 1;
                if shift > 35 {
                    return Err(TraceError::Malformed {
                        kind,
                        offset: start,
                    });
                }
                len |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let len = len as usize;
            if len > MAX_RECORD {
                return Err(TraceError::Malformed {
                    kind,
                    offset: start,
                });
            }
            if self.payload.len() < len {
                self.payload.resize(len, 0);
            }
            if let Fill::Eof = self.fill(len)? {
                return Err(truncated(self.records));
            }
            self.offset += hdr + len as u64;
            self.records += 1;
            if kind == kind::CHECKED_BLOCK {
                if self.plain_seen {
                    // A checked trace is checked blocks from its header on:
                    // records before the first one are damage (a header
                    // whose flag bit was lost), never part of the run.
                    return Err(damaged(self.records - 1));
                }
                self.checked = true;
                self.checked_blocks += 1;
                let whole = checksum_holds(&self.payload[..len]);
                if !whole {
                    // Skip the block and go on at the next one's sync
                    // record; the damage is reported (`damaged`).
                    self.damaged.push(start);
                    self.unread_since += 1;
                    self.resync = true;
                    self.block.clear();
                    self.block_pos = 0;
                    continue;
                }
                self.payload.copy_within(4..len, 0);
                self.open_block(len - 4).ok_or(TraceError::Malformed {
                    kind,
                    offset: start,
                })?;
                if !self.in_sequence(start) {
                    // Not this place's block: read none of it.
                    self.block.clear();
                    self.block_pos = 0;
                }
                continue;
            }
            if self.checked {
                // Only checked blocks stand at the top of a checked trace.
                return Err(damaged(self.records - 1));
            }
            self.plain_seen = true;
            if kind == kind::BLOCK {
                self.open_block(len).ok_or(TraceError::Malformed {
                    kind,
                    offset: start,
                })?;
                continue;
            }
            let decoded = self.decode(kind, len);
            if let Some(out) = self.settle(decoded, kind, start) {
                return out;
            }
        }
    }

    /// What `next_record` does with a decoded payload: return the record,
    /// skip an unknown kind (`None`: read on), or fail on a malformed one.
    fn settle(
        &mut self,
        decoded: Option<Option<Record>>,
        kind: u8,
        offset: u64,
    ) -> Option<Result<Option<Record>, TraceError>> {
        match decoded {
            Some(Some(r)) => Some(Ok(Some(r))),
            Some(None) => {
                self.skipped += 1;
                None
            }
            None => Some(Err(TraceError::Malformed { kind, offset })),
        }
    }

    /// Decompress the block record whose payload is in `self.payload`.
    fn open_block(&mut self, len: usize) -> Option<()> {
        unpack_block(&self.payload[..len], &mut self.block)?;
        self.block_pos = 0;
        self.block_offset = self.offset - len as u64;
        Some(())
    }

    /// Whether the checked block just opened (at `offset`) stands where its
    /// sequence number says (see "Block sequence"). A block out of its place
    /// is listed by [`TraceReader::out_of_sequence`]: one repeated or moved
    /// back is to be skipped (`false`); one after missing blocks is read
    /// from its sync record on, as after a damaged block.
    fn in_sequence(&mut self, offset: u64) -> bool {
        let seq = match self.leading_sync() {
            Some((_, Some(seq))) => {
                self.sequenced = true;
                Some(seq)
            }
            // A writer before sequence numbers.
            Some((_, None)) => None,
            // Only the first block may start without a sync record.
            None if self.checked_blocks == 1 => Some(0),
            None if self.sequenced => {
                self.out_of_sequence.push(offset);
                return false;
            }
            None => None,
        };
        let Some(seq) = seq else {
            self.unread_since = 0;
            return true;
        };
        if seq < self.next_seq {
            self.out_of_sequence.push(offset);
            return false;
        }
        if seq > self.next_seq.saturating_add(self.unread_since) {
            // Blocks are missing before this one: what they defined is
            // filled with stand-ins from its sync record.
            self.out_of_sequence.push(offset);
            self.resync = true;
        }
        let Some(next) = seq.checked_add(1) else {
            // No writer numbers a block so: a forged one.
            self.out_of_sequence.push(offset);
            return false;
        };
        self.next_seq = next;
        self.unread_since = 0;
        true
    }

    /// The sync record at the start of the open block, if it has one: its
    /// four counts and its sequence number (when the writer gave one).
    fn leading_sync(&self) -> Option<([u64; 4], Option<u64>)> {
        let mut c = Cursor::new(&self.block);
        let kind = *c.bytes(1)?.first()?;
        if kind != kind::SYNC {
            return None;
        }
        let len = usize::try_from(c.u64()?).ok()?;
        let mut body = Cursor::new(c.bytes(len)?);
        let counts = [body.u64()?, body.u64()?, body.u64()?, body.u64()?];
        let seq = if body.is_empty() { None } else { body.u64() };
        Some((counts, seq))
    }

    /// The next record inside the open block: `Some(None)` for an unknown
    /// kind, `None` when the block is malformed (a record runs past its end,
    /// or a block is nested).
    fn next_in_block(&mut self) -> Option<Option<Record>> {
        let mut c = Cursor::new(&self.block[self.block_pos..]);
        let kind = *c.bytes(1)?.first()?;
        let len = usize::try_from(c.u64()?).ok()?;
        let body = c.bytes(len)?;
        if kind == kind::BLOCK || kind == kind::CHECKED_BLOCK {
            return None;
        }
        if self.resync && kind != kind::SYNC {
            // After a damaged block, until a sync record says where the
            // tables stand: these records cannot be read right.
            self.block_pos += c.position();
            self.records += 1;
            return Some(None);
        }
        self.payload.clear();
        self.payload.extend_from_slice(body);
        self.block_pos += c.position();
        self.records += 1;
        let r = self.decode(kind, len);
        if r.is_none() {
            self.block.clear();
        }
        r
    }

    /// Decode one payload; `Some(None)` for an unknown kind.
    fn decode(&mut self, kind: u8, len: usize) -> Option<Option<Record>> {
        let mut c = Cursor::new(&self.payload[..len]);
        let mut last = self.last_ptr;
        let mut ptr = |c: &mut Cursor| -> Option<u64> {
            last = last.wrapping_add(c.i64()? as u64);
            Some(last)
        };
        let r = match kind {
            kind::SYNC => {
                // The sequence number after these was checked where the
                // block was opened.
                let counts = [c.u64()?, c.u64()?, c.u64()?];
                let base = c.u64()?;
                self.sync(counts, base)?;
                return Some(None);
            }
            // Writers before the bound (no sequence numbers) did not cut
            // strings: their traces still read.
            kind::STRING if len > MAX_STRING && self.sequenced => return None,
            kind::STRING => {
                let s = String::from_utf8_lossy(&self.payload[..len]).into_owned();
                self.tables.add_string(s.clone());
                Record::String(s)
            }
            kind::FRAME => {
                let f = FrameRecord {
                    function: c.u32()?,
                    file: match c.u32()? {
                        0 => None,
                        x => Some(x - 1),
                    },
                    line: c.u32()?,
                    column: c.u32()?,
                    func_index: c.u32()?,
                    code_offset: c.u32()?,
                };
                let resolved = Frame {
                    function: self.tables.string(f.function)?.to_string(),
                    file: match f.file {
                        Some(i) => Some(self.tables.string(i)?.to_string()),
                        None => None,
                    },
                    line: f.line,
                    column: f.column,
                    func_index: f.func_index,
                    code_offset: f.code_offset,
                };
                self.tables.add_frame(resolved);
                Record::Frame(f)
            }
            kind::STACK => {
                let parent = c.u32()?;
                let frame = c.u32()?;
                self.tables.add_stack(parent, frame)?;
                Record::Stack { parent, frame }
            }
            kind::ALLOC => {
                let r = Record::Alloc {
                    kind: c.u32()? as i32,
                    ptr: ptr(&mut c)?,
                    size: c.u64()?,
                    align: c.u64()?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::FREE => {
                let r = Record::Free {
                    kind: c.u32()? as i32,
                    ptr: ptr(&mut c)?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::REALLOC => {
                let r = Record::Realloc {
                    kind: c.u32()? as i32,
                    old: ptr(&mut c)?,
                    new: ptr(&mut c)?,
                    size: c.u64()?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::GROW => Record::Grow {
                memory: c.u32()?,
                delta: c.u64()?,
                old_pages: match c.i64()? {
                    -1 => None,
                    p => Some(p as u64),
                },
                stack: c.u32()?,
            },
            kind::RUN_START => {
                let module = c.str()?;
                let start_unix_ms = c.u64()?;
                let n = c.u64()? as usize;
                let mut memories = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    memories.push(MemoryInfo {
                        initial_pages: c.u64()?,
                        maximum_pages: c.u64()?.checked_sub(1),
                        memory64: c.u64()? & 1 == 1,
                        // Wasm pages are 1 byte (custom page sizes) to 64 KiB.
                        page_size_log2: u8::try_from(c.u64()?).ok().filter(|&l| l <= 16)?,
                    });
                }
                Record::RunStart {
                    module,
                    start_unix_ms,
                    memories,
                }
            }
            kind::RUN_END => {
                let status = RunStatus::from_u8(c.u64()? as u8);
                let has = c.u64()? == 1;
                let code = c.i64()? as i32;
                Record::RunEnd {
                    status,
                    exit_code: has.then_some(code),
                    message: c.str()?,
                }
            }
            kind::INVOCATION_START => Record::InvocationStart {
                index: c.u64()?,
                name: c.str()?,
            },
            kind::INVOCATION_END => Record::InvocationEnd {
                index: c.u64()?,
                ok: c.u64()? == 1,
                message: c.str()?,
            },
            kind::INVOCATION_STATS => Record::InvocationStats(InvocationStats {
                index: c.u64()?,
                outcome: InvocationOutcome::from_u64(c.u64()?),
                allocs: c.u64()?,
                frees: c.u64()?,
                bytes: c.u64()?,
                live_bytes: c.u64()?,
                live_blocks: c.u64()?,
                pages: c.u64()?,
                duration_us: c.u64()?,
                output_bytes: c.u64()?.checked_sub(1),
            }),
            kind::WARMUP => Record::Warmup(c.u64()?),
            kind::LAYOUT => Record::Layout(MemoryLayout {
                data_end: c.u64()?,
                stack_lo: c.u64()?,
                stack_hi: c.u64()?,
                heap_base: c.u64()?,
            }),
            kind::MEMORY_DATA => Record::MemoryData {
                memory: c.u32()?,
                data_end: c.u64()?,
            },
            kind::TIME => Record::Time(c.u64()?),
            kind::UNRECORDED_INVALID => Record::UnrecordedInvalid(c.u64()?),
            kind::INVALID_FREE => Record::InvalidFree {
                ptr: c.u64()?,
                stack: c.u32()?,
                alloc_stack: c.u32()?,
                free_stack: c.u32()?,
            },
            kind::EXIT_BLOCK => Record::ExitBlock {
                ptr: c.u64()?,
                kind: LeakKind::from_u8(c.u64()? as u8)?,
                rule: c.u32()?.checked_sub(1),
            },
            _ => return Some(None),
        };
        // An event may only refer to stacks the trace has defined: an id
        // beyond them is corruption, never something to size a table by.
        let known = |id: StackId| id <= self.tables.stacks();
        let stacks_ok = match &r {
            Record::Alloc { stack, .. }
            | Record::Free { stack, .. }
            | Record::Realloc { stack, .. }
            | Record::Grow { stack, .. } => known(*stack),
            Record::InvalidFree {
                stack,
                alloc_stack,
                free_stack,
                ..
            } => known(*stack) && known(*alloc_stack) && known(*free_stack),
            _ => true,
        };
        stacks_ok.then_some(Some(r))
    }

    /// A sync record: the tables' sizes and the pointer base where a block
    /// begins. Read in order they must match; after a damaged block, the
    /// entries it defined are filled with stand-ins and reading goes on.
    fn sync(&mut self, counts: [u64; 3], base: u64) -> Option<()> {
        let have = [
            u64::from(self.tables.strings()),
            u64::from(self.tables.frames()),
            u64::from(self.tables.stacks()),
        ];
        if !self.resync {
            return (counts == have && base == self.last_ptr).then_some(());
        }
        if counts.iter().zip(&have).any(|(c, h)| c < h) {
            // Behind what was read: not this trace's sync; keep looking.
            return Some(());
        }
        // A damaged block defines at most one entry per two bytes.
        let most = (MAX_BLOCK / 2) as u64;
        if counts.iter().zip(&have).any(|(c, h)| c - h > most) {
            return None;
        }
        const LOST: &str = "<lost in a damaged block of the trace>";
        for _ in have[0]..counts[0] {
            self.tables.add_string(LOST.to_string());
        }
        for _ in have[1]..counts[1] {
            self.tables.add_frame(Frame {
                function: LOST.to_string(),
                file: None,
                line: 0,
                column: 0,
                func_index: u32::MAX,
                code_offset: 0,
            });
        }
        for _ in have[2]..counts[2] {
            self.tables.add_stack(0, 0)?;
        }
        self.last_ptr = base;
        self.resync = false;
        Some(())
    }

    /// Offsets of the checked blocks that failed their checksum and were
    /// skipped: the records after each were read from the next block on.
    /// A trace with any is partial.
    pub fn damaged(&self) -> &[u64] {
        &self.damaged
    }

    /// Offsets of whole checked blocks that stood out of their place (see
    /// "Block sequence"): a block repeated or moved (skipped), or the first
    /// block after blocks that are missing. A trace with any is partial.
    pub fn out_of_sequence(&self) -> &[u64] {
        &self.out_of_sequence
    }

    /// Records read so far (including skipped unknown ones).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records of unknown kinds skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Byte offset just past the last whole record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A string by id.
    pub fn string(&self, id: u32) -> Option<&str> {
        self.tables.string(id)
    }

    /// A frame by id.
    pub fn frame(&self, id: u32) -> Option<&Frame> {
        self.tables.frame(id)
    }

    /// The frame ids of a stack, outermost first.
    pub fn stack_frames(&self, id: StackId) -> Vec<u32> {
        self.tables.stack_frames(id)
    }

    /// The frames of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`].
    pub fn stack(&self, id: StackId) -> Vec<&Frame> {
        self.tables.stack(id)
    }

    /// Outer frames of a stack that [`TraceReader::stack`] leaves out.
    pub fn omitted(&self, id: StackId) -> u32 {
        self.tables.omitted(id)
    }
}

/// The interned strings, frames and stack nodes of a trace, and the one
/// rule for their ids: a string's or a frame's id is its position among the
/// trace's string or frame records (from 0), a stack's its position among
/// its stack records (from 1; 0 is the empty stack). The reader fills them
/// as it reads; the collector's recorder fills them as it writes, so both
/// sides resolve an id the same way. Memory grows with distinct strings,
/// frames and stacks, never with events.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    strings: Vec<String>,
    frames: Vec<Frame>,
    /// (parent, frame) per stack id - 1.
    stacks: Vec<(StackId, u32)>,
    /// Frames per stack id - 1 (its depth).
    depths: Vec<u32>,
}

/// Frames of a stack that views keep, innermost first: a deeper stack
/// (a recursion thousands of levels deep) is cut to its innermost
/// `MAX_STACK_FRAMES`, and the views say how many outer frames they left
/// out. It bounds every view's cost per stack, as Valgrind's
/// `--num-callers` does.
pub const MAX_STACK_FRAMES: usize = 128;

impl Tables {
    /// Add a string; returns its id.
    pub fn add_string(&mut self, s: String) -> u32 {
        self.strings.push(s);
        self.strings.len() as u32 - 1
    }

    /// Add a frame; returns its id.
    pub fn add_frame(&mut self, f: Frame) -> u32 {
        self.frames.push(f);
        self.frames.len() as u32 - 1
    }

    /// Add a stack node: `frame` called from stack `parent`; returns its id,
    /// or `None` when the parent or the frame does not exist yet.
    pub fn add_stack(&mut self, parent: StackId, frame: u32) -> Option<StackId> {
        if parent as usize > self.stacks.len() || frame as usize >= self.frames.len() {
            return None;
        }
        self.stacks.push((parent, frame));
        self.depths.push(self.depth(parent).saturating_add(1));
        Some(self.stacks.len() as StackId)
    }

    /// Frames in stack `id` (0 for the empty stack or an unknown id).
    pub fn depth(&self, id: StackId) -> u32 {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.depths.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Outer frames of stack `id` that [`Tables::stack`] leaves out.
    pub fn omitted(&self, id: StackId) -> u32 {
        self.depth(id).saturating_sub(MAX_STACK_FRAMES as u32)
    }

    /// Strings so far: the next string's id.
    pub fn strings(&self) -> u32 {
        self.strings.len() as u32
    }

    /// Frames so far: the next frame's id.
    pub fn frames(&self) -> u32 {
        self.frames.len() as u32
    }

    /// Stacks so far: the last stack's id.
    pub fn stacks(&self) -> StackId {
        self.stacks.len() as StackId
    }

    /// A string by id.
    pub fn string(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize).map(String::as_str)
    }

    /// A frame by id.
    pub fn frame(&self, id: u32) -> Option<&Frame> {
        self.frames.get(id as usize)
    }

    /// The frame ids of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`] ([`Tables::omitted`] says how many more).
    pub fn stack_frames(&self, mut id: StackId) -> Vec<u32> {
        let mut out = Vec::new();
        while id != 0 && out.len() < MAX_STACK_FRAMES {
            let Some(&(parent, frame)) = self.stacks.get(id as usize - 1) else {
                break;
            };
            out.push(frame);
            id = parent;
        }
        out.reverse();
        out
    }

    /// The frames of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`] ([`Tables::omitted`] says how many more).
    pub fn stack(&self, id: StackId) -> Vec<&Frame> {
        self.stack_frames(id)
            .into_iter()
            .filter_map(|f| self.frame(f))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
            Record::RunEnd {
                status: RunStatus::Exited,
                exit_code: Some(3),
                message: String::new(),
            },
        ]
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
        // Offsets where each record ends.
        let mut ends = vec![12];
        let mut r = TraceReader::new(&bytes[..]).unwrap();
        while r.next_record().unwrap().is_some() {
            ends.push(r.offset() as usize);
        }
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
                        assert_eq!(records as usize, whole);
                        assert_eq!(offset as usize, ends[whole]);
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
}
