//! The MPIO adapter end to end, as the Windows glue drives it: handles for
//! devices, paths and tickets; claim, grouping, selection, completion,
//! failover, verification, removal and persistence.

use std::num::NonZeroU32;

use rsdsm::claim::ClaimList;
use rsdsm::mpio::{Mpio, SOURCE_ID, nt_status, srb_status, transport_error};
use rsdsm::persist::MemoryStore;
use rsdsm::sense::{SenseAction, TransportError};
use rsdsm_engine::{FailbackMode, FlapDamping, IoRequest, LoadBalancePolicy, LunSettings, PathId};

type Small = Mpio<4, 8, 4, 4>;
type Store = MemoryStore<8, 1024>;

const NAA: [u8; 20] = [
    0x01, 0x03, 0x00, 0x10, 0x60, 0x0A, 0x0B, 0x80, 0x00, 0x12, 0x34, 0x56, 0x00, 0x00, 0x0A, 0xBC, 0x5F,
    0x01, 0x02, 0x03,
];

fn vpd83(lun: u8, port: u16, tpg: u16) -> Vec<u8> {
    let mut naa = NAA;
    naa[19] = lun;
    let [ph, pl] = port.to_be_bytes();
    let [gh, gl] = tpg.to_be_bytes();
    let body = [&naa[..], &[0x01, 0x94, 0, 4, 0, 0, ph, pl], &[0x01, 0x15, 0, 4, 0, 0, gh, gl]].concat();
    [&[0x00, 0x83, 0x00, u8::try_from(body.len()).unwrap()][..], &body].concat()
}

fn settings() -> LunSettings {
    LunSettings {
        failback: FailbackMode::Immediate,
        flap: FlapDamping { window: 100, threshold: 3, hold: 50, max_hold: 1000 },
        sequential_window: 0,
    }
}

fn mpio() -> Small {
    let m = Small::new(LoadBalancePolicy::RoundRobin, settings());
    m.set_claims(&ClaimList::from_strs(["ACME    ARRAY"]).unwrap());
    m
}

/// Inquire + SetDeviceInfo of LUN `lun` through target port `port` on
/// mpio.sys's path value `mpio_path`: (device, path).
fn attach(m: &Small, store: &Store, lun: u8, port: u16, mpio_path: usize) -> (NonZeroU32, NonZeroU32) {
    let d = m.inquire(b"ACME    ", b"ARRAY-9000      ", b"", &vpd83(lun, port, 1)).expect("claimed");
    let p = m.set_device_info(d, mpio_path, 0x1000 + mpio_path, store).expect("attached");
    (d, p)
}

const IO: IoRequest = IoRequest::read(4096);

#[test]
fn devices_are_claimed_grouped_and_share_path_handles() {
    let m = mpio();
    let store = Store::new();
    assert_eq!(m.inquire(b"OTHER   ", b"ARRAY           ", b"", &vpd83(1, 1, 1)), None, "not listed");
    assert_eq!(m.inquire(b"ACME    ", b"ARRAY           ", b"", &[]), None, "no identity");
    // The unit serial number serves when page 0x83 is absent.
    let serial_only = m.inquire(b"ACME    ", b"ARRAY           ", b"SN42", &[]).unwrap();

    let (a1, pa) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, pb) = attach(&m, &store, 1, 2, 0xB0);
    let (b1, pb2) = attach(&m, &store, 2, 2, 0xB0);
    assert!(m.compare_devices(a1, a2));
    assert!(!m.compare_devices(a1, b1));
    assert!(!m.compare_devices(a1, serial_only));
    assert_ne!(pa, pb);
    assert_eq!(pb, pb2, "one MPIO path, one handle, whatever the LUN");
    assert_eq!(m.path_count(), 2);
    // Telling SetDeviceInfo again is idempotent for the same path only.
    assert_eq!(m.set_device_info(a1, 0xA0, 0, &store), Some(pa));
    assert_eq!(m.set_device_info(a1, 0xB0, 0, &store), None);

    let lun = m.dsm().luns().next().unwrap();
    let ids: Vec<PathId> = lun.lun.path_info().unwrap().iter().map(|p| p.path_id).collect();
    assert_eq!(ids, [Mpio::<4, 8, 4, 4>::path_id(pa), Small::path_id(pb)]);
    assert!(ids.iter().all(|id| id.source_id == SOURCE_ID));
    assert!(m.is_path_active(pa, a1));
    assert!(!m.is_path_active(pb, a1), "a1 is not on path b");
    assert_eq!(m.verify_target(a2), Some(0x10B0));
    assert_eq!(m.verify_target(serial_only), None, "not bound yet");
    let c = m.controller(a1).unwrap();
    assert!(c.usable);
    assert_eq!(c.target_port_group, Some(1));
}

