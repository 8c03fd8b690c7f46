//! The hook ABI between an instrumented module and the heapscope host.
//!
//! `heapscope instrument` rewrites a module so that it reports its heap to the
//! host through a handful of imported functions, and keeps a *shadow call
//! stack* the host reads when a hook fires. Everything both sides must agree
//! on is a `pub const` here; the instrumenter adds exactly these imports and
//! the collector defines exactly these (a test in the collector checks it).
//!
//! # Imports
//!
//! All hooks are imported from the module [`IMPORT_MODULE`] (`"heapscope"`).
//! Pointers and sizes are always passed as `i64`, zero-extended from `i32` on
//! wasm32 memories, so one signature serves memory32 and memory64 alike.
//! `kind` packs the allocator role ([`AllocFn`], low 8 bits) and the index of
//! the memory the pointer refers to (bits 8..16). `sp` is the shadow stack
//! pointer at the moment of the event (see below).
//!
//! | name | params | fires |
//! | --- | --- | --- |
//! | [`HOOK_ALLOC`] `alloc` | `kind: i32, ptr: i64, size: i64, align: i64, sp: i32` | after an allocating function returns (`ptr == 0`: the allocation failed). `size` is the requested size (`n * size` for calloc); `align` is 0 when the function takes none |
//! | [`HOOK_FREE`] `free` | `kind: i32, ptr: i64, sp: i32` | after a freeing function returns; also fires for `free(NULL)`, which the host ignores |
//! | [`HOOK_REALLOC`] `realloc` | `kind: i32, old: i64, new: i64, size: i64, sp: i32` | after a reallocating function returns. `new == 0` with `size != 0` is a failed reallocation (the old block stays live); `new == 0` with `size == 0` frees `old` |
//! | [`HOOK_GROW`] `grow` | `memory: i32, delta: i64, result: i64, sp: i32` | after every `memory.grow` the module executes; `result` is the old size in pages, or `-1` when the growth failed |
//! | [`HOOK_FLUSH`] `flush` | none | when the event buffer is full: the first three hooks' events are usually buffered (see "The event buffer") |
//!
//! Hooks fire once per call of the *outermost* allocator function: the wrapper
//! of every hooked function increments a private nesting counter around the
//! original body and only calls its hook when the counter is back to zero, so
//! `calloc` calling `malloc` or `__rust_alloc` calling `malloc` reports one
//! event, not two.
//!
//! # The shadow call stack
//!
//! Walking the wasm stack from the host costs about 230 ns per frame. Instead,
//! the instrumented code keeps its own stack of *call-site ids*:
//!
//! * The instrumenter adds a memory of its own, [`SHADOW_PAGES`] pages of
//!   64 KiB for the stack and [`EVENT_PAGES`] for the event buffer after it,
//!   exported as [`SHADOW_MEMORY_EXPORT`]. The module's own code never
//!   addresses it, so it cannot corrupt it.
//! * `sp` is a private mutable `i32` global starting at 0, exported as
//!   [`SHADOW_SP_EXPORT`].
//! * Only functions that can reach an allocator or a `memory.grow` (through
//!   direct calls, and conservatively through `call_indirect`/`call_ref` of a
//!   matching type) are changed. Such a function copies `sp` into a local
//!   `entry` when it starts (its slot) and `entry + 4` into another (where
//!   its callees' frames start). Before each call instruction whose callee
//!   can reach an allocator, it stores the call site's id as a
//!   little-endian `u32` at byte offset `entry` of the shadow memory and sets
//!   `sp` to `entry + 4`; nothing is done after the call returns (the next
//!   call sets `sp` again). Before a tail call (`return_call*`) it sets `sp`
//!   back to `entry`, so the callee takes over its slot. Because each frame
//!   writes at its own entry depth, the stack heals itself whatever a
//!   callee, a caught exception or a trap left `sp` at; it costs one store
//!   and one global write per call.
//! * Every hook receives `sp` as it was when the allocator was called (the
//!   wrapper reads it before the original body runs), so the current stack
//!   is the `sp / 4` ids in `shadow[0..sp]`, outermost call first and the
//!   call into the allocator last. Reading it costs the host one slice
//!   access.
//!
//! # The event buffer
//!
//! A host call per event, and the host reading the shadow stack through
//! its runtime's memory lookups, cost more than copying the stack inside
//! the module; and events handed over in bulk can be recorded on another
//! thread while the module runs on. So allocator wrappers do not call
//! `alloc`, `free` or `realloc` directly: they append a record to a buffer
//! in the shadow memory, at [`EVENT_BASE`], [`EVENT_BYTES`] long, and call
//! [`HOOK_FLUSH`] only when the next record would not fit. A record is
//!
//! | offset | type | field |
//! | --- | --- | --- |
//! | 0 | `u32` | `tag << EVENT_TAG_SHIFT \| kind & EVENT_KIND_MASK`; tag: [`EVENT_ALLOC`], [`EVENT_FREE`] or [`EVENT_REALLOC`] |
//! | [`EVENT_A_OFFSET`] (4) | `u64` | alloc: ptr; free: ptr; realloc: old |
//! | [`EVENT_B_OFFSET`] (12) | `u64` | alloc: size; free: 0; realloc: new |
//! | [`EVENT_C_OFFSET`] (20) | `u64` | alloc: align; free: 0; realloc: size |
//! | [`EVENT_STACK_LEN_OFFSET`] (28) | `u32` | `sp`, the stack's length in bytes |
//! | [`EVENT_HEADER`] (32) | `sp` bytes | `shadow[0..sp]`, copied |
//!
//! [`EventRecord`] encodes and decodes it; the instrumenter emits its
//! stores at these offsets, the collector and the tests decode with
//! [`EventRecords`]. Records are little-endian, one after another from [`EVENT_BASE`] up to the global
//! exported as [`EVENTS_EXPORT`], which is written last, so a record cut
//! short by a trap is never seen. The host reads and empties the buffer
//! (sets that global back to [`EVENT_BASE`]) in `flush`, before it handles
//! any synchronous hook (`grow` always is one, so events stay in order),
//! after every call into the module returns or traps, and before it reads
//! the heap. A record whose stack would not fit the buffer, every record
//! when the host has set [`EVENTS_CAP_EXPORT`] to 0, and any record that
//! still does not fit after `flush` (a host that never empties the buffer)
//! goes through the synchronous hook of its tag instead, with the arguments
//! in the table above.
//!
//! A trap leaves `sp` where it was, so the host can still read the stack of
//! the instruction that trapped (a refused `memory.grow`, for one). A host
//! that calls exports again after a trap resets `sp` to 0 first.
//!
//! # Globals
//!
//! Every `i32`/`i64` global of the module is also exported as
//! `heapscope:global:N` ([`GLOBAL_EXPORT_PREFIX`]), the C stack pointer as
//! [`STACK_POINTER_EXPORT`] and each memory as `heapscope:memory:N`
//! ([`MEMORY_EXPORT_PREFIX`]), so the host can scan them for pointers into
//! live blocks when the run ends.
//!
//! # The site table
//!
//! Call-site ids index the custom section [`SITE_TABLE_SECTION`], which maps
//! each id to the *original* module's function index and code offset (offset
//! of the call instruction from the start of the code section's payload, the
//! address DWARF uses for wasm), and to its source frames, innermost first
//! (inlined functions appear as their own frames). The instrumenter writes
//! one frame per site, the calling function's name from the name section; when
//! the original has DWARF it also copies the DWARF sections symbolising needs
//! under [`DWARF_SECTION_PREFIX`] (`heapscope.debug_info`, ...), and the
//! collector replaces a site's frames with file, line and inlined frames the
//! first time a run reaches it. Its encoding is described on [`SiteTable`].
//! The section's presence also marks a module as already instrumented.
//!
//! # The code map
//!
//! A trap's backtrace names the *instrumented* module's functions and code
//! offsets. The custom section [`CODE_MAP_SECTION`] maps them back to the
//! original's, so that the host can show a trap's stack as `wasmtime run`
//! shows it for the original module: each function of the instrumented
//! module that holds original code (every original function, and the
//! original body of a wrapped allocator, `X.heapscope_original`, as `X`)
//! is listed with its index in the original module and runs of its code
//! offsets; a function it does not list is heapscope's own (an allocator's
//! wrapper, `heapscope:record`, a growth helper), and a trap's stack leaves
//! it out. Within a run, an instruction at `start + k` of the instrumented
//! body was at `original + k` in the original (offsets from the start of the
//! original's code section payload, as DWARF and [`Site::code_offset`] use
//! them); a new run starts wherever the two stop moving together (code
//! heapscope inserted, a LEB128 written shorter). The instrumenter writes
//! it from walrus' record of where each instruction went
//! (`ModuleConfig::preserve_code_transform`); a module instrumented
//! beforehand carries it, and a compiled-module cache entry keeps a copy
//! in its checked metadata (the instrumented bytes are not kept there).
//! Optional, so its presence does not change [`ABI_VERSION`]: without it (a
//! module instrumented by an older heapscope) or when it does not decode, a
//! trap's stack is made from the frames' names alone, without lines. Its
//! encoding is described on [`CodeMap`].

