//! Named roots: the static variables of a module's memory 0, read from its
//! DWARF (`DW_TAG_variable` entries at a fixed address: C globals, C
//! function `static`s, Rust `static`s and `thread_local!`s), each with its
//! type, size and declaration; and the data segments' names (the name
//! section's data names that wasm-ld writes: `.rodata`, `.data`) for the
//! static data no variable covers. The exit scan's heap graph splits its
//! static-data root into these.
//!
//! The DWARF is the original module's own (`.debug_info`), or the copy an
//! instrumented module carries (under
//! [`heapscope_trace::abi::DWARF_SECTION_PREFIX`]). Read from untrusted
//! bytes: malformed DWARF ends the walk of its unit (the variables read so
//! far stay), nothing panics, and the work is bounded by the sections' size
//! and [`MAX_VARIABLES`].

use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset};
use heapscope_instrument::symbols::Layout;
use heapscope_trace::graph::{RootInfo, RootKind};
use std::collections::HashMap;

type R<'a> = EndianSlice<'a, LittleEndian>;

/// At most this many variables are kept from one module.
pub(crate) const MAX_VARIABLES: usize = 1_000_000;
/// Type references followed for one type's name and size.
const MAX_TYPE_DEPTH: usize = 24;
/// DIE tree depth beyond which a unit is not walked further (malformed).
const MAX_DIE_DEPTH: usize = 4096;
/// A rendered type name longer than this is cut (with `…`).
const MAX_TYPE_NAME: usize = 600;

/// The named roots of `wasm`'s memory 0, sorted by address, none
/// overlapping another, none empty: its static variables from DWARF
/// ([`RootKind::Variable`]) and the parts of its named data segments no
/// variable covers ([`RootKind::Data`], named by segment). Static data in
/// neither (a `.bss` wasm-ld did not emit as a segment, a module without
/// names) is left out: it stays the scan's anonymous "static data".
/// Empty when the module has neither DWARF variables nor segment names.
pub(crate) fn static_variables(wasm: &[u8]) -> Vec<RootInfo> {
    let layout = Layout::of(wasm);
    let mut vars = dwarf_variables(&layout, "");
    if vars.is_empty() {
        vars = dwarf_variables(&layout, heapscope_trace::abi::DWARF_SECTION_PREFIX);
    }
    let vars = non_overlapping(vars);
    let segments = named_segments(wasm);
    merge(vars, &segments)
}

/// [`static_variables`], kept beside the compiled module's cache entry
/// `cached` ([`crate::cache::Beside::Variables`]) when the run has one:
/// the first run of a module walks its DWARF and keeps what it found, a
/// later run reads that back instead. A kept list that is damaged, made
/// for another module or does not keep [`static_variables`]'s contract
/// (sorted, not overlapping, not empty, variables and data only) is not
/// used: the run walks the DWARF again and keeps its list.
pub(crate) fn static_variables_cached(
    wasm: &[u8],
    cached: Option<&(crate::cache::Cache, crate::cache::EntryKey)>,
) -> Vec<RootInfo> {
    use crate::cache::Beside;
    let started = std::time::Instant::now();
    if let Some((cache, key)) = cached {
        if let Some(body) = cache.load_beside(key, Beside::Variables) {
            match decode_roots(&body) {
                Some(roots) => {
                    tracing::info!(
                        "{} static variables and data segments from the cache in {} ms",
                        roots.len(),
                        started.elapsed().as_millis()
                    );
                    return roots;
                }
                None => tracing::info!(
                    "the cached static variables do not read as a list of variables; reading the DWARF"
                ),
            }
        }
    }
    let roots = static_variables(wasm);
    tracing::info!(
        "{} static variables and data segments read from the module in {} ms",
        roots.len(),
        started.elapsed().as_millis()
    );
    if let Some((cache, key)) = cached {
        cache.store_beside(key, Beside::Variables, &encode_roots(&roots));
    }
    roots
}

/// Named roots as the cache keeps them: for each, its kind (0 a variable,
/// 1 data), name, type and file (a flag 0 or 1, then the string), line
/// (u32 LE), address and size (u64 LE); a string is its length (u32 LE)
/// and UTF-8 bytes.
fn encode_roots(roots: &[RootInfo]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn optional(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => {
                out.push(1);
                string(out, s);
            }
            None => out.push(0),
        }
    }
    let mut out = Vec::new();
    for r in roots {
        out.push(match r.kind {
            RootKind::Variable => 0,
            _ => 1,
        });
        string(&mut out, &r.name);
        optional(&mut out, &r.ty);
        optional(&mut out, &r.file);
        out.extend_from_slice(&r.line.to_le_bytes());
        out.extend_from_slice(&r.addr.to_le_bytes());
        out.extend_from_slice(&r.size.to_le_bytes());
    }
    out
}

/// [`encode_roots`]'s roots; `None` when the bytes are not such a list, or
/// the list breaks [`static_variables`]'s contract: a kind other than a
/// variable or data, an empty root, one that ends past 2^64, one that
/// starts before the previous one ends, more than [`MAX_VARIABLES`] plus
/// as many segment pieces.
fn decode_roots(mut b: &[u8]) -> Option<Vec<RootInfo>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    fn u32_(b: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?))
    }
    fn u64_(b: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(b, 8)?.try_into().ok()?))
    }
    fn string(b: &mut &[u8]) -> Option<String> {
        let n = u32_(b)? as usize;
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    fn optional(b: &mut &[u8]) -> Option<Option<String>> {
        match take(b, 1)?[0] {
            0 => Some(None),
            1 => Some(Some(string(b)?)),
            _ => None,
        }
    }
    let mut out: Vec<RootInfo> = Vec::new();
    let mut end = 0u64;
    while !b.is_empty() {
        let kind = match take(&mut b, 1)?[0] {
            0 => RootKind::Variable,
            1 => RootKind::Data,
            _ => return None,
        };
        let name = string(&mut b)?;
        let ty = optional(&mut b)?;
        let file = optional(&mut b)?;
        let line = u32_(&mut b)?;
        let addr = u64_(&mut b)?;
        let size = u64_(&mut b)?;
        if size == 0 || (!out.is_empty() && addr < end) || out.len() >= 2 * MAX_VARIABLES {
            return None;
        }
        end = addr.checked_add(size)?;
        out.push(RootInfo {
            kind,
            name,
            ty,
            file,
            line,
            addr,
            size,
        });
    }
    Some(out)
}

/// An active data segment of memory 0 that the name section names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    name: String,
    addr: u64,
    size: u64,
}

/// Memory 0's active data segments at constant offsets that the name
/// section names (subsection 9, which wasm-ld writes), in address order.
fn named_segments(wasm: &[u8]) -> Vec<Segment> {
    use wasmparser::{Name, Payload};
    let mut ranges: Vec<(u32, u64, u64)> = Vec::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::DataSection(s)) => {
                for (i, d) in s.into_iter().enumerate() {
                    let Ok(d) = d else { break };
                    if let wasmparser::DataKind::Active {
                        memory_index: 0,
                        offset_expr,
                    } = d.kind
                    {
                        let mut ops = offset_expr.get_operators_reader();
                        let offset = match ops.read() {
                            Ok(wasmparser::Operator::I32Const { value }) => value as u32 as u64,
                            Ok(wasmparser::Operator::I64Const { value }) => value as u64,
                            _ => continue,
                        };
                        if !d.data.is_empty() {
                            ranges.push((i as u32, offset, d.data.len() as u64));
                        }
                    }
                }
            }
            Ok(Payload::CustomSection(c)) if c.name() == "name" => {
                let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for n in reader.into_iter() {
                    let Ok(n) = n else { break };
                    if let Name::Data(map) = n {
                        for naming in map.into_iter() {
                            let Ok(naming) = naming else { break };
                            names.insert(naming.index, naming.name.to_string());
                        }
                    }
                }
            }
            Err(_) => break,
            _ => {}
        }
    }
    let mut out: Vec<Segment> = ranges
        .into_iter()
        .filter_map(|(i, addr, size)| {
            let name = names.get(&i)?.clone();
            addr.checked_add(size)?;
            Some(Segment { name, addr, size })
        })
        .collect();
    out.sort_by_key(|s| (s.addr, s.size));
    out
}

