//! The control-request handler end to end: request bytes built with the
//! wire encoder, through `control::handle`, replies decoded with
//! `Reply::decode`. Every opcode, every DESIGN §3 error row, call failures,
//! and 10,000 malformed requests that must change nothing.

use rsdsm::control::{CallError, DRIVER_VERSION, handle};
use rsdsm::dsm::Dsm;
use rsdsm::identity::{KeyKind, LunKey, PortIds};
use rsdsm::persist::MemoryStore;
use rsdsm_engine::wire::{
    HEADER_SIZE, IOCTL_RSDSM_GET_POLICY, IOCTL_RSDSM_SET_POLICY, LunEntry, LunId, MAX_REPLY_SIZE,
    MAX_REQUEST_SIZE, Opcode, PROTOCOL_VERSION, PathStatisticsEntry, RawPolicy, Records, Reply, Request,
    STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST, VersionInfo, WireError, ctl_code,
};
use rsdsm_engine::{
    AccessState, FailbackMode, FlapDamping, HResult, Health, IoOutcome, IoRequest, LoadBalancePolicy,
    LunSettings, MAX_WEIGHT, PathFlags, PathId, PathPolicy, PathSlot, PolicySnapshot, SupportedPolicies,
    VendorPolicy,
};

type TestDsm = Dsm<4, 8>;
type Store = MemoryStore<4, 2048>;

const A1: PathId = PathId::new(0x10, 1);
const A2: PathId = PathId::new(0x10, 2);
const B1: PathId = PathId::new(0x20, 1);
const B2: PathId = PathId::new(0x20, 2);
const B3: PathId = PathId::new(0x20, 3);

fn key(n: u8) -> LunKey {
    LunKey::from_parts(KeyKind::Naa, &[&[0x60, 0x0A, 0x0B, 0x80, 0, 0, 0, n]])
}

struct Fixture {
    dsm: Box<TestDsm>,
    store: Store,
    a: LunId,
    b: LunId,
    a_slots: [PathSlot; 2],
    b_slots: [PathSlot; 3],
}

fn settings() -> LunSettings {
    LunSettings {
        failback: FailbackMode::Immediate,
        flap: FlapDamping { window: 100, threshold: 2, hold: 50, max_hold: 1000 },
        sequential_window: 0,
    }
}

/// LUN A: two paths (optimized, non-optimized). LUN B: three optimized.
fn fixture() -> Fixture {
    let dsm = Box::new(TestDsm::new(LoadBalancePolicy::RoundRobin, settings()));
    let ports = PortIds::default();
    let (a, a1) = dsm.add_path(&key(1), A1, ports, AccessState::ActiveOptimized).unwrap();
    let (_, a2) = dsm.add_path(&key(1), A2, ports, AccessState::ActiveNonOptimized).unwrap();
    let (b, b1) = dsm.add_path(&key(2), B1, ports, AccessState::ActiveOptimized).unwrap();
    let (_, b2) = dsm.add_path(&key(2), B2, ports, AccessState::ActiveOptimized).unwrap();
    let (_, b3) = dsm.add_path(&key(2), B3, ports, AccessState::ActiveOptimized).unwrap();
    Fixture { dsm, store: Store::new(), a, b, a_slots: [a1, a2], b_slots: [b1, b2, b3] }
}

impl Fixture {
    /// Sends `request` with its own IOCTL; returns the reply bytes.
    fn call(&mut self, request: &Request<'_>) -> Vec<u8> {
        self.call_with(request, MAX_REPLY_SIZE)
    }

    fn call_with(&mut self, request: &Request<'_>, output_len: usize) -> Vec<u8> {
        let mut input = [0u8; MAX_REQUEST_SIZE];
        let n = request.encode(&mut input).unwrap();
        let mut output = vec![0xEEu8; output_len];
        let written = handle(&*self.dsm, &mut self.store, request.opcode().ioctl(), &input[..n], &mut output)
            .expect("the call completes");
        assert!(written <= output_len);
        output.truncate(written);
        output
    }

