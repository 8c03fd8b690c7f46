//! Frees inlined where no hook can be, found in DWARF and hooked in place.
//!
//! Some Rust allocators (lol_alloc, buddy_system_allocator) have a
//! `dealloc` small enough that rustc inlines it, through the
//! `__rust_dealloc` shim, into the code that frees: no function is left to
//! wrap. DWARF still records each inlined call (`DW_TAG_inlined_subroutine`)
//! with the code it became and, in a build with full debug info, where its
//! `ptr` parameter is (`DW_OP_WASM_location 0 N`: local N). A hook call
//! `local.get N; call <free hook>` put before the first instruction of that
//! code reports the free before the allocator runs, as a wrapper would.
//!
//! [`scan`] reads the DWARF; [`Scan::resolve`] maps what it found to
//! functions and locals while walrus parses; [`hook`] inserts the calls
//! where it is safe to.

use crate::discover::demangle;
use crate::plan::Reach;
use crate::symbols::Layout;
use gimli::{AttributeValue, EndianSlice, LittleEndian};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::ops::Range;
use walrus::ir::{self, Instr, InstrLocId, InstrSeqId};
use walrus::{FunctionId, IndicesToIds, LocalFunction, LocalId, Module};

type Reader<'a> = EndianSlice<'a, LittleEndian>;

/// One inlined free in the module's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InlinedFree {
    /// The inlined function (demangled): `__rust_dealloc` or an allocator's
    /// `<A as GlobalAlloc>::dealloc`.
    pub name: String,
    /// The code it became, as offsets into the code section's payload.
    pub ranges: Vec<Range<u64>>,
    /// Where it is entered: `DW_AT_entry_pc`, else its lowest address.
    pub entry: u64,
    /// The local that holds its `ptr` at `entry`, when DWARF says so.
    pub ptr_local: Option<u32>,
    /// Whether DWARF lists any parameter of it: without full debug info
    /// it lists none.
    pub has_params: bool,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Every inlined free, in DWARF order.
    pub frees: Vec<InlinedFree>,
}

/// One inlined free mapped onto the parsed module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    /// The function whose code holds it.
    pub func: FunctionId,
    /// The local holding its pointer.
    pub ptr: Option<LocalId>,
}

/// Whether `name` (demangled) is a free whose inlined copies are hooked.
fn is_free(name: &str) -> bool {
    name.ends_with("__rust_dealloc") || name.ends_with("GlobalAlloc>::dealloc")
}

/// The inlined frees the DWARF of `layout` records; empty without DWARF,
/// and when the DWARF does not parse (the rest of instrumenting does not
/// need it).
pub(crate) fn scan(layout: &Layout<'_>) -> Scan {
    if !may_have(layout) {
        return Scan::default();
    }
    let dwarf = match gimli::Dwarf::load(|id| -> Result<Reader<'_>, gimli::Error> {
        Ok(EndianSlice::new(
            layout.custom(id.name()).unwrap_or(&[]),
            LittleEndian,
        ))
    }) {
        Ok(d) => d,
        Err(_) => return Scan::default(),
    };
    let mut headers = Vec::new();
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        headers.push(header);
    }
    // Units are independent: read on every core, kept in DWARF order. Each
    // thread keeps the units an abstract origin in another unit (LTO) led
    // it to.
    let parts: Vec<Vec<InlinedFree>> = headers
        .par_iter()
        .map_init(
            || Others::new(&dwarf, &headers),
            |others, header| {
                let mut part = Scan::default();
                if let Ok(unit) = dwarf.unit(*header) {
                    // A unit that fails part-way keeps what it gave.
                    let _ = scan_unit(&dwarf, &unit, others, &mut part);
                }
                part.frees
            },
        )
        .collect();
    Scan {
        frees: parts.into_iter().flatten().collect(),
    }
}

/// The units of the DWARF other than the one being read, parsed when a
/// reference leads into them, and whether each abstract origin seen is a
/// free, by its offset in `.debug_info`.
struct Others<'d, 'a> {
    dwarf: &'d gimli::Dwarf<Reader<'a>>,
    headers: &'d [gimli::UnitHeader<Reader<'a>>],
    units: FxHashMap<usize, Option<gimli::Unit<Reader<'a>>>>,
    is_free: FxHashMap<usize, bool>,
}

