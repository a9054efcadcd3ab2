//! The typed API over the in-process DSM and a Unix socket: every call,
//! every DESIGN §3 error row, and replies that are not replies.

use std::cell::RefCell;
use std::sync::Arc;

use rsdsm::dsm::Dsm as Driver;
use rsdsm::identity::{KeyKind, LunKey, PortIds};
use rsdsm_control::transport::{E_UNEXPECTED, HRESULT_FILE_NOT_FOUND};
use rsdsm_control::{
    ControlError, Dsm, HResult, InProcess, LoadBalancePolicy, LunId, PathId, PathPolicy, RawPolicy,
    Supported, SupportedPolicies, Transport, TransportError, VendorPolicy, WireError,
};
use rsdsm_engine::wire::{Opcode, Reply, encode_error};
use rsdsm_engine::{AccessState, IoOutcome, IoRequest, LunSettings, MAX_WEIGHT};

type Driver48 = Driver<4, 8>;

const A1: PathId = PathId::new(7, 1);
const A2: PathId = PathId::new(7, 2);

fn key(n: u8) -> LunKey {
    LunKey::from_parts(KeyKind::Naa, &[&[0x60, 0, 0, n]])
}

fn pp(path_id: PathId, primary: bool, weight: u32) -> PathPolicy {
    PathPolicy { path_id, primary, weight }
}

/// A DSM with LUN A (two optimized paths) and LUN B (one standby path).
fn setup() -> (Arc<Driver48>, LunId, LunId) {
    let driver =
        Arc::new(Driver48::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(1_000_000)));
    let (a, _) = driver.add_path(&key(1), A1, PortIds::default(), AccessState::ActiveOptimized).unwrap();
    driver.add_path(&key(1), A2, PortIds::default(), AccessState::ActiveOptimized).unwrap();
    let (b, _) =
        driver.add_path(&key(2), PathId::new(8, 1), PortIds::default(), AccessState::Standby).unwrap();
    (driver, a, b)
}

fn connect() -> (Dsm<InProcess<4, 8>>, LunId, LunId) {
    let (driver, a, b) = setup();
    (Dsm::connect(InProcess::new(driver)).unwrap(), a, b)
}

fn dsm_code<T: std::fmt::Debug>(result: Result<T, ControlError>) -> HResult {
    match result {
        Err(ControlError::Dsm(code)) => code,
        other => panic!("expected a DSM HRESULT, got {other:?}"),
    }
}