#[test]
fn selection_rotates_over_listed_devices_and_skips_failed_paths() {
    let m = mpio();
    let store = Store::new();
    let (a1, pa) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, pb) = attach(&m, &store, 1, 2, 0xB0);
    let list = [a1, a2];
    let picks: Vec<_> = (0..4).map(|_| m.select(&list, None, &IO).unwrap()).collect();
    assert!(picks.contains(&pa) && picks.contains(&pb), "round robin uses both: {picks:?}");

    // A path the engine knows but MPIO has not listed yet: the current
    // (listed) path is kept.
    for _ in 0..4 {
        assert_eq!(m.select(&[a1], Some(pa), &IO), Some(pa));
    }

    assert_eq!(m.invalidate_path(pa, 10), Some(pb), "b takes over");
    for _ in 0..4 {
        assert_eq!(m.select(&list, Some(pa), &IO), Some(pb));
    }
    assert!(!m.is_path_active(pa, a1));
    assert!(m.path_verify(a1, pa, true, 20), "verified: back in service");
    assert!(m.is_path_active(pa, a1));
    assert!(!m.path_verify(a1, pa, false, 30), "a failed probe fails the path");
    assert_eq!(m.invalidate_path(pb, 40), None, "no path left");
    assert_eq!(m.select(&list, None, &IO), None);
    assert_eq!(m.select(&[], None, &IO), None);
}

#[test]
fn tickets_count_in_flight_io_once_and_run_out_gracefully() {
    let m = mpio();
    let store = Store::new();
    let (a1, _) = attach(&m, &store, 1, 1, 0xA0);
    let in_flight = |m: &Small| m.dsm().luns().next().unwrap().lun.in_flight();
    let tickets: Vec<_> = (0..4).map(|_| m.start(a1, &IO.at(5)).expect("ticket")).collect();
    assert_eq!(in_flight(&m), 4);
    assert_eq!(m.tickets_in_use(), 4);
    assert_eq!(m.start(a1, &IO), None, "pool of 4 is full: sent uncounted");
    assert_eq!(in_flight(&m), 4);

    m.complete(tickets[0], 9, true);
    m.complete(tickets[0], 9, true);
    assert_eq!(in_flight(&m), 3, "a ticket completes once");
    // The freed slot is reused under a new handle; the old one stays dead.
    let again = m.start(a1, &IO).unwrap();
    assert!(!tickets.contains(&again));
    m.complete(tickets[0], 9, true);
    assert_eq!(in_flight(&m), 4);
    for t in tickets.into_iter().skip(1).chain([again]) {
        m.complete(t, 10, false);
    }
    assert_eq!((in_flight(&m), m.tickets_in_use()), (0, 0));
    let stats = m.dsm().luns().next().unwrap().lun.path_info().unwrap()[0];
    assert_eq!(stats.in_flight, 0);
}

#[test]
fn errors_are_classified_and_fatal_ones_fail_the_path() {
    let m = mpio();
    let store = Store::new();
    let (a1, pa) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, pb) = attach(&m, &store, 1, 2, 0xB0);
    let v = m.interpret_error(a1, &[], srb_status::SELECTION_TIMEOUT, 0, 0, 5);
    assert_eq!(v.action, SenseAction::FatalFailover);
    assert!(!m.is_path_active(pa, a1), "failed at once");
    assert_eq!(m.select(&[a1, a2], None, &IO), Some(pb));

    let busy = m.interpret_error(a2, &[], srb_status::ERROR, 0x08, 0, 6);
    assert_eq!(busy.action, SenseAction::Retry);
    // CHECK CONDITION, fixed sense: UNIT ATTENTION 29/00 (power on / reset).
    let mut sense = [0u8; 18];
    sense[0] = 0x70;
    sense[2] = 0x06;
    sense[7] = 10;
    sense[12] = 0x29;
    let ua = m.interpret_error(a2, &sense, srb_status::ERROR, 0x02, 0, 7);
    assert_ne!(ua.action, SenseAction::FatalFailover);
    assert!(m.is_path_active(pb, a2));
    let reservation_conflict = m.interpret_error(a2, &[], srb_status::ERROR, 0x18, 0, 8);
    assert_eq!(reservation_conflict.action, SenseAction::PassUp);
    let unknown = NonZeroU32::new(0xFFFF_FFFF).unwrap();
    assert_eq!(m.interpret_error(unknown, &[], srb_status::NO_DEVICE, 0, 0, 9).action, SenseAction::PassUp);
}

#[test]
fn transport_errors_map_srb_then_scsi_then_ntstatus() {
    assert_eq!(transport_error(srb_status::SELECTION_TIMEOUT, 0, 0), Some(TransportError::SelectionTimeout));
    assert_eq!(transport_error(srb_status::LINK_DOWN, 0, 0), Some(TransportError::DeviceNotConnected));
    assert_eq!(transport_error(srb_status::COMMAND_TIMEOUT, 0, 0), Some(TransportError::Timeout));
    assert_eq!(transport_error(srb_status::ERROR, 0x28, 0), Some(TransportError::Busy));
    assert_eq!(
        transport_error(srb_status::ERROR, 0, nt_status::DELETE_PENDING),
        Some(TransportError::DeletePending)
    );
    assert_eq!(
        transport_error(srb_status::ERROR, 0, nt_status::BUFFER_OVERFLOW),
        Some(TransportError::DataOverrun)
    );
    assert_eq!(transport_error(srb_status::ERROR, 0x18, 0), None);
    assert_eq!(nt_status::NO_SUCH_DEVICE, 0xC000_000E_u32.cast_signed());
}