use crate::varint::{self, Cursor};

/// Module name of every hook import.
pub const IMPORT_MODULE: &str = "heapscope";
/// Import name of the allocation hook.
pub const HOOK_ALLOC: &str = "alloc";
/// Import name of the free hook.
pub const HOOK_FREE: &str = "free";
/// Import name of the reallocation hook.
pub const HOOK_REALLOC: &str = "realloc";
/// Import name of the memory growth hook.
pub const HOOK_GROW: &str = "grow";
/// Import name of the event-buffer hook: the host reads and empties the
/// buffer (see "The event buffer").
pub const HOOK_FLUSH: &str = "flush";
/// Every hook import name, for checks that the host defines them all.
pub const ALL_HOOKS: [&str; 5] = [HOOK_ALLOC, HOOK_FREE, HOOK_REALLOC, HOOK_GROW, HOOK_FLUSH];

/// A hook parameter's wasm type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookParam {
    /// `i32`
    I32,
    /// `i64`
    I64,
}

/// The parameters of hook `name` (every hook returns nothing), as the table
/// under "Imports" gives them: the one definition the instrumenter imports
/// and the collector defines (a collector test compares its linker's types
/// with these).
pub fn hook_params(name: &str) -> Option<&'static [HookParam]> {
    use HookParam::{I32, I64};
    Some(match name {
        HOOK_ALLOC => &[I32, I64, I64, I64, I32],
        HOOK_FREE => &[I32, I64, I32],
        HOOK_REALLOC => &[I32, I64, I64, I64, I32],
        HOOK_GROW => &[I32, I64, I64, I32],
        HOOK_FLUSH => &[],
        _ => return None,
    })
}

/// Export name of the shadow stack memory.
pub const SHADOW_MEMORY_EXPORT: &str = "heapscope:shadow";
/// What the instrumenter appends to the name of an allocator function it
/// wraps (`free` becomes `free.heapscope_original`, called by a wrapper
/// named `free`): a trap's backtrace folds the pair into one frame.
pub const ORIGINAL_SUFFIX: &str = ".heapscope_original";

