//! `rsdsmctl`: list LUNs, show paths and statistics, get and set policies.
//!
//! ```text
//! rsdsmctl [--socket PATH] [--json] luns
//! rsdsmctl paths LUN
//! rsdsmctl policy get LUN
//! rsdsmctl policy set LUN POLICY [--path SOURCE:PATH[:primary][:weight=N]]... [--if-generation G]
//! rsdsmctl stats LUN [--watch [SECS]] [--count N]
//! rsdsmctl default-policy get | set POLICY
//! rsdsmctl policies [LUN]
//! rsdsmctl version
//! ```
//!
//! * `--socket PATH` talks to a simulated DSM (`rsdsm-sim serve`); without
//!   it, the installed driver's control device (Windows only).
//! * LUN is the handle `luns` lists, decimal or `0x` hex.
//! * POLICY is a VDS number (`1`..`6`, `7:ID` for vendor policies), a short
//!   name (`FOO`, `RR`, `RRWS`, `LQD`, `WP`, `LB`, `WRR`, `ST`, `AL`) or a
//!   long name (`least-queue-depth`), case-insensitive.
//! * `--path` names one path by its VDS path id (`SOURCE:PATH`, decimal or
//!   `0x` hex); `primary` makes it a primary path, `weight=N` sets its
//!   weight. Omitted: not primary, weight 0. Given at all, the `--path`
//!   list must name every path of the LUN (`SetLoadBalancePolicy`
//!   semantics). Without any `--path`, the LUN's current paths are sent
//!   with their current primary and weight settings, so only the policy
//!   changes (failover only then needs exactly one current primary path).
//! * Exit status 0 on `S_OK`; otherwise 1, and stderr shows the HRESULT:
//!   `rsdsmctl: 0x80070057 E_INVALIDARG: an argument is invalid`. Usage
//!   errors exit with 2.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rsdsm_engine::wire::RawPolicy;
use rsdsm_engine::{AccessState, Health, PathFlags};
use serde_json::{Value, json};

use crate::transport::{Transport, TransportError};
use crate::{ControlError, Dsm, LoadBalancePolicy, LunId, PathId, PathPolicy, PathStatisticsEntry};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "rsdsmctl",
    version,
    about = "Control the rsdsm MPIO DSM: LUNs, paths, statistics, load-balance policies"
)]
pub struct Cli {
    /// Talk to a simulated DSM on this Unix socket (`rsdsm-sim serve`)
    /// instead of the installed driver.
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the LUNs the DSM manages.
    Luns,
    /// Show a LUN's paths and their state.
    Paths {
        /// The LUN handle (from `luns`).
        #[arg(value_parser = parse_lun)]
        lun: LunId,
    },
    /// Get or set a LUN's load-balance policy.
    Policy {
        /// get or set.
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Show a LUN's per-path statistics.
    Stats {
        /// The LUN handle.
        #[arg(value_parser = parse_lun)]
        lun: LunId,
        /// Repeat every SECS seconds (default 1), with rates since the last sample.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<u64>,
        /// With --watch: stop after N samples.
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
    },
    /// Get or set the DSM-wide default policy for new LUNs.
    DefaultPolicy {
        /// get or set.
        #[command(subcommand)]
        action: DefaultCommand,
    },
    /// List the policies (with a LUN: those the DSM supports for it).
    Policies {
        /// The LUN handle.
        #[arg(value_parser = parse_lun)]
        lun: Option<LunId>,
    },
    /// Show the DSM's protocol and driver version and limits.
    Version,
}

/// `policy get|set`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy and every path's settings.
    Get {
        /// The LUN handle.
        #[arg(value_parser = parse_lun)]
        lun: LunId,
    },
    /// Set the policy and every path's settings, all or nothing.
    Set {
        /// The LUN handle.
        #[arg(value_parser = parse_lun)]
        lun: LunId,
        /// The policy: VDS number (`7:ID` for vendor policies; any number is
        /// sent as is, the DSM judges it), short or long name.
        #[arg(value_parser = parse_raw_policy)]
        policy: RawPolicy,
        /// One path's settings; repeat for every path of the LUN.
        #[arg(long = "path", value_name = "SOURCE:PATH[:primary][:weight=N]", value_parser = parse_path_spec)]
        paths: Vec<PathPolicy>,
        /// Apply only if the LUN is still at this configuration generation.
        #[arg(long, value_name = "G")]
        if_generation: Option<u64>,
    },
}

