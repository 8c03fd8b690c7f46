//! Streaming profile of a trace: per-stack statistics, a downsampled heap
//! timeline, a size histogram, short-lived allocations and realloc chains.
//!
//! Everything here is fed one heap event at a time while the trace is read,
//! and its memory is bounded by the number of distinct stacks and live
//! blocks, never by the trace's length: the timeline keeps at most
//! [`TIMELINE_POINTS`] points and halves its resolution when full.

use heapscope_trace::format::Record;
use heapscope_trace::model::{FreeOutcome, HeapModel};
use heapscope_trace::StackId;
use rustc_hash::FxHashMap;

/// Points the timeline keeps at most.
pub const TIMELINE_POINTS: usize = 1024;
/// An allocation freed within this many heap events counts as short-lived.
pub const SHORT_LIVED_EVENTS: u64 = 16;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one allocation stack did over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StackStats {
    /// Blocks allocated (a reallocation counts one).
    pub alloc_blocks: u64,
    /// Bytes allocated.
    pub alloc_bytes: u64,
    /// Blocks live at the end.
    pub live_blocks: u64,
    /// Bytes live at the end.
    pub live_bytes: u64,
    /// Most bytes this stack had live at once (DHAT's `mb`).
    pub max_live_bytes: u64,
    /// Blocks live when it had `max_live_bytes`.
    pub max_live_blocks: u64,
    /// Bytes it had live at the run's peak of live bytes (filled in by
    /// [`crate::analysis::peak_snapshot`]).
    pub peak_bytes: u64,
    /// Blocks it had live at the peak.
    pub peak_blocks: u64,
    /// Bytes its blocks live at exit retain (filled in from the trace's
    /// heap graph by [`crate::retainers::fill_retained`]; 0 without one).
    #[serde(skip_serializing_if = "is_zero")]
    pub retained_bytes: u64,
    /// Blocks freed within [`SHORT_LIVED_EVENTS`] events of their allocation.
    pub short_lived: u64,
    /// Short-lived blocks of the same size as the short-lived block before
    /// them at this stack: an allocate-use-free loop.
    pub same_size_short: u64,
    /// Size of the last short-lived block.
    pub last_short_size: u64,
    /// Sum of block lifetimes, in heap events (blocks live at the end count
    /// until the end).
    pub lifetime_events: u64,
    /// Reallocations of a live block done here.
    pub reallocs: u64,
    /// Of those, the ones that made the block larger.
    pub growing_reallocs: u64,
    /// The longest chain of reallocations of one buffer ending here.
    pub longest_chain: u64,
    /// Successful `memory.grow` calls from this stack.
    pub grows: u64,
    /// Pages they added.
    pub grow_pages: u64,
    /// Smallest and largest block allocated here.
    pub min_size: u64,
    /// Largest block allocated here.
    pub max_size: u64,
}

/// One point of the heap timeline: the state after the last event of its
/// span of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Point {
    /// Heap events up to the end of this point's span.
    pub seq: u64,
    /// Microseconds since the run started, as of the last time record.
    pub time_us: u64,
    /// Live bytes at the end of the span.
    pub live_bytes: u64,
    /// Most live bytes within the span.
    pub max_live_bytes: u64,
    /// Live blocks at the end of the span.
    pub live_blocks: u64,
    /// Pages of linear memory 0 at the end of the span.
    pub pages: u64,
}

/// A downsampled timeline of live heap and linear memory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timeline {
    /// The points, oldest first.
    pub points: Vec<Point>,
    /// Heap events each point spans.
    pub span: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            points: Vec::with_capacity(TIMELINE_POINTS),
            span: 1,
        }
    }
}

impl Timeline {
    fn push(&mut self, p: Point) {
        // Point i holds the events with (seq - 1) / span == i.
        let bucket = |seq: u64, span: u64| seq.saturating_sub(1) / span;
        match self.points.last_mut() {
            Some(last) if bucket(last.seq, self.span) == bucket(p.seq, self.span) => {
                let max = last.max_live_bytes.max(p.live_bytes);
                *last = Point {
                    max_live_bytes: max,
                    ..p
                };
            }
            _ => {
                if self.points.len() == TIMELINE_POINTS {
                    self.halve();
                    return self.push(p);
                }
                self.points.push(Point {
                    max_live_bytes: p.live_bytes,
                    ..p
                });
            }
        }
    }