impl<'d, 'a> Others<'d, 'a> {
    fn new(
        dwarf: &'d gimli::Dwarf<Reader<'a>>,
        headers: &'d [gimli::UnitHeader<Reader<'a>>],
    ) -> Self {
        Others {
            dwarf,
            headers,
            units: FxHashMap::default(),
            is_free: FxHashMap::default(),
        }
    }

    /// The unit holding `.debug_info` offset `at`, and `at` within it.
    fn unit_of(&mut self, at: usize) -> Option<(&gimli::Unit<Reader<'a>>, gimli::UnitOffset)> {
        let start = |h: &gimli::UnitHeader<Reader<'a>>| h.offset().0;
        let i = self
            .headers
            .partition_point(|h| start(h) <= at)
            .checked_sub(1)?;
        let header = self.headers[i];
        let offset = gimli::DebugInfoOffset(at).to_unit_offset(&header)?;
        let dwarf = self.dwarf;
        let unit = self
            .units
            .entry(start(&header))
            .or_insert_with(|| dwarf.unit(header).ok())
            .as_ref()?;
        Some((unit, offset))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn scan_unit(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    others: &mut Others<'_, '_>,
    out: &mut Scan,
) -> gimli::Result<()> {
    let mut cursor = unit.entries();
    // The inlined free being read (its depth), while its children are.
    let mut open: Option<(isize, InlinedFree)> = None;
    while let Some(entry) = cursor.next_dfs()? {
        let depth = entry.depth();
        if let Some((d, free)) = &mut open {
            if depth > *d {
                if depth == *d + 1 && entry.tag() == gimli::DW_TAG_formal_parameter {
                    free.has_params = true;
                    if free.ptr_local.is_none()
                        && param_name(dwarf, unit, entry, others).as_deref() == Some("ptr")
                    {
                        free.ptr_local = wasm_local_at(dwarf, unit, entry, free.entry);
                    }
                }
                continue;
            }
            out.frees.push(open.take().expect("checked").1);
        }
        if entry.tag() != gimli::DW_TAG_inlined_subroutine {
            continue;
        }
        let Some(origin) = entry.attr_value(gimli::DW_AT_abstract_origin) else {
            continue;
        };
        let Some(name) = origin_free_name(dwarf, unit, origin, others) else {
            continue;
        };
        let mut ranges = Vec::new();
        let mut iter = dwarf.die_ranges(unit, entry)?;
        while let Some(r) = iter.next()? {
            if r.begin < r.end && r.begin > 0 {
                ranges.push(r.begin..r.end);
            }
        }
        let Some(lowest) = ranges.iter().map(|r| r.start).min() else {
            continue;
        };
        let entry_pc = match entry.attr_value(gimli::DW_AT_entry_pc) {
            Some(AttributeValue::Addr(a)) => Some(a),
            Some(AttributeValue::Udata(off)) => Some(lowest.saturating_add(off)),
            _ => None,
        };
        open = Some((
            depth,
            InlinedFree {
                name,
                ranges,
                entry: entry_pc.unwrap_or(lowest),
                ptr_local: None,
                has_params: false,
            },
        ));
    }
    if let Some((_, free)) = open {
        out.frees.push(free);
    }
    Ok(())
}

/// The demangled name of the function an inlined call's `origin` refers
/// to, when it is a free; the origin may be in another unit (LTO).
fn origin_free_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    origin: AttributeValue<Reader<'_>>,
    others: &mut Others<'_, '_>,
) -> Option<String> {
    let key = match origin {
        AttributeValue::UnitRef(o) => o.to_debug_info_offset(&unit.header)?.0,
        AttributeValue::DebugInfoRef(o) => o.0,
        _ => return None,
    };
    if others.is_free.get(&key) == Some(&false) {
        return None;
    }
    let name = match origin {
        AttributeValue::UnitRef(o) => subprogram_name(dwarf, unit, o, 0),
        _ => {
            let (other, o) = others.unit_of(key)?;
            subprogram_name(dwarf, other, o, 0)
        }
    };
    let free = name.as_deref().is_some_and(is_free);
    others.is_free.insert(key, free);
    name.filter(|n| is_free(n))
}

