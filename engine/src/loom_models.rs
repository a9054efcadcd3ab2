//! Loom models of the engine's lock-free parts, run on the engine's own code
//! (its atomics come from `crate::sync`, which is loom's under `--cfg loom`):
//!
//! * the policy swap: `config.rs`'s double-buffered seqlock publishing
//!   tables while a reader reads; a confirmed read is always exactly one
//!   published table, never a mix;
//! * the per-I/O counters: an I/O started and completed while a policy set
//!   runs (from a policy that counts in CPU stripes to one that counts in
//!   the shared block) leaves nothing in flight, and its completion lands
//!   on the counters its start used;
//! * the rotation set (`Lun::select`'s one-word fast path): a selection
//!   racing a policy set picks by the old policy or the new one, and one
//!   that saw only the new generation around it picks by the new one;
//! * the set-in-progress gate (`sync.rs`'s `Gate`, and `Lun::begin_set`
//!   over it): of two racing sets exactly one wins, the other gets
//!   `VDS_E_ANOTHER_CALL_IN_PROGRESS`, and the table is the winner's.
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" \
//!     cargo test -p rsdsm-engine --lib --release --target-dir target/loom loom_models
//! ```
//!
//! Without `LOOM_MAX_PREEMPTIONS` the models use a bound of 2 themselves,
//! so they finish in seconds to a few minutes.

extern crate std;

use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::thread;

use crate::config::{AdminTable, PolicyConfig};
use crate::sync::{Gate, Ordering::SeqCst};
use crate::{AccessState, Error, IoOutcome, IoRequest, LoadBalancePolicy, Lun, PathId, PathPolicy};

/// Runs `f` under loom. The body runs in a model thread with a roomy stack:
/// a `Lun` built of loom's (much larger) atomics does not fit the main
/// model thread's 32 KB stack.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // Building and resetting a LUN touches every counter of every path and
    // stripe once; each touch is a branch point to loom.
    builder.max_branches = builder.max_branches.max(50_000);
    let f = std::sync::Arc::new(f);
    builder.check(move || {
        let f = std::sync::Arc::clone(&f);
        thread::Builder::new().stack_size(1 << 22).spawn(move || f()).unwrap().join().unwrap();
    });
}

/// Three tables that differ in every field, so any mix of two is visible.
fn tables() -> [AdminTable<2>; 3] {
    let make = |policy, primary, preferred, w0, w1, pin| {
        let mut t = AdminTable::new(policy);
        t.present = 0b11;
        t.primary = primary;
        t.preferred = preferred;
        t.weights = [w0, w1];
        t.failover_pin = pin;
        t
    };
    [
        make(LoadBalancePolicy::RoundRobin, 0b01, 0b00, 1, 1, 0),
        make(LoadBalancePolicy::WeightedPaths, 0b10, 0b01, 2, 3, 1),
        make(LoadBalancePolicy::LeastBlocks, 0b11, 0b10, 5, 4, 2),
    ]
}

/// The weight levels a table publishes: (weight, mask, suffix) ascending.
fn levels(t: &AdminTable<2>) -> std::vec::Vec<(u32, u64, u64)> {
    let mut weights: std::vec::Vec<u32> = t.weights.to_vec();
    weights.sort_unstable();
    weights.dedup();
    let mut out = std::vec::Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        let mask = (0..2).filter(|&s| t.weights[s] == w).fold(0, |m, s| m | 1 << s);
        let suffix = (0..2).filter(|&s| t.weights[s] >= weights[i]).fold(0, |m, s| m | 1 << s);
        out.push((w, mask, suffix));
    }
    out
}

