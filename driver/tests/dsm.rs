//! The DSM façade end to end: claim, identity, path grouping, lifecycle,
//! error interpretation, ALUA, persistence.

use rsdsm::alua::Rtpg;
use rsdsm::claim::ClaimList;
use rsdsm::dsm::{Dsm, InquireError, Restored};
use rsdsm::identity::{Identity, IdentityError, PortIds};
use rsdsm::persist::{MemoryStore, PolicyStore};
use rsdsm::sense::{SenseAction, TransportError};
use rsdsm_engine::{
    AccessState, Error, FailbackMode, FlapDamping, HResult, IoOutcome, IoRequest, LoadBalancePolicy,
    LunSettings, PathId, PathPolicy, Reinstatement,
};

const NAA: [u8; 20] = [
    0x01, 0x03, 0x00, 0x10, 0x60, 0x0A, 0x0B, 0x80, 0x00, 0x12, 0x34, 0x56, 0x00, 0x00, 0x0A, 0xBC, 0x5F,
    0x01, 0x02, 0x03,
];

/// Page 0x83 of the LUN as seen through relative port `port` in group `tpg`.
fn vpd83(naa_last: u8, port: u16, tpg: u16) -> Vec<u8> {
    let mut naa = NAA;
    naa[19] = naa_last;
    let [ph, pl] = port.to_be_bytes();
    let [gh, gl] = tpg.to_be_bytes();
    let rtp = [0x01, 0x94, 0, 4, 0, 0, ph, pl];
    let grp = [0x01, 0x15, 0, 4, 0, 0, gh, gl];
    let body = [&naa[..], &rtp, &grp].concat();
    [&[0x00, 0x83, 0x00, u8::try_from(body.len()).unwrap()][..], &body].concat()
}

fn settings() -> LunSettings {
    LunSettings {
        failback: FailbackMode::Immediate,
        flap: FlapDamping { window: 100, threshold: 2, hold: 50, max_hold: 1000 },
        sequential_window: 0,
    }
}

fn claims() -> ClaimList<4> {
    ClaimList::from_strs(["ACME    ARRAY"]).unwrap()
}

fn identity(dsm: &Dsm<4, 8>, naa_last: u8, port: u16, tpg: u16) -> Identity {
    dsm.inquire(&claims(), b"ACME    ", b"ARRAY-9000      ", Some(&vpd83(naa_last, port, tpg)), None).unwrap()
}

fn rtpg(groups: &[(u16, u8, &[u16])]) -> Vec<u8> {
    let mut body = vec![0x10, 0, 0, 0];
    for (id, state, ports) in groups {
        body.extend_from_slice(&[*state, 0x8F]);
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, u8::try_from(ports.len()).unwrap()]);
        for p in *ports {
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&p.to_be_bytes());
        }
    }
    [&u32::try_from(body.len()).unwrap().to_be_bytes()[..], &body].concat()
}

const IO: IoRequest = IoRequest::read(4096);

#[test]
fn inquire_claims_listed_devices_only() {
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let page = vpd83(1, 1, 1);
    assert_eq!(
        dsm.inquire(&claims(), b"OTHER   ", b"ARRAY           ", Some(&page), None),
        Err(InquireError::NotSupported)
    );
    assert_eq!(
        dsm.inquire(&claims(), b"ACME    ", b"ARRAY           ", Some(&page[..10]), None),
        Err(InquireError::Identity(IdentityError::PageLengthPastBuffer))
    );
    let id = identity(&dsm, 1, 3, 7);
    assert_eq!(id.ports, PortIds { relative_port: Some(3), target_port_group: Some(7) });
}

