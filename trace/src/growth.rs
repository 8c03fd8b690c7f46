//! Growth per invocation: does an actor's live heap grow with every message?
//!
//! An actor never exits, so "live at exit" says little; what kills it is live
//! heap that grows a little per message until its memory limit. After each
//! invocation the collector (and the viewer, replaying a trace) feeds the
//! invocation's [`InvocationStats`] to a [`GrowthTracker`]. Invocations after
//! the warm-up are fitted by least squares: live bytes (and pages of linear
//! memory) against the invocation number. The slope is the growth per
//! invocation; `r2` says how steadily it grows (1 = every invocation adds the
//! same). Growth is reported as a leak when the slope is at least
//! [`MIN_LEAK_SLOPE`] bytes, `r2` at least [`MIN_LEAK_R2`] and at least
//! [`MIN_FITTED`] invocations were fitted.
//!
//! The growth is attributed to allocation stacks by comparing the live blocks
//! of each stack at the end of the warm-up with those at the end: a stack
//! whose live bytes rose is one the growth comes from.

use crate::format::{InvocationOutcome, InvocationStats, StackId};
use crate::model::HeapModel;
use rustc_hash::FxHashMap;

/// Fewest bytes per invocation reported as a leak.
pub const MIN_LEAK_SLOPE: f64 = 1.0;
/// Least `r2` reported as a leak: below it the heap moves but not steadily.
pub const MIN_LEAK_R2: f64 = 0.8;
/// Fewest fitted invocations for a verdict.
pub const MIN_FITTED: u64 = 10;

/// Least-squares fit of `y` against `x`, accumulated one point at a time
/// (Welford's updates: stable over millions of points, constant memory).
#[derive(Debug, Clone, Default)]
pub struct Regression {
    n: u64,
    mean_x: f64,
    mean_y: f64,
    c_xx: f64,
    c_yy: f64,
    c_xy: f64,
}

/// A fitted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Change of `y` per unit of `x`.
    pub slope: f64,
    /// Coefficient of determination: the share of `y`'s variance the line
    /// explains (1 when `y` does not vary at all: a flat line fits exactly).
    pub r2: f64,
    /// Points fitted.
    pub n: u64,
}

impl Regression {
    /// Add a point.
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dx = x - self.mean_x;
        self.mean_x += dx / n;
        let dy = y - self.mean_y;
        self.mean_y += dy / n;
        self.c_xx += dx * (x - self.mean_x);
        self.c_yy += dy * (y - self.mean_y);
        self.c_xy += dx * (y - self.mean_y);
    }

    /// The line through the points so far; `None` with fewer than two
    /// distinct `x`.
    pub fn fit(&self) -> Option<Fit> {
        if self.n < 2 || self.c_xx <= 0.0 {
            return None;
        }
        let slope = self.c_xy / self.c_xx;
        let r2 = if self.c_yy <= 0.0 {
            1.0
        } else {
            (self.c_xy * self.c_xy / (self.c_xx * self.c_yy)).clamp(0.0, 1.0)
        };
        Some(Fit {
            slope,
            r2,
            n: self.n,
        })
    }
}

/// The growth of an actor's heap over its invocations.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Growth {
    /// Invocations left out of the fit at the start.
    pub warmup: u64,
    /// Invocations fitted (after the warm-up, trapped ones left out).
    pub fitted: u64,
    /// Live heap bytes added per invocation (the fit's slope).
    pub bytes_per_invocation: f64,
    /// How steadily live bytes grow: the fit's coefficient of determination.
    pub r2: f64,
    /// Pages of linear memory 0 added per invocation.
    pub pages_per_invocation: f64,
    /// The pages fit's coefficient of determination.
    pub pages_r2: f64,
    /// Whether the growth counts as a leak (see the module docs).
    pub leaking: bool,
    /// The stacks whose live bytes grew between the end of the warm-up and
    /// the end of the run, most growth first.
    pub sites: Vec<GrowthSite>,
}

impl Growth {
    /// Why this fit says nothing of a leak, when it says nothing: fewer
    /// than [`MIN_FITTED`] invocations fitted. The one wording of the
    /// `--max-growth` gate (not checked, exit 3) and of the growth lines.
    pub fn too_few_invocations(&self) -> Option<String> {
        (self.fitted < MIN_FITTED).then(|| {
            format!(
                "too few invocations to fit growth: {} fitted after a warm-up of {}, at least {MIN_FITTED} are needed",
                crate::units::thousands(self.fitted),
                crate::units::thousands(self.warmup)
            )
        })
    }
}

/// One allocation stack's share of the growth.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GrowthSite {
    /// The stack's id in the trace.
    pub stack: StackId,
    /// The stack's functions, innermost first (named by the caller of
    /// [`GrowthTracker::finish`], which can resolve the stack).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    /// Its live bytes' growth per invocation.
    pub bytes_per_invocation: f64,
    /// Its live blocks' growth per invocation.
    pub blocks_per_invocation: f64,
    /// Live bytes it gained since the end of the warm-up.
    pub bytes: u64,
}

/// Follows invocations as they end and fits their growth.
#[derive(Debug, Clone)]
pub struct GrowthTracker {
    warmup: u64,
    bytes: Regression,
    pages: Regression,
    /// Live (bytes, blocks) per stack at the end of the warm-up.
    base: Option<FxHashMap<StackId, (u64, u64)>>,
    /// Index of the last invocation seen.
    last: Option<u64>,
}