    /// Sends `request` and expects the DSM to refuse it with `code`.
    fn refused(&mut self, request: &Request<'_>) -> HResult {
        let out = self.call(request);
        match Reply::decode(request.opcode(), &out).unwrap() {
            Err(code) => code,
            Ok(reply) => panic!("expected a failure, got {reply:?}"),
        }
    }

    fn snapshot(&self) -> State {
        State {
            a: self.dsm.lun(self.a).map(|l| l.load_balance_policy().unwrap()),
            b: self.dsm.lun(self.b).map(|l| l.load_balance_policy().unwrap()),
            default: self.dsm.default_policy(),
            stored: self.store.len(),
        }
    }
}

#[derive(Debug, PartialEq)]
struct State {
    a: Option<PolicySnapshot<8>>,
    b: Option<PolicySnapshot<8>>,
    default: LoadBalancePolicy,
    stored: usize,
}

/// The first 16 bytes of a key, zero padded, as `ListLuns` reports it.
fn identity16(key: &LunKey) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = key.as_slice().len().min(16);
    out[..n].copy_from_slice(&key.as_slice()[..n]);
    out
}

fn pp(path_id: PathId, primary: bool, weight: u32) -> PathPolicy {
    PathPolicy { path_id, primary, weight }
}

fn set_request<'a>(lun: LunId, policy: RawPolicy, paths: &'a [PathPolicy]) -> Request<'a> {
    Request::SetPolicy { lun, policy, expected_generation: None, paths: Records::Typed(paths) }
}

fn raw(policy: LoadBalancePolicy) -> RawPolicy {
    policy.into()
}

// ---------------------------------------------------------------- every opcode

#[test]
fn get_version_reports_the_crate_version_and_table_sizes() {
    let mut fx = fixture();
    let out = fx.call(&Request::GetVersion);
    let Ok(Reply::GetVersion(info)) = Reply::decode(Opcode::GetVersion, &out).unwrap() else { panic!() };
    let version = env!("CARGO_PKG_VERSION");
    let expected: Vec<u16> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(vec![DRIVER_VERSION.0, DRIVER_VERSION.1, DRIVER_VERSION.2], expected);
    assert_eq!(
        info,
        VersionInfo {
            protocol: PROTOCOL_VERSION,
            driver_major: expected[0],
            driver_minor: expected[1],
            driver_patch: expected[2],
            max_paths_per_lun: 8,
            max_luns: 4,
        }
    );
}

#[test]
fn list_luns_lists_every_present_lun() {
    let mut fx = fixture();
    fx.dsm.fail_path(fx.b, fx.b_slots[2], 5).unwrap();
    let out = fx.call(&Request::ListLuns);
    let Ok(Reply::ListLuns(list)) = Reply::decode(Opcode::ListLuns, &out).unwrap() else { panic!() };
    let entries: Vec<LunEntry> = list.iter().collect();
    let (id_a, id_b) = (identity16(&key(1)), identity16(&key(2)));
    assert_eq!(
        entries,
        vec![
            LunEntry {
                lun: fx.a,
                policy: raw(LoadBalancePolicy::RoundRobin),
                paths: 2,
                usable_paths: 2,
                removed: false,
                identity: id_a,
            },
            LunEntry {
                lun: fx.b,
                policy: raw(LoadBalancePolicy::RoundRobin),
                paths: 3,
                usable_paths: 2,
                removed: false,
                identity: id_b,
            },
        ]
    );
    assert_eq!(out.len(), HEADER_SIZE + 8 + 2 * 48);

    // A removed LUN is no longer listed.
    fx.dsm.remove_lun(fx.a).unwrap();
    let out = fx.call(&Request::ListLuns);
    let Ok(Reply::ListLuns(list)) = Reply::decode(Opcode::ListLuns, &out).unwrap() else { panic!() };
    assert_eq!(list.iter().map(|e| e.lun).collect::<Vec<_>>(), vec![fx.b]);
}

