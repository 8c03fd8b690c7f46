//! The types allocated at the sites of the blocks live at the end of a
//! run, where DWARF tells them ([`crate::variables::allocated_types`]),
//! written as [`Record::SiteType`] records for the views to show beside
//! a site (`300 blocks of 64 B (Session)`).

use crate::recorder::Recorder;
use heapscope_trace::format::{Record, StackId};

/// The most stacks given a type: a bound on the records and the DWARF
/// look-ups of one run.
pub(crate) const MAX_TYPED_STACKS: usize = 10_000;

/// Write a [`Record::SiteType`] for each stack of the blocks live now
/// (the first [`MAX_TYPED_STACKS`] of them, by stack id) whose calls,
/// innermost first, DWARF gives an allocated type for: the first call
/// that has one names it. Nothing when `wasm` has no DWARF or no block
/// is live. Returns how many records were written.
pub(crate) fn write_site_types(rec: &mut Recorder, wasm: &[u8]) -> usize {
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
    let types = crate::variables::allocated_types(wasm, &offsets);
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
