//! The heap graph: who holds the blocks live at a moment of the run.
//!
//! The collector's leak scan walks the graph whose nodes are the live
//! blocks, whose edges are aligned words pointing at a block, and whose
//! roots are the module's static variables, the live part of its C stack,
//! its globals, its other memories and what a host holds. A [`HeapGraph`]
//! keeps, for every live block at one moment (the end of the run, or a
//! snapshot taken during it), only what the views need to answer "who
//! holds it": the first step of its shortest path from a root
//! ([`GraphBlock::holder`]), its immediate dominator
//! ([`GraphBlock::idom`]: what would have to go for it to be freed) and
//! the lost cycle it belongs to. Not a memory dump: a few varints a block.
//!
//! Retainer paths follow `holder` up to a root; retained sizes sum the
//! dominator tree; cycles group blocks by `cycle`.

use crate::format::StackId;

/// What kind of thing a root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    /// A static variable named by the module's debug info or symbols
    /// (`g_registry`, `leaky_cache::LEAKY_CACHE`).
    Variable,
    /// Static data not covered by a named variable (a data segment, or the
    /// static area as a whole when nothing names its parts).
    Data,
    /// The live part of the C stack (from the stack pointer to its top).
    Stack,
    /// A wasm global.
    Global,
    /// Another linear memory of the module.
    Memory,
    /// Something the host holds (Extism's variables and handles, values
    /// handed to the app's JavaScript).
    Host,
}

impl RootKind {
    /// The word the views print before the root's name.
    pub fn word(self) -> &'static str {
        match self {
            RootKind::Variable => "static",
            RootKind::Data => "static data",
            RootKind::Stack => "the stack",
            RootKind::Global => "global",
            RootKind::Memory => "memory",
            RootKind::Host => "host",
        }
    }
}

/// A root of the graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootInfo {
    /// What it is.
    pub kind: RootKind,
    /// Its name: a variable's symbol (demangled), a segment's name,
    /// `__stack_pointer`, `global 3`, `memory 1`.
    pub name: String,
    /// Its type, from DWARF, when known (`Mutex<Option<HashMap<u64, Vec<u8>>>>`).
    pub ty: Option<String>,
    /// Where it is declared, when known.
    pub file: Option<String>,
    /// Its declaration's line, 0 when unknown.
    pub line: u32,
    /// Its address in memory 0 (0 when it is not in memory 0).
    pub addr: u64,
    /// Its size in bytes (0 when not in memory 0).
    pub size: u64,
}

/// What holds a block, or dominates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ref {
    /// Nothing: an unreachable block (no holder), or a block dominated
    /// only by the graph's virtual top (several roots reach it).
    #[default]
    None,
    /// A root, by its index in [`HeapGraph::roots`].
    Root(u32),
    /// A block, by its index in [`HeapGraph::blocks`].
    Block(u32),
}

/// One live block of a [`HeapGraph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphBlock {
    /// Its address.
    pub ptr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The stack that allocated it.
    pub stack: StackId,
    /// Its allocation's sequence number (position among heap events:
    /// `model::Block::seq`), to tell the blocks born between two snapshots.
    pub seq: u64,
    /// The previous step of its shortest path from a root: the root or
    /// block whose word points at it. For a block no root reaches, a lost
    /// block that points at it (an indirectly lost block's holder), or
    /// `None`.
    pub holder: Ref,
    /// Whether that word points into the block's middle rather than at its
    /// start (Valgrind's "possibly lost" pointers).
    pub interior: bool,
    /// Its immediate dominator among the reachable blocks: the root or
    /// block every path from the roots to it passes through last; `None`
    /// when several roots reach it, or when it is unreachable.
    pub idom: Ref,
    /// The lost cycle it belongs to, numbered from 1 (0: none): blocks no
    /// root reaches that reach each other (a block pointing at itself is a
    /// cycle of one).
    pub cycle: u32,
}

/// The heap graph at one moment of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapGraph {
    /// When it was taken: `exit`, `invocation:1000`, `guest:1`, `trap`.
    pub label: String,
    /// Invocations completed when it was taken (actors, `--repeat`).
    pub invocation: Option<u64>,
    /// Heap events recorded before it: blocks with `seq` below it were born
    /// before it.
    pub seq: u64,
    /// The roots.
    pub roots: Vec<RootInfo>,
    /// The blocks live then, in address order.
    pub blocks: Vec<GraphBlock>,
}