    /// Merge neighbouring points: half the points, twice the span each.
    fn halve(&mut self) {
        self.span *= 2;
        let merged: Vec<Point> = self
            .points
            .chunks(2)
            .map(|c| {
                let last = *c.last().expect("chunks are not empty");
                Point {
                    max_live_bytes: c.iter().map(|p| p.max_live_bytes).max().unwrap_or(0),
                    ..last
                }
            })
            .collect();
        self.points = merged;
    }
}

/// Allocation sizes by power of two: bucket `i` holds sizes in
/// `[2^(i-1), 2^i)` (bucket 0: size 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SizeHistogram {
    /// Blocks per bucket.
    pub blocks: Vec<u64>,
    /// Bytes per bucket.
    pub bytes: Vec<u64>,
}

impl SizeHistogram {
    fn add(&mut self, size: u64) {
        let i = (64 - size.leading_zeros()) as usize;
        if self.blocks.len() <= i {
            self.blocks.resize(i + 1, 0);
            self.bytes.resize(i + 1, 0);
        }
        self.blocks[i] += 1;
        self.bytes[i] = self.bytes[i].saturating_add(size);
    }

    /// The smallest size in bucket `i`.
    pub fn lower(i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            1 << (i - 1)
        }
    }
}

/// The streaming profile.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Profile {
    /// Statistics by stack id (index 0: allocations with no stack).
    pub stacks: Vec<StackStats>,
    /// Live heap and linear memory over the run.
    pub timeline: Timeline,
    /// Sizes of all allocations.
    pub sizes: SizeHistogram,
    /// Allocations freed within [`SHORT_LIVED_EVENTS`] events.
    pub short_lived: u64,
    /// The longest chain of reallocations of one buffer, and its stack.
    pub longest_chain: (u64, StackId),
    /// Successful reallocations of live blocks.
    pub reallocs: u64,
    /// Realloc chain length of each live block that was reallocated.
    #[serde(skip)]
    chains: FxHashMap<u64, u64>,
    #[serde(skip)]
    time_us: u64,
}

impl Profile {
    fn stack(&mut self, id: StackId) -> &mut StackStats {
        let i = id as usize;
        if self.stacks.len() <= i {
            self.stacks.resize(i + 1, StackStats::default());
        }
        &mut self.stacks[i]
    }

    fn added(&mut self, stack: StackId, size: u64) {
        self.sizes.add(size);
        let s = self.stack(stack);
        if s.alloc_blocks == 0 || size < s.min_size {
            s.min_size = size;
        }
        s.max_size = s.max_size.max(size);
        s.alloc_blocks += 1;
        s.alloc_bytes = s.alloc_bytes.saturating_add(size);
        s.live_blocks += 1;
        s.live_bytes = s.live_bytes.saturating_add(size);
        if s.live_bytes > s.max_live_bytes {
            s.max_live_bytes = s.live_bytes;
            s.max_live_blocks = s.live_blocks;
        }
    }

    fn removed(&mut self, b: &heapscope_trace::model::Block, ptr: u64, now: u64) {
        let lifetime = now.saturating_sub(b.seq);
        let short = lifetime <= SHORT_LIVED_EVENTS;
        self.chains.remove(&ptr);
        if short {
            self.short_lived += 1;
        }
        let s = self.stack(b.stack);
        s.live_blocks = s.live_blocks.saturating_sub(1);
        s.live_bytes = s.live_bytes.saturating_sub(b.size);
        s.lifetime_events += lifetime;
        if short {
            if s.short_lived > 0 && s.last_short_size == b.size {
                s.same_size_short += 1;
            }
            s.short_lived += 1;
            s.last_short_size = b.size;
        }
    }

    /// Account for `r`, which `model` has just applied with outcome `out`.
    pub fn record(&mut self, r: &Record, out: Option<FreeOutcome>, model: &HeapModel) {
        let now = model.events();
        match *r {
            Record::Time(us) => {
                self.time_us = us;
                return;
            }
            Record::Alloc {
                ptr, size, stack, ..
            } if ptr != 0 => self.added(stack, size),
            Record::Alloc { .. } => {}
            Record::Free { ptr, .. } => {
                if let Some(FreeOutcome::Freed(b)) = out {
                    self.removed(&b, ptr, now);
                }
            }
            Record::Realloc {
                old,
                new,
                size,
                stack,
                ..
            } => {
                let chain = self.chains.get(&old).copied().unwrap_or(0);
                if let Some(FreeOutcome::Freed(b)) = out {
                    self.removed(&b, old, now);
                    if new != 0 {
                        self.reallocs += 1;
                        let len = chain + 1;
                        self.chains.insert(new, len);
                        if len > self.longest_chain.0 {
                            self.longest_chain = (len, stack);
                        }
                        let s = self.stack(stack);
                        s.reallocs += 1;
                        if size > b.size {
                            s.growing_reallocs += 1;
                        }
                        s.longest_chain = s.longest_chain.max(len);
                    }
                }
                if new != 0 {
                    self.added(stack, size);
                }
            }
            Record::Grow {
                delta,
                old_pages: Some(_),
                stack,
                memory: 0,
            } if delta > 0 => {
                let s = self.stack(stack);
                s.grows += 1;
                s.grow_pages += delta;
            }
            Record::Grow { .. } => {}
            _ => return,
        }
        self.timeline.push(Point {
            seq: now,
            time_us: self.time_us,
            live_bytes: model.curr_bytes,
            max_live_bytes: model.curr_bytes,
            live_blocks: model.curr_blocks,
            pages: model.memories.first().map_or(0, |m| m.final_pages),
        });
    }