#[test]
fn get_policy_reports_policy_generation_and_paths() {
    let mut fx = fixture();
    let engine = fx.dsm.lun(fx.a).unwrap().load_balance_policy().unwrap();
    let out = fx.call(&Request::GetPolicy { lun: fx.a });
    let Ok(Reply::GetPolicy { policy, generation, preferred, paths }) =
        Reply::decode(Opcode::GetPolicy, &out).unwrap()
    else {
        panic!()
    };
    assert_eq!(policy, raw(LoadBalancePolicy::RoundRobin));
    assert_eq!(generation, engine.generation);
    assert_eq!(preferred, None);
    let paths: Vec<PathPolicy> = paths.iter().collect();
    assert_eq!(paths, engine.paths.to_vec());
    assert_eq!(paths.iter().map(|p| p.path_id).collect::<Vec<_>>(), vec![A1, A2]);
}

#[test]
fn set_policy_applies_persists_and_returns_the_new_generation() {
    let mut fx = fixture();
    let before = fx.dsm.lun(fx.a).unwrap().load_balance_policy().unwrap();
    let paths = [pp(A1, true, 0), pp(A2, false, 0)];
    let out = fx.call(&set_request(fx.a, raw(LoadBalancePolicy::FailoverOnly), &paths));
    let Ok(Reply::SetPolicy { generation }) = Reply::decode(Opcode::SetPolicy, &out).unwrap() else {
        panic!()
    };
    assert_eq!(generation, before.generation + 1);
    let after = fx.dsm.lun(fx.a).unwrap().load_balance_policy().unwrap();
    assert_eq!(after.policy, LoadBalancePolicy::FailoverOnly);
    assert_eq!(after.generation, generation);
    assert_eq!(after.paths.to_vec(), paths.to_vec());
    assert_eq!(fx.store.len(), 1, "persisted through the store");
    // LUN B untouched.
    assert_eq!(fx.dsm.lun(fx.b).unwrap().policy(), LoadBalancePolicy::RoundRobin);

    // A conditional set at the current generation applies...
    let paths = [pp(B1, false, 1), pp(B2, false, 2), pp(B3, false, 3)];
    let g = fx.dsm.lun(fx.b).unwrap().load_balance_policy().unwrap().generation;
    let wrr = LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin);
    let request = Request::SetPolicy {
        lun: fx.b,
        policy: raw(wrr),
        expected_generation: Some(g),
        paths: Records::Typed(&paths),
    };
    let out = fx.call(&request);
    assert_eq!(Reply::decode(Opcode::SetPolicy, &out).unwrap(), Ok(Reply::SetPolicy { generation: g + 1 }));
    assert_eq!(fx.dsm.lun(fx.b).unwrap().policy(), wrr);
    // ...and the same request again is stale.
    assert_eq!(fx.refused(&request), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert_eq!(fx.store.len(), 2);
}

#[test]
fn get_path_info_reports_every_path() {
    let mut fx = fixture();
    fx.dsm.fail_path(fx.a, fx.a_slots[1], 7).unwrap();
    let out = fx.call(&Request::GetPathInfo { lun: fx.a });
    let Ok(Reply::GetPathInfo(list)) = Reply::decode(Opcode::GetPathInfo, &out).unwrap() else { panic!() };
    let info: Vec<_> = list.iter().collect();
    assert_eq!(info.len(), 2);
    assert_eq!(info, fx.dsm.lun(fx.a).unwrap().path_info().unwrap().to_vec());
    assert_eq!(
        (info[0].path_id, info[0].slot, info[0].access),
        (A1, fx.a_slots[0], AccessState::ActiveOptimized)
    );
    assert_eq!((info[0].health, info[0].usable), (Health::Healthy, true));
    assert_eq!((info[1].path_id, info[1].access), (A2, AccessState::ActiveNonOptimized));
    assert_eq!((info[1].health, info[1].usable), (Health::Failed, false));
    // New paths start primary.
    assert_eq!(info[0].flags, PathFlags::PRIMARY);
}

