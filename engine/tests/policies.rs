//! Behaviour of every load-balance policy (DESIGN §2): tiers, rotation,
//! load, weights, failover and failback, flap damping, and the balance of
//! the in-flight counters.

use rsdsm_engine::{
    AccessState, FailbackMode, FlapDamping, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun,
    LunSettings, NoPath, PathId, PathPolicy, PathSlot, Reinstatement, VendorPolicy,
};

const WRR: LoadBalancePolicy = LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin);
const ST: LoadBalancePolicy = LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime);
const AL: LoadBalancePolicy = LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency);

fn id(n: usize) -> PathId {
    PathId::new(0x5EED, n as u64)
}

fn settings(failback: FailbackMode) -> LunSettings {
    LunSettings { failback, flap: FlapDamping::DISABLED, sequential_window: 0 }
}

/// A LUN with one path per entry of `access`, path ids 0.., slots 0...
fn lun_with<const N: usize>(policy: LoadBalancePolicy, access: &[AccessState]) -> (Lun<N>, Vec<PathSlot>) {
    let lun = Lun::<N>::with_settings(policy, settings(FailbackMode::Immediate));
    let slots: Vec<_> = access.iter().enumerate().map(|(n, &a)| lun.add_path(id(n), a).unwrap()).collect();
    for (n, s) in slots.iter().enumerate() {
        assert_eq!(s.index(), n);
    }
    (lun, slots)
}

/// Sets `policy` with per-path `(primary, weight)` given by `admin(index)`.
fn set<const N: usize>(lun: &Lun<N>, policy: LoadBalancePolicy, admin: impl Fn(usize) -> (bool, u32)) {
    let paths: Vec<_> = lun
        .load_balance_policy()
        .unwrap()
        .paths
        .iter()
        .map(|p| {
            let (primary, weight) = admin(p.path_id.path_id as usize);
            PathPolicy { path_id: p.path_id, primary, weight }
        })
        .collect();
    lun.set_load_balance_policy(policy, &paths).unwrap();
}

/// Valid, neutral admin settings for any policy: equal weights, every path
/// primary (failover only: the first one).
fn set_neutral<const N: usize>(lun: &Lun<N>, policy: LoadBalancePolicy) {
    set(lun, policy, |n| (policy != LoadBalancePolicy::FailoverOnly || n == 0, 1));
}

fn io(n: u64) -> IoRequest {
    IoRequest::read(4096).at(n)
}

/// Picks `count` paths, completing each I/O at once.
fn picks<const N: usize>(lun: &Lun<N>, count: usize) -> Vec<usize> {
    (0..count)
        .map(|n| {
            let t = lun.dispatch(&io(n as u64)).unwrap();
            let slot = t.slot().index();
            lun.complete(t, n as u64 + 1, IoOutcome::Success);
            slot
        })
        .collect()
}

fn shares(picks: &[usize], paths: usize) -> Vec<usize> {
    let mut s = vec![0; paths];
    for &p in picks {
        s[p] += 1;
    }
    s
}

fn in_flight_of<const N: usize>(lun: &Lun<N>, slot: usize) -> u32 {
    lun.slot_statistics(slot_handle(lun, slot)).unwrap().in_flight
}

fn slot_handle<const N: usize>(lun: &Lun<N>, slot: usize) -> PathSlot {
    lun.path_info().unwrap().iter().find(|i| i.slot.index() == slot).unwrap().slot
}

