//! The simulator's own guarantees: determinism, conservation of I/O, and
//! agreement with queueing theory. The runs are the real engine's.

use std::path::Path;
use std::process::Command;

use rsdsm_engine::{LoadBalancePolicy, VendorPolicy};
use rsdsm_sim::{PolicyResult, Scenario, compare, report, run::run};

fn scenario_file(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name);
    Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn all_scenarios() -> Vec<(String, Scenario)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                Scenario::parse(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rsdsm-sim")).args(args).output().unwrap()
}

#[test]
fn same_scenario_and_seed_give_byte_identical_json() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/alua-and-flapping.toml");
    let file = file.to_str().unwrap();
    let a = sim(&["run", "--scenario", file, "--json", "--seed", "42"]);
    let b = sim(&["run", "--scenario", file, "--json", "--seed", "42"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
    let c = sim(&["run", "--scenario", file, "--json", "--seed", "43"]);
    assert_ne!(a.stdout, c.stdout, "the seed must matter");
    // One JSON object per policy with the documented keys.
    let text = String::from_utf8(a.stdout).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["policy", "ios", "iops", "mbps", "lat_us", "path_share", "failed_ios"] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["lat_us"].get(key).is_some(), "missing lat_us.{key}");
        }
    }
    assert_eq!(text.lines().count(), 5, "the scenario lists five policies");
}

fn check_conservation(name: &str, r: &PolicyResult) {
    assert_eq!(r.issued, r.ios + r.failed_ios, "{name}/{}: every I/O ends exactly once", r.policy);
    assert_eq!(r.in_flight_at_end, 0, "{name}/{}: the engine's in-flight count balances", r.policy);
    assert_eq!(r.sent_to_failed_paths, 0, "{name}/{}: no I/O to a path the DSM failed", r.policy);
    if r.ios > 0 {
        let sum: f64 = r.path_share.values().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{name}/{}: shares sum to {sum}", r.policy);
    }
}

#[test]
fn every_io_ends_exactly_once_in_every_scenario_and_policy() {
    for (name, scenario) in all_scenarios() {
        let results = compare(&scenario, &LoadBalancePolicy::ALL, scenario.seed).unwrap();
        for r in &results {
            check_conservation(&name, r);
        }
    }
}

#[test]
fn a_failed_path_gets_no_io_until_it_is_reinstated() {
    let scenario = Scenario::parse(rsdsm_sim::DEFAULT_SCENARIO).unwrap();
    for policy in LoadBalancePolicy::ALL {
        let r = run(&scenario, policy, 1).unwrap();
        check_conservation("default", &r);
        // Path 1:1 fails at 800 ms and recovers at 1300 ms (+50 ms verify).
        // Buckets are 50 ms; after detection (2 ms) it serves nothing.
        for bucket in 17..26 {
            let share = r.timeline[bucket]["1:1"];
            assert_eq!(share, 0.0, "{}: bucket {bucket} sent {share} to the failed path", r.policy);
        }
        assert!(
            r.timeline[30]["1:1"] > 0.0
                || policy == LoadBalancePolicy::FailoverOnly && r.timeline[30]["1:2"] > 0.0
        );
        let failover = r.failover_ms.expect("a failure happened");
        assert!((2.0..10.0).contains(&failover), "{}: failover took {failover} ms", r.policy);
        assert_eq!(r.failed_ios, 0, "{}: other paths were usable, nothing fails", r.policy);
    }
}

#[test]
fn one_path_mm1_mean_latency_matches_queueing_theory() {
    let scenario = scenario_file("mm1.toml");
    let r = run(&scenario, LoadBalancePolicy::RoundRobin, scenario.seed).unwrap();
    // lambda = 5000/s, mu = 10000/s: W = 1 / (mu - lambda) = 200 us.
    let expected = 200.0;
    let error = (r.lat_us.mean - expected).abs() / expected;
    assert!(error < 0.05, "M/M/1 mean {} us, expected {expected} us", r.lat_us.mean);
    // Arrivals are Poisson at 5000/s.
    assert!((r.iops - 5000.0).abs() / 5000.0 < 0.03, "iops {}", r.iops);
}

#[test]
fn two_equal_paths_under_round_robin_split_evenly() {
    let text = r#"
duration_ms = 500
[workload]
queue_depth = 8
[[lun]]
name = "l"
[[lun.path]]
id = "0:1"
service = { kind = "exponential", mean_us = 100 }
[[lun.path]]
id = "0:2"
service = { kind = "exponential", mean_us = 100 }
"#;
    let scenario = Scenario::parse(text).unwrap();
    let r = run(&scenario, LoadBalancePolicy::RoundRobin, 9).unwrap();
    let a = r.path_share["0:1"];
    let b = r.path_share["0:2"];
    assert!((a - 0.5).abs() < 0.001 && (b - 0.5).abs() < 0.001, "{a} / {b}");
}

#[test]
fn four_paths_one_slow_at_queue_depth_one() {
    let scenario = scenario_file("slow-path-qd1.toml");
    let results = compare(&scenario, &LoadBalancePolicy::ALL, scenario.seed).unwrap();
    println!("{}", report::table(&scenario, &results));
    let slow =
        |p: LoadBalancePolicy| results.iter().find(|r| r.policy == p.name()).unwrap().path_share["0:4"];
    // Published points: service-time 0.250, Linux HST 0.112, ideal 0.076.
    let adaptive = slow(LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency));
    println!("slow-path share: adaptive latency {adaptive:.3}");
    assert!(adaptive <= 0.09, "adaptive latency sends {adaptive} to the slow path");
    assert!(adaptive > 0.0, "the slow path is still probed");
    // Load-only policies cannot tell the paths apart at QD1.
    let service_time = slow(LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime));
    assert!((service_time - 0.25).abs() < 0.01, "service time {service_time}");
    assert!((slow(LoadBalancePolicy::RoundRobin) - 0.25).abs() < 0.01);
}

#[test]
fn bad_scenarios_are_rejected_with_key_and_line() {
    let dir = std::env::temp_dir().join(format!("rsdsm-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "duration_ms = 100\nqueue_depht = 3\n").unwrap();
    let out = sim(&["run", "--scenario", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("queue_depht"), "{err}");
    let out = sim(&["run", "--policy", "fastest"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fastest"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_default_run_prints_a_table_and_writes_the_svg() {
    let dir = std::env::temp_dir().join(format!("rsdsm-sim-default-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rsdsm-sim")).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for policy in LoadBalancePolicy::ALL {
        assert!(text.contains(policy.name()), "table lacks {policy}");
    }
    let svg = std::fs::read_to_string(dir.join("rsdsm-sim-report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("adaptive-latency") && svg.contains("1:4"));
    std::fs::remove_dir_all(dir).unwrap();
}
