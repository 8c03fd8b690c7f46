//! Where things are in a module's file, and the DWARF an instrumented
//! module carries for symbolising.
//!
//! The instrumenter does not symbolise: it copies the DWARF sections that
//! symbolising needs into the instrumented module under
//! [`abi::DWARF_SECTION_PREFIX`] (walrus drops `.debug_*` sections on emit,
//! and their code offsets would no longer match the rewritten code anyway)
//! and the collector (`heapscope_collector::symbolize`) symbolises a call
//! site the first time a run reaches it,
//! against the original code offsets the site table keeps. A large module
//! has tens of thousands of call sites and a run reaches a few hundred, so
//! this is where the instrumenter's time went.

use heapscope_trace::abi;

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