#[test]
fn paths_through_two_ports_form_one_lun_and_fail_over() {
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let a = identity(&dsm, 1, 1, 1);
    let b = identity(&dsm, 1, 2, 2);
    let other = identity(&dsm, 2, 1, 1);
    assert_eq!(a.key, b.key);
    let (lun, pa) = dsm.add_path(&a.key, PathId::new(9, 1), a.ports, AccessState::ActiveOptimized).unwrap();
    let (lun2, pb) = dsm.add_path(&b.key, PathId::new(9, 2), b.ports, AccessState::ActiveOptimized).unwrap();
    let (lun3, _) =
        dsm.add_path(&other.key, PathId::new(9, 3), other.ports, AccessState::ActiveOptimized).unwrap();
    assert_eq!(lun, lun2, "same key: one LUN");
    assert_ne!(lun, lun3);
    assert_eq!(dsm.luns().count(), 2);
    assert_eq!(dsm.lun(lun).unwrap().path_info().unwrap().len(), 2);
    assert_eq!(dsm.ports(lun, pb), Some(b.ports));
    assert_eq!(dsm.lun_id(&a.key), Some(lun));
    assert_eq!(
        dsm.add_path(&a.key, PathId::new(9, 1), a.ports, AccessState::ActiveOptimized).unwrap_err().hresult(),
        HResult::E_INVALIDARG
    );

    // Round robin uses both; a failure takes effect at once.
    let picks: Vec<_> = (0..4).map(|_| dsm.select(lun, &IO).unwrap()).collect();
    assert!(picks.contains(&pa) && picks.contains(&pb));
    dsm.fail_path(lun, pa, 10).unwrap();
    assert!((0..8).all(|_| dsm.select(lun, &IO) == Ok(pb)));

    // Verify, then reinstate.
    dsm.verify(lun, pa).unwrap();
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pb)));
    assert_eq!(dsm.reinstate(lun, pa, 20), Ok(Reinstatement::Reinstated));
    let picks: Vec<_> = (0..4).map(|_| dsm.select(lun, &IO).unwrap()).collect();
    assert!(picks.contains(&pa));

    // A second failure within the window: held down, a good verify does
    // not bring it back before the hold ends.
    dsm.fail_path(lun, pa, 30).unwrap();
    assert_eq!(dsm.reinstate(lun, pa, 40), Ok(Reinstatement::HeldDown { until: 80 }));
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pb)));
    assert_eq!(dsm.reinstate(lun, pa, 80), Ok(Reinstatement::Reinstated));

    // Path removal.
    dsm.remove_path(lun, pb).unwrap();
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pa)));
    assert_eq!(dsm.ports(lun, pb), Some(PortIds::default()));
}

#[test]
fn removing_a_lun_during_a_set_fails_the_set_with_object_deleted() {
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let a = identity(&dsm, 1, 1, 1);
    let (lun, pa) = dsm.add_path(&a.key, PathId::new(9, 1), a.ports, AccessState::ActiveOptimized).unwrap();
    let paths = [PathPolicy { path_id: PathId::new(9, 1), primary: true, weight: 1 }];
    let engine = dsm.lun(lun).unwrap();
    let pending = engine.begin_set(LoadBalancePolicy::FailoverOnly, &paths, None).unwrap();
    dsm.remove_lun(lun).unwrap();
    assert_eq!(pending.commit().unwrap_err().hresult(), HResult::VDS_E_OBJECT_DELETED);
    assert!(dsm.lun(lun).is_none());
    assert_eq!(dsm.select(lun, &IO), Err(rsdsm_engine::NoPath));
    assert_eq!(dsm.fail_path(lun, pa, 1), Err(Error::ObjectDeleted));
    let mut store: MemoryStore<4, 512> = MemoryStore::new();
    assert_eq!(
        dsm.set_policy(lun, LoadBalancePolicy::FailoverOnly, &paths, &mut store).unwrap_err().hresult(),
        HResult::VDS_E_OBJECT_DELETED
    );
    assert_eq!(dsm.remove_lun(lun), Err(Error::ObjectDeleted));
    assert_eq!(dsm.luns().count(), 0);
}

