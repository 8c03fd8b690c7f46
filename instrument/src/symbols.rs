//! Symbolising call sites against a module's name section and DWARF.
//!
//! The instrumenter does not symbolise: it copies the DWARF sections that
//! symbolising needs into the instrumented module under
//! [`abi::DWARF_SECTION_PREFIX`] (walrus drops `.debug_*` sections on emit,
//! and their code offsets would no longer match the rewritten code anyway)
//! and the collector symbolises a call site the first time a run reaches it,
//! against the original code offsets the site table keeps. A large module
//! has tens of thousands of call sites and a run reaches a few hundred, so
//! this is where the instrumenter's time went.

use crate::discover::demangle;
use gimli::{EndianArcSlice, LittleEndian};
use heapscope_trace::abi::{self, SiteFrame};
use std::collections::HashMap;
use std::sync::Arc;

type Reader = EndianArcSlice<LittleEndian>;

/// The DWARF sections addr2line reads (not locations, frames or the
/// accelerator tables: symbolising a code offset never needs them).
pub const DWARF_SECTIONS: [&str; 10] = [
    ".debug_abbrev",
    ".debug_addr",
    ".debug_aranges",
    ".debug_info",
    ".debug_line",
    ".debug_line_str",
    ".debug_ranges",
    ".debug_rnglists",
    ".debug_str",
    ".debug_str_offsets",
];

/// Where things are in a module's file: found by walking its section
/// headers only (no function body is read).
#[derive(Debug, Default)]
pub struct Layout<'a> {
    /// Where the code section's payload starts in the file (0 without one).
    pub code_start: usize,
    /// Custom sections, name and payload, in file order.
    pub customs: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Layout<'a> {
    /// Walk the sections of `wasm`; stops quietly at the first malformed
    /// one (the module's validation reports it).
    pub fn of(wasm: &'a [u8]) -> Layout<'a> {
        let mut layout = Layout::default();
        let mut parser = wasmparser::Parser::new(0);
        let mut offset = 0;
        while offset < wasm.len() {
            let Ok(wasmparser::Chunk::Parsed { consumed, payload }) =
                parser.parse(&wasm[offset..], true)
            else {
                break;
            };
            offset += consumed;
            match payload {
                wasmparser::Payload::CodeSectionStart { range, size, .. } => {
                    layout.code_start = range.start;
                    parser.skip_section();
                    offset += size as usize;
                }
                wasmparser::Payload::CustomSection(c) => layout.customs.push((c.name(), c.data())),
                wasmparser::Payload::ModuleSection { .. }
                | wasmparser::Payload::ComponentSection { .. }
                | wasmparser::Payload::End(_) => break,
                _ => {}
            }
        }
        layout
    }

    /// The payload of the custom section `name`, if there is one.
    pub fn custom(&self, name: &str) -> Option<&'a [u8]> {
        self.customs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }
}

/// Looks up source frames for code offsets of one module. Owns its data, so
/// a recorder can keep it for the whole run.
pub struct Symbolizer {
    ctx: addr2line::Context<Reader>,
}

impl Symbolizer {
    /// A symbolizer over the DWARF sections of `layout` named
    /// `prefix` + `.debug_*`: `""` for a module's own DWARF,
    /// [`abi::DWARF_SECTION_PREFIX`] for the copy in an instrumented module.
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
        Some(Symbolizer { ctx })
    }

    /// Frames at code offset `addr` (relative to the code section payload),
    /// innermost first. `fallback` names the containing function when DWARF
    /// has no name for it. Never empty.
    pub fn frames(&self, addr: u64, fallback: &str) -> Vec<SiteFrame> {
        let mut out = Vec::new();
        if let Ok(mut iter) = self.ctx.find_frames(addr).skip_all_loads() {
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

/// The custom sections to add to an instrumented module so that the
/// collector can symbolise its sites: each DWARF section symbolising needs,
/// renamed with [`abi::DWARF_SECTION_PREFIX`].
pub fn dwarf_copy(layout: &Layout<'_>) -> Vec<(String, Vec<u8>)> {
    if layout.custom(".debug_info").is_none() {
        return Vec::new();
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, data) in &layout.customs {
        let renamed = format!("{}{name}", abi::DWARF_SECTION_PREFIX);
        if DWARF_SECTIONS.contains(name) && !out.iter().any(|(n, _)| *n == renamed) {
            out.push((renamed, data.to_vec()));
        }
    }
    out
}
