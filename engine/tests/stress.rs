//! Concurrency: selections racing policy sets never see a mix of two
//! configurations, counters balance, and concurrent sets are turned away
//! instead of blocking or interleaving.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;

use rsdsm_engine::{
    AccessState, Error, HResult, IoOutcome, IoRequest, LoadBalancePolicy, Lun, PathId, PathPolicy,
};

const N: usize = 8;
const PATHS: usize = 4;
const SELECTORS: u32 = 3;
/// Per selector thread (well under a second in debug on two cores).
const ITERATIONS: u64 = 200_000;

fn id(n: usize) -> PathId {
    PathId::new(0xC0DE, n as u64)
}

fn admin(primary: impl Fn(usize) -> bool, weight: impl Fn(usize) -> u32) -> Vec<PathPolicy> {
    (0..PATHS).map(|n| PathPolicy { path_id: id(n), primary: primary(n), weight: weight(n) }).collect()
}

/// `(policy, weights, primary mask)` of a configuration, as `configuration_view` shows it.
fn view_of(policy: LoadBalancePolicy, paths: &[PathPolicy]) -> (LoadBalancePolicy, [u32; N], u64) {
    let mut weights = [0; N];
    let mut primary = 0;
    for (n, p) in paths.iter().enumerate() {
        weights[n] = p.weight;
        if p.primary {
            primary |= 1 << n;
        }
    }
    (policy, weights, primary)
}

