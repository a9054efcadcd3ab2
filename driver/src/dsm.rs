//! The DSM façade: what the Windows shim's entry points and the simulator
//! call. It owns no policy logic of its own beyond wiring: the engine picks
//! paths, [`claim`](crate::claim), [`identity`](crate::identity),
//! [`sense`](crate::sense), [`alua`](crate::alua) and
//! [`persist`](crate::persist) decide the rest.
//!
//! # Storage: a `static`, built at compile time
//!
//! A `Lun<32>` is about 57 KB and a `Dsm` holds one per LUN, so the kernel
//! could not build one on its 24 KB stack. [`Dsm::new`] is a `const fn`
//! (every field is an atomic, and the engine's `Lun::new` is `const`), so the
//! shim declares
//!
//! ```
//! use rsdsm::dsm::Dsm;
//! use rsdsm_engine::{LoadBalancePolicy, LunSettings};
//! static DSM: Dsm<4, 8> = Dsm::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(10_000_000));
//! assert_eq!(DSM.default_policy(), LoadBalancePolicy::RoundRobin);
//! ```
//!
//! and never moves it. We chose this over caller-provided storage
//! (smoltcp style) because it needs no `unsafe`, no allocation and no
//! initialisation order: the table exists before `DriverEntry` runs, and
//! every method takes `&self`. The cost is that the table's size is fixed at
//! build time (`LUNS × PATHS`) and lives in the driver image's data section.
//!
//! # Concurrency
//!
//! Per-I/O calls ([`select`](Dsm::select), [`start`](Dsm::start),
//! [`complete`](Dsm::complete)) take no lock. LUN arrival and removal take a
//! short registry spin lock (at Plug and Play rate). Path control calls go to the
//! engine's per-LUN control section.
//!
//! A [`LunId`] is never reused within a boot. A removed LUN's table entry is
//! reused for a later LUN only after its last I/O has completed and no policy
//! set that began before the removal is still pending.

use core::sync::atomic::{AtomicU64, Ordering};

use heapless::Vec;
use rsdsm_engine::{
    AccessState, Error, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun, LunSettings, NoPath, PathId,
    PathPolicy, PathSlot, Reinstatement, Tick,
};

use crate::alua::Rtpg;
use crate::claim::ClaimList;
use crate::identity::{Identity, IdentityError, LunKey, PortIds, identify};
use crate::persist::{MAX_RECORD_LEN, PolicyStore, Record, decode_record, encode_record};
use crate::registry::{FREE, LIVE, LunId, LunSlot, REMOVED, SpinLock, lun_index, new_lun_id};
use crate::sense::{ErrorContext, SenseAction, TransportError, Verdict, classify_sense, classify_transport};

/// Why `InquireDriver` declines a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InquireError {
    /// The VID/PID is not in the supported-device list.
    NotSupported,
    /// Listed, but its identity could not be read: its paths could not be
    /// grouped safely, so it is not claimed.
    Identity(IdentityError),
}

/// What [`Dsm::restore_policy`] did with the stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// No record is stored for the LUN.
    NoRecord,
    /// The record was applied; the LUN's new configuration generation.
    Applied(u64),
    /// The record is valid but does not fit the paths present yet (e.g. its
    /// primary path has not arrived); nothing was changed. Try again on the
    /// next path arrival.
    Deferred(Error),
}

/// One LUN as listed by [`Dsm::luns`].
#[derive(Debug, Clone, Copy)]
pub struct LunView<'a, const P: usize> {
    /// The handle.
    pub id: LunId,
    /// The identity key.
    pub key: LunKey,
    /// The engine's LUN.
    pub lun: &'a Lun<P>,
}

/// The DSM: up to `LUNS` LUNs of up to `PATHS` paths each.
#[derive(Debug)]
pub struct Dsm<const LUNS: usize, const PATHS: usize = 32> {
    registry: SpinLock,
    next_sequence: AtomicU64,
    /// `vds_number << 32 | vendor_id`.
    default_policy: AtomicU64,
    settings: LunSettings,
    slots: [LunSlot<PATHS>; LUNS],
}

