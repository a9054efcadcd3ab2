//! `rsdsmctl` against a running `rsdsm-sim serve`: the CLI's request bytes
//! go through the socket to the driver's control handler and DSM core.
//! Every error row of SetLoadBalancePolicy is produced for real, with its
//! exact HRESULT on stderr and exit status 1.

use std::collections::BTreeMap;
use std::time::Duration;

use rsdsm_e2e::{Ctl, Server, rsdsmctl, scenario_file};
use rsdsm_engine::LoadBalancePolicy;
use serde_json::Value;

fn json(ctl: &Ctl) -> Value {
    assert_eq!(ctl.code, 0, "rsdsmctl failed: {}", ctl.stderr);
    serde_json::from_str(&ctl.stdout).unwrap_or_else(|e| panic!("{e}: {}", ctl.stdout))
}

fn only_lun(server: &Server) -> String {
    let luns = json(&rsdsmctl(&server.socket, &["--json", "luns"]));
    assert_eq!(luns.as_array().unwrap().len(), 1, "{luns}");
    luns[0]["lun"].as_u64().unwrap().to_string()
}

/// Completed I/Os per path, from `stats --json`.
fn completed(server: &Server, lun: &str) -> BTreeMap<String, u64> {
    let stats = json(&rsdsmctl(&server.socket, &["--json", "stats", lun]));
    stats["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("no paths in {stats}"))
        .iter()
        .map(|p| {
            let done = ["reads", "writes", "errors"].iter().map(|k| p[k].as_u64().unwrap()).sum();
            let id = &p["path"];
            (format!("{}:{}", id["source_id"], id["path_id"]), done)
        })
        .collect()
}

fn assert_hresult(ctl: &Ctl, code: &str, name: &str) {
    assert_eq!(ctl.code, 1, "exit status for {name}: {ctl:?}");
    assert!(ctl.stderr.contains(code) && ctl.stderr.contains(name), "expected {code} {name}: {}", ctl.stderr);
}

#[test]
fn list_set_every_policy_read_it_back_and_statistics_follow() {
    let server = Server::start("ctl-policies", &[]);
    let lun = only_lun(&server);
    // The default scenario fails path 1:1 at 800 ms; use 1:3 as the primary.
    let foo = ["--path", "1:1", "--path", "1:2", "--path", "1:3:primary", "--path", "1:4"];
    for policy in LoadBalancePolicy::ALL {
        let mut args = vec!["--json", "policy", "set", lun.as_str(), policy.short_name()];
        if policy == LoadBalancePolicy::FailoverOnly {
            args.extend(foo);
        }
        // Shares need weights of at least 1 (failover only's set left 0).
        if policy.weight_range().0 > 0 {
            args.extend([
                "--path",
                "1:1:weight=3",
                "--path",
                "1:2:weight=1",
                "--path",
                "1:3:weight=1",
                "--path",
                "1:4:weight=1",
            ]);
        }
        let set = json(&rsdsmctl(&server.socket, &args));
        assert_eq!(set["policy"]["name"], policy.name());
        let got = json(&rsdsmctl(&server.socket, &["--json", "policy", "get", &lun]));
        assert_eq!(got["policy"]["name"], policy.name(), "read back {policy}");
        assert_eq!(got["generation"], set["generation"]);
    }
    // Numbers and long names work too.
    json(&rsdsmctl(&server.socket, &["--json", "policy", "set", &lun, "2"]));
    json(&rsdsmctl(&server.socket, &["--json", "policy", "set", &lun, "least-queue-depth"]));

    // Failover only on 1:3: the statistics show all new I/O there.
    let mut args = vec!["policy", "set", lun.as_str(), "FOO"];
    args.extend(foo);
    let ctl = rsdsmctl(&server.socket, &args);
    assert_eq!(ctl.code, 0, "{ctl:?}");
    std::thread::sleep(Duration::from_millis(100));
    let before = completed(&server, &lun);
    std::thread::sleep(Duration::from_millis(300));
    let after = completed(&server, &lun);
    let delta: BTreeMap<_, _> = after.iter().map(|(p, n)| (p.clone(), n - before[p])).collect();
    let total: u64 = delta.values().sum();
    assert!(total > 0, "I/O flows");
    assert_eq!(delta["1:3"], total, "failover only: everything on 1:3: {delta:?}");

    // Round robin again: the I/O spreads over the paths that work.
    json(&rsdsmctl(&server.socket, &["--json", "policy", "set", &lun, "RR"]));
    std::thread::sleep(Duration::from_millis(100));
    let before = completed(&server, &lun);
    std::thread::sleep(Duration::from_millis(300));
    let after = completed(&server, &lun);
    let busy = after.iter().filter(|(p, n)| **n > before[*p]).count();
    assert!(busy >= 3, "round robin spreads the I/O: {before:?} -> {after:?}");
}

#[test]
fn invalid_arguments_are_e_invalidarg_and_change_nothing() {
    let server = Server::start("ctl-invalid", &[]);
    let lun = only_lun(&server);
    let before = json(&rsdsmctl(&server.socket, &["--json", "policy", "get", &lun]));
    let all = ["--path", "1:1", "--path", "1:2", "--path", "1:3", "--path", "1:4"];
    let cases: Vec<Vec<&str>> = vec![
        // unknown path id
        vec!["policy", "set", &lun, "RR", "--path", "1:1", "--path", "1:2", "--path", "1:3", "--path", "9:9"],
        // duplicate path id
        vec!["policy", "set", &lun, "RR", "--path", "1:1", "--path", "1:1", "--path", "1:3", "--path", "1:4"],
        // count mismatch
        vec!["policy", "set", &lun, "RR", "--path", "1:1"],
        // bad policy value (sent as is; the DSM rejects it)
        vec!["policy", "set", &lun, "8"],
        vec!["policy", "set", &lun, "7:9"],
        // failover only without a primary
        [vec!["policy", "set", &lun, "FOO"], all.to_vec()].concat(),
        // weight out of range for weighted round robin (weights start at 1)
        vec![
            "policy",
            "set",
            &lun,
            "WRR",
            "--path",
            "1:1:weight=0",
            "--path",
            "1:2",
            "--path",
            "1:3",
            "--path",
            "1:4",
        ],
    ];
    for args in cases {
        let ctl = rsdsmctl(&server.socket, &args);
        assert_hresult(&ctl, "0x80070057", "E_INVALIDARG");
    }
    let after = json(&rsdsmctl(&server.socket, &["--json", "policy", "get", &lun]));
    assert_eq!(before, after, "rejected sets changed nothing");
    // An unknown policy NAME is a usage error of the CLI itself.
    assert_eq!(rsdsmctl(&server.socket, &["policy", "set", &lun, "fastest"]).code, 2);
    // A LUN that never existed.
    assert_hresult(
        &rsdsmctl(&server.socket, &["policy", "get", "12345"]),
        "0x8004240B",
        "VDS_E_OBJECT_DELETED",
    );
}

#[test]
fn a_lun_whose_paths_all_failed_refuses_sets() {
    let file = scenario_file(
        "all-failed",
        r#"
duration_ms = 1000
[dsm]
error_detect_us = 500
[workload]
queue_depth = 4
[[lun]]
name = "l"
[[lun.path]]
id = "1:1"
service = { kind = "fixed", mean_us = 100 }
[[lun.path]]
id = "1:2"
service = { kind = "fixed", mean_us = 100 }
[[event]]
at_ms = 100
action = "fail"
path = "1:1"
[[event]]
at_ms = 100
action = "fail"
path = "1:2"
"#,
    );
    let server = Server::start("ctl-all-failed", &["--scenario", file.to_str().unwrap()]);
    let lun = only_lun(&server);
    std::thread::sleep(Duration::from_millis(600));
    let luns = json(&rsdsmctl(&server.socket, &["--json", "luns"]));
    assert_eq!(luns[0]["usable_paths"], 0, "both paths failed: {luns}");
    assert_hresult(
        &rsdsmctl(&server.socket, &["policy", "set", &lun, "LQD"]),
        "0x80042431",
        "VDS_E_OBJECT_STATUS_FAILED",
    );
}

/// A scenario whose policy saves take `delay_ms` (a slow registry flush),
/// optionally removing the LUN at `remove_at_ms`.
fn slow_store(delay_ms: u32, remove_at_ms: Option<u32>) -> String {
    let mut text = format!(
        r#"
duration_ms = 1000
[dsm]
persist_delay_ms = {delay_ms}
[workload]
queue_depth = 2
[[lun]]
name = "l"
[[lun.path]]
id = "1:1"
service = {{ kind = "fixed", mean_us = 100 }}
[[lun.path]]
id = "1:2"
service = {{ kind = "fixed", mean_us = 100 }}
"#
    );
    if let Some(at) = remove_at_ms {
        text.push_str(&format!("[[event]]\nat_ms = {at}\naction = \"remove-lun\"\n"));
    }
    text
}

#[test]
fn a_lun_removed_while_its_set_runs_gives_object_deleted() {
    // The set starts at once and takes 3 s to persist; the LUN is removed
    // 1.5 s into the run, while the set is in progress.
    let file = scenario_file("removed", &slow_store(3000, Some(1500)));
    let server = Server::start("ctl-removed", &["--scenario", file.to_str().unwrap()]);
    let lun = only_lun(&server);
    let ctl = rsdsmctl(&server.socket, &["policy", "set", &lun, "LQD"]);
    assert_hresult(&ctl, "0x8004240B", "VDS_E_OBJECT_DELETED");
    let luns = json(&rsdsmctl(&server.socket, &["--json", "luns"]));
    assert!(luns.as_array().unwrap().is_empty() || luns[0]["removed"] == true, "{luns}");
}

#[test]
fn two_concurrent_sets_one_wins_the_other_is_told_another_call_is_in_progress() {
    let file = scenario_file("concurrent", &slow_store(1500, None));
    let server = Server::start("ctl-concurrent", &["--scenario", file.to_str().unwrap()]);
    let lun = only_lun(&server);
    let socket = server.socket.clone();
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| rsdsmctl(&socket, &["policy", "set", &lun, "LQD"]));
        std::thread::sleep(Duration::from_millis(500));
        let second = s.spawn(|| rsdsmctl(&socket, &["policy", "set", &lun, "WP"]));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first.code, 0, "the first set wins: {first:?}");
    assert_hresult(&second, "0x80042404", "VDS_E_ANOTHER_CALL_IN_PROGRESS");
    let got = json(&rsdsmctl(&server.socket, &["--json", "policy", "get", &lun]));
    assert_eq!(got["policy"]["name"], "least-queue-depth", "the table is the winner's");
}

#[test]
fn the_c_abi_sets_a_policy_with_vds_structures() {
    let server = Server::start("ctl-cabi", &[]);
    let lun = only_lun(&server);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let lib_dir = rsdsm_e2e::binary("rsdsmctl").parent().unwrap().to_path_buf();
    let exe = server.socket.with_file_name("c_abi");
    let cc = std::process::Command::new("cc")
        .arg(root.join("tests/e2e/c_abi.c"))
        .arg("-I")
        .arg(root.join("control/include"))
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lrsdsm_control")
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(cc.success(), "the C caller compiles against include/rsdsm.h");
    let out = std::process::Command::new(&exe)
        .arg(&lun)
        .env("LD_LIBRARY_PATH", &lib_dir)
        .env("RSDSM_SOCKET", &server.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // S_OK, E_INVALIDARG (unknown path id), E_POINTER (null paths).
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "00000000 80070057 80004003");
    let got = json(&rsdsmctl(&server.socket, &["--json", "policy", "get", &lun]));
    assert_eq!(got["policy"]["name"], "failover-only");
    let primaries: Vec<_> = got["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["primary"] == true)
        .map(|p| p["path"].clone())
        .collect();
    assert_eq!(primaries.len(), 1, "{got}");
}
