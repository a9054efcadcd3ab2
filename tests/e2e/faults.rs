//! The fault-scenario suite: the simulator (its library, driving the real
//! engine and DSM core) and `rsdsm-sim serve` under path failures, a LUN
//! losing every path, a flapping path, LUN removal during a set, racing
//! sets, a process killed while persisting, and a burst of malformed
//! control requests. Every test prints one `FAULT |` row (scenario,
//! expected, observed); `cargo test -p rsdsm-e2e --test faults --
//! --nocapture --test-threads=1 | grep '^FAULT'` gives the results table.
//!
//! Wherever the simulator runs to its end, every I/O that started ended
//! exactly once: `issued == ios + failed_ios` and the engine's in-flight
//! count is back to 0.

use std::io::ErrorKind;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rsdsm::control::handle;
use rsdsm::dsm::Dsm;
use rsdsm::identity::{KeyKind, LunKey, PortIds};
use rsdsm::persist::{
    MAX_RECORD_LEN, MemoryStore, PolicyStore, Record, StoreError, decode_record, encode_record,
};
use rsdsm_e2e::{Server, call, call_raw};
use rsdsm_engine::wire::{
    IOCTL_RSDSM_GET_POLICY, IOCTL_RSDSM_SET_POLICY, LunId, MAX_REPLY_SIZE, MAX_REQUEST_SIZE, Opcode,
    RawPolicy, Records, Reply, Request, STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS, ctl_code,
};
use rsdsm_engine::{
    AccessState, Error, HResult, Health, LoadBalancePolicy, LunSettings, PathId, PathPolicy, PolicySnapshot,
};
use rsdsm_sim::file_store::FileStore;
use rsdsm_sim::host::Host;
use rsdsm_sim::run::{Live, run};
use rsdsm_sim::{PolicyResult, Scenario};

const MS: u64 = 1_000_000;
const P1: PathId = PathId::new(0, 1);
const P2: PathId = PathId::new(0, 2);

/// One LUN, two equal paths, a closed-loop workload; `events` appended.
fn scenario(events: &str) -> Scenario {
    let text = format!(
        r#"
duration_ms = 400
cpus = 2
[dsm]
verify_after_ms = 5
error_detect_us = 500
[workload]
queue_depth = 16
[[lun]]
name = "lun0"
[[lun.path]]
id = "0:1"
service = {{ kind = "exponential", mean_us = 200 }}
[[lun.path]]
id = "0:2"
service = {{ kind = "exponential", mean_us = 200 }}
{events}
"#
    );
    Scenario::parse(&text).unwrap()
}

fn row(scenario: &str, expected: &str, observed: &str) {
    println!("FAULT | {scenario} | {expected} | {observed} |");
}

/// Every I/O that started ended exactly once.
fn conserved(what: &str, r: &PolicyResult) {
    assert_eq!(r.issued, r.ios + r.failed_ios, "{what}/{}: an I/O ended twice or never", r.policy);
    assert_eq!(r.in_flight_at_end, 0, "{what}/{}: the engine's in-flight count did not balance", r.policy);
}

fn lun_of(host: &Host) -> LunId {
    host.dsm().luns().next().expect("the scenario's LUN").id
}

/// One control call through the driver's handler, as the shim makes it.
fn control<S: PolicyStore + ?Sized>(
    host: &Host,
    store: &mut S,
    request: &Request<'_>,
) -> Result<Vec<u8>, HResult> {
    let mut input = vec![0u8; MAX_REQUEST_SIZE];
    let n = request.encode(&mut input).unwrap();
    let mut output = vec![0u8; MAX_REPLY_SIZE];
    let w = handle(host.dsm(), store, request.opcode().ioctl(), &input[..n], &mut output)
        .expect("the call completes");
    output.truncate(w);
    match Reply::decode(request.opcode(), &output).expect("a well-formed reply") {
        Ok(_) => Ok(output),
        Err(code) => Err(code),
    }
}

fn set_request(lun: LunId, policy: LoadBalancePolicy, paths: &[PathPolicy]) -> Request<'_> {
    Request::SetPolicy {
        lun,
        policy: RawPolicy::from(policy),
        expected_generation: None,
        paths: Records::Typed(paths),
    }
}

fn policy_of(host: &Host, lun: LunId) -> Result<PolicySnapshot, Error> {
    host.dsm().lun(lun).ok_or(Error::ObjectDeleted)?.load_balance_policy()
}