/// `default-policy get|set`.
#[derive(Debug, Subcommand)]
pub enum DefaultCommand {
    /// Show the default policy.
    Get,
    /// Set the default policy.
    Set {
        /// The policy: VDS number, short or long name.
        #[arg(value_parser = parse_policy)]
        policy: LoadBalancePolicy,
    },
}

fn parse_u64(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not a number (decimal or 0x hex)"))
}

/// Parses a LUN handle: decimal or `0x` hex.
///
/// # Errors
/// A message for clap.
pub fn parse_lun(text: &str) -> Result<LunId, String> {
    parse_u64(text).map(LunId)
}

/// Parses the policy of `policy set`: a name, or a VDS number (`N` or
/// `N:VENDOR`) passed through unchecked so that the DSM answers an unknown
/// value with `E_INVALIDARG`, exactly as `SetLoadBalancePolicy` does.
///
/// # Errors
/// A message for clap.
pub fn parse_raw_policy(text: &str) -> Result<RawPolicy, String> {
    if let Ok(policy) = LoadBalancePolicy::from_str(text) {
        return Ok(RawPolicy::from(policy));
    }
    let (number, vendor) = text.trim().split_once(':').unwrap_or((text.trim(), "0"));
    match (number.parse(), vendor.parse()) {
        (Ok(number), Ok(vendor)) => Ok(RawPolicy { number, vendor }),
        _ => Err(parse_policy(text).err().unwrap_or_default()),
    }
}

/// Parses a policy: VDS number, short or long name.
///
/// # Errors
/// A message for clap.
pub fn parse_policy(text: &str) -> Result<LoadBalancePolicy, String> {
    LoadBalancePolicy::from_str(text).map_err(|e| e.to_string())
}

/// Parses `SOURCE:PATH[:primary][:weight=N]`.
///
/// ```
/// use rsdsm_control::cli::parse_path_spec;
/// use rsdsm_control::{PathId, PathPolicy};
/// assert_eq!(
///     parse_path_spec("0x10:2:primary:weight=5"),
///     Ok(PathPolicy { path_id: PathId::new(16, 2), primary: true, weight: 5 })
/// );
/// ```
///
/// # Errors
/// A message for clap.
pub fn parse_path_spec(text: &str) -> Result<PathPolicy, String> {
    let mut parts = text.split(':');
    let (Some(source), Some(path)) = (parts.next(), parts.next()) else {
        return Err(format!("`{text}`: expected SOURCE:PATH[:primary][:weight=N]"));
    };
    let mut spec =
        PathPolicy { path_id: PathId::new(parse_u64(source)?, parse_u64(path)?), primary: false, weight: 0 };
    let (mut seen_primary, mut seen_weight) = (false, false);
    for option in parts {
        let option = option.trim();
        if option.eq_ignore_ascii_case("primary") && !seen_primary {
            spec.primary = true;
            seen_primary = true;
        } else if let Some(w) = option.strip_prefix("weight=").filter(|_| !seen_weight) {
            spec.weight = w.trim().parse().map_err(|_| format!("`{w}` is not a weight (0 to 4294967295)"))?;
            seen_weight = true;
        } else {
            return Err(format!(
                "`{option}` in `{text}`: expected `primary` or `weight=N`, each at most once"
            ));
        }
    }
    Ok(spec)
}