#[test]
fn lun_ids_are_never_reused_and_entries_are_recycled_after_draining() {
    let dsm: Dsm<1, 8> = Dsm::new(LoadBalancePolicy::LeastQueueDepth, settings());
    let key = dsm.inquire(&claims(), b"ACME", b"ARRAY", Some(&vpd83(1, 1, 1)), None).unwrap().key;
    let other = dsm.inquire(&claims(), b"ACME", b"ARRAY", Some(&vpd83(2, 1, 1)), None).unwrap().key;
    let (first, slot) =
        dsm.add_path(&key, PathId::new(1, 1), PortIds::default(), AccessState::ActiveOptimized).unwrap();
    assert_eq!(dsm.lun(first).unwrap().policy(), LoadBalancePolicy::LeastQueueDepth);
    assert_eq!(
        dsm.add_path(&other, PathId::new(1, 2), PortIds::default(), AccessState::ActiveOptimized),
        Err(Error::OutOfMemory),
        "table full"
    );
    let ticket = dsm.start(first, slot, &IO).unwrap();
    dsm.remove_lun(first).unwrap();
    assert_eq!(
        dsm.add_path(&other, PathId::new(1, 2), PortIds::default(), AccessState::ActiveOptimized),
        Err(Error::OutOfMemory),
        "the removed LUN still has I/O in flight"
    );
    dsm.complete(first, ticket, 5, IoOutcome::Success);
    dsm.set_default_policy(LoadBalancePolicy::WeightedPaths);
    let (second, _) =
        dsm.add_path(&other, PathId::new(1, 2), PortIds::default(), AccessState::ActiveOptimized).unwrap();
    assert_ne!(first, second);
    assert!(dsm.lun(first).is_none(), "the old handle does not reach the new LUN");
    assert_eq!(dsm.lun(second).unwrap().policy(), LoadBalancePolicy::WeightedPaths);
    assert_eq!(dsm.lun(second).unwrap().path_info().unwrap().len(), 1);
    assert_eq!(dsm.default_policy(), LoadBalancePolicy::WeightedPaths);
}

#[test]
fn interpret_error_fails_paths_on_fatal_verdicts() {
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let a = identity(&dsm, 1, 1, 1);
    let (lun, pa) = dsm.add_path(&a.key, PathId::new(9, 1), a.ports, AccessState::ActiveOptimized).unwrap();
    let (_, pb) = dsm.add_path(&a.key, PathId::new(9, 2), a.ports, AccessState::ActiveOptimized).unwrap();
    let standby = [0x72, 0x02, 0x04, 0x0B, 0, 0, 0, 0];

    // Retryable: nothing changes.
    let ua = [0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0];
    assert_eq!(dsm.interpret_error(lun, pa, &ua, true, 1).action, SenseAction::Retry);
    assert_eq!(dsm.lun(lun).unwrap().usable_paths(), 2);

    // Standby with another path: fail over, path failed in the engine.
    let v = dsm.interpret_error(lun, pa, &standby, true, 2);
    assert_eq!((v.action, v.reread_alua), (SenseAction::FatalFailover, true));
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pb)));

    // Standby on the last usable path: retry uncounted, path kept.
    let v = dsm.interpret_error(lun, pb, &standby, true, 3);
    assert_eq!((v.action, v.reread_alua), (SenseAction::RetryNoCount, true));
    assert_eq!(dsm.select(lun, &IO), Ok(pb));

    // A transport error that means the path is gone.
    assert_eq!(
        dsm.interpret_transport(lun, pb, TransportError::SelectionTimeout, 4).action,
        SenseAction::FatalFailover
    );
    assert!(dsm.select(lun, &IO).is_err());
    assert_eq!(dsm.interpret_transport(lun, pb, TransportError::Busy, 5).action, SenseAction::Retry);
}