#[test]
fn removal_frees_handles_and_the_lun_goes_with_its_last_device() {
    let m = mpio();
    let store = Store::new();
    let (a1, pa) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, pb) = attach(&m, &store, 1, 2, 0xB0);
    let t = m.start(a1, &IO).unwrap();

    m.remove_pending(a1);
    assert_eq!(m.select(&[a1, a2], None, &IO), Some(pb), "a pending removal carries no new I/O");
    m.remove_device(a1);
    m.remove_device(a1);
    assert!(!m.compare_devices(a1, a2), "a removed handle is dead");
    assert_eq!(m.dsm().luns().count(), 1);
    m.remove_path(pa);
    m.complete(t, 3, true);
    assert_eq!(m.dsm().luns().next().unwrap().lun.in_flight(), 0, "late completion still counted back");

    m.remove_device(a2);
    m.remove_path(pb);
    assert_eq!(m.dsm().luns().count(), 0, "the LUN left with its last device");
    assert_eq!((m.device_count(), m.path_count()), (0, 0));

    // A reused entry gets a new handle; the old one does not reach it.
    let (c1, pc) = attach(&m, &store, 3, 1, 0xC0);
    assert_ne!(c1, a1);
    assert_ne!(pc, pa);
    assert_eq!(m.verify_target(a1), None);
    assert!(!m.is_path_active(pa, c1));
    m.clear();
    assert_eq!((m.device_count(), m.path_count(), m.dsm().luns().count()), (0, 0, 0));
}

#[test]
fn tables_that_are_full_decline_instead_of_failing() {
    let m = mpio();
    let store = Store::new();
    let devices: Vec<_> = (0..8u8)
        .map(|i| attach(&m, &store, i / 2 + 1, u16::from(i % 2) + 1, 0xA0 + usize::from(i % 4)).0)
        .collect();
    assert_eq!(m.device_count(), 8);
    assert_eq!(m.inquire(b"ACME    ", b"ARRAY           ", b"", &vpd83(1, 9, 1)), None, "device table full");
    let d = devices[0];
    m.remove_device(d);
    let extra = m.inquire(b"ACME    ", b"ARRAY           ", b"", &vpd83(1, 9, 1)).unwrap();
    assert_eq!(m.set_device_info(extra, 0xE0, 0, &store), None, "path table (4) full");
    assert_eq!(m.path_count(), 4, "no path handle leaked by the failed call");
}

#[test]
fn a_stored_policy_is_restored_when_the_lun_returns() {
    let m = mpio();
    let mut store = Store::new();
    let (a1, pa) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, _) = attach(&m, &store, 1, 2, 0xB0);
    let view = m.dsm().luns().next().unwrap();
    let snap = view.lun.load_balance_policy().unwrap();
    m.dsm().set_policy(view.id, LoadBalancePolicy::LeastQueueDepth, &snap.paths, &mut store).unwrap();

    // Admin move, permanent: preferred path stored with the policy.
    assert!(m.move_device(&[a1, a2], pa, true, &mut store));
    assert_eq!(
        m.dsm().luns().next().unwrap().lun.load_balance_policy().unwrap().preferred,
        Some(Small::path_id(pa))
    );

    m.remove_device(a1);
    m.remove_device(a2);
    assert_eq!(m.dsm().luns().count(), 0);
    let (b1, _) = attach(&m, &store, 1, 1, 0xA0);
    let back = m.dsm().luns().next().unwrap().lun.load_balance_policy().unwrap();
    assert_eq!(back.policy, LoadBalancePolicy::LeastQueueDepth);
    assert_eq!(back.preferred, Some(Small::path_id(pa)), "same MPIO path, same path id");
    assert!(m.is_path_active(pa, b1));
}

#[test]
fn concurrent_starts_and_completions_balance() {
    let m = mpio();
    let store = Store::new();
    let (a1, _) = attach(&m, &store, 1, 1, 0xA0);
    let (a2, _) = attach(&m, &store, 1, 2, 0xB0);
    std::thread::scope(|s| {
        for cpu in 0..4u32 {
            let m = &m;
            s.spawn(move || {
                for n in 0..20_000u64 {
                    let io = IO.on_cpu(cpu).at(n);
                    let Some(p) = m.select(&[a1, a2], None, &io) else { continue };
                    let device = if m.is_path_active(p, a1) { a1 } else { a2 };
                    if let Some(t) = m.start(device, &io) {
                        m.complete(t, n + 1, n % 7 != 0);
                        m.complete(t, n + 1, true); // a repeat is ignored
                    }
                }
            });
        }
    });
    assert_eq!(m.tickets_in_use(), 0);
    assert_eq!(m.dsm().luns().next().unwrap().lun.in_flight(), 0);
}