/// Why `rsdsmctl` failed.
#[derive(Debug)]
pub enum CliError {
    /// A control call failed.
    Control(ControlError),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Control(e) => e.fmt(f),
            Self::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ControlError> for CliError {
    fn from(e: ControlError) -> Self {
        Self::Control(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::Output(e)
    }
}

/// Opens the transport `cli` asks for.
///
/// # Errors
/// The transport's error; without `--socket` on a platform other than
/// Windows, [`TransportError::Unsupported`].
pub fn open_transport(cli: &Cli) -> Result<Box<dyn Transport>, TransportError> {
    if let Some(path) = &cli.socket {
        #[cfg(unix)]
        {
            return Ok(Box::new(crate::UnixSocket::connect(path)?));
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            return Err(TransportError::Unsupported(
                "--socket needs Unix domain sockets, which this build does not have",
            ));
        }
    }
    #[cfg(windows)]
    {
        Ok(Box::new(crate::DeviceIoControl::open()?))
    }
    #[cfg(not(windows))]
    {
        Err(TransportError::Unsupported(
            "no rsdsm driver on this platform: use --socket PATH to talk to a simulated DSM (rsdsm-sim serve)",
        ))
    }
}

/// Runs `rsdsmctl` as a program: parses the arguments, runs the command,
/// prints any error with its HRESULT, and returns the exit status.
#[must_use]
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = open_transport(&cli)
        .map_err(ControlError::from)
        .and_then(Dsm::connect)
        .map_err(CliError::from)
        .and_then(|dsm| run(&cli, &dsm, &mut std::io::stdout().lock()));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rsdsmctl: {e}");
            1
        }
    }
}

/// Runs the command of `cli` against `dsm`, writing to `out`.
///
/// # Errors
/// [`CliError`].
pub fn run<T: Transport>(cli: &Cli, dsm: &Dsm<T>, out: &mut dyn Write) -> Result<(), CliError> {
    match &cli.command {
        Command::Luns => luns(cli, dsm, out),
        Command::Paths { lun } => paths(cli, dsm, *lun, out),
        Command::Policy { action: PolicyCommand::Get { lun } } => policy_get(cli, dsm, *lun, out),
        Command::Policy { action: PolicyCommand::Set { lun, policy, paths, if_generation } } => {
            policy_set(cli, dsm, *lun, *policy, paths, *if_generation, out)
        }
        Command::Stats { lun, watch, count } => stats(cli, dsm, *lun, *watch, *count, out),
        Command::DefaultPolicy { action: DefaultCommand::Get } => {
            let policy = dsm.default_policy()?;
            if cli.json {
                print_json(out, &policy_json(policy))
            } else {
                writeln!(out, "default policy: {} ({})", policy.name(), policy.short_name())?;
                Ok(())
            }
        }
        Command::DefaultPolicy { action: DefaultCommand::Set { policy } } => {
            dsm.set_default_policy(*policy)?;
            if cli.json {
                print_json(out, &json!({ "default_policy": policy_json(*policy) }))
            } else {
                writeln!(out, "default policy set to {} ({})", policy.name(), policy.short_name())?;
                Ok(())
            }
        }
        Command::Policies { lun } => policies(cli, dsm, *lun, out),
        Command::Version => {
            let v = dsm.version()?;
            if cli.json {
                print_json(
                    out,
                    &json!({
                        "protocol": v.protocol,
                        "driver": format!("{}.{}.{}", v.driver_major, v.driver_minor, v.driver_patch),
                        "max_paths_per_lun": v.max_paths_per_lun,
                        "max_luns": v.max_luns,
                        "client": env!("CARGO_PKG_VERSION"),
                    }),
                )
            } else {
                writeln!(
                    out,
                    "driver {}.{}.{}, protocol {}, up to {} LUNs of {} paths (rsdsmctl {})",
                    v.driver_major,
                    v.driver_minor,
                    v.driver_patch,
                    v.protocol,
                    v.max_luns,
                    v.max_paths_per_lun,
                    env!("CARGO_PKG_VERSION")
                )?;
                Ok(())
            }
        }
    }
}

fn print_json(out: &mut dyn Write, value: &Value) -> Result<(), CliError> {
    writeln!(out, "{}", serde_json::to_string_pretty(value).unwrap_or_default())?;
    Ok(())
}

fn policy_json(policy: LoadBalancePolicy) -> Value {
    json!({
        "name": policy.name(),
        "short": policy.short_name(),
        "vds": policy.vds_number(),
        "vendor": policy.vendor_id(),
    })
}

fn path_text(id: PathId) -> String {
    format!("{}:{}", id.source_id, id.path_id)
}

fn path_json(id: PathId) -> Value {
    json!({ "source_id": id.source_id, "path_id": id.path_id })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    })
}

fn access_name(access: AccessState) -> &'static str {
    match access {
        AccessState::ActiveOptimized => "active/optimized",
        AccessState::ActiveNonOptimized => "active/non-optimized",
        AccessState::Standby => "standby",
        AccessState::Unavailable => "unavailable",
        AccessState::Transitioning => "transitioning",
    }
}