/// Export name of the shadow stack pointer global (`i32`), so the host can
/// read the stack when a call traps (a failed growth under a memory limit,
/// for one) and no hook fired.
pub const SHADOW_SP_EXPORT: &str = "heapscope:sp";
/// Prefix of the exports through which the host reads the module's own
/// globals (`heapscope:global:N`, N the global's index in the original
/// module), for the leak scan: globals are roots, like data and the stack.
/// Globals the module already exports are exported again under this name
/// too; the stack pointer is exported only as [`STACK_POINTER_EXPORT`].
pub const GLOBAL_EXPORT_PREFIX: &str = "heapscope:global:";
/// Prefix of the exports of the module's memories (`heapscope:memory:N`),
/// so the host can scan memory N whatever the module exports it as.
pub const MEMORY_EXPORT_PREFIX: &str = "heapscope:memory:";
/// Export name of the module's C stack pointer (the global the name section
/// calls `__stack_pointer`, else wasm-ld's convention: the first mutable
/// `i32`/`i64` global), so the leak scan can leave out the dead part of the
/// stack.
pub const STACK_POINTER_EXPORT: &str = "heapscope:stack_pointer";
/// Export name of the lowest value the C stack pointer took in the run (a
/// global the instrumented module updates after every write of the stack
/// pointer): the stack between it and the pointer's value at exit holds
/// dead frames, below it was never written.
pub const STACK_LOW_EXPORT: &str = "heapscope:stack_low";
/// Size of the shadow stack memory in 64 KiB pages: 262,144 frames, far more
/// than wasmtime's default wasm stack can hold.
pub const SHADOW_PAGES: u64 = 16;
/// Pages of the shadow memory after the stack's that hold the event buffer.
pub const EVENT_PAGES: u64 = 1;
/// Byte offset of the event buffer in the shadow memory.
pub const EVENT_BASE: u32 = (SHADOW_PAGES * 65536) as u32;
/// Size of the event buffer in bytes.
pub const EVENT_BYTES: u32 = (EVENT_PAGES * 65536) as u32;
/// Bytes of an event record before its stack.
pub const EVENT_HEADER: u32 = 32;
/// Shift of the tag in an event record's first word.
pub const EVENT_TAG_SHIFT: u32 = 24;
/// Bits of an event record's first word that hold the hook's `kind`.
pub const EVENT_KIND_MASK: u32 = 0x00ff_ffff;
/// Byte offset of an event record's `a` (`u64`).
pub const EVENT_A_OFFSET: u32 = 4;
/// Byte offset of an event record's `b` (`u64`).
pub const EVENT_B_OFFSET: u32 = 12;
/// Byte offset of an event record's `c` (`u64`).
pub const EVENT_C_OFFSET: u32 = 20;
/// Byte offset of an event record's stack length (`u32`, bytes).
pub const EVENT_STACK_LEN_OFFSET: u32 = 28;
/// Export name of the event buffer's write position (`i32` global, a byte
/// offset in the shadow memory, [`EVENT_BASE`] when empty).
pub const EVENTS_EXPORT: &str = "heapscope:events";
/// Export name of the event buffer's capacity (`i32` global, bytes; starts
/// at [`initial_events_cap`]). A host that sets it to 0 gets every event
/// through the synchronous hooks.
pub const EVENTS_CAP_EXPORT: &str = "heapscope:events_cap";

/// The event buffer's capacity in a module as instrumented:
/// [`EVENT_BYTES`], or 0 in a module with a start function. A start
/// function runs while the module is instantiated, before a host can reach
/// the buffer, and a trap there would lose what it buffered; with 0 its
/// events reach the host through the synchronous hooks. A host raises the
/// capacity to [`EVENT_BYTES`] once the module is instantiated.
pub const fn initial_events_cap(has_start: bool) -> u32 {
    if has_start {
        0
    } else {
        EVENT_BYTES
    }
}
/// Event record tag (bits 24..32 of its first word): an allocation.
pub const EVENT_ALLOC: u32 = 0;
/// Event record tag: a free.
pub const EVENT_FREE: u32 = 1;
/// Event record tag: a reallocation.
pub const EVENT_REALLOC: u32 = 2;
/// Event record tag: a reallocation about to run (`a`: the pointer it was
/// given, not null), recorded before the allocator runs so that a pointer
/// that is not a block is reported, with its stack, even when the
/// allocator then traps on it. The host checks the pointer and writes an
/// invalid free to the trace when it is not a block's start; the check
/// itself is never in the trace.
pub const EVENT_REALLOC_CHECK: u32 = 3;
/// Name of the site table custom section.
pub const SITE_TABLE_SECTION: &str = "heapscope.sites";
/// Prefix of the copies of the original module's DWARF sections in an
/// instrumented module (`heapscope.debug_info`, ...): the collector
/// symbolises a call site from them the first time a run reaches it.
pub const DWARF_SECTION_PREFIX: &str = "heapscope";
/// Name of the custom section an instrumented module carries when its
/// original had no DWARF but named a source map (`sourceMappingURL`):
/// the map's URL (a wasm string), then, as LEB128 numbers, where the
/// original's code section payload started in its file and, for each
/// function body in order, its start (from that payload's start) and
/// length. The map's offsets are the original file's: with these the
/// collector maps a site's original code offset through it. Optional: a
/// collector that does not read it names sites only.
pub const SOURCE_MAP_SECTION: &str = "heapscope.source_map";
/// Name of the custom section that maps the instrumented module's
/// functions and code offsets back to the original's (see "The code map").
pub const CODE_MAP_SECTION: &str = "heapscope.code_map";
/// Version byte at the start of the code map.
pub const CODE_MAP_VERSION: u8 = 1;
/// The version of this ABI: the hooks, the shadow stack, the event record,
/// the exports and the site table's encoding. An instrumented module
/// carries the version it was made for as the first byte of its site table
/// ([`SITE_TABLE_SECTION`]); the collector refuses a module of another
/// version, naming both. Any change to this file's contract bumps it.
pub const ABI_VERSION: u8 = 1;
/// Version byte at the start of the site table: the [`ABI_VERSION`].
pub const SITE_TABLE_VERSION: u8 = ABI_VERSION;

/// Bits of a hook's `kind` argument that hold the [`AllocFn`].
pub const KIND_ROLE_MASK: i32 = 0xff;
/// Shift of the memory index inside a hook's `kind` argument.
pub const KIND_MEMORY_SHIFT: u32 = 8;