fn both(primary: [bool; 2], weights: [u32; 2]) -> [PathPolicy; 2] {
    [
        PathPolicy { path_id: P1, primary: primary[0], weight: weights[0] },
        PathPolicy { path_id: P2, primary: primary[1], weight: weights[1] },
    ]
}

// ---------------------------------------------------------------------------

#[test]
fn path_failure_with_io_in_flight() {
    let s = scenario(
        r#"
[[event]]
at_ms = 100
action = "fail"
path = "0:1"
[[event]]
at_ms = 250
action = "recover"
path = "0:1"
"#,
    );
    let mut worst = 0.0f64;
    let mut total = (0, 0);
    for policy in LoadBalancePolicy::ALL {
        let r = run(&s, policy, 7).unwrap();
        conserved("path failure", &r);
        let failover = r.failover_ms.expect("I/O was in flight on the failed path");
        assert_eq!(r.failed_ios, 0, "{}: the other path was usable, no I/O may fail", r.policy);
        assert_eq!(r.sent_to_failed_paths, 0, "{}: I/O sent to a path the DSM had failed", r.policy);
        worst = worst.max(failover);
        total = (total.0 + r.issued, total.1 + r.ios);
    }
    row(
        "path failure with I/O in flight (all 9 policies)",
        "in-flight I/O retried on the other path; 0 failed; every I/O ends once",
        &format!(
            "{} issued = {} completed + 0 failed, 0 in flight at end; worst failover {worst} ms",
            total.0, total.1
        ),
    );
}

#[test]
fn every_path_of_a_lun_failing() {
    let s = scenario(
        r#"
[[event]]
at_ms = 100
action = "fail"
path = "0:1"
[[event]]
at_ms = 100
action = "fail"
path = "0:2"
"#,
    );
    let mut live = Live::new(&s, LoadBalancePolicy::RoundRobin, 3).unwrap();
    let host = live.host();
    let lun = lun_of(&host);
    live.advance_to(50 * MS).unwrap();
    let paths = both([true, true], [1, 1]);
    control(&host, &mut **host.store(), &set_request(lun, LoadBalancePolicy::LeastQueueDepth, &paths))
        .unwrap();
    live.advance_to(150 * MS).unwrap();
    let before = policy_of(&host, lun).unwrap();
    let (ok_at_150, failed_at_150) = live.counts();
    let refused =
        control(&host, &mut **host.store(), &set_request(lun, LoadBalancePolicy::RoundRobin, &paths));
    assert_eq!(refused, Err(HResult::VDS_E_OBJECT_STATUS_FAILED));
    assert_eq!(policy_of(&host, lun).unwrap(), before, "a refused set changed the LUN");
    live.advance_to(250 * MS).unwrap();
    let (ok_at_250, failed_at_250) = live.counts();
    assert_eq!(ok_at_250, ok_at_150, "no I/O can succeed without a path");
    assert!(failed_at_250 > failed_at_150, "I/O fails to the application instead of hanging");
    let started = Instant::now();
    let r = live.finish().unwrap();
    let drained = started.elapsed();
    assert!(drained < Duration::from_secs(10), "draining took {drained:?}");
    conserved("all paths failed", &r);
    row(
        "every path of a LUN fails",
        "set -> VDS_E_OBJECT_STATUS_FAILED, policy unchanged; I/O fails cleanly, nothing hangs",
        &format!(
            "set -> {:#010X}; {} failed / 0 completed in 100 ms after; drained in {drained:.0?}; {} issued = {} + {} failed, 0 in flight",
            refused.unwrap_err().0,
            failed_at_250 - failed_at_150,
            r.issued,
            r.ios,
            r.failed_ios
        ),
    );
}

