//! Golden layouts, rejection of every malformed variant, and round trips.

extern crate std;

use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::{
    AccessState, Health, Invalid, PathFlags, PathId, PathInfo, PathSlot, PathStatistics, SupportedPolicies,
};

// ---------------------------------------------------------------- helpers

fn encode_request(request: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_REQUEST_SIZE];
    let n = request.encode(&mut buf).unwrap();
    assert_eq!(n, request.encoded_len());
    buf[..n].to_vec()
}

fn encode_reply(reply: &Reply<'_>) -> Vec<u8> {
    let mut buf = std::vec![0u8; MAX_REPLY_SIZE];
    let n = reply.encode(&mut buf).unwrap();
    assert_eq!(n, reply.encoded_len());
    buf[..n].to_vec()
}

fn encode_failure(opcode: Opcode, status: HResult) -> Vec<u8> {
    let mut buf = [0u8; HEADER_SIZE];
    let n = encode_error(opcode, status, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn header(opcode: u8, total: u8, status: [u8; 4]) -> [u8; 16] {
    let [s0, s1, s2, s3] = status;
    [b'R', b'S', b'D', b'M', 1, 0, opcode, 0, total, 0, 0, 0, s0, s1, s2, s3]
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// Rewrites the header's `total_size` to the buffer's length.
fn fix_size(buf: &mut [u8]) {
    let len = u32::try_from(buf.len()).unwrap();
    buf[8..12].copy_from_slice(&len.to_le_bytes());
}

fn decode_any_reply(opcode: Opcode, buf: &[u8]) -> Result<(), WireError> {
    Reply::decode(opcode, buf).map(|_| ())
}

// ---------------------------------------------------------------- golden messages

const PATHS: [PathPolicy; 2] = [
    PathPolicy { path_id: PathId::new(1, 2), primary: true, weight: 10 },
    PathPolicy { path_id: PathId::new(1, 3), primary: false, weight: 20 },
];

fn golden_get_version_request() -> Vec<u8> {
    header(1, 16, [0; 4]).to_vec()
}

fn set_policy_request() -> Request<'static> {
    Request::SetPolicy {
        lun: LunId(5),
        policy: LoadBalancePolicy::FailoverOnly.into(),
        expected_generation: Some(7),
        paths: Records::Typed(&PATHS),
    }
}

#[rustfmt::skip]
fn golden_set_policy_request() -> Vec<u8> {
    std::vec![
        b'R', b'S', b'D', b'M', 1, 0, 4, 0, 96, 0, 0, 0, 0, 0, 0, 0,
        5, 0, 0, 0, 0, 0, 0, 0,     // lun
        1, 0, 0, 0,                 // policy: failover only
        0, 0, 0, 0,                 // vendor
        7, 0, 0, 0, 0, 0, 0, 0,     // expected generation
        1, 0, 0, 0,                 // flags: CHECK_GENERATION
        2, 0, 0, 0,                 // count
        1, 0, 0, 0, 0, 0, 0, 0,  2, 0, 0, 0, 0, 0, 0, 0,  1, 0, 0, 0,  10, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0,  3, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0,  20, 0, 0, 0,
    ]
}

const POLICY_PATHS: [PathPolicy; 2] = [
    PathPolicy { path_id: PathId::new(9, 1), primary: true, weight: 1 },
    PathPolicy { path_id: PathId::new(9, 2), primary: false, weight: 3 },
];

fn get_policy_reply() -> Reply<'static> {
    Reply::GetPolicy {
        policy: LoadBalancePolicy::VendorSpecific(crate::VendorPolicy::ServiceTime).into(),
        generation: 0x0102_0304_0506_0708,
        preferred: Some(PathId::new(9, 1)),
        paths: Records::Typed(&POLICY_PATHS),
    }
}

#[rustfmt::skip]
fn golden_get_policy_reply() -> Vec<u8> {
    std::vec![
        b'R', b'S', b'D', b'M', 1, 0, 3, 0, 104, 0, 0, 0, 0, 0, 0, 0,
        7, 0, 0, 0,                 // policy: vendor specific
        2, 0, 0, 0,                 // vendor: service time
        8, 7, 6, 5, 4, 3, 2, 1,     // generation
        1, 0, 0, 0,                 // preferred present
        2, 0, 0, 0,                 // count
        9, 0, 0, 0, 0, 0, 0, 0,     // preferred source id
        1, 0, 0, 0, 0, 0, 0, 0,     // preferred path id
        9, 0, 0, 0, 0, 0, 0, 0,  1, 0, 0, 0, 0, 0, 0, 0,  1, 0, 0, 0,  1, 0, 0, 0,
        9, 0, 0, 0, 0, 0, 0, 0,  2, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0,  3, 0, 0, 0,
    ]
}

fn golden_error_reply() -> Vec<u8> {
    header(3, 16, [0x0B, 0x24, 0x04, 0x80]).to_vec()
}

const PATH_INFO: [PathInfo; 1] = [PathInfo {
    path_id: PathId::new(0x11, 0x22),
    slot: PathSlot(4),
    access: AccessState::ActiveNonOptimized,
    health: Health::Failed,
    flags: PathFlags::PRIMARY,
    weight: 5,
    in_flight: 3,
    usable: false,
    held_down_until: Some(1000),
}];

#[rustfmt::skip]
fn golden_path_info_reply() -> Vec<u8> {
    std::vec![
        b'R', b'S', b'D', b'M', 1, 0, 5, 0, 64, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0,                 // count
        0, 0, 0, 0,                 // reserved
        0x11, 0, 0, 0, 0, 0, 0, 0,  // source id
        0x22, 0, 0, 0, 0, 0, 0, 0,  // path id
        5, 0, 0, 0,                 // weight
        3, 0, 0, 0,                 // in flight
        1,                          // access: active/non-optimized
        1,                          // health: failed
        0b1001,                     // flags: primary | held down
        4,                          // slot
        0, 0, 0, 0,                 // reserved
        0xE8, 0x03, 0, 0, 0, 0, 0, 0, // held down until 1000
    ]
}

const LUNS: [LunEntry; 1] = [LunEntry {
    lun: LunId(10),
    policy: RawPolicy { number: 2, vendor: 0 },
    paths: 4,
    usable_paths: 3,
    removed: true,
    identity: *b"0123456789abcdef",
}];

#[rustfmt::skip]
fn golden_list_luns_reply() -> Vec<u8> {
    cat(&[
        &[b'R', b'S', b'D', b'M', 1, 0, 2, 0, 72, 0, 0, 0, 0, 0, 0, 0],
        &[1, 0, 0, 0, 0, 0, 0, 0],          // count, reserved
        &[10, 0, 0, 0, 0, 0, 0, 0],         // lun
        &[2, 0, 0, 0, 0, 0, 0, 0],          // policy round robin, vendor 0
        &[4, 0, 0, 0, 3, 0, 0, 0],          // paths, usable paths
        &[1, 0, 0, 0, 0, 0, 0, 0],          // flags: removed, reserved
        b"0123456789abcdef",                // identity
    ])
}

const VERSION: VersionInfo = VersionInfo {
    protocol: 1,
    driver_major: 0,
    driver_minor: 1,
    driver_patch: 2,
    max_paths_per_lun: 32,
    max_luns: 256,
};

#[rustfmt::skip]
fn golden_version_reply() -> Vec<u8> {
    std::vec![
        b'R', b'S', b'D', b'M', 1, 0, 1, 0, 36, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0,  0, 0, 1, 0,  2, 0, 0, 0,  32, 0, 0, 0,  0, 1, 0, 0,
    ]
}

fn golden_requests() -> Vec<(Vec<u8>, Request<'static>)> {
    std::vec![
        (golden_get_version_request(), Request::GetVersion),
        (golden_set_policy_request(), set_policy_request()),
        (cat(&[&header(3, 24, [0; 4]), &le64(0x0102)]), Request::GetPolicy { lun: LunId(0x0102) }),
        (
            cat(&[&header(8, 24, [0; 4]), &le32(7), &le32(3)]),
            Request::SetDefaultPolicy { policy: RawPolicy { number: 7, vendor: 3 } }
        ),
    ]
}

fn golden_replies() -> Vec<(Opcode, Vec<u8>, Result<Reply<'static>, HResult>)> {
    std::vec![
        (Opcode::GetPolicy, golden_get_policy_reply(), Ok(get_policy_reply())),
        (Opcode::GetPolicy, golden_error_reply(), Err(HResult::VDS_E_OBJECT_DELETED)),
        (Opcode::GetPathInfo, golden_path_info_reply(), Ok(Reply::GetPathInfo(Records::Typed(&PATH_INFO)))),
        (Opcode::ListLuns, golden_list_luns_reply(), Ok(Reply::ListLuns(Records::Typed(&LUNS)))),
        (Opcode::GetVersion, golden_version_reply(), Ok(Reply::GetVersion(VERSION))),
        (Opcode::SetPolicy, cat(&[&header(4, 24, [0; 4]), &le64(9)]), Ok(Reply::SetPolicy { generation: 9 })),
        (Opcode::SetDefaultPolicy, header(8, 16, [0; 4]).to_vec(), Ok(Reply::SetDefaultPolicy)),
        (
            Opcode::GetSupportedPolicies,
            cat(&[&header(9, 24, [0; 4]), &le32(0x7F), &le32(0b1110)]),
            Ok(Reply::GetSupportedPolicies { policies: SupportedPolicies::all(), vendor_mask: 0b1110 }),
        ),
    ]
}

// ---------------------------------------------------------------- IOCTL codes

#[test]
fn ioctl_codes_are_the_ctl_code_values() {
    assert_eq!(ctl_code(0x8A5D, 0x804, 0, 2), 0x8A5D_A010);
    assert_eq!(ctl_code(0x0022, 0x800, 0, 0), 0x0022_2000);
    assert_eq!(IOCTL_RSDSM_GET_VERSION, 0x8A5D_6004);
    assert_eq!(IOCTL_RSDSM_LIST_LUNS, 0x8A5D_6008);
    assert_eq!(IOCTL_RSDSM_GET_POLICY, 0x8A5D_600C);
    assert_eq!(IOCTL_RSDSM_SET_POLICY, 0x8A5D_A010);
    assert_eq!(IOCTL_RSDSM_GET_PATH_INFO, 0x8A5D_6014);
    assert_eq!(IOCTL_RSDSM_GET_STATISTICS, 0x8A5D_6018);
    assert_eq!(IOCTL_RSDSM_GET_DEFAULT_POLICY, 0x8A5D_601C);
    assert_eq!(IOCTL_RSDSM_SET_DEFAULT_POLICY, 0x8A5D_A020);
    assert_eq!(IOCTL_RSDSM_GET_SUPPORTED_POLICIES, 0x8A5D_6024);
}

#[test]
fn opcodes_round_trip_through_ioctl_codes_only_exactly() {
    for (i, op) in Opcode::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(op.raw()), i + 1);
        assert_eq!(Opcode::from_raw(op.raw()), Some(op));
        assert_eq!(Opcode::from_ioctl(op.ioctl()), Some(op));
        assert_eq!(op.ioctl() & 3, METHOD_BUFFERED);
        assert_eq!(op.ioctl() >> 16, FILE_DEVICE_RSDSM);
        let access = if op.is_change() { FILE_WRITE_ACCESS } else { FILE_READ_ACCESS };
        assert_eq!(op.required_access(), access);
        assert_eq!((op.ioctl() >> 14) & 3, access);
        // Same function with any other access or method is not ours.
        for other in [0, 1, 2, 3] {
            if other != access {
                assert_eq!(
                    Opcode::from_ioctl(ctl_code(FILE_DEVICE_RSDSM, 0x800 + u32::from(op.raw()), 0, other)),
                    None
                );
            }
            if other != METHOD_BUFFERED {
                assert_eq!(Opcode::from_ioctl(op.ioctl() | other), None);
            }
        }
    }
    assert!(Opcode::SetPolicy.is_change() && Opcode::SetDefaultPolicy.is_change());
    assert_eq!(Opcode::ALL.iter().filter(|op| op.is_change()).count(), 2);
    assert_eq!(Opcode::from_raw(0), None);
    assert_eq!(Opcode::from_raw(10), None);
    assert_eq!(Opcode::from_ioctl(0), None);
}