/// Which allocator function fired a hook.
///
/// The numbering is part of the ABI and of the trace format; new roles get new
/// numbers, old ones never change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum AllocFn {
    /// Not known (an unrecognised role number in a newer trace).
    Unknown = 0,
    /// `malloc(size) -> ptr`
    Malloc = 1,
    /// `calloc(n, size) -> ptr`
    Calloc = 2,
    /// `realloc(ptr, size) -> ptr`
    Realloc = 3,
    /// `free(ptr)`
    Free = 4,
    /// `aligned_alloc(align, size) -> ptr`
    AlignedAlloc = 5,
    /// `posix_memalign(out, align, size) -> errno`
    PosixMemalign = 6,
    /// `memalign(align, size) -> ptr`
    Memalign = 7,
    /// Rust's `__rust_alloc(size, align) -> ptr`
    RustAlloc = 8,
    /// Rust's `__rust_alloc_zeroed(size, align) -> ptr`
    RustAllocZeroed = 9,
    /// Rust's `__rust_realloc(ptr, old_size, align, new_size) -> ptr`
    RustRealloc = 10,
    /// Rust's `__rust_dealloc(ptr, size, align)`
    RustDealloc = 11,
    /// C++ `operator new(size)` and `operator new[](size)` (and their
    /// `nothrow` forms)
    CxxNew = 12,
    /// C++ `operator new(size, align_val_t)` and its array form
    CxxNewAligned = 13,
    /// C++ `operator delete` in all its forms (`(ptr)`, sized, aligned, array)
    CxxDelete = 14,
    /// AssemblyScript's `__new(size, class_id) -> ptr`
    AsNew = 15,
    /// AssemblyScript's `__renew(ptr, size) -> ptr`
    AsRenew = 16,
    /// AssemblyScript's `__alloc(size) -> ptr`
    AsAlloc = 17,
    /// AssemblyScript's `__free(ptr)`
    AsFree = 18,
    /// wasm-bindgen's exported `__wbindgen_malloc(size[, align]) -> ptr`
    WbgMalloc = 19,
    /// wasm-bindgen's exported `__wbindgen_free(ptr, size[, align])`
    WbgFree = 20,
    /// wasm-bindgen's exported `__wbindgen_realloc(ptr, old, new, align) -> ptr`
    WbgRealloc = 21,
    /// A Rust `<T as GlobalAlloc>::alloc(&self, layout)` (wee_alloc, talc,
    /// lol_alloc, dlmalloc's `GlobalDlmalloc`, ...)
    GlobalAlloc = 22,
    /// `<T as GlobalAlloc>::alloc_zeroed(&self, layout)`
    GlobalAllocZeroed = 23,
    /// `<T as GlobalAlloc>::dealloc(&self, ptr, layout)`
    GlobalDealloc = 24,
    /// `<T as GlobalAlloc>::realloc(&self, ptr, layout, new_size)`
    GlobalRealloc = 25,
    /// The dlmalloc crate's `Dlmalloc::malloc` (Rust's default allocator on
    /// wasm32-unknown-unknown), public `(self, size, align)` or inner
    /// `(self, size)` form
    DlMalloc = 26,
    /// dlmalloc's `calloc`
    DlCalloc = 27,
    /// dlmalloc's `free`
    DlFree = 28,
    /// dlmalloc's `realloc`
    DlRealloc = 29,
    /// dlmalloc's `memalign(self, align, size)`
    DlMemalign = 30,
    /// AssemblyScript's `__realloc(ptr, size) -> ptr` (its TLSF allocator)
    AsRealloc = 31,
    /// A Rust free (`__rust_dealloc`, `<T as GlobalAlloc>::dealloc`) that
    /// rustc inlined into the code that frees, hooked where that code
    /// starts, found through DWARF
    InlinedDealloc = 32,
    /// The canonical ABI's allocator, `cabi_realloc(old_ptr, old_size,
    /// align, new_size) -> ptr`, exported by a core module inside a
    /// component: the host or another component calls it to lower
    /// strings, lists and records into the module's memory (not the
    /// preview-1 adapter's `cabi_import_realloc`/`cabi_export_realloc`,
    /// which hand out parts of buffers it was given, never heap blocks)
    CabiRealloc = 33,
}

impl AllocFn {
    /// Every role with a number, in numbering order.
    pub const ALL: [AllocFn; 33] = [
        AllocFn::Malloc,
        AllocFn::Calloc,
        AllocFn::Realloc,
        AllocFn::Free,
        AllocFn::AlignedAlloc,
        AllocFn::PosixMemalign,
        AllocFn::Memalign,
        AllocFn::RustAlloc,
        AllocFn::RustAllocZeroed,
        AllocFn::RustRealloc,
        AllocFn::RustDealloc,
        AllocFn::CxxNew,
        AllocFn::CxxNewAligned,
        AllocFn::CxxDelete,
        AllocFn::AsNew,
        AllocFn::AsRenew,
        AllocFn::AsAlloc,
        AllocFn::AsFree,
        AllocFn::WbgMalloc,
        AllocFn::WbgFree,
        AllocFn::WbgRealloc,
        AllocFn::GlobalAlloc,
        AllocFn::GlobalAllocZeroed,
        AllocFn::GlobalDealloc,
        AllocFn::GlobalRealloc,
        AllocFn::DlMalloc,
        AllocFn::DlCalloc,
        AllocFn::DlFree,
        AllocFn::DlRealloc,
        AllocFn::DlMemalign,
        AllocFn::AsRealloc,
        AllocFn::InlinedDealloc,
        AllocFn::CabiRealloc,
    ];

    /// The role with this number, or [`AllocFn::Unknown`].
    pub fn from_u8(v: u8) -> AllocFn {
        AllocFn::ALL
            .into_iter()
            .find(|r| *r as u8 == v)
            .unwrap_or(AllocFn::Unknown)
    }

