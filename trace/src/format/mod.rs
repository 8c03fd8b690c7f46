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
//! ## Heap graphs
//!
//! A [`crate::graph::HeapGraph`] (who holds the blocks live at one moment:
//! the end of the run, or a snapshot) is one [`Record::HeapGraph`] to a
//! reader, written as several records so that each fits in a block: a
//! graph record, then one root record per root, then block records until
//! the graph's block count is reached. Nothing but sync records stands
//! between them; a reader returns the graph once its last part is read.
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x2c` | heap graph | label (string), invocation + 1 (0 = none), seq, root count, block count |
//! | `0x2d` | graph root | kind (0 variable, 1 static data, 2 stack, 3 global, 4 memory, 5 host), name (string), type (string length + 1, 0 = none), file (likewise), line, addr, size |
//! | `0x2e` | graph blocks | blocks, in address order, until the payload ends; per block: ptr (the first block's absolute, then the increase over the previous block's, never 0), size, stack, seq, holder, idom, flags |
//!
//! A reference (holder, idom) is 0 for none, `1 + 2i` for root `i`,
//! `2 + 2j` for block `j` (its index in address order among the graph's
//! blocks). Flags are `cycle << 1 | interior`. The writer puts at most
//! [`GRAPH_CHUNK`] blocks in one record. A reader refuses (as malformed)
//! a reference past the graph's roots or blocks, a stack the trace never
//! defined, blocks out of address order, more roots or blocks than the
//! graph record said, or another record before the graph is whole; it
//! allocates as the parts arrive, never by the counts the graph record
//! claims. A trace that ends before a graph is whole is cut short
//! ([`TraceError::Truncated`] at the graph record); after a damaged block
//! (see "Integrity") the parts of a graph it cut are skipped.
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x2f` | site type | stack, string id: the type DWARF says the stack's allocation site allocates (`RefCell<Node>`), written at the end of the run for stacks of blocks live then ([`Record::SiteType`]); a reader refuses (as malformed) a stack or string the trace has not defined |
//!
//! ## Component structure
//!
//! | kind | name | payload |
//! | --- | --- | --- |
//! | `0x40` | module | index, module id, name (string), instance path (string), flags (bit 0: instrumented, bit 1: a layout follows), reason (string length + 1, 0 = none), memory count, per memory: its run-wide number, then (flag bit 1) the layout of its first memory as in `0x29` ([`Record::Module`]) |
//!
//! A component run (a WebAssembly component holding several core modules)
//! records one module record per core instance: the run numbers every
//! (instance, memory) pair, and each event's memory (the bits of its
//! `kind` above the role, a grow's memory index) is that run-wide number,
//! so a module's numbers are those of the events in its memories. A run of
//! a core module has no module record. A reader refuses (as malformed) a
//! record listing more than [`MAX_MODULE_MEMORIES`] memories, a memory
//! number past 255 or one listed twice; [`crate::model::HeapModel`] ignores
//! a second record of the same index or a memory another module already
//! claimed, and keeps at most [`crate::model::MAX_MODULES`] modules.
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

mod read;
mod records;
mod tables;
mod write;

pub use read::*;
pub use records::*;
pub use tables::*;
pub use write::*;

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

/// The most blocks one graph-blocks record holds (see "Heap graphs"): at
/// most 70 bytes each, so a record stays far within a block.
pub const GRAPH_CHUNK: usize = 4096;

/// Whether one block may hold `len` bytes of records: the one rule the
/// writer obeys and the reader enforces.
pub fn block_holds(len: usize) -> bool {
    len <= MAX_BLOCK
}

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
    /// The start of a [`super::Record::HeapGraph`]: its label, counts.
    pub const HEAP_GRAPH: u8 = 0x2c;
    /// One root of the heap graph being read.
    pub const GRAPH_ROOT: u8 = 0x2d;
    /// A run of blocks of the heap graph being read.
    pub const GRAPH_BLOCKS: u8 = 0x2e;
    /// [`super::Record::SiteType`]
    pub const SITE_TYPE: u8 = 0x2f;
    /// [`super::Record::Module`]
    pub const MODULE: u8 = 0x40;
}

#[cfg(test)]
pub(crate) mod tests;
