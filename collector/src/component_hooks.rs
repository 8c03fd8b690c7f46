//! The host side of the component hooks (issue 30): the instance
//! [`cabi::HOOKS_INTERFACE`] that a component's instrumented core modules
//! call through the canonical ABI (`trace::component_abi`), the state the
//! host keeps per core instance ([`ComponentHeaps`], in
//! [`Host::components`]), and the drain of each instance's event buffer to
//! the recorder.
//!
//! # One run, many core instances
//!
//! A core instance registers lazily (`register`, then `memory:N` for each of
//! its memories) and the host keeps, per instance, the `list<u8>` handles
//! the canonical ABI lifted: its shadow memory and each of its memories (the
//! latest `memory:N` list, which covers the whole memory). A
//! [`WasmList::as_le_slice`] reads the *current* memory through the
//! component instance, with no re-entry check, so the host reads an
//! instance's event buffer, header and memories whenever it needs to: in a
//! hook, after a call returns or traps ([`drain_all`]), at exit
//! ([`scan_instances`]).
//!
//! Every instance's memories overlap at the same addresses, so its events
//! become the run's as `crate::sessions` keeps several instances of one
//! module apart: the run's memories are declared up front ([`plan`]: every
//! planned instance of every core module, one after another), instance
//! memory `m` becomes the run's memory `j` in the `kind`'s memory bits, and
//! its addresses carry `j` in bits 32 and up (`model::INSTANCE_TAG_SHIFT`;
//! memory `j = 0`, the first planned instance's memory 0, carries none). The
//! k-th instance of core module `M` to register takes `M`'s k-th planned
//! slot (its *defined* memories; [`ModuleLayout::imported`] are not
//! numbered). A memory an instance imports from another (the preview-1
//! adapter's `env.memory`) is that other's memory: it takes the run memory
//! of the instance that defines it (the two lists' memory is the same
//! bytes), so their blocks share one address space and its growth is that
//! memory's; what it reports before the defining instance registers is
//! held until then ([`ComponentHeaps::unrecorded`] says what never was).
//!
//! The site ids of an instance's shadow stacks are its module's; the run's
//! site table is every module's, one after another ([`plan`]), and each id
//! is offset by its module's start there (an id past the module's table
//! becomes one no table has, the recorder's unknown site).
//!
//! # Event order
//!
//! `flush`, and every synchronous hook before it records its own event,
//! drain *every* registered instance's buffer (up to its write position,
//! from where the last drain stopped: `consumed`), so that events of
//! different instances reach the recorder close to the order they happened
//! in (records buffered in one instance before another's synchronous event
//! are recorded first); after `flush` the calling instance's buffer is
//! empty (the guest resets its position when `flush` returns).

use crate::deferred::Deferred;
use crate::exit::{InstanceBlocks, Snapshot};
use crate::host::Host;
use crate::recorder::Recorder;
use heapscope_trace::abi::{self, EventRecord, EventRecords, SiteTable};
/// `n heap events`, `1 heap event`.
fn events(n: u64) -> String {
    match n {
        1 => "1 heap event".to_string(),
        n => format!("{} heap events", heapscope_trace::units::thousands(n)),
    }
}

/// Bytes of an event record before its stack.
const EVENT_HEADER: usize = abi::EVENT_HEADER as usize;
use heapscope_trace::component_abi as cabi;
use heapscope_trace::format::MemoryInfo;
use heapscope_trace::model::INSTANCE_TAG_SHIFT;
use wasmtime::component::{Linker, WasmList};
use wasmtime::{AsContextMut, StoreContextMut};

/// The most core instances a run registers: a guest calling `register` in a
/// loop gets 0 (not registered) past it.
pub(crate) const MAX_INSTANCES: usize = 4096;
/// The most memories one instance reports (a `kind` names 256).
const MAX_MEMORIES: u32 = 256;

/// A core module of the component as the run knows it before running:
/// what [`plan`] lays out.
#[derive(Debug, Clone)]
pub(crate) struct ModuleLayout {
    /// The module id (its depth-first index in the component,
    /// `ComponentMode::module_id`), what it passes to `register`.
    pub module: u32,
    /// Its site table (its `heapscope.sites` section).
    pub sites: SiteTable,
    /// Its memories, in index order (imported, then defined:
    /// `module::memory_infos` of the original module).
    pub memories: Vec<MemoryInfo>,
    /// How many of `memories` (the first ones) it imports: those are
    /// another instance's, and get no run memory of their own.
    pub imported: u32,
    /// How many instances of it the component makes.
    pub instances: u32,
    /// Its C stack pointer's initial value, when it has one (the leak
    /// scan's `ScanLayout::sp_init`).
    pub sp_init: Option<u64>,
    /// Where its memory 0's active data segments end
    /// (`ScanLayout::data_end`).
    pub data_end: u64,
}

/// The run's site table and memories for a component's modules, and the
/// hooks' state that maps each instance's events onto them.
pub(crate) struct ComponentPlan {
    /// Every module's sites, one after another (`Recorder::set_sites`).
    pub sites: SiteTable,
    /// Every planned instance's defined memories, one after another (the
    /// trace's `RunStart` memories and `HeapModel::start`).
    pub memories: Vec<MemoryInfo>,
    /// The planned instances, in order (the trace's `Record::Module`
    /// `index`): each one's module id and the run memories of the memories
    /// it defines.
    pub instances: Vec<(u32, Vec<u32>)>,
    /// The state to put in [`Host::components`].
    pub heaps: ComponentHeaps,
}

/// Lay out the run for `modules`: their site tables concatenated, and a
/// slot of run memories per planned instance (in the order given, each
/// module's instances one after another). Memories past the 256 a `kind`
/// can name get no slot: an instance without one is not recorded, and
/// [`ComponentHeaps::notes`] says so.
pub(crate) fn plan(modules: Vec<ModuleLayout>) -> ComponentPlan {
    let mut heaps = ComponentHeaps::default();
    let mut sites = SiteTable::default();
    let mut memories = Vec::new();
    for m in modules {
        let count = m.sites.sites.len() as u32;
        heaps
            .sites
            .entry(m.module)
            .or_insert((sites.sites.len() as u32, count));
        sites.sites.extend(m.sites.sites);
        let imported = m.imported.min(m.memories.len() as u32);
        let defined = &m.memories[imported as usize..];
        let per = defined.len() as u32;
        for _ in 0..m.instances {
            let base = memories.len() as u32;
            if base + per > MAX_MEMORIES {
                heaps.unplanned += 1;
                continue;
            }
            heaps.slots.push(Slot {
                module: m.module,
                base,
                count: per,
                imported,
                taken: false,
            });
            memories.extend(defined.iter().cloned());
        }
    }
    if heaps.unplanned > 0 {
        heaps.note(format!(
            "{} core instances have no run memory left (a run names at most {MAX_MEMORIES} memories): their events are not recorded",
            heaps.unplanned
        ));
    }
    heaps.heap_lo = vec![None; memories.len()];
    let instances = heaps
        .slots
        .iter()
        .map(|s| (s.module, (s.base..s.base + s.count).collect()))
        .collect();
    ComponentPlan {
        sites,
        memories,
        instances,
        heaps,
    }
}

/// The [`ModuleLayout`]s of a component `instrumented` from `original`
/// (`heapscope_instrument::instrument_component`): one per instrumented
/// core module, by module id, with its site table (from the instrumented
/// component), its memories and how many it imports (from the original
/// module) and its instance count. A site table that does not decode is an
/// error naming the module.
pub(crate) fn layouts(
    original: &[u8],
    instrumented: &heapscope_instrument::component::InstrumentedComponent,
) -> Result<Vec<ModuleLayout>, String> {
    let mut tables = site_tables(&instrumented.wasm).into_iter();
    let mut modules: Vec<_> = instrumented
        .modules
        .iter()
        .filter(|m| m.report().is_some())
        .collect();
    modules.sort_by_key(|m| m.id);
    let mut out = Vec::with_capacity(modules.len());
    for m in modules {
        let name = m.display_name();
        let sites = match tables.next() {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(format!("core module {name}: {e}")),
            None => {
                return Err(format!(
                "core module {name} is instrumented but the component holds no site table for it"
            ))
            }
        };
        let wasm = m.original(original);
        out.push(ModuleLayout {
            module: m.id,
            sites,
            memories: crate::module::memory_infos(wasm),
            imported: imported_memories(wasm),
            instances: m.instances,
            sp_init: stack_pointer_init(wasm),
            data_end: crate::module::data_end(wasm),
        });
    }
    Ok(out)
}

/// The site tables of the core modules of `component` that carry one
/// (heapscope's instrumented modules), depth first: the order of their
/// module ids, as the re-encoder keeps every module where it was (the
/// provider modules it adds carry none).
fn site_tables(component: &[u8]) -> Vec<Result<SiteTable, abi::SiteTableError>> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        // A custom section of a nested module is reached while walking its
        // parent's payloads: `parse_all` descends into modules too.
        if let Ok(wasmparser::Payload::CustomSection(c)) = payload {
            if c.name() == abi::SITE_TABLE_SECTION {
                out.push(SiteTable::decode(c.data()));
            }
        }
    }
    out
}