/// `vars` (sorted, non-overlapping) and the pieces of `segments` they
/// leave uncovered, in address order. Pieces too small to hold an aligned
/// 4-byte word (so no pointer) are left out.
fn merge(vars: Vec<RootInfo>, segments: &[Segment]) -> Vec<RootInfo> {
    let mut out = Vec::with_capacity(vars.len() + segments.len());
    let mut pieces: Vec<RootInfo> = Vec::new();
    let mut v = 0;
    for s in segments {
        let end = s.addr + s.size;
        let mut at = s.addr;
        // Variables are sorted: skip those wholly before the segment.
        while v < vars.len() && vars[v].addr + vars[v].size <= s.addr {
            v += 1;
        }
        let mut w = v;
        while at < end {
            let next = vars[w..]
                .iter()
                .find(|x| x.addr + x.size > at)
                .map(|x| (x.addr, x.addr + x.size));
            let (gap_end, resume) = match next {
                Some((a, e)) if a < end => (a.max(at), e),
                _ => (end, end),
            };
            if gap_end > at && holds_a_word(at, gap_end) {
                pieces.push(RootInfo {
                    kind: RootKind::Data,
                    name: s.name.clone(),
                    ty: None,
                    file: None,
                    line: 0,
                    addr: at,
                    size: gap_end - at,
                });
            }
            at = resume.max(gap_end);
            while w < vars.len() && vars[w].addr + vars[w].size <= at {
                w += 1;
            }
        }
    }
    out.extend(vars);
    out.extend(pieces);
    out.sort_by_key(|a| (a.addr, a.size));
    non_overlapping(out)
}

/// Whether `[start, end)` contains an aligned 4-byte word.
fn holds_a_word(start: u64, end: u64) -> bool {
    start
        .checked_add(3)
        .map(|s| s & !3)
        .and_then(|s| s.checked_add(4))
        .is_some_and(|e| e <= end)
}

/// Sorted by address (the larger first at one address), duplicates and
/// roots overlapping an earlier one dropped, empty ones dropped.
fn non_overlapping(mut v: Vec<RootInfo>) -> Vec<RootInfo> {
    v.retain(|r| r.size > 0);
    v.sort_by(|a, b| {
        a.addr
            .cmp(&b.addr)
            .then(b.size.cmp(&a.size))
            .then((a.kind as u8).cmp(&(b.kind as u8)))
            .then(a.name.cmp(&b.name))
    });
    let mut out: Vec<RootInfo> = Vec::with_capacity(v.len());
    let mut end = 0u64;
    for r in v {
        if !out.is_empty() && r.addr < end {
            continue;
        }
        end = r.addr.saturating_add(r.size);
        out.push(r);
    }
    out
}

/// The language of a unit, as far as type names go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    C,
    Rust,
    Other,
}

/// A variable found in the walk, resolved once its unit's walk is done.
struct Found<'a> {
    /// Its ancestors' (tag, offset), outermost first (the unit's root left out).
    scope: Vec<(gimli::DwTag, UnitOffset)>,
    name: Option<AttributeValue<R<'a>>>,
    linkage: Option<AttributeValue<R<'a>>>,
    ty: Option<AttributeValue<R<'a>>>,
    file: Option<u64>,
    line: u64,
    /// The declaration it defines or the abstract variable it is an
    /// instance of.
    origin: Option<UnitOffset>,
    /// Where it is: one address (its type gives the size), or the
    /// addresses and sizes of the pieces of it that are in memory (LLVM
    /// splits a static whose fields it can keep apart: Rust's
    /// `Mutex<Vec<_>>` as a flag, the vector's capacity, pointer and
    /// length at separate addresses).
    places: Vec<(u64, Option<u64>)>,
}

/// Everything the resolution of one module's variables uses.
struct Ctx<'a> {
    dwarf: gimli::Dwarf<R<'a>>,
    units: Vec<gimli::Unit<R<'a>>>,
    langs: Vec<Lang>,
    /// Rendered type name and size, by (unit, offset).
    types: HashMap<(usize, UnitOffset), (Option<String>, Option<u64>)>,
    /// Scope names, by (unit, offset).
    scopes: HashMap<(usize, UnitOffset), Option<String>>,
    /// File paths, by (unit, index).
    files: HashMap<(usize, u64), Option<String>>,
}

/// The DWARF sections of `layout` named `prefix` + `.debug_*`, with their
/// units parsed (those that parse), or `None` without `.debug_info`.
fn load<'a>(layout: &Layout<'a>, prefix: &str) -> Option<Ctx<'a>> {
    let mut sections: HashMap<&str, &'a [u8]> = HashMap::new();
    for (name, data) in &layout.customs {
        if let Some(base) = name.strip_prefix(prefix) {
            if base.starts_with(".debug_") {
                sections.entry(base).or_insert(*data);
            }
        }
    }
    if !sections.contains_key(".debug_info") {
        return None;
    }
    let dwarf = gimli::Dwarf::load(|id| -> Result<R<'a>, gimli::Error> {
        Ok(EndianSlice::new(
            sections.get(id.name()).copied().unwrap_or(&[]),
            LittleEndian,
        ))
    })
    .ok()?;
    let mut units = Vec::new();
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        // A unit that does not parse is left out; the next may.
        if let Ok(unit) = dwarf.unit(header) {
            units.push(unit);
        }
    }
    let langs = units.iter().map(language).collect();
    Some(Ctx {
        dwarf,
        units,
        langs,
        types: HashMap::new(),
        scopes: HashMap::new(),
        files: HashMap::new(),
    })
}

/// The variables with a fixed address in the DWARF sections of `layout`
/// named `prefix` + `.debug_*`, unsorted.
fn dwarf_variables(layout: &Layout<'_>, prefix: &str) -> Vec<RootInfo> {
    let Some(mut ctx) = load(layout, prefix) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for u in 0..ctx.units.len() {
        let found = walk_unit(
            &ctx.dwarf,
            &ctx.units[u],
            MAX_VARIABLES.saturating_sub(out.len()),
        );
        for f in found {
            out.extend(resolve(&mut ctx, u, f));
        }
        if out.len() >= MAX_VARIABLES {
            out.truncate(MAX_VARIABLES);
            break;
        }
    }
    out
}

/// The generic functions whose monomorphisations tell what they allocate:
/// their type parameter `T` (for a hash table, its `(K, V)` entries).
const ALLOCATING: [&str; 9] = [
    "alloc::raw_vec::RawVec<",
    "alloc::vec::Vec<",
    "alloc::collections::vec_deque::VecDeque<",
    "alloc::collections::binary_heap::BinaryHeap<",
    "alloc::boxed::Box<",
    "alloc::rc::Rc<",
    "alloc::sync::Arc<",
    "hashbrown::raw::RawTable<",
    "hashbrown::raw::inner::RawTable<",
];

/// The type allocated at each of `code_offsets` (call sites' offsets in
/// the code section, as DWARF and [`heapscope_trace::abi::Site`] count
/// them), where DWARF tells it: the `T` of the innermost `RawVec<T>`,
/// `Vec<T>`, `Box<T>`, `Rc<T>`, `Arc<T>`, `VecDeque<T>` or hashbrown
/// `RawTable<T>` function (inlined or not) whose code holds the call,
/// rendered as [`shorten_rust_type`] does (`Node`, `RefCell<Session>`,
/// `(String, Box<[u8]>)`). `None` elsewhere (a call outside such a
/// function: the caller's own call site may tell it), and for every
/// offset without DWARF. One DWARF read for all offsets.
pub(crate) fn allocated_types(wasm: &[u8], code_offsets: &[u64]) -> Vec<Option<String>> {
    let mut out = vec![None; code_offsets.len()];
    let layout = Layout::of(wasm);
    let Some(mut ctx) =
        load(&layout, "").or_else(|| load(&layout, heapscope_trace::abi::DWARF_SECTION_PREFIX))
    else {
        return out;
    };
    // Which units' code holds each offset.
    let mut ranges: Vec<(u64, u64, usize)> = Vec::new();
    for (u, unit) in ctx.units.iter().enumerate() {
        if let Ok(mut it) = ctx.dwarf.unit_ranges(unit) {
            while let Ok(Some(r)) = it.next() {
                // Empty ranges and ranges at 0 (the tombstone of dropped
                // code in older linkers) say nothing.
                if r.begin < r.end && r.begin > 0 {
                    ranges.push((r.begin, r.end, u));
                }
                if ranges.len() >= MAX_VARIABLES {
                    break;
                }
            }
        }
    }
    let mut by_unit: HashMap<usize, Vec<usize>> = HashMap::new();
    for (q, &at) in code_offsets.iter().enumerate() {
        for &(b, e, u) in &ranges {
            if b <= at && at < e {
                let qs = by_unit.entry(u).or_default();
                if qs.last() != Some(&q) {
                    qs.push(q);
                }
            }
        }
    }
    let mut units: Vec<(usize, Vec<usize>)> = by_unit.into_iter().collect();
    units.sort();
    for (u, qs) in units {
        let at: Vec<u64> = qs.iter().map(|&q| code_offsets[q]).collect();
        let chains = function_chains(&ctx, u, &at);
        // Many sites share their functions: each looked at once.
        let mut known: HashMap<UnitOffset, Option<String>> = HashMap::new();
        for (q, chain) in qs.into_iter().zip(chains) {
            if out[q].is_some() {
                continue;
            }
            out[q] = chain.iter().rev().find_map(|&o| {
                known
                    .entry(o)
                    .or_insert_with(|| allocated_by(&mut ctx, u, o))
                    .clone()
            });
        }
    }
    out
}

