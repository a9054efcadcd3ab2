//! `rsdsmctl`: argument parsing (`--path` specs, policies, LUN handles) and
//! commands run against an in-process DSM.

use std::sync::Arc;

use clap::Parser;
use rsdsm::dsm::Dsm as Driver;
use rsdsm::identity::{KeyKind, LunKey, PortIds};
use rsdsm_control::cli::{
    Cli, CliError, Command, DefaultCommand, PolicyCommand, parse_lun, parse_path_spec, run,
};
use rsdsm_control::{
    ControlError, Dsm, HResult, InProcess, LoadBalancePolicy, LunId, PathId, PathPolicy, VendorPolicy,
};
use rsdsm_engine::wire::RawPolicy;
use rsdsm_engine::{AccessState, LunSettings};

#[test]
fn path_specs() {
    let p = |s, p, primary, weight| PathPolicy { path_id: PathId::new(s, p), primary, weight };
    assert_eq!(parse_path_spec("1:2"), Ok(p(1, 2, false, 0)));
    assert_eq!(parse_path_spec("1:2:primary"), Ok(p(1, 2, true, 0)));
    assert_eq!(parse_path_spec("1:2:PRIMARY:weight=7"), Ok(p(1, 2, true, 7)));
    assert_eq!(parse_path_spec("0x10:0xFF:weight=3:primary"), Ok(p(16, 255, true, 3)));
    assert_eq!(parse_path_spec("18446744073709551615:0"), Ok(p(u64::MAX, 0, false, 0)));
    assert_eq!(parse_path_spec("1:2:weight=4294967295"), Ok(p(1, 2, false, u32::MAX)));
    for bad in [
        "",
        "1",
        "1:",
        ":2",
        "x:2",
        "1:2:",
        "1:2:prim",
        "1:2:weight",
        "1:2:weight=",
        "1:2:weight=-1",
        "1:2:weight=4294967296",
        "1:2:primary:primary",
        "1:2:weight=1:weight=2",
        "0x:1",
        "1:2:3",
        "18446744073709551616:1",
    ] {
        assert!(parse_path_spec(bad).is_err(), "{bad:?} must be rejected");
    }
    assert_eq!(parse_lun("65537"), Ok(LunId(65537)));
    assert_eq!(parse_lun("0x10001"), Ok(LunId(0x10001)));
    assert!(parse_lun("lun1").is_err());
}

#[test]
fn command_lines() {
    let cli = Cli::try_parse_from([
        "rsdsmctl",
        "--socket",
        "/tmp/s",
        "policy",
        "set",
        "0x10000",
        "lqd",
        "--path",
        "1:1:primary",
        "--path",
        "1:2:weight=3",
        "--if-generation",
        "9",
    ])
    .unwrap();
    assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/tmp/s")));
    match cli.command {
        Command::Policy { action: PolicyCommand::Set { lun, policy, paths, if_generation } } => {
            assert_eq!(lun, LunId(0x10000));
            assert_eq!(policy, LoadBalancePolicy::LeastQueueDepth.into());
            assert_eq!(paths.len(), 2);
            assert!(paths[0].primary && paths[1].weight == 3);
            assert_eq!(if_generation, Some(9));
        }
        other => panic!("{other:?}"),
    }
    // Policies by number, short and long name; --json anywhere.
    for (text, expected) in [
        ("4", LoadBalancePolicy::LeastQueueDepth),
        ("FOO", LoadBalancePolicy::FailoverOnly),
        ("rrws", LoadBalancePolicy::RoundRobinWithSubset),
        ("weighted-paths", LoadBalancePolicy::WeightedPaths),
        ("7:2", LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime)),
        ("AL", LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency)),
    ] {
        let cli = Cli::try_parse_from(["rsdsmctl", "default-policy", "set", text, "--json"]).unwrap();
        assert!(cli.json);
        match cli.command {
            Command::DefaultPolicy { action: DefaultCommand::Set { policy } } => assert_eq!(policy, expected),
            other => panic!("{other:?}"),
        }
    }
    // --watch with and without a value.
    let cli = Cli::try_parse_from(["rsdsmctl", "stats", "5", "--watch"]).unwrap();
    assert!(matches!(cli.command, Command::Stats { watch: Some(1), count: None, .. }));
    let cli = Cli::try_parse_from(["rsdsmctl", "stats", "5", "--watch", "3", "--count", "2"]).unwrap();
    assert!(matches!(cli.command, Command::Stats { watch: Some(3), count: Some(2), .. }));
    // An unknown policy NUMBER goes to the DSM, which answers E_INVALIDARG
    // exactly as SetLoadBalancePolicy does; an unknown name is a usage error.
    let cli = Cli::try_parse_from(["rsdsmctl", "policy", "set", "1", "8"]).unwrap();
    let Command::Policy { action: PolicyCommand::Set { policy, .. } } = cli.command else { panic!() };
    assert_eq!(policy, RawPolicy { number: 8, vendor: 0 });
    // Usage errors.
    for bad in [
        vec!["rsdsmctl", "policy", "set", "1", "fastest"],
        vec!["rsdsmctl", "policy", "set", "1", "RR", "--path", "1"],
        vec!["rsdsmctl", "paths"],
        vec!["rsdsmctl", "stats", "1", "--count", "2"],
        vec!["rsdsmctl", "frobnicate"],
    ] {
        assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
    }
}

