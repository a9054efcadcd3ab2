//! `SetLoadBalancePolicy` against DESIGN §3: one test per row of the table,
//! each asserting the exact HRESULT and, for every rejected call, that the
//! LUN's policy table did not change.

use rsdsm_engine::{
    AccessState, Error, HResult, Health, Invalid, IoRequest, LoadBalancePolicy, Lun, MAX_WEIGHT, PathFlags,
    PathId, PathPolicy, PathSlot, SupportedPolicies, VendorPolicy,
};

const WRR: LoadBalancePolicy = LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin);

fn id(n: u64) -> PathId {
    PathId::new(0xD5, n)
}

fn pp(n: u64, primary: bool, weight: u32) -> PathPolicy {
    PathPolicy { path_id: id(n), primary, weight }
}

/// A LUN with paths 1..=count, all optimized, under round robin.
fn lun<const N: usize>(count: u64) -> (Lun<N>, Vec<PathSlot>) {
    let lun = Lun::<N>::new(LoadBalancePolicy::RoundRobin);
    let slots = (1..=count).map(|n| lun.add_path(id(n), AccessState::ActiveOptimized).unwrap()).collect();
    (lun, slots)
}

/// Everything a rejected set must leave alone.
type State<const N: usize> = (rsdsm_engine::PolicySnapshot<N>, (LoadBalancePolicy, [u32; N], u64, u64));

fn state<const N: usize>(lun: &Lun<N>) -> State<N> {
    (lun.load_balance_policy().unwrap(), lun.configuration_view())
}

/// Runs a set that must fail with `code`, and checks that nothing changed.
fn rejected<const N: usize>(
    lun: &Lun<N>,
    policy: LoadBalancePolicy,
    paths: &[PathPolicy],
    code: HResult,
) -> Error {
    let before = state(lun);
    let err = lun.set_load_balance_policy(policy, paths).unwrap_err();
    assert_eq!(err.hresult(), code, "{err}");
    assert_eq!(state(lun), before, "a rejected set ({err}) changed the LUN");
    err
}

#[test]
fn applied_returns_s_ok_and_reads_back() {
    let (lun, slots) = lun::<8>(3);
    let before = lun.load_balance_policy().unwrap();
    let paths = [pp(1, true, 10), pp(2, false, 20), pp(3, true, 30)];
    let result = lun.set_load_balance_policy(LoadBalancePolicy::WeightedPaths, &paths);
    assert_eq!(result.map(|_| HResult::S_OK).unwrap_or_else(Error::hresult).0, 0x0000_0000);
    let after = lun.load_balance_policy().unwrap();
    assert_eq!(after.policy, LoadBalancePolicy::WeightedPaths);
    assert!(after.generation > before.generation);
    assert_eq!(after.paths.as_slice(), &paths, "read back in slot order");
    assert_eq!(after.preferred, None);
    let (policy, weights, primary, generation) = lun.configuration_view();
    assert_eq!(policy, LoadBalancePolicy::WeightedPaths);
    assert_eq!(&weights[..3], &[10, 20, 30]);
    assert_eq!(primary, 0b101);
    assert_eq!(generation, after.generation);
    // The new policy is in force: the lowest weight wins.
    assert_eq!(lun.select(&IoRequest::read(512)), Ok(slots[0]));
    // Vendor policies go through the same call.
    let result = lun.set_load_balance_policy(WRR, &[pp(3, false, 1), pp(1, false, 2), pp(2, false, 3)]);
    let generation = result.unwrap();
    let snap = lun.load_balance_policy().unwrap();
    assert_eq!((snap.policy, snap.generation), (WRR, generation));
    assert_eq!(snap.paths.as_slice(), &[pp(1, false, 2), pp(2, false, 3), pp(3, false, 1)]);
}