#[test]
fn get_statistics_reports_counters_per_path() {
    let mut fx = fixture();
    let io = IoRequest::read(4096).at(10);
    for _ in 0..3 {
        let slot = fx.dsm.select(fx.a, &io).unwrap();
        assert_eq!(slot, fx.a_slots[0], "only the optimized tier is used");
        let ticket = fx.dsm.start(fx.a, slot, &io).unwrap();
        fx.dsm.complete(fx.a, ticket, 20, IoOutcome::Success);
    }
    let write = IoRequest::write(512).at(30);
    let ticket = fx.dsm.start(fx.a, fx.a_slots[1], &write).unwrap();
    let out = fx.call(&Request::GetStatistics { lun: fx.a });
    let Ok(Reply::GetStatistics(list)) = Reply::decode(Opcode::GetStatistics, &out).unwrap() else {
        panic!()
    };
    let entries: Vec<PathStatisticsEntry> = list.iter().collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].path_id, A1);
    assert_eq!((entries[0].statistics.reads, entries[0].statistics.bytes_read), (3, 3 * 4096));
    assert_eq!((entries[0].statistics.writes, entries[0].statistics.in_flight), (0, 0));
    assert_eq!(entries[1].path_id, A2);
    assert_eq!((entries[1].statistics.in_flight, entries[1].statistics.in_flight_bytes), (1, 512));
    fx.dsm.complete(fx.a, ticket, 40, IoOutcome::Success);
}

#[test]
fn default_policy_get_and_set() {
    let mut fx = fixture();
    let out = fx.call(&Request::GetDefaultPolicy);
    assert_eq!(
        Reply::decode(Opcode::GetDefaultPolicy, &out).unwrap(),
        Ok(Reply::GetDefaultPolicy(raw(LoadBalancePolicy::RoundRobin)))
    );
    let al = LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency);
    let out = fx.call(&Request::SetDefaultPolicy { policy: raw(al) });
    assert_eq!(Reply::decode(Opcode::SetDefaultPolicy, &out).unwrap(), Ok(Reply::SetDefaultPolicy));
    assert_eq!(out.len(), HEADER_SIZE);
    let out = fx.call(&Request::GetDefaultPolicy);
    assert_eq!(Reply::decode(Opcode::GetDefaultPolicy, &out).unwrap(), Ok(Reply::GetDefaultPolicy(raw(al))));
    // New LUNs get it; present ones keep theirs.
    let (c, _) =
        fx.dsm.add_path(&key(3), PathId::new(3, 1), PortIds::default(), AccessState::Standby).unwrap();
    assert_eq!(fx.dsm.lun(c).unwrap().policy(), al);
    assert_eq!(fx.dsm.lun(fx.a).unwrap().policy(), LoadBalancePolicy::RoundRobin);

    for bad in [
        RawPolicy { number: 0, vendor: 0 },
        RawPolicy { number: 8, vendor: 0 },
        RawPolicy { number: 7, vendor: 4 },
    ] {
        assert_eq!(fx.refused(&Request::SetDefaultPolicy { policy: bad }), HResult::E_INVALIDARG);
    }
    assert_eq!(fx.dsm.default_policy(), al);
}

#[test]
fn get_supported_policies_lists_all_standard_and_vendor_policies() {
    let mut fx = fixture();
    let out = fx.call(&Request::GetSupportedPolicies { lun: fx.b });
    assert_eq!(
        Reply::decode(Opcode::GetSupportedPolicies, &out).unwrap(),
        Ok(Reply::GetSupportedPolicies { policies: SupportedPolicies::all(), vendor_mask: 0b1110 })
    );
}

// ---------------------------------------------------------------- DESIGN §3 rows

/// Sends a refused `SetPolicy` and checks that nothing changed.
fn assert_set_refused(fx: &mut Fixture, request: &Request<'_>, code: HResult) {
    let before = fx.snapshot();
    assert_eq!(fx.refused(request), code, "{request:?}");
    assert_eq!(fx.snapshot(), before, "a refused set changes nothing");
}

