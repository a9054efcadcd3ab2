//! Service time (vendor policy 2): the path that would finish this I/O
//! soonest, estimated as (bytes in flight + this I/O) ÷ relative throughput,
//! where the throughput is the path's weight.
//!
//! The comparison cross-multiplies (no division) in 64 bits: bytes in
//! flight are below 2^44 (the packed load word), an I/O below 2^32 bytes and
//! a weight at most [`MAX_WEIGHT`], so neither product can overflow. Ties
//! take turns from this CPU's cursor. The scan stops at an idle path of the
//! heaviest weight: nothing can beat it.

use super::{Context, MAX_WEIGHT, Selector};
use crate::IoRequest;

pub(crate) struct ServiceTime;

// (2^44 + 2^32) * MAX_WEIGHT fits in 64 bits.
const _: () = assert!(((1u128 << 44) + (1u128 << 32)) * MAX_WEIGHT as u128 <= u64::MAX as u128);

impl Selector for ServiceTime {
    const READS_CONFIG: bool = true;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        if candidates == 0 {
            return None;
        }
        let heaviest = u64::from(ctx.config.heaviest_weight());
        let extra = u64::from(io.bytes);
        // The empty best (bytes 1 / weight 0, "infinitely slow") loses to
        // any path with a weight; weights are 1..=MAX_WEIGHT once set, 0
        // only for a path that arrived during this read.
        let (mut best, mut best_bytes, mut best_weight) = (None, 1u64, 0u64);
        // Two passes from this CPU's cursor, so ties take turns (see
        // `least_by_key`).
        let from = !0u64 << (ctx.cursor() & 63);
        'scan: for mut rest in [candidates & from, candidates & !from] {
            while rest != 0 {
                let slot = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let in_flight = ctx.load(slot).map_or(1 << 44, crate::stats::Counters::in_flight_bytes);
                let weight = u64::from(ctx.config.weight(slot));
                let bytes = in_flight + extra;
                // bytes / weight < best_bytes / best_weight, in 64 bits (see above).
                if bytes.wrapping_mul(best_weight) < best_bytes.wrapping_mul(weight) {
                    (best, best_bytes, best_weight) = (Some(slot), bytes, weight);
                    if in_flight == 0 && weight >= heaviest {
                        break 'scan;
                    }
                }
            }
        }
        // Only weightless candidates (a race with an arrival): rotate.
        let best = best.or_else(|| super::next_in_rotation(candidates, ctx.cursor()))?;
        ctx.advance_past(best);
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use crate::{AccessState, IoRequest, LoadBalancePolicy, Lun, PathId, PathPolicy, VendorPolicy};

    #[test]
    fn huge_loads_compare_exactly_and_an_idle_heaviest_path_ends_the_scan() {
        let lun: Lun<4> = Lun::new(LoadBalancePolicy::RoundRobin);
        let slots = [0, 1, 2].map(|i| lun.add_path(PathId::new(1, i), AccessState::ActiveOptimized).unwrap());
        let weights = [super::MAX_WEIGHT, super::MAX_WEIGHT - 1, 1];
        let settings = [0, 1, 2].map(|i| PathPolicy {
            path_id: PathId::new(1, i),
            primary: true,
            weight: weights[usize::try_from(i).unwrap()],
        });
        let st = LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime);
        lun.set_load_balance_policy(st, &settings).unwrap();
        // Terabytes in flight on the two heavy paths: 4 GiB - 1 bytes per
        // request, 2^12 requests on path 0, 2^12 - 1 on path 1.
        let big = IoRequest::read(u32::MAX);
        let mut tickets: heapless::Vec<crate::IoTicket, 8192> = heapless::Vec::new();
        for _ in 0..4096 {
            tickets.push(lun.start(slots[0], &big)).unwrap();
        }
        for _ in 0..4095 {
            tickets.push(lun.start(slots[1], &big)).unwrap();
        }
        // Path 0: (2^12 (2^32-1) + 2^32-1) / 10^6; path 1: (2^12 (2^32-1)) / (10^6-1):
        // path 1 is the faster by a hair; path 2 (weight 1, idle) far slower.
        assert_eq!(lun.select(&big), Ok(slots[1]));
        for t in tickets {
            lun.complete(t, 1, crate::IoOutcome::Success);
        }
        // All idle: the first heaviest path met from the cursor wins at once.
        let first = lun.select(&big).unwrap();
        assert!(first == slots[0] || first == slots[1]);
    }
}