/// For each of `at`, the functions and inlined copies of unit `u` whose
/// code holds it, outermost first.
fn function_chains(ctx: &Ctx<'_>, u: usize, at: &[u64]) -> Vec<Vec<UnitOffset>> {
    let unit = &ctx.units[u];
    let mut chains = vec![Vec::new(); at.len()];
    // The offsets in order, to find those in a range by bisection.
    let mut sorted: Vec<(u64, usize)> = at.iter().copied().zip(0..).collect();
    sorted.sort_unstable();
    let mut cursor = unit.entries();
    while let Ok(Some(e)) = cursor.next_dfs() {
        if !matches!(
            e.tag(),
            gimli::DW_TAG_subprogram | gimli::DW_TAG_inlined_subroutine
        ) {
            continue;
        }
        let Ok(mut ranges) = ctx.dwarf.die_ranges(unit, e) else {
            continue;
        };
        let mut n = 0;
        while let Ok(Some(r)) = ranges.next() {
            n += 1;
            if n > 4096 {
                break;
            }
            if r.begin == 0 || r.begin >= r.end {
                continue;
            }
            let from = sorted.partition_point(|&(a, _)| a < r.begin);
            for &(a, i) in &sorted[from..] {
                if a >= r.end {
                    break;
                }
                if chains[i].last() != Some(&e.offset()) && chains[i].len() < 256 {
                    chains[i].push(e.offset());
                }
            }
        }
    }
    chains
}

/// The `T` that function (or inlined copy) `o` of unit `u` allocates, when
/// it is one of [`ALLOCATING`]'s.
fn allocated_by(ctx: &mut Ctx<'_>, u: usize, o: UnitOffset) -> Option<String> {
    // The copy, its abstract instance, the declaration: the name may be on
    // any, the type parameters on the first two.
    let mut visited: Vec<UnitOffset> = vec![o];
    let mut name: Option<String> = None;
    let mut at = o;
    for _ in 0..4 {
        let e = ctx.units[u].entry(at).ok()?;
        if name.is_none() {
            let linkage = e
                .attr_value(gimli::DW_AT_linkage_name)
                .or_else(|| e.attr_value(gimli::DW_AT_MIPS_linkage_name));
            if let Some(l) = linkage {
                name = attr_string(ctx, u, l).map(|l| heapscope_instrument::discover::demangle(&l));
            }
        }
        let next = e
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| e.attr_value(gimli::DW_AT_specification));
        match next {
            Some(AttributeValue::UnitRef(n)) if !visited.contains(&n) => {
                visited.push(n);
                at = n;
            }
            _ => break,
        }
    }
    let name = name?;
    let bare = name.strip_prefix('<').unwrap_or(&name);
    if !ALLOCATING.iter().any(|p| bare.starts_with(p)) {
        return None;
    }
    // A vector's, a deque's, a heap's or a table's block is an array of
    // its `T`s: `[u8]`, `[Box<Session>]`, not one `u8`; so is a
    // `Box<[T]>`'s (its functions' `T` is the element).

    let one = ["alloc::boxed::Box<", "alloc::rc::Rc<", "alloc::sync::Arc<"];
    let array = !one.iter().any(|p| bare.starts_with(p))
        || one
            .iter()
            .any(|p| bare.strip_prefix(p).is_some_and(|r| r.starts_with('[')));
    for v in visited {
        let Some(t) = type_parameter(ctx, u, v, "T") else {
            continue;
        };
        let (ty, _) = type_info(ctx, u, t, 0);
        // `Rc::new` allocates a `Box<RcInner<T>>`: the `T` is the news.
        return ty.map(|t| {
            let t = shorten_rust_type(&t);
            if array {
                return format!("[{t}]");
            }
            for wrapper in ["RcInner<", "ArcInner<", "RcBox<"] {
                if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix('>')) {
                    return inner.to_string();
                }
            }
            t
        });
    }
    None
}

/// The type of entry `o`'s template type parameter called `name`.
fn type_parameter(ctx: &Ctx<'_>, u: usize, o: UnitOffset, name: &str) -> Option<UnitOffset> {
    let mut tree = ctx.units[u].entries_tree(Some(o)).ok()?;
    let root = tree.root().ok()?;
    let mut children = root.children();
    let mut seen = 0;
    while let Ok(Some(child)) = children.next() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_template_type_parameter {
            continue;
        }
        let n = e
            .attr_value(gimli::DW_AT_name)
            .and_then(|n| attr_string(ctx, u, n));
        if n.as_deref() == Some(name) {
            if let Some(AttributeValue::UnitRef(t)) = e.attr_value(gimli::DW_AT_type) {
                return Some(t);
            }
        }
    }
    None
}

/// The language of `unit`, from its root's `DW_AT_language`.
fn language(unit: &gimli::Unit<R<'_>>) -> Lang {
    let mut entries = unit.entries();
    let Ok(Some(root)) = entries.next_dfs() else {
        return Lang::Other;
    };
    match root.attr_value(gimli::DW_AT_language) {
        Some(AttributeValue::Language(l)) => match l {
            gimli::DW_LANG_C
            | gimli::DW_LANG_C89
            | gimli::DW_LANG_C99
            | gimli::DW_LANG_C11
            | gimli::DW_LANG_C17 => Lang::C,
            gimli::DW_LANG_Rust => Lang::Rust,
            _ => Lang::Other,
        },
        _ => Lang::Other,
    }
}

/// The variables of `unit` whose location is one fixed address (at most
/// `limit`), with what resolving them needs. Stops quietly at malformed
/// entries.
fn walk_unit<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    unit: &gimli::Unit<R<'a>>,
    limit: usize,
) -> Vec<Found<'a>> {
    let mut out = Vec::new();
    let Ok(mut raw) = unit.entries_raw(None) else {
        return out;
    };
    let encoding = unit.encoding();
    // The open entries with children, by depth: stack[d] is the ancestor
    // at depth d of the entries read now.
    let mut stack: Vec<(gimli::DwTag, UnitOffset)> = Vec::new();
    let mut attrs: Vec<gimli::Attribute<R<'a>>> = Vec::new();
    while !raw.is_empty() && out.len() < limit {
        let depth = raw.next_depth();
        let offset = raw.next_offset();
        let Ok(abbrev) = raw.read_abbreviation() else {
            break;
        };
        let Some(abbrev) = abbrev else {
            continue;
        };
        let Ok(depth) = usize::try_from(depth) else {
            break;
        };
        if depth > MAX_DIE_DEPTH {
            break;
        }
        stack.truncate(depth);
        if abbrev.tag() == gimli::DW_TAG_variable {
            attrs.clear();
            let mut ok = true;
            for spec in abbrev.attributes() {
                match raw.read_attribute(*spec) {
                    Ok(a) => attrs.push(a),
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
            if let Some(f) = found(dwarf, unit, encoding, &stack, &attrs) {
                out.push(f);
            }
        } else if raw.skip_attributes(abbrev.attributes()).is_err() {
            break;
        }
        if abbrev.has_children() {
            if stack.len() < depth {
                // Malformed depth bookkeeping: give up on this unit.
                break;
            }
            stack.push((abbrev.tag(), offset));
        }
    }
    out
}

/// The variable of `attrs` if its location is a single `DW_OP_addr` (or
/// `DW_OP_addrx`) and it is neither artificial nor a vtable.
fn found<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    unit: &gimli::Unit<R<'a>>,
    encoding: gimli::Encoding,
    stack: &[(gimli::DwTag, UnitOffset)],
    attrs: &[gimli::Attribute<R<'a>>],
) -> Option<Found<'a>> {
    let mut f = Found {
        scope: stack.get(1..).unwrap_or(&[]).to_vec(),
        name: None,
        linkage: None,
        ty: None,
        file: None,
        line: 0,
        origin: None,
        places: Vec::new(),
    };
    for a in attrs {
        match a.name() {
            gimli::DW_AT_location => {
                let AttributeValue::Exprloc(expr) = a.value() else {
                    return None;
                };
                f.places = places(dwarf, unit, encoding, expr);
            }
            gimli::DW_AT_name => f.name = Some(a.value()),
            gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                f.linkage = Some(a.value())
            }
            gimli::DW_AT_type => f.ty = Some(a.value()),
            gimli::DW_AT_decl_file => f.file = a.udata_value(),
            gimli::DW_AT_decl_line => f.line = a.udata_value().unwrap_or(0),
            gimli::DW_AT_specification | gimli::DW_AT_abstract_origin => {
                if let AttributeValue::UnitRef(o) = a.value() {
                    f.origin = Some(o);
                }
            }
            gimli::DW_AT_artificial => {
                if matches!(a.value(), AttributeValue::Flag(true)) {
                    return None;
                }
            }
            _ => {}
        }
    }
    if f.places.is_empty() {
        return None;
    }
    Some(f)
}