#[test]
fn version_and_connect() {
    let (dsm, _, _) = connect();
    let v = dsm.version().unwrap();
    assert_eq!(v, dsm.connected_version());
    assert_eq!((v.protocol, v.max_luns, v.max_paths_per_lun), (1, 4, 8));
    assert_eq!(
        format!("{}.{}.{}", v.driver_major, v.driver_minor, v.driver_patch),
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn luns_lists_every_lun() {
    let (dsm, a, b) = connect();
    let luns = dsm.luns().unwrap();
    assert_eq!(luns.iter().map(|l| l.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!((luns[0].paths, luns[0].usable_paths, luns[0].policy), (2, 2, LoadBalancePolicy::RoundRobin));
    assert_eq!((luns[1].paths, luns[1].usable_paths), (1, 1));
    assert_eq!(
        &luns[0].identity[..key(1).as_slice().len().min(16)],
        &key(1).as_slice()[..key(1).as_slice().len().min(16)]
    );
}

#[test]
fn set_and_get_load_balance_policy() {
    let (dsm, a, _) = connect();
    let lun = dsm.lun(a);
    assert_eq!(lun.id(), a);
    let before = lun.get_load_balance_policy().unwrap();
    assert_eq!(before.policy, LoadBalancePolicy::RoundRobin);
    assert_eq!(before.paths.iter().map(|p| p.path_id).collect::<Vec<_>>(), vec![A1, A2]);
    assert_eq!(before.preferred, None);

    let paths = [pp(A1, true, 0), pp(A2, false, 0)];
    let g = lun.set_load_balance_policy(LoadBalancePolicy::FailoverOnly, &paths).unwrap();
    assert_eq!(g, before.generation + 1);
    let after = lun.get_load_balance_policy().unwrap();
    assert_eq!(
        (after.policy, after.generation, after.paths),
        (LoadBalancePolicy::FailoverOnly, g, paths.to_vec())
    );

    // Conditional: at the current generation it applies, with a stale one not.
    let wp = [pp(A1, false, 3), pp(A2, false, 1)];
    let g2 = lun.set_load_balance_policy_if(LoadBalancePolicy::WeightedPaths, &wp, g).unwrap();
    assert_eq!(g2, g + 1);
    assert_eq!(
        dsm_code(lun.set_load_balance_policy_if(LoadBalancePolicy::LeastBlocks, &wp, g)),
        HResult::VDS_E_PROVIDER_CACHE_CORRUPT
    );
    assert_eq!(lun.get_load_balance_policy().unwrap().policy, LoadBalancePolicy::WeightedPaths);
    // Persisted through the in-process store.
    assert_eq!(dsm.transport().with_store_mut(|s| s.len()), 1);
}

#[test]
fn path_info_statistics_and_supported_policies() {
    let (dsm, a, _) = connect();
    let info = dsm.lun(a).get_path_info().unwrap();
    assert_eq!(info.iter().map(|p| (p.path_id, p.usable)).collect::<Vec<_>>(), vec![(A1, true), (A2, true)]);

    let driver = dsm.transport().dsm().clone();
    let io = IoRequest::write(8192).at(1);
    for _ in 0..4 {
        let slot = driver.select(a, &io).unwrap();
        let ticket = driver.start(a, slot, &io).unwrap();
        driver.complete(a, ticket, 2, IoOutcome::Success);
    }
    let stats = dsm.lun(a).statistics().unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(stats.iter().map(|s| s.statistics.writes).sum::<u64>(), 4);
    assert_eq!(stats.iter().map(|s| s.statistics.bytes_written).sum::<u64>(), 4 * 8192);
    assert!(stats.iter().all(|s| s.statistics.writes == 2), "round robin shares");

    let supported = dsm.lun(a).get_supported_policies().unwrap();
    assert_eq!(supported, Supported { policies: SupportedPolicies::all(), vendor_mask: 0b1110 });
    assert_eq!(supported.list(), LoadBalancePolicy::ALL.to_vec());
    let fewer = Supported { policies: SupportedPolicies::ROUND_ROBIN, vendor_mask: 0b10 };
    assert_eq!(fewer.list(), vec![LoadBalancePolicy::RoundRobin]);
}

#[test]
fn default_policy() {
    let (dsm, _, _) = connect();
    assert_eq!(dsm.default_policy().unwrap(), LoadBalancePolicy::RoundRobin);
    dsm.set_default_policy(LoadBalancePolicy::LeastQueueDepth).unwrap();
    assert_eq!(dsm.default_policy().unwrap(), LoadBalancePolicy::LeastQueueDepth);
    assert_eq!(dsm_code(dsm.set_default_policy(RawPolicy { number: 9, vendor: 0 })), HResult::E_INVALIDARG);
    assert_eq!(dsm.default_policy().unwrap(), LoadBalancePolicy::LeastQueueDepth);
}

#[test]
fn every_design_error_row_comes_back_exactly() {
    let (dsm, a, b) = connect();
    let lun = dsm.lun(a);
    let rr = LoadBalancePolicy::RoundRobin;
    let foo = LoadBalancePolicy::FailoverOnly;
    let before = lun.get_load_balance_policy().unwrap();
    let invalid: Vec<(RawPolicy, Vec<PathPolicy>)> = vec![
        (rr.into(), vec![pp(A1, false, 0), pp(PathId::new(9, 9), false, 0)]), // unknown path
        (rr.into(), vec![pp(A1, false, 0), pp(A1, false, 0)]),                // duplicate
        (rr.into(), vec![pp(A1, false, 0)]),                                  // count mismatch
        (RawPolicy { number: 0, vendor: 0 }, vec![pp(A1, false, 0), pp(A2, false, 0)]), // bad policy
        (RawPolicy { number: 7, vendor: 42 }, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        (foo.into(), vec![pp(A1, false, 0), pp(A2, false, 0)]), // no primary
        (foo.into(), vec![pp(A1, true, 0), pp(A2, true, 0)]),   // two primaries
        (LoadBalancePolicy::WeightedPaths.into(), vec![pp(A1, false, MAX_WEIGHT + 1), pp(A2, false, 0)]),
        (
            LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime).into(),
            vec![pp(A1, false, 0), pp(A2, false, 1)],
        ),
    ];
    for (policy, paths) in &invalid {
        assert_eq!(
            dsm_code(lun.set_load_balance_policy(*policy, paths)),
            HResult::E_INVALIDARG,
            "{policy:?} {paths:?}"
        );
    }
    let too_many: Vec<PathPolicy> = (0..9).map(|i| pp(PathId::new(7, i), false, 0)).collect();
    assert_eq!(dsm_code(lun.set_load_balance_policy(rr, &too_many)), HResult::E_OUTOFMEMORY);
    assert_eq!(lun.get_load_balance_policy().unwrap(), before, "nothing changed");

    // Another set pending on the LUN.
    let driver = dsm.transport().dsm().clone();
    let held = [pp(A1, true, 0), pp(A2, false, 0)];
    let pending = driver.lun(a).unwrap().begin_set(foo, &held, None).unwrap();
    assert_eq!(
        dsm_code(lun.set_load_balance_policy(rr, &[pp(A1, false, 0), pp(A2, false, 0)])),
        HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS
    );
    drop(pending);

    // No usable path.
    let slot = driver.lun(b).unwrap().slot_of(PathId::new(8, 1)).unwrap();
    driver.fail_path(b, slot, 1).unwrap();
    assert_eq!(
        dsm_code(dsm.lun(b).set_load_balance_policy(rr, &[pp(PathId::new(8, 1), false, 0)])),
        HResult::VDS_E_OBJECT_STATUS_FAILED
    );

    // LUN removed.
    driver.remove_lun(a).unwrap();
    assert_eq!(dsm_code(lun.set_load_balance_policy(rr, &held)), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(dsm_code(lun.get_load_balance_policy()), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(dsm_code(lun.get_path_info()), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(dsm_code(lun.statistics()), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(dsm_code(lun.get_supported_policies()), HResult::VDS_E_OBJECT_DELETED);

    // Names and messages for the CLI.
    let e = ControlError::Dsm(HResult::E_INVALIDARG);
    assert_eq!((e.hresult().0, e.name()), (0x8007_0057, "E_INVALIDARG"));
    assert_eq!(e.to_string(), "0x80070057 E_INVALIDARG: an argument is invalid");
}

#[test]
fn more_paths_than_the_protocol_carries_is_a_bad_request() {
    let (dsm, a, _) = connect();
    let paths: Vec<PathPolicy> = (0..65).map(|i| pp(PathId::new(7, i), false, 0)).collect();
    match dsm.lun(a).set_load_balance_policy(LoadBalancePolicy::RoundRobin, &paths) {
        Err(ControlError::BadRequest(WireError::CountTooLarge { count: 65, max: 64 })) => {}
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- replies that are not replies

/// A transport that answers every call with canned bytes.
struct Canned {
    /// What to answer GetVersion with (so that `connect` succeeds).
    version: Vec<u8>,
    answer: RefCell<Vec<u8>>,
}

impl Transport for Canned {
    fn call(&self, ioctl: u32, _input: &[u8], _cap: usize) -> Result<Vec<u8>, TransportError> {
        if ioctl == Opcode::GetVersion.ioctl() {
            Ok(self.version.clone())
        } else {
            Ok(self.answer.borrow().clone())
        }
    }
}

fn canned() -> Dsm<Canned> {
    let (driver, _, _) = setup();
    let real = InProcess::new(driver);
    let version = real.call(Opcode::GetVersion.ioctl(), &version_request(), 64).unwrap();
    Dsm::connect(Canned { version, answer: RefCell::new(Vec::new()) }).unwrap()
}

fn version_request() -> Vec<u8> {
    let mut buf = [0u8; 16];
    let n = rsdsm_engine::wire::Request::GetVersion.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn truncated_or_garbage_replies_are_bad_reply_never_a_panic() {
    let dsm = canned();
    // A valid GetPolicy reply from a real DSM, then every truncation of it.
    let (driver, a, _) = setup();
    let snapshot = driver.lun(a).unwrap().load_balance_policy().unwrap();
    let mut good = vec![0u8; 256];
    let n = Reply::from_snapshot(&snapshot).encode(&mut good).unwrap();
    good.truncate(n);
    *dsm.transport().answer.borrow_mut() = good.clone();
    assert_eq!(dsm.lun(a).get_load_balance_policy().unwrap().paths.len(), 2);
    for cut in 0..good.len() {
        *dsm.transport().answer.borrow_mut() = good[..cut].to_vec();
        match dsm.lun(a).get_load_balance_policy() {
            Err(ControlError::BadReply(_)) => {}
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    // A reply to another request.
    *dsm.transport().answer.borrow_mut() = version_request();
    assert!(matches!(dsm.luns(), Err(ControlError::BadReply(_))));
    // An unknown policy number in an otherwise valid reply.
    let mut bad_policy = good.clone();
    bad_policy[16] = 0x63;
    *dsm.transport().answer.borrow_mut() = bad_policy;
    match dsm.lun(a).get_load_balance_policy() {
        Err(e @ ControlError::BadReply(WireError::BadValue)) => assert_eq!(e.hresult(), E_UNEXPECTED),
        other => panic!("{other:?}"),
    }
    // Noise.
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    for len in 0..400 {
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        *dsm.transport().answer.borrow_mut() = noise;
        assert!(matches!(dsm.lun(a).statistics(), Err(ControlError::BadReply(_))));
        assert!(matches!(dsm.luns(), Err(ControlError::BadReply(_))));
    }
    // An error reply is the DSM's HRESULT, not a bad reply.
    let mut err = [0u8; 16];
    encode_error(Opcode::GetPolicy, HResult::VDS_E_OBJECT_DELETED, &mut err).unwrap();
    *dsm.transport().answer.borrow_mut() = err.to_vec();
    assert_eq!(dsm_code(dsm.lun(a).get_load_balance_policy()), HResult::VDS_E_OBJECT_DELETED);
}

#[test]
fn calls_that_fail_as_a_whole_are_transport_errors() {
    let (driver, _, _) = setup();
    let t = InProcess::new(driver);
    match t.call(0x1234, &[], 64) {
        Err(TransportError::CallFailed(code)) => assert_eq!(code, HResult::E_INVALID_FUNCTION),
        other => panic!("{other:?}"),
    }
    match t.call(Opcode::GetVersion.ioctl(), &version_request(), 8) {
        Err(TransportError::CallFailed(code)) => assert_eq!(code, HResult::E_NOT_SUFFICIENT_BUFFER),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- over a Unix socket

#[cfg(unix)]
#[test]
fn the_same_api_over_a_unix_socket() {
    use rsdsm_control::UnixSocket;
    use std::os::unix::net::UnixListener;

    let dir = std::env::temp_dir().join(format!("rsdsm-control-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dsm.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (driver, a, _) = setup();
    let server = Arc::new(InProcess::new(driver));
    let serving = server.clone();
    let thread = std::thread::spawn(move || {
        // Two connections: the client's, and a raw one sending garbage.
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = serving.serve(&mut stream);
        }
    });

    {
        let dsm = Dsm::connect(UnixSocket::connect(&path).unwrap()).unwrap();
        assert_eq!(dsm.luns().unwrap().len(), 2);
        let paths = [pp(A1, false, 1), pp(A2, false, 4)];
        let wrr = LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin);
        let g = dsm.lun(a).set_load_balance_policy(wrr, &paths).unwrap();
        let lb = dsm.lun(a).get_load_balance_policy().unwrap();
        assert_eq!((lb.policy, lb.generation, lb.paths), (wrr, g, paths.to_vec()));
        assert_eq!(dsm_code(dsm.lun(LunId(77)).get_path_info()), HResult::VDS_E_OBJECT_DELETED);
        assert_eq!(server.dsm().lun(a).unwrap().policy(), wrr, "applied to the served DSM");
        // A call failing as a whole comes back as its NTSTATUS's HRESULT.
        match dsm.transport().call(0xDEAD_BEEF, &[], 64) {
            Err(TransportError::CallFailed(code)) => assert_eq!(code, HResult::E_INVALID_FUNCTION),
            other => panic!("{other:?}"),
        }
        match dsm.transport().call(Opcode::GetVersion.ioctl(), &version_request(), 4) {
            Err(TransportError::CallFailed(code)) => assert_eq!(code, HResult::E_NOT_SUFFICIENT_BUFFER),
            other => panic!("{other:?}"),
        }
        // The connection is still in step.
        assert_eq!(dsm.version().unwrap().protocol, 1);
    }
    {
        use std::io::{Read, Write};
        let mut raw = std::os::unix::net::UnixStream::connect(&path).unwrap();
        raw.write_all(b"NOT A FRAME AT ALL").unwrap();
        let mut rest = Vec::new();
        // The server drops a connection whose framing is broken, without
        // an answer (a reset, if it left bytes unread, is fine too).
        let read = raw.read_to_end(&mut rest);
        assert!(read.is_ok() || read.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
        assert!(rest.is_empty());
    }
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    match UnixSocket::connect(dir.join("missing.sock")) {
        Err(e @ TransportError::NotFound(_)) => assert_eq!(e.hresult(), HRESULT_FILE_NOT_FOUND),
        other => panic!("{other:?}"),
    }
}