const fn encode_policy(p: LoadBalancePolicy) -> u64 {
    (p.vds_number() as u64) << 32 | p.vendor_id() as u64
}

impl<const LUNS: usize, const PATHS: usize> Dsm<LUNS, PATHS> {
    const LUNS_OK: () = assert!(LUNS >= 1 && LUNS <= 0x1_0000, "1 to 65536 LUNs");

    /// An empty DSM. `default_policy` is given to every LUN that arrives
    /// (until a stored per-LUN record is restored); `settings` (failback,
    /// flap damping, tick rate) to every LUN.
    #[must_use]
    pub const fn new(default_policy: LoadBalancePolicy, settings: LunSettings) -> Self {
        let () = Self::LUNS_OK;
        Self {
            registry: SpinLock::new(),
            next_sequence: AtomicU64::new(1),
            default_policy: AtomicU64::new(encode_policy(default_policy)),
            settings,
            slots: [const { LunSlot::new() }; LUNS],
        }
    }

    // ------------------------------------------------------------------
    // Claiming and identity (InquireDriver, CompareDevices)
    // ------------------------------------------------------------------

    /// `InquireDriver`: claims a device if its INQUIRY vendor / product are
    /// in `claims`, and reads its identity from VPD pages 0x83 / 0x80.
    ///
    /// Two paths are the same LUN (`CompareDevices`) exactly when their
    /// identities' keys are equal; [`add_path`](Self::add_path) groups them.
    ///
    /// # Errors
    /// [`InquireError`].
    pub fn inquire<const C: usize>(
        &self,
        claims: &ClaimList<C>,
        vendor: &[u8],
        product: &[u8],
        vpd83: Option<&[u8]>,
        vpd80: Option<&[u8]>,
    ) -> Result<Identity, InquireError> {
        if !claims.claims(vendor, product) {
            return Err(InquireError::NotSupported);
        }
        identify(vendor, product, vpd83, vpd80).map_err(InquireError::Identity)
    }

    // ------------------------------------------------------------------
    // LUN and path lifecycle
    // ------------------------------------------------------------------