/// A subprogram's demangled name: its linkage name, else its name, looked
/// up through `DW_AT_specification` and `DW_AT_abstract_origin`.
fn subprogram_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    offset: gimli::UnitOffset,
    hops: u32,
) -> Option<String> {
    let die = unit.entry(offset).ok()?;
    for at in [gimli::DW_AT_linkage_name, gimli::DW_AT_MIPS_linkage_name] {
        if let Some(v) = die.attr_value(at) {
            let s = dwarf.attr_string(unit, v).ok()?;
            return Some(demangle(&s.to_string_lossy()));
        }
    }
    if hops < 4 {
        for at in [gimli::DW_AT_specification, gimli::DW_AT_abstract_origin] {
            if let Some(AttributeValue::UnitRef(next)) = die.attr_value(at) {
                return subprogram_name(dwarf, unit, next, hops + 1);
            }
        }
    }
    let v = die.attr_value(gimli::DW_AT_name)?;
    let s = dwarf.attr_string(unit, v).ok()?;
    Some(s.to_string_lossy().into_owned())
}

/// A parameter's name, its own or its abstract origin's (which may be in
/// another unit).
fn param_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    entry: &gimli::DebuggingInformationEntry<Reader<'_>>,
    others: &mut Others<'_, '_>,
) -> Option<String> {
    if let Some(v) = entry.attr_value(gimli::DW_AT_name) {
        let s = dwarf.attr_string(unit, v).ok()?;
        return Some(s.to_string_lossy().into_owned());
    }
    let (unit, o) = match entry.attr_value(gimli::DW_AT_abstract_origin)? {
        AttributeValue::UnitRef(o) => (unit, o),
        AttributeValue::DebugInfoRef(o) => others.unit_of(o.0)?,
        _ => return None,
    };
    let v = unit.entry(o).ok()?.attr_value(gimli::DW_AT_name)?;
    let s = dwarf.attr_string(unit, v).ok()?;
    Some(s.to_string_lossy().into_owned())
}

/// The wasm local a parameter is in at code offset `at`: its location (or
/// the entry of its location list covering `at`) must be
/// `DW_OP_WASM_location 0 N`, possibly followed by `DW_OP_stack_value`.
fn wasm_local_at(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    entry: &gimli::DebuggingInformationEntry<Reader<'_>>,
    at: u64,
) -> Option<u32> {
    let value = entry.attr_value(gimli::DW_AT_location)?;
    let expr = match value {
        AttributeValue::Exprloc(e) => e,
        other => {
            let mut list = dwarf.attr_locations(unit, other).ok()??;
            loop {
                let e = list.next().ok()??;
                if e.range.begin <= at && at < e.range.end {
                    break e.data;
                }
            }
        }
    };
    let mut ops = expr.operations(unit.encoding());
    let Ok(Some(gimli::Operation::WasmLocal { index })) = ops.next() else {
        return None;
    };
    match ops.next() {
        Ok(None) | Ok(Some(gimli::Operation::StackValue)) => Some(index),
        _ => None,
    }
}

/// Each function's locals by index (parameters first), kept from walrus'
/// parse for the functions DWARF may name.
pub(crate) type Locals = FxHashMap<FunctionId, Vec<LocalId>>;

/// Whether the DWARF of `layout` may record an inlined free: it has
/// `.debug_info` and names a deallocator somewhere. Cheap; [`scan`] reads
/// it all.
pub(crate) fn may_have(layout: &Layout<'_>) -> bool {
    let Some(info) = layout.custom(".debug_info") else {
        return false;
    };
    let strings = layout.custom(".debug_str").unwrap_or(&[]);
    contains(strings, b"dealloc") || contains(info, b"dealloc")
}

/// The locals of every local function, by index, as walrus numbered them
/// while parsing.
pub(crate) fn locals(module: &Module, indices: &IndicesToIds) -> Locals {
    module
        .funcs
        .iter_local()
        .map(|(id, _)| {
            let mut v = Vec::new();
            while let Ok(l) = indices.get_local(id, v.len() as u32) {
                v.push(l);
            }
            (id, v)
        })
        .collect()
}