#[test]
fn no_policy_picks_an_unusable_path_and_every_policy_reports_no_path() {
    use AccessState::*;
    for policy in LoadBalancePolicy::ALL {
        let access =
            [ActiveOptimized, ActiveOptimized, Unavailable, Transitioning, ActiveOptimized, ActiveOptimized];
        let (lun, s) = lun_with::<8>(LoadBalancePolicy::RoundRobin, &access);
        let extra = [lun.add_path(id(6), ActiveNonOptimized).unwrap(), lun.add_path(id(7), Standby).unwrap()];
        lun.fail_path(s[0], 1).unwrap(); // failed
        lun.begin_verify(s[1]).unwrap(); // verifying
        lun.remove_path(s[4]).unwrap(); // removed
        set(&lun, policy, |n| (policy != LoadBalancePolicy::FailoverOnly || n == 0, 1 + n as u32 % 3));
        let mut outstanding = Vec::new();
        for n in 0..60 {
            let t = lun.dispatch(&io(n)).unwrap();
            assert_eq!(t.slot(), s[5], "{policy}: the only optimized usable path");
            if n % 2 == 0 { outstanding.push(t) } else { lun.complete(t, n + 3, IoOutcome::Success) }
        }
        lun.fail_path(s[5], 100).unwrap();
        for n in 0..20 {
            assert_eq!(lun.select(&io(n)), Ok(extra[0]), "{policy}: non-optimized before standby");
        }
        lun.set_access_state(extra[0], Transitioning).unwrap();
        for n in 0..20 {
            assert_eq!(lun.select(&io(n)), Ok(extra[1]), "{policy}: standby promoted");
        }
        lun.fail_path(extra[1], 200).unwrap();
        assert_eq!(lun.usable_paths(), 0);
        assert_eq!(lun.select(&io(0)), Err(NoPath), "{policy}");
        assert_eq!(lun.dispatch(&io(0)).unwrap_err(), NoPath, "{policy}");
        for t in outstanding {
            lun.complete(t, 300, IoOutcome::Error);
        }
        assert_eq!(lun.in_flight(), 0);
    }
}

#[test]
fn every_policy_prefers_the_optimized_tier_over_cheaper_lower_tiers() {
    use AccessState::*;
    for policy in LoadBalancePolicy::ALL {
        let (lun, s) =
            lun_with::<8>(policy, &[Standby, ActiveNonOptimized, ActiveOptimized, ActiveOptimized]);
        // Lower tiers look better on every policy's metric: lowest weight,
        // primary, idle; the optimized paths carry load and heavy weights.
        let primary = if policy == LoadBalancePolicy::FailoverOnly { |n| n == 0 } else { |n| n < 2 };
        set(&lun, policy, |n| (primary(n), if n < 2 { 1 } else { 1000 }));
        let held: Vec<IoTicket> =
            (0..8).map(|n| lun.start(s[2 + n % 2], &IoRequest::read(1 << 20))).collect();
        for n in 0..40 {
            let slot = lun.select(&io(n)).unwrap();
            assert!(slot == s[2] || slot == s[3], "{policy}: picked {slot:?} outside the optimized tier");
        }
        lun.fail_path(s[2], 1).unwrap();
        lun.fail_path(s[3], 1).unwrap();
        assert_eq!(lun.select(&io(0)), Ok(s[1]), "{policy}: non-optimized next");
        lun.fail_path(s[1], 1).unwrap();
        assert_eq!(lun.select(&io(0)), Ok(s[0]), "{policy}: standby last");
        for t in held {
            lun.complete(t, 5, IoOutcome::Success);
        }
    }
}

#[test]
fn round_robin_visits_each_usable_path_once_per_cycle() {
    let (lun, s) = lun_with::<8>(LoadBalancePolicy::RoundRobin, &[AccessState::ActiveOptimized; 5]);
    lun.fail_path(s[2], 1).unwrap();
    let p = picks(&lun, 4 * 25);
    for cycle in p.chunks(4) {
        let mut c = cycle.to_vec();
        c.sort_unstable();
        assert_eq!(c, [0, 1, 3, 4], "one visit per usable path per cycle: {cycle:?}");
    }
    // Per CPU: another CPU has its own full rotation.
    let other: Vec<_> =
        (0..8).map(|_| lun.select(&IoRequest::read(512).on_cpu(3)).unwrap().index()).collect();
    let mut first = other[..4].to_vec();
    first.sort_unstable();
    assert_eq!(first, [0, 1, 3, 4]);
    assert_eq!(other[..4], other[4..]);
}