#[test]
fn rtpg_updates_access_states_by_target_port() {
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let a = identity(&dsm, 1, 1, 1);
    let b = identity(&dsm, 1, 2, 2);
    let (lun, pa) = dsm.add_path(&a.key, PathId::new(9, 1), a.ports, AccessState::ActiveOptimized).unwrap();
    let (_, pb) = dsm.add_path(&b.key, PathId::new(9, 2), b.ports, AccessState::ActiveOptimized).unwrap();
    // Group 1 (port 1) optimized, group 2 (port 2) standby.
    let data = rtpg(&[(1, 0x80, &[1]), (2, 0x02, &[2])]);
    assert_eq!(dsm.apply_rtpg(lun, &Rtpg::parse(&data).unwrap()), Ok(1));
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pa)));
    // The array fails over: groups swap.
    let data = rtpg(&[(1, 0x0F, &[1]), (2, 0x00, &[2])]);
    assert_eq!(dsm.apply_rtpg(lun, &Rtpg::parse(&data).unwrap()), Ok(2));
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(pb)));
    let info = dsm.lun(lun).unwrap().path_info().unwrap();
    assert_eq!(info[0].access, AccessState::Transitioning);
    // Port 2 moved to group 5: the path's group follows.
    let data = rtpg(&[(5, 0x01, &[2])]);
    dsm.apply_rtpg(lun, &Rtpg::parse(&data).unwrap()).unwrap();
    assert_eq!(dsm.ports(lun, pb).unwrap().target_port_group, Some(5));
}

#[test]
fn policy_is_persisted_and_restored_and_corrupt_records_are_not_applied() {
    let mut store: MemoryStore<4, 2048> = MemoryStore::new();
    let p1 = PathId::new(9, 1);
    let p2 = PathId::new(9, 2);
    let paths = [
        PathPolicy { path_id: p1, primary: false, weight: 5 },
        PathPolicy { path_id: p2, primary: true, weight: 1 },
    ];
    let key;
    {
        let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
        let a = identity(&dsm, 1, 1, 1);
        key = a.key;
        let (lun, _) = dsm.add_path(&a.key, p1, a.ports, AccessState::ActiveOptimized).unwrap();
        assert_eq!(dsm.restore_policy(lun, &store), Ok(Restored::NoRecord));
        dsm.add_path(&a.key, p2, a.ports, AccessState::ActiveOptimized).unwrap();
        dsm.set_policy(lun, LoadBalancePolicy::FailoverOnly, &paths, &mut store).unwrap();
        assert_eq!(store.len(), 1);
        // A refused set changes neither the LUN nor the store.
        let before = store.clone();
        let bad = [
            PathPolicy { path_id: p1, primary: true, weight: 1 },
            PathPolicy { path_id: p2, primary: true, weight: 1 },
        ];
        assert_eq!(
            dsm.set_policy(lun, LoadBalancePolicy::FailoverOnly, &bad, &mut store).unwrap_err().hresult(),
            HResult::E_INVALIDARG
        );
        let mut x = [0u8; 2048];
        let mut y = [0u8; 2048];
        assert_eq!(store.load(&key, &mut x), before.load(&key, &mut y));
        assert_eq!(x, y);
    }

    // "Reboot": a new DSM, paths arrive one by one.
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, settings());
    let a = identity(&dsm, 1, 1, 1);
    let (lun, _) = dsm.add_path(&a.key, p1, a.ports, AccessState::ActiveOptimized).unwrap();
    // Only p1 is here and the record makes p2 the one primary: not yet.
    assert!(matches!(dsm.restore_policy(lun, &store), Ok(Restored::Deferred(_))));
    assert_eq!(dsm.lun(lun).unwrap().policy(), LoadBalancePolicy::RoundRobin);
    let (_, s2) = dsm.add_path(&a.key, p2, a.ports, AccessState::ActiveOptimized).unwrap();
    assert!(matches!(dsm.restore_policy(lun, &store), Ok(Restored::Applied(_))));
    let snap = dsm.lun(lun).unwrap().load_balance_policy().unwrap();
    assert_eq!(snap.policy, LoadBalancePolicy::FailoverOnly);
    assert_eq!(snap.paths.as_slice(), &paths);
    assert!((0..4).all(|_| dsm.select(lun, &IO) == Ok(s2)));

    // Corrupt the stored record (a torn write): reported, not applied.
    let dsm: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::LeastBlocks, settings());
    let (lun, _) = dsm.add_path(&a.key, p1, a.ports, AccessState::ActiveOptimized).unwrap();
    dsm.add_path(&a.key, p2, a.ports, AccessState::ActiveOptimized).unwrap();
    let raw = store.raw_mut(&key).unwrap();
    let full = raw.clone();
    raw.truncate(full.len() - 7);
    assert_eq!(dsm.restore_policy(lun, &store).unwrap_err().hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert_eq!(dsm.lun(lun).unwrap().policy(), LoadBalancePolicy::LeastBlocks);
    let raw = store.raw_mut(&key).unwrap();
    *raw = full;
    raw[70] ^= 0x10;
    assert_eq!(dsm.restore_policy(lun, &store), Err(Error::ProviderCacheCorrupt));
    assert_eq!(dsm.lun(lun).unwrap().policy(), LoadBalancePolicy::LeastBlocks);
}

