//! Service time (vendor policy 2): the path that would finish this I/O
//! soonest, estimated as (bytes in flight + this I/O) ÷ relative throughput,
//! where the throughput is the path's weight.
//!
//! The scan goes by weight level, heaviest first (the configuration keeps
//! the distinct weights in order). Within a level the weight is common, so
//! the fewest bytes in flight wins, found by the same scan as least blocks:
//! one load and one compare per path, ties taking turns from this CPU's
//! cursor, stopping at an idle path. Before each lighter level one bound
//! decides whether it can matter at all: an idle path of weight `w` still
//! needs `io / w`, so once that is no better than the best found, no path
//! of this level or any lighter one can win, and the scan ends. With a few
//! distinct weights (the usual case) most I/Os look at one or two levels.
//!
//! Estimates compare by cross-multiplying (no division) in 64 bits: bytes
//! in flight are below 2^44 (the packed load word), an I/O below 2^32 bytes
//! and a weight at most [`MAX_WEIGHT`], so neither product can overflow. Of
//! equal estimates on different levels the heavier path wins (it was
//! found first).

use super::{Context, MAX_WEIGHT, Selector, least_keyed};
use crate::IoRequest;
use crate::path::in_table;
use crate::stats::Counters;

pub(crate) struct ServiceTime;

// (2^44 + 2^32) * MAX_WEIGHT fits in 64 bits.
const _: () = assert!(((1u128 << 44) + (1u128 << 32)) * MAX_WEIGHT as u128 <= u64::MAX as u128);

impl Selector for ServiceTime {
    const READS_CONFIG: bool = true;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        let extra = u64::from(io.bytes);
        let cursor = ctx.cursor();
        // The empty best (bytes 1 / weight 0, "infinitely slow") loses to
        // any path with a weight; weights are 1..=MAX_WEIGHT once set, 0
        // only for a path that arrived during this read.
        let (mut best, mut best_bytes, mut best_weight) = (None, 1u64, 0u64);
        let mut level = ctx.config.level_count();
        while let Some(index) = level.checked_sub(1) {
            level = index;
            let Some((weight, members)) = ctx.config.level_weight(index) else { break };
            let weight = u64::from(weight);
            // extra / weight >= best_bytes / best_weight: not even an idle
            // path of this weight (or a lighter one) finishes sooner.
            if extra.wrapping_mul(best_weight) >= best_bytes.wrapping_mul(weight) {
                break;
            }
            let in_flight = |s| ctx.load(s).map_or(u64::MAX, Counters::in_flight_bytes);
            let Some((slot, bytes)) = least_keyed::<N>(candidates & members, cursor, in_flight) else {
                continue;
            };
            let bytes = bytes + extra;
            if bytes.wrapping_mul(best_weight) < best_bytes.wrapping_mul(weight) {
                (best, best_bytes, best_weight) = (Some(slot), bytes, weight);
                if bytes == extra {
                    break;
                }
            }
        }
        // Only weightless candidates (a race with an arrival): rotate.
        let best = best.or_else(|| super::next_in_rotation(candidates, cursor).map(in_table::<N>))?;
        ctx.advance_past(best);
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

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
        // All idle: the heaviest path, whatever the cursor.
        for _ in 0..3 {
            assert_eq!(lun.select(&big), Ok(slots[0]));
        }
    }

    #[test]
    fn equal_estimates_go_to_the_heavier_path() {
        let lun: Lun<4> = Lun::new(LoadBalancePolicy::RoundRobin);
        let slots = [0, 1].map(|i| lun.add_path(PathId::new(1, i), AccessState::ActiveOptimized).unwrap());
        let settings = [(0, 1), (1, 2)].map(|(i, weight)| PathPolicy {
            path_id: PathId::new(1, i),
            primary: true,
            weight,
        });
        lun.set_load_balance_policy(LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime), &settings)
            .unwrap();
        // (4096 + 4096) / 1 on the light path, (3 * 4096 + 4096) / 2 on the heavy one.
        let io = IoRequest::read(4096);
        let light = lun.start(slots[0], &io);
        let heavy = [(); 3].map(|()| lun.start(slots[1], &io));
        for _ in 0..4 {
            assert_eq!(lun.select(&io), Ok(slots[1]), "whatever the cursor");
        }
        lun.complete(light, 1, crate::IoOutcome::Success);
        for t in heavy {
            lun.complete(t, 1, crate::IoOutcome::Success);
        }
    }

    /// Every pick has the least estimated time of all usable paths, and of
    /// equal estimates the heaviest weight: the scan by level, with its
    /// bound and its early exits, finds what a scan of every path would.
    #[test]
    #[cfg_attr(miri, ignore = "hundreds of LUN states; the logic is not unsafe")]
    #[allow(clippy::cast_possible_truncation)] // small random numbers
    fn picks_are_the_least_estimated_time_over_random_weights_and_loads() {
        let st = LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..300 {
            let lun: Lun<8> = Lun::new(LoadBalancePolicy::RoundRobin);
            let paths = 1 + next(8);
            let slots: std::vec::Vec<_> = (0..paths)
                .map(|i| lun.add_path(PathId::new(1, i), AccessState::ActiveOptimized).unwrap())
                .collect();
            // Few distinct weights (shared levels) or many, small or huge.
            let pool = [[1, 2, 3, 5], [1, 1, 2, 2], [7, 100, 1000, super::MAX_WEIGHT]][next(3) as usize];
            let weights: std::vec::Vec<u32> = (0..paths).map(|_| pool[next(4) as usize]).collect();
            let settings: std::vec::Vec<PathPolicy> = (0..paths)
                .map(|i| PathPolicy {
                    path_id: PathId::new(1, i),
                    primary: true,
                    weight: weights[i as usize],
                })
                .collect();
            lun.set_load_balance_policy(st, &settings).unwrap();
            let mut tickets = std::vec::Vec::new();
            for _ in 0..next(24) {
                let slot = slots[next(paths) as usize];
                // Coarse sizes: equal estimates on different levels happen.
                let io = IoRequest::read(4096 << next(3));
                tickets.push(lun.start(slot, &io));
            }
            for _ in 0..4 {
                let io = IoRequest::read(512 * (1 + next(256) as u32));
                let time = |i: usize| {
                    let in_flight = lun.slot_statistics(slots[i]).unwrap().in_flight_bytes;
                    (u128::from(in_flight) + u128::from(io.bytes), u128::from(weights[i]))
                };
                let picked = lun.select(&io).unwrap();
                let pick = slots.iter().position(|s| *s == picked).unwrap();
                let (pb, pw) = time(pick);
                for i in 0..slots.len() {
                    let (b, w) = time(i);
                    assert!(pb * w <= b * pw, "path {i} ({b} / {w}) beats the pick {pick} ({pb} / {pw})");
                    if pb * w == b * pw {
                        assert!(weights[pick] >= weights[i], "a tie goes to the heavier path");
                    }
                }
            }
            for t in tickets {
                lun.complete(t, 1, crate::IoOutcome::Success);
            }
        }
    }
}
