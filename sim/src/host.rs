//! The simulated host's DSM: the driver's portable core (`rsdsm::dsm::Dsm`),
//! called the way mpio.sys calls the real driver's entry points. The
//! simulator never chooses a path or classifies an error itself: devices
//! are claimed from real-layout INQUIRY/VPD 0x83 data, errors come back as
//! SCSI sense bytes or transport errors for `InterpretError`, ALUA changes
//! are re-read as REPORT TARGET PORT GROUPS data, and policy sets go through
//! the same persistence path as on Windows.

use rsdsm::claim::ClaimList;
use rsdsm::dsm::Dsm;
use rsdsm::identity::LunKey;
use std::sync::{Mutex, MutexGuard};

use rsdsm::dsm::Restored;
use rsdsm::persist::{MAX_RECORD_LEN, MemoryStore, PolicyStore, StoreError};
use rsdsm::registry::LunId;
use rsdsm::sense::{SenseAction, TransportError};
use rsdsm_engine::{
    AccessState, Error, FailbackMode, Health, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun,
    LunSettings, NoPath, PathPolicy, PathSlot, Reinstatement,
};

use crate::fabric::Answer;
use crate::scenario::{DsmSettings, FailbackName, PathSpec};

/// Ticks are nanoseconds of simulated time.
pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

/// LUNs one simulated host can have.
pub const MAX_LUNS: usize = 8;

/// INQUIRY identity of the simulated array, and the claim-list entry (as
/// in MPIOSupportedDeviceList) that makes the DSM claim it.
const VENDOR: &[u8; 8] = b"RSDSMSIM";
const PRODUCT: &[u8; 16] = b"SIMULATED LUN   ";
const CLAIM: &str = "RSDSMSIMSIMULATED";

/// The persistent store of the simulated host (the registry on Windows):
/// memory for `run`, a [`FileStore`](crate::file_store::FileStore) for
/// `serve --state DIR`.
pub type Store = Box<dyn PolicyStore + Send>;

/// The store of a host that keeps nothing across runs.
#[must_use]
pub fn memory_store() -> Store {
    Box::new(MemoryStore::<MAX_LUNS, MAX_RECORD_LEN>::new())
}

/// The DSM of one simulated host, with its persistent store. Shared between
/// the simulated I/O and (under `serve`) the control requests, exactly as
/// the driver's DSM is shared between I/O and the control device.
pub struct Host {
    dsm: Box<Dsm<MAX_LUNS, 32>>,
    store: Mutex<Store>,
    claims: ClaimList<4>,
    persist_delay: std::time::Duration,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

/// What the DSM does with an I/O that came back with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Retry (on whatever path the policy picks next), counting the retry.
    Retry,
    /// Retry without counting it: the path is fine, its state changed.
    RetryUncounted,
    /// Fail the I/O to the application.
    Fail,
}

impl Host {
    /// A host whose DSM starts every LUN with `policy` and `dsm`'s settings,
    /// persisting to memory.
    #[must_use]
    pub fn new(policy: LoadBalancePolicy, dsm: &DsmSettings) -> Self {
        Self::with_store(policy, dsm, memory_store())
    }

    /// As [`new`](Self::new), persisting to `store`: a LUN whose record is
    /// in the store starts with the stored policy instead of `policy`.
    #[must_use]
    pub fn with_store(policy: LoadBalancePolicy, dsm: &DsmSettings, store: Store) -> Self {
        let mut settings = LunSettings::for_tick_rate(TICKS_PER_SECOND);
        settings.failback = match dsm.failback {
            FailbackName::Immediate => FailbackMode::Immediate,
            FailbackName::Manual => FailbackMode::Manual,
            FailbackName::Delayed => FailbackMode::Delayed(dsm.failback_delay_ms.ns()),
        };
        Self {
            dsm: Box::new(Dsm::new(policy, settings)),
            store: Mutex::new(store),
            claims: ClaimList::from_strs([CLAIM]).unwrap_or_default(),
            persist_delay: std::time::Duration::from_secs_f64(dsm.persist_delay_ms.0 / 1e3),
        }
    }

