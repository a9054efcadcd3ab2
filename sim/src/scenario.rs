//! Scenario files: the fabric, the workload and the timeline of events.
//!
//! Scenarios are TOML (see `sim/scenarios/*.toml` for documented examples).
//! Every table rejects unknown keys, and every bad value is reported with
//! the key and the line it is on, so a typo never silently becomes a default.

use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;

use rsdsm_engine::{AccessState, LoadBalancePolicy, PathId};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// The scenario `rsdsm-sim` runs without arguments.
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");

/// A parsed and checked scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Title shown in reports.
    #[serde(default = "default_name")]
    pub name: String,
    /// What the scenario demonstrates.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated time during which I/O is issued; outstanding I/O then drains.
    pub duration_ms: Millis,
    /// CPUs issuing I/O (I/Os are spread over them in turn).
    #[serde(default = "default_cpus")]
    pub cpus: NonZeroU32,
    /// Width of the buckets of the per-path share time series.
    #[serde(default = "default_sample_ms")]
    pub sample_ms: Millis,
    /// Policies to compare; all of them when absent. `--policy` overrides it.
    #[serde(default)]
    pub policies: Vec<PolicyName>,
    /// DSM behaviour.
    #[serde(default)]
    pub dsm: DsmSettings,
    /// Workload of every LUN that does not set its own.
    pub workload: Workload,
    /// The LUNs and their paths.
    #[serde(rename = "lun")]
    pub luns: Vec<LunSpec>,
    /// Timeline.
    #[serde(default, rename = "event")]
    pub events: Vec<EventSpec>,
}

fn default_name() -> String {
    "unnamed scenario".into()
}
const fn default_seed() -> u64 {
    1
}
const fn default_cpus() -> NonZeroU32 {
    NonZeroU32::MIN
}
const fn default_sample_ms() -> Millis {
    Millis(50.0)
}

/// How the simulated DSM reacts (the parts of MPIO and the DSM the engine
/// does not decide).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DsmSettings {
    /// Failover only's failback: `"immediate"`, `"manual"` or `"delayed"`.
    pub failback: FailbackName,
    /// Delay of `"delayed"` failback.
    pub failback_delay_ms: Millis,
    /// How long after a path recovers the DSM's verification (a path
    /// verify by MPIO) finds it healthy and reinstates it.
    pub verify_after_ms: Millis,
    /// How long an I/O sent to a dead path takes to fail (link-down or
    /// selection-timeout detection).
    pub error_detect_us: Micros,
    /// How often one I/O is retried (on another path) before it fails.
    pub max_retries: u32,
    /// `serve` only: wall-clock time a policy save takes (a slow registry
    /// flush), during which the LUN's set is in progress. Lets a second set
    /// or a LUN removal meet a set in flight.
    pub persist_delay_ms: Millis,
}

impl Default for DsmSettings {
    fn default() -> Self {
        Self {
            failback: FailbackName::Immediate,
            failback_delay_ms: Millis(1000.0),
            verify_after_ms: Millis(50.0),
            error_detect_us: Micros(1000.0),
            max_retries: 8,
            persist_delay_ms: Millis(0.0),
        }
    }
}

/// Failback mode names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailbackName {
    /// Back to the preferred/primary path as soon as it is reinstated.
    Immediate,
    /// Only on request.
    Manual,
    /// `failback_delay_ms` after reinstatement.
    Delayed,
}

/// What the host asks of one LUN.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// `"random"` or `"sequential"`.
    #[serde(default)]
    pub pattern: Pattern,
    /// Percentage of reads, 0–100.
    #[serde(default = "default_read_percent")]
    pub read_percent: Percent,
    /// Bytes per I/O (a multiple of 512).
    #[serde(default = "default_block_size")]
    pub block_size: BlockSize,
    /// Closed loop: I/Os kept outstanding (a new one as each completes).
    pub queue_depth: Option<NonZeroU32>,
    /// Open loop: Poisson arrivals at this mean rate (I/Os per second).
    pub arrival_iops: Option<Positive>,
    /// LUN size in GiB (where random I/O lands).
    #[serde(default = "default_capacity")]
    pub capacity_gib: Positive,
}

