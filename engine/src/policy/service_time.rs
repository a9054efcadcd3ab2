//! Service time (vendor policy 2): the path that would finish this I/O
//! soonest, estimated as (bytes in flight + this I/O) ÷ relative throughput,
//! where the throughput is the path's weight.
//!
//! The comparison cross-multiplies in 128 bits (no division, no overflow for
//! any 64-bit byte count and 32-bit weight); ties take turns from this CPU's
//! cursor.

use super::{Context, Selector};
use crate::IoRequest;

pub(crate) struct ServiceTime;

impl Selector for ServiceTime {
    const READS_CONFIG: bool = true;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        let start = ctx.cursor() & 63;
        let mut rest = candidates.rotate_right(start);
        let mut best: Option<(usize, u128, u128)> = None;
        while rest != 0 {
            let slot = ((rest.trailing_zeros() + start) & 63) as usize;
            rest &= rest - 1;
            let Some(load) = ctx.load(slot) else { continue };
            let bytes = u128::from(load.in_flight_bytes()) + u128::from(io.bytes);
            let throughput = u128::from(ctx.config.weight(slot).max(1));
            let better = match best {
                None => true,
                // bytes/throughput < best_bytes/best_throughput
                Some((_, b, t)) => bytes * t < b * throughput,
            };
            if better {
                best = Some((slot, bytes, throughput));
            }
        }
        let (slot, _, _) = best?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
