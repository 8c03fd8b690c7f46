//! The types allocated at the sites of the blocks live at the end of a
//! run, where DWARF tells them ([`crate::variables::allocated_types`]),
//! written as [`Record::SiteType`] records for the views to show beside
//! a site (`300 blocks of 64 B (Session)`).

use crate::recorder::Recorder;
use heapscope_trace::format::{Record, StackId};
use std::collections::BTreeMap;

/// The most stacks given a type: a bound on the records and the DWARF
/// look-ups of one run.
pub(crate) const MAX_TYPED_STACKS: usize = 10_000;

/// Write a [`Record::SiteType`] for each stack of the blocks live now
/// (the first [`MAX_TYPED_STACKS`] of them, by stack id) whose calls,
/// innermost first, DWARF gives an allocated type for: the first call
/// that has one names it. Nothing when `wasm` has no DWARF or no block
/// is live. Returns how many records were written.
///
/// With the compiled module's cache entry (`cached`), the types earlier
/// runs looked up are taken from beside it
/// ([`crate::cache::Beside::SiteTypes`]) and only the call sites none
/// looked up before are looked up in the DWARF (not read at all when there
/// are none); the ones this run adds are kept there.
pub(crate) fn write_site_types(
    rec: &mut Recorder,
    wasm: &[u8],
    cached: Option<&(crate::cache::Cache, crate::cache::EntryKey)>,
) -> usize {
    let mut stacks: Vec<StackId> = rec.model.live().map(|(_, b)| b.stack).collect();
    stacks.sort_unstable();
    stacks.dedup();
    stacks.truncate(MAX_TYPED_STACKS);
    stacks.retain(|&s| s != 0);
    if stacks.is_empty() {
        return 0;
    }
    let calls: Vec<Vec<u64>> = stacks.iter().map(|&s| rec.stack_code_offsets(s)).collect();
    let mut offsets: Vec<u64> = calls.iter().flatten().copied().collect();
    offsets.sort_unstable();
    offsets.dedup();
    let started = std::time::Instant::now();
    let types = allocated_types(wasm, &offsets, cached);
    tracing::info!(
        "site types: {} call sites of {} stacks looked up in {} ms",
        offsets.len(),
        stacks.len(),
        started.elapsed().as_millis()
    );
    if types.iter().all(Option::is_none) {
        return 0;
    }
    let type_of = |o: u64| {
        offsets
            .binary_search(&o)
            .ok()
            .and_then(|i| types[i].as_deref())
    };
    let mut written = 0;
    for (&stack, calls) in stacks.iter().zip(&calls) {
        let Some(ty) = calls.iter().find_map(|&o| type_of(o)) else {
            continue;
        };
        let ty = ty.to_string();
        let id = rec.intern(&ty);
        rec.write_record(&Record::SiteType { stack, ty: id });
        written += 1;
    }
    written
}

/// The types allocated at `offsets` (sorted, no duplicates), as
/// [`crate::variables::allocated_types`] gives them (each offset's type
/// depends on that offset alone), through the cache when the run has one.
fn allocated_types(
    wasm: &[u8],
    offsets: &[u64],
    cached: Option<&(crate::cache::Cache, crate::cache::EntryKey)>,
) -> Vec<Option<String>> {
    use crate::cache::Beside;
    let Some((cache, key)) = cached else {
        return crate::variables::allocated_types(wasm, offsets);
    };
    let mut known = match cache.load_beside(key, Beside::SiteTypes) {
        Some(body) => decode_types(&body).unwrap_or_else(|| {
            tracing::info!("the cached site types do not read as a list of types; looking all up");
            BTreeMap::new()
        }),
        None => BTreeMap::new(),
    };
    let missing: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|o| !known.contains_key(o))
        .collect();
    tracing::info!(
        "site types: {} of {} call sites from the cache",
        offsets.len() - missing.len(),
        offsets.len()
    );
    if !missing.is_empty() {
        let found = crate::variables::allocated_types(wasm, &missing);
        known.extend(missing.into_iter().zip(found));
        if known.len() <= MAX_KEPT_TYPES {
            cache.store_beside(key, Beside::SiteTypes, &encode_types(&known));
        }
    }
    offsets
        .iter()
        .map(|o| known.get(o).cloned().flatten())
        .collect()
}

/// The most call sites whose types are kept in the cache for one module
/// (a module has at most as many call sites as instructions).
const MAX_KEPT_TYPES: usize = 4_000_000;

/// The longest type kept (a rendered type is cut at a few hundred bytes).
const MAX_TYPE_BYTES: usize = 1 << 20;

/// Site types as the cache keeps them: for each call site in increasing
/// order, its code offset (u64 LE) and a flag (0: DWARF tells no type; 1:
/// the type follows as its length, u32 LE, and UTF-8 bytes).
fn encode_types(types: &BTreeMap<u64, Option<String>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (o, t) in types {
        out.extend_from_slice(&o.to_le_bytes());
        match t {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
            None => out.push(0),
        }
    }
    out
}

/// [`encode_types`]'s types; `None` when the bytes are not such a list
/// (offsets out of order or repeated, a flag other than 0 or 1, a type
/// that is not UTF-8, empty or longer than [`MAX_TYPE_BYTES`],
/// more than [`MAX_KEPT_TYPES`]).
fn decode_types(mut b: &[u8]) -> Option<BTreeMap<u64, Option<String>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    let mut out = BTreeMap::new();
    let mut last: Option<u64> = None;
    while !b.is_empty() {
        let o = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        if last.is_some_and(|l| l >= o) || out.len() >= MAX_KEPT_TYPES {
            return None;
        }
        last = Some(o);
        let t = match take(&mut b, 1)?[0] {
            0 => None,
            1 => {
                let n = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                if n == 0 || n > MAX_TYPE_BYTES {
                    return None;
                }
                Some(String::from_utf8(take(&mut b, n)?.to_vec()).ok()?)
            }
            _ => return None,
        };
        out.insert(o, t);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_types_read_back_and_damage_is_refused() {
        let mut m = BTreeMap::new();
        m.insert(12, Some("[Box<Session>]".to_string()));
        m.insert(40, None);
        m.insert(41, Some("RefCell<Node>".to_string()));
        let b = encode_types(&m);
        assert_eq!(decode_types(&b), Some(m.clone()));
        for cut in 1..b.len() {
            assert!(decode_types(&b[..cut]).is_none_or(|d| d.len() < 3));
        }
        // Out of order, a repeated offset, another flag, an empty type.
        let mut swapped = encode_types(&BTreeMap::from([(41, None)]));
        swapped.extend(encode_types(&BTreeMap::from([(40, None)])));
        assert_eq!(decode_types(&swapped), None);
        let mut twice = encode_types(&BTreeMap::from([(40, None)]));
        twice.extend(encode_types(&BTreeMap::from([(40, None)])));
        assert_eq!(decode_types(&twice), None);
        let mut flag = encode_types(&BTreeMap::from([(40, None)]));
        flag[8] = 2;
        assert_eq!(decode_types(&flag), None);
        let mut empty = 40u64.to_le_bytes().to_vec();
        empty.extend([1, 0, 0, 0, 0]);
        assert_eq!(decode_types(&empty), None);
    }
}