    /// The store as control requests use it under `serve`: each operation
    /// takes the lock by itself (like the registry, the store serialises
    /// single writes, not whole control calls), and a save first waits
    /// `persist_delay_ms` of wall-clock time — a slow registry flush, during
    /// which the DSM holds the LUN's set in progress.
    #[must_use]
    pub fn live_store(&self) -> LiveStore<'_> {
        LiveStore(self)
    }

    /// The DSM (for the control handler of `serve`).
    #[must_use]
    pub fn dsm(&self) -> &Dsm<MAX_LUNS, 32> {
        &self.dsm
    }

    /// The persistent store; a poisoned lock (a panicked holder) still
    /// yields the store: records are checked on every read anyway.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// See [`Host::live_store`].
#[derive(Debug)]
pub struct LiveStore<'a>(&'a Host);

impl PolicyStore for LiveStore<'_> {
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        self.0.store().load(key, buf)
    }

    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), StoreError> {
        if !self.0.persist_delay.is_zero() {
            std::thread::sleep(self.0.persist_delay);
        }
        self.0.store().save(key, record)
    }

    fn delete(&mut self, key: &LunKey) -> Result<(), StoreError> {
        self.0.store().delete(key)
    }
}

/// One LUN as the host's DSM sees it.
#[derive(Debug)]
pub struct LunHost {
    /// The LUN's id in the DSM, once its first path has arrived.
    id: Option<LunId>,
    /// The LUN's number on the simulated array (its NAA identifier).
    serial: u32,
    /// Engine slot of each scenario path (by index), while present.
    slots: Vec<Option<PathSlot>>,
}

impl LunHost {
    /// LUN `serial` with the scenario's present paths, and the policy
    /// stored for it if the host's store has a valid record, else `policy`
    /// applied with the scenario's admin settings.
    ///
    /// # Errors
    /// The DSM's, if the scenario's admin settings are invalid for the
    /// policy (e.g. failover only without a primary path).
    pub fn new(
        host: &Host,
        serial: u32,
        paths: &[PathSpec],
        policy: LoadBalancePolicy,
    ) -> Result<Self, Error> {
        let mut lun = Self { id: None, serial, slots: vec![None; paths.len()] };
        for (index, spec) in paths.iter().enumerate() {
            if spec.present {
                lun.add_path(host, index, spec)?;
            }
        }
        // With every present path there, a stored record (from an earlier
        // run of the same host) applies as on Windows at LUN arrival.
        let restored = lun.id.map(|id| host.dsm.restore_policy(id, &**host.store()));
        if !matches!(restored, Some(Ok(Restored::Applied(_)))) {
            lun.set_policy(host, policy, paths)?;
        }
        Ok(lun)
    }

