//! The code map of an instrumented module (see `heapscope_trace::abi`,
//! "The code map"): which of its functions hold original code and where
//! each of their instructions was in the original. Written at emit time
//! from walrus' record of where every parsed instruction went
//! (`ModuleConfig::preserve_code_transform`), as a custom section whose
//! payload is made once the final function indices are known.

use heapscope_trace::abi::{CodeMap, CodeMapFunc, CODE_MAP_SECTION};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::ops::Range;
use walrus::{CodeTransform, CustomSection, FunctionId, IdsToIndices};

/// The [`CODE_MAP_SECTION`] of a module being emitted.
#[derive(Debug)]
pub(crate) struct CodeMapSection {
    /// Functions that hold original code, with their index in the original
    /// module and where their first instruction was there (a code offset).
    origin: FxHashMap<FunctionId, (u32, Option<u64>)>,
    /// Where the original's code section payload started in its file: an
    /// instruction's location minus this is its code offset.
    code_start: usize,
    /// Each emitted body's range in the output, from the code transform.
    ranges: Vec<(FunctionId, Range<usize>)>,
    /// (output offset, input offset) of every instruction walrus parsed and
    /// emitted, in output order.
    moved: Vec<(usize, usize)>,
}

impl CodeMapSection {
    /// A code map of the functions of `origin` (each with its index in the
    /// original module and where its first instruction was there, as a
    /// code offset), whose original's code section payload started at
    /// `code_start`.
    pub(crate) fn new(
        origin: FxHashMap<FunctionId, (u32, Option<u64>)>,
        code_start: usize,
    ) -> CodeMapSection {
        CodeMapSection {
            origin,
            code_start,
            ranges: Vec::new(),
            moved: Vec::new(),
        }
    }

    /// The map, once the transform is known.
    fn map(&self, ids: &IdsToIndices) -> CodeMap {
        let mut funcs = Vec::with_capacity(self.origin.len());
        for (id, range) in &self.ranges {
            let Some(&(original, start)) = self.origin.get(id) else {
                continue;
            };
            let lo = self.moved.partition_point(|m| m.0 < range.start);
            let hi = self.moved.partition_point(|m| m.0 < range.end);
            // The body's start (its locals): wasmtime places a trap of the
            // first instruction there when that instruction is the whole
            // body (`unreachable`), so it stands for the original's first
            // instruction.
            let mut runs: Vec<(u64, u64)> = start.map(|s| (0, s)).into_iter().collect();
            for &(dst, src) in &self.moved[lo..hi] {
                let Some(orig) = src.checked_sub(self.code_start) else {
                    continue;
                };
                let (rel, orig) = ((dst - range.start) as u64, orig as u64);
                // Still moving together with the run it is in: no new run.
                let same_run = runs
                    .last()
                    .is_some_and(|&(r0, o0)| rel == r0 || o0.checked_add(rel - r0) == Some(orig));
                if !same_run {
                    runs.push((rel, orig));
                }
            }
            funcs.push(CodeMapFunc {
                index: ids.get_func_index(*id),
                original,
                body_start: range.start as u64,
                body_len: range.len() as u64,
                runs,
            });
        }
        funcs.sort_by_key(|f| f.index);
        CodeMap { funcs }
    }
}

impl CustomSection for CodeMapSection {
    fn name(&self) -> &str {
        CODE_MAP_SECTION
    }

    fn data(&self, ids: &IdsToIndices) -> Cow<'_, [u8]> {
        Cow::Owned(self.map(ids).encode())
    }

    fn apply_code_transform(&mut self, transform: &CodeTransform) {
        self.ranges = transform.function_ranges.clone();
        self.moved = transform
            .instruction_map
            .iter()
            .map(|(loc, dst)| (*dst, loc.data() as usize))
            .collect();
        self.moved.sort_unstable();
    }
}

/// Where each function body's first instruction is in `wasm` (file
/// offsets), in order; a body that does not read ends the list.
pub(crate) fn first_instructions(wasm: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionEntry(body)) => match body.get_operators_reader() {
                Ok(ops) => out.push(ops.original_position() as u64),
                Err(_) => break,
            },
            Ok(wasmparser::Payload::End(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}
