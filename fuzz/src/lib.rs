//! The properties the fuzz targets check, one function per target, so that
//! a crash found by a target can be replayed as a plain test
//! (`cargo test --manifest-path fuzz/Cargo.toml`, or a regression test in
//! the crate that had the bug).
//!
//! Every target checks "no panic" (a panic in the kernel is a bug check);
//! most also check a round trip or an invariant of the decoder's contract.

use rsdsm::alua::Rtpg;
use rsdsm::control::handle;
use rsdsm::dsm::Dsm;
use rsdsm::identity::{KeyKind, LunKey, PortIds, Vpd83, identify, parse_unit_serial};
use rsdsm::persist::{MAX_RECORD_LEN, MemoryStore, PolicyStore, decode_record, encode_record};
use rsdsm::sense::{ErrorContext, SenseAction, classify, classify_sense, parse_sense};
use rsdsm_engine::wire::{
    FrameHeader, HEADER_SIZE, LunId, MAX_REPLY_SIZE, Opcode, Reply, ReplyHeader, decode_reply_frame,
    decode_request_frame, encode_error, encode_reply_frame, encode_request_frame,
};
use rsdsm_engine::{AccessState, LoadBalancePolicy, LunSettings, PathId, PathInfo, PolicySnapshot};

/// The DSM the control target talks to: `LUNS` × `PATHS` like a small
/// driver build.
pub type FuzzDsm = Dsm<4, 8>;
/// Its store.
pub type FuzzStore = MemoryStore<4, 2048>;

/// The key of fixture LUN `n`.
#[must_use]
pub fn key(n: u8) -> LunKey {
    LunKey::from_parts(KeyKind::Naa, &[&[0x60, 0x0A, 0x0B, 0x80, 0, 0, 0, n]])
}

/// LUN 1: two paths (optimized, non-optimized). LUN 2: three optimized.
/// LUN 3: one path, failed (so sets fail with `VDS_E_OBJECT_STATUS_FAILED`).
/// Returns the DSM and the LUN ids.
#[must_use]
pub fn fixture() -> (Box<FuzzDsm>, [LunId; 3]) {
    let dsm = Box::new(FuzzDsm::new(LoadBalancePolicy::RoundRobin, LunSettings::default()));
    let ports = PortIds::default();
    let ok = "fixture paths fit";
    let (a, _) = dsm.add_path(&key(1), PathId::new(0x10, 1), ports, AccessState::ActiveOptimized).expect(ok);
    dsm.add_path(&key(1), PathId::new(0x10, 2), ports, AccessState::ActiveNonOptimized).expect(ok);
    let (b, _) = dsm.add_path(&key(2), PathId::new(0x20, 1), ports, AccessState::ActiveOptimized).expect(ok);
    dsm.add_path(&key(2), PathId::new(0x20, 2), ports, AccessState::ActiveOptimized).expect(ok);
    dsm.add_path(&key(2), PathId::new(0x20, 3), ports, AccessState::ActiveOptimized).expect(ok);
    let (c, c1) = dsm.add_path(&key(3), PathId::new(0x30, 1), ports, AccessState::ActiveOptimized).expect(ok);
    dsm.fail_path(c, c1, 5).expect(ok);
    (dsm, [a, b, c])
}

/// Everything a control request could change.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    luns: Vec<Option<(PolicySnapshot<8>, heapless::Vec<PathInfo, 8>)>>,
    default: LoadBalancePolicy,
    stored: Vec<Option<Vec<u8>>>,
}

/// The state of the fixture's DSM and store.
#[must_use]
pub fn state(dsm: &FuzzDsm, store: &FuzzStore, luns: &[LunId]) -> State {
    let luns = luns
        .iter()
        .map(|&id| dsm.lun(id).and_then(|l| Some((l.load_balance_policy().ok()?, l.path_info().ok()?))))
        .collect();
    let stored = (1..=3)
        .map(|n| {
            let mut buf = [0u8; MAX_RECORD_LEN];
            store.load(&key(n), &mut buf).ok().flatten().map(|len| buf[..len].to_vec())
        })
        .collect();
    State { luns, default: dsm.default_policy(), stored }
}

