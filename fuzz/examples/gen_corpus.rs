//! Writes the checked-in seed corpora, `fuzz/corpus/<target>/seed-*`: a few
//! valid inputs per target, built with the project's own encoders (and the
//! simulator's page builders), so the fuzzer starts from real layouts.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus

use std::path::{Path, PathBuf};

use rsdsm::control::handle;
use rsdsm::identity::{KeyKind, LunKey};
use rsdsm::persist::{MAX_RECORD_LEN, Record, encode_record};
use rsdsm_engine::wire::{
    LunId, MAX_REPLY_SIZE, MAX_REQUEST_SIZE, Opcode, RawPolicy, Records, Request, encode_reply_frame,
    encode_request_frame,
};
use rsdsm_engine::{AccessState, HResult, LoadBalancePolicy, PathId, PathPolicy, VendorPolicy};
use rsdsm_fuzz::{FuzzStore, fixture, join_control};
use rsdsm_sim::host::{fixed_sense, rtpg, vpd83};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn requests(luns: [LunId; 3], paths_a: &[PathPolicy]) -> Vec<(&'static str, Request<'_>)> {
    let [a, b, c] = luns;
    vec![
        ("version", Request::GetVersion),
        ("list", Request::ListLuns),
        ("get-policy", Request::GetPolicy { lun: a }),
        (
            "set-policy",
            Request::SetPolicy {
                lun: a,
                policy: RawPolicy::from(LoadBalancePolicy::FailoverOnly),
                expected_generation: None,
                paths: Records::Typed(paths_a),
            },
        ),
        (
            "set-policy-generation",
            Request::SetPolicy {
                lun: a,
                policy: RawPolicy::from(LoadBalancePolicy::WeightedPaths),
                expected_generation: Some(2),
                paths: Records::Typed(paths_a),
            },
        ),
        (
            "set-policy-failed-lun",
            Request::SetPolicy {
                lun: c,
                policy: RawPolicy::from(LoadBalancePolicy::RoundRobin),
                expected_generation: None,
                paths: Records::Typed(&paths_a[..1]),
            },
        ),
        ("path-info", Request::GetPathInfo { lun: b }),
        ("statistics", Request::GetStatistics { lun: b }),
        ("get-default", Request::GetDefaultPolicy),
        (
            "set-default",
            Request::SetDefaultPolicy {
                policy: RawPolicy::from(LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime)),
            },
        ),
        ("supported", Request::GetSupportedPolicies { lun: b }),
        ("deleted-lun", Request::GetPolicy { lun: LunId(0xDEAD) }),
    ]
}

