//! Least blocks (VDS 6): the path with the fewest bytes in flight; ties take
//! turns.
//!
//! Sequential affinity: when an I/O starts where the LUN's previous one
//! ended, it stays on that I/O's path as long as the path's bytes in flight
//! stay within the LUN's sequential window, so the array's read-ahead and
//! write cache see one stream. The stream is tracked per LUN, not per path
//! (Microsoft's sample tracks it per path and compares LBAs across LUNs).
//! A window of 0 turns affinity off and with it the per-LUN write.

use super::{Context, Selector, least_by_key};
use crate::IoRequest;
use crate::lun::bit;
use crate::stats::Counters;
use crate::sync::Ordering::Relaxed;

pub(crate) struct LeastBlocks;

/// The stream word packs `slot + 1` above a 56-bit next LBA (2^56 blocks is
/// far beyond any LUN), so one atomic store records the stream.
const LBA_BITS: u32 = 56;
const LBA_MASK: u64 = (1 << LBA_BITS) - 1;

impl Selector for LeastBlocks {
    const READS_CONFIG: bool = false;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        let window = ctx.lun.sequential_window();
        // Affinity needs a window and an I/O that says where it is: both
        // nonzero, tested with one multiply (two u32s: no overflow in u64)
        // instead of two tests and a branch on their conjunction.
        let tracked = u64::from(window) * u64::from(io.blocks) != 0;
        if tracked {
            let stream = ctx.lun.stream.load(Relaxed);
            if stream & LBA_MASK == io.lba & LBA_MASK
                && let Some(slot) = stay_on_stream(ctx, stream, window, candidates, io)
            {
                return Some(slot);
            }
        }
        let slot = least_by_key(candidates, ctx.cursor(), |s| {
            ctx.load(s).map_or(u64::MAX, Counters::in_flight_bytes)
        })?;
        ctx.advance_past(slot);
        if tracked {
            record(ctx, slot, io);
        }
        Some(slot)
    }
}

/// The stream's path, if this I/O continues the stream (its LBA matched)
/// and the path is a candidate whose bytes in flight stay within the
/// window. Out of line so that the common, non-sequential I/O does not
/// load the stream path's counters before the LBA test fails.
#[inline(never)]
fn stay_on_stream<const N: usize>(
    ctx: &Context<'_, N>,
    stream: u64,
    window: u32,
    candidates: u64,
    io: &IoRequest,
) -> Option<usize> {
    let slot = ((stream >> LBA_BITS) as usize).checked_sub(1)?;
    let fits = ctx.load(slot).is_some_and(|l| l.in_flight_bytes() + u64::from(io.bytes) <= u64::from(window));
    if fits && candidates & bit(slot) != 0 {
        record(ctx, slot, io);
        return Some(slot);
    }
    None
}

fn record<const N: usize>(ctx: &Context<'_, N>, slot: usize, io: &IoRequest) {
    let next = io.lba.wrapping_add(u64::from(io.blocks)) & LBA_MASK;
    ctx.lun.stream.store(((slot as u64 + 1) << LBA_BITS) | next, Relaxed);
}
