//! What a run measured, and how it is shown: a table for people, JSON for
//! scripts (one object per policy, in a fixed key order so that the same
//! run prints the same bytes).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rsdsm_engine::LoadBalancePolicy;
use serde::Serialize;

use crate::scenario::{Action, Scenario};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// A timeline event as it happened, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMark {
    /// Milliseconds from the start.
    pub at_ms: f64,
    /// What happened (e.g. `fail lun0 1:1`).
    pub what: String,
}

/// The result of one policy on one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    /// Long policy name.
    pub policy: String,
    /// I/Os that completed successfully.
    pub ios: u64,
    /// Successful I/Os per second of the scenario's duration.
    pub iops: f64,
    /// Throughput in MB/s (10^6 bytes).
    pub mbps: f64,
    /// End-to-end latency of successful I/Os, retries included.
    pub lat_us: Latency,
    /// Fraction of successful I/Os each path served (`LUN/SOURCE:PATH`
    /// when the scenario has several LUNs); sums to 1.
    pub path_share: BTreeMap<String, f64>,
    /// I/Os that ended in an error for the application.
    pub failed_ios: u64,
    /// Worst time from a path failure until the first I/O it caught
    /// completed on another path; absent without failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_ms: Option<f64>,
    /// I/Os issued by the application (= `ios` + `failed_ios`).
    pub issued: u64,
    /// I/Os the engine still counted in flight at the end (must be 0).
    pub in_flight_at_end: u64,
    /// Selections of a path the DSM had failed (must be 0).
    pub sent_to_failed_paths: u64,
    /// Verifications that found a path held down after flapping.
    pub held_down: u64,
    /// Policy sets the engine rejected during the run.
    pub rejected_sets: u64,
    /// Per time bucket, the share of completions each path served.
    #[serde(skip)]
    pub timeline: Vec<BTreeMap<String, f64>>,
    /// Width of a timeline bucket in ms.
    #[serde(skip)]
    pub bucket_ms: f64,
    /// The scenario's events as they happened.
    #[serde(skip)]
    pub events: Vec<EventMark>,
}

/// Collects a run's measurements as it goes.
#[derive(Debug)]
pub struct Recorder {
    policy: LoadBalancePolicy,
    duration_ns: u64,
    bucket_ns: u64,
    names: Vec<Vec<String>>,
    latencies: Vec<u64>,
    bytes: u64,
    per_path: Vec<Vec<u64>>,
    buckets: Vec<Vec<Vec<u64>>>,
    failed: u64,
    failover_start: Vec<Option<u64>>,
    failover: Option<u64>,
    sent_to_failed: u64,
    held_down: u64,
    rejected_sets: u64,
    events: Vec<EventMark>,
    keep_latencies: bool,
    completed: u64,
}

impl Recorder {
    /// A recorder for `scenario` under `policy`; `paths` lists each LUN's
    /// path names, comma-separated.
    #[must_use]
    pub fn new(scenario: &Scenario, policy: LoadBalancePolicy, duration_ns: u64, paths: &[String]) -> Self {
        let several = scenario.luns.len() > 1;
        let names: Vec<Vec<String>> = scenario
            .luns
            .iter()
            .zip(paths)
            .map(|(lun, list)| {
                list.split(',')
                    .map(|p| if several { format!("{}/{p}", lun.name) } else { p.to_string() })
                    .collect()
            })
            .collect();
        let bucket_ns = scenario.sample_ms.ns().max(1);
        let bucket_count = usize::try_from(duration_ns.div_ceil(bucket_ns)).unwrap_or(1).max(1);
        Self {
            policy,
            duration_ns,
            bucket_ns,
            per_path: names.iter().map(|n| vec![0; n.len()]).collect(),
            buckets: names.iter().map(|n| vec![vec![0; n.len()]; bucket_count]).collect(),
            failover_start: vec![None; names.len()],
            names,
            latencies: Vec::new(),
            bytes: 0,
            failed: 0,
            failover: None,
            sent_to_failed: 0,
            held_down: 0,
            rejected_sets: 0,
            events: Vec::new(),
            keep_latencies: true,
            completed: 0,
        }
    }

    /// A successful completion.
    pub fn completed(
        &mut self,
        lun: usize,
        path: usize,
        issued: u64,
        now: u64,
        bytes: u32,
        hit_failure: bool,
    ) {
        self.completed += 1;
        if self.keep_latencies {
            self.latencies.push(now - issued);
        }
        self.bytes += u64::from(bytes);
        if let Some(n) = self.per_path.get_mut(lun).and_then(|p| p.get_mut(path)) {
            *n += 1;
        }
        let bucket = usize::try_from(issued / self.bucket_ns).unwrap_or(usize::MAX);
        if let Some(n) =
            self.buckets.get_mut(lun).and_then(|b| b.get_mut(bucket)).and_then(|b| b.get_mut(path))
        {
            *n += 1;
        }
        if hit_failure && let Some(start) = self.failover_start.get_mut(lun).and_then(Option::take) {
            let took = now.saturating_sub(start);
            self.failover = Some(self.failover.map_or(took, |f| f.max(took)));
        }
    }

    /// Whether to keep every latency for percentiles (a live simulation
    /// that never ends must not).
    pub fn keep_latencies(&mut self, keep: bool) {
        self.keep_latencies = keep;
    }

