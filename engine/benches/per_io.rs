//! Criterion benches of select + start + complete for every policy at 1 to
//! 64 paths, queue depth 0 and 32, one and two threads on one LUN, beside
//! the in-run baselines (`baseline-rr`, `baseline-mutex-lqd`, `null`).
//!
//! The loop is the one `examples/per_io` runs (`examples/per_io/harness.rs`).
//! One iteration is one I/O per thread: with two threads the time is wall
//! time over I/Os per thread, so perfect scaling shows the one-thread time.
//!
//! ```text
//! cargo bench -p rsdsm-engine --bench per_io              # everything (a few minutes)
//! cargo bench -p rsdsm-engine --bench per_io -- 'qd32/1t' # a filter
//! ```
//! `scripts/criterion_table.py` turns the results into the ratio table of
//! BENCHMARKS.md.

#[path = "../examples/per_io/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use harness::{Kind, Target};

const PATHS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];
const QDS: [usize; 2] = [0, 32];
const THREADS: [usize; 2] = [1, 2];

fn time<T: Target>(target: &T, qd: usize, iters: u64, threads: usize) -> Duration {
    if threads == 1 {
        let mut ring: Vec<Option<T::Ticket>> = (0..qd.max(1)).map(|_| None).collect();
        let start = Instant::now();
        let done = harness::measure(target, 0, qd, iters, &mut ring);
        let elapsed = start.elapsed();
        assert_eq!(done, iters);
        return elapsed;
    }
    Duration::from_secs_f64(harness::run(target, qd, iters, threads).wall)
}

fn one<T: Target>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    paths: usize,
    target: &T,
    qd: usize,
    threads: usize,
) {
    group.bench_function(BenchmarkId::new(name, paths), |b| {
        b.iter_custom(|iters| time(target, qd, iters, threads))
    });
}

fn bench_kind(group: &mut BenchmarkGroup<'_, WallTime>, kind: Kind, paths: usize, qd: usize, threads: usize) {
    let name = kind.name();
    match kind {
        Kind::Engine(policy) if paths <= 32 => {
            let lun = harness::lun::<32>(policy, paths);
            one(group, name, paths, &harness::Engine(&*lun), qd, threads);
        }
        Kind::Engine(policy) => {
            let lun = harness::lun::<64>(policy, paths);
            one(group, name, paths, &harness::Engine(&*lun), qd, threads);
        }
        Kind::BaselineRr => one(group, name, paths, &harness::BaselineRr::new(paths), qd, threads),
        Kind::BaselineMutexLqd => {
            one(group, name, paths, &harness::BaselineMutexLqd::new(paths), qd, threads)
        }
        Kind::Null => one(group, name, paths, &harness::Null, qd, threads),
        Kind::BaselineStats => one(group, name, paths, &harness::BaselineStats::new(), qd, threads),
    }
}

fn per_io(c: &mut Criterion) {
    let kinds: Vec<Kind> = harness::BASELINES
        .iter()
        .map(|b| b.1)
        .chain(harness::POLICIES.iter().map(|p| Kind::Engine(p.1)))
        .collect();
    for qd in QDS {
        for threads in THREADS {
            let mut group = c.benchmark_group(format!("qd{qd}/{threads}t"));
            for &kind in &kinds {
                for paths in PATHS {
                    bench_kind(&mut group, kind, paths, qd, threads);
                }
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    // Short: 336 benchmarks. Medians of 10 samples are enough for ratios.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(200))
        .without_plots();
    targets = per_io
}
criterion_main!(benches);