    /// The engine's LUN (statistics, path info), while present.
    #[must_use]
    pub fn lun<'h>(&self, host: &'h Host) -> Option<&'h Lun> {
        host.dsm.lun(self.id?)
    }

    /// The DSM's id of this LUN.
    #[must_use]
    pub fn id(&self) -> Option<LunId> {
        self.id
    }

    /// The scenario path index of an engine slot.
    #[must_use]
    pub fn path_index(&self, slot: PathSlot) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(slot))
    }

    /// The engine slot of a scenario path.
    #[must_use]
    pub fn slot(&self, index: usize) -> Option<PathSlot> {
        self.slots.get(index).copied().flatten()
    }

    /// SetLoadBalancePolicy (persisted, as on Windows) with the scenario's
    /// admin settings. Failover only takes the first primary path as its
    /// only primary.
    ///
    /// # Errors
    /// The DSM's validation result.
    pub fn set_policy(
        &self,
        host: &Host,
        policy: LoadBalancePolicy,
        paths: &[PathSpec],
    ) -> Result<u64, Error> {
        let id = self.id.ok_or(Error::ObjectDeleted)?;
        let (low, high) = policy.weight_range();
        let mut primary_seen = false;
        let admin: Vec<PathPolicy> = self
            .slots
            .iter()
            .zip(paths)
            .filter(|(slot, _)| slot.is_some())
            .map(|(_, spec)| {
                let mut primary = spec.primary;
                if policy == LoadBalancePolicy::FailoverOnly {
                    primary &= !primary_seen;
                    primary_seen |= primary;
                }
                PathPolicy { path_id: spec.id.0, primary, weight: spec.weight.clamp(low, high) }
            })
            .collect();
        host.dsm.set_policy(id, policy, &admin, &mut **host.store())
    }

    /// LBGetPath + SetCompletion.
    ///
    /// # Errors
    /// `NoPath` when no path is usable (or the LUN is gone).
    pub fn dispatch(&self, host: &Host, io: &IoRequest) -> Result<IoTicket, NoPath> {
        let id = self.id.ok_or(NoPath)?;
        let slot = host.dsm.select(id, io)?;
        host.dsm.start(id, slot, io)
    }

    /// The completion routine for a good I/O.
    pub fn complete_good(&self, host: &Host, ticket: IoTicket, now: u64) {
        if let Some(id) = self.id {
            host.dsm.complete(id, ticket, now, IoOutcome::Success);
        }
    }

    /// The completion routine for an I/O that came back with an error, then
    /// `InterpretError` on what the array (or the transport) returned. A
    /// fatal verdict fails the path for the very next selection; a verdict
    /// asking to re-read ALUA states gets them from `rtpg`.
    pub fn complete_error(
        &self,
        host: &Host,
        ticket: IoTicket,
        now: u64,
        answer: Answer,
        rtpg: impl FnOnce() -> Vec<u8>,
    ) -> ErrorAction {
        let Some(id) = self.id else { return ErrorAction::Fail };
        let slot = ticket.slot();
        host.dsm.complete(id, ticket, now, IoOutcome::Error);
        let verdict = match answer {
            Answer::Good => return ErrorAction::Retry,
            Answer::TransportError => {
                host.dsm.interpret_transport(id, slot, TransportError::SelectionTimeout, now)
            }
            Answer::AluaChanged => {
                host.dsm.interpret_error(id, slot, &fixed_sense(0x6, 0x2A, 0x06), true, now)
            }
            Answer::PortNotActive => {
                host.dsm.interpret_error(id, slot, &fixed_sense(0x2, 0x04, 0x0C), true, now)
            }
        };
        if verdict.reread_alua {
            let data = rtpg();
            if let Ok(report) = rsdsm::alua::Rtpg::parse(&data) {
                let _ = host.dsm.apply_rtpg(id, &report);
            }
        }
        match verdict.action {
            SenseAction::FatalFailover | SenseAction::Retry => ErrorAction::Retry,
            SenseAction::RetryNoCount => ErrorAction::RetryUncounted,
            SenseAction::PassUp => ErrorAction::Fail,
        }
    }

    /// PathVerify found the path working: reinstate it (after re-reading
    /// the ALUA states). Returns when to try again if it is held down.
    pub fn verified(&self, host: &Host, index: usize, rtpg: &[u8], now: u64) -> Option<u64> {
        let id = self.id?;
        let slot = self.slot(index)?;
        if let Ok(report) = rsdsm::alua::Rtpg::parse(rtpg) {
            let _ = host.dsm.apply_rtpg(id, &report);
        }
        if !self.is_failed(host, index) {
            return None;
        }
        let _ = host.dsm.verify(id, slot);
        match host.dsm.reinstate(id, slot, now) {
            Ok(Reinstatement::HeldDown { until }) => Some(until),
            _ => None,
        }
    }

    /// `true` if the DSM considers the path failed (or verifying).
    #[must_use]
    pub fn is_failed(&self, host: &Host, index: usize) -> bool {
        let (Some(slot), Some(lun)) = (self.slot(index), self.lun(host)) else { return false };
        lun.health(slot).is_some_and(|h| h != Health::Healthy)
    }

    /// Delayed failback's clock.
    pub fn poll(&self, host: &Host, now: u64) {
        if let Some(lun) = self.lun(host) {
            lun.poll(now);
        }
    }

    /// A path arrives: InquireDriver (claim + identity from INQUIRY and
    /// VPD 0x83), then SetDeviceInfo; the first path of the LUN restores
    /// its persisted policy, if any.
    ///
    /// # Errors
    /// The DSM's (e.g. the table is full), or `E_INVALIDARG` if the device
    /// is not claimed.
    pub fn add_path(&mut self, host: &Host, index: usize, spec: &PathSpec) -> Result<(), Error> {
        let (port, group) = port_ids(spec);
        let page = vpd83(self.serial, port, group);
        let identity = host
            .dsm
            .inquire(&host.claims, VENDOR, PRODUCT, Some(&page), None)
            .map_err(|_| Error::InvalidArgument(rsdsm_engine::Invalid::UnknownPath))?;
        let (id, slot) = host.dsm.add_path(&identity.key, spec.id.0, identity.ports, spec.access.0)?;
        if self.id.is_none() {
            self.id = Some(id);
            let _ = host.dsm.restore_policy(id, &**host.store());
        }
        if let Some(s) = self.slots.get_mut(index) {
            *s = Some(slot);
        }
        Ok(())
    }

    /// A path goes away (RemovePath).
    pub fn remove_path(&mut self, host: &Host, index: usize) {
        if let (Some(id), Some(slot)) = (self.id, self.slots.get_mut(index).and_then(Option::take)) {
            let _ = host.dsm.remove_path(id, slot);
        }
    }

    /// The LUN goes away (RemoveDevice of its last path).
    pub fn remove_lun(&self, host: &Host) {
        if let Some(id) = self.id {
            let _ = host.dsm.remove_lun(id);
        }
    }

    /// The LUN's stable key (for tests).
    #[must_use]
    pub fn key(&self, host: &Host) -> Option<LunKey> {
        host.dsm.key(self.id?)
    }
}

