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
/// suppression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockGroup {
    /// The allocation stack.
    pub stack: StackId,
    /// The allocating function of the group's lowest-addressed block.
    pub allocator: AllocFn,
    /// The blocks' leak kind, when the run classified them.
    pub kind: Option<LeakKind>,
    /// The suppression rule that matched them, if any.
    pub suppressed_by: Option<String>,
    /// Blocks.
    pub blocks: u64,
    /// Bytes (saturating).
    pub bytes: u64,
    /// Distinct block sizes, ascending.
    pub sizes: Vec<u64>,
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
                groups.push(BlockGroup {
                    stack: key.0,
                    allocator: unpack_kind(b.alloc_kind).0,
                    kind: key.1,
                    suppressed_by: key.2.clone(),
                    blocks: 0,
                    bytes: 0,
                    sizes: Vec::new(),
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
    groups.sort_by(|a, b| {
        (a.suppressed_by.is_some(), a.kind)
            .cmp(&(b.suppressed_by.is_some(), b.kind))
            .then(b.bytes.cmp(&a.bytes))
            .then(b.blocks.cmp(&a.blocks))
            .then(a.stack.cmp(&b.stack))
    });
    groups
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
}