fn key(n: u8) -> LunKey {
    LunKey::from_parts(KeyKind::Naa, &[&[0x60, 0xAB, n]])
}

fn dsm() -> (Dsm<InProcess<4, 8>>, LunId) {
    let driver =
        Arc::new(Driver::<4, 8>::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(1_000_000)));
    let (lun, _) = driver
        .add_path(&key(1), PathId::new(3, 1), PortIds::default(), AccessState::ActiveOptimized)
        .unwrap();
    driver.add_path(&key(1), PathId::new(3, 2), PortIds::default(), AccessState::Standby).unwrap();
    (Dsm::connect(InProcess::new(driver)).unwrap(), lun)
}

fn rsdsmctl(dsm: &Dsm<InProcess<4, 8>>, args: &[&str]) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("rsdsmctl").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    run(&cli, dsm, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn commands_print_tables_and_json() {
    let (dsm, lun) = dsm();
    let id = lun.0.to_string();
    let text = rsdsmctl(&dsm, &["luns"]).unwrap();
    assert!(text.starts_with("LUN"), "{text}");
    assert!(text.contains(&id) && text.contains("RR") && text.contains("2/2"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&rsdsmctl(&dsm, &["luns", "--json"]).unwrap()).unwrap();
    assert_eq!(json[0]["lun"], lun.0);
    assert_eq!(json[0]["policy"]["short"], "RR");
    assert_eq!(json[0]["paths"], 2);

    let text = rsdsmctl(&dsm, &["paths", &id]).unwrap();
    assert!(text.contains("3:1") && text.contains("active/optimized") && text.contains("standby"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&rsdsmctl(&dsm, &["--json", "paths", &id]).unwrap()).unwrap();
    assert_eq!(json["paths"][1]["access"], "standby");

    // Without --path: the current paths and settings (both primary), so
    // failover only is refused and round robin with subset applies.
    let err = rsdsmctl(&dsm, &["policy", "set", &id, "FOO"]).unwrap_err();
    match &err {
        CliError::Control(ControlError::Dsm(code)) => assert_eq!(*code, HResult::E_INVALIDARG),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "0x80070057 E_INVALIDARG: an argument is invalid");
    let text = rsdsmctl(&dsm, &["policy", "set", &id, "RRWS"]).unwrap();
    assert!(text.contains("round-robin-with-subset"), "{text}");
    let text =
        rsdsmctl(&dsm, &["policy", "set", &id, "1", "--path", "3:1:primary", "--path", "3:2"]).unwrap();
    assert!(text.contains("failover-only"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&rsdsmctl(&dsm, &["policy", "get", &id, "--json"]).unwrap()).unwrap();
    assert_eq!(json["policy"]["vds"], 1);
    assert_eq!(json["paths"][0]["primary"], true);
    assert_eq!(json["paths"][1]["primary"], false);
    let generation = json["generation"].as_u64().unwrap();
    // A stale --if-generation.
    let err = rsdsmctl(&dsm, &["policy", "set", &id, "RR", "--if-generation", &(generation - 1).to_string()])
        .unwrap_err();
    assert!(err.to_string().starts_with("0x8004241F VDS_E_PROVIDER_CACHE_CORRUPT"), "{err}");

    // A removed or unknown LUN.
    let err = rsdsmctl(&dsm, &["paths", "12345"]).unwrap_err();
    assert!(err.to_string().starts_with("0x8004240B VDS_E_OBJECT_DELETED: "), "{err}");

    let text = rsdsmctl(&dsm, &["stats", &id]).unwrap();
    assert!(text.starts_with("PATH") && text.contains("3:2"), "{text}");
    let text = rsdsmctl(&dsm, &["stats", &id, "--watch", "1", "--count", "2"]).unwrap();
    assert_eq!(text.matches("PATH").count(), 2, "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&rsdsmctl(&dsm, &["stats", &id, "--json"]).unwrap()).unwrap();
    assert_eq!(json["paths"][0]["histogram"].as_array().unwrap().len(), 32);

    assert!(rsdsmctl(&dsm, &["default-policy", "get"]).unwrap().contains("round-robin"));
    rsdsmctl(&dsm, &["default-policy", "set", "least-blocks"]).unwrap();
    assert!(rsdsmctl(&dsm, &["default-policy", "get"]).unwrap().contains("least-blocks"));

    let text = rsdsmctl(&dsm, &["policies"]).unwrap();
    assert!(text.contains("7:3") && text.contains("AL") && text.contains("weighted-paths"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&rsdsmctl(&dsm, &["policies", &id, "--json"]).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 9);

    assert!(rsdsmctl(&dsm, &["version"]).unwrap().contains("protocol 1"));
}

#[test]
fn the_binary_reports_hresults_and_exit_status() {
    let exe = env!("CARGO_BIN_EXE_rsdsmctl");
    let out = std::process::Command::new(exe).args(["luns"]).output().unwrap();
    if cfg!(windows) {
        return; // Without the driver installed the outcome depends on the machine.
    }
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("rsdsmctl: 0x80004001 E_NOTIMPL: "), "{stderr}");
    assert!(stderr.contains("--socket"), "{stderr}");
    let out = std::process::Command::new(exe).args(["policy", "set", "1", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
}

#[cfg(unix)]
#[test]
fn the_binary_over_a_socket() {
    use std::os::unix::net::UnixListener;

    let exe = env!("CARGO_BIN_EXE_rsdsmctl");
    let dir = std::env::temp_dir().join(format!("rsdsmctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dsm.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (dsm, lun) = dsm();
    let server = Arc::new(InProcess::new(dsm.transport().dsm().clone()));
    let serving = server.clone();
    let runs = 3;
    let thread = std::thread::spawn(move || {
        for _ in 0..runs {
            let (mut stream, _) = listener.accept().unwrap();
            serving.serve(&mut stream).unwrap();
        }
    });
    let sock = path.to_str().unwrap();
    let id = lun.0.to_string();
    let ok = std::process::Command::new(exe)
        .args(["--socket", sock, "policy", "set", &id, "LQD"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("least-queue-depth"));
    assert_eq!(server.dsm().lun(lun).unwrap().policy(), LoadBalancePolicy::LeastQueueDepth);
    let refused = std::process::Command::new(exe)
        .args(["--socket", sock, "policy", "set", &id, "RR", "--path", "3:1"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim_end(), "rsdsmctl: 0x80070057 E_INVALIDARG: an argument is invalid");
    let json = std::process::Command::new(exe).args(["--socket", sock, "--json", "luns"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value[0]["policy"]["short"], "LQD");
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
