//! Symbolising call sites against the original module's name section and
//! DWARF, at instrumentation time, so the site table carries source frames
//! and nothing downstream needs the original module.

use crate::discover::demangle;
use gimli::{EndianSlice, LittleEndian};
use heapscope_trace::abi::SiteFrame;
use std::collections::HashMap;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Looks up source frames for code offsets of one module.
pub struct Symbolizer<'a> {
    ctx: Option<addr2line::Context<Slice<'a>>>,
    /// Where the code section's payload starts in the file.
    pub code_start: usize,
}

impl<'a> Symbolizer<'a> {
    /// Read the DWARF sections of `wasm`, if it has any. Broken DWARF is not
    /// an error: sites then fall back to name-section names.
    pub fn new(wasm: &'a [u8]) -> Symbolizer<'a> {
        let mut sections: HashMap<&'a str, &'a [u8]> = HashMap::new();
        let mut code_start = 0;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(wasmparser::Payload::CustomSection(c)) if c.name().starts_with(".debug_") => {
                    sections.insert(c.name(), c.data());
                }
                Ok(wasmparser::Payload::CodeSectionStart { range, .. }) => code_start = range.start,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let ctx = if sections.contains_key(".debug_info") {
            let dwarf = gimli::Dwarf::load(|id| -> Result<Slice<'a>, gimli::Error> {
                Ok(EndianSlice::new(
                    sections.get(id.name()).copied().unwrap_or(&[]),
                    LittleEndian,
                ))
            });
            dwarf
                .ok()
                .and_then(|d| addr2line::Context::from_dwarf(d).ok())
        } else {
            None
        };
        Symbolizer { ctx, code_start }
    }

    /// Whether the module has usable DWARF.
    pub fn has_dwarf(&self) -> bool {
        self.ctx.is_some()
    }

    /// Frames at code offset `addr` (relative to the code section payload),
    /// innermost first. `fallback` names the containing function when DWARF
    /// has no name for it. Never empty.
    pub fn frames(&self, addr: u64, fallback: &str) -> Vec<SiteFrame> {
        let mut out = Vec::new();
        if let Some(ctx) = &self.ctx {
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