#[test]
fn round_robin_with_subset_uses_only_primaries_while_one_is_usable() {
    use AccessState::*;
    let (lun, s) = lun_with::<8>(
        LoadBalancePolicy::RoundRobinWithSubset,
        &[ActiveOptimized, ActiveOptimized, ActiveOptimized, ActiveOptimized, Standby],
    );
    set(&lun, LoadBalancePolicy::RoundRobinWithSubset, |n| (n == 1 || n == 3, 1));
    let p = picks(&lun, 100);
    assert_eq!(shares(&p, 5), [0, 50, 0, 50, 0], "rotation over the primary subset");
    assert!(p.windows(2).all(|w| w[0] != w[1]), "alternates");
    lun.fail_path(s[1], 1).unwrap();
    assert!(picks(&lun, 20).iter().all(|&p| p == 3));
    lun.fail_path(s[3], 2).unwrap();
    let p = picks(&lun, 30);
    assert_eq!(shares(&p, 5), [15, 0, 15, 0, 0], "non-primary active paths once no primary is usable");
    lun.fail_path(s[0], 3).unwrap();
    lun.fail_path(s[2], 3).unwrap();
    assert!(picks(&lun, 10).iter().all(|&p| p == 4), "standby last");
    lun.reinstate_path(s[3], 4).unwrap();
    assert!(picks(&lun, 10).iter().all(|&p| p == 3), "back to the primary subset at once");
}

#[test]
fn least_queue_depth_picks_a_least_loaded_path_and_rotates_ties() {
    let (lun, s) = lun_with::<8>(LoadBalancePolicy::LeastQueueDepth, &[AccessState::ActiveOptimized; 4]);
    // Uneven load: 3, 1, 0, 0 in flight.
    let mut held: Vec<IoTicket> = [0, 0, 0, 1].iter().map(|&i| lun.start(s[i], &io(0))).collect();
    let p: Vec<_> = (0..10).map(|n| lun.select(&io(n)).unwrap().index()).collect();
    assert!(p.iter().all(|&x| x == 2 || x == 3), "{p:?}");
    assert!(p.contains(&2) && p.contains(&3), "ties rotate, not lowest slot: {p:?}");
    for t in held.drain(..) {
        lun.complete(t, 1, IoOutcome::Success);
    }
    // Equal load (each I/O completes at once): equal shares.
    let p = picks(&lun, 1000);
    for share in shares(&p, 4) {
        assert!(share.abs_diff(250) <= 1, "{:?}", shares(&p, 4));
    }
    // Constant queue depth: every pick has the least in flight.
    let mut queue = std::collections::VecDeque::new();
    let mut count = [0usize; 4];
    for n in 0..400 {
        let loads: Vec<_> = (0..4).map(|i| in_flight_of(&lun, i)).collect();
        let t = lun.dispatch(&io(n)).unwrap();
        let pick = t.slot().index();
        assert_eq!(loads[pick], *loads.iter().min().unwrap(), "{loads:?} -> {pick}");
        count[pick] += 1;
        queue.push_back(t);
        if queue.len() > 6 {
            lun.complete(queue.pop_front().unwrap(), n, IoOutcome::Success);
        }
    }
    assert!(count.iter().all(|&c| c.abs_diff(100) <= 1), "{count:?}");
    for t in queue {
        lun.complete(t, 0, IoOutcome::Success);
    }
}

#[test]
fn least_blocks_picks_the_fewest_bytes_in_flight_and_rotates_ties() {
    let (lun, s) = lun_with::<8>(LoadBalancePolicy::LeastBlocks, &[AccessState::ActiveOptimized; 4]);
    // More requests but fewer bytes on slot 0: least blocks counts bytes.
    let mut held = vec![lun.start(s[0], &IoRequest::read(512)), lun.start(s[0], &IoRequest::read(512))];
    held.push(lun.start(s[1], &IoRequest::write(65536)));
    held.push(lun.start(s[2], &IoRequest::read(8192)));
    held.push(lun.start(s[3], &IoRequest::read(4096)));
    for n in 0..5 {
        assert_eq!(lun.select(&io(n)), Ok(s[0]));
    }
    for t in held {
        lun.complete(t, 1, IoOutcome::Success);
    }
    let p = picks(&lun, 1000);
    for share in shares(&p, 4) {
        assert!(share.abs_diff(250) <= 1, "{:?}", shares(&p, 4));
    }
    // Constant outstanding bytes: each pick has the fewest bytes in flight.
    let mut queue = std::collections::VecDeque::new();
    for n in 0..300u64 {
        let bytes: Vec<_> = (0..4).map(|i| lun.slot_statistics(s[i]).unwrap().in_flight_bytes).collect();
        let r = IoRequest::read(512 * (1 + (n as u32 * 7) % 16)).at(n);
        let t = lun.dispatch(&r).unwrap();
        assert_eq!(bytes[t.slot().index()], *bytes.iter().min().unwrap(), "{bytes:?}");
        queue.push_back(t);
        if queue.len() > 5 {
            lun.complete(queue.pop_front().unwrap(), n, IoOutcome::Success);
        }
    }
    for t in queue {
        lun.complete(t, 0, IoOutcome::Success);
    }
}