    /// I/Os completed successfully and failed so far.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.completed, self.failed)
    }

    /// An I/O failed to the application.
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// The engine picked a path the DSM had failed.
    pub fn sent_to_failed_path(&mut self) {
        self.sent_to_failed += 1;
    }

    /// A verification found a path held down.
    pub fn held_down(&mut self) {
        self.held_down += 1;
    }

    /// The engine rejected a scenario's policy change.
    pub fn rejected_set(&mut self) {
        self.rejected_sets += 1;
    }

    /// A timeline event happened.
    pub fn event(&mut self, now: u64, lun: usize, path: Option<usize>, action: Action) {
        if action == Action::Fail
            && let Some(start) = self.failover_start.get_mut(lun)
        {
            start.get_or_insert(now);
        }
        let path_name =
            path.and_then(|p| self.names.get(lun).and_then(|n| n.get(p))).cloned().unwrap_or_default();
        let what = format!("{} {path_name}", action_name(action)).trim().to_string();
        self.events.push(EventMark { at_ms: ns_to_ms(now), what });
    }

    /// The result, once the event queue is empty.
    #[must_use]
    pub fn finish(mut self, issued: u64, in_flight_at_end: u64) -> PolicyResult {
        self.latencies.sort_unstable();
        // Not `latencies.len()`: a live simulation keeps no latencies.
        let ios = self.completed;
        let seconds = ns_to_ms(self.duration_ns) / 1e3;
        let mut path_share = BTreeMap::new();
        for (names, counts) in self.names.iter().zip(&self.per_path) {
            for (name, n) in names.iter().zip(counts) {
                path_share.insert(name.clone(), ratio(*n, ios));
            }
        }
        let timeline = (0..self.buckets.first().map_or(0, Vec::len))
            .map(|b| {
                let total: u64 = self.buckets.iter().filter_map(|l| l.get(b)).flatten().sum();
                let mut share = BTreeMap::new();
                for (names, lun) in self.names.iter().zip(&self.buckets) {
                    for (name, n) in names.iter().zip(lun.get(b).into_iter().flatten()) {
                        share.insert(name.clone(), ratio(*n, total));
                    }
                }
                share
            })
            .collect();
        PolicyResult {
            policy: self.policy.name().to_string(),
            ios,
            iops: round(count_f64(ios) / seconds, 1),
            mbps: round(count_f64(self.bytes) / seconds / 1e6, 2),
            lat_us: latency(&self.latencies),
            path_share,
            failed_ios: self.failed,
            failover_ms: self.failover.map(|f| round(ns_to_ms(f), 3)),
            issued,
            in_flight_at_end,
            sent_to_failed_paths: self.sent_to_failed,
            held_down: self.held_down,
            rejected_sets: self.rejected_sets,
            timeline,
            bucket_ms: ns_to_ms(self.bucket_ns),
            events: self.events,
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Fail => "fail",
        Action::Recover => "recover",
        Action::Flap => "flap",
        Action::Access => "alua",
        Action::AddPath => "add",
        Action::RemovePath => "remove",
        Action::RemoveLun => "remove-lun",
        Action::Policy => "policy",
    }
}

fn latency(sorted: &[u64]) -> Latency {
    let at = |q: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        // Nearest-rank percentile.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "in 0..len")]
        let rank = ((q * count_f64(sorted.len() as u64)).ceil() as usize).clamp(1, sorted.len());
        round(sorted.get(rank - 1).map_or(0.0, |v| count_f64(*v) / 1e3), 1)
    };
    let sum: u128 = sorted.iter().map(|v| u128::from(*v)).sum();
    #[allow(clippy::cast_precision_loss, reason = "a mean for display")]
    let mean = if sorted.is_empty() { 0.0 } else { sum as f64 / sorted.len() as f64 / 1e3 };
    Latency { p50: at(0.50), p99: at(0.99), p999: at(0.999), max: at(1.0), mean: round(mean, 1) }
}

#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn count_f64(n: u64) -> f64 {
    n as f64
}

fn ratio(n: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { round(count_f64(n) / count_f64(total), 6) }
}

fn ns_to_ms(ns: u64) -> f64 {
    count_f64(ns) / 1e6
}

/// Rounds for stable, readable output.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// The comparison table people read.
#[must_use]
pub fn table(scenario: &Scenario, results: &[PolicyResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", scenario.name);
    let paths: Vec<&String> = results.first().map(|r| r.path_share.keys().collect()).unwrap_or_default();
    let _ = write!(
        out,
        "\n{:<24} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9}",
        "policy", "IOPS", "MB/s", "p50 us", "p99 us", "p99.9 us", "failed", "failover"
    );
    for p in &paths {
        let _ = write!(out, " {p:>7}");
    }
    out.push('\n');
    for r in results {
        let failover = r.failover_ms.map_or_else(|| "-".to_string(), |f| format!("{f:.1}ms"));
        let _ = write!(
            out,
            "{:<24} {:>9.0} {:>8.1} {:>8.0} {:>8.0} {:>9.0} {:>7} {:>9}",
            r.policy, r.iops, r.mbps, r.lat_us.p50, r.lat_us.p99, r.lat_us.p999, r.failed_ios, failover
        );
        for p in &paths {
            let share = r.path_share.get(*p).copied().unwrap_or(0.0);
            let _ = write!(out, " {:>6.1}%", share * 100.0);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nPath columns: share of the I/O each path served. Latency is end to end, retries included."
    );
    out
}

/// One JSON object per policy, one per line.
///
/// # Errors
/// Never in practice: every value is a plain number or string.
pub fn json_lines(results: &[PolicyResult]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for r in results {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    Ok(out)
}
