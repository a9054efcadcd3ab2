//! Path statistics across CPU stripes (DESIGN §2 "Statistics"): every I/O
//! counted once whichever CPU and policy class counted it, in-flight counts
//! that balance across a change of policy class, and a latency EWMA that
//! follows the policy from the stripes to the shared line.

use rsdsm_engine::{
    AccessState, IoOutcome, IoRequest, LoadBalancePolicy, Lun, PathId, PathPolicy, PathSlot, STRIPES,
    VendorPolicy,
};

const AL: LoadBalancePolicy = LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency);

fn lun(paths: usize) -> (Lun<8>, Vec<PathSlot>) {
    let lun = Lun::<8>::new(LoadBalancePolicy::RoundRobin);
    let slots = (0..paths)
        .map(|n| lun.add_path(PathId::new(1, n as u64), AccessState::ActiveOptimized).unwrap())
        .collect();
    (lun, slots)
}

fn set(lun: &Lun<8>, policy: LoadBalancePolicy, paths: usize) {
    let settings: Vec<_> = (0..paths)
        .map(|n| PathPolicy { path_id: PathId::new(1, n as u64), primary: n == 0, weight: 1 })
        .collect();
    lun.set_load_balance_policy(policy, &settings).unwrap();
}

#[test]
fn every_cpu_counts_once_and_a_reading_sums_the_stripes() {
    let (lun, slots) = lun(1);
    // Twice as many CPUs as stripes, so that stripes are shared too.
    let cpus = 2 * STRIPES as u32;
    let mut tickets = Vec::new();
    for cpu in 0..cpus {
        for n in 0..=cpu {
            let io = if n % 2 == 0 { IoRequest::read(512) } else { IoRequest::write(4096) };
            tickets.push(lun.dispatch(&io.on_cpu(cpu).at(10)).unwrap());
        }
    }
    let started = u64::from(cpus * (cpus + 1) / 2);
    let stats = lun.statistics(slots[0]).unwrap();
    assert_eq!(u64::from(stats.in_flight), started);
    assert_eq!(lun.in_flight(), started);
    let (mut reads, mut writes, mut errors) = (0, 0, 0);
    for (k, t) in tickets.into_iter().enumerate() {
        let outcome = if k % 5 == 4 { IoOutcome::Error } else { IoOutcome::Success };
        match (outcome, t.bytes()) {
            (IoOutcome::Error, _) => errors += 1,
            (_, 512) => reads += 1,
            _ => writes += 1,
        }
        lun.complete(t, 30, outcome);
    }
    let stats = lun.statistics(slots[0]).unwrap();
    assert_eq!((stats.reads, stats.writes, stats.errors), (reads, writes, errors));
    assert_eq!((stats.bytes_read, stats.bytes_written), (512 * reads, 4096 * writes));
    assert_eq!(stats.completed(), started);
    assert_eq!(stats.histogram.iter().sum::<u64>(), reads + writes, "one latency sample per success");
    assert_eq!(stats.histogram[5], reads + writes, "latency 20 is in [16, 32)");
    assert_eq!((stats.in_flight, stats.in_flight_bytes), (0, 0));
    assert_eq!(stats.latency_ewma, 20);
}

#[test]
fn in_flight_balances_across_a_change_of_policy_class() {
    let (lun, slots) = lun(2);
    // Counted in a stripe under round robin, completed under least queue
    // depth (shared line), and the reverse.
    let striped = lun.dispatch(&IoRequest::read(4096).on_cpu(1).at(1)).unwrap();
    set(&lun, LoadBalancePolicy::LeastQueueDepth, 2);
    let shared = lun.dispatch(&IoRequest::read(4096).on_cpu(1).at(2)).unwrap();
    assert_eq!(lun.in_flight(), 2);
    // Least queue depth sees the I/O it counted: the next one goes to the
    // other path.
    let other = lun.select(&IoRequest::read(4096).on_cpu(1)).unwrap();
    assert_ne!(other, shared.slot());
    set(&lun, LoadBalancePolicy::RoundRobin, 2);
    lun.complete(striped, 5, IoOutcome::Success);
    lun.complete(shared, 5, IoOutcome::Success);
    assert_eq!(lun.in_flight(), 0);
    for slot in slots {
        let s = lun.statistics(slot).unwrap();
        assert_eq!((s.in_flight, s.in_flight_bytes), (0, 0), "{slot:?}");
    }
    let total: u64 =
        [0, 1].map(|i| lun.statistics(PathSlot::from_index(i).unwrap()).unwrap().reads).iter().sum();
    assert_eq!(total, 2);
}

#[test]
fn the_latency_estimate_follows_the_policy_from_stripes_to_the_shared_line() {
    let (lun, slots) = lun(1);
    // Round robin: CPU 0 sees 100 ticks, CPU 1 sees 300; the path's EWMA
    // is the mean of its stripes'.
    for n in 0..200 {
        for (cpu, latency) in [(0, 100), (1, 300)] {
            let t = lun.dispatch(&IoRequest::read(512).on_cpu(cpu).at(n * 1000)).unwrap();
            lun.complete(t, n * 1000 + latency, IoOutcome::Success);
        }
    }
    assert_eq!(lun.statistics(slots[0]).unwrap().latency_ewma, 200);
    // Adaptive latency reads the shared line: the estimate moves there.
    set(&lun, AL, 1);
    assert_eq!(lun.statistics(slots[0]).unwrap().latency_ewma, 200);
    for n in 0..200 {
        let t = lun.dispatch(&IoRequest::read(512).on_cpu(2).at(n * 1000)).unwrap();
        lun.complete(t, n * 1000 + 50, IoOutcome::Success);
    }
    assert_eq!(lun.statistics(slots[0]).unwrap().latency_ewma, 50);
    // Back to a rotation policy: the shared estimate stands until the
    // stripes have samples of their own.
    set(&lun, LoadBalancePolicy::FailoverOnly, 1);
    assert_eq!(lun.statistics(slots[0]).unwrap().latency_ewma, 50);
    let t = lun.dispatch(&IoRequest::read(512).on_cpu(3).at(0)).unwrap();
    lun.complete(t, 70, IoOutcome::Success);
    assert_eq!(lun.statistics(slots[0]).unwrap().latency_ewma, 70, "first sample of a fresh stripe");
}