impl Scan {
    /// Map each free to the function holding its entry and the local
    /// holding its pointer. `None` where there is no such function (code
    /// the linker removed).
    pub(crate) fn resolve(&self, module: &Module, locals: &Locals) -> Vec<Option<Resolved>> {
        if self.frees.is_empty() {
            return Vec::new();
        }
        let mut funcs: Vec<(Range<usize>, FunctionId)> = module
            .funcs
            .iter_local()
            .filter_map(|(id, f)| f.original_range.clone().map(|r| (r, id)))
            .collect();
        funcs.sort_by_key(|(r, _)| r.start);
        self.frees
            .iter()
            .map(|free| {
                let at = usize::try_from(free.entry).ok()?;
                let i = funcs
                    .partition_point(|(r, _)| r.start <= at)
                    .checked_sub(1)?;
                let (range, func) = &funcs[i];
                if at >= range.end {
                    return None;
                }
                let ptr = free.ptr_local.and_then(|n| {
                    locals
                        .get(func)
                        .and_then(|v| v.get(usize::try_from(n).ok()?))
                        .copied()
                });
                Some(Resolved { func: *func, ptr })
            })
            .collect()
    }
}

/// Why an inlined free is not hooked: DWARF lists no parameter of it.
pub(crate) const UNHOOKABLE_NO_PARAMS: &str =
    "DWARF lists no parameters for them: the module has no full debug info";
/// Why an inlined free is not hooked: DWARF has its pointer optimized out.
pub(crate) const UNHOOKABLE_OPTIMIZED_OUT: &str =
    "DWARF says their pointer is optimized out where they start";

/// How [`hook`] went.
#[derive(Debug, Default)]
pub(crate) struct Hooked {
    /// Hook calls inserted, per function holding them.
    pub sites: Vec<(FunctionId, usize)>,
    /// Inlined frees left alone because their code calls a hooked function
    /// (its wrapper reports the free).
    pub wrapped: usize,
    /// Inlined frees that could not be hooked, and why (one reason each).
    pub unhookable: Vec<&'static str>,
}

/// What [`hook`] calls and what it leaves to the wrappers.
pub(crate) struct HookWith<'a> {
    /// The function to call with the pointer (a free, wrapped like any).
    pub func: FunctionId,
    /// The module's pointer type.
    pub ptr_ty: walrus::ValType,
    /// The allocator functions that are wrapped.
    pub wrapped: &'a FxHashSet<FunctionId>,
    /// What can reach one of them.
    pub reach: &'a Reach,
}

/// Put `local.get ptr; call with.func` before the entry of every inlined
/// free in `scan` that is safe to hook: its entry instruction is found,
/// DWARF says which local (of the pointer type) holds the pointer there,
/// the entry is not inside a loop of the inlined code itself (it would
/// report once per iteration), its code calls nothing that can reach a
/// wrapped allocator function (the wrapper would report the free too), and
/// the function holding it is not itself wrapped.
pub(crate) fn hook(
    module: &mut Module,
    scan: &Scan,
    resolved: &[Option<Resolved>],
    code_start: usize,
    with: &HookWith<'_>,
) -> Hooked {
    let mut out = Hooked::default();
    let mut done: FxHashSet<(FunctionId, u64)> = FxHashSet::default();
    let mut per_func: FxHashMap<FunctionId, usize> = FxHashMap::default();
    // A free DWARF lists no parameter of, in a module where it lists some
    // for others, had every parameter optimized out: the module has full
    // debug info.
    let full_debug_info = scan.frees.iter().any(|f| f.has_params);
    for (free, res) in scan.frees.iter().zip(resolved) {
        // Code in no function: the linker removed it (DWARF keeps the
        // entries of dead functions, at addresses outside the code).
        let Some(res) = res else {
            continue;
        };
        if with.wrapped.contains(&res.func) {
            continue;
        }
        if !done.insert((res.func, free.entry)) {
            continue;
        }
        if res
            .ptr
            .is_some_and(|l| module.locals.get(l).ty() != with.ptr_ty)
        {
            out.unhookable
                .push("DWARF puts their pointer in a local of another type");
            continue;
        }
        let walrus::FunctionKind::Local(local) = &mut module.funcs.get_mut(res.func).kind else {
            continue;
        };
        let to_loc = |offset: u64| (code_start as u64).saturating_add(offset);
        let in_ranges = |loc: InstrLocId| {
            !loc.is_default()
                && free.ranges.iter().any(|r| {
                    let l = loc.data() as u64;
                    to_loc(r.start) <= l && l < to_loc(r.end)
                })
        };
        let walk = walk(local, to_loc(free.entry), &in_ranges, with.reach);
        if walk.calls_wrapped {
            out.wrapped += 1;
            continue;
        }
        let Some(ptr) = res.ptr else {
            out.unhookable.push(if free.has_params || full_debug_info {
                UNHOOKABLE_OPTIMIZED_OUT
            } else {
                UNHOOKABLE_NO_PARAMS
            });
            continue;
        };
        let Some((seq, index)) = walk.entry else {
            out.unhookable
                .push("no instruction starts where DWARF says they start");
            continue;
        };
        if walk.entry_in_own_loop {
            out.unhookable
                .push("they start inside a loop of their own code");
            continue;
        }
        let loc = local.block(seq).instrs[index].1;
        local.block_mut(seq).instrs.splice(
            index..index,
            [
                (Instr::LocalGet(ir::LocalGet { local: ptr }), loc),
                (Instr::Call(ir::Call { func: with.func }), loc),
            ],
        );
        *per_func.entry(res.func).or_default() += 1;
    }
    let mut sites: Vec<(FunctionId, usize)> = per_func.into_iter().collect();
    sites.sort_by_key(|(f, _)| f.index());
    out.sites = sites;
    out
}