#[test]
fn device_names() {
    assert_eq!(DEVICE_NAME, r"\Device\RsdsmControl");
    assert_eq!(DOS_DEVICE_NAME, r"\DosDevices\RsdsmControl");
    assert_eq!(USER_DEVICE_PATH, r"\\.\RsdsmControl");
}

#[test]
fn size_bounds_are_the_largest_messages() {
    assert_eq!(MAX_REQUEST_SIZE, 16 + 32 + 64 * 24);
    assert_eq!(MAX_REPLY_SIZE, 16 + 8 + 64 * 336);
    assert_eq!(<PathStatisticsEntry as Record>::SIZE, 336);
    for op in Opcode::ALL {
        assert!(op.max_request_size() <= MAX_REQUEST_SIZE);
        assert!(op.max_reply_size() <= MAX_REPLY_SIZE);
    }
    assert_eq!(Opcode::ListLuns.max_reply_size(), 16 + 8 + 256 * 48);
    // A full SetPolicy fills MAX_REQUEST_SIZE exactly.
    let paths = [PathPolicy::default(); 64];
    let full = Request::SetPolicy {
        lun: LunId(1),
        policy: RawPolicy::default(),
        expected_generation: None,
        paths: Records::Typed(&paths),
    };
    assert_eq!(encode_request(&full).len(), MAX_REQUEST_SIZE);
    let stats = std::vec![PathStatisticsEntry::default(); 64];
    assert_eq!(encode_reply(&Reply::GetStatistics(Records::Typed(&stats))).len(), MAX_REPLY_SIZE);
}