fn health_name(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::Failed => "failed",
        Health::Verifying => "verifying",
        Health::Removed => "removed",
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "-" }
}

/// Writes rows as a left-aligned table under `header`.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

fn luns<T: Transport>(cli: &Cli, dsm: &Dsm<T>, out: &mut dyn Write) -> Result<(), CliError> {
    let luns = dsm.luns()?;
    if cli.json {
        let list: Vec<Value> = luns
            .iter()
            .map(|l| {
                json!({
                    "lun": l.id.0,
                    "policy": policy_json(l.policy),
                    "paths": l.paths,
                    "usable_paths": l.usable_paths,
                    "identity": hex(&l.identity),
                })
            })
            .collect();
        return print_json(out, &Value::Array(list));
    }
    let rows: Vec<Vec<String>> = luns
        .iter()
        .map(|l| {
            vec![
                l.id.0.to_string(),
                l.policy.short_name().to_owned(),
                format!("{}/{}", l.usable_paths, l.paths),
                hex(&l.identity),
            ]
        })
        .collect();
    table(out, &["LUN", "POLICY", "USABLE/PATHS", "IDENTITY"], &rows)?;
    Ok(())
}

fn paths<T: Transport>(cli: &Cli, dsm: &Dsm<T>, lun: LunId, out: &mut dyn Write) -> Result<(), CliError> {
    let info = dsm.lun(lun).get_path_info()?;
    if cli.json {
        let list: Vec<Value> = info
            .iter()
            .map(|p| {
                json!({
                    "path": path_json(p.path_id),
                    "slot": p.slot.index(),
                    "access": access_name(p.access),
                    "health": health_name(p.health),
                    "primary": p.flags.contains(PathFlags::PRIMARY),
                    "preferred": p.flags.contains(PathFlags::PREFERRED),
                    "weight": p.weight,
                    "in_flight": p.in_flight,
                    "usable": p.usable,
                    "held_down_until": p.held_down_until,
                })
            })
            .collect();
        return print_json(out, &json!({ "lun": lun.0, "paths": list }));
    }
    let rows: Vec<Vec<String>> = info
        .iter()
        .map(|p| {
            vec![
                path_text(p.path_id),
                p.slot.index().to_string(),
                access_name(p.access).to_owned(),
                health_name(p.health).to_owned(),
                yes(p.flags.contains(PathFlags::PRIMARY)).to_owned(),
                yes(p.flags.contains(PathFlags::PREFERRED)).to_owned(),
                p.weight.to_string(),
                p.in_flight.to_string(),
                yes(p.usable).to_owned(),
            ]
        })
        .collect();
    table(
        out,
        &["PATH", "SLOT", "ACCESS", "HEALTH", "PRIMARY", "PREFERRED", "WEIGHT", "IN-FLIGHT", "USABLE"],
        &rows,
    )?;
    Ok(())
}

fn policy_get<T: Transport>(
    cli: &Cli,
    dsm: &Dsm<T>,
    lun: LunId,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let lb = dsm.lun(lun).get_load_balance_policy()?;
    if cli.json {
        let paths: Vec<Value> = lb
            .paths
            .iter()
            .map(|p| json!({ "path": path_json(p.path_id), "primary": p.primary, "weight": p.weight }))
            .collect();
        return print_json(
            out,
            &json!({
                "lun": lun.0,
                "policy": policy_json(lb.policy),
                "generation": lb.generation,
                "preferred": lb.preferred.map(path_json),
                "paths": paths,
            }),
        );
    }
    writeln!(
        out,
        "LUN {}: {} ({}), generation {}",
        lun.0,
        lb.policy.name(),
        lb.policy.short_name(),
        lb.generation
    )?;
    if let Some(p) = lb.preferred {
        writeln!(out, "preferred path: {}", path_text(p))?;
    }
    let rows: Vec<Vec<String>> = lb
        .paths
        .iter()
        .map(|p| vec![path_text(p.path_id), yes(p.primary).to_owned(), p.weight.to_string()])
        .collect();
    table(out, &["PATH", "PRIMARY", "WEIGHT"], &rows)?;
    Ok(())
}