/// The places in memory of a location expression: `DW_OP_addr A` alone
/// (`(A, None)`), or the pieces `DW_OP_addr A, DW_OP_piece N` of a
/// composite (`(A, Some(N))`; pieces that are values or registers left
/// out). Anything else: none.
fn places<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    unit: &gimli::Unit<R<'a>>,
    encoding: gimli::Encoding,
    expr: gimli::Expression<R<'a>>,
) -> Vec<(u64, Option<u64>)> {
    let mut out = Vec::new();
    let mut ops = expr.operations(encoding);
    // The operations since the last piece: one address, or something else.
    let mut group: Option<Option<u64>> = None;
    let mut pieces = false;
    for _ in 0..1024 {
        let op = match ops.next() {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(_) => return Vec::new(),
        };
        match op {
            gimli::Operation::Address { address } if group.is_none() => {
                group = Some(Some(address));
            }
            gimli::Operation::AddressIndex { index } if group.is_none() => {
                group = Some(dwarf.address(unit, index).ok());
            }
            gimli::Operation::Piece {
                size_in_bits,
                bit_offset: None,
            } => {
                pieces = true;
                if let Some(Some(a)) = group {
                    if size_in_bits % 8 == 0 && size_in_bits > 0 {
                        out.push((a, Some(size_in_bits / 8)));
                    }
                }
                group = None;
            }
            _ => group = Some(None),
        }
    }
    if !pieces {
        return match group {
            Some(Some(a)) => vec![(a, None)],
            _ => Vec::new(),
        };
    }
    out
}

/// The roots of variable `f` of unit `u` (one, or one per piece in
/// memory), none when it has no name, no known size, or an address no
/// memory can have.
fn resolve<'a>(ctx: &mut Ctx<'a>, u: usize, mut f: Found<'a>) -> Vec<RootInfo> {
    resolve_some(ctx, u, &mut f).unwrap_or_default()
}

fn resolve_some<'a>(ctx: &mut Ctx<'a>, u: usize, f: &mut Found<'a>) -> Option<Vec<RootInfo>> {
    let unit = &ctx.units[u];
    // A definition of a declaration, or an instance of an abstract
    // variable: what it lacks comes from there (and its scope, when the
    // declaration sits in a class or namespace).
    if let Some(o) = f.origin {
        if let Ok(e) = unit.entry(o) {
            if f.name.is_none() {
                f.name = e.attr_value(gimli::DW_AT_name);
            }
            if f.linkage.is_none() {
                f.linkage = e.attr_value(gimli::DW_AT_linkage_name);
            }
            if f.ty.is_none() {
                f.ty = e.attr_value(gimli::DW_AT_type);
            }
            if f.file.is_none() {
                f.file = e.attr(gimli::DW_AT_decl_file).and_then(|a| a.udata_value());
                f.line = e
                    .attr(gimli::DW_AT_decl_line)
                    .and_then(|a| a.udata_value())
                    .unwrap_or(0);
            }
        }
    }
    let lang = ctx.langs[u];
    let short = match f.name {
        Some(n) => attr_string(ctx, u, n)?,
        None => {
            let l = attr_string(ctx, u, f.linkage?)?;
            heapscope_instrument::discover::demangle(&l)
        }
    };
    if short.is_empty() || short.contains("{vtable}") {
        return None;
    }
    let address_size = unit.encoding().address_size;
    let (ty, size) = match f.ty {
        Some(t) => type_ref(ctx, u, t).map_or((None, None), |(tu, to)| type_info(ctx, tu, to, 0)),
        None => (None, None),
    };
    let limit = if address_size >= 8 {
        u64::MAX
    } else {
        1u64 << (8 * u32::from(address_size.max(1)))
    };
    // Address 0 is null and the top of the space is the linker's
    // tombstone for data it dropped.
    let places: Vec<(u64, u64)> = f
        .places
        .iter()
        .filter_map(|&(addr, piece)| {
            let size = piece.or(size).filter(|s| *s > 0)?;
            let end = addr.checked_add(size)?;
            (addr != 0 && end <= limit && addr < limit - 16).then_some((addr, size))
        })
        .collect();
    if places.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    for (tag, o) in f.scope.clone() {
        if let Some(n) = scope_name(ctx, u, tag, o) {
            parts.push(n);
        }
    }
    let mut ty = ty;
    if lang == Lang::Rust {
        // `thread_local!` statics are `NAME::{closure#0}::__RUST_STD_INTERNAL_VAL`
        // (older std: `NAME::__getit::VAL`/`__KEY`) of a storage type
        // wrapping the declared one: named and typed as declared.
        let internal = matches!(
            short.as_str(),
            "__RUST_STD_INTERNAL_VAL" | "VAL" | "__KEY" | "KEY"
        );
        let wrapped = parts.last().is_some_and(|p| thread_local_scope(p));
        if internal && wrapped {
            while parts.last().is_some_and(|p| thread_local_scope(p)) {
                parts.pop();
            }
            ty = ty.map(|t| thread_local_inner(&t));
        } else {
            parts.push(short);
        }
        ty = ty.map(|t| shorten_rust_type(&t));
    } else {
        parts.push(short);
    }
    let name = parts.join("::");
    if name.is_empty() {
        return None;
    }
    let file = f.file.and_then(|i| file_path(ctx, u, i));
    let line = u32::try_from(f.line).unwrap_or(0);
    Some(
        places
            .into_iter()
            .map(|(addr, size)| RootInfo {
                kind: RootKind::Variable,
                name: name.clone(),
                ty: ty.clone(),
                file: file.clone(),
                line,
                addr,
                size,
            })
            .collect(),
    )
}

/// Whether a namespace is one `thread_local!` wraps its storage in: the
/// initialiser's closure or constant, or older std's `__getit`.
fn thread_local_scope(p: &str) -> bool {
    p.starts_with("{closure#") || p.starts_with("{constant#") || p == "__getit"
}

/// The string an attribute value names (inline or in a string section).
fn attr_string(ctx: &Ctx<'_>, u: usize, v: AttributeValue<R<'_>>) -> Option<String> {
    let s = ctx.dwarf.attr_string(&ctx.units[u], v).ok()?;
    Some(String::from_utf8_lossy(s.slice()).into_owned())
}

/// The (unit, offset) a type reference points at: within the unit, or
/// anywhere in `.debug_info`.
fn type_ref(ctx: &Ctx<'_>, u: usize, v: AttributeValue<R<'_>>) -> Option<(usize, UnitOffset)> {
    match v {
        AttributeValue::UnitRef(o) => Some((u, o)),
        AttributeValue::DebugInfoRef(o) => {
            let i = ctx.units.partition_point(|x| {
                x.header
                    .debug_info_offset()
                    .is_some_and(|start| start.0 <= o.0)
            });
            let i = i.checked_sub(1)?;
            let uo = o.to_unit_offset(&ctx.units[i].header)?;
            Some((i, uo))
        }
        _ => None,
    }
}

/// The name of a scope (namespace, function, type) that contributes to a
/// variable's qualified name.
fn scope_name(ctx: &mut Ctx<'_>, u: usize, tag: gimli::DwTag, o: UnitOffset) -> Option<String> {
    let named = matches!(
        tag,
        gimli::DW_TAG_namespace
            | gimli::DW_TAG_subprogram
            | gimli::DW_TAG_structure_type
            | gimli::DW_TAG_class_type
            | gimli::DW_TAG_union_type
    );
    if !named {
        return None;
    }
    if let Some(n) = ctx.scopes.get(&(u, o)) {
        return n.clone();
    }
    let n = entry_name(ctx, u, o, 0);
    ctx.scopes.insert((u, o), n.clone());
    n
}

/// An entry's `DW_AT_name`, else its specification's or abstract origin's.
fn entry_name(ctx: &Ctx<'_>, u: usize, o: UnitOffset, hops: usize) -> Option<String> {
    let e = ctx.units[u].entry(o).ok()?;
    if let Some(n) = e.attr_value(gimli::DW_AT_name) {
        return attr_string(ctx, u, n);
    }
    if hops >= 4 {
        return None;
    }
    for at in [gimli::DW_AT_specification, gimli::DW_AT_abstract_origin] {
        if let Some(v) = e.attr_value(at) {
            if let Some((tu, to)) = type_ref(ctx, u, v) {
                return entry_name(ctx, tu, to, hops + 1);
            }
        }
    }
    None
}

/// The name and size of the type at `o` of unit `u` (`depth` references
/// followed so far).
fn type_info(
    ctx: &mut Ctx<'_>,
    u: usize,
    o: UnitOffset,
    depth: usize,
) -> (Option<String>, Option<u64>) {
    if let Some(t) = ctx.types.get(&(u, o)) {
        return t.clone();
    }
    if depth >= MAX_TYPE_DEPTH {
        return (None, None);
    }
    // Marked before it is computed: a type that refers to itself (only
    // malformed DWARF does) gets no name rather than endless work, and
    // each type is computed once.
    ctx.types.insert((u, o), (None, None));
    let t = type_info_uncached(ctx, u, o, depth);
    let t = (t.0.map(|n| cut(&n)), t.1);
    ctx.types.insert((u, o), t.clone());
    t
}

