//! # rsdsm-sim
//!
//! A deterministic discrete-event simulator of one host's multipath fabric,
//! driving the real rsdsm engine: every simulated I/O goes through the same
//! `select → start → complete`, failure handling and policy changes a DSM
//! performs, so the numbers it prints are the engine's own behaviour.
//!
//! * [`scenario`]: TOML scenario files (fabric, workload, events).
//! * [`fabric`]: paths as queues with service-time distributions.
//! * [`host`]: the simulated DSM for one LUN.
//! * [`file_store`]: a crash-safe file-backed policy store.
//! * [`run`](mod@run): the event loop.
//! * [`report`] and [`svg`]: tables, JSON and charts.
//! * `serve`: a live simulated DSM answering IOCTL bytes over a Unix socket.

pub mod fabric;
pub mod file_store;
pub mod host;
pub mod report;
pub mod run;
pub mod scenario;
#[cfg(unix)]
pub mod serve;
pub mod svg;

use rsdsm_engine::{Error, LoadBalancePolicy};

pub use report::PolicyResult;
pub use scenario::{DEFAULT_SCENARIO, Scenario, ScenarioError};

/// Runs `scenario` once per policy (in parallel; each run is independent and
/// deterministic) and returns the results in the order of `policies`.
///
/// # Errors
/// The first policy whose run the engine refused (invalid admin settings).
pub fn compare(
    scenario: &Scenario,
    policies: &[LoadBalancePolicy],
    seed: u64,
) -> Result<Vec<PolicyResult>, (LoadBalancePolicy, Error)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(policies.len().max(1));
    let mut results: Vec<Option<Result<PolicyResult, Error>>> = vec![None; policies.len()];
    std::thread::scope(|s| {
        for (w, chunk) in results.chunks_mut(policies.len().div_ceil(workers).max(1)).enumerate() {
            let start = w * policies.len().div_ceil(workers).max(1);
            s.spawn(move || {
                for (k, slot) in chunk.iter_mut().enumerate() {
                    if let Some(policy) = policies.get(start + k) {
                        *slot = Some(run::run(scenario, *policy, seed));
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .zip(policies)
        .map(|(r, p)| match r {
            Some(Ok(result)) => Ok(result),
            Some(Err(e)) => Err((*p, e)),
            None => Err((*p, Error::ObjectStatusFailed)),
        })
        .collect()
}
