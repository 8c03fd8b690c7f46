//! Source maps of wasm modules (version 3, as AssemblyScript's `asc
//! --sourceMap` and emscripten's `-gsource-map` write them): a module
//! without DWARF whose `sourceMappingURL` section names a map file beside
//! it gets its call sites' source file, line and column from the map.
//!
//! A wasm map has one generated line; a segment's generated column is a
//! byte offset in the module file. The map is the user's file, so not
//! trusted: anything malformed makes it unused (names only), never a
//! failed run.

use std::path::Path;

/// The largest map file read: maps of the largest modules are tens of
/// megabytes.
const MAX_MAP_BYTES: u64 = 1 << 30;

/// A parsed map: its segments by module offset.
#[derive(Debug, Clone)]
pub struct SourceMap {
    /// Source paths, as the map lists them.
    sources: Vec<String>,
    /// `(module offset, source, line, column)`, lines and columns from 1,
    /// sorted by offset; `source == NONE` for an offset with no source.
    segments: Vec<(u64, u32, u32, u32)>,
}

const NONE: u32 = u32::MAX;

impl SourceMap {
    /// The map at `url`, named by the module at `path` (in its
    /// `sourceMappingURL` section, or the note an instrumented module
    /// keeps of it), when `url` is a relative file path (no scheme, no
    /// absolute path) and the file beside the module reads and parses;
    /// otherwise `None`, said in the log.
    pub fn at(path: &Path, url: &str) -> Option<SourceMap> {
        if url.contains("://") || url.starts_with('/') || url.starts_with("data:") {
            tracing::info!("source map `{url}` is not a file beside the module: not read");
            return None;
        }
        let file = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(url.trim_start_matches("./"));
        let read = std::fs::metadata(&file).and_then(|m| {
            if m.len() > MAX_MAP_BYTES {
                Err(std::io::Error::other("larger than 1 GiB"))
            } else {
                std::fs::read(&file)
            }
        });
        match read
            .map_err(|e| e.to_string())
            .and_then(|b| SourceMap::parse(&b))
        {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(
                    "source map `{}` not used ({e}): stacks keep function names only",
                    file.display()
                );
                None
            }
        }
    }

    /// Parse a version 3 map.
    pub fn parse(json: &[u8]) -> Result<SourceMap, String> {
        #[derive(serde::Deserialize)]
        struct Raw {
            version: u32,
            #[serde(default)]
            sources: Vec<Option<String>>,
            mappings: String,
        }
        let raw: Raw =
            serde_json::from_slice(json).map_err(|e| format!("not a source map: {e}"))?;
        if raw.version != 3 {
            return Err(format!("version {} (only 3 is read)", raw.version));
        }
        let sources: Vec<String> = raw
            .sources
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let mut segments = Vec::new();
        // Generated column (reset each line), source, line, column: deltas
        // from the previous segment's.
        let (mut col, mut src, mut line, mut scol) = (0i64, 0i64, 0i64, 0i64);
        for (l, group) in raw.mappings.split(';').enumerate() {
            if l > 0 {
                // A wasm map has one line; a second means columns restart,
                // which no module offset can follow.
                if !group.is_empty() {
                    return Err("more than one generated line".into());
                }
                continue;
            }
            for segment in group.split(',').filter(|s| !s.is_empty()) {
                let fields = vlq(segment).ok_or_else(|| format!("bad segment `{segment}`"))?;
                let add = |a: i64, b: i64| a.checked_add(b).ok_or("a field out of range");
                col = add(col, fields[0])?;
                let offset = u64::try_from(col).map_err(|_| "negative offset")?;
                if fields.len() >= 4 {
                    src = add(src, fields[1])?;
                    line = add(line, fields[2])?;
                    scol = add(scol, fields[3])?;
                    let source = u32::try_from(src)
                        .ok()
                        .filter(|s| (*s as usize) < sources.len())
                        .ok_or("source index out of range")?;
                    let l = u32::try_from(line + 1).map_err(|_| "negative line")?;
                    let c = u32::try_from(scol + 1).map_err(|_| "negative column")?;
                    segments.push((offset, source, l, c));
                } else {
                    segments.push((offset, NONE, 0, 0));
                }
            }
        }
        segments.sort_by_key(|s| s.0);
        Ok(SourceMap { sources, segments })
    }

    /// The source file, line and column of the module byte `offset`: the
    /// segment at or before it, when that has a source.
    #[cfg(test)]
    fn lookup(&self, offset: u64) -> Option<(&str, u32, u32)> {
        let i = self
            .segments
            .partition_point(|s| s.0 <= offset)
            .checked_sub(1)?;
        self.source_of(i)
    }

    /// As [`Self::lookup`], for a call at `offset` in the function body
    /// `body` (module offsets): when the segment there has no source (the
    /// compiler gave the call none: binaryen marks the statement around
    /// it, after it), the next segment with a source in the same body,
    /// else the last one before it. Never a line of another function.
    pub fn lookup_call(&self, offset: u64, body: std::ops::Range<u64>) -> Option<(&str, u32, u32)> {
        let at = self.segments.partition_point(|s| s.0 <= offset);
        if let Some(i) = at
            .checked_sub(1)
            .filter(|i| self.segments[*i].0 >= body.start)
        {
            if let Some(found) = self.source_of(i) {
                return Some(found);
            }
        }
        let after = self.segments[at..]
            .iter()
            .take_while(|s| s.0 < body.end)
            .position(|s| s.1 != NONE)
            .map(|k| at + k);
        let before = || {
            self.segments[..at]
                .iter()
                .rposition(|s| s.1 != NONE)
                .filter(|i| self.segments[*i].0 >= body.start)
        };
        self.source_of(after.or_else(before)?)
    }

    fn source_of(&self, i: usize) -> Option<(&str, u32, u32)> {
        let (_, source, line, column) = *self.segments.get(i)?;
        if source == NONE {
            return None;
        }
        Some((self.sources[source as usize].as_str(), line, column))
    }
}