    /// The C or Rust name of the function this role stands for.
    pub fn name(self) -> &'static str {
        match self {
            AllocFn::Unknown => "?",
            AllocFn::Malloc => "malloc",
            AllocFn::Calloc => "calloc",
            AllocFn::Realloc => "realloc",
            AllocFn::Free => "free",
            AllocFn::AlignedAlloc => "aligned_alloc",
            AllocFn::PosixMemalign => "posix_memalign",
            AllocFn::Memalign => "memalign",
            AllocFn::RustAlloc => "__rust_alloc",
            AllocFn::RustAllocZeroed => "__rust_alloc_zeroed",
            AllocFn::RustRealloc => "__rust_realloc",
            AllocFn::RustDealloc => "__rust_dealloc",
            AllocFn::CxxNew => "operator new",
            AllocFn::CxxNewAligned => "operator new (aligned)",
            AllocFn::CxxDelete => "operator delete",
            AllocFn::AsNew => "__new",
            AllocFn::AsRenew => "__renew",
            AllocFn::AsAlloc => "__alloc",
            AllocFn::AsFree => "__free",
            AllocFn::WbgMalloc => "__wbindgen_malloc",
            AllocFn::WbgFree => "__wbindgen_free",
            AllocFn::WbgRealloc => "__wbindgen_realloc",
            AllocFn::GlobalAlloc => "GlobalAlloc::alloc",
            AllocFn::GlobalAllocZeroed => "GlobalAlloc::alloc_zeroed",
            AllocFn::GlobalDealloc => "GlobalAlloc::dealloc",
            AllocFn::GlobalRealloc => "GlobalAlloc::realloc",
            AllocFn::DlMalloc => "dlmalloc::malloc",
            AllocFn::DlCalloc => "dlmalloc::calloc",
            AllocFn::DlFree => "dlmalloc::free",
            AllocFn::DlRealloc => "dlmalloc::realloc",
            AllocFn::DlMemalign => "dlmalloc::memalign",
            AllocFn::AsRealloc => "__realloc",
            AllocFn::InlinedDealloc => "dealloc (inlined)",
            AllocFn::CabiRealloc => "cabi_realloc",
        }
    }

    /// The hook this role reports through.
    pub fn hook(self) -> &'static str {
        use AllocFn::*;
        match self {
            Free | RustDealloc | CxxDelete | AsFree | WbgFree | GlobalDealloc | DlFree
            | InlinedDealloc => HOOK_FREE,
            Realloc | RustRealloc | AsRenew | AsRealloc | WbgRealloc | GlobalRealloc
            | DlRealloc | CabiRealloc => HOOK_REALLOC,
            _ => HOOK_ALLOC,
        }
    }
}

/// Pack a role and a memory index into a hook's `kind` argument.
pub fn pack_kind(role: AllocFn, memory: u32) -> i32 {
    (role as i32) | ((memory as i32 & 0xff) << KIND_MEMORY_SHIFT)
}

/// Split a hook's `kind` argument into role and memory index.
pub fn unpack_kind(kind: i32) -> (AllocFn, u32) {
    (
        AllocFn::from_u8((kind & KIND_ROLE_MASK) as u8),
        ((kind >> KIND_MEMORY_SHIFT) & 0xff) as u32,
    )
}

/// One event record of the event buffer (see "The event buffer"), without
/// its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord {
    /// [`EVENT_ALLOC`], [`EVENT_FREE`] or [`EVENT_REALLOC`] (or a tag this
    /// build does not know, from a forged record).
    pub tag: u32,
    /// The hook's `kind` ([`pack_kind`]), 24 bits.
    pub kind: i32,
    /// alloc: ptr; free: ptr; realloc: old.
    pub a: u64,
    /// alloc: size; free: 0; realloc: new.
    pub b: u64,
    /// alloc: align; free: 0; realloc: size.
    pub c: u64,
}

impl EventRecord {
    /// An event of `tag` with its hook's `kind` and arguments.
    #[inline]
    pub fn new(tag: u32, kind: i32, a: u64, b: u64, c: u64) -> EventRecord {
        EventRecord { tag, kind, a, b, c }
    }

    /// The record's first word: tag and kind.
    #[inline]
    pub fn word(tag: u32, kind: i32) -> u32 {
        (tag << EVENT_TAG_SHIFT) | (kind as u32 & EVENT_KIND_MASK)
    }

    /// Append the record and its raw shadow stack to `out`.
    #[inline]
    pub fn encode(&self, stack: &[u8], out: &mut Vec<u8>) {
        let mut h = [0u8; EVENT_HEADER as usize];
        let at = |o: u32| o as usize;
        h[..4].copy_from_slice(&Self::word(self.tag, self.kind).to_le_bytes());
        h[at(EVENT_A_OFFSET)..at(EVENT_B_OFFSET)].copy_from_slice(&self.a.to_le_bytes());
        h[at(EVENT_B_OFFSET)..at(EVENT_C_OFFSET)].copy_from_slice(&self.b.to_le_bytes());
        h[at(EVENT_C_OFFSET)..at(EVENT_STACK_LEN_OFFSET)].copy_from_slice(&self.c.to_le_bytes());
        h[at(EVENT_STACK_LEN_OFFSET)..].copy_from_slice(&(stack.len() as u32).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(stack);
    }

    /// Decode the record at the start of `buf`: the record, its stack and
    /// the bytes it takes; `None` when `buf` does not hold a whole one.
    #[inline]
    pub fn decode(buf: &[u8]) -> Option<(EventRecord, &[u8], usize)> {
        let header: &[u8; EVENT_HEADER as usize] = buf.first_chunk()?;
        let u32_at =
            |o: u32| u32::from_le_bytes(*header[o as usize..].first_chunk().expect("in header"));
        let u64_at =
            |o: u32| u64::from_le_bytes(*header[o as usize..].first_chunk().expect("in header"));
        let word = u32_at(0);
        let len = u32_at(EVENT_STACK_LEN_OFFSET) as usize;
        if !len.is_multiple_of(4) {
            // A stack is whole call-site ids: not a record the module wrote.
            return None;
        }
        let end = (EVENT_HEADER as usize).checked_add(len)?;
        let stack = buf.get(EVENT_HEADER as usize..end)?;
        let rec = EventRecord {
            tag: word >> EVENT_TAG_SHIFT,
            kind: (word & EVENT_KIND_MASK) as i32,
            a: u64_at(EVENT_A_OFFSET),
            b: u64_at(EVENT_B_OFFSET),
            c: u64_at(EVENT_C_OFFSET),
        };
        Some((rec, stack, end))
    }
}

/// The records of an event buffer's bytes, in order, each with its raw
/// stack. Stops at the first record that is not whole;
/// [`EventRecords::rest`] tells how many bytes were left over.
#[derive(Debug, Clone)]
pub struct EventRecords<'a> {
    buf: &'a [u8],
}

