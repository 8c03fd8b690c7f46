//! Symbolising call sites: the DWARF of the original module (or the copy
//! an instrumented module carries under [`heapscope_trace::abi::DWARF_SECTION_PREFIX`])
//! turns a site's code offset into source frames, file and line, inlined
//! functions included. Sites are symbolised the first time a run reaches
//! them (see [`crate::recorder`]).

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
    ctx: addr2line::Context<Reader>,
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