#[test]
fn set_policy_invalid_arguments_are_e_invalidarg() {
    let mut fx = fixture();
    let a = fx.a;
    let foo = raw(LoadBalancePolicy::FailoverOnly);
    let rr = raw(LoadBalancePolicy::RoundRobin);
    let cases: Vec<(RawPolicy, Vec<PathPolicy>)> = vec![
        // unknown path id
        (rr, vec![pp(A1, false, 0), pp(B1, false, 0)]),
        // duplicate id
        (rr, vec![pp(A1, false, 0), pp(A1, false, 0)]),
        // count mismatch: too few, too many
        (rr, vec![pp(A1, false, 0)]),
        (rr, vec![pp(A1, false, 0), pp(A2, false, 0), pp(B1, false, 0)]),
        (rr, vec![]),
        // bad policy numbers
        (RawPolicy { number: 0, vendor: 0 }, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        (RawPolicy { number: 8, vendor: 0 }, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        (RawPolicy { number: 7, vendor: 9 }, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        (RawPolicy { number: 2, vendor: 1 }, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        // no primary where the policy needs one
        (foo, vec![pp(A1, false, 0), pp(A2, false, 0)]),
        (raw(LoadBalancePolicy::RoundRobinWithSubset), vec![pp(A1, false, 0), pp(A2, false, 0)]),
        // failover only with two primaries
        (foo, vec![pp(A1, true, 0), pp(A2, true, 0)]),
        // weight out of range
        (raw(LoadBalancePolicy::WeightedPaths), vec![pp(A1, false, MAX_WEIGHT + 1), pp(A2, false, 0)]),
        (
            raw(LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin)),
            vec![pp(A1, false, 0), pp(A2, false, 1)],
        ),
    ];
    for (policy, paths) in &cases {
        assert_set_refused(&mut fx, &set_request(a, *policy, paths), HResult::E_INVALIDARG);
    }
    assert_eq!(fx.store.len(), 0);
}

#[test]
fn set_policy_beyond_the_table_is_e_outofmemory() {
    let mut fx = fixture();
    let paths: Vec<PathPolicy> = (0..9).map(|i| pp(PathId::new(0x10, i), false, 0)).collect();
    let a = fx.a;
    assert_set_refused(
        &mut fx,
        &set_request(a, raw(LoadBalancePolicy::RoundRobin), &paths),
        HResult::E_OUTOFMEMORY,
    );
}

#[test]
fn a_removed_or_unknown_lun_is_object_deleted() {
    let mut fx = fixture();
    let paths = [pp(A1, true, 0), pp(A2, false, 0)];
    fx.dsm.remove_lun(fx.a).unwrap();
    let a = fx.a;
    assert_set_refused(
        &mut fx,
        &set_request(a, raw(LoadBalancePolicy::FailoverOnly), &paths),
        HResult::VDS_E_OBJECT_DELETED,
    );
    // Unknown even before the policy is judged.
    assert_set_refused(
        &mut fx,
        &set_request(a, RawPolicy { number: 99, vendor: 0 }, &paths),
        HResult::VDS_E_OBJECT_DELETED,
    );
    let never = LunId(0xDEAD_0001);
    for request in [
        Request::GetPolicy { lun: a },
        Request::GetPathInfo { lun: a },
        Request::GetStatistics { lun: a },
        Request::GetSupportedPolicies { lun: a },
        Request::GetPolicy { lun: never },
        Request::GetPathInfo { lun: never },
        Request::GetStatistics { lun: never },
        Request::GetSupportedPolicies { lun: never },
        set_request(never, raw(LoadBalancePolicy::RoundRobin), &paths),
    ] {
        assert_eq!(fx.refused(&request), HResult::VDS_E_OBJECT_DELETED, "{request:?}");
    }
}

#[test]
fn a_lun_without_a_usable_path_is_object_status_failed() {
    let mut fx = fixture();
    for (i, slot) in fx.b_slots.into_iter().enumerate() {
        fx.dsm.fail_path(fx.b, slot, 10 + i as u64).unwrap();
    }
    let paths = [pp(B1, false, 0), pp(B2, false, 0), pp(B3, false, 0)];
    let b = fx.b;
    assert_set_refused(
        &mut fx,
        &set_request(b, raw(LoadBalancePolicy::LeastQueueDepth), &paths),
        HResult::VDS_E_OBJECT_STATUS_FAILED,
    );
}

#[test]
fn a_stale_generation_is_provider_cache_corrupt() {
    let mut fx = fixture();
    let g = fx.dsm.lun(fx.a).unwrap().load_balance_policy().unwrap().generation;
    let paths = [pp(A1, false, 0), pp(A2, false, 0)];
    for stale in [g.wrapping_sub(1), g + 1, 0, u64::MAX] {
        let request = Request::SetPolicy {
            lun: fx.a,
            policy: raw(LoadBalancePolicy::LeastBlocks),
            expected_generation: Some(stale),
            paths: Records::Typed(&paths),
        };
        assert_set_refused(&mut fx, &request, HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    }
    // A path arrival moves the generation too: a view read before it is stale.
    let (_, _) =
        fx.dsm.add_path(&key(1), PathId::new(0x10, 3), PortIds::default(), AccessState::Standby).unwrap();
    let paths = [pp(A1, false, 0), pp(A2, false, 0), pp(PathId::new(0x10, 3), false, 0)];
    let request = Request::SetPolicy {
        lun: fx.a,
        policy: raw(LoadBalancePolicy::LeastBlocks),
        expected_generation: Some(g),
        paths: Records::Typed(&paths),
    };
    assert_set_refused(&mut fx, &request, HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
}

#[test]
fn a_set_while_another_is_pending_is_another_call_in_progress() {
    let mut fx = fixture();
    let dsm: &'static TestDsm = Box::leak(std::mem::replace(
        &mut fx.dsm,
        Box::new(TestDsm::new(LoadBalancePolicy::RoundRobin, settings())),
    ));
    let held = [pp(A1, true, 0), pp(A2, false, 0)];
    let pending = dsm.lun(fx.a).unwrap().begin_set(LoadBalancePolicy::FailoverOnly, &held, None).unwrap();
    let paths = [pp(A1, false, 0), pp(A2, false, 0)];
    let mut input = [0u8; MAX_REQUEST_SIZE];
    let n = set_request(fx.a, raw(LoadBalancePolicy::LeastQueueDepth), &paths).encode(&mut input).unwrap();
    let mut output = [0u8; 64];
    let before = dsm.lun(fx.a).unwrap().load_balance_policy().unwrap();
    let written = handle(dsm, &mut fx.store, IOCTL_RSDSM_SET_POLICY, &input[..n], &mut output).unwrap();
    assert_eq!(
        Reply::decode(Opcode::SetPolicy, &output[..written]).unwrap(),
        Err(HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS)
    );
    assert_eq!(dsm.lun(fx.a).unwrap().load_balance_policy().unwrap(), before);
    // Other LUNs are not blocked.
    let b_paths = [pp(B1, false, 0), pp(B2, false, 0), pp(B3, false, 0)];
    let n = set_request(fx.b, raw(LoadBalancePolicy::LeastQueueDepth), &b_paths).encode(&mut input).unwrap();
    let written = handle(dsm, &mut fx.store, IOCTL_RSDSM_SET_POLICY, &input[..n], &mut output).unwrap();
    assert!(matches!(
        Reply::decode(Opcode::SetPolicy, &output[..written]).unwrap(),
        Ok(Reply::SetPolicy { .. })
    ));
    // Once the pending set is committed, sets proceed again.
    pending.commit().unwrap();
    let n = set_request(fx.a, raw(LoadBalancePolicy::LeastQueueDepth), &paths).encode(&mut input).unwrap();
    let written = handle(dsm, &mut fx.store, IOCTL_RSDSM_SET_POLICY, &input[..n], &mut output).unwrap();
    assert!(matches!(
        Reply::decode(Opcode::SetPolicy, &output[..written]).unwrap(),
        Ok(Reply::SetPolicy { .. })
    ));
}

// ---------------------------------------------------------------- call failures and buffers

#[test]
fn unknown_ioctl_codes_fail_the_call() {
    let mut fx = fixture();
    let mut input = [0u8; 64];
    let n = Request::GetVersion.encode(&mut input).unwrap();
    let before = fx.snapshot();
    for ioctl in [
        0,
        u32::MAX,
        ctl_code(0x8A5D, 0x801, 0, 0),      // right function, weaker access
        ctl_code(0x8A5D, 0x801, 3, 1),      // METHOD_NEITHER
        ctl_code(0x8A5D, 0x80A, 0, 1),      // function past the last opcode
        ctl_code(0x0007, 0x801, 0, 1),      // another device type
        IOCTL_RSDSM_SET_POLICY ^ (1 << 14), // read instead of write access
    ] {
        let mut output = [0xEEu8; 64];
        assert_eq!(
            handle(&*fx.dsm, &mut fx.store, ioctl, &input[..n], &mut output),
            Err(CallError::InvalidDeviceRequest),
            "{ioctl:#x}"
        );
        assert_eq!(output, [0xEE; 64], "nothing written");
    }
    assert_eq!(CallError::InvalidDeviceRequest.ntstatus(), STATUS_INVALID_DEVICE_REQUEST);
    assert_eq!(fx.snapshot(), before);
}

#[test]
fn an_output_shorter_than_a_header_fails_the_call() {
    let mut fx = fixture();
    let mut input = [0u8; 64];
    let n = Request::GetVersion.encode(&mut input).unwrap();
    for len in 0..HEADER_SIZE {
        let mut output = vec![0xEEu8; len];
        assert_eq!(
            handle(&*fx.dsm, &mut fx.store, Opcode::GetVersion.ioctl(), &input[..n], &mut output),
            Err(CallError::BufferTooSmall)
        );
        assert!(output.iter().all(|&b| b == 0xEE));
    }
    assert_eq!(CallError::BufferTooSmall.ntstatus(), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(CallError::BufferTooSmall.hresult(), HResult::E_NOT_SUFFICIENT_BUFFER);
}

#[test]
fn a_reply_that_does_not_fit_is_e_not_sufficient_buffer() {
    let mut fx = fixture();
    let lun = fx.b;
    for request in [
        Request::GetVersion,
        Request::ListLuns,
        Request::GetPolicy { lun },
        Request::GetPathInfo { lun },
        Request::GetStatistics { lun },
        Request::GetDefaultPolicy,
        Request::GetSupportedPolicies { lun },
    ] {
        let full = fx.call(&request);
        assert!(Reply::decode(request.opcode(), &full).unwrap().is_ok());
        for len in [HEADER_SIZE, full.len() - 1] {
            let out = fx.call_with(&request, len);
            assert_eq!(
                Reply::decode(request.opcode(), &out).unwrap(),
                Err(HResult::E_NOT_SUFFICIENT_BUFFER),
                "{request:?} into {len} bytes"
            );
        }
        assert_eq!(fx.call_with(&request, full.len()), full);
    }
}

#[test]
fn a_set_without_room_for_its_reply_is_not_applied() {
    let mut fx = fixture();
    let paths = [pp(A1, true, 0), pp(A2, false, 0)];
    let request = set_request(fx.a, raw(LoadBalancePolicy::FailoverOnly), &paths);
    let before = fx.snapshot();
    for len in HEADER_SIZE..HEADER_SIZE + 8 {
        let out = fx.call_with(&request, len);
        assert_eq!(Reply::decode(Opcode::SetPolicy, &out).unwrap(), Err(HResult::E_NOT_SUFFICIENT_BUFFER));
        assert_eq!(fx.snapshot(), before);
    }
    let out = fx.call_with(&request, HEADER_SIZE + 8);
    assert!(matches!(Reply::decode(Opcode::SetPolicy, &out).unwrap(), Ok(Reply::SetPolicy { .. })));
}

#[test]
fn a_request_for_another_ioctl_or_malformed_is_refused_by_its_wire_error() {
    let mut fx = fixture();
    let mut input = [0u8; 64];
    let n = Request::GetPolicy { lun: fx.a }.encode(&mut input).unwrap();
    let mut output = [0u8; 64];
    // GetPolicy bytes sent with the SetPolicy IOCTL: they cannot borrow its access.
    let w = handle(&*fx.dsm, &mut fx.store, IOCTL_RSDSM_SET_POLICY, &input[..n], &mut output).unwrap();
    assert_eq!(Reply::decode(Opcode::SetPolicy, &output[..w]).unwrap(), Err(HResult::E_INVALIDARG));
    // Unknown opcode in the header.
    let mut bytes = input[..n].to_vec();
    bytes[6] = 0x42;
    let w = handle(&*fx.dsm, &mut fx.store, IOCTL_RSDSM_GET_POLICY, &bytes, &mut output).unwrap();
    assert_eq!(Reply::decode(Opcode::GetPolicy, &output[..w]).unwrap(), Err(HResult::E_INVALID_FUNCTION));
    // Empty input.
    let w = handle(&*fx.dsm, &mut fx.store, IOCTL_RSDSM_GET_POLICY, &[], &mut output).unwrap();
    assert_eq!(
        Reply::decode(Opcode::GetPolicy, &output[..w]).unwrap(),
        Err(WireError::Truncated { needed: 16, available: 0 }.hresult())
    );
}

// ---------------------------------------------------------------- malformed requests

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn ten_thousand_malformed_requests_get_error_replies_and_change_nothing() {
    let mut fx = fixture();
    let valid_paths = [pp(A1, true, 0), pp(A2, false, 0)];
    let seeds: Vec<Vec<u8>> = [
        Request::GetVersion,
        Request::ListLuns,
        Request::GetPolicy { lun: fx.a },
        set_request(fx.a, raw(LoadBalancePolicy::FailoverOnly), &valid_paths),
        Request::GetPathInfo { lun: fx.b },
        Request::GetStatistics { lun: fx.b },
        Request::GetDefaultPolicy,
        Request::SetDefaultPolicy { policy: raw(LoadBalancePolicy::LeastBlocks) },
        Request::GetSupportedPolicies { lun: fx.a },
    ]
    .iter()
    .map(|r| {
        let mut buf = [0u8; MAX_REQUEST_SIZE];
        let n = r.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    })
    .collect();
    let before = fx.snapshot();
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut output = vec![0u8; MAX_REPLY_SIZE];
    let (mut replies, mut call_errors, mut changes_skipped) = (0, 0, 0);
    let mut done = 0;
    while done < 10_000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        match rng.below(5) {
            // flip one to four bytes
            0 | 1 => {
                for _ in 0..=rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= (rng.next() as u8) | 1;
                }
            }
            // truncate
            2 => bytes.truncate(rng.below(bytes.len())),
            // extend with junk
            3 => bytes.extend((0..=rng.below(40)).map(|_| rng.next() as u8)),
            // pure noise, sometimes with a plausible header
            _ => {
                bytes = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
                if bytes.len() >= 16 && rng.below(2) == 0 {
                    bytes[..4].copy_from_slice(b"RSDM");
                    bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
                    let len = u32::try_from(bytes.len()).unwrap();
                    bytes[8..12].copy_from_slice(&len.to_le_bytes());
                }
            }
        }
        // The IOCTL: mostly the one of a random opcode, sometimes garbage.
        let ioctl = if rng.below(10) == 0 {
            rng.next() as u32
        } else {
            Opcode::ALL[rng.below(Opcode::ALL.len())].ioctl()
        };
        let decoded = Opcode::from_ioctl(ioctl).map(|op| (op, Request::decode_for(op, &bytes)));
        if let Some((op, Ok(_))) = &decoded
            && op.is_change()
        {
            // A mutation that is still a valid change would rightly change
            // state; this test is about malformed input.
            changes_skipped += 1;
            continue;
        }
        done += 1;
        let out_len = if rng.below(8) == 0 { rng.below(64) } else { MAX_REPLY_SIZE };
        let out = &mut output[..out_len];
        match handle(&*fx.dsm, &mut fx.store, ioctl, &bytes, out) {
            Err(CallError::InvalidDeviceRequest) => {
                assert!(decoded.is_none());
                call_errors += 1;
            }
            Err(CallError::BufferTooSmall) => {
                assert!(out_len < HEADER_SIZE);
                call_errors += 1;
            }
            Ok(n) => {
                assert!(n <= out_len);
                let (op, result) = decoded.unwrap();
                let reply = Reply::decode(op, &out[..n]).expect("a well-formed reply");
                // A valid query may get any answer; a malformed request
                // gets exactly its wire error's HRESULT.
                if let Err(e) = result {
                    assert_eq!(reply, Err(e.hresult()), "{bytes:02x?}");
                }
                replies += 1;
            }
        }
        if done % 1000 == 0 {
            assert_eq!(fx.snapshot(), before);
        }
    }
    assert_eq!(fx.snapshot(), before, "no malformed request changed anything");
    assert_eq!(fx.store.len(), 0);
    assert!(replies > 8000 && call_errors > 500, "{replies} replies, {call_errors} call errors");
    assert!(changes_skipped < 5000);
}
