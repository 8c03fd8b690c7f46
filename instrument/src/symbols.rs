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
use heapscope_trace::varint::put_u64;

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

/// Each function body's offsets in the file `wasm`, in order.
pub fn code_bodies(wasm: &[u8]) -> Vec<std::ops::Range<u64>> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::CodeSectionEntry(body)) => {
                let r = body.range();
                Some(r.start as u64..r.end as u64)
            }
            _ => None,
        })
        .collect()
}

/// The URL of the source map a module names (its `sourceMappingURL`
/// section: a wasm string).
pub fn source_map_url<'a>(layout: &Layout<'a>) -> Option<&'a str> {
    let data = layout.custom("sourceMappingURL")?;
    wasmparser::BinaryReader::new(data, 0).read_string().ok()
}

/// The [`abi::SOURCE_MAP_SECTION`] payload for the module `wasm`: when it
/// names a source map and has no DWARF (which symbolising prefers).
pub fn source_map_note(wasm: &[u8], layout: &Layout<'_>) -> Option<Vec<u8>> {
    if layout.custom(".debug_info").is_some() {
        return None;
    }
    let url = source_map_url(layout)?;
    let mut out = Vec::new();
    put_u64(&mut out, url.len() as u64);
    out.extend_from_slice(url.as_bytes());
    let start = layout.code_start as u64;
    put_u64(&mut out, start);
    let bodies = code_bodies(wasm);
    put_u64(&mut out, bodies.len() as u64);
    for b in bodies {
        put_u64(&mut out, b.start.saturating_sub(start));
        put_u64(&mut out, b.end - b.start);
    }
    Some(out)
}

/// Read an [`abi::SOURCE_MAP_SECTION`] payload: the URL, where the
/// original's code payload started, and its function bodies' file offsets.
/// `None` when malformed.
pub fn read_source_map_note(data: &[u8]) -> Option<(&str, u64, Vec<std::ops::Range<u64>>)> {
    let mut r = wasmparser::BinaryReader::new(data, 0);
    let url = r.read_string().ok()?;
    let start = r.read_var_u64().ok()?;
    let n = r.read_var_u64().ok()?;
    let mut bodies = Vec::new();
    for _ in 0..n {
        let at = start.checked_add(r.read_var_u64().ok()?)?;
        bodies.push(at..at.checked_add(r.read_var_u64().ok()?)?);
    }
    Some((url, start, bodies))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_map_note_reads_back_and_damage_is_refused() {
        let wasm = wat::parse_str(
            r#"(module (func) (func (drop (i32.const 7))) (@custom "sourceMappingURL" "\0capp.wasm.map"))"#,
        )
        .unwrap();
        let layout = Layout::of(&wasm);
        let note = source_map_note(&wasm, &layout).expect("a map, no DWARF");
        let (url, start, bodies) = read_source_map_note(&note).unwrap();
        assert_eq!((url, start), ("app.wasm.map", layout.code_start as u64));
        assert_eq!(bodies, code_bodies(&wasm));
        assert_eq!(bodies.len(), 2);
        // Every truncation is refused, never a panic.
        for n in 0..note.len() {
            assert!(read_source_map_note(&note[..n]).is_none(), "{n}");
        }
    }
}