static STATIC_DSM: Dsm<2, 4> =
    Dsm::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(10_000_000));

#[test]
fn a_dsm_lives_in_a_static() {
    let key = rsdsm::identity::LunKey::from_unit_serial(b"ACME", b"ARRAY", b"S1");
    let (lun, slot) =
        STATIC_DSM.add_path(&key, PathId::new(1, 1), PortIds::default(), AccessState::Standby).unwrap();
    assert_eq!(STATIC_DSM.select(lun, &IO), Ok(slot));
    let ticket = STATIC_DSM.start(lun, slot, &IO).unwrap();
    STATIC_DSM.complete(lun, ticket, 100, IoOutcome::Success);
    assert_eq!(STATIC_DSM.lun(lun).unwrap().statistics(slot).unwrap().reads, 1);
    assert!(core::mem::size_of::<Dsm<2, 4>>() > 2 * core::mem::size_of::<rsdsm_engine::Lun<4>>());
}

/// Regression: a set without a generation check used to snapshot the LUN
/// before entering the set gate, so when another set completed in between
/// it failed with `VDS_E_PROVIDER_CACHE_CORRUPT` (about 1 in 2,500 racing
/// sets) instead of applying or getting `VDS_E_ANOTHER_CALL_IN_PROGRESS`.
#[test]
fn racing_unconditional_sets_win_or_are_busy_never_cache_corrupt() {
    use rsdsm::identity::{KeyKind, LunKey};
    let dsm = Box::new(Dsm::<2, 4>::new(LoadBalancePolicy::RoundRobin, LunSettings::default()));
    let key = LunKey::from_parts(KeyKind::Naa, &[&[0x60, 1]]);
    let (id, _) =
        dsm.add_path(&key, PathId::new(1, 1), PortIds::default(), AccessState::ActiveOptimized).unwrap();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let dsm = &dsm;
            s.spawn(move || {
                let mut store = MemoryStore::<2, 512>::new();
                for i in 0..100_000u32 {
                    // Jitter, so the two threads' sets overlap in every phase.
                    for _ in 0..(i.wrapping_mul(7919) ^ t) % 97 {
                        std::hint::spin_loop();
                    }
                    let p =
                        [PathPolicy { path_id: PathId::new(1, 1), primary: true, weight: 1 + (i + t) % 7 }];
                    match dsm.set_policy(id, LoadBalancePolicy::WeightedPaths, &p, &mut store) {
                        Ok(_) | Err(Error::AnotherCallInProgress) => {}
                        Err(e) => panic!("set {i} of thread {t}: {e:?}"),
                    }
                }
            });
        }
    });
}
