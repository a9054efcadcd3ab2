//! Round robin with subset (VDS 3): rotate over the primary paths of the
//! best tier; the other paths of that tier take I/O only while none of its
//! primary paths is usable.
//!
//! Like every policy it first restricts to the best usable tier (DESIGN §2),
//! so a primary path in a lower ALUA tier never wins over a usable path of
//! a better tier: the subset chooses within the tier, not across tiers.

use super::{Context, Selector, Settled, next_in_rotation};
use crate::IoRequest;

pub(crate) struct RoundRobinWithSubset;

impl Selector for RoundRobinWithSubset {
    const READS_CONFIG: bool = true;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let candidates = subset_of(ctx.best_tier(!0), ctx.config.primary());
        let slot = next_in_rotation(candidates, ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }

    const ROTATES: bool = true;

    fn rotation_set<const N: usize>(state: &Settled<'_, N>) -> u64 {
        subset_of(state.best_tier(!0), state.table.primary)
    }
}

/// The primary paths of `tier`, or all of it if none of them is usable.
fn subset_of(tier: u64, primary: u64) -> u64 {
    let subset = tier & primary;
    if subset == 0 { tier } else { subset }
}
