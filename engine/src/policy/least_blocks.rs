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
use crate::path::in_table;
use crate::stats::Counters;
use crate::sync::Ordering::Relaxed;

pub(crate) struct LeastBlocks;

/// The stream word packs the next LBA above `slot + 1` (0: no stream), so
/// one atomic store records the stream. The LBA keeps its low 56 bits (2^56
/// blocks is far beyond any LUN); with the slot in the low byte, neither the
/// test nor the record needs a 64-bit mask constant.
const SLOT_BITS: u32 = 8;

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
            // The LBA bits of the word equal this I/O's start.
            if stream ^ (io.lba << SLOT_BITS) < 1 << SLOT_BITS
                && let Some(slot) = stay_on_stream(ctx, stream, window, candidates, io)
            {
                return Some(slot);
            }
        }
        let slot = least_by_key::<N>(candidates, ctx.cursor(), |s| {
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
/// window.
#[inline]
fn stay_on_stream<const N: usize>(
    ctx: &Context<'_, N>,
    stream: u64,
    window: u32,
    candidates: u64,
    io: &IoRequest,
) -> Option<usize> {
    // `record` writes only slots of the table (see `in_table`).
    let slot = in_table::<N>(((stream & 0xFF) as usize).checked_sub(1)?);
    let fits = ctx.load(slot).is_some_and(|l| l.in_flight_bytes() + u64::from(io.bytes) <= u64::from(window));
    if fits && candidates & bit(slot) != 0 {
        record(ctx, slot, io);
        return Some(slot);
    }
    None
}

fn record<const N: usize>(ctx: &Context<'_, N>, slot: usize, io: &IoRequest) {
    let next = io.lba.wrapping_add(u64::from(io.blocks));
    ctx.lun.stream.store(next << SLOT_BITS | (slot as u64 + 1), Relaxed);
}

#[cfg(test)]
mod tests {
    extern crate std;

    use crate::{AccessState, IoOutcome, IoRequest, LoadBalancePolicy, Lun, LunSettings, PathId};

    fn lun(window: u32) -> Lun<4> {
        let settings = LunSettings { sequential_window: window, ..LunSettings::for_tick_rate(1_000_000) };
        let lun = Lun::with_settings(LoadBalancePolicy::LeastBlocks, settings);
        for i in 0..3 {
            lun.add_path(PathId::new(1, i), AccessState::ActiveOptimized).unwrap();
        }
        lun
    }

    /// A 4 KiB read at block `lba` (8 blocks of 512 bytes).
    fn read(lba: u64) -> IoRequest {
        IoRequest::read(4096).at_lba(lba, 8)
    }

    #[test]
    fn a_stream_stays_on_its_path_while_its_bytes_fit_the_window() {
        let lun = lun(4 * 4096);
        let mut tickets = std::vec::Vec::new();
        let first = lun.dispatch(&read(0)).unwrap();
        let stream = first.slot();
        tickets.push(first);
        // Three more that continue the stream: the stream's path, although
        // the other two are idle, up to 4 x 4 KiB in flight.
        for lba in [8, 16, 24] {
            let t = lun.dispatch(&read(lba)).unwrap();
            assert_eq!(t.slot(), stream, "lba {lba} continues the stream");
            tickets.push(t);
        }
        // The fifth would put 20 KiB in flight: the least loaded path.
        let over = lun.dispatch(&read(32)).unwrap();
        assert_ne!(over.slot(), stream, "over the window");
        // The stream now continues on the path that took the fifth.
        let next = lun.dispatch(&read(40)).unwrap();
        assert_eq!(next.slot(), over.slot(), "the stream moved with its last I/O");
        // An I/O elsewhere goes to the least loaded path: the third one.
        let elsewhere = lun.dispatch(&read(4096)).unwrap();
        assert!(elsewhere.slot() != stream && elsewhere.slot() != over.slot());
        for t in tickets.into_iter().chain([over, next, elsewhere]) {
            lun.complete(t, 1, IoOutcome::Success);
        }
    }

    #[test]
    fn no_window_or_no_lba_means_no_affinity() {
        for (window, blocks) in [(0, 8), (1 << 20, 0)] {
            let lun = lun(window);
            let io = |lba: u64| IoRequest::read(4096).at_lba(lba, blocks);
            let a = lun.dispatch(&io(0)).unwrap();
            let b = lun.dispatch(&io(if blocks == 0 { 0 } else { 8 })).unwrap();
            assert_ne!(a.slot(), b.slot(), "window {window}, blocks {blocks}: the idle path wins");
            lun.complete(a, 1, IoOutcome::Success);
            lun.complete(b, 1, IoOutcome::Success);
        }
    }
}
