//! Least queue depth (VDS 4): the path with the fewest requests in flight.
//!
//! The scan starts at this CPU's rotation cursor, so equally loaded paths
//! take turns instead of the lowest slot always winning (Microsoft's sample
//! and `NVMe`'s queue-depth favour list order). It stops at the first idle path.

use super::{Context, Selector, least_by_key};
use crate::IoRequest;

pub(crate) struct LeastQueueDepth;

impl Selector for LeastQueueDepth {
    const READS_CONFIG: bool = false;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let slot = least_by_key::<N>(ctx.best_tier(!0), ctx.cursor(), |s| {
            ctx.load(s).map_or(u64::MAX, |l| u64::from(l.in_flight()))
        })?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
