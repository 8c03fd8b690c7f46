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
    /// The module's DWARF, not parsed yet: a run that found its sites in
    /// the cache ([`Symbolizer::with_cached_sites`]) parses it only for a
    /// site no run reached before.
    unparsed: std::cell::OnceCell<Option<addr2line::Context<Reader>>>,
    dwarf: std::cell::Cell<Option<gimli::Dwarf<Reader>>>,
    /// Without DWARF, its source map.
    map: Option<MapView>,
    /// Sites symbolised by earlier runs of the module and this one, kept
    /// in the module cache when this one added any.
    cached: Option<CachedSites>,
}

/// Symbolised sites, by (code offset, fallback name), and where they are
/// kept.
struct CachedSites {
    frames: std::cell::RefCell<HashMap<(u64, String), Vec<SiteFrame>>>,
    added: std::cell::Cell<bool>,
    cache: crate::cache::Cache,
    key: crate::cache::EntryKey,
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
    /// The DWARF sections of `layout` named `prefix` + `.debug_*`, loaded
    /// (not parsed); `None` without `.debug_info`.
    fn dwarf(layout: &Layout<'_>, prefix: &str) -> Option<gimli::Dwarf<Reader>> {
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
        gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
            let data = sections.get(id.name()).unwrap_or(&empty).clone();
            Ok(EndianArcSlice::new(data, LittleEndian))
        })
        .ok()
    }

    /// A symbolizer over the DWARF sections of `layout` named
    /// `prefix` + `.debug_*`: `""` for a module's own DWARF,
    /// [`heapscope_trace::abi::DWARF_SECTION_PREFIX`] for the copy in an instrumented module.
    /// `None` without `.debug_info`, or when the DWARF is too broken to read
    /// (sites then keep their name-section names).
    pub fn new(layout: &Layout<'_>, prefix: &str) -> Option<Symbolizer> {
        let ctx = addr2line::Context::from_dwarf(Self::dwarf(layout, prefix)?).ok()?;
        Some(Symbolizer {
            ctx: Some(ctx),
            unparsed: std::cell::OnceCell::new(),
            dwarf: std::cell::Cell::new(None),
            map: None,
            cached: None,
        })
    }

    /// [`Symbolizer::new`], with the sites earlier runs of this module
    /// symbolised, kept in `cache` beside its entry `key`
    /// ([`crate::cache::Cache::load_beside`]); the sites this run adds are
    /// kept there when the symbolizer is dropped. With sites kept, the
    /// DWARF is parsed only when a site is not among them (an earlier run
    /// parsed the same DWARF, so it reads); without, at once, as `new`.
    pub(crate) fn with_cached_sites(
        layout: &Layout<'_>,
        prefix: &str,
        cache: &crate::cache::Cache,
        key: &crate::cache::EntryKey,
    ) -> Option<Symbolizer> {
        let kept = cache
            .load_beside(key, crate::cache::Beside::Sites)
            .and_then(|b| decode_sites(&b));
        if let Some(k) = &kept {
            tracing::info!("{} symbolised call sites from the cache", k.len());
        }
        let mut sym = match kept {
            Some(ref frames) if !frames.is_empty() => Symbolizer {
                ctx: None,
                unparsed: std::cell::OnceCell::new(),
                dwarf: std::cell::Cell::new(Some(Self::dwarf(layout, prefix)?)),
                map: None,
                cached: None,
            },
            _ => Symbolizer::new(layout, prefix)?,
        };
        sym.cached = Some(CachedSites {
            frames: std::cell::RefCell::new(kept.unwrap_or_default()),
            added: std::cell::Cell::new(false),
            cache: cache.clone(),
            key: key.clone(),
        });
        Some(sym)
    }

    /// The DWARF context: parsed at once, or on first use.
    fn context(&self) -> Option<&addr2line::Context<Reader>> {
        if let Some(ctx) = &self.ctx {
            return Some(ctx);
        }
        self.unparsed
            .get_or_init(|| {
                let dwarf = self.dwarf.take()?;
                tracing::info!("reading the DWARF for a call site no run symbolised before");
                addr2line::Context::from_dwarf(dwarf).ok()
            })
            .as_ref()
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
            unparsed: std::cell::OnceCell::new(),
            dwarf: std::cell::Cell::new(None),
            map: Some(MapView {
                map,
                code_start: layout.code_start as u64,
                bodies: heapscope_instrument::symbols::code_bodies(wasm),
            }),
            cached: None,
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
            unparsed: std::cell::OnceCell::new(),
            dwarf: std::cell::Cell::new(None),
            map: Some(MapView {
                map,
                code_start,
                bodies,
            }),
            cached: None,
        })
    }

    /// Frames at code offset `addr` (relative to the code section payload),
    /// innermost first. `fallback` names the containing function when DWARF
    /// has no name for it. Never empty.
    pub fn frames(&self, addr: u64, fallback: &str) -> Vec<SiteFrame> {
        let Some(cached) = &self.cached else {
            return self.symbolise(addr, fallback);
        };
        let key = (addr, fallback.to_string());
        if let Some(f) = cached.frames.borrow().get(&key) {
            return f.clone();
        }
        let f = self.symbolise(addr, fallback);
        cached.frames.borrow_mut().insert(key, f.clone());
        cached.added.set(true);
        f
    }

    fn symbolise(&self, addr: u64, fallback: &str) -> Vec<SiteFrame> {
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
        let Some(ctx) = self.context() else {
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

impl Drop for Symbolizer {
    /// Keep the sites this run symbolised for the next run of the module.
    fn drop(&mut self) {
        if let Some(c) = &self.cached {
            if c.added.get() {
                c.cache.store_beside(
                    &c.key,
                    crate::cache::Beside::Sites,
                    &encode_sites(&c.frames.borrow()),
                );
            }
        }
    }
}

/// Symbolised sites as the cache keeps them: for each, its code offset
/// (u64 LE), fallback name and frames (count, u32 LE); a frame is its
/// function, a file flag (0 or 1) and file, line and column (u32 LE); a
/// string is its length (u32 LE) and UTF-8 bytes.
fn encode_sites(sites: &HashMap<(u64, String), Vec<SiteFrame>>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut sorted: Vec<_> = sites.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for ((addr, fallback), frames) in sorted {
        out.extend_from_slice(&addr.to_le_bytes());
        string(&mut out, fallback);
        out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        for f in frames {
            string(&mut out, &f.function);
            match &f.file {
                Some(file) => {
                    out.push(1);
                    string(&mut out, file);
                }
                None => out.push(0),
            }
            out.extend_from_slice(&f.line.to_le_bytes());
            out.extend_from_slice(&f.column.to_le_bytes());
        }
    }
    out
}

/// [`encode_sites`]'s sites; `None` when the bytes are not such a list.
fn decode_sites(mut b: &[u8]) -> Option<HashMap<(u64, String), Vec<SiteFrame>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    fn u32_(b: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?))
    }
    fn string(b: &mut &[u8]) -> Option<String> {
        let n = u32_(b)? as usize;
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let mut out = HashMap::new();
    while !b.is_empty() {
        let addr = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        let fallback = string(&mut b)?;
        let n = u32_(&mut b)? as usize;
        let mut frames = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let function = string(&mut b)?;
            let file = match take(&mut b, 1)?[0] {
                0 => None,
                1 => Some(string(&mut b)?),
                _ => return None,
            };
            let line = u32_(&mut b)?;
            let column = u32_(&mut b)?;
            frames.push(SiteFrame {
                function,
                file,
                line,
                column,
            });
        }
        if frames.is_empty() {
            return None;
        }
        out.insert((addr, fallback), frames);
    }
    Some(out)
}

#[cfg(test)]
mod cached_site_tests {
    use super::*;

    #[test]
    fn sites_encode_and_decode_and_damage_is_refused() {
        let mut m = HashMap::new();
        m.insert(
            (12, "main".to_string()),
            vec![
                SiteFrame {
                    function: "make_name".into(),
                    file: Some("leaky.c".into()),
                    line: 28,
                    column: 5,
                },
                SiteFrame {
                    function: "main".into(),
                    file: None,
                    line: 0,
                    column: 0,
                },
            ],
        );
        m.insert((7, "é".to_string()), vec![SiteFrame::default()]);
        let b = encode_sites(&m);
        assert_eq!(decode_sites(&b), Some(m));
        // Cut anywhere: refused, or the whole sites before the cut.
        for cut in 1..b.len() {
            assert!(decode_sites(&b[..cut]).is_none_or(|d| d.len() < 2));
        }
    }
}