/// The initial value of the core module's C stack pointer, found as the
/// instrumenter finds it: the global the name section calls
/// `__stack_pointer`; without global names, the first mutable global
/// defined, if it starts at a plausible stack top (above 0, 16-aligned).
fn stack_pointer_init(wasm: &[u8]) -> Option<u64> {
    use wasmparser::{Name, Payload};
    // Defined globals: (index, mutable, constant initial value).
    let mut globals: Vec<(u32, bool, Option<u64>)> = Vec::new();
    let mut imported = 0u32;
    let mut names: Vec<(u32, String)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(s)) => {
                for i in s.into_imports().flatten() {
                    if matches!(i.ty, wasmparser::TypeRef::Global(_)) {
                        imported += 1;
                    }
                }
            }
            Ok(Payload::GlobalSection(s)) => {
                for (k, g) in s.into_iter().enumerate() {
                    let Ok(g) = g else { break };
                    let mut ops = g.init_expr.get_operators_reader();
                    let value = match ops.read() {
                        Ok(wasmparser::Operator::I32Const { value }) => Some(value as u32 as u64),
                        Ok(wasmparser::Operator::I64Const { value }) => Some(value as u64),
                        _ => None,
                    };
                    globals.push((imported + k as u32, g.ty.mutable, value));
                }
            }
            Ok(Payload::CustomSection(c)) if c.name() == "name" => {
                let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for n in reader.into_iter().flatten() {
                    if let Name::Global(map) = n {
                        names.extend(
                            map.into_iter()
                                .flatten()
                                .map(|g| (g.index, g.name.to_string())),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let value = |index: u32| globals.iter().find(|g| g.0 == index).and_then(|g| g.2);
    if let Some((index, _)) = names.iter().find(|(_, n)| n == "__stack_pointer") {
        return value(*index);
    }
    if !names.is_empty() {
        return None;
    }
    let (_, _, init) = globals.iter().find(|g| g.1)?;
    init.filter(|&v| v > 0 && v % 16 == 0)
}

/// How many memories the core module `wasm` imports (its first ones).
fn imported_memories(wasm: &[u8]) -> u32 {
    let mut n = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                for imp in s.into_imports().flatten() {
                    if matches!(imp.ty, wasmparser::TypeRef::Memory(_)) {
                        n += 1;
                    }
                }
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => break,
            _ => {}
        }
    }
    n
}

impl ComponentPlan {
    /// A site of the run's table (not a call site of any module) whose one
    /// frame reads `text`, for [`ComponentHeaps::set_lowering`]: before
    /// the table goes to the recorder.
    pub(crate) fn label_site(&mut self, text: &str) -> u32 {
        self.sites.sites.push(abi::Site {
            // No module's function: never symbolised.
            func_index: u32::MAX,
            code_offset: 0,
            frames: vec![abi::SiteFrame {
                function: text.to_string(),
                ..Default::default()
            }],
        });
        self.sites.sites.len() as u32 - 1
    }
}

/// A planned instance's run memories.
#[derive(Debug)]
struct Slot {
    module: u32,
    /// Its memory 0's number among the run's.
    base: u32,
    /// Its defined memories.
    count: u32,
    /// Its imported memories (its first ones).
    imported: u32,
    /// An instance registered into it.
    taken: bool,
}

/// A registered core instance.
struct Inst {
    /// Its module id.
    module: u32,
    /// Its shadow memory, all of it.
    shadow: WasmList<u8>,
    /// Its memories, by index: the latest `memory:N` list.
    memories: Vec<Option<WasmList<u8>>>,
    /// The run memory of each of its memories, by index (its slot's for a
    /// memory it defines, the defining instance's for one it imports).
    run: Vec<Option<u32>>,
    /// Its slot; `None`: not recorded.
    slot: Option<usize>,
    /// Where the next drain starts in its event buffer.
    consumed: u32,
    /// Its lost-event counter when last read.
    lost: u32,
    /// Records (as drained, not rewritten) in a memory it imports from an
    /// instance that has not reported it yet (the preview-1 adapter runs
    /// before the program registers): recorded once it does, at most
    /// [`MAX_HELD`] bytes.
    held: Vec<u8>,
    /// Growths of such a memory, held likewise: (memory index, delta, old
    /// size, the stack with the run's site ids).
    held_grows: Vec<HeldGrow>,
}

/// A growth held until the memory it grew is known.
type HeldGrow = (u32, u64, Option<u64>, Vec<u8>);

/// The most bytes of records an instance holds until the memory they are
/// in is known.
const MAX_HELD: usize = 1 << 20;

/// The run's core instances that registered with the component hooks.
#[derive(Default)]
pub(crate) struct ComponentHeaps {
    slots: Vec<Slot>,
    /// Module id -> (its first site's id in the run's table, its sites).
    sites: rustc_hash::FxHashMap<u32, (u32, u32)>,
    instances: Vec<Inst>,
    /// The lowest address of a block of each run memory, without its tag.
    heap_lo: Vec<Option<u64>>,
    /// Instances [`plan`] could not give memories to.
    unplanned: u32,
    /// Events of instances not recorded (no slot), dropped.
    pub unrecorded_events: u64,
    /// What the run could not record, one line each (for the summary's
    /// message): at most 20.
    pub notes: Vec<String>,
    /// Drained records, rewritten (reused).
    out: Vec<u8>,
    /// The site that names the call the host is making
    /// ([`ComponentHeaps::set_lowering`]).
    lowering: Option<u32>,
    /// Events the guests counted as lost ([`cabi::HEADER_LOST_EVENTS`]).
    pub lost_events: u64,
}

/// A registered instance, as the run's end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceInfo {
    /// The id `register` returned (from 1).
    pub id: u32,
    /// Its module id.
    pub module: u32,
    /// Its planned instance ([`ComponentPlan::instances`], the trace's
    /// `Record::Module` `index`); `None`: not planned, not recorded.
    pub slot: Option<u32>,
    /// The run memory of each of its memories, by index (`None`: not
    /// reported, or not recorded).
    pub memories: Vec<Option<u32>>,
    /// Whether its memory of the same index is another instance's (it
    /// imports it).
    pub imported: Vec<bool>,
}

impl ComponentHeaps {
    /// The lowest block address seen in each run memory (the layout's
    /// heap start).
    pub(crate) fn heap_lo(&self) -> &[Option<u64>] {
        &self.heap_lo
    }

    /// While the host calls an export: the site [`ComponentPlan::label_site`]
    /// made for it (`lowering arguments of keep`). A `cabi_realloc` event
    /// with no frame of its own (called by no guest code: the host lowering
    /// the export's arguments into the guest) drained meanwhile gets it as
    /// its stack. `None` after the call, once drained ([`drain_all`]).
    ///
    /// A canonical-ABI allocation made while one component calls another
    /// (a composition) has no frame either, and is named after the export
    /// the host called, through which it was reached.
    pub(crate) fn set_lowering(&mut self, site: Option<u32>) {
        self.lowering = site;
    }

    /// What the run could not record, one line each (none when it recorded
    /// everything the guests reported).
    pub(crate) fn unrecorded(&self) -> Vec<String> {
        let mut out = self.notes.clone();
        let held: usize = self
            .instances
            .iter()
            .map(|i| EventRecords::new(&i.held).count() + i.held_grows.len())
            .sum();
        if held > 0 {
            out.push(format!(
                "{} of a core module {} in a memory it imports from a module heapscope did not see (not instrumented, or it never ran): not recorded",
                events(held as u64),
                if held == 1 { "is" } else { "are" }
            ));
        }
        if self.lost_events > 0 {
            out.push(format!(
                "{} {} lost: canonical-ABI allocations and frees (which may call no host function) found a core module's event buffer full",
                events(self.lost_events),
                if self.lost_events == 1 { "was" } else { "were" }
            ));
        }
        out
    }

    /// Lower each run memory's lowest block address to the blocks'.
    fn lower_heap_lo(&mut self, blocks: Vec<(u32, u64)>) {
        for (j, ptr) in blocks {
            if let Some(lo) = self.heap_lo.get_mut(j as usize) {
                if lo.is_none_or(|l| ptr < l) {
                    *lo = Some(ptr);
                }
            }
        }
    }

    /// `n` events in memories imported from an instance heapscope does
    /// not see: not recorded, and said.
    fn unseen(&mut self, n: u64) {
        self.unrecorded_events += n;
        self.note(
            "heap events in a memory a core module imports from a module heapscope did not see (not instrumented, or it never ran) are not recorded".to_string(),
        );
    }

    fn note(&mut self, line: String) {
        if self.notes.len() < 20 && !self.notes.contains(&line) {
            self.notes.push(line);
        }
    }

    /// The registered instances, by id.
    pub(crate) fn instances(&self) -> Vec<InstanceInfo> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| InstanceInfo {
                id: i as u32 + 1,
                module: inst.module,
                slot: inst.slot.map(|s| s as u32),
                memories: inst.run.clone(),
                imported: (0..inst.run.len() as u32)
                    .map(|m| inst.slot.is_some_and(|s| m < self.slots[s].imported))
                    .collect(),
            })
            .collect()
    }

    /// `register(module, shadow)`: the instance's id (from 1), or 0 past
    /// [`MAX_INSTANCES`].
    fn register(&mut self, module: u32, shadow: WasmList<u8>) -> u32 {
        if self.instances.len() >= MAX_INSTANCES {
            self.note(format!(
                "more than {MAX_INSTANCES} core instances registered: the others are not recorded"
            ));
            return 0;
        }
        let slot = self
            .slots
            .iter()
            .position(|s| s.module == module && !s.taken);
        match slot {
            Some(s) => self.slots[s].taken = true,
            None => self.note(format!(
                "an instance of core module {module} registered that the component's layout did not plan for: its events are not recorded"
            )),
        }
        if (shadow.len() as u64) < u64::from(cabi::SHADOW_LEN) {
            self.note(format!(
                "core module {module} passed a shadow memory of {} bytes ({} expected): its buffered events cannot be read",
                shadow.len(),
                cabi::SHADOW_LEN
            ));
        }
        self.instances.push(Inst {
            module,
            shadow,
            memories: Vec::new(),
            run: Vec::new(),
            slot,
            consumed: abi::EVENT_BASE,
            lost: 0,
            held: Vec::new(),
            held_grows: Vec::new(),
        });
        self.instances.len() as u32
    }

    /// The instance of `id`, as an index.
    fn index(&self, id: u32) -> Option<usize> {
        let i = (id as usize).checked_sub(1)?;
        (i < self.instances.len()).then_some(i)
    }
}

/// What maps one instance's records onto the run's: copied out of
/// [`ComponentHeaps`] so the instance's memory can be read meanwhile.
struct Mapping {
    run: Vec<Option<u32>>,
    /// Its imported memories (its first ones).
    imported: u32,
    site_offset: u32,
    site_count: u32,
    lowering: Option<u32>,
}

/// Why an event is not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unplaced {
    /// No instrumented module makes it (a memory the instance did not
    /// report, an address past 4 GiB): an invalid event.
    Invalid,
    /// It is in a memory the instance imports from one heapscope does not
    /// see (not instrumented, not registered yet): not recorded, and said.
    Unseen,
}

impl Mapping {
    fn of(heaps: &ComponentHeaps, i: usize) -> Option<Mapping> {
        let inst = &heaps.instances[i];
        inst.slot?;
        let (site_offset, site_count) = heaps.sites.get(&inst.module).copied().unwrap_or((0, 0));
        Some(Mapping {
            run: inst.run.clone(),
            imported: inst.slot.map_or(0, |s| heaps.slots[s].imported),
            site_offset,
            site_count,
            lowering: heaps.lowering,
        })
    }

    /// The stack of a drained record `ev` (rewritten) with the run's site
    /// ids, appended to `out`: a `cabi_realloc` with no frame during a
    /// host call gets the call's label.
    fn stack(&self, ev: &EventRecord, raw: &[u8], out: &mut Vec<u8>) {
        match self.lowering {
            Some(site)
                if raw.is_empty() && abi::unpack_kind(ev.kind).0 == abi::AllocFn::CabiRealloc =>
            {
                out.extend_from_slice(&site.to_le_bytes())
            }
            _ => self.sites(raw, out),
        }
    }

    /// The run memory of the instance's memory `m`.
    fn memory(&self, m: u32) -> Result<u32, Unplaced> {
        match self.run.get(m as usize).copied().flatten() {
            Some(j) => Ok(j),
            None if m < self.imported => Err(Unplaced::Unseen),
            None => Err(Unplaced::Invalid),
        }
    }

