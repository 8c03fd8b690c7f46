//! Source maps of wasm modules (version 3, as AssemblyScript's `asc
//! --sourceMap` and emscripten's `-gsource-map` write them): a module
//! without DWARF whose `sourceMappingURL` section names a map file beside
//! it gets its call sites' source file, line and column from the map.
//!
//! A wasm map has one generated line; a segment's generated column is a
//! byte offset in the module file. The map is the user's file, so not
//! trusted: anything malformed makes it unused (names only), never a
//! failed run.
//!
//! # What is read
//!
//! The module names its map, so a module from elsewhere must not make
//! heapscope read the host's files. [`read_beside`] reads a map only when
//! all of these hold, and otherwise refuses it with one warning saying why
//! (the run keeps function names and is otherwise whole):
//!
//! - the URL is a relative path: no scheme (`http:`, `data:`, `file:` …:
//!   anything with a `:` before its first `/`), no leading `/`, no `..`
//!   component. It is taken literally (no percent-decoding);
//! - the file it names, all symbolic links resolved, lies inside the
//!   module's own folder (that folder, links resolved);
//! - it is a regular file (not a device such as `/dev/zero`, a FIFO or a
//!   terminal), checked before it is opened and again on the opened file;
//! - it holds at most [`MAX_MAP_BYTES`], read through a reader that stops
//!   one byte past that bound whatever the file's metadata says.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest map file read (64 MiB): the maps of the largest modules
/// are tens of megabytes.
pub const MAX_MAP_BYTES: u64 = 64 << 20;

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
    /// keeps of it), when [`read_beside`] reads it and it parses;
    /// otherwise `None`, with one warning saying why.
    pub fn at(path: &Path, url: &str) -> Option<SourceMap> {
        match read_beside(path, url).and_then(|b| SourceMap::parse(&b)) {
            Ok(m) => Some(m),
            Err(e) => {
                // The URL is the module's: no control character reaches
                // the terminal.
                let e: String = e
                    .chars()
                    .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                    .collect();
                tracing::warn!(
                    "source map `{}` of `{}` not used: {e}; stacks keep function names only",
                    url.escape_debug(),
                    path.display()
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

/// The bytes of the map file `url` names for the module at `module`, when
/// the module's folder holds it (see the module docs for each check);
/// otherwise why not.
pub fn read_beside(module: &Path, url: &str) -> Result<Vec<u8>, String> {
    let rel = confined(url)?;
    let folder = module
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = std::fs::canonicalize(folder).map_err(|e| {
        format!(
            "cannot resolve the module's folder `{}`: {e}",
            folder.display()
        )
    })?;
    let named = folder.join(&rel);
    let file = std::fs::canonicalize(&named)
        .map_err(|e| format!("cannot open `{}`: {e}", named.display()))?;
    if !file.starts_with(&folder) {
        return Err(format!(
            "it leads outside the module's folder `{}` (to `{}`); only a file in that folder is read",
            folder.display(),
            file.display()
        ));
    }
    let regular = |m: std::io::Result<std::fs::Metadata>| match m {
        Ok(m) if m.is_file() => Ok(m),
        Ok(_) => Err(format!(
            "`{}` is not a regular file; only a regular file is read",
            file.display()
        )),
        Err(e) => Err(format!("cannot open `{}`: {e}", file.display())),
    };
    let too_big = || {
        format!(
            "`{}` is larger than {} MiB",
            file.display(),
            MAX_MAP_BYTES >> 20
        )
    };
    // Checked before opening: opening a FIFO would wait for a writer.
    if regular(std::fs::metadata(&file))?.len() > MAX_MAP_BYTES {
        return Err(too_big());
    }
    let f = crate::files::open_without_waiting(&file)
        .map_err(|e| format!("cannot open `{}`: {e}", file.display()))?;
    // And again on what was opened: the file may have been replaced.
    regular(f.metadata())?;
    let mut bytes = Vec::new();
    f.take(MAX_MAP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    if bytes.len() as u64 > MAX_MAP_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// `url` as a path relative to the module's folder that cannot leave it
/// lexically: no scheme, not absolute, no `..`; otherwise why not.
fn confined(url: &str) -> Result<PathBuf, String> {
    let scheme = url.find(':').is_some_and(|c| !url[..c].contains('/'));
    if scheme {
        return Err("it is a URL, not a file path relative to the module".into());
    }
    let mut rel = PathBuf::new();
    for c in Path::new(url).components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(
                    "its path has a `..` component; only a file in the module's folder is read"
                        .into(),
                )
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(
                    "it is an absolute path; only a file in the module's folder is read".into(),
                )
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err("it names no file".into());
    }
    Ok(rel)
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

    /// A module's source map URL never reads outside the module's folder,
    /// nor a file that is not a regular one, nor more than the cap.
    #[test]
    fn a_map_outside_the_modules_folder_or_not_a_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let folder = root.join("app");
        std::fs::create_dir_all(folder.join("maps")).unwrap();
        let module = folder.join("app.wasm");
        std::fs::write(folder.join("app.wasm.map"), b"{}").unwrap();
        std::fs::write(folder.join("maps/app.map"), b"[]").unwrap();
        std::fs::write(root.join("secret.map"), b"secret").unwrap();
        for ok in [
            "app.wasm.map",
            "./app.wasm.map",
            "maps/app.map",
            "maps/./app.map",
        ] {
            assert!(read_beside(&module, ok).is_ok(), "{ok}");
        }
        let zero = "../".repeat(32) + "dev/zero";
        let stdin = "../".repeat(32) + "proc/self/fd/0";
        let refused = |url: &str| read_beside(&module, url).unwrap_err();
        let dotdot = "its path has a `..` component; only a file in the module's folder is read";
        assert_eq!(refused(&zero), dotdot);
        assert_eq!(refused(&stdin), dotdot);
        assert_eq!(refused("../secret.map"), dotdot);
        assert_eq!(refused("maps/../../secret.map"), dotdot);
        let absolute = "it is an absolute path; only a file in the module's folder is read";
        assert_eq!(refused("/etc/passwd"), absolute);
        assert_eq!(refused("/dev/zero"), absolute);
        for url in [
            "file:///etc/passwd",
            "http://example.com/a.map",
            "data:application/json,{}",
            "file:app.wasm.map",
        ] {
            assert_eq!(
                refused(url),
                "it is a URL, not a file path relative to the module",
                "{url}"
            );
        }
        assert_eq!(refused("."), "it names no file");
        // Links are followed, and must stay in the folder.
        std::os::unix::fs::symlink("/etc/passwd", folder.join("passwd.map")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", folder.join("zero.map")).unwrap();
        std::os::unix::fs::symlink("../secret.map", folder.join("up.map")).unwrap();
        std::os::unix::fs::symlink("app.wasm.map", folder.join("alias.map")).unwrap();
        let outside = |to: &str| {
            format!(
                "it leads outside the module's folder `{}` (to `{to}`); only a file in that folder is read",
                folder.display()
            )
        };
        assert_eq!(refused("passwd.map"), outside("/etc/passwd"));
        assert_eq!(refused("zero.map"), outside("/dev/zero"));
        assert_eq!(
            refused("up.map"),
            outside(&root.join("secret.map").display().to_string())
        );
        assert_eq!(read_beside(&module, "alias.map").unwrap(), b"{}");
        // In the folder but not a regular file: a folder, a FIFO (opening
        // it would wait for a writer).
        assert_eq!(
            refused("maps"),
            format!(
                "`{}` is not a regular file; only a regular file is read",
                folder.join("maps").display()
            )
        );
        let fifo = folder.join("fifo.map");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            refused("fifo.map"),
            format!(
                "`{}` is not a regular file; only a regular file is read",
                fifo.display()
            )
        );
        // One byte over the cap (a sparse file: nothing is written).
        let big = folder.join("big.map");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_MAP_BYTES + 1)
            .unwrap();
        assert_eq!(
            refused("big.map"),
            format!("`{}` is larger than 64 MiB", big.display())
        );
        assert!(SourceMap::at(&module, &zero).is_none());
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