#[test]
fn a_flapping_path_is_held_down() {
    // Failures at 100, 140, 180 ms, each recovered 20 ms later; the DSM
    // verifies 5 ms after a recovery. Two failures within the flap window
    // hold the path down (10 s at first).
    let events = r#"
[[event]]
at_ms = 100
action = "flap"
path = "0:1"
period_ms = 20
count = 3
"#;
    let s = scenario(events);
    let mut live = Live::new(&s, LoadBalancePolicy::RoundRobin, 5).unwrap();
    let host = live.host();
    let lun = lun_of(&host);
    let state = |host: &Host| {
        let info = host.dsm().lun(lun).unwrap().path_info().unwrap();
        *info.iter().find(|p| p.path_id == P1).unwrap()
    };
    live.advance_to(130 * MS).unwrap();
    assert_eq!(state(&host).health, Health::Healthy, "a first failure is reinstated on its good verify");
    live.advance_to(170 * MS).unwrap();
    let held = state(&host);
    assert_ne!(held.health, Health::Healthy, "the second failure's good verify must not reinstate it");
    assert!(!held.usable);
    let until = held.held_down_until.expect("held down");
    live.advance_to(300 * MS).unwrap();
    assert!(!state(&host).usable, "still held down after the flapping stopped");
    let r = live.finish().unwrap();
    conserved("flapping", &r);
    let mut held_total = 0;
    for policy in LoadBalancePolicy::ALL {
        let r = run(&s, policy, 5).unwrap();
        conserved("flapping", &r);
        assert!(r.held_down >= 1, "{}: never held down", r.policy);
        assert_eq!(r.failed_ios, 0);
        held_total += r.held_down;
    }
    row(
        "a flapping path (3 failures 40 ms apart)",
        "reinstated after its first failure; held down, not reinstated on the first good verify after the second",
        &format!(
            "healthy at 130 ms; at 170 ms {:?}, held down until {:.1} s; still unusable at 300 ms; {held_total} held-down verifies over 9 policies, 0 failed I/O",
            held.health,
            until as f64 / 1e9
        ),
    );
}

/// A store whose `save` runs `hook` first: something happens while the
/// DSM persists a set (between its two halves).
struct HookStore<'a, F: FnMut()> {
    inner: MemoryStore<8, MAX_RECORD_LEN>,
    hook: &'a mut F,
}

impl<F: FnMut()> PolicyStore for HookStore<'_, F> {
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        self.inner.load(key, buf)
    }
    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), StoreError> {
        (self.hook)();
        self.inner.save(key, record)
    }
    fn delete(&mut self, key: &LunKey) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
}

#[test]
fn lun_removal_during_a_set() {
    let s = scenario("");
    let mut live = Live::new(&s, LoadBalancePolicy::RoundRobin, 11).unwrap();
    let host = live.host();
    let lun = lun_of(&host);
    live.advance_to(50 * MS).unwrap();
    let (_, failed_before) = live.counts();
    let mut remove = || {
        let _ = host.dsm().remove_lun(lun);
    };
    let mut store = HookStore { inner: MemoryStore::new(), hook: &mut remove };
    let paths = both([true, false], [1, 1]);
    let result = control(&host, &mut store, &set_request(lun, LoadBalancePolicy::FailoverOnly, &paths));
    assert_eq!(result, Err(HResult::VDS_E_OBJECT_DELETED));
    let get = control(&host, &mut **host.store(), &Request::GetPolicy { lun });
    assert_eq!(get, Err(HResult::VDS_E_OBJECT_DELETED));
    live.advance_to(150 * MS).unwrap();
    let (_, failed_after) = live.counts();
    assert!(failed_after > failed_before, "I/O to the removed LUN fails");
    let r = live.finish().unwrap();
    assert_eq!(r.issued, r.ios + r.failed_ios, "every I/O ends exactly once");

    // And with real threads: sets racing a removal get S_OK or OBJECT_DELETED.
    let s = scenario("");
    let live = Live::new(&s, LoadBalancePolicy::RoundRobin, 12).unwrap();
    let host = live.host();
    let lun = lun_of(&host);
    let barrier = Barrier::new(2);
    let outcomes = std::thread::scope(|scope| {
        let setter = scope.spawn(|| {
            let mut store = MemoryStore::<8, MAX_RECORD_LEN>::new();
            barrier.wait();
            let mut seen = Vec::new();
            for i in 0..2000u32 {
                let paths = both([true, true], [1 + i % 5, 1]);
                let r =
                    control(&host, &mut store, &set_request(lun, LoadBalancePolicy::WeightedPaths, &paths));
                seen.push(r.as_ref().err().map_or(0, |c| c.0));
                if r == Err(HResult::VDS_E_OBJECT_DELETED) {
                    break;
                }
            }
            seen
        });
        barrier.wait();
        std::thread::sleep(Duration::from_micros(300));
        host.dsm().remove_lun(lun).unwrap();
        setter.join().unwrap()
    });
    let deleted = HResult::VDS_E_OBJECT_DELETED.0;
    assert!(outcomes.iter().all(|&c| c == 0 || c == deleted), "unexpected results {outcomes:x?}");
    assert_eq!(outcomes.last(), Some(&deleted), "the set after the removal must see it");
    row(
        "LUN removed while a set persists",
        "VDS_E_OBJECT_DELETED; later calls too; I/O fails cleanly",
        &format!(
            "set -> {:#010X}, GetPolicy -> {:#010X}; {} I/O failed after; {} issued = {} + {} failed; threaded race: {} sets S_OK then OBJECT_DELETED",
            result.unwrap_err().0,
            get.unwrap_err().0,
            failed_after - failed_before,
            r.issued,
            r.ios,
            r.failed_ios,
            outcomes.len() - 1
        ),
    );
}