    /// `kind` naming the run's memory, with `ptrs` tagged with it, and that
    /// memory.
    fn place(&self, kind: i32, ptrs: &mut [&mut u64]) -> Result<(i32, u32), Unplaced> {
        let j = self.memory(((kind >> abi::KIND_MEMORY_SHIFT) & 0xff) as u32)?;
        for p in ptrs {
            if **p > u64::from(u32::MAX) {
                return Err(Unplaced::Invalid);
            }
            if **p != 0 && j > 0 {
                **p |= u64::from(j) << INSTANCE_TAG_SHIFT;
            }
        }
        Ok((
            (kind & !(0xff << abi::KIND_MEMORY_SHIFT)) | ((j as i32) << abi::KIND_MEMORY_SHIFT),
            j,
        ))
    }

    /// The shadow stack `raw` with the run's site ids, appended to `out`.
    fn sites(&self, raw: &[u8], out: &mut Vec<u8>) {
        for chunk in raw.chunks_exact(4) {
            let site = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let site = if site < self.site_count {
                self.site_offset + site
            } else {
                u32::MAX
            };
            out.extend_from_slice(&site.to_le_bytes());
        }
    }

    /// Rewrite `ev` for the run. `lowest` gets the untagged address of a
    /// block it allocates.
    fn event(
        &self,
        mut ev: EventRecord,
        lowest: &mut Vec<(u32, u64)>,
    ) -> Result<EventRecord, Unplaced> {
        let (kind, j) = match ev.tag {
            abi::EVENT_ALLOC | abi::EVENT_FREE | abi::EVENT_REALLOC_CHECK => {
                let (size, ptr) = (ev.b, ev.a);
                let placed = self.place(ev.kind, &mut [&mut ev.a])?;
                if ev.tag == abi::EVENT_ALLOC
                    && size != 0
                    && ptr != 0
                    && !heapscope_trace::model::is_placeholder(ev.kind, ptr)
                {
                    lowest.push((placed.1, ptr));
                }
                placed
            }
            abi::EVENT_REALLOC => {
                let new = ev.b;
                let placed = self.place(ev.kind, &mut [&mut ev.a, &mut ev.b])?;
                // A zero-size placeholder (`cabi_realloc(0, 0, align, 0)`
                // returns the alignment) is no block: the heap does not
                // start there, and the static data below it stays a root.
                if new != 0 && !heapscope_trace::model::is_placeholder(ev.kind, new) {
                    lowest.push((placed.1, new));
                }
                placed
            }
            // The recorder counts an unknown tag as an invalid event.
            _ => (ev.kind, 0),
        };
        let _ = j;
        ev.kind = kind;
        Ok(ev)
    }
}

/// Little-endian `u32` at `at` of `bytes`, if there.
fn u32_at(bytes: &[u8], at: u32) -> Option<u32> {
    let b = bytes.get(at as usize..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*b))
}

/// Little-endian `u64` at `at` of `bytes`, if there.
fn u64_at(bytes: &[u8], at: u32) -> Option<u64> {
    let b = bytes.get(at as usize..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*b))
}

/// Drain instance `i`'s buffered records from `consumed` to its write
/// position into the recorder; `flushed`: the guest empties its buffer
/// after this (a `flush`), so the next drain starts at the buffer's base.
fn drain_one(store: &mut StoreContextMut<'_, Host>, i: usize, flushed: bool) {
    let Some(heaps) = store.data_mut().components.as_deref_mut() else {
        return;
    };
    let mut out = std::mem::take(&mut heaps.out);
    out.clear();
    let mut held = std::mem::take(&mut heaps.instances[i].held);
    let heaps = store.data().components.as_deref().expect("checked");
    let inst = &heaps.instances[i];
    let consumed = inst.consumed;
    let mapping = Mapping::of(heaps, i);
    let shadow = inst.shadow.as_le_slice(&*store);
    let pos = u32_at(shadow, cabi::HEADER_EVENTS_POS).unwrap_or(0);
    let lost = u32_at(shadow, cabi::HEADER_LOST_EVENTS).unwrap_or(0);
    let (mut invalid, mut dropped, mut unseen) = (0u64, 0u64, 0u64);
    let mut lowest = Vec::new();
    let end = abi::EVENT_BASE + abi::EVENT_BYTES;
    // Before the guest set its position, the buffer is empty.
    let window = if pos <= abi::EVENT_BASE {
        None
    } else if pos > end || consumed > pos {
        // Not a position the guest's own code writes.
        eprintln!("DEBUG pos consumed={consumed} pos={pos}");
        invalid += 1;
        None
    } else {
        shadow.get(consumed as usize..pos as usize)
    };
    if let Some(window) = window {
        let mut records = EventRecords::new(window);
        let mut stack = Vec::new();
        for (ev, raw) in records.by_ref() {
            let Some(m) = &mapping else {
                dropped += 1;
                continue;
            };
            match m.event(ev, &mut lowest) {
                Ok(ev) => {
                    stack.clear();
                    m.stack(&ev, raw, &mut stack);
                    ev.encode(&stack, &mut out);
                }
                Err(Unplaced::Invalid) => {
                    eprintln!("DEBUG invalid {ev:?} run={:?}", m.run);
                    invalid += 1
                }
                Err(Unplaced::Unseen) => {
                    if held.len() + EVENT_HEADER + raw.len() <= MAX_HELD {
                        ev.encode(raw, &mut held);
                    } else {
                        unseen += 1;
                    }
                }
            }
        }
        if records.rest() > 0 {
            eprintln!(
                "DEBUG rest {} consumed={consumed} pos={pos}",
                records.rest()
            );
            invalid += 1;
        }
    }
    let next = if flushed {
        abi::EVENT_BASE
    } else {
        pos.clamp(abi::EVENT_BASE, end)
    };
    let host = store.data_mut();
    if !out.is_empty() {
        host.rec.records(&out);
    }
    if invalid > 0 {
        let mut rec = host.rec.sync();
        for _ in 0..invalid {
            rec.invalid_event();
        }
    }
    let heaps = host.components.as_deref_mut().expect("checked");
    heaps.instances[i].consumed = next;
    heaps.instances[i].held = held;
    // Counted up, never reset: what is new since the last drain.
    let seen = std::mem::replace(&mut heaps.instances[i].lost, lost);
    heaps.lost_events += u64::from(lost.wrapping_sub(seen));
    heaps.unrecorded_events += dropped;
    if unseen > 0 {
        heaps.unseen(unseen);
    }
    heaps.lower_heap_lo(lowest);
    heaps.out = out;
}

/// Drain every registered instance's buffered records; `flushing`: the
/// instance whose `flush` this is (its buffer is emptied).
fn drain_instances(store: &mut StoreContextMut<'_, Host>, flushing: Option<usize>) {
    let n = store
        .data()
        .components
        .as_deref()
        .map_or(0, |h| h.instances.len());
    for i in 0..n {
        drain_one(store, i, flushing == Some(i));
    }
}

/// Move what every registered instance buffered since the last drain to
/// the recorder: after a call into the component returns or traps, and
/// before the run reads the heap. The guests' buffers are left as they are
/// (the host never writes guest memory): the next drain starts after what
/// this one read.
pub(crate) fn drain_all(mut store: impl AsContextMut<Data = Host>) {
    let mut store = store.as_context_mut();
    drain_instances(&mut store, None);
}

/// The shadow stack of instance `i` at `sp` with the run's site ids, the
/// instance's mapping: `None` when the instance is not recorded, or `sp`
/// is not a word offset in the shadow stack's region (a forged hook call:
/// counted as an invalid event).
fn sync_stack(store: &StoreContextMut<'_, Host>, i: usize, sp: i32) -> Option<(Mapping, Vec<u8>)> {
    let heaps = store.data().components.as_deref()?;
    let mapping = Mapping::of(heaps, i)?;
    let shadow = heaps.instances[i].shadow.as_le_slice(store);
    let raw = u32::try_from(sp)
        .ok()
        .filter(|&sp| sp % 4 == 0 && sp <= abi::EVENT_BASE)
        .and_then(|sp| shadow.get(..sp as usize))?;
    let mut stack = Vec::with_capacity(raw.len());
    mapping.sites(raw, &mut stack);
    Some((mapping, stack))
}

/// A synchronous allocator hook of instance `id`: every buffer drained
/// first, then its event recorded as the core hooks record theirs.
fn sync_event(mut store: StoreContextMut<'_, Host>, id: u32, ev: EventRecord, sp: i32) {
    let Some(i) = store.data().components.as_deref().and_then(|h| h.index(id)) else {
        store.data_mut().rec.sync().invalid_event();
        return;
    };
    drain_instances(&mut store, None);
    if ev.tag == abi::EVENT_FREE && ev.a == 0 {
        return;
    }
    let recorded = store
        .data()
        .components
        .as_deref()
        .expect("checked")
        .instances[i]
        .slot
        .is_some();
    if !recorded {
        store
            .data_mut()
            .components
            .as_deref_mut()
            .expect("checked")
            .unrecorded_events += 1;
        return;
    }
    let placed = match sync_stack(&store, i, sp) {
        Some((m, stack)) => {
            let mut lowest = Vec::new();
            m.event(ev, &mut lowest).map(|ev| (ev, stack, lowest))
        }
        None => Err(Unplaced::Invalid),
    };
    let host = store.data_mut();
    match placed {
        Ok((ev, stack, lowest)) => {
            host.rec.event(ev, &stack);
            let heaps = host.components.as_deref_mut().expect("checked");
            for (j, ptr) in lowest {
                if let Some(lo) = heaps.heap_lo.get_mut(j as usize) {
                    if lo.is_none_or(|l| ptr < l) {
                        *lo = Some(ptr);
                    }
                }
            }
        }
        Err(Unplaced::Invalid) => host.rec.sync().invalid_event(),
        Err(Unplaced::Unseen) => host.components.as_deref_mut().expect("checked").unseen(1),
    }
}

/// `memory:N(id, index, bytes)`: keep the list covering memory `index`;
/// the first time, give the memory its run number: its slot's for a memory
/// the module defines; for one it imports, the number of the instance that
/// defines it (the same bytes), now or when that instance reports it.
fn memory(store: &mut StoreContextMut<'_, Host>, id: u32, index: u32, bytes: WasmList<u8>) {
    let Some(i) = store.data().components.as_deref().and_then(|h| h.index(id)) else {
        store.data_mut().rec.sync().invalid_event();
        return;
    };
    if index >= MAX_MEMORIES {
        store.data_mut().rec.sync().invalid_event();
        return;
    }
    let heaps = store.data_mut().components.as_deref_mut().expect("checked");
    let slot = heaps.instances[i].slot.map(|s| &heaps.slots[s]);
    let own = slot
        .filter(|s| index >= s.imported && index - s.imported < s.count)
        .map(|s| s.base + index - s.imported);
    let imported = slot.is_some_and(|s| index < s.imported);
    let inst = &mut heaps.instances[i];
    let at = index as usize;
    if inst.memories.len() <= at {
        inst.memories.resize_with(at + 1, || None);
        inst.run.resize(at + 1, None);
    }
    inst.memories[at] = Some(bytes);
    let new = inst.run[at].is_none();
    if new {
        inst.run[at] = own;
    }
    if new && (imported || own.is_some()) {
        resolve_imports(store);
    }
}