#[test]
fn selections_see_one_whole_configuration_while_sets_race() {
    let lun = Lun::<N>::new(LoadBalancePolicy::RoundRobin);
    for n in 0..PATHS {
        assert_eq!(lun.add_path(id(n), AccessState::ActiveOptimized).unwrap().index(), n);
    }
    // A: weighted paths, path 0 lightest -> every pick is slot 0.
    let a = admin(|_| true, |n| if n == 0 { 1 } else { 5 });
    // B: failover only, path 3 the only primary -> every pick is slot 3.
    let b = admin(|n| n == 3, |_| 2);
    let view_a = view_of(LoadBalancePolicy::WeightedPaths, &a);
    let view_b = view_of(LoadBalancePolicy::FailoverOnly, &b);
    lun.set_load_balance_policy(LoadBalancePolicy::WeightedPaths, &a).unwrap();

    let done = AtomicUsize::new(0);
    let sets = AtomicU64::new(0);
    let views = AtomicU64::new(0);
    let torn = AtomicU64::new(0);
    let picks: Vec<AtomicU64> = (0..N).map(|_| AtomicU64::new(0)).collect();
    thread::scope(|scope| {
        for cpu in 0..SELECTORS {
            let (lun, done, picks, torn) = (&lun, &done, &picks, &torn);
            scope.spawn(move || {
                for n in 0..ITERATIONS {
                    let io = IoRequest::read(512 + (n as u32 % 8) * 512).on_cpu(cpu).at(n);
                    let before = lun.configuration_view();
                    let slot = lun.select(&io).unwrap();
                    let after = lun.configuration_view();
                    assert!(slot.index() == 0 || slot.index() == 3, "torn pick {slot:?}");
                    // If no set completed around the selection, it ran on
                    // exactly that configuration and must pick its path.
                    if before.3 == after.3 {
                        let expected = if before.0 == LoadBalancePolicy::FailoverOnly { 3 } else { 0 };
                        if slot.index() != expected {
                            torn.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let ticket = lun.start(slot, &io);
                    picks[slot.index()].fetch_add(1, Ordering::Relaxed);
                    lun.complete(ticket, n + 1, IoOutcome::Success);
                }
                done.fetch_add(1, Ordering::Release);
            });
        }
        let (lun, done, sets, views) = (&lun, &done, &sets, &views);
        let (a, b) = (&a, &b);
        scope.spawn(move || {
            while done.load(Ordering::Acquire) < SELECTORS as usize {
                let (policy, paths) = if sets.load(Ordering::Relaxed) % 2 == 0 {
                    (LoadBalancePolicy::FailoverOnly, b)
                } else {
                    (LoadBalancePolicy::WeightedPaths, a)
                };
                lun.set_load_balance_policy(policy, paths).unwrap();
                sets.fetch_add(1, Ordering::Relaxed);
            }
        });
        scope.spawn(move || {
            while done.load(Ordering::Acquire) < SELECTORS as usize {
                let (policy, weights, primary, _) = lun.configuration_view();
                let v = (policy, weights, primary);
                assert!(v == view_a || v == view_b, "a mix of two sets: {v:?}");
                views.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    let total = u64::from(SELECTORS) * ITERATIONS;
    let sets = sets.load(Ordering::Relaxed);
    assert!(sets > 10, "the writer must actually race the selectors ({sets} sets)");
    assert!(views.load(Ordering::Relaxed) > 10);
    assert_eq!(torn.load(Ordering::Relaxed), 0, "picks that did not match the configuration they ran under");
    assert_eq!(lun.in_flight(), 0);
    let completed: u64 =
        lun.path_info().unwrap().iter().map(|i| lun.statistics(i.slot).unwrap().completed()).sum();
    assert_eq!(completed, total);
    let picked: Vec<u64> = picks.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    assert_eq!(picked.iter().sum::<u64>(), total);
    assert_eq!(picked[1] + picked[2], 0);
    for slot in [0, 3] {
        let s = lun.statistics(lun.path_info().unwrap()[slot].slot).unwrap();
        assert_eq!(s.completed(), picked[slot]);
        assert_eq!((s.in_flight, s.in_flight_bytes), (0, 0));
    }
}

#[test]
fn racing_sets_admit_exactly_one_and_never_block() {
    const ROUNDS: usize = 300;
    let lun = Lun::<N>::new(LoadBalancePolicy::RoundRobin);
    for n in 0..PATHS {
        lun.add_path(id(n), AccessState::ActiveOptimized).unwrap();
    }
    let mine = [
        (LoadBalancePolicy::LeastQueueDepth, admin(|_| true, |n| n as u32 + 1)),
        (LoadBalancePolicy::RoundRobinWithSubset, admin(|n| n % 2 == 1, |_| 7)),
    ];
    let barrier = Barrier::new(2);
    let winners: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(usize::MAX)).collect();
    let turned_away = AtomicUsize::new(0);
    thread::scope(|scope| {
        for me in 0..2 {
            let (lun, barrier, winners, turned_away, mine) = (&lun, &barrier, &winners, &turned_away, &mine);
            scope.spawn(move || {
                let (policy, paths) = &mine[me];
                for (round, winner) in winners.iter().enumerate() {
                    barrier.wait();
                    let before = lun.load_balance_policy().unwrap();
                    let attempt = lun.begin_set(*policy, paths, None);
                    // Both have tried before the winner lets go.
                    barrier.wait();
                    match attempt {
                        Ok(pending) => {
                            assert_eq!(winner.swap(me, Ordering::AcqRel), usize::MAX, "two winners");
                            // Every fourth round the winner abandons its set.
                            if round % 4 != 3 {
                                pending.commit().unwrap();
                            } else {
                                drop(pending);
                            }
                        }
                        Err(e) => {
                            assert_eq!(e, Error::AnotherCallInProgress);
                            assert_eq!(e.hresult(), HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
                            turned_away.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    barrier.wait();
                    let w = winner.load(Ordering::Acquire);
                    assert!(w < 2, "round {round}: nobody got the set");
                    let after = lun.load_balance_policy().unwrap();
                    if round % 4 != 3 {
                        let (policy, paths) = &mine[w];
                        assert_eq!(after.policy, *policy);
                        assert_eq!(after.paths.as_slice(), paths.as_slice(), "the table is the winner's");
                        assert!(after.generation > before.generation);
                    } else {
                        assert_eq!(after, before, "an abandoned set changes nothing");
                    }
                }
            });
        }
    });
    assert_eq!(turned_away.load(Ordering::Relaxed), ROUNDS, "exactly one loser per round");
    let mut wins = [0; 2];
    for w in &winners {
        wins[w.load(Ordering::Relaxed)] += 1;
    }
    assert_eq!(wins[0] + wins[1], ROUNDS);
}