impl<'a> EventRecords<'a> {
    /// The records of `buf`.
    pub fn new(buf: &'a [u8]) -> EventRecords<'a> {
        EventRecords { buf }
    }

    /// Bytes not decoded yet (after the iterator ends: a partial record).
    pub fn rest(&self) -> usize {
        self.buf.len()
    }
}

impl<'a> Iterator for EventRecords<'a> {
    type Item = (EventRecord, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (rec, stack, used) = EventRecord::decode(self.buf)?;
        self.buf = &self.buf[used..];
        Some((rec, stack))
    }
}

/// One source-level frame of a call site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SiteFrame {
    /// Demangled function name (`func[N]` when the module has no name for it).
    pub function: String,
    /// Source file, when DWARF gives one.
    pub file: Option<String>,
    /// 1-based source line, 0 when unknown.
    pub line: u32,
    /// 1-based source column, 0 when unknown.
    pub column: u32,
}

/// One call site: a call instruction of the original module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Site {
    /// Index of the calling function in the original module's function space.
    pub func_index: u32,
    /// Offset of the call instruction from the start of the original code
    /// section's payload.
    pub code_offset: u32,
    /// Source frames at this site, innermost (the call itself) first; more
    /// than one where functions were inlined. Never empty.
    pub frames: Vec<SiteFrame>,
}

/// The site table: call-site id `i` is `sites[i]`.
///
/// # Encoding
///
/// All integers are unsigned LEB128 varints; strings are a varint byte length
/// followed by UTF-8.
///
/// ```text
/// version: u8 (= 1)
/// string_count, string*            -- the string pool, referenced by index
/// site_count, site*
/// site  = func_index, code_offset, frame_count, frame*   (innermost first)
/// frame = function (string index), file (string index + 1, 0 = none), line, column
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteTable {
    /// The sites, indexed by call-site id.
    pub sites: Vec<Site>,
}

/// Why a site table could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum SiteTableError {
    /// The module was instrumented for another [`ABI_VERSION`].
    #[error("the module was instrumented for heapscope hook ABI version {0}, but this heapscope uses version {ABI_VERSION}: instrument the original module again with this heapscope")]
    Version(u8),
    /// The section ends early or refers to strings it does not have.
    #[error("site table is malformed at byte {0:#x}")]
    Malformed(usize),
}

impl SiteTable {
    /// Encode the table as the payload of [`SITE_TABLE_SECTION`].
    pub fn encode(&self) -> Vec<u8> {
        let mut pool: Vec<&str> = Vec::new();
        let mut index: std::collections::HashMap<&str, u64> = Default::default();
        for site in &self.sites {
            for f in &site.frames {
                for s in std::iter::once(f.function.as_str()).chain(f.file.as_deref()) {
                    if !index.contains_key(s) {
                        index.insert(s, pool.len() as u64);
                        pool.push(s);
                    }
                }
            }
        }
        let mut out = vec![SITE_TABLE_VERSION];
        varint::put_u64(&mut out, pool.len() as u64);
        for s in &pool {
            varint::put_str(&mut out, s);
        }
        varint::put_u64(&mut out, self.sites.len() as u64);
        for site in &self.sites {
            varint::put_u64(&mut out, site.func_index.into());
            varint::put_u64(&mut out, site.code_offset.into());
            varint::put_u64(&mut out, site.frames.len() as u64);
            for f in &site.frames {
                varint::put_u64(&mut out, index[f.function.as_str()]);
                varint::put_u64(&mut out, f.file.as_deref().map_or(0, |s| index[s] + 1));
                varint::put_u64(&mut out, f.line.into());
                varint::put_u64(&mut out, f.column.into());
            }
        }
        out
    }

    /// Decode the payload of [`SITE_TABLE_SECTION`].
    pub fn decode(data: &[u8]) -> Result<SiteTable, SiteTableError> {
        let Some((&version, rest)) = data.split_first() else {
            return Err(SiteTableError::Malformed(0));
        };
        if version != SITE_TABLE_VERSION {
            return Err(SiteTableError::Version(version));
        }
        let mut c = Cursor::new(rest);
        let bad = |c: &Cursor| SiteTableError::Malformed(c.position() + 1);
        let n = c.u64().ok_or_else(|| bad(&c))? as usize;
        let mut pool = Vec::with_capacity(n.min(rest.len()));
        for _ in 0..n {
            pool.push(c.str().ok_or_else(|| bad(&c))?);
        }
        let n = c.u64().ok_or_else(|| bad(&c))? as usize;
        let mut sites = Vec::with_capacity(n.min(rest.len()));
        for _ in 0..n {
            let func_index = c.u32().ok_or_else(|| bad(&c))?;
            let code_offset = c.u32().ok_or_else(|| bad(&c))?;
            let nf = c.u64().ok_or_else(|| bad(&c))? as usize;
            let mut frames = Vec::with_capacity(nf.min(64));
            for _ in 0..nf {
                let function = pool
                    .get(c.u64().ok_or_else(|| bad(&c))? as usize)
                    .ok_or_else(|| bad(&c))?
                    .clone();
                let file = match c.u64().ok_or_else(|| bad(&c))? {
                    0 => None,
                    i => Some(pool.get(i as usize - 1).ok_or_else(|| bad(&c))?.clone()),
                };
                let line = c.u32().ok_or_else(|| bad(&c))?;
                let column = c.u32().ok_or_else(|| bad(&c))?;
                frames.push(SiteFrame {
                    function,
                    file,
                    line,
                    column,
                });
            }
            if frames.is_empty() {
                return Err(bad(&c));
            }
            sites.push(Site {
                func_index,
                code_offset,
                frames,
            });
        }
        Ok(SiteTable { sites })
    }
}