// ---------------------------------------------------------------- golden layouts

#[test]
fn golden_get_version_request_layout() {
    assert_eq!(encode_request(&Request::GetVersion), golden_get_version_request());
    assert_eq!(Request::decode(&golden_get_version_request()), Ok(Request::GetVersion));
}

#[test]
fn golden_set_policy_request_layout() {
    let golden = golden_set_policy_request();
    assert_eq!(encode_request(&set_policy_request()), golden);
    let decoded = Request::decode(&golden).unwrap();
    assert_eq!(decoded, set_policy_request());
    let Request::SetPolicy { paths: PathPolicies::Encoded(list), .. } = decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(list.len(), 2);
    assert_eq!(list.get(1), Some(PATHS[1]));
    assert_eq!(list.get(2), None);
    assert!(list.iter().eq(PATHS));
    assert_eq!(list.as_bytes(), &golden[48..]);
}

#[test]
fn golden_reply_layouts() {
    for (opcode, golden, value) in golden_replies() {
        let encoded = match value {
            Ok(reply) => {
                assert_eq!(reply.opcode(), opcode);
                encode_reply(&reply)
            }
            Err(status) => encode_failure(opcode, status),
        };
        assert_eq!(encoded, golden, "{opcode}");
        assert_eq!(Reply::decode(opcode, &golden), Ok(value), "{opcode}");
    }
}

#[test]
fn golden_request_layouts() {
    for (golden, value) in golden_requests() {
        assert_eq!(encode_request(&value), golden);
        assert_eq!(Request::decode(&golden), Ok(value));
        assert_eq!(Request::decode_for(value.opcode(), &golden), Ok(value));
    }
}

#[test]
fn golden_path_info_entry_layout() {
    let golden = golden_path_info_reply();
    let Ok(Ok(Reply::GetPathInfo(list))) = Reply::decode(Opcode::GetPathInfo, &golden) else { panic!() };
    let info = list.get(0).unwrap();
    assert_eq!(info, PATH_INFO[0]);
    assert_eq!(info.slot.index(), 4);
    assert_eq!(info.held_down_until, Some(1000));
}

// ---------------------------------------------------------------- rejection

#[test]
fn every_truncation_and_extension_is_rejected() {
    for (golden, _) in golden_requests() {
        for n in 0..golden.len() {
            assert!(Request::decode(&golden[..n]).is_err(), "request truncated to {n}");
            let mut short = golden[..n].to_vec();
            if n >= HEADER_SIZE {
                fix_size(&mut short);
                assert!(Request::decode(&short).is_err(), "request cut to {n}, size fixed");
            }
        }
        let mut long = cat(&[&golden, &[0]]);
        assert_eq!(
            Request::decode(&long),
            Err(WireError::SizeMismatch {
                declared: u32::try_from(golden.len()).unwrap(),
                actual: long.len()
            })
        );
        fix_size(&mut long);
        assert_eq!(Request::decode(&long), Err(WireError::LengthMismatch));
    }
    for (opcode, golden, _) in golden_replies() {
        for n in 0..golden.len() {
            assert!(decode_any_reply(opcode, &golden[..n]).is_err(), "{opcode} truncated to {n}");
            let mut short = golden[..n].to_vec();
            if n >= HEADER_SIZE {
                fix_size(&mut short);
                assert!(decode_any_reply(opcode, &short).is_err(), "{opcode} cut to {n}, size fixed");
            }
        }
        let mut long = cat(&[&golden, &[0]]);
        assert!(matches!(decode_any_reply(opcode, &long), Err(WireError::SizeMismatch { .. })));
        fix_size(&mut long);
        assert_eq!(decode_any_reply(opcode, &long), Err(WireError::LengthMismatch), "{opcode}");
    }
}