/// `s`, cut to [`MAX_TYPE_NAME`] bytes.
fn cut(s: &str) -> String {
    if s.len() <= MAX_TYPE_NAME {
        return s.to_string();
    }
    let mut end = MAX_TYPE_NAME;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn type_info_uncached(
    ctx: &mut Ctx<'_>,
    u: usize,
    o: UnitOffset,
    depth: usize,
) -> (Option<String>, Option<u64>) {
    let Ok(e) = ctx.units[u].entry(o) else {
        return (None, None);
    };
    let lang = ctx.langs[u];
    let address_size = u64::from(ctx.units[u].encoding().address_size);
    let own_name = e
        .attr_value(gimli::DW_AT_name)
        .and_then(|n| attr_string(ctx, u, n));
    let byte_size = e.attr(gimli::DW_AT_byte_size).and_then(|a| a.udata_value());
    let inner = e
        .attr_value(gimli::DW_AT_type)
        .and_then(|v| type_ref(ctx, u, v));
    let inner_info = |ctx: &mut Ctx<'_>| match inner {
        Some((tu, to)) => type_info(ctx, tu, to, depth + 1),
        None => (None, None),
    };
    match e.tag() {
        gimli::DW_TAG_typedef => {
            let (_, size) = inner_info(ctx);
            (own_name, byte_size.or(size))
        }
        gimli::DW_TAG_base_type | gimli::DW_TAG_unspecified_type => (own_name, byte_size),
        gimli::DW_TAG_structure_type
        | gimli::DW_TAG_class_type
        | gimli::DW_TAG_union_type
        | gimli::DW_TAG_enumeration_type => {
            let word = match e.tag() {
                gimli::DW_TAG_structure_type => "struct",
                gimli::DW_TAG_class_type => "class",
                gimli::DW_TAG_union_type => "union",
                _ => "enum",
            };
            let name = match (own_name, lang) {
                (Some(n), Lang::C) => Some(format!("{word} {n}")),
                (Some(n), _) => Some(n),
                (None, _) => Some(format!("{word} {{…}}")),
            };
            let size = byte_size.or_else(|| {
                if e.tag() == gimli::DW_TAG_enumeration_type {
                    inner_info(ctx).1
                } else {
                    None
                }
            });
            (name, size)
        }
        gimli::DW_TAG_pointer_type
        | gimli::DW_TAG_reference_type
        | gimli::DW_TAG_rvalue_reference_type => {
            let size = Some(byte_size.unwrap_or(address_size));
            if own_name.is_some() {
                return (own_name, size);
            }
            let mark = match e.tag() {
                gimli::DW_TAG_pointer_type => "*",
                gimli::DW_TAG_reference_type => "&",
                _ => "&&",
            };
            let pointee = match inner {
                None => "void".to_string(),
                Some((tu, to)) => {
                    let sub = ctx.units[tu]
                        .entry(to)
                        .is_ok_and(|p| p.tag() == gimli::DW_TAG_subroutine_type);
                    if sub {
                        let f = function_type(ctx, tu, to, depth + 1);
                        return (Some(f.replacen("(^)", &format!("({mark})"), 1)), size);
                    }
                    type_info(ctx, tu, to, depth + 1)
                        .0
                        .unwrap_or_else(|| "?".to_string())
                }
            };
            (Some(pointer_to(&pointee, mark)), size)
        }
        gimli::DW_TAG_const_type
        | gimli::DW_TAG_volatile_type
        | gimli::DW_TAG_restrict_type
        | gimli::DW_TAG_atomic_type => {
            let (name, size) = inner_info(ctx);
            let word = match e.tag() {
                gimli::DW_TAG_const_type => "const",
                gimli::DW_TAG_volatile_type => "volatile",
                gimli::DW_TAG_restrict_type => "restrict",
                _ => "_Atomic",
            };
            let name = if lang == Lang::Rust {
                name
            } else {
                let n = name.unwrap_or_else(|| "void".to_string());
                Some(if n.ends_with('*') {
                    format!("{n}{word}")
                } else {
                    format!("{word} {n}")
                })
            };
            (name, byte_size.or(size))
        }
        gimli::DW_TAG_array_type => {
            let (elem, elem_size) = inner_info(ctx);
            let dims = array_dims(ctx, u, o);
            let count = dims
                .iter()
                .try_fold(1u64, |acc, d| d.and_then(|d| acc.checked_mul(d)));
            let size = byte_size.or_else(|| count.and_then(|c| c.checked_mul(elem_size?)));
            let elem = elem.unwrap_or_else(|| "?".to_string());
            let dim = |d: &Option<u64>| d.map_or(String::new(), |d| d.to_string());
            let name = if lang == Lang::Rust {
                dims.iter()
                    .rev()
                    .fold(elem, |acc, d| format!("[{acc}; {}]", dim(d)))
            } else {
                let mut s = elem;
                for d in &dims {
                    s.push_str(&format!("[{}]", dim(d)));
                }
                if dims.is_empty() {
                    s.push_str("[]");
                }
                s
            };
            (Some(name), size)
        }
        gimli::DW_TAG_subroutine_type => (Some(function_type(ctx, u, o, depth)), None),
        gimli::DW_TAG_ptr_to_member_type => (Some("member pointer".to_string()), byte_size),
        _ => (own_name, byte_size),
    }
}

/// `pointee` with a pointer (`*`) or reference (`&`) mark, C style.
fn pointer_to(pointee: &str, mark: &str) -> String {
    if pointee.ends_with('*') || pointee.ends_with('&') {
        format!("{pointee}{mark}")
    } else {
        format!("{pointee} {mark}")
    }
}

/// A function type, C style, with `(^)` where the declarator goes:
/// `int (^)(char *, int)`.
fn function_type(ctx: &mut Ctx<'_>, u: usize, o: UnitOffset, depth: usize) -> String {
    let ret = ctx.units[u]
        .entry(o)
        .ok()
        .and_then(|e| e.attr_value(gimli::DW_AT_type))
        .and_then(|v| type_ref(ctx, u, v));
    let ret = match ret {
        Some((tu, to)) => type_info(ctx, tu, to, depth + 1)
            .0
            .unwrap_or_else(|| "?".to_string()),
        None => "void".to_string(),
    };
    let mut params: Vec<Option<(usize, UnitOffset)>> = Vec::new();
    let mut variadic = false;
    if let Ok(mut tree) = ctx.units[u].entries_tree(Some(o)) {
        if let Ok(root) = tree.root() {
            let mut children = root.children();
            while let Ok(Some(child)) = children.next() {
                let e = child.entry();
                match e.tag() {
                    gimli::DW_TAG_formal_parameter => {
                        params.push(e.attr_value(gimli::DW_AT_type).and_then(|v| match v {
                            AttributeValue::UnitRef(r) => Some((u, r)),
                            _ => None,
                        }))
                    }
                    gimli::DW_TAG_unspecified_parameters => variadic = true,
                    _ => {}
                }
                if params.len() > 32 {
                    break;
                }
            }
        }
    }
    let mut names: Vec<String> = params
        .into_iter()
        .map(|p| match p {
            Some((tu, to)) => type_info(ctx, tu, to, depth + 1)
                .0
                .unwrap_or_else(|| "?".to_string()),
            None => "?".to_string(),
        })
        .collect();
    if variadic {
        names.push("...".to_string());
    }
    if names.is_empty() {
        names.push("void".to_string());
    }
    format!("{ret} (^)({})", names.join(", "))
}

/// The element counts of an array type's dimensions (`None`: unknown).
fn array_dims(ctx: &Ctx<'_>, u: usize, o: UnitOffset) -> Vec<Option<u64>> {
    let mut dims = Vec::new();
    let Ok(mut tree) = ctx.units[u].entries_tree(Some(o)) else {
        return dims;
    };
    let Ok(root) = tree.root() else {
        return dims;
    };
    let mut children = root.children();
    while let Ok(Some(child)) = children.next() {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_subrange_type {
            continue;
        }
        let count = e.attr(gimli::DW_AT_count).and_then(|a| a.udata_value());
        let upper = e
            .attr(gimli::DW_AT_upper_bound)
            .and_then(|a| a.udata_value());
        let lower = e
            .attr(gimli::DW_AT_lower_bound)
            .and_then(|a| a.udata_value())
            .unwrap_or(0);
        dims.push(count.or_else(|| upper?.checked_sub(lower)?.checked_add(1)));
        if dims.len() > 16 {
            break;
        }
    }
    dims
}

/// The path of file `index` of unit `u`'s line table, joined to its
/// directory and the unit's compilation directory as addr2line does.
fn file_path(ctx: &mut Ctx<'_>, u: usize, index: u64) -> Option<String> {
    if let Some(p) = ctx.files.get(&(u, index)) {
        return p.clone();
    }
    let p = file_path_uncached(ctx, u, index);
    ctx.files.insert((u, index), p.clone());
    p
}