/// Give every imported memory not resolved yet the run number of the
/// defined memory whose bytes it is.
fn resolve_imports(store: &mut StoreContextMut<'_, Host>) {
    let Some(heaps) = store.data().components.as_deref() else {
        return;
    };
    let mut found = Vec::new();
    // The base address of each defined memory with a run number.
    let defined: Vec<(*const u8, u32)> = heaps
        .instances
        .iter()
        .enumerate()
        .flat_map(|(i, inst)| {
            let imported = inst.slot.map_or(0, |s| heaps.slots[s].imported) as usize;
            inst.memories
                .iter()
                .zip(&inst.run)
                .enumerate()
                .skip(imported)
                .filter_map(move |(m, (l, j))| Some((i, m, l.as_ref()?, (*j)?)))
        })
        .filter_map(|(_, _, l, j)| {
            let bytes = l.as_le_slice(&*store);
            (!bytes.is_empty()).then_some((bytes.as_ptr(), j))
        })
        .collect();
    for (i, inst) in heaps.instances.iter().enumerate() {
        let Some(s) = inst.slot else { continue };
        let imported = heaps.slots[s].imported as usize;
        for (m, l) in inst.memories.iter().enumerate().take(imported) {
            let (Some(l), None) = (l, inst.run[m]) else {
                continue;
            };
            let bytes = l.as_le_slice(&*store);
            if bytes.is_empty() {
                continue;
            }
            if let Some(&(_, j)) = defined
                .iter()
                .find(|(p, _)| std::ptr::eq(*p, bytes.as_ptr()))
            {
                found.push((i, m, j));
            }
        }
    }
    let heaps = store.data_mut().components.as_deref_mut().expect("checked");
    let mut replay = Vec::new();
    for (i, m, j) in found {
        heaps.instances[i].run[m] = Some(j);
        if !heaps.instances[i].held.is_empty() || !heaps.instances[i].held_grows.is_empty() {
            replay.push(i);
        }
    }
    replay.dedup();
    for i in replay {
        replay_held(store, i);
    }
}

/// Record what instance `i` held for a memory now known; what is still
/// not placed stays held (another import not known yet) or is invalid.
fn replay_held(store: &mut StoreContextMut<'_, Host>, i: usize) {
    let heaps = store.data_mut().components.as_deref_mut().expect("checked");
    let held = std::mem::take(&mut heaps.instances[i].held);
    let grows = std::mem::take(&mut heaps.instances[i].held_grows);
    let Some(m) = Mapping::of(heaps, i) else {
        return;
    };
    let mut keep_grows = Vec::new();
    {
        let mut rec = store.data_mut().rec.sync();
        for (memory, delta, old, stack) in grows {
            match m.memory(memory) {
                Ok(j) => {
                    let stack = rec.stack(&stack);
                    rec.grow(j, delta, old, stack);
                }
                Err(Unplaced::Unseen) => keep_grows.push((memory, delta, old, stack)),
                Err(Unplaced::Invalid) => rec.invalid_event(),
            }
        }
    }
    let (mut out, mut keep, mut invalid) = (Vec::new(), Vec::new(), 0u64);
    let mut lowest = Vec::new();
    let mut stack = Vec::new();
    for (ev, raw) in EventRecords::new(&held) {
        match m.event(ev, &mut lowest) {
            Ok(ev) => {
                stack.clear();
                m.stack(&ev, raw, &mut stack);
                ev.encode(&stack, &mut out);
            }
            Err(Unplaced::Unseen) => ev.encode(raw, &mut keep),
            Err(Unplaced::Invalid) => invalid += 1,
        }
    }
    let host = store.data_mut();
    if !out.is_empty() {
        host.rec.records(&out);
    }
    if invalid > 0 {
        let mut rec = host.rec.sync();
        for _ in 0..invalid {
            rec.invalid_event();
        }
    }
    let heaps = host.components.as_deref_mut().expect("checked");
    heaps.instances[i].held = keep;
    heaps.instances[i].held_grows = keep_grows;
    heaps.lower_heap_lo(lowest);
}

/// Define the instance [`cabi::HOOKS_INTERFACE`] in `linker`: every
/// function of [`cabi::HOOKS_WIT`]. The hooks' state is
/// [`Host::components`] (made empty on first use when the run did not set
/// it: then no instance has a slot and none is recorded).
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let mut hooks = linker.instance(cabi::HOOKS_INTERFACE)?;
    hooks.func_wrap(
        cabi::HOOK_REGISTER,
        |mut store: StoreContextMut<'_, Host>, (module, shadow): (u32, WasmList<u8>)| {
            let heaps = store
                .data_mut()
                .components
                .get_or_insert_with(Default::default);
            Ok((heaps.register(module, shadow),))
        },
    )?;
    hooks.func_wrap(
        cabi::WIT_MEMORY_FUNC,
        |mut store: StoreContextMut<'_, Host>, (id, index, bytes): (u32, u32, WasmList<u8>)| {
            memory(&mut store, id, index, bytes);
            Ok(())
        },
    )?;
    hooks.func_wrap(
        abi::HOOK_FLUSH,
        |mut store: StoreContextMut<'_, Host>, (id,): (u32,)| {
            let i = store.data().components.as_deref().and_then(|h| h.index(id));
            if i.is_none() {
                store.data_mut().rec.sync().invalid_event();
            }
            drain_instances(&mut store, i);
            Ok(())
        },
    )?;
    /// `alloc` and `realloc`'s parameters: id, kind, a, b, c, sp.
    type Three = (u32, i32, i64, i64, i64, i32);
    fn three(tag: u32) -> impl Fn(StoreContextMut<'_, Host>, Three) -> wasmtime::Result<()> {
        move |store, (id, kind, a, b, c, sp)| {
            let ev = EventRecord::new(tag, kind, a as u64, b as u64, c as u64);
            sync_event(store, id, ev, sp);
            Ok(())
        }
    }
    hooks.func_wrap(abi::HOOK_ALLOC, three(abi::EVENT_ALLOC))?;
    hooks.func_wrap(abi::HOOK_REALLOC, three(abi::EVENT_REALLOC))?;
    hooks.func_wrap(
        abi::HOOK_FREE,
        |store: StoreContextMut<'_, Host>, (id, kind, ptr, sp): (u32, i32, i64, i32)| {
            let ev = EventRecord::new(abi::EVENT_FREE, kind, ptr as u64, 0, 0);
            sync_event(store, id, ev, sp);
            Ok(())
        },
    )?;
    hooks.func_wrap(
        abi::HOOK_GROW,
        |mut store: StoreContextMut<'_, Host>,
         (id, memory, delta, result, sp): (u32, i32, i64, i64, i32)| {
            grow(&mut store, id, memory, delta, result, sp);
            Ok(())
        },
    )?;
    Ok(())
}

/// `grow(id, memory, delta, result, sp)`: the growth of the instance's
/// memory `memory` (its index, as the core hook's), recorded as the run
/// memory's.
fn grow(
    store: &mut StoreContextMut<'_, Host>,
    id: u32,
    memory: i32,
    delta: i64,
    result: i64,
    sp: i32,
) {
    let Some(i) = store.data().components.as_deref().and_then(|h| h.index(id)) else {
        store.data_mut().rec.sync().invalid_event();
        return;
    };
    // The other instances' buffered events came first. This instance's
    // are drained after the growth is recorded: a growth made where no
    // hook could be called (in `cabi_realloc`) is reported late, after
    // the blocks allocated in the pages it added were buffered, and
    // recorded before it they would lie outside the memory. (One made in
    // place is reported at once, so this instance's buffered blocks lie in
    // the memory as it was either way.)
    let n = store
        .data()
        .components
        .as_deref()
        .map_or(0, |h| h.instances.len());
    for k in (0..n).filter(|&k| k != i) {
        drain_one(store, k, false);
    }
    let heaps = store.data().components.as_deref().expect("checked");
    if heaps.instances[i].slot.is_none() {
        store
            .data_mut()
            .components
            .as_deref_mut()
            .expect("checked")
            .unrecorded_events += 1;
        return;
    }
    let old = (result >= 0).then_some(result as u64);
    let (placed, stack) = match (sync_stack(store, i, sp), u32::try_from(memory)) {
        (Some((m, stack)), Ok(memory)) => (m.memory(memory), stack),
        _ => (Err(Unplaced::Invalid), Vec::new()),
    };
    let host = store.data_mut();
    match placed {
        Ok(j) => {
            let mut rec = host.rec.sync();
            let stack = rec.stack(&stack);
            rec.grow(j, delta as u64, old, stack);
        }
        Err(Unplaced::Invalid) => host.rec.sync().invalid_event(),
        Err(Unplaced::Unseen) => {
            let heaps = host.components.as_deref_mut().expect("checked");
            let inst = &mut heaps.instances[i];
            if inst.held_grows.len() < 4096 {
                inst.held_grows
                    .push((memory as u32, delta as u64, old, stack));
            } else {
                heaps.unseen(1);
            }
        }
    }
    drain_one(store, i, false);
}

/// What the leak scan of one registered instance reads
/// ([`crate::exit::classify_snapshot`]).
pub(crate) struct InstanceScan<'a> {
    /// Its id and module id.
    pub id: u32,
    pub module: u32,
    /// Its memory 0 (the `memory:0` list, read now), its globals from the
    /// header's mirror, its C stack pointer and its low mark from the
    /// header, its other memories copied, and its blocks: those of its
    /// memory 0's run memory, at their addresses without their tag.
    pub snapshot: Snapshot<'a>,
    /// The index in its module of each of `snapshot.globals`; `u32::MAX`
    /// for a global of another instance that shares its memory 0 (the
    /// adapter importing the program's memory), whose globals are roots of
    /// that memory too.
    pub global_indices: Vec<u32>,
    /// Its memories' run numbers, by index.
    pub memories: Vec<Option<u32>>,
}