#[test]
fn unknown_policy_value_is_invalidarg() {
    for (number, vendor) in [(99, 0), (0, 0), (8, 0), (7, 0), (7, 4), (7, 99), (2, 1)] {
        let err = LoadBalancePolicy::from_vds(number, vendor).unwrap_err();
        assert_eq!(err, Error::InvalidArgument(Invalid::UnknownPolicy), "({number}, {vendor})");
        assert_eq!(err.hresult(), HResult::E_INVALIDARG);
        assert_eq!(err.hresult().0, 0x8007_0057);
    }
    // Decoding fails before the LUN is touched, so nothing changes.
    let (lun, _) = lun::<4>(2);
    let before = state(&lun);
    let result = LoadBalancePolicy::from_vds(99, 0).and_then(|p| lun.set_load_balance_policy(p, &[]));
    assert_eq!(result.unwrap_err().hresult(), HResult::E_INVALIDARG);
    assert_eq!(state(&lun), before);
}

#[test]
fn count_mismatch_is_invalidarg() {
    let (lun, _) = lun::<8>(3);
    let err = rejected(
        &lun,
        LoadBalancePolicy::RoundRobin,
        &[pp(1, true, 1), pp(2, true, 1)],
        HResult::E_INVALIDARG,
    );
    assert_eq!(err, Error::InvalidArgument(Invalid::PathCountMismatch));
    assert_eq!(err.hresult().0, 0x8007_0057);
    rejected(&lun, LoadBalancePolicy::RoundRobin, &[], HResult::E_INVALIDARG);
    let four = [pp(1, true, 1), pp(2, true, 1), pp(3, true, 1), pp(4, true, 1)];
    let err = rejected(&lun, LoadBalancePolicy::RoundRobin, &four, HResult::E_INVALIDARG);
    assert_eq!(err, Error::InvalidArgument(Invalid::PathCountMismatch));
}

#[test]
fn duplicate_path_id_is_invalidarg() {
    let (lun, _) = lun::<8>(3);
    let paths = [pp(1, true, 1), pp(2, true, 1), pp(1, false, 2)];
    let err = rejected(&lun, LoadBalancePolicy::RoundRobin, &paths, HResult::E_INVALIDARG);
    assert_eq!(err, Error::InvalidArgument(Invalid::DuplicatePath));
    assert_eq!(err.hresult().0, 0x8007_0057);
}

#[test]
fn unknown_path_id_is_invalidarg() {
    let (lun, _) = lun::<8>(3);
    let paths = [pp(1, true, 1), pp(2, true, 1), pp(9, true, 1)];
    let err = rejected(&lun, LoadBalancePolicy::RoundRobin, &paths, HResult::E_INVALIDARG);
    assert_eq!(err, Error::InvalidArgument(Invalid::UnknownPath));
    assert_eq!(err.hresult().0, 0x8007_0057);
    // Same path number from another DSM instance is another path.
    let foreign =
        [pp(1, true, 1), pp(2, true, 1), PathPolicy { path_id: PathId::new(1, 3), primary: true, weight: 1 }];
    let err = rejected(&lun, LoadBalancePolicy::RoundRobin, &foreign, HResult::E_INVALIDARG);
    assert_eq!(err, Error::InvalidArgument(Invalid::UnknownPath));
}

#[test]
fn no_primary_where_needed_is_invalidarg() {
    let (lun, _) = lun::<8>(3);
    let none = [pp(1, false, 1), pp(2, false, 1), pp(3, false, 1)];
    for policy in [LoadBalancePolicy::FailoverOnly, LoadBalancePolicy::RoundRobinWithSubset] {
        let err = rejected(&lun, policy, &none, HResult::E_INVALIDARG);
        assert_eq!(err, Error::InvalidArgument(Invalid::NoPrimaryPath), "{policy}");
        assert_eq!(err.hresult().0, 0x8007_0057);
    }
    // Policies that do not need one accept the same list.
    for policy in [LoadBalancePolicy::RoundRobin, LoadBalancePolicy::LeastQueueDepth] {
        lun.set_load_balance_policy(policy, &none).unwrap();
    }
}