const fn default_read_percent() -> Percent {
    Percent(100)
}
const fn default_block_size() -> BlockSize {
    BlockSize(4096)
}
const fn default_capacity() -> Positive {
    Positive(64.0)
}

/// Access pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Uniformly random block-aligned offsets.
    #[default]
    Random,
    /// Consecutive offsets (one stream per LUN).
    Sequential,
}

/// One LUN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LunSpec {
    /// Name events refer to.
    pub name: String,
    /// Overrides the scenario's workload.
    pub workload: Option<Workload>,
    /// Paths to the LUN.
    #[serde(rename = "path")]
    pub paths: Vec<PathSpec>,
}

/// One path: a queue with parallel slots in front of a service-time
/// distribution, a bandwidth limit and a propagation delay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// VDS path id, `"SOURCE:PATH"` (e.g. `"1:2"`).
    pub id: PathRef,
    /// ALUA state at the start.
    #[serde(default = "default_access")]
    pub access: AccessName,
    /// Service time of one I/O.
    pub service: Service,
    /// I/Os the path serves at once (device queue depth); the rest wait.
    #[serde(default = "default_slots")]
    pub slots: NonZeroU32,
    /// Link bandwidth in MB/s (10^6 bytes); absent = unlimited.
    pub bandwidth_mbps: Option<Positive>,
    /// One-way propagation delay.
    #[serde(default)]
    pub delay_us: Micros,
    /// Admin weight (SetLoadBalancePolicy `ulWeight`).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Admin primary flag (`bPrimaryPath`).
    #[serde(default = "default_true")]
    pub primary: bool,
    /// Present at the start (`false`: arrives with an `add-path` event).
    #[serde(default = "default_true")]
    pub present: bool,
}

const fn default_access() -> AccessName {
    AccessName(AccessState::ActiveOptimized)
}
const fn default_slots() -> NonZeroU32 {
    NonZeroU32::new(32).unwrap()
}
const fn default_weight() -> u32 {
    1
}
const fn default_true() -> bool {
    true
}

/// A service-time distribution.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `"fixed"`, `"exponential"` or `"lognormal"`.
    pub kind: ServiceKind,
    /// Mean service time.
    pub mean_us: Positive,
    /// Log-normal only: standard deviation of the underlying normal.
    pub sigma: Option<Positive>,
}

/// Service-time distribution kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Always the mean.
    Fixed,
    /// Memoryless (M/M/c queues).
    Exponential,
    /// Heavy-tailed; `sigma` sets the spread (default 0.5).
    Lognormal,
}

/// One timed event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When, from the start of the run.
    pub at_ms: Millis,
    /// What happens.
    pub action: Action,
    /// The LUN (default: the first).
    pub lun: Option<Spanned<String>>,
    /// The path, for path events.
    pub path: Option<Spanned<PathRef>>,
    /// `access` events: the new ALUA state.
    pub access: Option<AccessName>,
    /// `policy` events: the new policy.
    pub policy: Option<PolicyName>,
    /// `flap` events: time between a failure and the next recovery (and
    /// between a recovery and the next failure).
    pub period_ms: Option<Millis>,
    /// `flap` events: how many failures.
    pub count: Option<NonZeroU32>,
}

/// Event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The path dies: its I/O fails after `error_detect_us`.
    Fail,
    /// The path works again; the DSM reinstates it after `verify_after_ms`.
    Recover,
    /// `count` failures, each followed by a recovery, `period_ms` apart.
    Flap,
    /// The array changes the path's ALUA state (reported to the host as a
    /// unit attention).
    Access,
    /// A path arrives (declared with `present = false`).
    AddPath,
    /// A path is removed (its I/O drains first).
    RemovePath,
    /// The LUN goes away: its I/O fails, nothing new is issued.
    RemoveLun,
    /// An administrator sets a new load-balance policy.
    Policy,
}

// ---------------------------------------------------------------------------
// Checked value types: a bad value fails deserialisation, so the TOML error
// carries the key and line.
// ---------------------------------------------------------------------------

