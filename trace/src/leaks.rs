//! Blocks live at exit, grouped: the one grouping and order that `run`'s
//! outcome, `leaks`, `summary` and the HTML report all show.
//!
//! Blocks are grouped by allocation stack, leak kind and suppression rule.
//! Groups are ordered unsuppressed first, then by kind (unclassified, from a
//! run whose scan did not run; definitely lost; possibly lost; still
//! reachable), then most bytes, most blocks, and the lower stack id.

use crate::abi::{unpack_kind, AllocFn};
use crate::format::{LeakKind, StackId};
use crate::model::Block;
use rustc_hash::FxHashMap;

/// A block live at exit, with how the leak scan classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBlock {
    /// Its address.
    pub ptr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The stack that allocated it.
    pub stack: StackId,
    /// The hook kind of the call that allocated it (role and memory).
    pub alloc_kind: i32,
    /// Its leak kind, when the run classified it.
    pub leak_kind: Option<LeakKind>,
    /// The suppression rule that matched it, if any.
    pub suppressed_by: Option<String>,
}

impl From<(u64, Block)> for LiveBlock {
    fn from((ptr, b): (u64, Block)) -> LiveBlock {
        LiveBlock {
            ptr,
            size: b.size,
            stack: b.stack,
            alloc_kind: b.kind,
            leak_kind: None,
            suppressed_by: None,
        }
    }
}

/// Live blocks that share an allocation stack, a leak kind and a
/// suppression: the one leak-group type. `run`'s outcome carries it with
/// its stack's function names (`LeakGroup<String>`), the viewer with its
/// frames (`LeakGroup<FrameView>`); [`group_blocks`] gives it with no frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeakGroup<F = ()> {
    /// The allocation stack (the lowest of the stacks merged into it).
    pub stack: StackId,
    /// The allocating function of the group's lowest-addressed block.
    pub allocator: AllocFn,
    /// The blocks' leak kind, when the run classified them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LeakKind>,
    /// The suppression rule that matched them, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// Blocks.
    pub blocks: u64,
    /// Bytes (saturating).
    pub bytes: u64,
    /// Distinct block sizes, ascending.
    pub sizes: Vec<u64>,
    /// The stack, innermost (the call into the allocator) first, as the
    /// caller resolves it.
    pub frames: Vec<F>,
}

/// The name the groups had before they were one type.
pub type BlockGroup = LeakGroup<()>;

impl<F> LeakGroup<F> {
    /// The group with its stack resolved by `frames`.
    pub fn with_frames<G>(self, frames: impl FnOnce(StackId) -> Vec<G>) -> LeakGroup<G> {
        LeakGroup {
            frames: frames(self.stack),
            stack: self.stack,
            allocator: self.allocator,
            kind: self.kind,
            suppressed_by: self.suppressed_by,
            blocks: self.blocks,
            bytes: self.bytes,
            sizes: self.sizes,
        }
    }
}

/// The one order of groups (see the module's docs).
pub fn sort_groups<F>(groups: &mut [LeakGroup<F>]) {
    groups.sort_by(|a, b| {
        (a.suppressed_by.is_some(), a.kind)
            .cmp(&(b.suppressed_by.is_some(), b.kind))
            .then(b.bytes.cmp(&a.bytes))
            .then(b.blocks.cmp(&a.blocks))
            .then(a.stack.cmp(&b.stack))
    });
}

/// Group `blocks` and order the groups (see the module's docs).
pub fn group_blocks(mut blocks: Vec<LiveBlock>) -> Vec<BlockGroup> {
    blocks.sort_by_key(|b| b.ptr);
    let mut index: FxHashMap<(StackId, Option<LeakKind>, Option<String>), usize> =
        FxHashMap::default();
    let mut groups: Vec<BlockGroup> = Vec::new();
    for b in blocks {
        let key = (b.stack, b.leak_kind, b.suppressed_by);
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                groups.push(LeakGroup {
                    stack: key.0,
                    allocator: unpack_kind(b.alloc_kind).0,
                    kind: key.1,
                    suppressed_by: key.2.clone(),
                    blocks: 0,
                    bytes: 0,
                    sizes: Vec::new(),
                    frames: Vec::new(),
                });
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.blocks += 1;
        g.bytes = g.bytes.saturating_add(b.size);
        g.sizes.push(b.size);
    }
    for g in &mut groups {
        g.sizes.sort_unstable();
        g.sizes.dedup();
    }
    sort_groups(&mut groups);
    groups
}