#[test]
fn weighted_paths_uses_the_lowest_weight_and_rotates_equal_lowest() {
    let (lun, s) = lun_with::<8>(LoadBalancePolicy::WeightedPaths, &[AccessState::ActiveOptimized; 4]);
    set(&lun, LoadBalancePolicy::WeightedPaths, |n| (true, [3, 1, 1, 2][n]));
    let p = picks(&lun, 100);
    assert_eq!(shares(&p, 4), [0, 50, 50, 0]);
    assert!(p.windows(2).all(|w| w[0] != w[1]), "equal lowest weights take turns");
    lun.fail_path(s[1], 1).unwrap();
    assert_eq!(shares(&picks(&lun, 10), 4), [0, 0, 10, 0]);
    lun.fail_path(s[2], 1).unwrap();
    assert_eq!(shares(&picks(&lun, 10), 4), [0, 0, 0, 10], "next lowest weight");
    lun.fail_path(s[3], 1).unwrap();
    assert_eq!(shares(&picks(&lun, 10), 4), [10, 0, 0, 0]);
}

#[test]
fn weighted_round_robin_shares_follow_weights_and_interleave() {
    let (lun, s) = lun_with::<8>(WRR, &[AccessState::ActiveOptimized; 3]);
    set(&lun, WRR, |n| (true, [4, 4, 2][n]));
    let p = picks(&lun, 10 * 20);
    for cycle in p.chunks(10) {
        let got = shares(cycle, 3);
        for (g, w) in got.iter().zip([4, 4, 2]) {
            assert!(g.abs_diff(w) <= 1, "cycle {cycle:?}");
        }
    }
    assert!(p.windows(2).all(|w| w[0] != w[1]), "interleaved, not in bursts: {:?}", &p[..20]);
    // Very uneven weights still give exact shares.
    set(&lun, WRR, |n| (true, [1, 10, 3][n]));
    let p = picks(&lun, 14 * 10);
    for cycle in p.chunks(14) {
        let got = shares(cycle, 3);
        for (g, w) in got.iter().zip([1, 10, 3]) {
            assert!(g.abs_diff(w) <= 1, "cycle {cycle:?}");
        }
    }
    // A failed path drops out; the others keep their ratio.
    lun.fail_path(s[1], 1).unwrap();
    let p = picks(&lun, 4 * 10);
    assert_eq!(shares(&p, 3), [10, 0, 30]);
}

#[test]
fn service_time_prefers_less_in_flight_bytes_per_weight() {
    let (lun, s) = lun_with::<8>(ST, &[AccessState::ActiveOptimized; 3]);
    set(&lun, ST, |n| (true, [4, 1, 2][n]));
    let weights = [4u128, 1, 2];
    // Idle: cost = io / weight; the heaviest weight wins.
    assert_eq!(lun.select(&io(0)), Ok(s[0]));
    // Keep a varying load and check each pick against the formula.
    let mut queue = std::collections::VecDeque::new();
    let mut count = [0usize; 3];
    for n in 0..500u64 {
        let r = IoRequest::write(4096 * (1 + (n as u32 * 5) % 8)).at(n);
        let cost: Vec<u128> = (0..3)
            .map(|i| {
                let bytes =
                    u128::from(lun.slot_statistics(s[i]).unwrap().in_flight_bytes) + u128::from(r.bytes);
                // Compare bytes/weight via a common multiple of the weights.
                bytes * (4 / weights[i])
            })
            .collect();
        let t = lun.dispatch(&r).unwrap();
        let pick = t.slot().index();
        assert_eq!(cost[pick], *cost.iter().min().unwrap(), "{cost:?} -> {pick}");
        count[pick] += 1;
        queue.push_back(t);
        if queue.len() > 10 {
            lun.complete(queue.pop_front().unwrap(), n, IoOutcome::Success);
        }
    }
    assert!(count[0] > count[2] && count[2] > count[1] && count[1] > 0, "{count:?}");
    for t in queue {
        lun.complete(t, 0, IoOutcome::Success);
    }
}