#[test]
fn header_errors_are_specific() {
    let good = golden_get_version_request();
    assert_eq!(Request::decode(&good[..5]), Err(WireError::Truncated { needed: 16, available: 5 }));

    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Request::decode(&bad), Err(WireError::BadMagic));

    let mut bad = good.clone();
    bad[4] = 2;
    assert_eq!(Request::decode(&bad), Err(WireError::UnsupportedVersion(2)));

    let mut bad = good.clone();
    bad[6] = 10;
    assert_eq!(Request::decode(&bad), Err(WireError::UnknownOpcode(10)));
    assert_eq!(WireError::UnknownOpcode(10).hresult(), HResult::E_INVALID_FUNCTION);

    let mut bad = good.clone();
    bad[8] = 17;
    assert_eq!(Request::decode(&bad), Err(WireError::SizeMismatch { declared: 17, actual: 16 }));
    bad[8..12].copy_from_slice(&le32(u32::MAX));
    assert_eq!(Request::decode(&bad), Err(WireError::SizeMismatch { declared: u32::MAX, actual: 16 }));

    let mut bad = good.clone();
    bad[12] = 1;
    assert_eq!(Request::decode(&bad), Err(WireError::ReservedNotZero), "request status is reserved");

    assert_eq!(
        Request::decode_for(Opcode::SetPolicy, &good),
        Err(WireError::OpcodeMismatch { expected: Opcode::SetPolicy, found: 1 })
    );
}

#[test]
fn set_policy_body_errors_are_specific() {
    let good = golden_set_policy_request();
    // flags at body offset 24 = message offset 40
    let mut bad = good.clone();
    bad[40] = 0b11;
    assert_eq!(Request::decode(&bad), Err(WireError::BadFlags));
    bad[40] = 0;
    assert_eq!(Request::decode(&bad), Err(WireError::ReservedNotZero), "generation without the flag");
    bad[32..40].fill(0);
    assert!(matches!(Request::decode(&bad), Ok(Request::SetPolicy { expected_generation: None, .. })));

    // first entry's BOOL at message offset 48 + 16
    let mut bad = good.clone();
    bad[64] = 2;
    assert_eq!(Request::decode(&bad), Err(WireError::BadBool));

    // count at message offset 44
    let mut bad = good.clone();
    bad[44] = 65;
    assert_eq!(Request::decode(&bad), Err(WireError::CountTooLarge { count: 65, max: 64 }));
    bad[44..48].copy_from_slice(&le32(u32::MAX));
    assert_eq!(Request::decode(&bad), Err(WireError::CountTooLarge { count: u32::MAX, max: 64 }));
    bad[44..48].copy_from_slice(&le32(3));
    assert_eq!(Request::decode(&bad), Err(WireError::Truncated { needed: 48 + 72, available: 96 }));
    bad[44..48].copy_from_slice(&le32(1));
    assert_eq!(Request::decode(&bad), Err(WireError::LengthMismatch));

    // An unknown policy is the engine's business, not the codec's.
    let mut unknown = good.clone();
    unknown[24] = 8;
    let Ok(Request::SetPolicy { policy, .. }) = Request::decode(&unknown) else { panic!() };
    assert_eq!(policy.policy(), Err(Error::InvalidArgument(Invalid::UnknownPolicy)));
    assert_eq!(policy.policy().unwrap_err().hresult(), HResult::E_INVALIDARG);
}

#[test]
fn reply_errors_are_specific() {
    let policy = golden_get_policy_reply();
    assert_eq!(
        Reply::decode(Opcode::GetPathInfo, &policy),
        Err(WireError::OpcodeMismatch { expected: Opcode::GetPathInfo, found: 3 })
    );
    let mut bad = policy.clone();
    bad[12] = 1; // S_FALSE: a success code other than S_OK
    assert_eq!(Reply::decode(Opcode::GetPolicy, &bad), Err(WireError::BadValue));
    let mut bad = policy.clone();
    bad[32] = 2; // preferred_present
    assert_eq!(Reply::decode(Opcode::GetPolicy, &bad), Err(WireError::BadBool));
    bad[32] = 0;
    assert_eq!(
        Reply::decode(Opcode::GetPolicy, &bad),
        Err(WireError::ReservedNotZero),
        "preferred without the flag"
    );
    let mut bad = policy.clone();
    bad[36] = 65;
    assert_eq!(Reply::decode(Opcode::GetPolicy, &bad), Err(WireError::CountTooLarge { count: 65, max: 64 }));

    // An error reply carries no body.
    let mut bad = cat(&[&golden_error_reply(), &[0; 8]]);
    fix_size(&mut bad);
    assert_eq!(Reply::decode(Opcode::GetPolicy, &bad), Err(WireError::LengthMismatch));

    let info = golden_path_info_reply();
    for (offset, value, error) in [
        (20, 1, WireError::ReservedNotZero), // list reserved
        (48, 7, WireError::BadValue),        // access
        (49, 4, WireError::BadValue),        // health
        (50, 0x10, WireError::BadFlags),     // flags
        (51, 64, WireError::BadValue),       // slot
        (52, 1, WireError::ReservedNotZero), // entry reserved
    ] {
        let mut bad = info.clone();
        bad[offset] = value;
        assert_eq!(Reply::decode(Opcode::GetPathInfo, &bad), Err(error), "offset {offset}");
    }
    let mut bad = info.clone();
    bad[50] = PATH_FLAG_PRIMARY; // held_down_until set without the flag
    assert_eq!(Reply::decode(Opcode::GetPathInfo, &bad), Err(WireError::ReservedNotZero));

    let luns = golden_list_luns_reply();
    let mut bad = luns.clone();
    bad[16..20].copy_from_slice(&le32(257));
    assert_eq!(Reply::decode(Opcode::ListLuns, &bad), Err(WireError::CountTooLarge { count: 257, max: 256 }));
    for (offset, value, error) in [
        (48, 2, WireError::BadFlags),        // flags
        (52, 1, WireError::ReservedNotZero), // reserved
        (44, 5, WireError::BadValue),        // usable > paths
        (40, 65, WireError::BadValue),       // paths > MAX_PATHS
    ] {
        let mut bad = luns.clone();
        bad[offset] = value;
        assert_eq!(Reply::decode(Opcode::ListLuns, &bad), Err(error), "offset {offset}");
    }

    let mut bad = golden_version_reply();
    bad[18] = 1;
    assert_eq!(Reply::decode(Opcode::GetVersion, &bad), Err(WireError::ReservedNotZero));

    let mut bad = cat(&[&header(9, 24, [0; 4]), &le32(0x80), &le32(0)]);
    assert_eq!(Reply::decode(Opcode::GetSupportedPolicies, &bad), Err(WireError::BadFlags));
    bad[16] = 0x40;
    assert!(Reply::decode(Opcode::GetSupportedPolicies, &bad).is_ok());
}