/// One function of the instrumented module that holds original code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeMapFunc {
    /// Its index in the instrumented module's function space.
    pub index: u32,
    /// The index of the function it came from in the original module.
    pub original: u32,
    /// Where its body (after the body's size) starts in the instrumented
    /// module's bytes, and its length.
    pub body_start: u64,
    /// Length of its body in bytes.
    pub body_len: u64,
    /// Runs of code that moved together, in order: (offset from
    /// `body_start`, original code offset of the instruction there).
    pub runs: Vec<(u64, u64)>,
}

/// Where a frame of the instrumented module was in the original module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalPos {
    /// The function's index in the original module.
    pub func_index: u32,
    /// The instruction's offset from the start of the original's code
    /// section payload, when the map covers it.
    pub code_offset: Option<u64>,
}

/// The code map (see "The code map"): for each function of the
/// instrumented module that holds original code, where that code was.
///
/// # Encoding
///
/// Unsigned LEB128 varints, deltas zigzag-encoded (`s`), functions in
/// increasing `index`:
///
/// ```text
/// version: u8 (= 1)
/// func_count, func*
/// func = index, original, body_start, body_len, run_count, run*
/// run  = offset (from the previous run's offset, the first from 0),
///        original (s: from the previous run's original, the first from 0)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeMap {
    /// The functions, in increasing `index`.
    pub funcs: Vec<CodeMapFunc>,
}

