//! Symbolising call sites: the DWARF of the original module (or the copy
//! an instrumented module carries under [`heapscope_trace::abi::DWARF_SECTION_PREFIX`])
//! turns a site's code offset into source frames, file and line, inlined
//! functions included; without DWARF, a source map beside the module
//! (see [`crate::sourcemap`]) gives file and line. Sites are symbolised the
//! first time a run reaches them (see [`crate::recorder`]).

use gimli::{EndianArcSlice, LittleEndian};
use heapscope_instrument::discover::demangle;
use heapscope_instrument::symbols::{Layout, DWARF_SECTIONS};
use heapscope_trace::abi::SiteFrame;
use std::collections::HashMap;
use std::sync::Arc;

type Reader = EndianArcSlice<LittleEndian>;

/// Looks up source frames for code offsets of one module. Owns its data, so
/// a recorder can keep it for the whole run.
pub struct Symbolizer {
    /// The module's DWARF.
    ctx: Option<addr2line::Context<Reader>>,
    /// Without DWARF, its source map.
    map: Option<MapView>,
}

/// A source map and what its lookups need from the module.
struct MapView {
    map: crate::sourcemap::SourceMap,
    /// Where the code section's payload starts in the file: the map's
    /// offsets are the file's, sites' are the payload's.
    code_start: u64,
    /// Each function body's file offsets, in order.
    bodies: Vec<std::ops::Range<u64>>,
}

impl Symbolizer {
    /// A symbolizer over the DWARF sections of `layout` named
    /// `prefix` + `.debug_*`: `""` for a module's own DWARF,
    /// [`heapscope_trace::abi::DWARF_SECTION_PREFIX`] for the copy in an instrumented module.
    /// `None` without `.debug_info`, or when the DWARF is too broken to read
    /// (sites then keep their name-section names).
    pub fn new(layout: &Layout<'_>, prefix: &str) -> Option<Symbolizer> {
        let mut sections: HashMap<&str, Arc<[u8]>> = HashMap::new();
        for (name, data) in &layout.customs {
            if let Some(base) = name.strip_prefix(prefix) {
                if DWARF_SECTIONS.contains(&base) {
                    sections.entry(base).or_insert_with(|| Arc::from(*data));
                }
            }
        }
        if !sections.contains_key(".debug_info") {
            return None;
        }
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
            let data = sections.get(id.name()).unwrap_or(&empty).clone();
            Ok(EndianArcSlice::new(data, LittleEndian))
        })
        .ok()?;
        let ctx = addr2line::Context::from_dwarf(dwarf).ok()?;
        Some(Symbolizer {
            ctx: Some(ctx),
            map: None,
        })
    }

    /// A symbolizer over the source map the module `wasm` at `path` (laid
    /// out as `layout`) names, when it has one that reads.
    pub fn from_source_map(
        path: &std::path::Path,
        wasm: &[u8],
        layout: &Layout<'_>,
    ) -> Option<Symbolizer> {
        let url = heapscope_instrument::symbols::source_map_url(layout)?;
        let map = crate::sourcemap::SourceMap::at(path, url)?;
        Some(Symbolizer {
            ctx: None,
            map: Some(MapView {
                map,
                code_start: layout.code_start as u64,
                bodies: heapscope_instrument::symbols::code_bodies(wasm),
            }),
        })
    }

    /// A symbolizer over the source map the original of the instrumented
    /// module at `path` named, through the note the instrumenter kept of
    /// it ([`heapscope_trace::abi::SOURCE_MAP_SECTION`]): the map is looked
    /// for beside the instrumented module.
    pub fn from_source_map_note(path: &std::path::Path, layout: &Layout<'_>) -> Option<Symbolizer> {
        let note = layout.custom(heapscope_trace::abi::SOURCE_MAP_SECTION)?;
        let (url, code_start, bodies) = heapscope_instrument::symbols::read_source_map_note(note)?;
        let map = crate::sourcemap::SourceMap::at(path, url)?;
        Some(Symbolizer {
            ctx: None,
            map: Some(MapView {
                map,
                code_start,
                bodies,
            }),
        })
    }

    /// Frames at code offset `addr` (relative to the code section payload),
    /// innermost first. `fallback` names the containing function when DWARF
    /// has no name for it. Never empty.
    pub fn frames(&self, addr: u64, fallback: &str) -> Vec<SiteFrame> {
        let mut out = Vec::new();
        if let Some(v) = &self.map {
            let at = v.code_start.saturating_add(addr);
            let body = v
                .bodies
                .partition_point(|b| b.start <= at)
                .checked_sub(1)
                .map(|i| v.bodies[i].clone())
                .filter(|b| at < b.end);
            let (file, line, column) = body
                .and_then(|b| v.map.lookup_call(at, b))
                .map_or((None, 0, 0), |(f, l, c)| (Some(f.to_string()), l, c));
            return vec![SiteFrame {
                function: fallback.to_string(),
                file,
                line,
                column,
            }];
        }
        let Some(ctx) = &self.ctx else {
            return vec![SiteFrame {
                function: fallback.to_string(),
                file: None,
                line: 0,
                column: 0,
            }];
        };
        if let Ok(mut iter) = ctx.find_frames(addr).skip_all_loads() {
            while let Ok(Some(f)) = iter.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.raw_name().ok())
                    .map(|n| demangle(&n))
                    .unwrap_or_else(|| fallback.to_string());
                let (file, line, column) = match &f.location {
                    Some(l) => (
                        l.file.map(str::to_string),
                        l.line.unwrap_or(0),
                        l.column.unwrap_or(0),
                    ),
                    None => (None, 0, 0),
                };
                out.push(SiteFrame {
                    function,
                    file,
                    line,
                    column,
                });
            }
        }
        if out.is_empty() {
            out.push(SiteFrame {
                function: fallback.to_string(),
                file: None,
                line: 0,
                column: 0,
            });
        } else if let Some(last) = out.last_mut() {
            // The outermost frame is the function that holds the call. When
            // DWARF only has its short name (`insert` for
            // `leaky::Cache::insert`, with line-tables-only debug info), the
            // name section's full path is better.
            if fallback.ends_with(&format!("::{}", last.function)) {
                last.function = fallback.to_string();
            }
        }
        out
    }
}
