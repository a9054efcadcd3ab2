//! Round robin with subset (VDS 3): rotate over the primary paths of the
//! best tier; the other paths of that tier take I/O only while none of its
//! primary paths is usable.
//!
//! Like every policy it first restricts to the best usable tier (DESIGN §2),
//! so a primary path in a lower ALUA tier never wins over a usable path of
//! a better tier: the subset chooses within the tier, not across tiers.

use super::{Context, Selector, next_in_rotation};
use crate::IoRequest;

pub(crate) struct RoundRobinWithSubset;

impl Selector for RoundRobinWithSubset {
    const READS_CONFIG: bool = true;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let tier = ctx.best_tier(!0);
        let subset = tier & ctx.config.primary();
        let candidates = if subset == 0 { tier } else { subset };
        let slot = next_in_rotation(candidates, ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