/// Merge the groups whose stacks print the same (equal frames, allocator,
/// kind and suppression: two `malloc`s on one line of C, stacks that differ
/// only where no frame says), summing them, so that no two rows of a report
/// read the same; then the one order again.
pub fn merge_same_frames<F: Eq + std::hash::Hash + Clone>(
    groups: Vec<LeakGroup<F>>,
) -> Vec<LeakGroup<F>> {
    merge_by(groups, |g| g.frames.clone())
}

/// [`merge_same_frames`] with the frames a view prints (`key`: the frames
/// it shows of a group's stack), the first group's whole stack kept.
pub fn merge_by<F, K: Eq + std::hash::Hash>(
    groups: Vec<LeakGroup<F>>,
    key: impl Fn(&LeakGroup<F>) -> K,
) -> Vec<LeakGroup<F>> {
    let mut index: std::collections::HashMap<
        (K, AllocFn, Option<LeakKind>, Option<String>),
        usize,
    > = Default::default();
    let mut out: Vec<LeakGroup<F>> = Vec::with_capacity(groups.len());
    for g in groups {
        let k = (key(&g), g.allocator, g.kind, g.suppressed_by.clone());
        match index.get(&k) {
            Some(&i) => {
                let m = &mut out[i];
                m.blocks += g.blocks;
                m.bytes = m.bytes.saturating_add(g.bytes);
                m.stack = m.stack.min(g.stack);
                m.sizes.extend(g.sizes);
                m.sizes.sort_unstable();
                m.sizes.dedup();
            }
            None => {
                index.insert(k, out.len());
                out.push(g);
            }
        }
    }
    sort_groups(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{pack_kind, AllocFn};

    fn block(
        ptr: u64,
        size: u64,
        stack: StackId,
        kind: Option<LeakKind>,
        rule: Option<&str>,
    ) -> LiveBlock {
        LiveBlock {
            ptr,
            size,
            stack,
            alloc_kind: pack_kind(
                if ptr == 10 {
                    AllocFn::Calloc
                } else {
                    AllocFn::Malloc
                },
                0,
            ),
            leak_kind: kind,
            suppressed_by: rule.map(String::from),
        }
    }

    #[test]
    fn groups_by_stack_kind_and_rule_in_one_order() {
        use LeakKind::*;
        let g = group_blocks(vec![
            block(40, 500, 1, Some(Reachable), None),
            block(30, 5, 2, Some(Definite), None),
            block(10, 7, 2, Some(Definite), None),
            block(50, 9000, 3, Some(Definite), Some("argv")),
            block(60, 100, 4, Some(Possible), None),
            block(70, 1, 5, None, None),
        ]);
        let order: Vec<_> = g
            .iter()
            .map(|g| (g.stack, g.kind, g.blocks, g.bytes, g.sizes.clone()))
            .collect();
        assert_eq!(
            order,
            [
                (5, None, 1, 1, vec![1]),
                (2, Some(Definite), 2, 12, vec![5, 7]),
                (4, Some(Possible), 1, 100, vec![100]),
                (1, Some(Reachable), 1, 500, vec![500]),
                (3, Some(Definite), 1, 9000, vec![9000]),
            ]
        );
        // The allocator of the lowest-addressed block.
        assert_eq!(g[1].allocator, AllocFn::Calloc);
        assert_eq!(g[4].suppressed_by.as_deref(), Some("argv"));
    }

    /// Two groups whose stacks print the same (two `malloc`s on one line)
    /// are one, summed, in the one order.
    #[test]
    fn groups_that_print_the_same_are_merged() {
        use LeakKind::*;
        let g = group_blocks(vec![
            block(20, 5, 7, Some(Definite), None),
            block(30, 9, 8, Some(Definite), None),
            block(40, 6, 9, Some(Definite), None),
        ]);
        let names = |s: StackId| match s {
            7 | 8 => vec!["make".to_string(), "main".to_string()],
            _ => vec!["other".to_string()],
        };
        let merged = merge_same_frames(g.into_iter().map(|g| g.with_frames(names)).collect());
        let rows: Vec<_> = merged
            .iter()
            .map(|g| (g.stack, g.blocks, g.bytes, g.sizes.clone()))
            .collect();
        assert_eq!(rows, [(7, 2, 14, vec![5, 9]), (9, 1, 6, vec![6])]);
    }
}