fn file_path_uncached(ctx: &Ctx<'_>, u: usize, index: u64) -> Option<String> {
    let unit = &ctx.units[u];
    let header = unit.line_program.as_ref()?.header();
    let file = header.file(index)?;
    let mut path = String::new();
    if let Some(dir) = unit.comp_dir {
        path = String::from_utf8_lossy(dir.slice()).into_owned();
    }
    if file.directory_index() != 0 || header.version() >= 5 {
        if let Some(dir) = file.directory(header) {
            push_path(&mut path, &attr_string(ctx, u, dir)?);
        }
    }
    push_path(&mut path, &attr_string(ctx, u, file.path_name())?);
    Some(path)
}

/// `p` appended to `path`, or replacing it when absolute.
fn push_path(path: &mut String, p: &str) {
    let absolute = p.starts_with('/')
        || p.contains("://")
        || (p.len() > 2 && p.as_bytes()[1] == b':' && matches!(p.as_bytes()[2], b'\\' | b'/'));
    if absolute || path.is_empty() {
        *path = p.to_string();
    } else if !p.is_empty() {
        if !path.ends_with('/') && !path.ends_with('\\') {
            path.push('/');
        }
        path.push_str(p);
    }
}

/// The declared type inside a `thread_local!`'s storage type
/// (`std::sys::thread_local::no_threads::EagerStorage<T>`,
/// `LazyStorage<T, D>`, `LocalKey<T>`): its first generic argument.
fn thread_local_inner(ty: &str) -> String {
    let head = ty.split('<').next().unwrap_or("");
    let last = head.rsplit("::").next().unwrap_or("");
    if !matches!(
        last,
        "EagerStorage" | "LazyStorage" | "Storage" | "LocalKey" | "Key"
    ) {
        return ty.to_string();
    }
    let Some(args) = ty.get(head.len() + 1..).and_then(|s| s.strip_suffix('>')) else {
        return ty.to_string();
    };
    let mut depth = 0i32;
    let bytes = args.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth -= 1,
            b',' if depth == 0 => return args[..i].trim().to_string(),
            _ => {}
        }
    }
    args.trim().to_string()
}

/// A Rust type name as a reader writes it: every path cut to its last
/// segment (`alloc::vec::Vec<u8, alloc::alloc::Global>` → `Vec<u8>`),
/// the default allocator and hasher arguments left out.
pub(crate) fn shorten_rust_type(ty: &str) -> String {
    let chars: Vec<char> = ty.chars().collect();
    let mut i = 0;
    let out = render(&chars, &mut i, &[], 0);
    if i < chars.len() {
        // Unbalanced: the rest as it is.
        let rest: String = chars[i..].iter().collect();
        return format!("{out}{rest}");
    }
    out
}

/// Nesting beyond which [`render`] copies the rest verbatim.
const MAX_RENDER_DEPTH: usize = 48;