#[test]
fn failover_only_with_more_than_one_primary_is_invalidarg() {
    let (lun, _) = lun::<8>(3);
    let two = [pp(1, true, 1), pp(2, false, 1), pp(3, true, 1)];
    let err = rejected(&lun, LoadBalancePolicy::FailoverOnly, &two, HResult::E_INVALIDARG);
    assert_eq!(err, Error::InvalidArgument(Invalid::TooManyPrimaryPaths));
    assert_eq!(err.hresult().0, 0x8007_0057);
    // Round robin with subset takes several primaries.
    lun.set_load_balance_policy(LoadBalancePolicy::RoundRobinWithSubset, &two).unwrap();
    // Exactly one is fine for failover only.
    lun.set_load_balance_policy(
        LoadBalancePolicy::FailoverOnly,
        &[pp(1, false, 1), pp(2, false, 1), pp(3, true, 1)],
    )
    .unwrap();
}

#[test]
fn weight_out_of_range_is_invalidarg() {
    let (lun, _) = lun::<8>(2);
    for policy in LoadBalancePolicy::ALL {
        let (low, high) = policy.weight_range();
        assert!(high <= MAX_WEIGHT && low <= 1, "{policy}");
        let mut bad = vec![high.saturating_add(1), u32::MAX];
        if low > 0 {
            bad.push(low - 1);
        }
        for weight in bad {
            let paths = [pp(1, true, weight), pp(2, false, low)];
            let err = rejected(&lun, policy, &paths, HResult::E_INVALIDARG);
            assert_eq!(err, Error::InvalidArgument(Invalid::WeightOutOfRange), "{policy} weight {weight}");
            assert_eq!(err.hresult().0, 0x8007_0057);
        }
        // Both ends of the range are accepted.
        lun.set_load_balance_policy(policy, &[pp(1, true, high), pp(2, false, low)]).unwrap();
        lun.set_load_balance_policy(policy, &[pp(1, true, low), pp(2, false, high)]).unwrap();
    }
    // Share-based vendor policies reject a zero weight; weighted paths accept it.
    assert_eq!(WRR.weight_range(), (1, MAX_WEIGHT));
    assert_eq!(LoadBalancePolicy::WeightedPaths.weight_range(), (0, MAX_WEIGHT));
}

#[test]
fn capacity_exceeded_is_outofmemory() {
    let (lun, _) = lun::<4>(4);
    let five: Vec<_> = (1..=5).map(|n| pp(n, true, 1)).collect();
    let err = rejected(&lun, LoadBalancePolicy::RoundRobin, &five, HResult::E_OUTOFMEMORY);
    assert_eq!(err, Error::OutOfMemory);
    assert_eq!(err.hresult().0, 0x8007_000E);
    // A full table's path arrival fails the same way.
    let err = lun.add_path(id(5), AccessState::ActiveOptimized).unwrap_err();
    assert_eq!(err.hresult(), HResult::E_OUTOFMEMORY);
}

