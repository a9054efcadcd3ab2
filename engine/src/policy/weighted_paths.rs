//! Weighted paths (VDS 5), with Microsoft's semantics: the usable path with
//! the LOWEST weight takes the I/O; paths that share the lowest weight take
//! turns. The weight is a priority, not a share (for shares, see weighted
//! round robin).
//!
//! The configuration keeps the paths grouped by weight, lightest first, so
//! the usual case is one mask test on the first group.

use super::{Context, Selector, next_in_rotation};
use crate::IoRequest;

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
}