#[test]
fn two_concurrent_sets() {
    let s = scenario("");
    let mut live = Live::new(&s, LoadBalancePolicy::RoundRobin, 13).unwrap();
    let host = live.host();
    let lun = lun_of(&host);
    live.advance_to(20 * MS).unwrap();

    // Deterministic: the first set is held inside its persistence step.
    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let winner = both([true, false], [1, 1]);
    let loser = both([true, true], [3, 8]);
    let (first, second) = std::thread::scope(|scope| {
        let (h, w) = (&host, &winner);
        let first = scope.spawn(move || {
            let mut hook = || {
                entered_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            };
            let mut store = HookStore { inner: MemoryStore::new(), hook: &mut hook };
            control(h, &mut store, &set_request(lun, LoadBalancePolicy::FailoverOnly, w))
        });
        entered_rx.recv().unwrap();
        let mut other = MemoryStore::<8, MAX_RECORD_LEN>::new();
        let second = control(&host, &mut other, &set_request(lun, LoadBalancePolicy::WeightedPaths, &loser));
        go_tx.send(()).unwrap();
        (first.join().unwrap(), second)
    });
    assert!(first.is_ok());
    assert_eq!(second, Err(HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS));
    let now = policy_of(&host, lun).unwrap();
    assert_eq!((now.policy, now.paths.as_slice()), (LoadBalancePolicy::FailoverOnly, &winner[..]));

    // Free running: two threads set at the same instant, many times.
    let rounds = 300;
    let mut tally = [0u32; 2]; // one won + one busy; both applied, one after the other
    for round in 0..rounds {
        let barrier = Barrier::new(2);
        let a = both([true, true], [1 + round % 7, 2]);
        let b = both([true, true], [9, 1 + round % 5]);
        let (ra, rb) = std::thread::scope(|scope| {
            let ta = scope.spawn(|| {
                let mut store = MemoryStore::<8, MAX_RECORD_LEN>::new();
                barrier.wait();
                control(&host, &mut store, &set_request(lun, LoadBalancePolicy::WeightedPaths, &a))
            });
            let tb = scope.spawn(|| {
                let mut store = MemoryStore::<8, MAX_RECORD_LEN>::new();
                barrier.wait();
                control(&host, &mut store, &set_request(lun, LoadBalancePolicy::LeastBlocks, &b))
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let generation = |bytes: &Vec<u8>| match Reply::decode(Opcode::SetPolicy, bytes).unwrap() {
            Ok(Reply::SetPolicy { generation }) => generation,
            other => panic!("{other:?}"),
        };
        let now = policy_of(&host, lun).unwrap();
        let busy = Err(HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        match (&ra, &rb) {
            (Ok(_), r) if *r == busy => {
                assert_eq!((now.policy, now.paths.as_slice()), (LoadBalancePolicy::WeightedPaths, &a[..]));
                tally[0] += 1;
            }
            (r, Ok(_)) if *r == busy => {
                assert_eq!((now.policy, now.paths.as_slice()), (LoadBalancePolicy::LeastBlocks, &b[..]));
                tally[0] += 1;
            }
            (Ok(x), Ok(y)) => {
                // Not concurrent after all: one ran after the other.
                let last = if generation(x) > generation(y) {
                    (LoadBalancePolicy::WeightedPaths, &a[..])
                } else {
                    (LoadBalancePolicy::LeastBlocks, &b[..])
                };
                assert_eq!((now.policy, now.paths.as_slice()), last);
                tally[1] += 1;
            }
            other => panic!("round {round}: neither a clean win nor two sets in turn: {other:?}"),
        }
    }
    live.advance_to(100 * MS).unwrap();
    let r = live.finish().unwrap();
    conserved("racing sets", &r);
    row(
        "two concurrent sets on one LUN",
        "exactly one wins, the other VDS_E_ANOTHER_CALL_IN_PROGRESS; the table is the winner's",
        &format!(
            "held set: winner S_OK, other {:#010X}, table = winner's; {rounds} free races: {} one-won-one-busy, {} ran in turn (last one's table), 0 other; {} issued = {} + {} failed",
            HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS.0,
            tally[0],
            tally[1],
            r.issued,
            r.ios,
            r.failed_ios
        ),
    );
}

// ---------------------------------------------------------------------------
// Crash while persisting.

const WRITER_ENV: &str = "RSDSM_FAULT_WRITER_DIR";

fn crash_key() -> LunKey {
    LunKey::from_parts(KeyKind::Naa, &[&[0x60, 0x0A, 0x5D, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42]])
}

/// The record the writer child writes for `generation`: its content is a
/// function of the generation, so a reader can tell an intact record of
/// any generation from a mix of two.
fn crash_record(generation: u64) -> Record<32> {
    let policies =
        [LoadBalancePolicy::RoundRobin, LoadBalancePolicy::WeightedPaths, LoadBalancePolicy::LeastBlocks];
    let mut paths = heapless::Vec::new();
    for (i, id) in [P1, P2].into_iter().enumerate() {
        let weight = u32::try_from((generation * 7 + i as u64) % 1000).unwrap() + 1;
        paths.push(PathPolicy { path_id: id, primary: true, weight }).unwrap();
    }
    Record {
        key: crash_key(),
        policy: policies[usize::try_from(generation % 3).unwrap()],
        generation,
        preferred: generation.is_multiple_of(2).then_some(P2),
        paths,
    }
}

/// Not a test of its own: the child process of
/// `a_crash_while_persisting_leaves_the_old_or_the_new_record`, which
/// persists records as fast as it can until it is killed.
#[test]
fn persist_writer_child() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else { return };
    let mut store = FileStore::open(dir).unwrap();
    let mut buf = [0u8; MAX_RECORD_LEN];
    let mut generation = match store.load(&crash_key(), &mut buf).unwrap() {
        Some(n) => decode_record::<32>(&buf[..n]).unwrap().generation,
        None => 0,
    };
    loop {
        generation += 1;
        let n = encode_record(&crash_record(generation), &mut buf).unwrap();
        store.save(&crash_key(), &buf[..n]).unwrap();
    }
}

#[test]
fn a_crash_while_persisting_leaves_the_old_or_the_new_record() {
    let dir = std::env::temp_dir().join(format!("rsdsm-faults-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = FileStore::open(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last = 0u64;
    let mut tmp_left = 0;
    let kills = 40;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args(["persist_writer_child", "--exact", "--test-threads=1"])
            .env(WRITER_ENV, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 70));
        child.kill().unwrap(); // SIGKILL: no clean-up runs
        child.wait().unwrap();
        if store.path_of(&crash_key()).with_extension("tmp").exists() {
            tmp_left += 1;
        }
        let mut buf = [0u8; MAX_RECORD_LEN];
        let Some(n) = store.load(&crash_key(), &mut buf).unwrap() else {
            assert_eq!(last, 0, "round {round}: the record vanished");
            continue;
        };
        let record =
            decode_record::<32>(&buf[..n]).unwrap_or_else(|e| panic!("round {round}: torn record: {e:?}"));
        assert_eq!(record, crash_record(record.generation), "round {round}: a mix of two records");
        assert!(record.generation >= last, "round {round}: went back from {last} to {}", record.generation);
        last = record.generation;
    }
    assert!(last > 0, "the child never wrote");

    // The last record applies to the LUN it belongs to...
    let dsm = Box::new(Dsm::<2, 8>::new(LoadBalancePolicy::FailoverOnly, LunSettings::default()));
    let (id, _) = dsm.add_path(&crash_key(), P1, PortIds::default(), AccessState::ActiveOptimized).unwrap();
    dsm.add_path(&crash_key(), P2, PortIds::default(), AccessState::ActiveOptimized).unwrap();
    let applied = dsm.restore_policy(id, &store).unwrap();
    let restored = dsm.lun(id).unwrap().load_balance_policy().unwrap();
    assert_eq!(restored.policy, crash_record(last).policy);
    // ...and a damaged one is reported and not applied.
    let file = store.path_of(&crash_key());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let before = dsm.lun(id).unwrap().load_balance_policy().unwrap();
    let corrupt = dsm.restore_policy(id, &store).unwrap_err();
    assert_eq!(corrupt.hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert_eq!(dsm.lun(id).unwrap().load_balance_policy().unwrap(), before, "a corrupt record was applied");
    bytes.truncate(mid);
    std::fs::write(&file, &bytes).unwrap();
    let torn = dsm.restore_policy(id, &store).unwrap_err();
    assert_eq!(torn.hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT);
    assert_eq!(dsm.lun(id).unwrap().load_balance_policy().unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
    row(
        "process killed while persisting, then restart",
        "the store yields the old or the new record, never a torn one; a corrupt record -> VDS_E_PROVIDER_CACHE_CORRUPT, not applied",
        &format!(
            "{kills} SIGKILLs mid-stream ({tmp_left} left a temporary file): every record intact, generations monotonic up to {last}; restore {applied:?}; bit flip -> {:#010X}, truncation -> {:#010X}, policy unchanged",
            corrupt.hresult().0,
            torn.hresult().0
        ),
    );
}

// ---------------------------------------------------------------------------
// Malformed control requests over the socket.

/// 10,000 malformed requests, deterministic: every one must be refused.
fn malformed(i: u32, lun: LunId) -> (u32, Vec<u8>) {
    let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let paths = both([true, true], [1, 1]);
    let valid_set = {
        let r = set_request(lun, LoadBalancePolicy::RoundRobin, &paths);
        let mut b = vec![0u8; r.encoded_len()];
        r.encode(&mut b).unwrap();
        b
    };
    let valid_get = {
        let mut b = vec![0u8; 64];
        let n = Request::GetPolicy { lun }.encode(&mut b).unwrap();
        b.truncate(n);
        b
    };
    let r = next();
    let len = |v: &Vec<u8>, r: u64| usize::try_from(r % v.len() as u64).unwrap();
    match i % 9 {
        // Truncated SetPolicy.
        0 => (IOCTL_RSDSM_SET_POLICY, valid_set[..len(&valid_set, r)].to_vec()),
        // A bit flipped in the header (magic, version, opcode, size, status).
        1 => {
            let mut b = valid_set.clone();
            b[usize::try_from(r % 16).unwrap()] ^= 1 << ((r >> 8) % 8);
            (IOCTL_RSDSM_SET_POLICY, b)
        }
        // A path count that does not match the body (or exceeds MAX_PATHS).
        2 => {
            let mut b = valid_set.clone();
            // Header 16, LUN 8, policy 8, generation 8, flags 4: the count.
            let bad = [0u32, 1, 3, 64, 65, u32::MAX][usize::try_from(r % 6).unwrap()];
            b[44..48].copy_from_slice(&bad.to_le_bytes());
            (IOCTL_RSDSM_SET_POLICY, b)
        }
        // Random bytes.
        3 => {
            let n = usize::try_from(r % 200).unwrap();
            (Opcode::ALL[usize::try_from(r % 9).unwrap()].ioctl(), (0..n).map(|_| next() as u8).collect())
        }
        // A request sent with another opcode's IOCTL.
        4 => (IOCTL_RSDSM_SET_POLICY, valid_get.clone()),
        // Trailing garbage.
        5 => {
            let mut b = valid_set.clone();
            b.extend_from_slice(&[0xAB; 3]);
            (IOCTL_RSDSM_SET_POLICY, b)
        }
        // A well-formed set the DSM must refuse: unknown policy number.
        6 => {
            let r = Request::SetPolicy {
                lun,
                policy: RawPolicy { number: 8 + u32::try_from(r % 1000).unwrap(), vendor: 0 },
                expected_generation: None,
                paths: Records::Typed(&paths),
            };
            let mut b = vec![0u8; r.encoded_len()];
            r.encode(&mut b).unwrap();
            (IOCTL_RSDSM_SET_POLICY, b)
        }
        // A LUN that does not exist.
        7 => {
            let mut b = vec![0u8; 64];
            let n = Request::GetPolicy { lun: LunId(r | 0x8000_0000_0000_0000) }.encode(&mut b).unwrap();
            b.truncate(n);
            (IOCTL_RSDSM_GET_POLICY, b)
        }
        // An IOCTL code that is not ours (wrong access bits or function).
        _ => (
            ctl_code(0x8A5D, 0x900 + u32::try_from(r % 64).unwrap(), 0, u32::try_from(r % 4).unwrap()),
            valid_get.clone(),
        ),
    }
}

/// Two healthy paths and a steady closed-loop workload, no events.
const STEADY: &str = r#"
name = "steady"
duration_ms = 1000
[workload]
queue_depth = 8
[[lun]]
name = "lun0"
[[lun.path]]
id = "0:1"
service = { kind = "exponential", mean_us = 200 }
[[lun.path]]
id = "0:2"
service = { kind = "exponential", mean_us = 200 }
"#;

fn statistics(stream: &mut std::os::unix::net::UnixStream, lun: LunId) -> (u64, u64) {
    let bytes = call(stream, &Request::GetStatistics { lun });
    let Ok(Ok(Reply::GetStatistics(list))) = Reply::decode(Opcode::GetStatistics, &bytes) else { panic!() };
    list.iter().fold((0, 0), |(c, e), s| (c + s.statistics.completed(), e + s.statistics.errors))
}

#[test]
fn a_burst_of_malformed_control_requests_over_the_socket() {
    let dir = std::env::temp_dir().join(format!("rsdsm-faults-burst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("steady.toml");
    let text = STEADY;
    std::fs::write(&file, text).unwrap();
    let server = Server::start("faults-burst", &["--scenario", file.to_str().unwrap(), "--policy", "RR"]);
    let mut stream = server.connect();
    let list = call(&mut stream, &Request::ListLuns);
    let Ok(Ok(Reply::ListLuns(luns))) = Reply::decode(Opcode::ListLuns, &list) else { panic!() };
    let lun = luns.get(0).unwrap().lun;
    let state = |stream: &mut std::os::unix::net::UnixStream| {
        (
            call(stream, &Request::GetPolicy { lun }),
            call(stream, &Request::GetDefaultPolicy),
            call(stream, &Request::GetPathInfo { lun }).len(),
        )
    };
    let before = state(&mut stream);
    let (c0, e0) = statistics(&mut stream, lun);
    std::thread::sleep(Duration::from_millis(300));
    let (c1, _) = statistics(&mut stream, lun);
    let baseline = (c1 - c0) as f64 / 0.3;

    let started = Instant::now();
    let (mut error_replies, mut failed_calls) = (0u32, 0u32);
    for i in 0..10_000 {
        let (ioctl, input) = malformed(i, lun);
        let (status, body) = call_raw(&mut stream, ioctl, &input, MAX_REPLY_SIZE);
        if status == STATUS_SUCCESS {
            let opcode = Opcode::from_ioctl(ioctl).unwrap();
            match Reply::decode(opcode, &body) {
                Ok(Err(code)) => assert!(!code.is_success()),
                other => panic!("request {i} was not refused: {other:?}"),
            }
            error_replies += 1;
        } else {
            assert_eq!(status, STATUS_INVALID_DEVICE_REQUEST, "request {i}");
            assert!(body.is_empty());
            failed_calls += 1;
        }
    }
    let took = started.elapsed();
    let (c2, e2) = statistics(&mut stream, lun);
    let during = (c2 - c1) as f64 / took.as_secs_f64();
    assert_eq!(state(&mut stream), before, "the burst changed the DSM's state");
    assert_eq!(e2, e0, "the burst made I/O fail");
    assert!(during > 0.5 * baseline, "I/O slowed from {baseline:.0}/s to {during:.0}/s during the burst");
    // The connection still works and the server is alive.
    assert!(matches!(Reply::decode(Opcode::ListLuns, &call(&mut stream, &Request::ListLuns)), Ok(Ok(_))));
    drop(server);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => panic!("{e}"),
    }
    row(
        "10,000 malformed control requests over the socket",
        "every one answered with an error; DSM state unchanged; I/O unaffected",
        &format!(
            "{error_replies} error replies + {failed_calls} failed calls (foreign IOCTL codes) in {took:.1?}; policy, default and path table byte-identical; I/O {baseline:.0}/s before, {during:.0}/s during, 0 errors"
        ),
    );
}

// ---------------------------------------------------------------------------
// The same crash on the real product: `rsdsm-sim serve --state DIR` killed
// while it answers (and persists) a stream of sets, then restarted.

/// One call that tolerates the server dying: `None` once it is gone.
fn try_call(stream: &mut std::os::unix::net::UnixStream, request: &Request<'_>) -> Option<Vec<u8>> {
    use rsdsm_engine::wire::{FrameHeader, ReplyHeader};
    use std::io::{Read, Write};
    let mut input = vec![0u8; request.encoded_len()];
    let n = request.encode(&mut input).ok()?;
    let head = FrameHeader {
        ioctl: request.opcode().ioctl(),
        input_len: u32::try_from(n).ok()?,
        output_capacity: u32::try_from(MAX_REPLY_SIZE).ok()?,
    };
    stream.write_all(&head.encode()).ok()?;
    stream.write_all(&input[..n]).ok()?;
    let mut reply = [0u8; ReplyHeader::SIZE];
    stream.read_exact(&mut reply).ok()?;
    let reply = ReplyHeader::decode(&reply, MAX_REPLY_SIZE).ok()?;
    let mut body = vec![0u8; reply.len()];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// The `i`-th set of the stream: a policy and weights that identify `i`.
fn nth_set(i: u32) -> (LoadBalancePolicy, [PathPolicy; 2]) {
    let policies = [
        LoadBalancePolicy::RoundRobin,
        LoadBalancePolicy::LeastQueueDepth,
        LoadBalancePolicy::WeightedPaths,
        LoadBalancePolicy::LeastBlocks,
    ];
    (policies[(i % 4) as usize], both([true, true], [1 + i % 97, 1 + (i / 97) % 97]))
}

#[test]
fn serve_killed_while_persisting_restarts_with_the_old_or_the_new_policy() {
    let dir = std::env::temp_dir().join(format!("rsdsm-faults-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("steady.toml");
    std::fs::write(&file, STEADY).unwrap();
    let state = dir.join("state");
    let (scenario, state_arg) = (file.to_str().unwrap(), state.to_str().unwrap());
    let initial = (LoadBalancePolicy::RoundRobin, both([true, true], [1, 1]).to_vec());
    let expected =
        |i: Option<u32>| i.map_or_else(|| initial.clone(), |i| (nth_set(i).0, nth_set(i).1.to_vec()));
    // What the store held before the set in flight at the kill (None: the
    // start state), and that set.
    let mut old: Option<u32> = None;
    let mut in_flight: Option<u32> = None;
    let mut next = 1u32;
    let rounds = 8u32;
    let (mut acknowledged, mut new_after_restart) = (0, 0);
    for round in 0..rounds {
        let server = Server::start(
            &format!("faults-state-{round}"),
            &["--scenario", scenario, "--policy", "RR", "--state", state_arg],
        );
        let mut stream = server.connect();
        let list = call(&mut stream, &Request::ListLuns);
        let Ok(Ok(Reply::ListLuns(luns))) = Reply::decode(Opcode::ListLuns, &list) else { panic!() };
        let lun = luns.get(0).unwrap().lun;
        let bytes = call(&mut stream, &Request::GetPolicy { lun });
        let decoded = Reply::decode(Opcode::GetPolicy, &bytes);
        let Ok(Ok(Reply::GetPolicy { policy, paths, .. })) = decoded else {
            panic!("round {round}: the restarted DSM cannot report its policy: {decoded:?}");
        };
        let now = (policy.policy().unwrap(), paths.iter().collect::<Vec<_>>());
        if in_flight.is_some() && now == expected(in_flight) {
            old = in_flight;
            new_after_restart += 1;
        } else {
            assert_eq!(
                now,
                expected(old),
                "round {round}: neither the old ({old:?}) nor the new ({in_flight:?}) set"
            );
        }
        // Sets as fast as the server answers, until a SIGKILL at a random moment.
        let pid = server.child.id();
        let delay = Duration::from_millis(40 + u64::from(round) * 37 % 90);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        });
        loop {
            let (policy, paths) = nth_set(next);
            let Some(reply) = try_call(&mut stream, &set_request(lun, policy, &paths)) else { break };
            match Reply::decode(Opcode::SetPolicy, &reply) {
                Ok(Ok(_)) => old = Some(next),
                other => panic!("set {next}: {other:?}"),
            }
            acknowledged += 1;
            next += 1;
        }
        killer.join().unwrap();
        in_flight = Some(next);
        next += 1;
        drop(server);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    row(
        "rsdsm-sim serve --state killed (SIGKILL) during a stream of sets, restarted",
        "restarts with the last acknowledged policy or the one in flight; never a torn record",
        &format!(
            "{rounds} kills, {acknowledged} sets acknowledged; every restart reported the last acknowledged policy ({} times the one in flight)",
            new_after_restart
        ),
    );
}