macro_rules! checked_float {
    ($name:ident, $what:literal, $ok:expr) => {
        #[doc = concat!("A number of ", $what, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
        pub struct $name(pub f64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = FloatOrInt::deserialize(d)?.0;
                let ok: fn(f64) -> bool = $ok;
                if v.is_finite() && ok(v) {
                    Ok(Self(v))
                } else {
                    Err(serde::de::Error::custom(format!("{v} is not a valid number of {}", $what)))
                }
            }
        }
    };
}

checked_float!(Millis, "milliseconds (>= 0)", |v| v >= 0.0);
checked_float!(Micros, "microseconds (>= 0)", |v| v >= 0.0);
checked_float!(Positive, "units (> 0)", |v| v > 0.0);

/// TOML writes `100` and `100.0` differently; both mean the same here.
struct FloatOrInt(f64);

impl<'de> Deserialize<'de> for FloatOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Int(i64),
            Float(f64),
        }
        #[allow(clippy::cast_precision_loss, reason = "scenario values are far below 2^52")]
        match Number::deserialize(d)? {
            Number::Int(i) => Ok(Self(i as f64)),
            Number::Float(f) => Ok(Self(f)),
        }
    }
}

impl Millis {
    /// In nanoseconds (the simulation's tick).
    #[must_use]
    pub fn ns(self) -> u64 {
        to_ns(self.0 * 1e6)
    }
}

impl Micros {
    /// In nanoseconds.
    #[must_use]
    pub fn ns(self) -> u64 {
        to_ns(self.0 * 1e3)
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked non-negative and finite")]
fn to_ns(v: f64) -> u64 {
    v.round() as u64
}

/// A percentage, 0–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub u8);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u8::try_from(v)
            .ok()
            .filter(|v| *v <= 100)
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom(format!("{v} is not a percentage (0-100)")))
    }
}

/// An I/O size: a non-zero multiple of 512 bytes, at most 16 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSize(pub u32);

impl<'de> Deserialize<'de> for BlockSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u32::try_from(v).ok().filter(|v| *v > 0 && v % 512 == 0 && *v <= 16 << 20).map(Self).ok_or_else(
            || {
                serde::de::Error::custom(format!(
                    "{v} is not a block size (a multiple of 512, at most 16 MiB)"
                ))
            },
        )
    }
}

/// A path id written `"SOURCE:PATH"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathRef(pub PathId);

impl fmt::Display for PathRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.source_id, self.0.path_id)
    }
}

impl std::str::FromStr for PathRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (source, path) =
            s.split_once(':').ok_or_else(|| format!("{s:?} is not a path id SOURCE:PATH"))?;
        match (source.trim().parse(), path.trim().parse()) {
            (Ok(source), Ok(path)) => Ok(Self(PathId::new(source, path))),
            _ => Err(format!("{s:?} is not a path id SOURCE:PATH (two unsigned numbers)")),
        }
    }
}

impl<'de> Deserialize<'de> for PathRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A policy by name or number (see `LoadBalancePolicy`'s `FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyName(pub LoadBalancePolicy);

impl<'de> Deserialize<'de> for PolicyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NameOrNumber {
            Name(String),
            Number(u32),
        }
        let text = match NameOrNumber::deserialize(d)? {
            NameOrNumber::Name(s) => s,
            NameOrNumber::Number(n) => n.to_string(),
        };
        text.parse().map(Self).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

/// An ALUA state by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessName(pub AccessState);

impl<'de> Deserialize<'de> for AccessName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let state = match s.as_str() {
            "active-optimized" | "optimized" => AccessState::ActiveOptimized,
            "active-non-optimized" | "non-optimized" => AccessState::ActiveNonOptimized,
            "standby" => AccessState::Standby,
            "unavailable" => AccessState::Unavailable,
            "transitioning" => AccessState::Transitioning,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "{s:?} is not an access state (active-optimized, active-non-optimized, standby, \
                     unavailable, transitioning)"
                )));
            }
        };
        Ok(Self(state))
    }
}

// ---------------------------------------------------------------------------
// Loading and cross-checks
// ---------------------------------------------------------------------------