#[test]
fn adaptive_latency_sends_most_io_to_the_fast_path() {
    let (lun, s) = lun_with::<8>(AL, &[AccessState::ActiveOptimized; 2]);
    let (fast, slow) = (s[1], s[0]);
    let latency = |slot: PathSlot| if slot == fast { 10 } else { 1000 };
    let mut outstanding: Vec<(u64, IoTicket)> = Vec::new();
    let mut count = [0usize; 2];
    for now in 1..=20_000u64 {
        let (due, rest): (Vec<_>, Vec<_>) = outstanding.into_iter().partition(|(d, _)| *d <= now);
        outstanding = rest;
        for (_, t) in due {
            lun.complete(t, now, IoOutcome::Success);
        }
        let t = lun.dispatch(&io(now)).unwrap();
        count[t.slot().index()] += 1;
        outstanding.push((now + latency(t.slot()), t));
    }
    let fast_share = count[fast.index()] as f64 / 20_000.0;
    assert!(fast_share > 0.9, "{count:?}");
    assert!(count[slow.index()] > 0, "an idle slow path is still probed: {count:?}");
    let ewma = |slot| lun.statistics(slot).unwrap().latency_ewma;
    assert!(ewma(slow) > 10 * ewma(fast), "{} vs {}", ewma(slow), ewma(fast));
    for (_, t) in outstanding {
        lun.complete(t, 30_000, IoOutcome::Success);
    }
    assert_eq!(lun.in_flight(), 0);
}

/// Failover only on three optimized paths, path 1 the primary.
fn failover(mode: FailbackMode) -> (Lun<8>, Vec<PathSlot>) {
    let lun = Lun::<8>::with_settings(LoadBalancePolicy::FailoverOnly, settings(mode));
    let s: Vec<_> = (0..3).map(|n| lun.add_path(id(n), AccessState::ActiveOptimized).unwrap()).collect();
    set(&lun, LoadBalancePolicy::FailoverOnly, |n| (n == 1, 1));
    (lun, s)
}

fn all_on<const N: usize>(lun: &Lun<N>, count: usize) -> usize {
    let p = picks(lun, count);
    assert!(p.iter().all(|&x| x == p[0]), "failover only keeps all I/O on one path: {p:?}");
    p[0]
}

#[test]
fn failover_only_keeps_one_path_and_moves_on_failure() {
    let (lun, s) = failover(FailbackMode::Immediate);
    assert_eq!(all_on(&lun, 50), 1, "the primary path");
    lun.fail_path(s[1], 10).unwrap();
    let next = all_on(&lun, 50);
    assert_ne!(next, 1);
    lun.fail_path(s[next], 20).unwrap();
    let last = all_on(&lun, 50);
    assert!(last != 1 && last != next);
    lun.fail_path(s[last], 30).unwrap();
    assert_eq!(lun.select(&io(0)), Err(NoPath));
    // A standby path is promoted when no active one is left.
    let standby = lun.add_path(id(9), AccessState::Standby).unwrap();
    assert_eq!(all_on(&lun, 10), standby.index());
}

