//! Round robin (VDS 2): the next usable path of the best tier, in slot order.
//!
//! The rotation cursor is per CPU, so the only write per I/O is to this
//! CPU's own cache line. Each CPU visits every usable path once per cycle;
//! across CPUs the shares are equal on average.

use super::{Context, Selector, Settled, next_in_rotation};
use crate::IoRequest;

pub(crate) struct RoundRobin;

impl Selector for RoundRobin {
    const READS_CONFIG: bool = false;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let slot = next_in_rotation(ctx.best_tier(!0), ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }

    const ROTATES: bool = true;

    fn rotation_set<const N: usize>(state: &Settled<'_, N>) -> u64 {
        state.best_tier(!0)
    }
}