fn main() {
    let (dsm, luns) = fixture();
    let paths_a = [
        PathPolicy { path_id: PathId::new(0x10, 1), primary: true, weight: 1 },
        PathPolicy { path_id: PathId::new(0x10, 2), primary: false, weight: 5 },
    ];
    let out_len = u16::try_from(MAX_REPLY_SIZE).unwrap_or(u16::MAX);
    let mut store = FuzzStore::new();
    for (name, request) in requests(luns, &paths_a) {
        let mut input = vec![0u8; MAX_REQUEST_SIZE];
        let n = request.encode(&mut input).unwrap();
        let input = &input[..n];
        let opcode = request.opcode();
        write("control_request", name, &join_control(opcode, out_len, input));
        // The reply the handler gives, as a client receives it.
        let mut output = vec![0u8; MAX_REPLY_SIZE];
        let w = handle(&*dsm, &mut store, opcode.ioctl(), input, &mut output).unwrap();
        let selector = u8::try_from(Opcode::ALL.iter().position(|o| *o == opcode).unwrap()).unwrap();
        let mut reply = vec![selector];
        reply.extend_from_slice(&output[..w]);
        write("reply", name, &reply);
        // Both as socket frames.
        let mut frame = vec![0u8; MAX_REQUEST_SIZE + 64];
        let f = encode_request_frame(opcode.ioctl(), input, MAX_REPLY_SIZE, &mut frame).unwrap();
        write("frame", &format!("request-{name}"), &frame[..f]);
        let mut frame = vec![0u8; MAX_REPLY_SIZE + 64];
        let f = encode_reply_frame(0, &output[..w], &mut frame).unwrap();
        write("frame", &format!("reply-{name}"), &frame[..f]);
    }
    // A short output buffer, a foreign IOCTL code.
    write("control_request", "short-output", &join_control(Opcode::ListLuns, 20, &[]));
    let mut foreign = vec![0xFF];
    foreign.extend_from_slice(&0x0022_0000u32.to_le_bytes());
    foreign.extend_from_slice(&64u16.to_le_bytes());
    write("control_request", "foreign-ioctl", &foreign);
    let mut frame = [0u8; 64];
    let f = encode_reply_frame(0xC000_0010, &[], &mut frame).unwrap();
    write("frame", "reply-failed-call", &frame[..f]);
    let mut err = vec![0u8; 64];
    let n =
        rsdsm_engine::wire::encode_error(Opcode::SetPolicy, HResult::VDS_E_OBJECT_DELETED, &mut err).unwrap();
    let mut reply = vec![3u8];
    reply.extend_from_slice(&err[..n]);
    write("reply", "error", &reply);

    // Sense: fixed (current and deferred) and descriptor formats.
    write("sense", "fixed-unit-attention", &fixed_sense(0x6, 0x2A, 0x06));
    write("sense", "fixed-not-ready-standby", &fixed_sense(0x2, 0x04, 0x0B));
    let mut deferred = fixed_sense(0x4, 0x44, 0x00);
    deferred[0] = 0x71;
    write("sense", "fixed-deferred", &deferred);
    write("sense", "descriptor-not-ready", &[0x72, 0x02, 0x04, 0x0C, 0, 0, 0, 0]);
    write(
        "sense",
        "descriptor-with-info",
        &[0x73, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0, 0x0A, 0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8],
    );

    // VPD 0x83 (NAA LUN, relative port, port group) and 0x80.
    let page83 = vpd83(7, 0x0101, 0x0101);
    write("vpd", "page83", &page83);
    let serial: &[u8] = b"  SN-000123  ";
    let mut page80 = vec![0x00, 0x80, 0x00, u8::try_from(serial.len()).unwrap()];
    page80.extend_from_slice(serial);
    write("vpd", "page80", &page80);
    let mut pair = vec![u8::try_from(page83.len()).unwrap()];
    pair.extend_from_slice(&page83);
    pair.extend_from_slice(&page80);
    write("vpd", "pair", &pair);
    let mut t10 = vec![0x00, 0x83, 0x00, 18];
    t10.extend_from_slice(b"\x02\x01\x00\x0eACME    SN0001");
    write("vpd", "page83-t10", &t10);

    // RTPG: length-only and extended headers.
    let ports = [
        (0x0101, 1, AccessState::ActiveOptimized),
        (0x0102, 1, AccessState::ActiveOptimized),
        (0x0201, 2, AccessState::Standby),
    ];
    let data = rtpg(&ports);
    write("rtpg", "length-only", &data);
    let mut extended = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    extended.extend_from_slice(&[0x10, 5, 0, 0]);
    extended.extend_from_slice(&data[4..]);
    let len = u32::try_from(extended.len() - 4).unwrap().to_be_bytes();
    extended[..4].copy_from_slice(&len);
    write("rtpg", "extended", &extended);

    // Persisted records.
    let mut paths = heapless::Vec::<PathPolicy, 64>::new();
    paths.extend_from_slice(&paths_a).unwrap();
    let record = Record::<64> {
        key: LunKey::from_parts(KeyKind::Naa, &[&[0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]),
        policy: LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin),
        generation: 42,
        preferred: Some(PathId::new(0x10, 2)),
        paths,
    };
    let mut buf = [0u8; MAX_RECORD_LEN];
    let n = encode_record(&record, &mut buf).unwrap();
    write("policy_record", "two-paths", &buf[..n]);
    let empty = Record::<64> { preferred: None, paths: heapless::Vec::new(), ..record };
    let n = encode_record(&empty, &mut buf).unwrap();
    write("policy_record", "no-paths", &buf[..n]);

    // Scenarios: the simulator's own files.
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios");
    for entry in std::fs::read_dir(scenarios).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        write("scenario", &name, &std::fs::read(&path).unwrap());
    }
    println!("seed corpora written under {}", root().display());
}
