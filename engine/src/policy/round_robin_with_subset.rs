//! Round robin with subset (VDS 3): rotate over the primary paths of the
//! best tier; the other paths take I/O only while no primary path is usable.

use super::{Context, Selector, next_in_rotation};
use crate::IoRequest;

pub(crate) struct RoundRobinWithSubset;

impl Selector for RoundRobinWithSubset {
    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let primary = ctx.config.primary();
        let mut candidates = ctx.best_tier(primary);
        if candidates == 0 {
            candidates = ctx.best_tier(!primary);
        }
        let slot = next_in_rotation(candidates, ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