#[test]
fn loom_models_seqlock_reader_never_sees_a_torn_table() {
    model(|| {
        let [a, b, c] = tables();
        let config = Arc::new(PolicyConfig::new(&a));
        let writer = {
            let config = Arc::clone(&config);
            thread::spawn(move || {
                assert_eq!(config.publish(&b), 1);
                assert_eq!(config.publish(&c), 2);
            })
        };
        // A selection's read: everything through one ConfigRead, then confirm.
        let mut confirmed = 0;
        for _ in 0..2 {
            loop {
                let read = config.read();
                let table = read.table();
                let level_count = read.level_count();
                let lv: std::vec::Vec<_> = (0..level_count.min(2)).filter_map(|i| read.level(i)).collect();
                let generation = read.generation();
                if config.confirm(&read) {
                    let published = [&a, &b, &c];
                    let expected = published[usize::try_from(generation).unwrap()];
                    assert_eq!(&table, expected, "torn table at generation {generation}");
                    assert_eq!(lv, levels(expected), "torn weight levels at generation {generation}");
                    confirmed += 1;
                    break;
                }
                loom::thread::yield_now();
            }
        }
        writer.join().unwrap();
        assert_eq!(confirmed, 2);
        assert_eq!(config.current(), AdminTable { failover_pin: 0, ..c });
        assert_eq!(config.generation(), 2);
    });
}

fn two_path_lun(policy: LoadBalancePolicy) -> (Lun<2>, [PathId; 2]) {
    let lun = Lun::new(policy);
    let ids = [PathId::new(1, 1), PathId::new(1, 2)];
    for id in ids {
        lun.add_path(id, AccessState::ActiveOptimized).unwrap();
    }
    (lun, ids)
}

#[test]
fn loom_models_counters_balance_across_a_policy_change() {
    model(|| {
        let (lun, ids) = two_path_lun(LoadBalancePolicy::RoundRobin);
        let lun = Arc::new(lun);
        let io = {
            let lun = Arc::clone(&lun);
            thread::spawn(move || {
                let request = IoRequest::write(4096).at(10);
                let ticket = lun.dispatch(&request).expect("a path is usable");
                let slot = ticket.slot();
                assert_eq!(lun.slot_statistics(slot).unwrap().in_flight, 1);
                lun.complete(ticket, 20, IoOutcome::Success);
                slot
            })
        };
        let paths = [
            PathPolicy { path_id: ids[0], primary: true, weight: 1 },
            PathPolicy { path_id: ids[1], primary: false, weight: 1 },
        ];
        // Round robin counts in the CPU's stripe, least queue depth in the
        // path's shared block: the I/O may start in one and complete after
        // the switch to the other.
        lun.set_load_balance_policy(LoadBalancePolicy::LeastQueueDepth, &paths).unwrap();
        let slot = io.join().unwrap();
        assert_eq!(lun.in_flight(), 0, "start and complete balance");
        let stats = lun.slot_statistics(slot).unwrap();
        assert_eq!(
            (stats.writes, stats.bytes_written, stats.in_flight, stats.in_flight_bytes),
            (1, 4096, 0, 0)
        );
        assert_eq!(lun.policy(), LoadBalancePolicy::LeastQueueDepth);
    });
}

#[test]
fn loom_models_rotation_set_follows_the_generation_a_selection_sees() {
    model(|| {
        // Weighted paths with path 0 lightest: every pick is slot 0. The
        // set makes it failover only on path 1: every pick is slot 1.
        let (lun, ids) = two_path_lun(LoadBalancePolicy::RoundRobin);
        let before = [
            PathPolicy { path_id: ids[0], primary: true, weight: 1 },
            PathPolicy { path_id: ids[1], primary: true, weight: 5 },
        ];
        lun.set_load_balance_policy(LoadBalancePolicy::WeightedPaths, &before).unwrap();
        let old = lun.configuration_view().3;
        let lun = Arc::new(lun);
        let selector = {
            let lun = Arc::clone(&lun);
            // The checks run here, on a roomy stack: a failing assertion
            // formats its message on the stack, and loom's main coroutine
            // has a small one.
            thread::Builder::new()
                .stack_size(1 << 22)
                .spawn(move || {
                    let first = lun.configuration_view().3;
                    let slot = lun.select(&IoRequest::read(512)).expect("a path is usable").index();
                    let last = lun.configuration_view().3;
                    match (first == old, last == old) {
                        (true, true) => assert_eq!(slot, 0, "old generation throughout: weighted paths"),
                        (false, false) => assert_eq!(slot, 1, "new generation throughout: failover only"),
                        _ => assert!(slot <= 1, "raced the set: either policy"),
                    }
                })
                .unwrap()
        };
        let after = [
            PathPolicy { path_id: ids[0], primary: false, weight: 1 },
            PathPolicy { path_id: ids[1], primary: true, weight: 1 },
        ];
        lun.set_load_balance_policy(LoadBalancePolicy::FailoverOnly, &after).unwrap();
        selector.join().unwrap();
        assert_eq!(lun.select(&IoRequest::read(512)).unwrap().index(), 1);
    });
}