#[test]
fn wire_errors_map_to_hresults() {
    assert_eq!(WireError::OutputTooSmall { needed: 1 }.hresult(), HResult::E_NOT_SUFFICIENT_BUFFER);
    assert_eq!(WireError::UnknownOpcode(0).hresult(), HResult::E_INVALID_FUNCTION);
    for e in [
        WireError::Truncated { needed: 1, available: 0 },
        WireError::BadMagic,
        WireError::UnsupportedVersion(2),
        WireError::SizeMismatch { declared: 1, actual: 2 },
        WireError::ReservedNotZero,
        WireError::BadFlags,
        WireError::BadBool,
        WireError::BadValue,
        WireError::CountTooLarge { count: 65, max: 64 },
        WireError::LengthMismatch,
        WireError::OpcodeMismatch { expected: Opcode::GetVersion, found: 2 },
    ] {
        assert_eq!(e.hresult(), HResult::E_INVALIDARG);
        assert!(!std::format!("{e}").is_empty());
    }
    assert_eq!(
        std::format!("{}", WireError::CountTooLarge { count: 65, max: 64 }),
        "count 65 exceeds the limit 64"
    );
}

// ---------------------------------------------------------------- encoding limits

#[test]
fn encode_into_a_short_buffer_writes_nothing() {
    let request = set_policy_request();
    let len = request.encoded_len();
    for n in 0..len {
        let mut buf = [0xAAu8; MAX_REQUEST_SIZE];
        assert_eq!(request.encode(&mut buf[..n]), Err(WireError::OutputTooSmall { needed: len }));
        assert!(buf.iter().all(|&b| b == 0xAA));
    }
    let mut buf = [0xAAu8; 15];
    assert_eq!(
        encode_error(Opcode::GetVersion, HResult::E_INVALIDARG, &mut buf),
        Err(WireError::OutputTooSmall { needed: 16 })
    );
    assert!(buf.iter().all(|&b| b == 0xAA));
    assert_eq!(encode_error(Opcode::GetVersion, HResult::S_OK, &mut [0; 16]), Err(WireError::BadValue));
}

#[test]
fn encode_rejects_oversized_lists() {
    let paths = [PathPolicy::default(); 65];
    let request = Request::SetPolicy {
        lun: LunId(1),
        policy: RawPolicy::default(),
        expected_generation: None,
        paths: Records::Typed(&paths),
    };
    let mut buf = std::vec![0xAAu8; 4096];
    assert_eq!(request.encode(&mut buf), Err(WireError::CountTooLarge { count: 65, max: 64 }));
    assert!(buf.iter().all(|&b| b == 0xAA));
    let luns = [LunEntry::default(); 257];
    let mut buf = std::vec![0u8; 32 * 1024];
    assert_eq!(
        Reply::ListLuns(Records::Typed(&luns)).encode(&mut buf),
        Err(WireError::CountTooLarge { count: 257, max: 256 })
    );
}

#[test]
fn list_writer_reserves_first_and_writes_the_header_last() {
    let entry = PathStatisticsEntry {
        path_id: PathId::new(1, 2),
        statistics: PathStatistics { reads: 3, histogram: [4; 32], ..PathStatistics::default() },
    };
    let mut small = std::vec![0xAAu8; 16 + 8 + 336 * 2 - 1];
    assert_eq!(
        ListWriter::<PathStatisticsEntry>::new(&mut small, 2).err(),
        Some(WireError::OutputTooSmall { needed: 16 + 8 + 336 * 2 })
    );
    assert!(small.iter().all(|&b| b == 0xAA));
    assert_eq!(
        ListWriter::<PathInfo>::new(&mut small, 65).err(),
        Some(WireError::CountTooLarge { count: 65, max: 64 })
    );

    let mut out = std::vec![0u8; MAX_REPLY_SIZE];
    let mut w = ListWriter::<PathStatisticsEntry>::new(&mut out, 2).unwrap();
    assert!(w.is_empty());
    w.push(&entry).unwrap();
    w.push(&entry).unwrap();
    assert_eq!(w.push(&entry), Err(WireError::CountTooLarge { count: 3, max: 2 }));
    assert_eq!(w.len(), 2);
    let n = w.finish();
    assert_eq!(n, 16 + 8 + 2 * 336);
    let typed = [entry; 2];
    assert_eq!(&out[..n], &encode_reply(&Reply::GetStatistics(Records::Typed(&typed)))[..]);

    // Fewer records than reserved, and the LUN list.
    let mut w = ListWriter::<LunEntry>::new(&mut out, 256).unwrap();
    w.push(&LUNS[0]).unwrap();
    let n = w.finish();
    assert_eq!(&out[..n], &golden_list_luns_reply()[..]);
}

