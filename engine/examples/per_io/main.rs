//! Per-I/O cost of every policy, driven exactly like the DSM drives the
//! engine: select + start + complete, QD I/Os outstanding per thread,
//! completions in FIFO order, 4096-byte I/Os, one tick per I/O.
//!
//! ```text
//! cargo run --release -p rsdsm-engine --example per_io -- POLICY PATHS QD IOS [THREADS]
//! ```
//!
//! POLICY: failover, round-robin, round-robin-subset, least-queue-depth,
//! weighted-paths, least-blocks, weighted-round-robin, service-time,
//! adaptive-latency; or the baselines baseline-rr, baseline-mutex-lqd, null.
//!
//! Prints ns per I/O per thread and aggregate I/Os per second. With
//! THREADS > 1 all threads share one LUN (thread t is processor t), and the
//! program also measures one thread in the same run, alternating three
//! times, and prints the median of each and their ratio.
//!
//! For instruction counts (what `scripts/instructions.sh` does):
//! `valgrind --tool=callgrind --toggle-collect='*harness*measure*' target/release/examples/per_io ...`

mod harness;

use harness::Kind;

fn usage() -> ! {
    let names: Vec<&str> =
        harness::POLICIES.iter().map(|p| p.0).chain(harness::BASELINES.iter().map(|b| b.0)).collect();
    eprintln!("usage: per_io POLICY PATHS QD IOS [THREADS]\n  POLICY: {}", names.join(", "));
    std::process::exit(2)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 || args.len() > 5 {
        usage();
    }
    let kind = Kind::parse(&args[0]).unwrap_or_else(|| usage());
    let number = |i: usize| -> u64 { args[i].parse().unwrap_or_else(|_| usage()) };
    let paths = number(1) as usize;
    let qd = number(2) as usize;
    let ios = number(3);
    let threads = args.get(4).map_or(1, |_| number(4) as usize);
    if !(1..=64).contains(&paths) || ios == 0 || threads == 0 {
        usage();
    }
    let name = kind.name();
    if threads == 1 {
        let t = harness::run_kind(kind, paths, qd, ios, 1);
        println!(
            "{name} paths={paths} qd={qd} ios={ios} threads=1: {:.2} ns/io, {:.0} iops",
            t.ns_per_io(ios)[0],
            t.iops(ios)
        );
        return;
    }
    // Same run: alternate one thread and THREADS threads, three times each.
    let mut single = Vec::new();
    let mut multi = Vec::new();
    for _ in 0..3 {
        let one = harness::run_kind(kind, paths, qd, ios, 1);
        single.push(one.iops(ios));
        let many = harness::run_kind(kind, paths, qd, ios, threads);
        let ns: Vec<String> = many.ns_per_io(ios).iter().map(|n| format!("{n:.2}")).collect();
        println!(
            "{name} paths={paths} qd={qd} ios={ios} threads={threads}: [{}] ns/io per thread, {:.0} iops (1 thread: {:.2} ns/io, {:.0} iops)",
            ns.join(", "),
            many.iops(ios),
            one.ns_per_io(ios)[0],
            one.iops(ios)
        );
        multi.push(many.iops(ios));
    }
    let (one, many) = (median(single), median(multi));
    println!(
        "{name} paths={paths} qd={qd}: median iops 1 thread {one:.0}, {threads} threads {many:.0}, ratio {:.2}",
        many / one
    );
}