#[test]
fn failover_immediate_failback_returns_to_the_primary_when_reinstated() {
    let (lun, s) = failover(FailbackMode::Immediate);
    lun.fail_path(s[1], 10).unwrap();
    assert_ne!(all_on(&lun, 10), 1);
    assert_eq!(lun.reinstate_path(s[1], 20), Ok(Reinstatement::Reinstated));
    assert_eq!(all_on(&lun, 10), 1);
    // The preferred path beats the primary one.
    lun.set_preferred_path(Some(s[2])).unwrap();
    assert_eq!(all_on(&lun, 10), 2);
    lun.fail_path(s[2], 30).unwrap();
    assert_eq!(all_on(&lun, 10), 1);
    lun.reinstate_path(s[2], 40).unwrap();
    assert_eq!(all_on(&lun, 10), 2);
}

#[test]
fn failover_manual_failback_waits_for_failback() {
    let (lun, s) = failover(FailbackMode::Manual);
    lun.fail_path(s[1], 10).unwrap();
    let other = all_on(&lun, 10);
    assert_ne!(other, 1);
    assert_eq!(lun.reinstate_path(s[1], 20), Ok(Reinstatement::Reinstated));
    lun.poll(u64::MAX);
    assert_eq!(all_on(&lun, 50), other, "manual: stays until asked");
    lun.failback();
    assert_eq!(all_on(&lun, 10), 1);
}

#[test]
fn failover_delayed_failback_returns_after_the_delay() {
    let (lun, s) = failover(FailbackMode::Delayed(100));
    lun.fail_path(s[1], 10).unwrap();
    let other = all_on(&lun, 10);
    assert_ne!(other, 1);
    assert_eq!(lun.reinstate_path(s[1], 1000), Ok(Reinstatement::Reinstated));
    assert_eq!(all_on(&lun, 10), other);
    lun.poll(1000);
    lun.poll(1099);
    assert_eq!(all_on(&lun, 10), other, "not before reinstate + delay");
    lun.poll(1100);
    assert_eq!(all_on(&lun, 10), 1, "at reinstate + delay");
    // A failback that is due while the path failed again does not use it.
    lun.fail_path(s[1], 1200).unwrap();
    lun.reinstate_path(s[1], 1300).unwrap();
    lun.fail_path(s[1], 1310).unwrap();
    lun.poll(5000);
    assert_ne!(all_on(&lun, 10), 1);
}

#[test]
fn a_flapping_path_is_held_down() {
    let flap = FlapDamping { window: 1000, threshold: 2, hold: 500, max_hold: 4000 };
    let lun = Lun::<8>::with_settings(
        LoadBalancePolicy::RoundRobin,
        LunSettings { flap, ..settings(FailbackMode::Immediate) },
    );
    let s: Vec<_> = (0..2).map(|n| lun.add_path(id(n), AccessState::ActiveOptimized).unwrap()).collect();
    lun.fail_path(s[0], 10).unwrap();
    assert_eq!(lun.reinstate_path(s[0], 20), Ok(Reinstatement::Reinstated), "one failure is not flapping");
    assert_eq!(shares(&picks(&lun, 10), 2), [5, 5]);
    lun.fail_path(s[0], 30).unwrap();
    assert_eq!(lun.reinstate_path(s[0], 40), Ok(Reinstatement::HeldDown { until: 530 }));
    assert_eq!(lun.path_info().unwrap()[0].held_down_until, Some(530));
    assert!(!lun.path_info().unwrap()[0].usable);
    assert!(picks(&lun, 20).iter().all(|&p| p == 1), "held down: not selected");
    lun.begin_verify(s[0]).unwrap();
    assert_eq!(lun.reinstate_path(s[0], 529), Ok(Reinstatement::HeldDown { until: 530 }));
    assert!(picks(&lun, 20).iter().all(|&p| p == 1));
    assert_eq!(lun.reinstate_path(s[0], 530), Ok(Reinstatement::Reinstated));
    assert_eq!(shares(&picks(&lun, 10), 2), [5, 5]);
    // Failing again within the window: the hold grows.
    lun.fail_path(s[0], 600).unwrap();
    assert_eq!(lun.reinstate_path(s[0], 601), Ok(Reinstatement::HeldDown { until: 1600 }));
    assert!(picks(&lun, 10).iter().all(|&p| p == 1));
    // A quiet window ends the episode.
    assert_eq!(lun.reinstate_path(s[0], 1600), Ok(Reinstatement::Reinstated));
    lun.fail_path(s[0], 5000).unwrap();
    assert_eq!(lun.reinstate_path(s[0], 5001), Ok(Reinstatement::Reinstated));
}