    /// `SetDeviceInfo`: a path to the LUN `key` arrives through target port
    /// `ports`, in ALUA state `access`. The first path of a key creates the
    /// LUN (with the DSM default policy); later ones join it.
    ///
    /// # Errors
    /// `E_OUTOFMEMORY` if the LUN table or the LUN's path table is full;
    /// `E_INVALIDARG` if the path is already a path of the LUN.
    pub fn add_path(
        &self,
        key: &LunKey,
        path: PathId,
        ports: PortIds,
        access: AccessState,
    ) -> Result<(LunId, PathSlot), Error> {
        let _registry = self.registry.lock();
        let (index, entry, created) = if let Some((index, entry)) = self.find_live(key) {
            (index, entry, false)
        } else {
            let (index, entry) = self.claim_free_slot()?;
            entry.set_key(key);
            let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
            entry.id.store(new_lun_id(sequence, index).0, Ordering::Relaxed);
            entry.state.store(LIVE, Ordering::Release);
            (index, entry, true)
        };
        match entry.lun.add_path(path, access) {
            Ok(slot) => {
                entry.set_ports(slot.index(), ports);
                let id = LunId(entry.id.load(Ordering::Relaxed));
                debug_assert_eq!(lun_index(id), index);
                Ok((id, slot))
            }
            Err(e) => {
                if created {
                    entry.lun.remove();
                    entry.state.store(REMOVED, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    fn find_live(&self, key: &LunKey) -> Option<(usize, &LunSlot<PATHS>)> {
        self.slots.iter().enumerate().find(|(_, s)| s.is_live() && s.key().as_ref() == Some(key))
    }

    /// A free entry, or a removed one that can be reused, reset to the
    /// default policy. Under the registry lock.
    fn claim_free_slot(&self) -> Result<(usize, &LunSlot<PATHS>), Error> {
        let policy = self.default_policy();
        for (index, entry) in self.slots.iter().enumerate() {
            let state = entry.state.load(Ordering::Acquire);
            if state == FREE {
                // A never-used entry: bring its LUN to the default policy.
                entry.lun.remove();
            }
            if (state == FREE || state == REMOVED) && entry.lun.recycle(policy, &self.settings).is_ok() {
                for cell in &entry.ports {
                    cell.store(0, Ordering::Relaxed);
                }
                return Ok((index, entry));
            }
        }
        Err(Error::OutOfMemory)
    }

    /// The live entry of `id`.
    fn entry(&self, id: LunId) -> Option<&LunSlot<PATHS>> {
        self.slots.get(lun_index(id)).filter(|s| s.is_live() && s.id.load(Ordering::Acquire) == id.0)
    }

    fn live(&self, id: LunId) -> Result<&LunSlot<PATHS>, Error> {
        self.entry(id).ok_or(Error::ObjectDeleted)
    }

    /// `RemovePath`: a path leaves its LUN. I/O in flight on it completes.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` for an unknown LUN, `E_INVALIDARG` for an
    /// unknown path.
    pub fn remove_path(&self, id: LunId, slot: PathSlot) -> Result<(), Error> {
        let entry = self.live(id)?;
        entry.lun.remove_path(slot)?;
        entry.set_ports(slot.index(), PortIds::default());
        Ok(())
    }

    /// `RemoveDevice`: the LUN is gone. Later calls with `id` fail with
    /// `VDS_E_OBJECT_DELETED`, and so does a policy set that began before
    /// and is not committed yet. I/O in flight still completes.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` if the LUN is unknown (already removed).
    pub fn remove_lun(&self, id: LunId) -> Result<(), Error> {
        let _registry = self.registry.lock();
        let entry = self.live(id)?;
        entry.lun.remove();
        entry.state.store(REMOVED, Ordering::Release);
        Ok(())
    }

    /// `InvalidatePath` / a fatal error: the path failed. Takes effect for
    /// the next selection; repeated failures hold the path down.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED`, or `E_INVALIDARG` for an unknown path.
    pub fn fail_path(&self, id: LunId, slot: PathSlot, now: Tick) -> Result<(), Error> {
        self.live(id)?.lun.fail_path(slot, now)
    }

    /// `PathVerify` begins: the path carries no I/O until
    /// [`reinstate`](Self::reinstate) or [`fail_path`](Self::fail_path).
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED`, or `E_INVALIDARG` for an unknown path.
    pub fn verify(&self, id: LunId, slot: PathSlot) -> Result<(), Error> {
        self.live(id)?.lun.begin_verify(slot)
    }

    /// `PathVerify` succeeded: the path returns to service unless it is
    /// held down for flapping.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED`, or `E_INVALIDARG` for an unknown path.
    pub fn reinstate(&self, id: LunId, slot: PathSlot, now: Tick) -> Result<Reinstatement, Error> {
        self.live(id)?.lun.reinstate_path(slot, now)
    }

    /// Applies checked RTPG data (from any path of the LUN) to every path:
    /// a path takes the state of the group its relative target port is in,
    /// or, without a known port, of its target port group. Returns how many
    /// paths changed state.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` for an unknown LUN.
    pub fn apply_rtpg(&self, id: LunId, rtpg: &Rtpg<'_>) -> Result<usize, Error> {
        let entry = self.live(id)?;
        let mut changed = 0;
        for info in entry.lun.path_info()? {
            let s = info.slot.index();
            let mut ports = entry.ports_of(s);
            let found = match ports.relative_port.and_then(|p| rtpg.state_of_port(p)) {
                Some((tpg, state)) => {
                    ports.target_port_group = Some(tpg);
                    entry.set_ports(s, ports);
                    Some(state)
                }
                None => ports.target_port_group.and_then(|g| rtpg.state_of_group(g)),
            };
            if let Some(state) = found.filter(|&st| st != info.access) {
                entry.lun.set_access_state(info.slot, state)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    // ------------------------------------------------------------------
    // Errors (InterpretError)
    // ------------------------------------------------------------------

    /// `InterpretError` for a CHECK CONDITION: classifies `sense` and, on a
    /// fatal verdict, fails the path in the engine at once. An unknown LUN
    /// gets [`SenseAction::PassUp`].
    #[must_use]
    pub fn interpret_error(
        &self,
        id: LunId,
        slot: PathSlot,
        sense: &[u8],
        read_write: bool,
        now: Tick,
    ) -> Verdict {
        let Some(entry) = self.entry(id) else {
            return Verdict { action: SenseAction::PassUp, reread_alua: false };
        };
        let ctx = ErrorContext { read_write, other_path_available: other_path_usable(&entry.lun, slot) };
        Self::act(entry, slot, classify_sense(sense, ctx), now)
    }

    /// `InterpretError` for an error without sense (SRB status, NTSTATUS).
    #[must_use]
    pub fn interpret_transport(
        &self,
        id: LunId,
        slot: PathSlot,
        error: TransportError,
        now: Tick,
    ) -> Verdict {
        let Some(entry) = self.entry(id) else {
            return Verdict { action: SenseAction::PassUp, reread_alua: false };
        };
        Self::act(entry, slot, classify_transport(error), now)
    }

    fn act(entry: &LunSlot<PATHS>, slot: PathSlot, verdict: Verdict, now: Tick) -> Verdict {
        if verdict.action == SenseAction::FatalFailover {
            // An unknown slot (already removed) needs no failing.
            let _ = entry.lun.fail_path(slot, now);
        }
        verdict
    }

    // ------------------------------------------------------------------
    // Per I/O (LBGetPath, SetCompletion)
    // ------------------------------------------------------------------

    /// `LBGetPath`: the path for one I/O.
    ///
    /// # Errors
    /// [`NoPath`] if the LUN is unknown or has no usable path.
    #[inline]
    pub fn select(&self, id: LunId, io: &IoRequest) -> Result<PathSlot, NoPath> {
        let entry = self.entry(id).ok_or(NoPath)?;
        entry.lun.select(io)
    }

    /// `SetCompletion`: counts the I/O as in flight on `slot`.
    ///
    /// # Errors
    /// [`NoPath`] if the LUN is unknown (removed).
    #[inline]
    pub fn start(&self, id: LunId, slot: PathSlot, io: &IoRequest) -> Result<IoTicket, NoPath> {
        let entry = self.entry(id).ok_or(NoPath)?;
        let ticket = entry.lun.start(slot, io);
        // The entry cannot be reused while this I/O is counted; but it may
        // have been reused between the lookup and the count. Then the count
        // landed on another LUN: take it back (as an error) and refuse.
        if entry.id.load(Ordering::Acquire) == id.0 {
            Ok(ticket)
        } else {
            entry.lun.complete(ticket, io.now, IoOutcome::Error);
            Err(NoPath)
        }
    }

    /// The I/O completed. Works for a removed LUN too (its in-flight I/O
    /// must drain before its table entry is reused).
    #[inline]
    pub fn complete(&self, id: LunId, ticket: IoTicket, now: Tick, outcome: IoOutcome) {
        if let Some(entry) = self.slots.get(lun_index(id)).filter(|s| s.id.load(Ordering::Acquire) == id.0) {
            entry.lun.complete(ticket, now, outcome);
        }
    }

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------

    /// The engine's LUN behind `id`, if it is present.
    #[must_use]
    pub fn lun(&self, id: LunId) -> Option<&Lun<PATHS>> {
        self.entry(id).map(|e| &e.lun)
    }

    /// The handle of the present LUN with `key`.
    #[must_use]
    pub fn lun_id(&self, key: &LunKey) -> Option<LunId> {
        self.slots
            .iter()
            .filter(|s| s.is_live())
            .find(|s| s.key().as_ref() == Some(key))
            .map(|s| LunId(s.id.load(Ordering::Acquire)))
    }

    /// The key of a present LUN.
    #[must_use]
    pub fn key(&self, id: LunId) -> Option<LunKey> {
        self.entry(id).and_then(LunSlot::key)
    }

    /// The target port / group a path goes through.
    #[must_use]
    pub fn ports(&self, id: LunId, slot: PathSlot) -> Option<PortIds> {
        self.entry(id).map(|e| e.ports_of(slot.index()))
    }

    /// Every present LUN, in table order.
    pub fn luns(&self) -> impl Iterator<Item = LunView<'_, PATHS>> + '_ {
        self.slots.iter().filter(|s| s.is_live()).filter_map(|s| {
            let id = LunId(s.id.load(Ordering::Acquire));
            let key = s.key()?;
            Some(LunView { id, key, lun: &s.lun })
        })
    }

    /// The DSM-wide default policy new LUNs get.
    #[must_use]
    pub fn default_policy(&self) -> LoadBalancePolicy {
        let v = self.default_policy.load(Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation)] // the two halves
        LoadBalancePolicy::from_vds((v >> 32) as u32, v as u32).unwrap_or(LoadBalancePolicy::RoundRobin)
    }

    /// Sets the DSM-wide default policy (LUNs present keep theirs).
    pub fn set_default_policy(&self, policy: LoadBalancePolicy) {
        self.default_policy.store(encode_policy(policy), Ordering::Relaxed);
    }

    // ------------------------------------------------------------------
    // Policy sets and persistence
    // ------------------------------------------------------------------

    /// `SetLoadBalancePolicy` with persistence: validates, writes the LUN's
    /// record to `store`, then publishes the policy atomically. If the store
    /// cannot be written nothing changes; if the publish fails after the
    /// write (the LUN changed or was removed meanwhile), the record of the
    /// configuration still in force is written back.
    ///
    /// # Errors
    /// The engine's errors (DESIGN §3); a store failure as
    /// `E_OUTOFMEMORY` (store full) or `VDS_E_PROVIDER_CACHE_CORRUPT`.
    pub fn set_policy<S: PolicyStore + ?Sized>(
        &self,
        id: LunId,
        policy: LoadBalancePolicy,
        paths: &[PathPolicy],
        store: &mut S,
    ) -> Result<u64, Error> {
        self.set_policy_if(id, policy, paths, None, store)
    }

    /// [`set_policy`](Self::set_policy), applied only if the LUN's
    /// configuration generation is still `expected_generation` (when given):
    /// the caller read the LUN at that generation and its view must not be
    /// stale. `None` behaves as `set_policy`.
    ///
    /// # Errors
    /// As [`set_policy`](Self::set_policy); `VDS_E_PROVIDER_CACHE_CORRUPT`
    /// for a generation mismatch.
    pub fn set_policy_if<S: PolicyStore + ?Sized>(
        &self,
        id: LunId,
        policy: LoadBalancePolicy,
        paths: &[PathPolicy],
        expected_generation: Option<u64>,
        store: &mut S,
    ) -> Result<u64, Error> {
        let entry = self.live(id)?;
        let key = entry.key().ok_or(Error::ObjectDeleted)?;
        // Enter the set gate first and only then read what this set
        // replaces: a snapshot taken before the gate could be one set old
        // by the time the gate admits us, and an unconditional set would
        // then fail as a generation mismatch (VDS_E_PROVIDER_CACHE_CORRUPT)
        // instead of simply applying after the other one.
        let pending = entry.lun.begin_set(policy, paths, expected_generation)?;
        // The set gate is held: the entry cannot be reused under us, and no
        // other set publishes until this one ends.
        if entry.id.load(Ordering::Acquire) != id.0 {
            return Err(Error::ObjectDeleted);
        }
        let before = entry.lun.load_balance_policy()?;
        let mut record = Record::<PATHS> {
            key,
            policy,
            generation: before.generation.wrapping_add(1),
            preferred: before.preferred,
            paths: Vec::new(),
        };
        for p in paths {
            record.paths.push(*p).map_err(|_| Error::OutOfMemory)?;
        }
        let mut buf = [0u8; MAX_RECORD_LEN];
        let len = encode_record(&record, &mut buf)?;
        store.save(&key, buf.get(..len).unwrap_or(&[]))?;
        match pending.commit() {
            Ok(generation) => Ok(generation),
            Err(e) => {
                // Best effort: the stored record must describe what is in
                // force, not what was refused.
                if let Ok(now) = entry.lun.load_balance_policy() {
                    let mut back = Record::<PATHS> {
                        key,
                        policy: now.policy,
                        generation: now.generation,
                        preferred: now.preferred,
                        paths: Vec::new(),
                    };
                    back.paths.extend(now.paths.iter().copied());
                    if let Ok(n) = encode_record(&back, &mut buf) {
                        let _ = store.save(&key, buf.get(..n).unwrap_or(&[]));
                    }
                }
                Err(e)
            }
        }
    }

    /// On LUN (or path) arrival: applies the LUN's stored record if there
    /// is one and it is valid. Paths the record does not name keep their
    /// settings; entries for paths not present are ignored.
    ///
    /// # Errors
    /// `VDS_E_PROVIDER_CACHE_CORRUPT` if the stored record is torn, corrupt,
    /// of another version or of another LUN: it is not applied, and the
    /// LUN keeps its policy. `VDS_E_OBJECT_DELETED` for an unknown LUN.
    pub fn restore_policy<S: PolicyStore + ?Sized>(&self, id: LunId, store: &S) -> Result<Restored, Error> {
        let entry = self.live(id)?;
        let key = entry.key().ok_or(Error::ObjectDeleted)?;
        let mut buf = [0u8; MAX_RECORD_LEN];
        let Some(len) = store.load(&key, &mut buf)? else {
            return Ok(Restored::NoRecord);
        };
        let record = decode_record::<PATHS>(buf.get(..len).ok_or(Error::ProviderCacheCorrupt)?)?;
        if record.key != key {
            return Err(Error::ProviderCacheCorrupt);
        }
        let now = entry.lun.load_balance_policy()?;
        let mut paths: Vec<PathPolicy, PATHS> = Vec::new();
        for current in &now.paths {
            let stored = record.paths.iter().find(|p| p.path_id == current.path_id);
            let _ = paths.push(*stored.unwrap_or(current));
        }
        let generation = match entry.lun.begin_set(record.policy, &paths, Some(now.generation)) {
            Ok(pending) => match pending.commit() {
                Ok(g) => g,
                Err(e) => return Ok(Restored::Deferred(e)),
            },
            Err(e @ (Error::InvalidArgument(_) | Error::ObjectStatusFailed)) => {
                return Ok(Restored::Deferred(e));
            }
            Err(e) => return Err(e),
        };
        if let Some(slot) = record.preferred.and_then(|p| entry.lun.slot_of(p)) {
            entry.lun.set_preferred_path(Some(slot))?;
        }
        Ok(Restored::Applied(generation))
    }
}

/// `true` if a path of `lun` other than `slot` is usable. Lock-free: this
/// runs in `InterpretError`, at up to `DISPATCH_LEVEL`.
fn other_path_usable<const P: usize>(lun: &Lun<P>, slot: PathSlot) -> bool {
    let own = 1u64.checked_shl(u32::try_from(slot.index()).unwrap_or(u32::MAX)).unwrap_or(0);
    lun.usable_mask() & !own != 0
}