/// Splits a control-target input: `[selector, out_lo, out_hi, input...]`.
/// Selector 0xFF takes a raw IOCTL code from the next 4 bytes; any other
/// value picks one of rsdsm's codes.
#[must_use]
pub fn split_control(data: &[u8]) -> Option<(u32, usize, &[u8])> {
    let (&selector, rest) = data.split_first()?;
    let (ioctl, rest) = if selector == 0xFF {
        let (code, rest) = rest.split_first_chunk::<4>()?;
        (u32::from_le_bytes(*code), rest)
    } else {
        (Opcode::ALL[usize::from(selector) % Opcode::ALL.len()].ioctl(), rest)
    };
    let (out, input) = rest.split_first_chunk::<2>()?;
    let out = usize::from(u16::from_le_bytes(*out)).min(MAX_REPLY_SIZE + 64);
    Some((ioctl, out, input))
}

/// Encodes a control-target input (for seeds).
#[must_use]
pub fn join_control(opcode: Opcode, output_len: u16, input: &[u8]) -> Vec<u8> {
    let selector = u8::try_from(Opcode::ALL.iter().position(|o| *o == opcode).unwrap_or(0)).unwrap_or(0);
    let mut v = vec![selector];
    v.extend_from_slice(&output_len.to_le_bytes());
    v.extend_from_slice(input);
    v
}

/// IOCTL requests as the driver's control handler sees them. The reply is
/// a well-formed message of the call's opcode that fits the output buffer;
/// a failed call writes nothing; a rejected request (error reply) and every
/// query change nothing.
pub fn control_request(data: &[u8]) {
    let Some((ioctl, out_len, input)) = split_control(data) else { return };
    let (dsm, luns) = fixture();
    let mut store = FuzzStore::new();
    let before = state(&dsm, &store, &luns);
    let mut output = vec![0xEEu8; out_len];
    let result = handle(&*dsm, &mut store, ioctl, input, &mut output);
    let after = state(&dsm, &store, &luns);
    let Ok(written) = result else {
        assert!(output.iter().all(|&b| b == 0xEE), "a failed call wrote output");
        assert_eq!(before, after, "a failed call changed state");
        return;
    };
    let opcode = Opcode::from_ioctl(ioctl).expect("a completed call has one of our codes");
    assert!((HEADER_SIZE..=out_len).contains(&written), "{written} bytes written into {out_len}");
    let reply = Reply::decode(opcode, &output[..written]).expect("the reply is a well-formed message");
    match reply {
        Err(code) => {
            assert!(!code.is_success(), "an error reply carries a failure code");
            assert_eq!(before, after, "a rejected request changed state");
        }
        Ok(reply) => {
            assert_eq!(reply.opcode(), opcode);
            if !opcode.is_change() {
                assert_eq!(before, after, "a query changed state");
            }
        }
    }
}

/// IOCTL replies as a client sees them: whatever decodes re-encodes to the
/// same bytes (a message has exactly one encoding).
pub fn reply(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let opcode = Opcode::ALL[usize::from(selector) % Opcode::ALL.len()];
    let Ok(decoded) = Reply::decode(opcode, bytes) else { return };
    let mut out = vec![0u8; bytes.len()];
    let n = match decoded {
        Ok(reply) => {
            assert_eq!(reply.opcode(), opcode);
            assert_eq!(reply.encoded_len(), bytes.len());
            reply.encode(&mut out).expect("a decoded reply re-encodes")
        }
        Err(code) => encode_error(opcode, code, &mut out).expect("a decoded error re-encodes"),
    };
    assert_eq!(&out[..n], bytes, "re-encoding differs");
}

/// Fixed and descriptor sense data: parsing never reads outside the valid
/// bytes and classification agrees with it.
pub fn sense(data: &[u8]) {
    let parsed = parse_sense(data);
    if let Ok(s) = parsed {
        assert!(s.key <= 0x0F);
        assert_eq!(s.descriptor, (data[0] & 0x7F) >= 0x72);
        // Only bytes inside 8 + additional length count.
        let valid = (8 + usize::from(data[7])).min(data.len());
        assert_eq!(parse_sense(&data[..valid]), parsed);
    }
    for (read_write, other_path_available) in [(false, false), (false, true), (true, false), (true, true)] {
        let ctx = ErrorContext { read_write, other_path_available };
        let verdict = classify_sense(data, ctx);
        match parsed {
            Ok(s) => assert_eq!(verdict, classify(&s, ctx)),
            Err(_) => assert_eq!(verdict.action, SenseAction::Retry),
        }
    }
}

