//! `rsdsm-sim serve` end to end: encoded requests over the socket, the
//! policy read back and changed, the live statistics following.

use std::collections::BTreeMap;
use std::time::Duration;

use rsdsm_e2e::{Server, call, call_raw};
use rsdsm_engine::wire::{
    IOCTL_RSDSM_GET_VERSION, LunId, PathPolicies, RawPolicy, Reply, Request, STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_DEVICE_REQUEST,
};
use rsdsm_engine::{HResult, LoadBalancePolicy, PathId, PathPolicy};

fn completed_per_path(stream: &mut std::os::unix::net::UnixStream, lun: LunId) -> BTreeMap<PathId, u64> {
    let request = Request::GetStatistics { lun };
    let bytes = call(stream, &request);
    let Ok(Ok(Reply::GetStatistics(list))) = Reply::decode(request.opcode(), &bytes) else {
        panic!("bad statistics reply");
    };
    list.iter().map(|e| (e.path_id, e.statistics.completed())).collect()
}

fn delta(after: &BTreeMap<PathId, u64>, before: &BTreeMap<PathId, u64>) -> BTreeMap<PathId, u64> {
    after.iter().map(|(p, n)| (*p, n - before.get(p).copied().unwrap_or(0))).collect()
}

#[test]
fn serve_answers_ioctls_and_its_statistics_follow_a_policy_change() {
    let mut server = Server::start("policy", &["--policy", "RR"]);
    let mut stream = server.connect();

    // The LUN of the default scenario, under round robin.
    let bytes = call(&mut stream, &Request::ListLuns);
    let Ok(Ok(Reply::ListLuns(luns))) = Reply::decode(Request::ListLuns.opcode(), &bytes) else {
        panic!("bad ListLuns reply");
    };
    assert_eq!(luns.len(), 1);
    let lun = luns.get(0).unwrap();
    assert_eq!(lun.paths, 4);
    assert_eq!(lun.policy, RawPolicy::from(LoadBalancePolicy::RoundRobin));
    let lun = lun.lun;

    let get = Request::GetPolicy { lun };
    let bytes = call(&mut stream, &get);
    let Ok(Ok(Reply::GetPolicy { policy, paths, .. })) = Reply::decode(get.opcode(), &bytes) else {
        panic!("bad GetPolicy reply");
    };
    assert_eq!(policy.policy(), Ok(LoadBalancePolicy::RoundRobin));
    let ids: Vec<PathId> = paths.iter().map(|p| p.path_id).collect();
    assert_eq!(ids.len(), 4);

    // I/O runs in the background: under round robin every healthy path works.
    let first = completed_per_path(&mut stream, lun);
    std::thread::sleep(Duration::from_millis(300));
    let second = completed_per_path(&mut stream, lun);
    let rr = delta(&second, &first);
    let busy = rr.values().filter(|n| **n > 0).count();
    assert!(busy >= 3, "round robin used only {busy} paths: {rr:?}");

    // Failover only with 1:2 as the one primary: all new I/O goes there.
    let primary = PathId::new(1, 2);
    let settings: Vec<PathPolicy> =
        ids.iter().map(|id| PathPolicy { path_id: *id, primary: *id == primary, weight: 0 }).collect();
    let set = Request::SetPolicy {
        lun,
        policy: RawPolicy::from(LoadBalancePolicy::FailoverOnly),
        expected_generation: None,
        paths: PathPolicies::Typed(&settings),
    };
    let bytes = call(&mut stream, &set);
    assert!(matches!(Reply::decode(set.opcode(), &bytes), Ok(Ok(Reply::SetPolicy { .. }))), "set failed");
    let bytes = call(&mut stream, &get);
    let Ok(Ok(Reply::GetPolicy { policy, .. })) = Reply::decode(get.opcode(), &bytes) else { panic!() };
    assert_eq!(policy.policy(), Ok(LoadBalancePolicy::FailoverOnly));

    std::thread::sleep(Duration::from_millis(50)); // I/O started before the set drains
    let third = completed_per_path(&mut stream, lun);
    std::thread::sleep(Duration::from_millis(300));
    let fourth = completed_per_path(&mut stream, lun);
    let foo = delta(&fourth, &third);
    let total: u64 = foo.values().sum();
    assert!(total > 0, "I/O keeps flowing");
    assert_eq!(foo[&primary], total, "failover only sends everything to 1:2: {foo:?}");

    // A bad set gets its exact HRESULT back, and changes nothing.
    let bad = Request::SetPolicy {
        lun,
        policy: RawPolicy { number: 9, vendor: 0 },
        expected_generation: None,
        paths: PathPolicies::Typed(&settings),
    };
    let bytes = call(&mut stream, &bad);
    assert_eq!(Reply::decode(bad.opcode(), &bytes), Ok(Err(HResult::E_INVALIDARG)));

    // Calls the driver itself would fail.
    let (status, body) = call_raw(&mut stream, 0x1234_5678, &[], 64);
    assert_eq!((status, body.len()), (STATUS_INVALID_DEVICE_REQUEST, 0));
    let (status, _) = call_raw(&mut stream, IOCTL_RSDSM_GET_VERSION, &[], 8);
    assert_eq!(status, STATUS_BUFFER_TOO_SMALL);

    drop(stream);
    let status = server.stop();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status:?}");
    assert!(!server.socket.exists(), "the socket file is removed");
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
    let mut first = Server::start("stale", &[]);
    // A second server on the same live socket refuses to start.
    let out = std::process::Command::new(rsdsm_e2e::binary("rsdsm-sim"))
        .args(["serve", "--socket"])
        .arg(&first.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another server"));
    // Killed without cleanup, it leaves a stale socket file behind...
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(first.socket.exists());
    // ...which the next server replaces.
    let mut second = std::process::Command::new(rsdsm_e2e::binary("rsdsm-sim"))
        .args(["serve", "--socket"])
        .arg(&first.socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&first.socket).is_err() {
        assert!(std::time::Instant::now() < deadline, "did not replace the stale socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    second.kill().unwrap();
    second.wait().unwrap();
}