/// What [`walk`] found in one function.
struct Walk {
    /// The sequence and index of the instruction at the entry.
    entry: Option<(InstrSeqId, usize)>,
    /// Whether a `loop` of the inlined code encloses the entry.
    entry_in_own_loop: bool,
    /// Whether the inlined code calls what can reach a wrapped function.
    calls_wrapped: bool,
}

/// Walk every instruction of `f`: find the one at original position
/// `entry`, whether a loop inside the inlined code (`in_ranges`) encloses
/// it, and whether the inlined code calls what can reach a wrapped
/// function.
fn walk(
    f: &LocalFunction,
    entry: u64,
    in_ranges: &dyn Fn(InstrLocId) -> bool,
    reach: &Reach,
) -> Walk {
    let mut w = Walk {
        entry: None,
        entry_in_own_loop: false,
        calls_wrapped: false,
    };
    // (sequence, whether an enclosing loop starts inside the inlined code)
    let mut stack = vec![(f.entry_block(), false)];
    while let Some((id, in_own_loop)) = stack.pop() {
        for (i, (instr, loc)) in f.block(id).instrs.iter().enumerate() {
            if !loc.is_default() && loc.data() as u64 == entry && w.entry.is_none() {
                w.entry = Some((id, i));
                w.entry_in_own_loop = in_own_loop;
            }
            let inside = in_ranges(*loc);
            match instr {
                Instr::Block(ir::Block { seq }) => stack.push((*seq, in_own_loop)),
                Instr::Loop(ir::Loop { seq }) => stack.push((*seq, in_own_loop || inside)),
                Instr::IfElse(ir::IfElse {
                    consequent,
                    alternative,
                }) => {
                    stack.push((*consequent, in_own_loop));
                    stack.push((*alternative, in_own_loop));
                }
                Instr::Try(ir::Try { seq, catches }) => {
                    stack.push((*seq, in_own_loop));
                    for c in catches {
                        match c {
                            ir::LegacyCatch::Catch { handler, .. }
                            | ir::LegacyCatch::CatchAll { handler } => {
                                stack.push((*handler, in_own_loop))
                            }
                            ir::LegacyCatch::Delegate { .. } => {}
                        }
                    }
                }
                Instr::TryTable(ir::TryTable { seq, .. }) => stack.push((*seq, in_own_loop)),
                Instr::Call(ir::Call { func }) | Instr::ReturnCall(ir::ReturnCall { func })
                    if inside && reach.funcs.contains(func) =>
                {
                    w.calls_wrapped = true
                }
                Instr::CallIndirect(ir::CallIndirect { ty, .. })
                | Instr::ReturnCallIndirect(ir::ReturnCallIndirect { ty, .. })
                | Instr::CallRef(ir::CallRef { ty })
                | Instr::ReturnCallRef(ir::ReturnCallRef { ty })
                    if inside && reach.types.contains(ty) =>
                {
                    w.calls_wrapped = true
                }
                _ => {}
            }
        }
    }
    w
}