/// The Base64 VLQ fields of one segment; `None` when malformed or with a
/// field count a segment cannot have (1, 4 or 5).
fn vlq(segment: &str) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(5);
    let (mut value, mut shift) = (0i64, 0u32);
    for b in segment.bytes() {
        let digit = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as i64;
        if shift > 60 {
            return None;
        }
        value |= (digit & 31) << shift;
        if digit & 32 != 0 {
            shift += 5;
            continue;
        }
        let magnitude = value >> 1;
        out.push(if value & 1 == 1 {
            -magnitude
        } else {
            magnitude
        });
        (value, shift) = (0, 0);
        if out.len() > 5 {
            return None;
        }
    }
    (shift == 0 && matches!(out.len(), 1 | 4 | 5)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_to_offsets_sources_lines_and_columns() {
        // Offsets 10, 15, 20: `index.ts` 3:5, nothing, `lib.ts` 1:1 (all
        // fields deltas: +10, +5, +5; source +1, line -2, column -4).
        let map =
            br#"{"version":3,"sources":["index.ts","lib.ts"],"names":[],"mappings":"UAEI,K,KCFJ"}"#;
        let m = SourceMap::parse(map).unwrap();
        assert_eq!(m.lookup(9), None);
        assert_eq!(m.lookup(10), Some(("index.ts", 3, 5)));
        assert_eq!(m.lookup(14), Some(("index.ts", 3, 5)));
        assert_eq!(m.lookup(15), None);
        assert_eq!(m.lookup(1_000), Some(("lib.ts", 1, 1)));
        // A call at 16, where the map has no source: the next segment with
        // one in its function, else the one before; never another's.
        assert_eq!(m.lookup_call(16, 12..30), Some(("lib.ts", 1, 1)));
        assert_eq!(m.lookup_call(16, 12..20), None);
        assert_eq!(m.lookup_call(16, 10..20), Some(("index.ts", 3, 5)));
        assert_eq!(m.lookup_call(12, 10..20), Some(("index.ts", 3, 5)));
    }

    #[test]
    fn a_malformed_map_is_refused_not_trusted() {
        for bad in [
            &br#"{"version":3,"sources":[],"mappings":"AAAA"}"#[..],
            br#"{"version":2,"sources":["a"],"mappings":"AAAA"}"#,
            br#"{"version":3,"sources":["a"],"mappings":"AA"}"#,
            br#"{"version":3,"sources":["a"],"mappings":"A!AA"}"#,
            br#"{"version":3,"sources":["a"],"mappings":"AAAA;AAAA"}"#,
            br#"{"version":3,"sources":["a"],"mappings":"////////////////////////g"}"#,
            br#"{"version":3,"sources":["a"],"mappings":"D"}"#,
            // Deltas that add up past i64.
            br#"{"version":3,"sources":["a"],"mappings":"+///////////H,+///////////H,+///////////H"}"#,
            b"not json",
        ] {
            assert!(
                SourceMap::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn any_bytes_in_the_mappings_parse_or_are_refused_never_panic() {
        // A small xorshift over the Base64 alphabet and separators.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/,;!";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut mappings = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                mappings.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let json = format!(r#"{{"version":3,"sources":["a","b"],"mappings":"{mappings}"}}"#);
            if let Ok(m) = SourceMap::parse(json.as_bytes()) {
                for at in [0, 1, 31, 1 << 20, u64::MAX] {
                    let _ = m.lookup_call(at, 0..u64::MAX);
                }
            }
        }
    }
}