    /// Close the profile at the end of the trace: blocks still live count
    /// their lifetime until `now`.
    pub fn finish(&mut self, model: &HeapModel) {
        let now = model.events();
        for (_, b) in model.live() {
            let s = self.stack(b.stack);
            s.lifetime_events += now.saturating_sub(b.seq);
        }
        self.chains = FxHashMap::default();
    }

    /// Stack ids with their statistics, skipping stacks that never
    /// allocated or grew memory.
    pub fn active(&self) -> impl Iterator<Item = (StackId, &StackStats)> {
        self.stacks
            .iter()
            .enumerate()
            .filter(|(_, s)| s.alloc_blocks > 0 || s.grows > 0)
            .map(|(i, s)| (i as StackId, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_stays_bounded_and_keeps_the_maximum() {
        let mut t = Timeline::default();
        for i in 1..=100_000u64 {
            let live = if i == 77_777 { 1_000_000 } else { i };
            t.push(Point {
                seq: i,
                live_bytes: live,
                max_live_bytes: live,
                ..Default::default()
            });
        }
        assert!(t.points.len() <= TIMELINE_POINTS && t.points.len() > TIMELINE_POINTS / 2);
        assert_eq!(t.points.last().unwrap().seq, 100_000);
        assert_eq!(t.points.last().unwrap().live_bytes, 100_000);
        assert_eq!(
            t.points.iter().map(|p| p.max_live_bytes).max(),
            Some(1_000_000),
            "a spike inside a merged span is kept"
        );
        // Spans are contiguous and equal.
        for w in t.points.windows(2).take(t.points.len() - 2) {
            assert_eq!(w[1].seq - w[0].seq, t.span);
        }
    }

    #[test]
    fn sizes_fall_in_power_of_two_buckets() {
        let mut h = SizeHistogram::default();
        for s in [0, 1, 2, 3, 4, 1000, 1024] {
            h.add(s);
        }
        assert_eq!(h.blocks, [1, 1, 2, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(SizeHistogram::lower(11), 1024);
    }

    #[test]
    fn chains_short_lived_and_per_stack_counts() {
        let mut m = HeapModel::new();
        m.start(&[]);
        let mut p = Profile::default();
        let feed = |r: Record, m: &mut HeapModel, p: &mut Profile| {
            let out = m.apply(&r);
            p.record(&r, out, m);
        };
        feed(
            Record::Alloc {
                kind: 1,
                ptr: 100,
                size: 8,
                align: 0,
                stack: 1,
            },
            &mut m,
            &mut p,
        );
        for (i, (old, new)) in [(100, 200), (200, 300), (300, 400)].iter().enumerate() {
            feed(
                Record::Realloc {
                    kind: 3,
                    old: *old,
                    new: *new,
                    size: 16 << i,
                    stack: 2,
                },
                &mut m,
                &mut p,
            );
        }
        feed(
            Record::Free {
                kind: 4,
                ptr: 400,
                stack: 3,
            },
            &mut m,
            &mut p,
        );
        p.finish(&m);
        assert_eq!(p.longest_chain, (3, 2));
        assert_eq!(p.stacks[2].reallocs, 3);
        assert_eq!(p.stacks[2].growing_reallocs, 3);
        assert_eq!(p.stacks[2].alloc_blocks, 3);
        assert_eq!(p.stacks[1].alloc_bytes, 8);
        assert_eq!(p.short_lived, 4, "every block lived one event");
        assert_eq!(p.stacks.iter().map(|s| s.live_bytes).sum::<u64>(), 0);
        assert_eq!(p.timeline.points.last().unwrap().live_bytes, 0);
    }
}