/// The globals in instance `i`'s header mirror and its C stack pointer's
/// value and low mark (when it has one).
fn header(shadow: &[u8]) -> (Vec<u64>, Option<u64>, Option<u64>) {
    let count = u32_at(shadow, cabi::HEADER_GLOBAL_COUNT)
        .unwrap_or(0)
        .min(cabi::MAX_MIRRORED_GLOBALS);
    let globals = (0..count)
        .map_while(|g| u64_at(shadow, cabi::HEADER_GLOBALS + 8 * g))
        .collect();
    let (sp_now, sp_low) = if u32_at(shadow, cabi::HEADER_HAS_STACK_POINTER) == Some(1) {
        (
            u64_at(shadow, cabi::HEADER_STACK_POINTER),
            u64_at(shadow, cabi::HEADER_STACK_LOW),
        )
    } else {
        (None, None)
    };
    (globals, sp_now, sp_low)
}

/// Call `scan` with the recorder and each registered instance's state, in
/// id order, after draining every buffer: the leak scan per core module
/// (each instance's own blocks, data, stack and globals), after the run
/// returned or trapped. An instance not recorded, one that never reported
/// its memory 0, and one whose memory 0 is another instance's (scanned
/// with that instance, its globals added to the roots) are left out.
pub(crate) fn scan_instances<R>(
    store: &mut wasmtime::Store<Host>,
    mut scan: impl FnMut(&mut Recorder, InstanceScan<'_>) -> R,
) -> Vec<R> {
    drain_all(&mut *store);
    if store.data().components.is_none() {
        return Vec::new();
    }
    // The recorder is taken out of the store while the instances' memories
    // are read through it (a placeholder that records nothing stands in).
    let idle = Recorder::new(SiteTable::default(), None).expect("no trace to open");
    let mut deferred = std::mem::replace(&mut store.data_mut().rec, Deferred::new(idle));
    let mut out = Vec::new();
    {
        let heaps = store.data().components.as_deref().expect("checked");
        let infos = heaps.instances();
        for (i, inst) in heaps.instances.iter().enumerate() {
            let info = &infos[i];
            let (Some(Some(j0)), Some(Some(m0))) = (info.memories.first(), inst.memories.first())
            else {
                continue;
            };
            if info.imported.first() == Some(&true) {
                continue;
            }
            let shadow = inst.shadow.as_le_slice(&*store);
            let (mut globals, sp_now, sp_low) = header(shadow);
            let mut global_indices: Vec<u32> = (0..globals.len() as u32).collect();
            // Instances that import this memory: their globals point into it.
            for (k, other) in heaps.instances.iter().enumerate() {
                if k != i && infos[k].memories.contains(&Some(*j0)) {
                    let (theirs, _, _) = header(other.shadow.as_le_slice(&*store));
                    global_indices.extend(std::iter::repeat_n(u32::MAX, theirs.len()));
                    globals.extend(theirs);
                }
            }
            let other_memories = inst.memories[1..]
                .iter()
                .flatten()
                .map(|l| (l.as_le_slice(&*store).to_vec(), 4))
                .collect();
            let j0 = u64::from(*j0);
            let snapshot = Snapshot {
                memory: m0.as_le_slice(&*store),
                globals,
                handed: Vec::new(),
                sp_now,
                sp_low,
                other_memories,
                instance: Some(InstanceBlocks {
                    tags: j0..j0 + 1,
                    heap_lo: heaps.heap_lo.get(j0 as usize).copied().flatten(),
                }),
            };
            let mut rec = deferred.sync();
            out.push(scan(
                &mut rec,
                InstanceScan {
                    id: info.id,
                    module: info.module,
                    snapshot,
                    global_indices,
                    memories: info.memories.clone(),
                },
            ));
        }
    }
    store.data_mut().rec = deferred;
    out
}

#[cfg(test)]
mod tests {
    //! A component hand-made as the re-encoder makes one: the hooks
    //! imported and lowered (`register` with the shadow memory, `memory:0`
    //! with memory 0), a provider module per instance defining the
    //! instrumented module's memories, and two core modules that write
    //! event records into their buffers as instrumented code does.
    use super::*;
    use crate::exit::{classify_snapshot, GraphNames, ScanLayout};
    use heapscope_trace::abi::{pack_kind, AllocFn, Site, SiteFrame};
    use heapscope_trace::format::LeakKind;
    use wasmtime::component::Component;
    use wasmtime::Store;

    /// A core module (id `module`) that registers lazily and appends
    /// records (stack: the two sites of its last `$stack`) to its buffer.
    fn guest(module: u32, memory_from: &str) -> String {
        let pos = cabi::HEADER_EVENTS_POS;
        let id = cabi::HEADER_INSTANCE_ID;
        let base = abi::EVENT_BASE;
        let len = cabi::SHADOW_LEN;
        let pages = cabi::COMPONENT_SHADOW_PAGES;
        let globals = cabi::HEADER_GLOBALS;
        let count = cabi::HEADER_GLOBAL_COUNT;
        let has_sp = cabi::HEADER_HAS_STACK_POINTER;
        let sp_now = cabi::HEADER_STACK_POINTER;
        let sp_low = cabi::HEADER_STACK_LOW;
        let malloc = pack_kind(AllocFn::Malloc, 0);
        let alloc = EventRecord::word(abi::EVENT_ALLOC, malloc);
        let free = EventRecord::word(abi::EVENT_FREE, pack_kind(AllocFn::Free, 0));
        // Its site table, as the instrumenter leaves it in the module.
        let prefix = match module {
            0 => "a",
            3 => "b",
            _ => "c",
        };
        let table: String = sites(prefix)
            .encode()
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect();
        let section = abi::SITE_TABLE_SECTION;
        let cabi = EventRecord::word(abi::EVENT_REALLOC, pack_kind(AllocFn::CabiRealloc, 0));
        let lost = cabi::HEADER_LOST_EVENTS;
        format!(
            r#"(core module $guest{module}
  (import "heapscope" "register" (func $register (param i32 i32 i32) (result i32)))
  (import "heapscope" "memory:0" (func $memory0 (param i32 i32 i32 i32)))
  (import "heapscope" "flush" (func $flush (param i32)))
  (import "heapscope" "alloc" (func $alloc (param i32 i32 i64 i64 i64 i32)))
  (import "heapscope" "grow" (func $grow (param i32 i32 i64 i64 i32)))
  (import {memory_from} (memory $mem 1))
  (import "heapscope:memory" "shadow" (memory $sh {pages} {pages}))
  (func $id (result i32) (local $id i32)
    (local.set $id (i32.load $sh (i32.const {id})))
    (if (i32.eqz (local.get $id)) (then
      (i32.store $sh (i32.const {pos}) (i32.const {base}))
      (local.set $id (call $register (i32.const {module}) (i32.const 0) (i32.const {len})))
      (i32.store $sh (i32.const {id}) (local.get $id))
      (call $memory0 (local.get $id) (i32.const 0) (i32.const 0)
        (i32.mul (memory.size $mem) (i32.const 65536)))))
    (local.get $id))
  (global $len (mut i32) (i32.const 8))
  (func $stack (param $s0 i32) (param $s1 i32)
    (i32.store $sh (i32.const 0) (local.get $s0))
    (i32.store $sh (i32.const 4) (local.get $s1)))
  (func $append (param $word i32) (param $a i64) (param $b i64) (param $c i64) (local $pos i32)
    (drop (call $id))
    (local.set $pos (i32.load $sh (i32.const {pos})))
    (i32.store $sh (local.get $pos) (local.get $word))
    (i64.store $sh offset=4 (local.get $pos) (local.get $a))
    (i64.store $sh offset=12 (local.get $pos) (local.get $b))
    (i64.store $sh offset=20 (local.get $pos) (local.get $c))
    (i32.store $sh offset=28 (local.get $pos) (global.get $len))
    (memory.copy $sh $sh (i32.add (local.get $pos) (i32.const 32)) (i32.const 0) (global.get $len))
    (i32.store $sh (i32.const {pos})
      (i32.add (local.get $pos) (i32.add (i32.const 32) (global.get $len)))))
  ;; The host lowering an argument: cabi_realloc(0, 0, 1, 5) = 0x900, no
  ;; frame; and 3 events it could not hand over.
  (func (export "lower")
    (global.set $len (i32.const 0))
    (call $append (i32.const {cabi}) (i64.const 0) (i64.const 0x900) (i64.const 5))
    (global.set $len (i32.const 8))
    (i32.store $sh (i32.const {lost}) (i32.const 3)))
  (func (export "run")
    (call $stack (i32.const 0) (i32.const 1))
    (call $append (i32.const {alloc}) (i64.const 0x100) (i64.const 24) (i64.const 8))
    (call $stack (i32.const 0) (i32.const 2))
    (call $append (i32.const {alloc}) (i64.const 0x200) (i64.const 16) (i64.const 0))
    ;; a synchronous event, after the two buffered ones
    (call $alloc (call $id) (i32.const {malloc}) (i64.const 0x300) (i64.const 8) (i64.const 0) (i32.const 8))
    (call $stack (i32.const 1) (i32.const 2))
    (call $append (i32.const {free}) (i64.const 0x100) (i64.const 0) (i64.const 0))
    (call $flush (call $id))
    (i32.store $sh (i32.const {pos}) (i32.const {base}))
    ;; left in the buffer: the host drains it after the call
    (call $stack (i32.const 0) (i32.const 1))
    (call $append (i32.const {alloc}) (i64.const 0x400) (i64.const 32) (i64.const 0))
    ;; roots: 0x200 from data, 0x400 from a global (mirrored)
    (i32.store $mem (i32.const 0x10) (i32.const 0x200))
    (i32.store $sh (i32.const {count}) (i32.const 1))
    (i64.store $sh (i32.const {globals}) (i64.const 0x400))
    (i32.store $sh (i32.const {has_sp}) (i32.const 1))
    (i64.store $sh (i32.const {sp_now}) (i64.const 0x80))
    (i64.store $sh (i32.const {sp_low}) (i64.const 0x40)))
  (func (export "grow") (local $old i32)
    (local.set $old (memory.grow $mem (i32.const 1)))
    (call $stack (i32.const 2) (i32.const 0))
    (call $grow (call $id) (i32.const 0) (i64.const 1) (i64.extend_i32_s (local.get $old)) (i32.const 8))
    (call $memory0 (call $id) (i32.const 0) (i32.const 0)
      (i32.mul (memory.size $mem) (i32.const 65536))))
  (func (export "adapt")
    (call $stack (i32.const 0) (i32.const 2))
    (call $append (i32.const {alloc}) (i64.const 0x800) (i64.const 12) (i64.const 0))
    (i32.store $sh (i32.const {count}) (i32.const 1))
    (i64.store $sh (i32.const {globals}) (i64.const 0x800)))
  (func (export "trap")
    (call $stack (i32.const 0) (i32.const 1))
    (call $append (i32.const {alloc}) (i64.const 0x1_0500) (i64.const 40) (i64.const 0))
    (i32.store $mem (i32.const 0x1_0010) (i32.const 0xabcd))
    unreachable)
  (@custom "{section}" "{table}"))"#
        )
    }

    /// The hooks as the component imports them, lowered; providers and
    /// instances of module 0 (`a`) and module 3 (`b`), and of module 5
    /// (`c`), which imports `a`'s memory as the preview-1 adapter imports
    /// the program's (its own provider defines its shadow memory only).
    fn component() -> String {
        let pages = cabi::COMPONENT_SHADOW_PAGES;
        let mut parts = Vec::new();
        for (m, tag) in [(0, "a"), (3, "b")] {
            parts.push(guest(m, r#""heapscope:memory" "m0""#));
            parts.push(format!(
                r#"(core module $provider{m} (memory (export "m0") 1) (memory (export "shadow") {pages} {pages}))
  (core instance $p{m} (instantiate $provider{m}))
  (alias core export $p{m} "m0" (core memory $m0_{m}))
  (alias core export $p{m} "shadow" (core memory $shadow{m}))
  (core func $register{m} (canon lower (func $register) (memory $shadow{m})))
  (core func $memory0_{m} (canon lower (func $memory) (memory $m0_{m})))
  (core instance $hooks{m}
    (export "register" (func $register{m}))
    (export "memory:0" (func $memory0_{m}))
    (export "flush" (func $flush))
    (export "alloc" (func $alloc))
    (export "grow" (func $grow)))
  (core instance $g{m} (instantiate $guest{m}
    (with "heapscope" (instance $hooks{m}))
    (with "heapscope:memory" (instance $p{m}))))
  (func (export "run-{tag}") (canon lift (core func $g{m} "run")))
  (func (export "grow-{tag}") (canon lift (core func $g{m} "grow")))
  (func (export "trap-{tag}") (canon lift (core func $g{m} "trap")))
  (func (export "lower-{tag}") (canon lift (core func $g{m} "lower")))"#
            ));
        }
        parts.push(guest(5, r#""env" "memory""#));
        parts.push(format!(
            r#"(core module $provider5 (memory (export "shadow") {pages} {pages}))
  (core instance $p5 (instantiate $provider5))
  (alias core export $p5 "shadow" (core memory $shadow5))
  (core func $register5 (canon lower (func $register) (memory $shadow5)))
  (core func $memory0_5 (canon lower (func $memory) (memory $m0_0)))
  (core instance $hooks5
    (export "register" (func $register5))
    (export "memory:0" (func $memory0_5))
    (export "flush" (func $flush))
    (export "alloc" (func $alloc))
    (export "grow" (func $grow)))
  (core instance $env5 (export "memory" (memory $m0_0)))
  (core instance $g5 (instantiate $guest5
    (with "heapscope" (instance $hooks5))
    (with "heapscope:memory" (instance $p5))
    (with "env" (instance $env5))))
  (func (export "adapt-c") (canon lift (core func $g5 "adapt")))"#
        ));
        format!(
            r#"(component
  (import "{iface}" (instance $hooks
    (export "register" (func (param "module" u32) (param "shadow" (list u8)) (result u32)))
    (export "memory" (func (param "id" u32) (param "index" u32) (param "bytes" (list u8))))
    (export "flush" (func (param "id" u32)))
    (export "alloc" (func (param "id" u32) (param "kind" s32) (param "a" s64) (param "b" s64) (param "c" s64) (param "sp" s32)))
    (export "realloc" (func (param "id" u32) (param "kind" s32) (param "a" s64) (param "b" s64) (param "c" s64) (param "sp" s32)))
    (export "free" (func (param "id" u32) (param "kind" s32) (param "ptr" s64) (param "sp" s32)))
    (export "grow" (func (param "id" u32) (param "kind" s32) (param "delta" s64) (param "result" s64) (param "sp" s32)))))
  (alias export $hooks "register" (func $register))
  (alias export $hooks "memory" (func $memory))
  (alias export $hooks "flush" (func $flush_f))
  (alias export $hooks "alloc" (func $alloc_f))
  (alias export $hooks "grow" (func $grow_f))
  (core func $flush (canon lower (func $flush_f)))
  (core func $alloc (canon lower (func $alloc_f)))
  (core func $grow (canon lower (func $grow_f)))
  {}
)"#,
            parts.join("\n  "),
            iface = cabi::HOOKS_INTERFACE,
        )
    }

    fn sites(prefix: &str) -> SiteTable {
        SiteTable {
            sites: (0..3)
                .map(|i| Site {
                    func_index: i,
                    code_offset: 10 * i,
                    frames: vec![SiteFrame {
                        function: format!("{prefix}{i}"),
                        ..Default::default()
                    }],
                })
                .collect(),
        }
    }

    fn one_page() -> MemoryInfo {
        MemoryInfo {
            initial_pages: 1,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        }
    }

    /// The store and instance of [`component`] with the hooks of a run
    /// planned for modules 0 and 3, one instance each.
    fn instantiate() -> (Store<Host>, wasmtime::component::Instance, Vec<MemoryInfo>) {
        let engine = crate::host::engine(false, false).unwrap();
        let bytes = wat::parse_str(component()).unwrap();
        let component = Component::new(&engine, &bytes).unwrap();
        let mut linker: Linker<Host> = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let plan = plan(vec![
            ModuleLayout {
                module: 0,
                sites: sites("a"),
                memories: vec![one_page()],
                imported: 0,
                instances: 1,
                sp_init: None,
                data_end: 0,
            },
            ModuleLayout {
                module: 3,
                sites: sites("b"),
                memories: vec![one_page()],
                imported: 0,
                instances: 1,
                sp_init: None,
                data_end: 0,
            },
            ModuleLayout {
                module: 5,
                sites: sites("c"),
                memories: vec![one_page()],
                imported: 1,
                instances: 1,
                sp_init: None,
                data_end: 0,
            },
        ]);
        assert_eq!(plan.sites.sites.len(), 9);
        let mut plan = plan;
        assert_eq!(plan.label_site("lowering arguments of keep"), 9);
        // The adapter-like module defines no memory: two run memories.
        assert_eq!(plan.memories.len(), 2);
        assert_eq!(
            plan.instances,
            vec![(0, vec![0]), (3, vec![1]), (5, vec![])]
        );
        let mut host = crate::host::idle_host();
        host.rec = Deferred::new(Recorder::new(plan.sites, None).unwrap());
        host.rec.sync().model.start(&plan.memories);
        host.components = Some(Box::new(plan.heaps));
        let mut store = Store::new(&engine, host);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        (store, instance, plan.memories)
    }

    fn call(
        store: &mut Store<Host>,
        instance: &wasmtime::component::Instance,
        name: &str,
    ) -> wasmtime::Result<()> {
        let f = instance
            .get_typed_func::<(), ()>(&mut *store, name)
            .unwrap();
        let r = f.call(&mut *store, ());
        drain_all(&mut *store);
        r
    }

    /// Live blocks as (address, size, run memory, frames innermost first).
    fn live(store: &mut Store<Host>) -> Vec<(u64, u64, u32, Vec<String>)> {
        let rec = store.data_mut().rec.sync();
        let mut out: Vec<_> = rec
            .model
            .live()
            .map(|(p, b)| {
                (
                    p,
                    b.size,
                    abi::unpack_kind(b.kind).1,
                    rec.stack_functions(b.stack),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_instances_events_reach_the_recorder_in_their_own_memories_with_their_own_sites() {
        let (mut store, instance, _) = instantiate();
        call(&mut store, &instance, "run-a").unwrap();
        // What `run-a` left in its buffer is drained after it returned.
        assert_eq!(
            live(&mut store),
            vec![
                (0x200, 16, 0, v(&["a2", "a0"])),
                (0x300, 8, 0, v(&["a2", "a0"])),
                (0x400, 32, 0, v(&["a1", "a0"])),
            ]
        );
        call(&mut store, &instance, "run-b").unwrap();
        let b = 1u64 << INSTANCE_TAG_SHIFT;
        assert_eq!(
            live(&mut store)[3..],
            [
                (b | 0x200, 16, 1, v(&["b2", "b0"])),
                (b | 0x300, 8, 1, v(&["b2", "b0"])),
                (b | 0x400, 32, 1, v(&["b1", "b0"])),
            ]
        );
        {
            let rec = store.data_mut().rec.sync();
            let m = &rec.model;
            assert_eq!(
                (m.total_blocks, m.total_bytes, m.curr_blocks, m.curr_bytes),
                (8, 160, 6, 112)
            );
            assert_eq!(
                (m.invalid_events, m.invalid_frees, m.unseen_frees),
                (0, 0, 0)
            );
        }
        // A second drain finds nothing new.
        drain_all(&mut store);
        assert_eq!(store.data_mut().rec.sync().model.total_blocks, 8);
        let heaps = store.data().components.as_deref().unwrap();
        assert_eq!(
            heaps.instances(),
            vec![
                InstanceInfo {
                    id: 1,
                    module: 0,
                    slot: Some(0),
                    memories: vec![Some(0)],
                    imported: vec![false],
                },
                InstanceInfo {
                    id: 2,
                    module: 3,
                    slot: Some(1),
                    memories: vec![Some(1)],
                    imported: vec![false],
                },
            ]
        );
        assert!(heaps.notes.is_empty(), "{:?}", heaps.notes);
        assert_eq!(heaps.unrecorded_events, 0);
    }

    #[test]
    fn a_growth_is_its_run_memory_s_and_after_a_trap_the_memory_still_reads() {
        let (mut store, instance, memories) = instantiate();
        call(&mut store, &instance, "run-a").unwrap();
        call(&mut store, &instance, "run-b").unwrap();
        call(&mut store, &instance, "grow-b").unwrap();
        {
            let rec = store.data_mut().rec.sync();
            let pages: Vec<u64> = rec.model.memories.iter().map(|m| m.final_pages).collect();
            assert_eq!(pages, [1, 2]);
        }
        // A block in the page it grew, then a trap.
        let e = call(&mut store, &instance, "trap-b").unwrap_err();
        assert_eq!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::UnreachableCodeReached)
        );
        let b = 1u64 << INSTANCE_TAG_SHIFT;
        assert!(live(&mut store).contains(&(b | 0x1_0500, 40, 1, v(&["b1", "b0"]))));
        // The leak scan per instance, through the handles, after the trap.
        let layout = ScanLayout {
            sp_init: None,
            data_end: 0,
            memories: &memories[..1],
        };
        let found = scan_instances(&mut store, |rec, scan| {
            let s = &scan.snapshot;
            let word = |at: usize| u32::from_le_bytes(s.memory[at..at + 4].try_into().unwrap());
            let seen = (
                scan.id,
                scan.module,
                s.memory.len(),
                word(0x10),
                s.memory.get(0x1_0010..0x1_0014).map(|_| word(0x1_0010)),
                s.globals.clone(),
                (s.sp_now, s.sp_low),
                s.instance.as_ref().map(|i| (i.tags.clone(), i.heap_lo)),
            );
            let scanned =
                classify_snapshot(rec, s, &layout, &GraphNames::default(), &[], None).unwrap();
            let leaks: Vec<(Option<LeakKind>, u64, u64, Vec<String>)> = scanned
                .leaks
                .into_iter()
                .map(|l| (l.kind, l.blocks, l.bytes, l.frames))
                .collect();
            (seen, leaks)
        });
        assert_eq!(found.len(), 2);
        let (a, b_) = (&found[0], &found[1]);
        assert_eq!(
            a.0,
            (
                1,
                0,
                65536,
                0x200,
                None,
                vec![0x400],
                (Some(0x80), Some(0x40)),
                Some((0..1, Some(0x100)))
            )
        );
        assert_eq!(
            b_.0,
            (
                2,
                3,
                131072,
                0x200,
                Some(0xabcd),
                vec![0x400],
                (Some(0x80), Some(0x40)),
                Some((1..2, Some(0x100)))
            )
        );
        let definite = |frames: &[&str], bytes| (Some(LeakKind::Definite), 1, bytes, v(frames));
        let reachable = |frames: &[&str], bytes| (Some(LeakKind::Reachable), 1, bytes, v(frames));
        let mut want_a = vec![
            reachable(&["malloc", "a2", "a0"], 16),
            definite(&["malloc", "a2", "a0"], 8),
            reachable(&["malloc", "a1", "a0"], 32),
        ];
        let mut got_a = a.1.clone();
        got_a.sort();
        want_a.sort();
        assert_eq!(got_a, want_a);
        let mut want_b = vec![
            reachable(&["malloc", "b2", "b0"], 16),
            definite(&["malloc", "b2", "b0"], 8),
            reachable(&["malloc", "b1", "b0"], 32),
            definite(&["malloc", "b1", "b0"], 40),
        ];
        let mut got_b = b_.1.clone();
        got_b.sort();
        want_b.sort();
        assert_eq!(got_b, want_b);
        // The recorder is back in the store, with every exit block.
        let rec = store.data_mut().rec.sync();
        assert_eq!((rec.model.curr_blocks, rec.model.total_blocks), (7, 9));
    }

    /// A module that imports another's memory: its events before that
    /// instance registers are not seen (and said); after, they are that
    /// memory's, and it is scanned with that instance, its globals roots.
    #[test]
    fn an_imported_memory_is_the_defining_instance_s() {
        let (mut store, instance, memories) = instantiate();
        call(&mut store, &instance, "adapt-c").unwrap();
        {
            // Held: the memory it is in is not known yet.
            let heaps = store.data().components.as_deref().unwrap();
            assert_eq!(
                heaps.unrecorded(),
                ["1 heap event of a core module is in a memory it imports from a module heapscope did not see (not instrumented, or it never ran): not recorded"]
            );
        }
        assert_eq!(store.data_mut().rec.sync().model.total_blocks, 0);
        // Recorded once the program reports its memory.
        call(&mut store, &instance, "run-a").unwrap();
        let heaps = store.data().components.as_deref().unwrap();
        assert_eq!(
            heaps.instances(),
            vec![
                InstanceInfo {
                    id: 1,
                    module: 5,
                    slot: Some(2),
                    memories: vec![Some(0)],
                    imported: vec![true],
                },
                InstanceInfo {
                    id: 2,
                    module: 0,
                    slot: Some(0),
                    memories: vec![Some(0)],
                    imported: vec![false],
                },
            ]
        );
        assert_eq!((heaps.unrecorded(), heaps.unrecorded_events), (vec![], 0));
        assert!(live(&mut store).contains(&(0x800, 12, 0, v(&["c2", "c0"]))));
        let layout = ScanLayout {
            sp_init: None,
            data_end: 0,
            memories: &memories[..1],
        };
        let found = scan_instances(&mut store, |rec, scan| {
            let kinds: Vec<(Option<LeakKind>, u64)> = classify_snapshot(
                rec,
                &scan.snapshot,
                &layout,
                &GraphNames::default(),
                &[],
                None,
            )
            .unwrap()
            .leaks
            .into_iter()
            .map(|l| (l.kind, l.bytes))
            .collect();
            (
                scan.id,
                scan.snapshot.globals.clone(),
                scan.global_indices.clone(),
                kinds,
            )
        });
        // Only `a` is scanned, with `c`'s global: 0x800 is reachable.
        assert_eq!(found.len(), 1);
        let (id, globals, indices, mut kinds) = found.into_iter().next().unwrap();
        assert_eq!(
            (id, globals, indices),
            (2, vec![0x400, 0x800], vec![0, u32::MAX])
        );
        kinds.sort();
        assert_eq!(
            kinds,
            [
                (Some(LeakKind::Definite), 8),
                (Some(LeakKind::Reachable), 12),
                (Some(LeakKind::Reachable), 16),
                (Some(LeakKind::Reachable), 32),
            ]
        );
    }

    /// The layouts of a component's instrumented modules: site tables
    /// from the instrumented component in module-id order (providers
    /// carry none), memories and imports from the original modules.
    #[test]
    fn layouts_come_from_the_component_and_the_original_modules() {
        use heapscope_instrument::component::{
            ComponentModule, InstrumentedComponent, ModuleStatus,
        };
        let wasm = wat::parse_str(component()).unwrap();
        // The hand-made component stands for both: its guests are the
        // "originals" (module ids 0, 3 and 5, each instantiated once).
        let mut ranges = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
            if let Ok(wasmparser::Payload::ModuleSection {
                unchecked_range, ..
            }) = payload
            {
                ranges.push(unchecked_range);
            }
        }
        // guest, provider, guest, provider, guest, provider
        assert_eq!(ranges.len(), 6);
        let module = |id: u32, range: std::ops::Range<usize>, instrumented: bool| ComponentModule {
            id,
            name: None,
            path: Vec::new(),
            instances: 1,
            range,
            status: if instrumented {
                ModuleStatus::Instrumented {
                    report: Default::default(),
                }
            } else {
                ModuleStatus::NoMemory
            },
        };
        let component = InstrumentedComponent {
            wasm: wasm.clone(),
            modules: vec![
                module(5, ranges[4].clone(), true),
                module(1, ranges[1].clone(), false),
                module(0, ranges[0].clone(), true),
                module(3, ranges[2].clone(), true),
            ],
        };
        let got: Vec<(u32, String, usize, u32, u32)> = layouts(&wasm, &component)
            .unwrap()
            .into_iter()
            .map(|l| {
                (
                    l.module,
                    l.sites.sites[2].frames[0].function.clone(),
                    l.memories.len(),
                    l.imported,
                    l.instances,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "a2".to_string(), 2, 2, 1),
                (3, "b2".to_string(), 2, 2, 1),
                (5, "c2".to_string(), 2, 2, 1),
            ]
        );
        // One instrumented module more than site tables: said, never
        // guessed.
        let mut more = component.clone();
        more.modules.push(module(9, ranges[0].clone(), true));
        assert_eq!(
            layouts(&wasm, &more).unwrap_err(),
            "core module module[9] is instrumented but the component holds no site table for it"
        );
    }

    /// A `cabi_realloc` with no frame, drained while the host calls an
    /// export, is named after the call; the events a guest could not hand
    /// over are counted and said.
    #[test]
    fn the_host_s_lowering_is_named_and_lost_events_are_said() {
        let (mut store, instance, _) = instantiate();
        fn heaps(s: &mut Store<Host>) -> &mut ComponentHeaps {
            s.data_mut().components.as_deref_mut().unwrap()
        }
        heaps(&mut store).set_lowering(Some(9));
        call(&mut store, &instance, "lower-a").unwrap();
        heaps(&mut store).set_lowering(None);
        call(&mut store, &instance, "lower-b").unwrap();
        let b = 1u64 << INSTANCE_TAG_SHIFT;
        assert_eq!(
            live(&mut store),
            [
                (0x900, 5, 0, v(&["lowering arguments of keep"])),
                (b | 0x900, 5, 1, vec![]),
            ]
        );
        let rec = store.data_mut().rec.sync();
        let kinds: Vec<AllocFn> = rec
            .model
            .live()
            .map(|(_, b)| abi::unpack_kind(b.kind).0)
            .collect();
        assert_eq!(kinds, [AllocFn::CabiRealloc; 2]);
        drop(rec);
        // Each instance's counter read once, however often drained.
        drain_all(&mut store);
        let heaps = heaps(&mut store);
        assert_eq!(heaps.lost_events, 6);
        assert_eq!(
            heaps.unrecorded(),
            ["6 heap events were lost: canonical-ABI allocations and frees (which may call no host function) found a core module's event buffer full"]
        );
    }

    #[test]
    fn the_stack_pointer_is_found_as_the_instrumenter_finds_it() {
        let init = |text: &str| stack_pointer_init(&wat::parse_str(text).unwrap());
        // Named.
        assert_eq!(
            init("(module (global $g (mut i32) (i32.const 7)) (global $__stack_pointer (mut i32) (i32.const 1048576)))"),
            Some(1048576)
        );
        // Unnamed: the first mutable global, when it is a plausible top.
        assert_eq!(
            init("(module (global i32 (i32.const 4)) (global (mut i32) (i32.const 65536)))"),
            Some(65536)
        );
        assert_eq!(init("(module (global (mut i32) (i32.const 12)))"), None);
        // Other globals named, none the stack pointer's: none.
        assert_eq!(
            init("(module (global $heap (mut i32) (i32.const 65536)))"),
            None
        );
    }

    /// The real library component of samples/component/keep (wit-bindgen,
    /// Rust's dlmalloc), instrumented by `instrument_component` and run
    /// with these hooks: `keep("abc")` five times keeps 2 blocks, 67
    /// bytes, a call (its string lowered by the host, named), and
    /// `lose("abcdef")`'s string is definitely lost.
    #[test]
    fn the_keep_sample_s_heap_through_the_hooks() {
        use wasmtime::component::Val;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/build/component/keep.wasm");
        let original = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "sample `{}` is missing ({e}): run `samples/build.sh` (scripts/test.sh does it)",
                path.display()
            )
        });
        let instrumented = heapscope_instrument::component::instrument_component(
            &original,
            &heapscope_instrument::Options::default(),
        )
        .unwrap();
        let mut plan = plan(layouts(&original, &instrumented).unwrap());
        let keep_label = plan.label_site("lowering arguments of keep");
        let lose_label = plan.label_site("lowering arguments of lose");
        let engine = crate::host::engine(false, false).unwrap();
        let component = Component::new(&engine, &instrumented.wasm).unwrap();
        let mut linker: Linker<Host> = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let mut host = crate::host::idle_host();
        host.rec = Deferred::new(Recorder::new(plan.sites, None).unwrap());
        host.rec.sync().model.start(&plan.memories);
        host.components = Some(Box::new(plan.heaps));
        let mut store = Store::new(&engine, host);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let invoke = |store: &mut Store<Host>, name: &str, label: u32, arg: &str| {
            let f = instance.get_func(&mut *store, name).unwrap();
            let mut results = [Val::U32(0)];
            store
                .data_mut()
                .components
                .as_deref_mut()
                .unwrap()
                .set_lowering(Some(label));
            f.call(&mut *store, &[Val::String(arg.into())], &mut results)
                .unwrap();
            drain_all(&mut *store);
            store
                .data_mut()
                .components
                .as_deref_mut()
                .unwrap()
                .set_lowering(None);
            results[0].clone()
        };
        for n in 1..=5u32 {
            assert_eq!(
                invoke(&mut store, "keep", keep_label, "abc"),
                Val::U32(67 * n)
            );
        }
        {
            let rec = store.data_mut().rec.sync();
            let m = &rec.model;
            assert_eq!(
                (m.curr_blocks, m.curr_bytes, m.invalid_events),
                (10, 335, 0)
            );
        }
        invoke(&mut store, "lose", lose_label, "abcdef");
        let heaps = store.data().components.as_deref().unwrap();
        assert_eq!((heaps.unrecorded(), heaps.unrecorded_events), (vec![], 0));
        let mut strings: Vec<(u64, Vec<String>)> = {
            let rec = store.data_mut().rec.sync();
            rec.model
                .live()
                .filter(|(_, b)| b.size != 64)
                .map(|(_, b)| (b.size, rec.stack_functions(b.stack)))
                .collect()
        };
        strings.sort();
        let keep = vec!["lowering arguments of keep".to_string()];
        assert_eq!(
            strings,
            [
                (3, keep.clone()),
                (3, keep.clone()),
                (3, keep.clone()),
                (3, keep.clone()),
                (3, keep),
                (6, vec!["lowering arguments of lose".to_string()]),
            ]
        );
        // The leak scan of its one instance: what `keep` holds is reachable
        // (from the static list), `lose`'s string definitely lost.
        let layout = layouts(&original, &instrumented).unwrap().remove(0);
        let memories = layout.memories.clone();
        let scan = ScanLayout {
            sp_init: layout.sp_init,
            data_end: layout.data_end,
            memories: &memories,
        };
        let found = scan_instances(&mut store, |rec, i| {
            let mut kinds: Vec<(Option<LeakKind>, u64, u64)> =
                classify_snapshot(rec, &i.snapshot, &scan, &GraphNames::default(), &[], None)
                    .unwrap()
                    .leaks
                    .into_iter()
                    .map(|l| (l.kind, l.blocks, l.bytes))
                    .collect();
            kinds.sort();
            (i.module, kinds)
        });
        assert_eq!(
            found,
            [(
                layout.module,
                vec![
                    (Some(LeakKind::Definite), 1, 6),
                    (Some(LeakKind::Reachable), 5, 15),
                    (Some(LeakKind::Reachable), 5, 320),
                ]
            )]
        );
    }

    /// The real C program adapted with the preview-1 command adapter
    /// (samples/component/wordcount.wasm): the adapter imports the
    /// program's memory, so its events and the program's share that
    /// memory's run number; the program's own totals are the oracle's
    /// (its counting allocator's line on stderr), the adapter's are what
    /// it adds.
    #[test]
    fn the_adapted_c_program_s_heap_through_the_hooks() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/build/component/wordcount.wasm");
        let original = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "sample `{}` is missing ({e}): run `samples/build.sh` (scripts/test.sh does it)",
                path.display()
            )
        });
        let instrumented = heapscope_instrument::component::instrument_component(
            &original,
            &heapscope_instrument::Options::default(),
        )
        .unwrap();
        let layouts = layouts(&original, &instrumented).unwrap();
        let shape: Vec<(u32, usize, u32)> = layouts
            .iter()
            .map(|l| (l.module, l.memories.len(), l.imported))
            .collect();
        let plan = plan(layouts);
        let engine = crate::host::engine(false, false).unwrap();
        let component = Component::new(&engine, &instrumented.wasm).unwrap();
        let mut linker: Linker<Host> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        add_to_linker(&mut linker).unwrap();
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
        let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
        let mut host = crate::host::idle_host();
        host.wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .env("HEAPSCOPE_ORACLE", "1")
            .arg("wordcount.wasm")
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        host.rec = Deferred::new(Recorder::new(plan.sites, None).unwrap());
        host.rec.sync().model.start(&plan.memories);
        host.components = Some(Box::new(plan.heaps));
        let mut store = Store::new(&engine, host);
        let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
            &mut store, &component, &linker,
        )
        .unwrap();
        let ran = command.wasi_cli_run().call_run(&mut store);
        drain_all(&mut store);
        assert!(matches!(ran, Ok(Ok(()))), "{ran:?}");
        let err = String::from_utf8_lossy(&stderr.contents()).into_owned();
        // The program (module 0) defines the memory, the adapter (module
        // 1) imports it; the adapter registers first, and its memory is
        // the program's once the program registers.
        assert_eq!(shape, [(0, 1, 0), (1, 1, 1)]);
        let heaps = store.data().components.as_deref().unwrap();
        assert_eq!(
            heaps.instances(),
            [
                InstanceInfo {
                    id: 1,
                    module: 1,
                    slot: Some(1),
                    memories: vec![Some(0)],
                    imported: vec![true],
                },
                InstanceInfo {
                    id: 2,
                    module: 0,
                    slot: Some(0),
                    memories: vec![Some(0)],
                    imported: vec![false],
                },
            ]
        );
        let said = (heaps.unrecorded(), heaps.unrecorded_events);
        let rec = store.data_mut().rec.sync();
        let m = &rec.model;
        let ours = format!(
            "heapscope-oracle: module=wordcount allocs={} bytes={} peak={} live={} live_blocks={} frees={}\n",
            m.total_blocks,
            m.total_bytes,
            m.max_bytes,
            m.curr_bytes,
            m.curr_blocks,
            m.total_blocks - m.curr_blocks
        );
        assert_eq!(ours, err);
        assert_eq!(
            (said, m.invalid_events, m.unseen_frees),
            ((vec![], 0), 0, 0)
        );
    }

    /// Run the sample command component `name` instrumented, with the
    /// oracle on: its stderr, the model's totals as the oracle's line would
    /// give them for the whole run, and what the hooks could not record.
    fn run_sample_command(name: &str) -> (String, String, Vec<String>, u64, Vec<String>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/build/component")
            .join(name);
        let original = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "sample `{}` is missing ({e}): run `samples/build.sh` (scripts/test.sh does it)",
                path.display()
            )
        });
        let instrumented = heapscope_instrument::component::instrument_component(
            &original,
            &heapscope_instrument::Options::default(),
        )
        .unwrap();
        let plan = plan(layouts(&original, &instrumented).unwrap());
        let engine = crate::host::engine(false, false).unwrap();
        let component = Component::new(&engine, &instrumented.wasm).unwrap();
        let mut linker: Linker<Host> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        add_to_linker(&mut linker).unwrap();
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
        let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
        let mut host = crate::host::idle_host();
        host.wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .env("HEAPSCOPE_ORACLE", "1")
            .arg(name)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        host.rec = Deferred::new(Recorder::new(plan.sites, None).unwrap());
        host.rec.sync().model.start(&plan.memories);
        host.components = Some(Box::new(plan.heaps));
        let mut store = Store::new(&engine, host);
        let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
            &mut store, &component, &linker,
        )
        .unwrap();
        let ran = command.wasi_cli_run().call_run(&mut store);
        drain_all(&mut store);
        assert!(matches!(ran, Ok(Ok(()))), "{ran:?}");
        let heaps = store.data().components.as_deref().unwrap();
        let said = heaps.unrecorded();
        let rec = store.data_mut().rec.sync();
        let m = &rec.model;
        let totals = format!(
            "allocs={} bytes={} peak={} live={} live_blocks={} frees={}",
            m.total_blocks,
            m.total_bytes,
            m.max_bytes,
            m.curr_bytes,
            m.curr_blocks,
            m.total_blocks - m.curr_blocks
        );
        let invalid = m.invalid_events + m.unseen_frees;
        // Each run memory's own (the model keeps them with more than one).
        let accounts = m
            .accounts()
            .iter()
            .map(|a| {
                format!(
                    "allocs={} bytes={} peak={} live={} live_blocks={} frees={}",
                    a.total_blocks,
                    a.total_bytes,
                    a.max_bytes,
                    a.curr_bytes,
                    a.curr_blocks,
                    a.total_blocks - a.curr_blocks
                )
            })
            .collect();
        drop(rec);
        (
            String::from_utf8_lossy(&stderr.contents()).into_owned(),
            totals,
            said,
            invalid,
            accounts,
        )
    }

    /// The Rust wasm32-wasip2 command using serde_json
    /// (samples/component/json.wasm): one program module with an allocator
    /// (and wit-component's shim and fixup, no memory).
    #[test]
    fn the_rust_wasip2_command_s_heap_through_the_hooks() {
        let (err, totals, said, invalid, _) = run_sample_command("json.wasm");
        assert_eq!(
            err,
            format!("heapscope-oracle: module=json-command {totals}\n")
        );
        assert_eq!(
            totals,
            "allocs=2900 bytes=169364 peak=73931 live=10183 live_blocks=16 frees=2884"
        );
        assert_eq!((said, invalid), (vec![], 0));
    }

    /// Two components composed (samples/component/composed.wasm: the app
    /// with the keep library plugged in), each with its allocator and its
    /// memory.
    #[test]
    fn the_composed_components_heaps_through_the_hooks() {
        let (err, totals, said, invalid, accounts) = run_sample_command("composed.wasm");
        // Each module's counting allocator's line, and each run memory's.
        let oracle: Vec<(&str, &str)> = err
            .lines()
            .filter_map(|l| l.strip_prefix("heapscope-oracle: module=")?.split_once(' '))
            .collect();
        assert_eq!(
            oracle,
            [
                (
                    "keep",
                    "allocs=200 bytes=7200 peak=7200 live=7200 live_blocks=200 frees=0"
                ),
                (
                    "app",
                    "allocs=110 bytes=2240 peak=1207 live=183 live_blocks=6 frees=104"
                ),
            ]
        );
        // Memory 0 is the app's, memory 1 the library's (their modules'
        // depth-first order in the composition).
        assert_eq!(accounts, [oracle[1].1, oracle[0].1]);
        // The whole run: the sums, and the peak of the two together.
        assert_eq!(
            totals,
            "allocs=310 bytes=9440 peak=7383 live=7383 live_blocks=206 frees=104"
        );
        assert_eq!((said, invalid), (vec![], 0));
    }
}