impl CodeMap {
    /// Encode the map as the payload of [`CODE_MAP_SECTION`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CODE_MAP_VERSION];
        varint::put_u64(&mut out, self.funcs.len() as u64);
        for f in &self.funcs {
            varint::put_u64(&mut out, f.index.into());
            varint::put_u64(&mut out, f.original.into());
            varint::put_u64(&mut out, f.body_start);
            varint::put_u64(&mut out, f.body_len);
            varint::put_u64(&mut out, f.runs.len() as u64);
            let (mut at, mut orig) = (0u64, 0u64);
            for &(o, src) in &f.runs {
                varint::put_u64(&mut out, o.wrapping_sub(at));
                varint::put_i64(&mut out, src.wrapping_sub(orig) as i64);
                (at, orig) = (o, src);
            }
        }
        out
    }

    /// Decode the payload of [`CODE_MAP_SECTION`]; `None` when it is not
    /// one this version wrote whole (functions out of order, runs past their
    /// body, bytes left over). Memory is bounded by the payload's length.
    pub fn decode(data: &[u8]) -> Option<CodeMap> {
        let (&version, rest) = data.split_first()?;
        if version != CODE_MAP_VERSION {
            return None;
        }
        let mut c = Cursor::new(rest);
        let n = c.u64()? as usize;
        // Every function takes at least five bytes, every run two.
        let mut funcs = Vec::with_capacity(n.min(rest.len() / 5));
        for _ in 0..n {
            let index = c.u32()?;
            if funcs.last().is_some_and(|l: &CodeMapFunc| l.index >= index) {
                return None;
            }
            let original = c.u32()?;
            let body_start = c.u64()?;
            let body_len = c.u64()?;
            let nr = c.u64()? as usize;
            let mut runs = Vec::with_capacity(nr.min(rest.len() / 2));
            let (mut at, mut orig) = (0u64, 0u64);
            for i in 0..nr {
                let d = c.u64()?;
                if i > 0 && d == 0 {
                    return None;
                }
                at = at.checked_add(d).filter(|a| *a < body_len.max(1))?;
                orig = orig.wrapping_add(c.i64()? as u64);
                runs.push((at, orig));
            }
            funcs.push(CodeMapFunc {
                index,
                original,
                body_start,
                body_len,
                runs,
            });
        }
        c.is_empty().then_some(CodeMap { funcs })
    }

    /// Where the instruction at `module_offset` (from the start of the
    /// instrumented module's bytes, as wasmtime's `FrameInfo::module_offset`
    /// gives it) of function `index` of the instrumented module was in the
    /// original; `None` when the function is heapscope's own. The code
    /// offset is `None` when the offset is unknown or outside the map.
    pub fn lookup(&self, index: u32, module_offset: Option<u64>) -> Option<OriginalPos> {
        let f = &self.funcs[self.funcs.binary_search_by_key(&index, |f| f.index).ok()?];
        let code_offset = module_offset
            .and_then(|o| o.checked_sub(f.body_start))
            .filter(|rel| *rel < f.body_len)
            .and_then(|rel| {
                let i = f.runs.partition_point(|r| r.0 <= rel).checked_sub(1)?;
                let (start, orig) = f.runs[i];
                orig.checked_add(rel - start)
            });
        Some(OriginalPos {
            func_index: f.original,
            code_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_packs_role_and_memory() {
        let k = pack_kind(AllocFn::Calloc, 3);
        assert_eq!(k, 0x302);
        assert_eq!(unpack_kind(k), (AllocFn::Calloc, 3));
        assert_eq!(unpack_kind(0xff), (AllocFn::Unknown, 0));
    }

    #[test]
    fn roles_are_numbered_in_order_and_the_canonical_abi_reallocates() {
        for (i, r) in AllocFn::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i + 1, "{r:?}");
            assert_eq!(AllocFn::from_u8(*r as u8), *r);
        }
        assert_eq!(AllocFn::CabiRealloc as u8, 33);
        assert_eq!(AllocFn::CabiRealloc.name(), "cabi_realloc");
        assert_eq!(AllocFn::CabiRealloc.hook(), HOOK_REALLOC);
        assert_eq!(
            unpack_kind(pack_kind(AllocFn::CabiRealloc, 2)),
            (AllocFn::CabiRealloc, 2)
        );
        assert_eq!(AllocFn::from_u8(34), AllocFn::Unknown);
    }

    #[test]
    fn event_records_round_trip_at_the_documented_offsets() {
        let r = EventRecord {
            tag: EVENT_REALLOC,
            kind: pack_kind(AllocFn::Realloc, 1),
            a: 0x1111_2222_3333_4444,
            b: 0x10,
            c: 0x55,
        };
        let mut buf = Vec::new();
        r.encode(&[7, 0, 0, 0, 9, 0, 0, 0], &mut buf);
        EventRecord {
            tag: EVENT_FREE,
            kind: 4,
            a: 8,
            b: 0,
            c: 0,
        }
        .encode(&[], &mut buf);
        assert_eq!(buf.len(), 32 + 8 + 32);
        // The layout the table documents: tag in the top byte of word 0.
        assert_eq!(buf[3], EVENT_REALLOC as u8);
        assert_eq!(buf[0..3], [3, 1, 0]);
        assert_eq!(buf[4..12], 0x1111_2222_3333_4444u64.to_le_bytes());
        assert_eq!(buf[28..32], 8u32.to_le_bytes());
        let mut it = EventRecords::new(&buf);
        assert_eq!(it.next(), Some((r, &[7, 0, 0, 0, 9, 0, 0, 0][..])));
        assert_eq!(it.next().map(|x| (x.0.tag, x.0.a)), Some((EVENT_FREE, 8)));
        assert_eq!(it.next(), None);
        assert_eq!(it.rest(), 0);
        // Cut anywhere inside the second record: the first still decodes,
        // the cut one is left over.
        for cut in 41..buf.len() {
            let mut it = EventRecords::new(&buf[..cut]);
            assert!(it.next().is_some());
            assert!(it.next().is_none());
            assert_eq!(it.rest(), cut - 40);
        }
        // A stack length past the end is not followed.
        let mut bad = buf[..32].to_vec();
        bad[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(EventRecords::new(&bad).next(), None);
    }

    #[test]
    fn every_hook_has_one_signature() {
        for h in ALL_HOOKS {
            assert!(hook_params(h).is_some(), "{h}");
        }
        assert_eq!(hook_params("nope"), None);
    }

    #[test]
    fn another_abi_version_is_refused_naming_both() {
        let mut bytes = SiteTable::default().encode();
        assert_eq!(bytes[0], ABI_VERSION);
        bytes[0] = ABI_VERSION + 1;
        let e = SiteTable::decode(&bytes).unwrap_err().to_string();
        assert!(
            e.contains(&format!("ABI version {}", ABI_VERSION + 1))
                && e.contains(&format!("uses version {ABI_VERSION}")),
            "{e}"
        );
    }

    #[test]
    fn site_table_round_trips_and_shares_strings() {
        let f = |name: &str, file: Option<&str>, line| SiteFrame {
            function: name.into(),
            file: file.map(Into::into),
            line,
            column: 3,
        };
        let t = SiteTable {
            sites: vec![
                Site {
                    func_index: 7,
                    code_offset: 0x1234,
                    frames: vec![f("main", Some("a.c"), 10)],
                },
                Site {
                    func_index: 9,
                    code_offset: 5,
                    frames: vec![f("inner", Some("a.c"), 3), f("main", None, 0)],
                },
            ],
        };
        let bytes = t.encode();
        // version, 3 strings ("main", "a.c", "inner"), 2 sites.
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1], 3);
        assert_eq!(SiteTable::decode(&bytes).unwrap(), t);
        for cut in 0..bytes.len() {
            assert!(SiteTable::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn code_map_round_trips_and_maps_through_its_runs() {
        let m = CodeMap {
            funcs: vec![
                CodeMapFunc {
                    index: 5,
                    original: 0,
                    body_start: 0x100,
                    body_len: 0x40,
                    runs: vec![(0, 0x20), (0x10, 0x2c), (0x18, 0x10)],
                },
                CodeMapFunc {
                    index: 9,
                    original: 3,
                    body_start: 0x200,
                    body_len: 8,
                    runs: vec![],
                },
            ],
        };
        let bytes = m.encode();
        assert_eq!(CodeMap::decode(&bytes), Some(m.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(CodeMap::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let at = |i, o| m.lookup(i, o).map(|p| (p.func_index, p.code_offset));
        assert_eq!(at(5, Some(0x104)), Some((0, Some(0x24))));
        assert_eq!(at(5, Some(0x110)), Some((0, Some(0x2c))));
        assert_eq!(at(5, Some(0x11a)), Some((0, Some(0x12))));
        // Outside the body, no offset; the function is still the original's.
        assert_eq!(at(5, Some(0x140)), Some((0, None)));
        assert_eq!(at(5, None), Some((0, None)));
        assert_eq!(at(9, Some(0x201)), Some((3, None)));
        // Not listed: heapscope's own.
        assert_eq!(at(6, Some(0x104)), None);
    }

    #[test]
    fn a_code_map_out_of_order_or_past_its_body_is_refused() {
        let f = |index, runs| CodeMapFunc {
            index,
            original: 1,
            body_start: 0,
            body_len: 4,
            runs,
        };
        let bad = [
            CodeMap {
                funcs: vec![f(2, vec![]), f(2, vec![])],
            },
            CodeMap {
                funcs: vec![f(2, vec![(4, 0)])],
            },
            CodeMap {
                funcs: vec![f(2, vec![(1, 0), (1, 5)])],
            },
        ];
        for m in bad {
            assert_eq!(CodeMap::decode(&m.encode()), None, "{m:?}");
        }
        let mut trailing = CodeMap::default().encode();
        trailing.push(0);
        assert_eq!(CodeMap::decode(&trailing), None);
        assert_eq!(CodeMap::decode(&[CODE_MAP_VERSION + 1, 0]), None);
    }
}
