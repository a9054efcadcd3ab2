//! `rsdsm-sim`: the fabric simulator and policy lab.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rsdsm_engine::LoadBalancePolicy;
use rsdsm_sim::{DEFAULT_SCENARIO, Scenario, compare, report, svg};

/// Where the default run writes its SVG report.
const DEFAULT_SVG: &str = "rsdsm-sim-report.svg";

#[derive(Debug, Parser)]
#[command(
    name = "rsdsm-sim",
    version,
    about = "rsdsm fabric simulator: compares load-balance policies on simulated multipath fabrics, running the real engine",
    long_about = "Without a command, runs the embedded default scenario (four paths, one 4x slower; one path fails and \
                  recovers), prints a table comparing every policy and writes rsdsm-sim-report.svg."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario file under one or more policies.
    Run {
        /// Scenario file (TOML; see sim/scenarios/). Default: the embedded scenario.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Policy to run (VDS number, short name such as LQD, or long name); repeatable. Default: the scenario's list, else all.
        #[arg(long = "policy", value_name = "NAME")]
        policies: Vec<LoadBalancePolicy>,
        /// Print one JSON object per policy instead of the table.
        #[arg(long)]
        json: bool,
        /// Write the SVG report here.
        #[arg(long, value_name = "OUT.svg")]
        svg: Option<PathBuf>,
        /// Random seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Host a live simulated DSM that answers the IOCTL protocol on a Unix socket (stop with Ctrl-C).
    Serve {
        /// Socket path to listen on (a stale socket file is replaced).
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        /// Scenario giving the LUNs, paths, workload and timeline. Default: the embedded scenario.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Policy every LUN starts with. Default: the scenario's first, else round robin.
        #[arg(long = "policy", value_name = "NAME")]
        policy: Option<LoadBalancePolicy>,
        /// Random seed (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Directory keeping each LUN's policy record across restarts
        /// (crash-safe files; the registry's role on Windows). Default: memory.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => run(None, &[], false, Some(PathBuf::from(DEFAULT_SVG)), None),
        Some(Command::Run { scenario, policies, json, svg, seed }) => {
            run(scenario, &policies, json, svg, seed)
        }
        Some(Command::Serve { socket, scenario, policy, seed, state }) => {
            serve(&socket, scenario, policy, seed, state.as_deref())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rsdsm-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: Option<&PathBuf>) -> Result<(Scenario, String), String> {
    let (text, origin) = match file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_SCENARIO.to_string(), "default scenario".to_string()),
    };
    let scenario = Scenario::parse(&text).map_err(|e| format!("{origin}: {e}"))?;
    Ok((scenario, origin))
}

#[cfg(unix)]
fn serve(
    socket: &std::path::Path,
    file: Option<PathBuf>,
    policy: Option<LoadBalancePolicy>,
    seed: Option<u64>,
    state: Option<&std::path::Path>,
) -> Result<(), String> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let (scenario, _) = load(file.as_ref())?;
    let policy =
        policy.or_else(|| scenario.policies.first().map(|p| p.0)).unwrap_or(LoadBalancePolicy::RoundRobin);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| format!("signal handler: {e}"))?;
    }
    eprintln!("rsdsm-sim: serving {:?} ({policy}) on {}", scenario.name, socket.display());
    rsdsm_sim::serve::serve(&scenario, policy, seed.unwrap_or(scenario.seed), socket, state, &stop)?;
    eprintln!("rsdsm-sim: stopped");
    Ok(())
}

#[cfg(not(unix))]
fn serve(
    _: &std::path::Path,
    _: Option<PathBuf>,
    _: Option<LoadBalancePolicy>,
    _: Option<u64>,
    _: Option<&std::path::Path>,
) -> Result<(), String> {
    Err("serve needs Unix sockets; on Windows use the real driver's control device".into())
}

fn run(
    file: Option<PathBuf>,
    policies: &[LoadBalancePolicy],
    json: bool,
    svg_out: Option<PathBuf>,
    seed: Option<u64>,
) -> Result<(), String> {
    let (scenario, origin) = load(file.as_ref())?;
    let policies = if policies.is_empty() { scenario.policies() } else { policies.to_vec() };
    let seed = seed.unwrap_or(scenario.seed);
    let results = compare(&scenario, &policies, seed).map_err(|(policy, e)| {
        format!("{origin}: policy {policy}: the engine refused the scenario's path settings: {e}")
    })?;
    let text = if json {
        report::json_lines(&results).map_err(|e| e.to_string())?
    } else {
        report::table(&scenario, &results)
    };
    write_stdout(&text)?;
    if let Some(out) = svg_out {
        let document = svg::render(&scenario.name, &results).map_err(|e| format!("SVG report: {e}"))?;
        std::fs::write(&out, document).map_err(|e| format!("{}: {e}", out.display()))?;
        if !json {
            write_stdout(&format!("SVG report: {}\n", out.display()))?;
        }
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}