/// VPD pages 0x83 and 0x80: designators lie inside the page, the key is
/// stable, identification of a page pair never panics.
pub fn vpd(data: &[u8]) {
    let range = data.as_ptr_range();
    let inside = |s: &[u8]| {
        let r = s.as_ptr_range();
        s.is_empty() || (range.start <= r.start && r.end <= range.end)
    };
    if let Ok(page) = Vpd83::parse(data) {
        let mut total = 0usize;
        for d in page.designators() {
            assert!(inside(d.value), "designator outside the page");
            total += 4 + d.value.len();
            let _ = d.port_id();
        }
        assert!(total + 4 <= data.len());
        let _ = page.relative_target_port();
        let _ = page.target_port_group();
        assert_eq!(page.lun_key(), Vpd83::parse(data).ok().and_then(|p| p.lun_key()), "key not stable");
    }
    if let Ok(serial) = parse_unit_serial(data) {
        assert!(inside(serial), "serial outside the page");
        assert!(serial.len() + 4 <= data.len());
    }
    // A page pair: the first byte says where the second page starts.
    if let Some((&cut, rest)) = data.split_first() {
        let (a, b) = rest.split_at(usize::from(cut).min(rest.len()));
        let _ = identify(b"RSDSMSIM", b"SIMULATED LUN   ", Some(a), Some(b));
        let _ = identify(b"RSDSMSIM", b"SIMULATED LUN   ", None, Some(b));
    }
}

/// REPORT TARGET PORT GROUPS data: every port listed is found again with
/// its group's state.
pub fn rtpg(data: &[u8]) {
    let Ok(report) = Rtpg::parse(data) else {
        assert!(rsdsm::alua::state_of_port(data, 0).is_err());
        return;
    };
    let _ = report.format();
    let mut ports = 0usize;
    for group in report.groups().take(1024) {
        assert_eq!(group.ports().count(), group.port_count());
        for port in group.ports() {
            ports += 1;
            let (_, state) = report.state_of_port(port).expect("a listed port is found");
            let _ = state;
        }
        assert!(report.state_of_group(group.id).is_some());
    }
    assert!(ports * 4 <= data.len());
}

/// Persisted policy records: whatever decodes re-encodes to the same bytes,
/// and a smaller table decodes the same record or refuses it whole.
pub fn policy_record(data: &[u8]) {
    let Ok(record) = decode_record::<64>(data) else {
        assert!(decode_record::<8>(data).is_err());
        return;
    };
    let mut out = [0u8; MAX_RECORD_LEN];
    let n = encode_record(&record, &mut out).expect("a decoded record re-encodes");
    assert_eq!(&out[..n], data, "re-encoding differs");
    match decode_record::<8>(data) {
        Ok(small) => {
            assert_eq!(small.paths.as_slice(), record.paths.as_slice());
            assert_eq!(
                (small.key, small.policy, small.generation),
                (record.key, record.policy, record.generation)
            );
        }
        Err(e) => {
            assert_eq!(e, rsdsm::persist::RecordError::TooManyPaths);
            assert!(record.paths.len() > 8);
        }
    }
}

/// Socket frames (the simulated DSM's transport): request and reply frames
/// that decode re-encode to the same bytes; headers are bounded.
pub fn frame(data: &[u8]) {
    if let Ok((header, body)) = decode_request_frame(data) {
        assert_eq!(body.len(), header.input_len());
        let mut out = vec![0u8; data.len()];
        let n = encode_request_frame(header.ioctl, body, header.output_capacity(), &mut out)
            .expect("a decoded request frame re-encodes");
        assert_eq!(&out[..n], data);
    }
    if let Ok(header) = FrameHeader::decode(data) {
        assert_eq!(header.encode()[..], data[..FrameHeader::SIZE]);
    }
    for capacity in [0, 64, MAX_REPLY_SIZE] {
        if let Ok((header, body)) = decode_reply_frame(data, capacity) {
            assert!(body.len() <= capacity);
            let mut out = vec![0u8; data.len()];
            let n =
                encode_reply_frame(header.status, body, &mut out).expect("a decoded reply frame re-encodes");
            assert_eq!(&out[..n], data);
        }
        if let Ok(header) = ReplyHeader::decode(data, capacity) {
            assert!(header.len() <= capacity);
        }
    }
}

/// Simulator scenario files: any UTF-8 text parses or is refused with a
/// message; a parsed scenario answers its queries.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match rsdsm_sim::Scenario::parse(text) {
        Ok(s) => {
            let _ = s.policies();
            for lun in &s.luns {
                let _ = s.workload_of(lun);
            }
        }
        Err(e) => assert!(!e.0.is_empty()),
    }
}
