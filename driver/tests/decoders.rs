//! Every decoder of outside bytes returns a value or an error on any input:
//! it never panics, never reads out of bounds.

use proptest::prelude::*;
use rsdsm::alua::Rtpg;
use rsdsm::claim::{ClaimList, DeviceId};
use rsdsm::identity::{Vpd83, identify, parse_unit_serial};
use rsdsm::persist::{MAX_RECORD_LEN, decode_record, encode_record};
use rsdsm::sense::{ErrorContext, classify_sense, parse_sense};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vpd_pages(bytes in proptest::collection::vec(any::<u8>(), 0..300), tweak in any::<bool>()) {
        let mut bytes = bytes;
        if tweak && bytes.len() >= 4 {
            // Make the header plausible so the descriptor walk is exercised.
            bytes[1] = 0x83;
            let len = u16::try_from(bytes.len() - 4).unwrap().to_be_bytes();
            bytes[2..4].copy_from_slice(&len);
        }
        if let Ok(page) = Vpd83::parse(&bytes) {
            for d in page.designators() {
                prop_assert!(d.value.len() <= bytes.len());
            }
            let _ = (page.lun_key(), page.relative_target_port(), page.target_port_group());
        }
        let _ = parse_unit_serial(&bytes);
        let _ = identify(b"V", b"P", Some(&bytes), Some(&bytes));
    }

    #[test]
    fn sense(bytes in proptest::collection::vec(any::<u8>(), 0..64), rw in any::<bool>(), other in any::<bool>()) {
        let _ = parse_sense(&bytes);
        let _ = classify_sense(&bytes, ErrorContext { read_write: rw, other_path_available: other });
    }

    #[test]
    fn rtpg(bytes in proptest::collection::vec(any::<u8>(), 0..200), tweak in any::<bool>()) {
        let mut bytes = bytes;
        if tweak && bytes.len() >= 4 {
            let len = u32::try_from(bytes.len() - 4).unwrap().to_be_bytes();
            bytes[..4].copy_from_slice(&len);
        }
        if let Ok(r) = Rtpg::parse(&bytes) {
            for g in r.groups() {
                let _ = g.ports().count();
            }
            let _ = r.state_of_port(1);
        }
    }

    #[test]
    fn records(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_record::<8>(&bytes);
    }

    #[test]
    fn records_from_valid_ones(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        use rsdsm_engine::{LoadBalancePolicy, PathId, PathPolicy};
        let mut paths = heapless::Vec::<PathPolicy, 8>::new();
        for i in 0..(seed % 8) {
            paths.push(PathPolicy { path_id: PathId::new(seed, i), primary: i == 0, weight: u32::try_from(i).unwrap() + 1 }).unwrap();
        }
        let record = rsdsm::persist::Record::<8> {
            key: rsdsm::identity::LunKey::from_unit_serial(b"V", b"P", &seed.to_le_bytes()),
            policy: LoadBalancePolicy::LeastBlocks,
            generation: seed,
            preferred: None,
            paths,
        };
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = encode_record(&record, &mut buf).unwrap();
        prop_assert_eq!(decode_record::<8>(&buf[..n]), Ok(record.clone()));
        let mut damaged = buf[..n].to_vec();
        for (at, x) in flips {
            damaged[at % n] ^= x;
        }
        if damaged != buf[..n] {
            prop_assert!(decode_record::<8>(&damaged).is_err());
        }
    }

    #[test]
    fn claim_entries(s in "\\PC{0,30}", units in proptest::collection::vec(any::<u16>(), 0..80)) {
        let _ = DeviceId::parse(&s);
        let _ = ClaimList::<4>::from_multi_sz(&units);
    }
}
