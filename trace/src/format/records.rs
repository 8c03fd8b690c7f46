//! Record kinds and what each holds: [`Record`] and the types its
//! payloads carry.

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
    pub(super) fn from_u8(v: u8) -> Option<LeakKind> {
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
    pub(super) fn from_u64(v: u64) -> InvocationOutcome {
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

    pub(super) fn to_u8(self) -> u8 {
        match self {
            RunStatus::Exited => 0,
            RunStatus::Trapped => 1,
            RunStatus::MemoryLimit => 2,
            RunStatus::Timeout => 3,
            RunStatus::Error => 4,
            RunStatus::Interrupted => 5,
        }
    }
    pub(super) fn from_u8(v: u8) -> RunStatus {
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

/// The most memories a [`ModuleInfo`] lists: a run-wide memory number is
/// the 8 bits of a hook's `kind` above its role
/// ([`crate::abi::KIND_MEMORY_SHIFT`]), so a run has at most 256.
pub const MAX_MODULE_MEMORIES: usize = 256;

/// One core module instance of a component run ([`Record::Module`]): which
/// core module it is, where it sits in the component, and which of the
/// run's memories are its own. A run of a core module has none of these
/// records; a component run has one per core instance, instrumented or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    /// The run-wide core instance number, from 0 (what `--module INDEX` and
    /// `[module NAME (core N)]` name). Unique in a run.
    pub index: u32,
    /// The core module's depth-first index in the component (two instances
    /// of one core module share it).
    pub module_id: u32,
    /// Its name: the component's name section's for the core module, else
    /// the core module's own name section's, else `module<module_id>`.
    /// Untrusted: escape it wherever it is shown.
    pub name: String,
    /// The component instance it belongs to, outermost first, `/`-joined
    /// (`root`, `root/app`).
    pub instance_path: String,
    /// The run-wide memory numbers of the memories the instance defines
    /// (the memory bits of its events' `kind`, the index of
    /// [`Record::Grow`]), its memory 0 first. Empty for an instance the
    /// host never saw (not instrumented, no memory).
    pub memories: Vec<u32>,
    /// Whether heapscope instrumented it (its events are recorded).
    pub instrumented: bool,
    /// Why it was not instrumented (or what it could not see), when so.
    pub reason: Option<String>,
    /// The layout of its first memory (`memories[0]`), for the breakdown
    /// of that memory's pages, when the collector knows it.
    pub layout: Option<MemoryLayout>,
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
    /// Who holds the blocks live at one moment of the run (the end, or a
    /// snapshot): see [`crate::graph`]. Written as several records (see
    /// "Heap graphs" in [`crate::format`]), read as this one.
    HeapGraph(crate::graph::HeapGraph),
    /// The type allocated at a stack's allocation site, where DWARF tells
    /// it (the `T` of the innermost `RawVec<T>`, `Box<T>`, `Rc<T>`, ...
    /// whose code holds the site): written at the end of a run for the
    /// stacks of the blocks live then.
    SiteType {
        /// The stack.
        stack: StackId,
        /// The type's name (a string id).
        ty: u32,
    },
    /// One core module instance of a component run (see [`ModuleInfo`]).
    Module(ModuleInfo),
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