/// A scenario that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Parses and checks a scenario.
    ///
    /// # Errors
    /// Syntax errors, unknown keys, bad values and inconsistent references
    /// (an event naming an unknown LUN or path, a LUN without a workload),
    /// each naming the key and the line.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        scenario.check(text)?;
        Ok(scenario)
    }

    fn check(&self, text: &str) -> Result<(), ScenarioError> {
        if self.luns.is_empty() {
            return Err(ScenarioError("the scenario has no [[lun]]".into()));
        }
        if self.duration_ms.0 <= 0.0 {
            return Err(ScenarioError("duration_ms must be greater than 0".into()));
        }
        if self.sample_ms.0 <= 0.0 {
            return Err(ScenarioError("sample_ms must be greater than 0".into()));
        }
        for (i, lun) in self.luns.iter().enumerate() {
            let where_ = format!("lun {:?}", lun.name);
            if self.luns.iter().take(i).any(|l| l.name == lun.name) {
                return Err(ScenarioError(format!("{where_}: two LUNs have this name")));
            }
            if lun.paths.is_empty() || lun.paths.len() > 32 {
                return Err(ScenarioError(format!("{where_}: needs 1 to 32 paths, has {}", lun.paths.len())));
            }
            for (j, p) in lun.paths.iter().enumerate() {
                if lun.paths.iter().take(j).any(|q| q.id == p.id) {
                    return Err(ScenarioError(format!("{where_}: path {} is listed twice", p.id)));
                }
                if p.service.kind != ServiceKind::Lognormal && p.service.sigma.is_some() {
                    return Err(ScenarioError(format!(
                        "{where_}, path {}: sigma applies to lognormal only",
                        p.id
                    )));
                }
            }
            let w = self.workload_of(lun);
            match (w.queue_depth, w.arrival_iops) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(ScenarioError(format!(
                        "{where_}: the workload needs exactly one of queue_depth (closed loop) or arrival_iops \
                         (open loop)"
                    )));
                }
            }
        }
        for e in &self.events {
            self.check_event(e, text)?;
        }
        Ok(())
    }

    fn check_event(&self, e: &EventSpec, text: &str) -> Result<(), ScenarioError> {
        let at = |span: Range<usize>| format!("line {}", line_of(text, span.start));
        let lun = match &e.lun {
            Some(name) => self.luns.iter().find(|l| l.name == *name.get_ref()).ok_or_else(|| {
                ScenarioError(format!(
                    "{}: event key `lun`: no LUN named {:?}",
                    at(name.span()),
                    name.get_ref()
                ))
            })?,
            None => self.luns.first().ok_or_else(|| ScenarioError("no LUN".into()))?,
        };
        let needs_path = matches!(
            e.action,
            Action::Fail
                | Action::Recover
                | Action::Flap
                | Action::Access
                | Action::AddPath
                | Action::RemovePath
        );
        let action = format!("{:?}", e.action).to_lowercase();
        match (&e.path, needs_path) {
            (None, true) => {
                return Err(ScenarioError(format!("event at {} ms ({action}): needs key `path`", e.at_ms.0)));
            }
            (Some(p), false) => {
                return Err(ScenarioError(format!(
                    "{}: event key `path` does not apply to {action}",
                    at(p.span())
                )));
            }
            (Some(p), true) if !lun.paths.iter().any(|q| q.id == *p.get_ref()) => {
                return Err(ScenarioError(format!(
                    "{}: event key `path`: LUN {:?} has no path {}",
                    at(p.span()),
                    lun.name,
                    p.get_ref()
                )));
            }
            _ => {}
        }
        let required = |present: bool, key: &str| {
            if present {
                Ok(())
            } else {
                Err(ScenarioError(format!("event at {} ms ({action}): needs key `{key}`", e.at_ms.0)))
            }
        };
        match e.action {
            Action::Access => required(e.access.is_some(), "access"),
            Action::Policy => required(e.policy.is_some(), "policy"),
            Action::Flap => required(e.period_ms.is_some() && e.count.is_some(), "period_ms` and `count"),
            _ => Ok(()),
        }
    }

    /// The workload of a LUN.
    #[must_use]
    pub fn workload_of(&self, lun: &LunSpec) -> Workload {
        lun.workload.unwrap_or(self.workload)
    }

    /// The policies to compare.
    #[must_use]
    pub fn policies(&self) -> Vec<LoadBalancePolicy> {
        if self.policies.is_empty() {
            LoadBalancePolicy::ALL.to_vec()
        } else {
            self.policies.iter().map(|p| p.0).collect()
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
duration_ms = 100
[workload]
queue_depth = 4
[[lun]]
name = "a"
[[lun.path]]
id = "1:1"
service = { kind = "fixed", mean_us = 100 }
"#;

    #[test]
    fn the_default_scenario_parses() {
        let s = Scenario::parse(DEFAULT_SCENARIO).unwrap();
        assert_eq!(s.luns.len(), 1);
        assert_eq!(s.luns[0].paths.len(), 4);
        assert!(!s.events.is_empty());
    }

    #[test]
    fn every_example_scenario_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            Scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn a_minimal_scenario_gets_defaults() {
        let s = Scenario::parse(MINIMAL).unwrap();
        assert_eq!(s.seed, 1);
        assert_eq!(s.policies().len(), LoadBalancePolicy::ALL.len());
        let p = &s.luns[0].paths[0];
        assert_eq!(p.access.0, AccessState::ActiveOptimized);
        assert_eq!(p.slots.get(), 32);
        assert_eq!(s.workload.block_size.0, 4096);
    }

    fn error_of(text: &str) -> String {
        Scenario::parse(text).unwrap_err().0
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = error_of(&MINIMAL.replace("queue_depth = 4", "queue_depth = 4\nqueue_dept = 5"));
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("queue_dept"), "{e}");
    }

    #[test]
    fn a_bad_value_is_named_with_its_line() {
        let e = error_of(&MINIMAL.replace("queue_depth = 4", "queue_depth = 0"));
        assert!(e.contains("line 4") && e.contains("queue_depth"), "{e}");
        let e = error_of(&MINIMAL.replace("id = \"1:1\"", "id = \"1-1\""));
        assert!(e.contains("line 8") && e.contains("SOURCE:PATH"), "{e}");
        let e = error_of(&MINIMAL.replace("kind = \"fixed\"", "kind = \"gaussian\""));
        assert!(e.contains("line 9") && e.contains("gaussian"), "{e}");
        let e = error_of(&MINIMAL.replace("[workload]", "[workload]\nblock_size = 1000"));
        assert!(e.contains("line 4") && e.contains("multiple of 512"), "{e}");
        let e = error_of(&format!("policies = [\"RR\", \"fastest\"]\n{MINIMAL}"));
        assert!(e.contains("line 1") && e.contains("fastest"), "{e}");
    }

    #[test]
    fn events_must_name_existing_luns_and_paths() {
        let e = error_of(&format!("{MINIMAL}\n[[event]]\nat_ms = 5\naction = \"fail\"\npath = \"1:9\"\n"));
        assert!(e.contains("line 14") && e.contains("no path 1:9"), "{e}");
        let e = error_of(&format!(
            "{MINIMAL}\n[[event]]\nat_ms = 5\naction = \"fail\"\nlun = \"zz\"\npath = \"1:1\"\n"
        ));
        assert!(e.contains("line 14") && e.contains("zz"), "{e}");
        let e = error_of(&format!("{MINIMAL}\n[[event]]\nat_ms = 5\naction = \"policy\"\n"));
        assert!(e.contains("needs key `policy`"), "{e}");
        let e = error_of(&format!("{MINIMAL}\n[[event]]\nat_ms = 5\naction = \"explode\"\n"));
        assert!(e.contains("line 13") && e.contains("explode"), "{e}");
    }

    #[test]
    fn a_workload_is_closed_or_open_loop() {
        let e = error_of(&MINIMAL.replace("queue_depth = 4", "queue_depth = 4\narrival_iops = 100"));
        assert!(e.contains("exactly one"), "{e}");
    }
}