#[test]
fn loom_models_gate_admits_exactly_one_of_two_racers() {
    model(|| {
        let gate = Arc::new(Gate::new());
        let attempted = Arc::new(AtomicUsize::new(0));
        let inside = Arc::new(AtomicUsize::new(0));
        let racer = |gate: Arc<Gate>, attempted: Arc<AtomicUsize>, inside: Arc<AtomicUsize>| {
            move || {
                let pass = gate.try_enter();
                if pass.is_some() {
                    assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders at once");
                }
                attempted.fetch_add(1, SeqCst);
                // Hold the pass until both have tried: they raced.
                while attempted.load(SeqCst) < 2 {
                    loom::thread::yield_now();
                }
                if pass.is_some() {
                    inside.fetch_sub(1, SeqCst);
                }
                pass.is_some()
            }
        };
        let other = thread::spawn(racer(Arc::clone(&gate), Arc::clone(&attempted), Arc::clone(&inside)));
        let mine = racer(Arc::clone(&gate), Arc::clone(&attempted), Arc::clone(&inside))();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one wins: {mine} {theirs}");
        assert!(gate.try_enter().is_some(), "the gate reopens when the pass drops");
    });
}

#[test]
fn loom_models_two_racing_sets_one_wins_and_the_table_is_its() {
    model(|| {
        let (lun, ids) = two_path_lun(LoadBalancePolicy::RoundRobin);
        let lun = Arc::new(lun);
        let attempted = Arc::new(AtomicUsize::new(0));
        let set = |lun: Arc<Lun<2>>, attempted: Arc<AtomicUsize>, policy, weights: [u32; 2]| {
            move || {
                let paths = [
                    PathPolicy { path_id: ids[0], primary: true, weight: weights[0] },
                    PathPolicy { path_id: ids[1], primary: true, weight: weights[1] },
                ];
                let pending = lun.begin_set(policy, &paths, None);
                attempted.fetch_add(1, SeqCst);
                while attempted.load(SeqCst) < 2 {
                    loom::thread::yield_now();
                }
                match pending {
                    Ok(p) => Ok(p.commit().unwrap()),
                    Err(e) => Err(e),
                }
            }
        };
        let other = thread::spawn(set(
            Arc::clone(&lun),
            Arc::clone(&attempted),
            LoadBalancePolicy::WeightedPaths,
            [7, 9],
        ));
        let mine = set(Arc::clone(&lun), Arc::clone(&attempted), LoadBalancePolicy::LeastBlocks, [3, 4])();
        let theirs = other.join().unwrap();
        let (policy, weights, primary, _) = lun.configuration_view();
        match (mine, theirs) {
            (Ok(_), Err(e)) => {
                assert_eq!(e, Error::AnotherCallInProgress);
                assert_eq!((policy, [weights[0], weights[1]]), (LoadBalancePolicy::LeastBlocks, [3, 4]));
            }
            (Err(e), Ok(_)) => {
                assert_eq!(e, Error::AnotherCallInProgress);
                assert_eq!((policy, [weights[0], weights[1]]), (LoadBalancePolicy::WeightedPaths, [7, 9]));
            }
            other => panic!("exactly one set must win: {other:?}"),
        }
        assert_eq!(primary, 0b11);
    });
}