#[test]
fn removed_lun_is_object_deleted() {
    let (lun, _) = lun::<4>(2);
    let paths = [pp(1, true, 1), pp(2, true, 1)];
    lun.remove();
    let err = lun.set_load_balance_policy(LoadBalancePolicy::LeastQueueDepth, &paths).unwrap_err();
    assert_eq!(err, Error::ObjectDeleted);
    assert_eq!(err.hresult(), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(err.hresult().0, 0x8004_240B);
    assert_eq!(lun.load_balance_policy().unwrap_err().hresult(), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(lun.path_info().unwrap_err().hresult(), HResult::VDS_E_OBJECT_DELETED);
    let (policy, ..) = lun.configuration_view();
    assert_eq!(policy, LoadBalancePolicy::RoundRobin, "the rejected set changed nothing");
    assert!(lun.select(&IoRequest::read(512)).is_err());
}

#[test]
fn lun_removed_between_begin_set_and_commit_is_object_deleted() {
    let (lun, _) = lun::<4>(2);
    let paths = [pp(1, true, 1), pp(2, true, 1)];
    let view = lun.configuration_view();
    let pending = lun.begin_set(LoadBalancePolicy::LeastQueueDepth, &paths, None).unwrap();
    lun.remove();
    let err = pending.commit().unwrap_err();
    assert_eq!(err.hresult(), HResult::VDS_E_OBJECT_DELETED);
    assert_eq!(err.hresult().0, 0x8004_240B);
    assert_eq!(lun.configuration_view(), view, "nothing was published");
}

#[test]
fn no_usable_path_is_object_status_failed() {
    let (lun, slots) = lun::<4>(3);
    lun.fail_path(slots[0], 1).unwrap();
    lun.begin_verify(slots[1]).unwrap();
    lun.set_access_state(slots[2], AccessState::Unavailable).unwrap();
    assert_eq!(lun.usable_paths(), 0);
    let paths = [pp(1, true, 1), pp(2, true, 1), pp(3, true, 1)];
    let err = rejected(&lun, LoadBalancePolicy::LeastBlocks, &paths, HResult::VDS_E_OBJECT_STATUS_FAILED);
    assert_eq!(err, Error::ObjectStatusFailed);
    assert_eq!(err.hresult().0, 0x8004_2431);
    // One usable path (even standby) is enough.
    lun.set_access_state(slots[2], AccessState::Standby).unwrap();
    lun.set_load_balance_policy(LoadBalancePolicy::LeastBlocks, &paths).unwrap();
}

#[test]
fn another_set_in_progress_is_rejected_without_blocking() {
    let (lun, _) = lun::<4>(3);
    let first = [pp(1, false, 4), pp(2, true, 5), pp(3, false, 6)];
    let second = [pp(1, true, 1), pp(2, true, 1), pp(3, true, 1)];
    let pending = lun.begin_set(LoadBalancePolicy::WeightedPaths, &first, None).unwrap();
    let before = state(&lun);
    let err = lun.set_load_balance_policy(LoadBalancePolicy::RoundRobin, &second).unwrap_err();
    assert_eq!(err, Error::AnotherCallInProgress);
    assert_eq!(err.hresult(), HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
    assert_eq!(err.hresult().0, 0x8004_2404);
    let err = lun.begin_set(LoadBalancePolicy::RoundRobin, &second, None).unwrap_err();
    assert_eq!(err.hresult(), HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
    assert_eq!(state(&lun), before, "a pending set publishes nothing");
    let generation = pending.commit().unwrap();
    let snap = lun.load_balance_policy().unwrap();
    assert_eq!(snap.policy, LoadBalancePolicy::WeightedPaths);
    assert_eq!(snap.paths.as_slice(), &first);
    assert_eq!(snap.generation, generation);
    // The gate is open again, also after a pending set is dropped.
    drop(lun.begin_set(LoadBalancePolicy::RoundRobin, &second, None).unwrap());
    lun.set_load_balance_policy(LoadBalancePolicy::RoundRobin, &second).unwrap();
}

#[test]
fn expected_generation_mismatch_is_provider_cache_corrupt() {
    let (lun, _) = lun::<4>(2);
    let paths = [pp(1, true, 1), pp(2, true, 1)];
    let stale = lun.load_balance_policy().unwrap().generation;
    lun.set_load_balance_policy(LoadBalancePolicy::LeastQueueDepth, &paths).unwrap();
    let before = state(&lun);
    let err = lun.begin_set(LoadBalancePolicy::RoundRobin, &paths, Some(stale)).unwrap_err();
    assert_eq!(err, Error::ProviderCacheCorrupt);
    assert_eq!(err.hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert_eq!(err.hresult().0, 0x8004_241F);
    assert_eq!(state(&lun), before);
    // A path arrival also moves the generation.
    let current = lun.load_balance_policy().unwrap().generation;
    lun.add_path(id(3), AccessState::ActiveOptimized).unwrap();
    let three = [pp(1, true, 1), pp(2, true, 1), pp(3, true, 1)];
    let err = lun.begin_set(LoadBalancePolicy::RoundRobin, &three, Some(current)).unwrap_err();
    assert_eq!(err.hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    // The current generation is accepted.
    let current = lun.load_balance_policy().unwrap().generation;
    let generation =
        lun.begin_set(LoadBalancePolicy::RoundRobin, &three, Some(current)).unwrap().commit().unwrap();
    assert_eq!(generation, current + 1);
}

#[test]
fn path_info_reports_every_path() {
    let (lun, slots) = lun::<8>(3);
    lun.set_access_state(slots[1], AccessState::Standby).unwrap();
    lun.fail_path(slots[2], 5).unwrap();
    lun.set_load_balance_policy(
        LoadBalancePolicy::FailoverOnly,
        &[pp(1, false, 7), pp(2, true, 8), pp(3, false, 9)],
    )
    .unwrap();
    lun.set_preferred_path(Some(slots[0])).unwrap();
    let ticket = lun.dispatch(&IoRequest::read(512)).unwrap();
    assert_eq!(ticket.slot(), slots[0], "failover only uses the preferred path");
    let info = lun.path_info().unwrap();
    assert_eq!(info.len(), 3);
    let ids: Vec<_> = info.iter().map(|i| i.path_id).collect();
    assert_eq!(ids, [id(1), id(2), id(3)]);
    assert_eq!(info.iter().map(|i| i.slot).collect::<Vec<_>>(), slots);
    assert_eq!(info[0].flags, PathFlags::PREFERRED);
    assert_eq!(info[1].flags, PathFlags::PRIMARY);
    assert_eq!(info[2].flags, PathFlags::empty());
    assert_eq!([info[0].weight, info[1].weight, info[2].weight], [7, 8, 9]);
    assert_eq!([info[0].access, info[1].access], [AccessState::ActiveOptimized, AccessState::Standby]);
    assert_eq!([info[0].health, info[2].health], [Health::Healthy, Health::Failed]);
    assert_eq!([info[0].usable, info[1].usable, info[2].usable], [true, true, false]);
    assert_eq!([info[0].in_flight, info[1].in_flight], [1, 0]);
    assert_eq!(lun.load_balance_policy().unwrap().preferred, Some(id(1)));
    lun.complete(ticket, 1, rsdsm_engine::IoOutcome::Success);
    assert_eq!(lun.path_info().unwrap()[0].in_flight, 0);
}

#[test]
fn supported_policies_are_the_vds_lbf_flags() {
    let supported = Lun::<4>::supported_policies();
    assert_eq!(supported.bits(), 0x7F);
    let expected = [
        (LoadBalancePolicy::FailoverOnly, SupportedPolicies::FAILOVER, 0x1),
        (LoadBalancePolicy::RoundRobin, SupportedPolicies::ROUND_ROBIN, 0x2),
        (LoadBalancePolicy::RoundRobinWithSubset, SupportedPolicies::ROUND_ROBIN_WITH_SUBSET, 0x4),
        (LoadBalancePolicy::LeastQueueDepth, SupportedPolicies::DYN_LEAST_QUEUE_DEPTH, 0x8),
        (LoadBalancePolicy::WeightedPaths, SupportedPolicies::WEIGHTED_PATHS, 0x10),
        (LoadBalancePolicy::LeastBlocks, SupportedPolicies::LEAST_BLOCKS, 0x20),
        (WRR, SupportedPolicies::VENDOR_SPECIFIC, 0x40),
    ];
    for (policy, flag, bits) in expected {
        assert_eq!(flag.bits(), bits);
        assert_eq!(SupportedPolicies::of(policy), flag, "{policy}");
        assert!(supported.contains(flag));
        assert_eq!(1 << (policy.vds_number() - 1), bits);
    }
    for policy in LoadBalancePolicy::ALL {
        assert!(supported.contains(SupportedPolicies::of(policy)), "{policy}");
    }
}