#[test]
fn snapshot_reply_and_vec_conversion() {
    let lun: crate::Lun<4> = crate::Lun::new(LoadBalancePolicy::RoundRobin);
    lun.add_path(PathId::new(1, 1), AccessState::ActiveOptimized).unwrap();
    lun.add_path(PathId::new(1, 2), AccessState::ActiveOptimized).unwrap();
    let snapshot = lun.load_balance_policy().unwrap();
    let bytes = encode_reply(&Reply::from_snapshot(&snapshot));
    let Ok(Ok(Reply::GetPolicy { policy, generation, preferred, paths })) =
        Reply::decode(Opcode::GetPolicy, &bytes)
    else {
        panic!()
    };
    assert_eq!(policy.policy(), Ok(LoadBalancePolicy::RoundRobin));
    assert_eq!(generation, snapshot.generation);
    assert_eq!(preferred, None);
    let copied = paths.to_vec::<4>().unwrap();
    assert_eq!(&copied[..], &snapshot.paths[..]);
    assert_eq!(paths.to_vec::<1>(), Err(Error::OutOfMemory));
    // The decoded list feeds SetLoadBalancePolicy directly.
    assert!(lun.set_load_balance_policy(LoadBalancePolicy::LeastQueueDepth, &copied).is_ok());
}

#[test]
fn raw_policy_round_trips_every_engine_policy() {
    for policy in LoadBalancePolicy::ALL {
        assert_eq!(RawPolicy::from(policy).policy(), Ok(policy));
    }
    assert!(RawPolicy { number: 0, vendor: 0 }.policy().is_err());
    assert!(RawPolicy { number: 1, vendor: 1 }.policy().is_err());
}

// ---------------------------------------------------------------- properties

fn path_id() -> impl Strategy<Value = PathId> {
    (any::<u64>(), any::<u64>()).prop_map(|(s, p)| PathId::new(s, p))
}

fn raw_policy() -> impl Strategy<Value = RawPolicy> {
    prop_oneof![
        prop::sample::select(LoadBalancePolicy::ALL.to_vec()).prop_map(RawPolicy::from),
        (any::<u32>(), any::<u32>()).prop_map(|(number, vendor)| RawPolicy { number, vendor }),
    ]
}

fn path_policy() -> impl Strategy<Value = PathPolicy> {
    (path_id(), any::<bool>(), any::<u32>()).prop_map(|(path_id, primary, weight)| PathPolicy {
        path_id,
        primary,
        weight,
    })
}