impl GrowthTracker {
    /// A tracker that leaves the first `warmup` invocations out of the fit
    /// (at least one: the first invocation initialises lazily).
    pub fn new(warmup: u64) -> GrowthTracker {
        GrowthTracker {
            warmup: warmup.max(1),
            bytes: Regression::default(),
            pages: Regression::default(),
            base: None,
            last: None,
        }
    }

    /// The warm-up this tracker uses.
    pub fn warmup(&self) -> u64 {
        self.warmup
    }

    /// The default warm-up for a run of `planned` invocations: a tenth of
    /// them, at least one.
    pub fn default_warmup(planned: u64) -> u64 {
        (planned / 10).max(1)
    }

    /// An invocation ended; `model` is the heap right after it.
    pub fn record(&mut self, st: &InvocationStats, model: &HeapModel) {
        self.last = Some(st.index);
        if st.index + 1 == self.warmup {
            self.base = Some(per_stack(model));
        }
        if st.index >= self.warmup && st.outcome != InvocationOutcome::Trapped {
            self.bytes.add(st.index as f64, st.live_bytes as f64);
            self.pages.add(st.index as f64, st.pages as f64);
        }
    }

    /// The growth so far; `model` is the heap now, and `name` gives a
    /// stack's functions, innermost first (each site is named once, in the
    /// sites' order). `None` until at least two invocations after the
    /// warm-up have been fitted.
    pub fn finish(
        &self,
        model: &HeapModel,
        mut name: impl FnMut(StackId) -> Vec<String>,
    ) -> Option<Growth> {
        let bytes = self.bytes.fit()?;
        let pages = self.pages.fit();
        let span = self.last?.saturating_sub(self.warmup - 1).max(1) as f64;
        let base = self.base.clone().unwrap_or_default();
        let mut sites: Vec<GrowthSite> = per_stack(model)
            .into_iter()
            .filter_map(|(stack, (b, n))| {
                let (b0, n0) = base.get(&stack).copied().unwrap_or((0, 0));
                (b > b0).then(|| GrowthSite {
                    stack,
                    functions: Vec::new(),
                    bytes_per_invocation: (b - b0) as f64 / span,
                    blocks_per_invocation: (n as f64 - n0 as f64) / span,
                    bytes: b - b0,
                })
            })
            .collect();
        sites.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.stack.cmp(&b.stack)));
        for site in &mut sites {
            site.functions = name(site.stack);
        }
        Some(Growth {
            warmup: self.warmup,
            fitted: bytes.n,
            bytes_per_invocation: bytes.slope,
            r2: bytes.r2,
            pages_per_invocation: pages.map_or(0.0, |p| p.slope),
            pages_r2: pages.map_or(1.0, |p| p.r2),
            leaking: bytes.n >= MIN_FITTED
                && bytes.slope >= MIN_LEAK_SLOPE
                && bytes.r2 >= MIN_LEAK_R2,
            sites,
        })
    }
}

fn per_stack(model: &HeapModel) -> FxHashMap<StackId, (u64, u64)> {
    let mut m: FxHashMap<StackId, (u64, u64)> = FxHashMap::default();
    for (_, b) in model.live() {
        let e = m.entry(b.stack).or_default();
        e.0 = e.0.saturating_add(b.size);
        e.1 += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_fits_exactly_and_a_flat_one_is_flat() {
        let mut r = Regression::default();
        for i in 0..1000 {
            r.add(i as f64, 1_000_000.0 + 2056.0 * i as f64);
        }
        let f = r.fit().unwrap();
        assert!((f.slope - 2056.0).abs() < 1e-6, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-9);
        let mut flat = Regression::default();
        for i in 0..10 {
            flat.add(i as f64, 5.0);
        }
        assert_eq!(flat.fit().unwrap().slope, 0.0);
        assert_eq!(Regression::default().fit(), None);
    }

    #[test]
    fn noise_without_a_trend_has_a_low_r2() {
        let mut r = Regression::default();
        for i in 0..1000u64 {
            // Alternates between two values: no trend.
            r.add(i as f64, if i % 2 == 0 { 100.0 } else { 5000.0 });
        }
        let f = r.fit().unwrap();
        assert!(f.slope.abs() < 0.1 && f.r2 < 0.001, "{f:?}");
    }

    fn stats(index: u64, live_bytes: u64) -> InvocationStats {
        InvocationStats {
            index,
            outcome: InvocationOutcome::Ok,
            allocs: 1,
            frees: 0,
            bytes: 100,
            live_bytes,
            live_blocks: index + 1,
            pages: 2,
            duration_us: 1,
            output_bytes: None,
        }
    }

    #[test]
    fn growth_is_attributed_to_the_stacks_that_grew() {
        let mut model = HeapModel::new();
        model.start(&[]);
        let mut t = GrowthTracker::new(10);
        for i in 0..100u64 {
            // Stack 1 keeps 100 bytes per invocation; stack 2 one transient.
            model.alloc(0, 1000 + i * 200, 100, 1);
            model.alloc(0, 90_000, 40, 2);
            model.free(0, 90_000);
            t.record(&stats(i, model.curr_bytes), &model);
        }
        let g = t.finish(&model, |_| Vec::new()).unwrap();
        assert_eq!(g.fitted, 90);
        assert!((g.bytes_per_invocation - 100.0).abs() < 1e-9);
        assert!(g.leaking);
        assert_eq!(g.sites.len(), 1);
        assert_eq!(g.sites[0].stack, 1);
        assert_eq!(g.sites[0].bytes, 9000);
        assert!((g.sites[0].bytes_per_invocation - 100.0).abs() < 1e-9);
        assert_eq!(g.pages_per_invocation, 0.0);
    }
}