#[test]
fn in_flight_balances_across_policy_changes() {
    let (lun, s) = lun_with::<8>(LoadBalancePolicy::RoundRobin, &[AccessState::ActiveOptimized; 5]);
    let mut tickets = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for round in 0..3 {
        for (k, policy) in LoadBalancePolicy::ALL.into_iter().enumerate() {
            set(&lun, policy, |n| {
                (policy != LoadBalancePolicy::FailoverOnly || n == k % 5, 1 + ((n + k) % 4) as u32)
            });
            for n in 0..40u32 {
                let r = if n % 3 == 0 { IoRequest::write(512 * (n + 1)) } else { IoRequest::read(4096 + n) };
                let r = r.at_lba(u64::from(n) * 8, 8).on_cpu(n % 4).at(u64::from(n));
                tickets.push(lun.dispatch(&r).unwrap());
                count += 1;
                bytes += u64::from(r.bytes);
            }
            // Complete some of the older ones under the new policy.
            for _ in 0..10 {
                let t = tickets.remove(0);
                lun.complete(t, 50, IoOutcome::Success);
            }
        }
        if round == 1 {
            // A path leaves while it has I/O in flight.
            lun.remove_path(s[4]).unwrap();
        }
    }
    assert_eq!(lun.in_flight(), tickets.len() as u64);
    assert!(lun.in_flight() > 0);
    for (n, t) in tickets.into_iter().enumerate() {
        lun.complete(t, 99, if n % 7 == 0 { IoOutcome::Error } else { IoOutcome::Success });
    }
    assert_eq!(lun.in_flight(), 0);
    let stats: Vec<_> = s.iter().map(|&slot| lun.slot_statistics(slot).unwrap()).collect();
    for st in &stats {
        assert_eq!((st.in_flight, st.in_flight_bytes), (0, 0));
    }
    assert_eq!(stats.iter().map(|st| st.completed()).sum::<u64>(), count);
    assert!(stats.iter().map(|st| st.errors).sum::<u64>() > 0);
    let ok_bytes: u64 = stats.iter().map(|st| st.bytes_read + st.bytes_written).sum();
    assert!(ok_bytes < bytes && ok_bytes > 0);
}

#[test]
fn sixty_four_paths_work_for_every_policy() {
    let lun = Lun::<64>::with_settings(LoadBalancePolicy::RoundRobin, settings(FailbackMode::Immediate));
    let s: Vec<_> = (0..64).map(|n| lun.add_path(id(n), AccessState::ActiveOptimized).unwrap()).collect();
    assert_eq!(s[63].index(), 63);
    assert_eq!(
        lun.add_path(id(64), AccessState::ActiveOptimized).unwrap_err(),
        rsdsm_engine::Error::OutOfMemory
    );
    for policy in LoadBalancePolicy::ALL {
        set_neutral(&lun, policy);
        let p = picks(&lun, 64 * 3);
        let used = shares(&p, 64);
        if policy == LoadBalancePolicy::FailoverOnly {
            assert_eq!(used[0], 64 * 3, "{policy}");
        } else {
            assert!(used.iter().all(|&u| u == 3), "{policy}: every one of 64 paths in turn: {used:?}");
        }
        // Only the last slot left.
        set(&lun, policy, |n| (policy != LoadBalancePolicy::FailoverOnly || n == 63, 1));
        for &slot in &s[..63] {
            lun.fail_path(slot, 1).unwrap();
        }
        assert!(picks(&lun, 10).iter().all(|&p| p == 63), "{policy}");
        lun.fail_path(s[63], 1).unwrap();
        assert_eq!(lun.select(&io(0)), Err(NoPath), "{policy}");
        for &slot in &s {
            lun.reinstate_path(slot, 2).unwrap();
        }
        assert_eq!(lun.usable_paths(), 64);
    }
    assert_eq!(lun.in_flight(), 0);
}