fn path_info() -> impl Strategy<Value = PathInfo> {
    let access = prop::sample::select(std::vec![
        AccessState::ActiveOptimized,
        AccessState::ActiveNonOptimized,
        AccessState::Standby,
        AccessState::Unavailable,
        AccessState::Transitioning,
    ]);
    let health =
        prop::sample::select(std::vec![Health::Healthy, Health::Failed, Health::Verifying, Health::Removed]);
    (
        path_id(),
        0u8..64,
        access,
        health,
        0u8..4,
        any::<(u32, u32, bool)>(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(path_id, slot, access, health, flags, (weight, in_flight, usable), held_down_until)| PathInfo {
                path_id,
                slot: PathSlot(slot),
                access,
                health,
                flags: PathFlags::from_bits_truncate(flags),
                weight,
                in_flight,
                usable,
                held_down_until,
            },
        )
}

fn statistics_entry() -> impl Strategy<Value = PathStatisticsEntry> {
    (path_id(), any::<[u64; 7]>(), any::<u32>(), any::<[u64; 32]>()).prop_map(
        |(path_id, c, in_flight, histogram)| PathStatisticsEntry {
            path_id,
            statistics: PathStatistics {
                reads: c[0],
                writes: c[1],
                bytes_read: c[2],
                bytes_written: c[3],
                errors: c[4],
                in_flight,
                in_flight_bytes: c[5],
                latency_ewma: c[6],
                histogram,
            },
        },
    )
}

fn lun_entry() -> impl Strategy<Value = LunEntry> {
    (0u32..=64).prop_flat_map(|paths| (Just(paths), 0..=paths)).prop_flat_map(|(paths, usable_paths)| {
        (any::<u64>(), raw_policy(), any::<bool>(), any::<[u8; 16]>()).prop_map(
            move |(lun, policy, removed, identity)| LunEntry {
                lun: LunId(lun),
                policy,
                paths,
                usable_paths,
                removed,
                identity,
            },
        )
    })
}

/// Every message a decoder accepts re-encodes to the same bytes.
fn assert_canonical(buf: &[u8]) {
    if let Ok(request) = Request::decode(buf) {
        assert_eq!(encode_request(&request), buf);
    }
    for op in Opcode::ALL {
        match Reply::decode(op, buf) {
            Ok(Ok(reply)) => assert_eq!(encode_reply(&reply), buf),
            Ok(Err(status)) => assert_eq!(encode_failure(op, status), buf),
            Err(_) => {}
        }
    }
}

proptest! {
    #[test]
    fn requests_round_trip(
        kind in 0u8..9,
        lun in any::<u64>(),
        policy in raw_policy(),
        generation in proptest::option::of(any::<u64>()),
        paths in prop::collection::vec(path_policy(), 0..=64),
    ) {
        let lun = LunId(lun);
        let request = match kind {
            0 => Request::GetVersion,
            1 => Request::ListLuns,
            2 => Request::GetPolicy { lun },
            3 => Request::SetPolicy { lun, policy, expected_generation: generation, paths: Records::Typed(&paths) },
            4 => Request::GetPathInfo { lun },
            5 => Request::GetStatistics { lun },
            6 => Request::GetDefaultPolicy,
            7 => Request::SetDefaultPolicy { policy },
            _ => Request::GetSupportedPolicies { lun },
        };
        let bytes = encode_request(&request);
        prop_assert_eq!(Request::decode(&bytes), Ok(request));
        prop_assert_eq!(Request::decode_for(request.opcode(), &bytes), Ok(request));
    }

    #[test]
    fn requests_never_overrun_a_short_buffer(
        paths in prop::collection::vec(path_policy(), 0..=64),
        cut in any::<prop::sample::Index>(),
    ) {
        let request = Request::SetPolicy {
            lun: LunId(1), policy: RawPolicy::default(), expected_generation: None, paths: Records::Typed(&paths),
        };
        let len = request.encoded_len();
        let n = cut.index(len);
        let mut buf = [0x5Au8; MAX_REQUEST_SIZE];
        prop_assert_eq!(request.encode(&mut buf[..n]), Err(WireError::OutputTooSmall { needed: len }));
        prop_assert!(buf.iter().all(|&b| b == 0x5A));
    }

    #[test]
    fn list_replies_round_trip(
        infos in prop::collection::vec(path_info(), 0..=64),
        stats in prop::collection::vec(statistics_entry(), 0..=64),
        luns in prop::collection::vec(lun_entry(), 0..=256),
        policies in prop::collection::vec(path_policy(), 0..=64),
        policy in raw_policy(),
        generation in any::<u64>(),
        preferred in proptest::option::of(path_id()),
    ) {
        for reply in [
            Reply::GetPathInfo(Records::Typed(&infos)),
            Reply::GetStatistics(Records::Typed(&stats)),
            Reply::ListLuns(Records::Typed(&luns)),
            Reply::GetPolicy { policy, generation, preferred, paths: Records::Typed(&policies) },
        ] {
            let bytes = encode_reply(&reply);
            let decoded = Reply::decode(reply.opcode(), &bytes).unwrap().unwrap();
            prop_assert_eq!(decoded, reply);
            // Short buffers: nothing written.
            let mut buf = std::vec![0x5Au8; bytes.len() - 1];
            prop_assert_eq!(reply.encode(&mut buf), Err(WireError::OutputTooSmall { needed: bytes.len() }));
            prop_assert!(buf.iter().all(|&b| b == 0x5A));
        }
    }

    #[test]
    fn scalar_replies_round_trip(
        version in any::<(u16, u16, u16, u16, u32, u32)>(),
        generation in any::<u64>(),
        policy in raw_policy(),
        flags in 0u32..0x80,
        vendor_mask in any::<u32>(),
        status in 0x8000_0000u32..,
        op in prop::sample::select(Opcode::ALL.to_vec()),
    ) {
        let (protocol, driver_major, driver_minor, driver_patch, max_paths_per_lun, max_luns) = version;
        for reply in [
            Reply::GetVersion(VersionInfo { protocol, driver_major, driver_minor, driver_patch, max_paths_per_lun, max_luns }),
            Reply::SetPolicy { generation },
            Reply::GetDefaultPolicy(policy),
            Reply::SetDefaultPolicy,
            Reply::GetSupportedPolicies { policies: SupportedPolicies::from_bits_retain(flags), vendor_mask },
        ] {
            let bytes = encode_reply(&reply);
            prop_assert_eq!(Reply::decode(reply.opcode(), &bytes), Ok(Ok(reply)));
        }
        let bytes = encode_failure(op, HResult(status));
        prop_assert_eq!(Reply::decode(op, &bytes), Ok(Err(HResult(status))));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Request::decode(&bytes);
        for op in Opcode::ALL {
            let _ = Reply::decode(op, &bytes);
        }
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic_and_are_canonical(
        opcode in 0u16..12,
        status in prop_oneof![Just(0u32), any::<u32>()],
        body in prop::collection::vec(prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => any::<u8>()], 0..600),
    ) {
        let mut buf = std::vec![0u8; HEADER_SIZE];
        buf[..4].copy_from_slice(&MAGIC);
        buf[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        buf[6..8].copy_from_slice(&opcode.to_le_bytes());
        buf[12..16].copy_from_slice(&status.to_le_bytes());
        buf.extend_from_slice(&body);
        fix_size(&mut buf);
        assert_canonical(&buf);
    }

    #[test]
    fn mutated_golden_messages_never_panic_and_are_canonical(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut all: Vec<Vec<u8>> = golden_requests().into_iter().map(|(b, _)| b).collect();
        all.extend(golden_replies().into_iter().map(|(_, b, _)| b));
        let mut buf = which.get(&all).clone();
        let i = at.index(buf.len());
        buf[i] = value;
        assert_canonical(&buf);
    }
}

// ---------------------------------------------------------------- socket frames

#[test]
fn golden_request_frame_layout() {
    let input = golden_get_version_request();
    let mut out = [0u8; 64];
    let n = encode_request_frame(IOCTL_RSDSM_GET_VERSION, &input, 36, &mut out).unwrap();
    let ioctl = le32(IOCTL_RSDSM_GET_VERSION);
    let expected = cat(&[b"RSDF", &ioctl, &le32(16), &le32(36), &input]);
    assert_eq!(&out[..n], &expected[..]);
    assert_eq!(n, FrameHeader::SIZE + 16);
    let (header, body) = decode_request_frame(&expected).unwrap();
    assert_eq!(header, FrameHeader { ioctl: IOCTL_RSDSM_GET_VERSION, input_len: 16, output_capacity: 36 });
    assert_eq!(body, &input[..]);
    assert_eq!(header.encode()[..], expected[..16]);
    // The magic and the IOCTL code as raw bytes.
    assert_eq!(&expected[..8], &[b'R', b'S', b'D', b'F', 0x04, 0x60, 0x5D, 0x8A]);
}

#[test]
fn golden_reply_frame_layout() {
    let output = golden_version_reply();
    let mut out = [0u8; 64];
    let n = encode_reply_frame(STATUS_SUCCESS, &output, &mut out).unwrap();
    let expected = cat(&[b"RSDF", &le32(0), &le32(36), &output]);
    assert_eq!(&out[..n], &expected[..]);
    let (header, body) = decode_reply_frame(&expected, 36).unwrap();
    assert_eq!(header, ReplyHeader { status: STATUS_SUCCESS, len: 36 });
    assert_eq!(body, &output[..]);

    let n = encode_reply_frame(STATUS_INVALID_DEVICE_REQUEST, &[], &mut out).unwrap();
    assert_eq!(&out[..n], &[b'R', b'S', b'D', b'F', 0x10, 0, 0, 0xC0, 0, 0, 0, 0]);
    let (header, body) = decode_reply_frame(&out[..n], 0).unwrap();
    assert_eq!((header.status, header.len(), body.len()), (STATUS_INVALID_DEVICE_REQUEST, 0, 0));
    assert!(header.is_empty());
    assert_eq!(STATUS_BUFFER_TOO_SMALL, 0xC000_0023);
}

#[test]
fn every_frame_truncation_and_extension_is_rejected() {
    let input = golden_set_policy_request();
    let mut buf = [0u8; 256];
    let n = encode_request_frame(IOCTL_RSDSM_SET_POLICY, &input, 24, &mut buf).unwrap();
    let frame = &buf[..n];
    for cut in 0..n {
        let err = decode_request_frame(&frame[..cut]).unwrap_err();
        assert!(matches!(err, WireError::Truncated { .. }), "cut {cut}: {err:?}");
        if cut < FrameHeader::SIZE {
            assert_eq!(
                FrameHeader::decode(&frame[..cut]),
                Err(WireError::Truncated { needed: 16, available: cut })
            );
        } else {
            assert!(FrameHeader::decode(&frame[..cut]).is_ok());
        }
    }
    let longer = cat(&[frame, &[0]]);
    assert_eq!(decode_request_frame(&longer), Err(WireError::LengthMismatch));

    let output = golden_get_policy_reply();
    let n = encode_reply_frame(STATUS_SUCCESS, &output, &mut buf).unwrap();
    let frame = &buf[..n];
    for cut in 0..n {
        let err = decode_reply_frame(&frame[..cut], MAX_REPLY_SIZE).unwrap_err();
        assert!(matches!(err, WireError::Truncated { .. }), "cut {cut}: {err:?}");
    }
    let longer = cat(&[frame, &[0]]);
    assert_eq!(decode_reply_frame(&longer, MAX_REPLY_SIZE), Err(WireError::LengthMismatch));
}

#[test]
fn frame_bounds_and_magic_are_checked() {
    let max_in = u32::try_from(MAX_REQUEST_SIZE).unwrap();
    let max_out = u32::try_from(MAX_REPLY_SIZE).unwrap();
    let ok = FrameHeader { ioctl: 1, input_len: max_in, output_capacity: max_out };
    assert_eq!(FrameHeader::decode(&ok.encode()), Ok(ok));
    let big_in = FrameHeader { input_len: max_in + 1, ..ok };
    assert_eq!(
        FrameHeader::decode(&big_in.encode()),
        Err(WireError::CountTooLarge { count: max_in + 1, max: max_in })
    );
    let big_out = FrameHeader { output_capacity: u32::MAX, ..ok };
    assert_eq!(
        FrameHeader::decode(&big_out.encode()),
        Err(WireError::CountTooLarge { count: u32::MAX, max: max_out })
    );
    let mut bad = ok.encode();
    bad[3] = b'M';
    assert_eq!(FrameHeader::decode(&bad), Err(WireError::BadMagic));

    // A reply longer than the caller offered, or than any reply can be.
    let reply = ReplyHeader { status: STATUS_SUCCESS, len: 40 };
    assert_eq!(ReplyHeader::decode(&reply.encode(), 40), Ok(reply));
    assert_eq!(
        ReplyHeader::decode(&reply.encode(), 39),
        Err(WireError::CountTooLarge { count: 40, max: 39 })
    );
    let huge = ReplyHeader { status: STATUS_SUCCESS, len: max_out + 1 };
    assert_eq!(
        ReplyHeader::decode(&huge.encode(), usize::MAX),
        Err(WireError::CountTooLarge { count: max_out + 1, max: max_out })
    );
    // A failed call carries no output.
    let failed = ReplyHeader { status: STATUS_BUFFER_TOO_SMALL, len: 4 };
    assert_eq!(ReplyHeader::decode(&failed.encode(), 100), Err(WireError::BadValue));
    let mut bad = reply.encode();
    bad[0] = 0;
    assert_eq!(ReplyHeader::decode(&bad, 100), Err(WireError::BadMagic));
}

#[test]
fn frame_encoders_refuse_what_they_cannot_frame() {
    let mut out = std::vec![0u8; MAX_REPLY_SIZE + 64];
    let too_long = std::vec![0u8; MAX_REQUEST_SIZE + 1];
    assert!(matches!(encode_request_frame(1, &too_long, 0, &mut out), Err(WireError::CountTooLarge { .. })));
    assert!(matches!(
        encode_request_frame(1, &[], MAX_REPLY_SIZE + 1, &mut out),
        Err(WireError::CountTooLarge { .. })
    ));
    assert_eq!(encode_reply_frame(STATUS_BUFFER_TOO_SMALL, &[1], &mut out), Err(WireError::BadValue));
    let too_long = std::vec![0u8; MAX_REPLY_SIZE + 1];
    assert!(matches!(encode_reply_frame(0, &too_long, &mut out), Err(WireError::CountTooLarge { .. })));
    let mut short = [0xAAu8; 20];
    assert_eq!(
        encode_request_frame(1, &[0; 8], 0, &mut short),
        Err(WireError::OutputTooSmall { needed: 24 })
    );
    assert_eq!(encode_reply_frame(0, &[0; 9], &mut short), Err(WireError::OutputTooSmall { needed: 21 }));
    assert_eq!(short, [0xAA; 20]);
}

proptest! {
    #[test]
    fn frames_round_trip_and_never_panic(
        ioctl in any::<u32>(),
        input in proptest::collection::vec(any::<u8>(), 0..200),
        capacity in 0usize..2000,
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = std::vec![0u8; 300];
        let n = encode_request_frame(ioctl, &input, capacity, &mut buf).unwrap();
        let (header, body) = decode_request_frame(&buf[..n]).unwrap();
        prop_assert_eq!(header.ioctl, ioctl);
        prop_assert_eq!(header.output_capacity(), capacity);
        prop_assert_eq!(body, &input[..]);
        let n = encode_reply_frame(STATUS_SUCCESS, &input, &mut buf).unwrap();
        let (reply, body) = decode_reply_frame(&buf[..n], input.len()).unwrap();
        prop_assert_eq!(reply.len(), input.len());
        prop_assert_eq!(body, &input[..]);
        let _ = decode_request_frame(&junk);
        let _ = decode_reply_frame(&junk, capacity);
    }
}
