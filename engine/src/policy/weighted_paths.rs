//! Weighted paths (VDS 5), with Microsoft's semantics: the usable path with
//! the LOWEST weight takes the I/O; paths that share the lowest weight take
//! turns. The weight is a priority, not a share (for shares, see weighted
//! round robin).
//!
//! The configuration keeps the paths grouped by weight, lightest first, so
//! the usual case is one mask test on the first group.

use super::{Context, Selector, Settled, next_in_rotation};
use crate::IoRequest;
use crate::lun::bit;

pub(crate) struct WeightedPaths;

impl Selector for WeightedPaths {
    const READS_CONFIG: bool = true;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        if candidates == 0 {
            return None;
        }
        let mut group = candidates;
        for index in 0..ctx.config.level_count() {
            let Some((_, mask, _)) = ctx.config.level(index) else { break };
            if mask & candidates != 0 {
                group = mask & candidates;
                break;
            }
        }
        let slot = next_in_rotation(group, ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }

    const ROTATES: bool = true;

    fn rotation_set<const N: usize>(state: &Settled<'_, N>) -> u64 {
        let candidates = state.best_tier(!0);
        let weight = |slot: usize| state.table.weights.get(slot).copied().unwrap_or(u32::MAX);
        let lightest = (0..N).filter(|&s| candidates & bit(s) != 0).map(weight).min();
        lightest.map_or(0, |w| {
            (0..N).filter(|&s| candidates & bit(s) != 0 && weight(s) == w).fold(0, |m, s| m | bit(s))
        })
    }
}