/// Renders `s[*i..]` up to (not including) one of `stops` at this level.
fn render(s: &[char], i: &mut usize, stops: &[char], depth: usize) -> String {
    let mut out = String::new();
    if depth > MAX_RENDER_DEPTH {
        while *i < s.len() && !stops.contains(&s[*i]) {
            out.push(s[*i]);
            *i += 1;
        }
        return out;
    }
    let mut head = String::new();
    while *i < s.len() {
        let c = s[*i];
        if stops.contains(&c) {
            break;
        }
        if is_path_char(c) || (c == ':' && s.get(*i + 1) == Some(&':')) {
            let start = *i;
            while *i < s.len() && (is_path_char(s[*i]) || s[*i] == ':') {
                *i += 1;
            }
            let run: String = s[start..*i].iter().collect();
            head = last_segment(&run);
            if run.starts_with("::") {
                out.push_str("::");
            }
            out.push_str(&head);
            continue;
        }
        match c {
            '-' if s.get(*i + 1) == Some(&'>') => {
                out.push_str("->");
                *i += 2;
            }
            '<' => {
                *i += 1;
                let mut args = Vec::new();
                loop {
                    let a = render(s, i, &[',', '>'], depth + 1);
                    args.push(a.trim().to_string());
                    match s.get(*i) {
                        Some(',') => *i += 1,
                        Some('>') => {
                            *i += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                drop_defaults(&head, &mut args);
                out.push('<');
                out.push_str(&args.join(", "));
                out.push('>');
                head.clear();
            }
            '(' | '[' => {
                let close = if c == '(' { ')' } else { ']' };
                *i += 1;
                let inner = render(s, i, &[close], depth + 1);
                out.push(c);
                out.push_str(&inner);
                if s.get(*i) == Some(&close) {
                    *i += 1;
                    out.push(close);
                }
                head.clear();
            }
            _ => {
                out.push(c);
                *i += 1;
                if c != ' ' {
                    head.clear();
                }
            }
        }
    }
    out
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '{' | '}' | '#' | '$')
}

/// The last segment of a path, keeping the one before a closure's or
/// impl's `{…}` name (`main::{closure#0}`).
fn last_segment(run: &str) -> String {
    let parts: Vec<&str> = run.split("::").filter(|p| !p.is_empty()).collect();
    let Some(last) = parts.last() else {
        return String::new();
    };
    if last.starts_with('{') {
        // Up to and including the last named segment.
        let named = parts.iter().rposition(|p| !p.starts_with('{'));
        return match named {
            Some(n) => parts[n..].join("::"),
            None => parts.join("::"),
        };
    }
    last.to_string()
}

/// Leaves out the trailing generic arguments of `head` that are the
/// defaults: the global allocator, and a hash map's default hasher.
fn drop_defaults(head: &str, args: &mut Vec<String>) {
    let map = matches!(head, "HashMap" | "HashSet" | "HashTable" | "RawTable");
    while args.len() > 1 {
        let last = args.last().map(String::as_str).unwrap_or("");
        let default = last == "Global"
            || (map && matches!(last, "RandomState" | "DefaultHashBuilder" | "DefaultHasher"));
        if !default {
            break;
        }
        args.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_read_as_written() {
        let long = "std::sync::mutex::Mutex<core::option::Option<std::collections::hash::map::HashMap<u64, alloc::vec::Vec<u8, alloc::alloc::Global>, std::hash::random::RandomState>>>";
        assert_eq!(
            shorten_rust_type(long),
            "Mutex<Option<HashMap<u64, Vec<u8>>>>"
        );
        assert_eq!(
            shorten_rust_type("alloc::boxed::Box<[u8], alloc::alloc::Global>"),
            "Box<[u8]>"
        );
        assert_eq!(
            shorten_rust_type("core::cell::RefCell<core::option::Option<actor::Cache>>"),
            "RefCell<Option<Cache>>"
        );
        assert_eq!(
            shorten_rust_type("(u32, alloc::string::String)"),
            "(u32, String)"
        );
        assert_eq!(shorten_rust_type("&[u8]"), "&[u8]");
        assert_eq!(shorten_rust_type("*const u8"), "*const u8");
        assert_eq!(
            shorten_rust_type(
                "fn(&core::fmt::Formatter) -> core::result::Result<(), core::fmt::Error>"
            ),
            "fn(&Formatter) -> Result<(), Error>"
        );
        assert_eq!(
            shorten_rust_type(
                "alloc::vec::Vec<leaky::main::{closure_env#0}, alloc::alloc::Global>"
            ),
            "Vec<main::{closure_env#0}>"
        );
        assert_eq!(
            shorten_rust_type("<alloc::string::String as core::fmt::Write>::Error"),
            "<String as Write>::Error"
        );
        // A map whose hasher is not the default keeps it.
        assert_eq!(
            shorten_rust_type("std::collections::hash::map::HashMap<u32, u32, foo::Fast>"),
            "HashMap<u32, u32, Fast>"
        );
        // Unbalanced or deeply nested input comes back whole, no panic.
        assert_eq!(shorten_rust_type("a::B<c::D"), "B<D>");
        assert_eq!(shorten_rust_type(">>a::b"), ">>b");
        let deep = "a<".repeat(10_000);
        assert!(!shorten_rust_type(&deep).is_empty());
    }

    #[test]
    fn thread_local_storage_unwraps_to_the_declared_type() {
        assert_eq!(
            thread_local_inner("std::sys::thread_local::no_threads::EagerStorage<core::cell::RefCell<core::option::Option<actor::Cache>>>"),
            "core::cell::RefCell<core::option::Option<actor::Cache>>"
        );
        assert_eq!(
            thread_local_inner(
                "std::sys::thread_local::native::lazy::Storage<core::cell::Cell<u32>, ()>"
            ),
            "core::cell::Cell<u32>"
        );
        assert_eq!(
            thread_local_inner("core::cell::Cell<u32>"),
            "core::cell::Cell<u32>"
        );
    }

    fn root(name: &str, addr: u64, size: u64) -> RootInfo {
        RootInfo {
            kind: RootKind::Variable,
            name: name.into(),
            ty: None,
            file: None,
            line: 0,
            addr,
            size,
        }
    }

    #[test]
    fn cached_roots_read_back_and_a_list_breaking_the_contract_is_refused() {
        let mut a = root("g_registry", 1024, 16);
        a.ty = Some("struct registry *".into());
        a.file = Some("registry.c".into());
        a.line = 12;
        let mut b = root(".data", 1040, 100);
        b.kind = RootKind::Data;
        let roots = vec![a, b, root("é", 2000, 4)];
        let bytes = encode_roots(&roots);
        assert_eq!(decode_roots(&bytes), Some(roots.clone()));
        assert_eq!(decode_roots(&[]), Some(Vec::new()));
        // Cut anywhere: refused, or the whole roots before the cut.
        for cut in 1..bytes.len() {
            assert!(decode_roots(&bytes[..cut]).is_none_or(|d| d.len() < 3));
        }
        // Out of order, overlapping, empty, past 2^64, another kind.
        let refused = |v: Vec<RootInfo>| decode_roots(&encode_roots(&v));
        assert_eq!(refused(vec![roots[2].clone(), roots[0].clone()]), None);
        assert_eq!(refused(vec![roots[0].clone(), root("x", 1030, 4)]), None);
        assert_eq!(refused(vec![root("x", 8, 0)]), None);
        assert_eq!(refused(vec![root("x", u64::MAX - 1, 4)]), None);
        let mut kind = bytes.clone();
        kind[0] = 7;
        assert_eq!(decode_roots(&kind), None);
    }

    #[test]
    fn segments_are_split_around_variables() {
        let vars = vec![root("a", 1032, 8), root("b", 1040, 4), root("c", 2000, 100)];
        let segs = vec![
            Segment {
                name: ".rodata".into(),
                addr: 1024,
                size: 100,
            },
            Segment {
                name: ".data".into(),
                addr: 1990,
                size: 12,
            },
        ];
        let got: Vec<(String, u64, u64)> = merge(vars, &segs)
            .into_iter()
            .map(|r| (r.name, r.addr, r.size))
            .collect();
        assert_eq!(
            got,
            vec![
                (".rodata".to_string(), 1024, 8),
                ("a".to_string(), 1032, 8),
                ("b".to_string(), 1040, 4),
                (".rodata".to_string(), 1044, 80),
                (".data".to_string(), 1990, 10),
                ("c".to_string(), 2000, 100),
            ]
        );
    }

    #[test]
    fn overlapping_and_empty_variables_are_dropped() {
        let got: Vec<(String, u64, u64)> = non_overlapping(vec![
            root("z", 8, 0),
            root("b", 16, 4),
            root("a", 16, 8),
            root("a", 16, 8),
            root("c", 20, 8),
            root("d", 24, 4),
        ])
        .into_iter()
        .map(|r| (r.name, r.addr, r.size))
        .collect();
        assert_eq!(
            got,
            vec![("a".to_string(), 16, 8), ("d".to_string(), 24, 4)]
        );
    }
}

#[cfg(test)]
mod samples {
    use super::*;

    fn sample(rel: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/build")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "sample `{}` is missing ({e}): run `samples/build.sh`",
                p.display()
            )
        })
    }

    fn named<'r>(roots: &'r [RootInfo], name: &str) -> &'r RootInfo {
        roots
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no root `{name}` in {roots:#?}"))
    }

    /// Sorted, disjoint, none empty: what the graph's roots need.
    fn assert_disjoint(roots: &[RootInfo]) {
        for w in roots.windows(2) {
            assert!(
                w[0].size > 0 && w[0].addr + w[0].size <= w[1].addr,
                "{w:#?}"
            );
        }
    }

    #[test]
    fn a_c_global_is_named_with_its_type_and_line() {
        let wasm = sample("c/registry.wasm");
        let roots = static_variables(&wasm);
        assert_disjoint(&roots);
        let g = named(&roots, "g_registry");
        assert_eq!(g.kind, RootKind::Variable);
        assert_eq!(g.ty.as_deref(), Some("struct entry *"));
        assert_eq!(g.size, 4);
        assert_eq!(g.line, 32);
        assert!(
            g.file
                .as_deref()
                .is_some_and(|f| f.ends_with("samples/c/registry.c")),
            "{g:?}"
        );
        // Zero-initialised: past the data segments (wasm-ld emits no
        // `.bss` segment), in the first page of static data.
        let segments_end = crate::module::data_end(&wasm);
        assert!(
            g.addr >= segments_end && g.addr + g.size <= 0x10000,
            "{g:?}"
        );
        // libc's statics too, a struct's size from DWARF.
        let gm = named(&roots, "_gm_");
        assert_eq!(
            (gm.ty.as_deref(), gm.size),
            (Some("struct malloc_state"), 472)
        );
        let stdout = named(&roots, "stdout");
        assert_eq!(stdout.ty.as_deref(), Some("FILE *const"));
        // The read-only data no variable covers keeps its segment's name.
        assert!(roots
            .iter()
            .any(|r| r.kind == RootKind::Data && r.name == ".rodata"));
    }

    #[test]
    fn a_rust_thread_local_is_named_as_declared_with_a_readable_type() {
        let roots = static_variables(&sample("actor/actor-leaky.wasm"));
        assert_disjoint(&roots);
        let cache = named(&roots, "actor::CACHE");
        assert_eq!(cache.kind, RootKind::Variable);
        assert_eq!(cache.ty.as_deref(), Some("RefCell<Option<Cache>>"));
        // The borrow flag and the map's header (table and hasher keys).
        assert_eq!(cache.size, 40);
        assert_eq!(cache.line, 65);
        assert!(cache
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("samples/actor/src/lib.rs")));
        // Crates' statics keep their paths; vtables are no roots.
        let pow10 = named(&roots, "serde_json::de::POW10");
        assert_eq!(
            (pow10.ty.as_deref(), pow10.size),
            (Some("[f64; 309]"), 2472)
        );
        assert!(!roots.iter().any(|r| r.name.contains("vtable")));
    }

    #[test]
    fn without_dwarf_the_data_segments_name_the_static_data() {
        // No debug info, a name section naming the segments.
        let roots = static_variables(&sample("rust/leaky-release.wasm"));
        assert_disjoint(&roots);
        let names: Vec<(&str, RootKind)> =
            roots.iter().map(|r| (r.name.as_str(), r.kind)).collect();
        assert_eq!(
            names,
            vec![(".rodata", RootKind::Data), (".data", RootKind::Data)]
        );
        // Neither: nothing named (the scan's "static data" covers it all).
        assert!(static_variables(&sample("c/leaky.stripped.wasm")).is_empty());
    }

    /// Each function's name (name section) and code range (offsets in the
    /// code section's payload, as sites count them).
    fn function_ranges(wasm: &[u8]) -> Vec<(String, std::ops::Range<u64>)> {
        use wasmparser::{Name, Payload};
        let mut imported = 0u32;
        let mut code_start = 0usize;
        let mut bodies = Vec::new();
        let mut names: HashMap<u32, String> = HashMap::new();
        for p in wasmparser::Parser::new(0).parse_all(wasm) {
            match p.unwrap() {
                Payload::ImportSection(s) => {
                    for i in s.into_imports() {
                        if matches!(i.unwrap().ty, wasmparser::TypeRef::Func(_)) {
                            imported += 1;
                        }
                    }
                }
                Payload::CodeSectionStart { range, .. } => code_start = range.start,
                Payload::CodeSectionEntry(b) => bodies.push(b.range()),
                Payload::CustomSection(c) if c.name() == "name" => {
                    let r = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
                        c.data(),
                        c.data_offset(),
                    ));
                    for n in r {
                        if let Ok(Name::Function(map)) = n {
                            for f in map.into_iter().flatten() {
                                names.insert(
                                    f.index,
                                    heapscope_instrument::discover::demangle(f.name),
                                );
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let name = names
                    .get(&(i as u32 + imported))
                    .cloned()
                    .unwrap_or_default();
                let start = (r.start - code_start) as u64;
                (name, start..(r.end - code_start) as u64)
            })
            .collect()
    }

    /// The types `allocated_types` finds anywhere in the functions whose
    /// name starts with `prefix`, by function.
    fn allocated_in(wasm: &[u8], prefix: &str) -> Vec<(String, Vec<String>)> {
        let fns: Vec<(String, std::ops::Range<u64>)> = function_ranges(wasm)
            .into_iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .collect();
        let offsets: Vec<u64> = fns.iter().flat_map(|(_, r)| r.clone()).collect();
        let types = allocated_types(wasm, &offsets);
        let mut i = 0;
        fns.into_iter()
            .map(|(n, r)| {
                let mut ts: Vec<String> = types[i..i + (r.end - r.start) as usize]
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                i += (r.end - r.start) as usize;
                ts.sort();
                ts.dedup();
                (n, ts)
            })
            .collect()
    }

    #[test]
    fn rust_allocations_tell_their_type() {
        let wasm = sample("actor/actor-leaky.wasm");
        let found = allocated_in(&wasm, "actor::");
        let of = |f: &str| {
            found
                .iter()
                .find(|(n, _)| n == f)
                .map(|(_, ts)| ts.clone())
                .unwrap_or_else(|| panic!("no function {f}: {found:?}"))
        };
        // The key (a String's bytes) and the map's entries (hashbrown's
        // RawTable<(K, V)>, inlined into the insert).
        // (The `u8`: a Box<[u8]>'s drop, whose `T` DWARF gives as u8.)
        assert_eq!(of("actor::cache_insert"), ["[(String, Box<[u8]>)]", "u8"]);
        // vec![b' '; RECORD_BYTES]: a RawVec<u8>'s buffer.
        assert_eq!(of("actor::render_record"), ["[u8]"]);
        // Code outside the allocating generics tells nothing.
        assert_eq!(
            of("actor::_::<impl serde_core::ser::Serialize for actor::Reply>::serialize"),
            Vec::<String>::new()
        );
        // C has no such functions; without DWARF nothing is known.
        let c = sample("c/registry.wasm");
        assert!(allocated_types(&c, &[0, 100, 1000])
            .iter()
            .all(Option::is_none));
        assert_eq!(allocated_types(b"\0asm\x01\0\0\0", &[5]), [None]);
    }

    #[test]
    fn a_rust_static_split_into_pieces_is_named_in_each() {
        // LLVM keeps the fields of `SESSIONS: Mutex<Vec<Box<Session>>>` at
        // separate addresses (the poison flag as a value, the vector's
        // capacity, pointer, length): the pieces in memory are roots of
        // its name, the pointer to the vector's buffer among them.
        let wasm = sample("rust/sessions.wasm");
        let roots = static_variables(&wasm);
        assert_disjoint(&roots);
        let pieces: Vec<&RootInfo> = roots
            .iter()
            .filter(|r| r.name == "sessions::SESSIONS")
            .collect();
        assert_eq!(pieces.len(), 3, "{pieces:#?}");
        for p in &pieces {
            assert_eq!(p.ty.as_deref(), Some("Mutex<Vec<Box<Session>>>"));
            assert_eq!((p.size, p.line), (4, 39));
        }
        // What they allocate: the sessions (boxed), the Rc'd nodes.
        let found = allocated_in(&wasm, "sessions::");
        let of = |f: &str| found.iter().find(|(n, _)| n == f).map(|(_, t)| t.clone());
        // The vector's buffer: an array of boxes.
        assert_eq!(
            of("sessions::open_session").unwrap(),
            ["Session", "[Box<Session>]"]
        );
        assert_eq!(of("sessions::make_node").unwrap(), ["RefCell<Node>"]);
    }

    #[test]
    #[ignore]
    fn dump_allocated() {
        let Ok(path) = std::env::var("HEAPSCOPE_VARS_WASM") else {
            return;
        };
        let prefix = std::env::var("HEAPSCOPE_VARS_PREFIX").unwrap_or_default();
        let wasm = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        let found = allocated_in(&wasm, &prefix);
        let took = t.elapsed();
        for (n, ts) in &found {
            if !ts.is_empty() {
                println!("{n}: {ts:?}");
            }
        }
        println!("{} functions in {took:?}", found.len());
    }

    /// A module of only custom sections.
    fn with_customs(sections: &[(&str, &[u8])]) -> Vec<u8> {
        fn leb(out: &mut Vec<u8>, mut v: usize) {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    return;
                }
                out.push(b | 0x80);
            }
        }
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        for (name, data) in sections {
            let mut body = Vec::new();
            leb(&mut body, name.len());
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(data);
            out.push(0);
            leb(&mut out, body.len());
            out.extend(body);
        }
        out
    }

    #[test]
    fn malformed_dwarf_gives_what_reads_and_never_panics() {
        let wasm = sample("c/registry.wasm");
        let layout = Layout::of(&wasm);
        let dwarf: Vec<(&str, &[u8])> = layout
            .customs
            .iter()
            .filter(|(n, _)| n.starts_with(".debug_"))
            .copied()
            .collect();
        // Copied whole into a module of its own, it reads the same.
        let whole = static_variables(&with_customs(&dwarf));
        let g = named(&whole, "g_registry");
        assert_eq!(g.ty.as_deref(), Some("struct entry *"));
        let count = whole.len();
        // Cut short anywhere, or with bytes flipped, each section gives a
        // part of the variables (or none), never a panic or an overlap.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400 {
            let which = round % dwarf.len();
            let (name, data) = dwarf[which];
            let mut bad = data.to_vec();
            if round % 2 == 0 {
                bad.truncate((next() % (data.len() as u64 + 1)) as usize);
            } else {
                for _ in 0..1 + next() % 8 {
                    if !bad.is_empty() {
                        let at = (next() % bad.len() as u64) as usize;
                        bad[at] = next() as u8;
                    }
                }
            }
            let mut sections = dwarf.clone();
            sections[which] = (name, &bad);
            let roots = static_variables(&with_customs(&sections));
            assert_disjoint(&roots);
            assert!(roots.len() <= count + 64, "{name}: {}", roots.len());
        }
        // A type that is its own pointee, a unit that claims more bytes
        // than there are, nonsense: nothing named, no endless work.
        let info_junk: &[u8] = &[0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 0, 0, 4, 1, 2, 3];
        assert!(static_variables(&with_customs(&[(".debug_info", info_junk)])).is_empty());
        assert!(static_variables(&with_customs(&[(".debug_info", &[])])).is_empty());
    }

    #[test]
    fn a_type_that_refers_to_itself_ends() {
        // DWARF 4, one unit: abbrevs 1 = compile_unit (children), 2 =
        // variable (name string, type ref4, location exprloc), 3 =
        // pointer_type (type ref4, no size) pointing at itself, 4 =
        // typedef (name, type ref4) of the pointer.
        let abbrev: &[u8] = &[
            1, 0x11, 1, 0, 0, // compile_unit, children, no attributes
            2, 0x34, 0, 0x03, 0x08, 0x49, 0x13, 0x02, 0x18, 0, 0, // variable
            3, 0x0f, 0, 0x49, 0x13, 0, 0, // pointer_type
            4, 0x16, 0, 0x03, 0x08, 0x49, 0x13, 0, 0, // typedef
            0,
        ];
        let mut dies: Vec<u8> = vec![1];
        // The variable `v` at 0x1000, of type at offset X (patched below).
        let var_at = dies.len();
        dies.extend_from_slice(&[2, b'v', 0, 0, 0, 0, 0, 5, 0x03, 0x00, 0x10, 0, 0]);
        let ptr = 11 + dies.len();
        dies.extend_from_slice(&[3, 0, 0, 0, 0]);
        let tdef = 11 + dies.len();
        dies.extend_from_slice(&[4, b't', 0, 0, 0, 0, 0]);
        dies.push(0);
        dies[var_at + 3..var_at + 7].copy_from_slice(&(tdef as u32).to_le_bytes());
        let p = ptr - 11;
        dies[p + 1..p + 5].copy_from_slice(&(ptr as u32).to_le_bytes());
        let t = tdef - 11;
        dies[t + 3..t + 7].copy_from_slice(&(ptr as u32).to_le_bytes());
        let mut info: Vec<u8> = Vec::new();
        info.extend_from_slice(&((7 + dies.len()) as u32).to_le_bytes());
        info.extend_from_slice(&[4, 0, 0, 0, 0, 0, 4]);
        info.extend_from_slice(&dies);
        let roots = static_variables(&with_customs(&[
            (".debug_info", &info),
            (".debug_abbrev", abbrev),
        ]));
        // A pointer has the address size even when its pointee is unknown.
        assert_eq!(roots.len(), 1, "{roots:#?}");
        assert_eq!(
            (roots[0].name.as_str(), roots[0].addr, roots[0].size),
            ("v", 0x1000, 4)
        );
        assert_eq!(roots[0].ty.as_deref(), Some("t"));
    }

    /// The named roots of the module at `$HEAPSCOPE_VARS_WASM`, printed with
    /// the time they took: `HEAPSCOPE_VARS_WASM=x.wasm cargo test -p
    /// heapscope-collector variables::samples::dump -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn dump() {
        let Ok(path) = std::env::var("HEAPSCOPE_VARS_WASM") else {
            return;
        };
        let wasm = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        let roots = static_variables(&wasm);
        let took = t.elapsed();
        for r in &roots {
            println!(
                "{:#x} {:>8} {:?} {} : {} ({}:{})",
                r.addr,
                r.size,
                r.kind,
                r.name,
                r.ty.as_deref().unwrap_or("-"),
                r.file.as_deref().unwrap_or("-"),
                r.line
            );
        }
        println!("{} roots in {:?}", roots.len(), took);
    }
}