fn policy_set<T: Transport>(
    cli: &Cli,
    dsm: &Dsm<T>,
    lun: LunId,
    policy: RawPolicy,
    paths: &[PathPolicy],
    if_generation: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let handle = dsm.lun(lun);
    let current;
    let paths = if paths.is_empty() {
        current = handle.get_load_balance_policy()?.paths;
        &current[..]
    } else {
        paths
    };
    let generation = match if_generation {
        Some(g) => handle.set_load_balance_policy_if(policy, paths, g)?,
        None => handle.set_load_balance_policy(policy, paths)?,
    };
    // The DSM accepted it, so it is a policy this build knows.
    let policy = policy.policy().unwrap_or(LoadBalancePolicy::RoundRobin);
    if cli.json {
        print_json(out, &json!({ "lun": lun.0, "policy": policy_json(policy), "generation": generation }))
    } else {
        writeln!(
            out,
            "LUN {}: policy set to {} ({}), generation {}",
            lun.0,
            policy.name(),
            policy.short_name(),
            generation
        )?;
        Ok(())
    }
}

fn stats_json(lun: LunId, entries: &[PathStatisticsEntry]) -> Value {
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let s = &e.statistics;
            json!({
                "path": path_json(e.path_id),
                "reads": s.reads,
                "writes": s.writes,
                "bytes_read": s.bytes_read,
                "bytes_written": s.bytes_written,
                "errors": s.errors,
                "in_flight": s.in_flight,
                "in_flight_bytes": s.in_flight_bytes,
                "latency_ewma": s.latency_ewma,
                "histogram": s.histogram.to_vec(),
            })
        })
        .collect();
    json!({ "lun": lun.0, "paths": list })
}

fn stats<T: Transport>(
    cli: &Cli,
    dsm: &Dsm<T>,
    lun: LunId,
    watch: Option<u64>,
    count: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let handle = dsm.lun(lun);
    let mut previous: Option<Vec<PathStatisticsEntry>> = None;
    let mut sample = 0u64;
    loop {
        let entries = handle.statistics()?;
        if cli.json {
            print_json(out, &stats_json(lun, &entries))?;
        } else {
            let secs = watch.unwrap_or(1).max(1);
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let s = &e.statistics;
                    let before = previous
                        .as_ref()
                        .and_then(|p| p.iter().find(|q| q.path_id == e.path_id))
                        .map(|q| q.statistics);
                    let rate = before.map_or_else(
                        || "-".to_owned(),
                        |b| (s.completed().saturating_sub(b.completed()) / secs).to_string(),
                    );
                    vec![
                        path_text(e.path_id),
                        s.reads.to_string(),
                        s.writes.to_string(),
                        s.bytes_read.to_string(),
                        s.bytes_written.to_string(),
                        s.errors.to_string(),
                        s.in_flight.to_string(),
                        s.latency_ewma.to_string(),
                        rate,
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "PATH",
                    "READS",
                    "WRITES",
                    "BYTES-READ",
                    "BYTES-WRITTEN",
                    "ERRORS",
                    "IN-FLIGHT",
                    "LATENCY",
                    "IO/S",
                ],
                &rows,
            )?;
        }
        out.flush()?;
        sample += 1;
        let Some(secs) = watch else { return Ok(()) };
        if count.is_some_and(|n| sample >= n) {
            return Ok(());
        }
        if !cli.json {
            writeln!(out)?;
        }
        previous = Some(entries);
        std::thread::sleep(Duration::from_secs(secs.max(1)));
    }
}

fn policies<T: Transport>(
    cli: &Cli,
    dsm: &Dsm<T>,
    lun: Option<LunId>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let list = match lun {
        Some(lun) => dsm.lun(lun).get_supported_policies()?.list(),
        None => LoadBalancePolicy::ALL.to_vec(),
    };
    if cli.json {
        return print_json(out, &Value::Array(list.into_iter().map(policy_json).collect()));
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let number = if p.vendor_id() == 0 {
                p.vds_number().to_string()
            } else {
                format!("{}:{}", p.vds_number(), p.vendor_id())
            };
            vec![number, p.short_name().to_owned(), p.name().to_owned()]
        })
        .collect();
    table(out, &["VDS", "SHORT", "NAME"], &rows)?;
    Ok(())
}