/// Relative target port and target port group of a path. The scenario
/// gives every path its own ALUA state, so every port is its own group.
#[must_use]
pub fn port_ids(spec: &PathSpec) -> (u16, u16) {
    let id = spec.id.0;
    #[allow(clippy::cast_possible_truncation, reason = "ids are small; only uniqueness within a LUN matters")]
    let port = ((id.source_id << 8) | (id.path_id & 0xFF)) as u16;
    (port, port)
}

/// VPD page 0x83 as the simulated array returns it on one path: an NAA 6
/// LUN designator (the same on every path), the relative target port and
/// the target port group of the port the path goes through.
#[must_use]
pub fn vpd83(serial: u32, port: u16, group: u16) -> Vec<u8> {
    let mut naa = [0u8; 16];
    naa[0] = 0x60; // NAA 6, IEEE company id follows
    naa[1..4].copy_from_slice(&[0x0A, 0x5D, 0x51]);
    naa[12..16].copy_from_slice(&serial.to_be_bytes());
    let mut body = Vec::new();
    // code set binary (1); association LU (0), type NAA (3)
    body.extend_from_slice(&[0x01, 0x03, 0x00, 16]);
    body.extend_from_slice(&naa);
    // relative target port: association target port (0x10), type 4
    body.extend_from_slice(&[0x01, 0x14, 0x00, 4, 0, 0]);
    body.extend_from_slice(&port.to_be_bytes());
    // target port group: association target port, type 5
    body.extend_from_slice(&[0x01, 0x15, 0x00, 4, 0, 0]);
    body.extend_from_slice(&group.to_be_bytes());
    let mut page = vec![0x00, 0x83];
    page.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    page.extend_from_slice(&body);
    page
}

/// REPORT TARGET PORT GROUPS data (length-only header) for `ports`:
/// (relative port, group, state) of every path of the LUN.
#[must_use]
pub fn rtpg(ports: &[(u16, u16, AccessState)]) -> Vec<u8> {
    let mut groups: Vec<u16> = ports.iter().map(|p| p.1).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut body = Vec::new();
    for group in groups {
        let members: Vec<_> = ports.iter().filter(|p| p.1 == group).collect();
        let state = members.first().map_or(AccessState::Unavailable, |p| p.2);
        // supported states: A/O, A/N, S, U, T
        body.extend_from_slice(&[state.alua(), 0x8F]);
        body.extend_from_slice(&group.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, u8::try_from(members.len()).unwrap_or(u8::MAX)]);
        for m in members {
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&m.0.to_be_bytes());
        }
    }
    let mut data = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    data.extend_from_slice(&body);
    data
}

/// Fixed-format sense data (response code 0x70) with a sense key and
/// ASC/ASCQ.
#[must_use]
pub fn fixed_sense(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
    let mut sense = [0u8; 18];
    sense[0] = 0x70;
    sense[2] = key;
    sense[7] = 10; // additional sense length
    sense[12] = asc;
    sense[13] = ascq;
    sense
}
