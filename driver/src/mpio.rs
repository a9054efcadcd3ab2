//! The MPIO side of the DSM: the handle tables between mpio.sys's opaque
//! values and the core, and the logic of every DSM entry point.
//!
//! mpio.sys keeps three kinds of values for a DSM and only ever hands them
//! back: the `DsmId` of a device instance (one LUN seen through one path),
//! the `PathId` of a path (an `I_T` nexus) and the context of a completion
//! routine. Here each is a non-zero `u32` **handle** into a fixed table:
//!
//! | handle | table entry | maps to |
//! |---|---|---|
//! | device (`DsmId`) | [`LunKey`] + target port ids from `InquireDriver`; after `SetDeviceInfo` the binding | [`LunId`], [`PathSlot`], path handle, target token |
//! | path (`PathId`) | mpio.sys's path value | engine [`PathId`] `{ SOURCE_ID, handle }` |
//! | ticket | a parked [`IoTicket`] (its lossless raw form) + [`LunId`] | the I/O counted by [`Dsm::start`] |
//!
//! **Handle encoding.** `generation << INDEX_BITS | (index + 1)`, where
//! `INDEX_BITS` is the fewest bits that hold the table size and the
//! generation (never 0) grows each time an entry is freed. A handle is
//! therefore never 0 (MPIO's "none") nor 1 (the "reserved" tag below), and a
//! stale handle (freed, or freed and reused) is refused instead of reaching
//! the entry's new owner.
//!
//! **Concurrency.** Everything is atomics; nothing allocates.
//! * Each entry has a tag: `0` free, `1` reserved (being filled or being
//!   freed, owned by one caller), otherwise its live handle. An entry is
//!   claimed with a CAS `0 → 1`, filled, then published by storing its
//!   handle (Release); it is freed by a CAS `handle → 1` (so exactly one
//!   caller frees it), then generation bump and `0` (Release).
//! * Readers check the tag (Acquire), read the fields, and check the tag
//!   again after an Acquire fence (a sequence lock on the handle), so a
//!   reader racing with a free sees "gone", never a mix of two owners.
//! * A device's binding (`SetDeviceInfo`) changes a live entry: its LUN is
//!   written first, then the binding word with a CAS (Release); readers load
//!   the binding with Acquire.
//! * The per-I/O calls ([`select`](Mpio::select), [`start`](Mpio::start),
//!   [`complete`](Mpio::complete), [`interpret_error`](Mpio::interpret_error))
//!   take no lock. Ticket slots are claimed with a CAS from a rotating
//!   cursor. Lifecycle calls (PASSIVE, Plug and Play rate) serialise their
//!   table changes with one short spin lock, never held across a store
//!   access.
//!
//! **Capacity.** Full tables degrade, never fail hard: no free device entry
//! declines the device in `InquireDriver` (MPIO leaves it to another DSM);
//! no free ticket sends the I/O without a completion callback (the engine
//! does not see it in flight, so queue-depth policies under-count it).

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use rsdsm_engine::{
    AccessState, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, LunSettings, PathId, PathSlot, Tick,
};

use crate::claim::{ClaimList, DeviceId, ENTRY_LEN};
use crate::dsm::{Dsm, Restored};
use crate::identity::{LunKey, PortIds};
use crate::persist::PolicyStore;
use crate::registry::{KeyCell, LunId, SpinLock, decode_ports, encode_ports};
use crate::sense::{SenseAction, TransportError, Verdict};

/// Paths per LUN in the engine: MPIO's limit (32 paths per device).
pub const PATHS_PER_LUN: usize = 32;

/// Longest unit serial number used (a VPD page 0x80 of one byte length).
const MAX_SERIAL: usize = 252;

/// Most supported-device entries kept.
pub const MAX_CLAIMS: usize = 64;

/// `ullSourceId` of every path rsdsm reports (VDS `VDS_PATH_ID`): `"rsdsm"`
/// and instance 1.
pub const SOURCE_ID: u64 = u64::from_be_bytes(*b"rsdsm\0\0\x01");

// ---------------------------------------------------------------- tables

const FREE: u32 = 0;
const RESERVED: u32 = 1;

/// The fewest bits that hold `1..=n`.
const fn index_bits(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

#[derive(Debug)]
struct Tag {
    tag: AtomicU32,
    generation: AtomicU32,
}

/// A fixed table of `N` entries addressed by generation-checked handles.
#[derive(Debug)]
struct Table<E, const N: usize> {
    tags: [Tag; N],
    entries: [E; N],
    cursor: AtomicUsize,
}

/// An entry type with a const empty value.
trait Empty {
    const EMPTY: Self;
}

impl<E: Empty, const N: usize> Table<E, N> {
    const BITS: u32 = index_bits(N);
    const MASK: u32 = (1 << Self::BITS) - 1;
    /// Generations wrap at this many (and skip 0).
    const GENERATIONS: u32 = 1 << (32 - Self::BITS);
    const SIZE_OK: () = assert!(N >= 1 && Self::BITS <= 20, "1 to 2^20 - 1 entries");

    const fn new() -> Self {
        let () = Self::SIZE_OK;
        Self {
            tags: [const { Tag { tag: AtomicU32::new(FREE), generation: AtomicU32::new(1) } }; N],
            entries: [const { E::EMPTY }; N],
            cursor: AtomicUsize::new(0),
        }
    }

    /// Reserves a free entry; `rotate` starts the search at a rotating
    /// cursor (spreads concurrent per-I/O claims), else at the first entry.
    fn claim(&self, rotate: bool) -> Option<(usize, &E)> {
        let start = if rotate { self.cursor.fetch_add(1, Ordering::Relaxed) % N } else { 0 };
        (0..N).map(|k| (start + k) % N).find_map(|i| {
            let tag = self.tags.get(i)?;
            tag.tag.compare_exchange(FREE, RESERVED, Ordering::Acquire, Ordering::Relaxed).ok()?;
            Some((i, self.entries.get(i)?))
        })
    }

    /// Publishes a reserved entry under its handle.
    fn publish(&self, index: usize) -> Option<NonZeroU32> {
        let tag = self.tags.get(index)?;
        let generation = tag.generation.load(Ordering::Relaxed);
        let index = u32::try_from(index).ok()?;
        let handle = NonZeroU32::new(generation << Self::BITS | (index + 1))?;
        tag.tag.store(handle.get(), Ordering::Release);
        Some(handle)
    }

    /// Frees a reserved entry (the handle it had is dead from now on).
    fn release(&self, index: usize) {
        if let Some(tag) = self.tags.get(index) {
            let next = tag.generation.load(Ordering::Relaxed) % (Self::GENERATIONS - 1) + 1;
            tag.generation.store(next, Ordering::Relaxed);
            tag.tag.store(FREE, Ordering::Release);
        }
    }

    fn index_of(handle: NonZeroU32) -> Option<usize> {
        usize::try_from(handle.get() & Self::MASK).ok()?.checked_sub(1)
    }

    /// The entry of a live handle (fields to be read, then [`Self::still`]).
    fn get(&self, handle: NonZeroU32) -> Option<(usize, &E)> {
        let i = Self::index_of(handle)?;
        let live = self.tags.get(i)?.tag.load(Ordering::Acquire) == handle.get();
        live.then_some((i, self.entries.get(i)?))
    }

    /// `true` if `handle` was still live after the fields were read.
    fn still(&self, index: usize, handle: NonZeroU32) -> bool {
        fence(Ordering::Acquire);
        self.tags.get(index).is_some_and(|t| t.tag.load(Ordering::Relaxed) == handle.get())
    }

    /// Takes a live handle's entry for freeing: exactly one caller wins.
    /// The caller changes its fields, then [`Self::release`]s it.
    fn seize(&self, handle: NonZeroU32) -> Option<(usize, &E)> {
        let i = Self::index_of(handle)?;
        let tag = self.tags.get(i)?;
        tag.tag.compare_exchange(handle.get(), RESERVED, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        // Readers that see a field written after this point see the tag
        // change when they check again (their Acquire fence pairs with this).
        fence(Ordering::Release);
        Some((i, self.entries.get(i)?))
    }

    /// Every live entry with its handle.
    fn live(&self) -> impl Iterator<Item = (NonZeroU32, &E)> + '_ {
        self.tags.iter().zip(&self.entries).filter_map(|(t, e)| {
            let h = t.tag.load(Ordering::Acquire);
            if h > RESERVED { NonZeroU32::new(h).map(|h| (h, e)) } else { None }
        })
    }
}

/// A device instance (`DsmId`).
#[derive(Debug)]
struct Device {
    /// The LUN's key, from `InquireDriver`.
    key: KeyCell,
    /// The target port ids of this path, from `InquireDriver`.
    ports: AtomicU64,
    /// [`LunId`] once bound.
    lun: AtomicU64,
    /// 0 until `SetDeviceInfo`; then [`BOUND`] | slot << 32 | path handle.
    binding: AtomicU64,
    /// The opaque target token for path verification.
    target: AtomicUsize,
}

const BOUND: u64 = 1 << 63;

impl Empty for Device {
    const EMPTY: Self = Self {
        key: KeyCell::new(),
        ports: AtomicU64::new(0),
        lun: AtomicU64::new(0),
        binding: AtomicU64::new(0),
        target: AtomicUsize::new(0),
    };
}

/// An MPIO path (`PathId`): the `I_T` nexus value mpio.sys gave.
#[derive(Debug)]
struct MpioPath {
    mpio: AtomicUsize,
}

impl Empty for MpioPath {
    const EMPTY: Self = Self { mpio: AtomicUsize::new(0) };
}

/// A parked in-flight I/O.
#[derive(Debug)]
struct Parked {
    lun: AtomicU64,
    raw: [AtomicU64; 2],
}

impl Empty for Parked {
    const EMPTY: Self = Self { lun: AtomicU64::new(0), raw: [const { AtomicU64::new(0) }; 2] };
}

/// A device's binding, read consistently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Binding {
    lun: LunId,
    slot: PathSlot,
    path: NonZeroU32,
}

impl Binding {
    fn encode(self) -> u64 {
        BOUND | (self.slot.index() as u64) << 32 | u64::from(self.path.get())
    }

    #[allow(clippy::cast_possible_truncation)] // fields of the word
    fn decode(lun: u64, word: u64) -> Option<Self> {
        if word & BOUND == 0 {
            return None;
        }
        let slot = PathSlot::from_index(((word >> 32) & 0xFF) as usize)?;
        Some(Self { lun: LunId(lun), slot, path: NonZeroU32::new(word as u32)? })
    }
}

// ---------------------------------------------------------- claim list

/// The supported-device list in atomics, so a `static` can be refilled.
#[derive(Debug)]
struct Claims {
    count: AtomicUsize,
    words: [[AtomicU64; 3]; MAX_CLAIMS],
}

impl Claims {
    const fn new() -> Self {
        Self { count: AtomicUsize::new(0), words: [const { [const { AtomicU64::new(0) }; 3] }; MAX_CLAIMS] }
    }

    fn set(&self, list: &ClaimList<MAX_CLAIMS>) {
        self.count.store(0, Ordering::Release);
        for (cells, id) in self.words.iter().zip(list.entries()) {
            for (cell, chunk) in cells.iter().zip(id.as_bytes().chunks_exact(8)) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                cell.store(u64::from_le_bytes(word), Ordering::Relaxed);
            }
        }
        self.count.store(list.len(), Ordering::Release);
    }

    fn get(&self) -> ClaimList<MAX_CLAIMS> {
        let mut list = ClaimList::new();
        for cells in self.words.iter().take(self.count.load(Ordering::Acquire)) {
            let mut bytes = [0u8; ENTRY_LEN];
            for (chunk, cell) in bytes.chunks_exact_mut(8).zip(cells) {
                chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
            }
            // The bytes came from a valid DeviceId: printable ASCII.
            if let Some(id) = core::str::from_utf8(&bytes).ok().and_then(|s| DeviceId::parse(s).ok()) {
                let _ = list.add(id);
            }
        }
        list
    }
}

// -------------------------------------------------------------- errors

/// SRB status codes (`srb.h`), without the autosense / queue-frozen flags.
#[allow(missing_docs)]
pub mod srb_status {
    pub const ABORTED: u8 = 0x02;
    pub const ERROR: u8 = 0x04;
    pub const BUSY: u8 = 0x05;
    pub const INVALID_PATH_ID: u8 = 0x07;
    pub const NO_DEVICE: u8 = 0x08;
    pub const TIMEOUT: u8 = 0x09;
    pub const SELECTION_TIMEOUT: u8 = 0x0A;
    pub const COMMAND_TIMEOUT: u8 = 0x0B;
    pub const BUS_RESET: u8 = 0x0E;
    pub const PARITY_ERROR: u8 = 0x0F;
    pub const NO_HBA: u8 = 0x11;
    pub const DATA_OVERRUN: u8 = 0x12;
    pub const UNEXPECTED_BUS_FREE: u8 = 0x13;
    pub const PHASE_SEQUENCE_FAILURE: u8 = 0x14;
    pub const INVALID_LUN: u8 = 0x20;
    pub const INVALID_TARGET_ID: u8 = 0x21;
    pub const LINK_DOWN: u8 = 0x25;
}

/// NTSTATUS values the error classification looks at (`ntstatus.h`).
#[allow(missing_docs, clippy::cast_possible_wrap)]
pub mod nt_status {
    pub const BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
    pub const NO_SUCH_DEVICE: i32 = 0xC000_000E_u32 as i32;
    pub const DELETE_PENDING: i32 = 0xC000_0056_u32 as i32;
    pub const DEVICE_NOT_CONNECTED: i32 = 0xC000_009D_u32 as i32;
    pub const DEVICE_DOES_NOT_EXIST: i32 = 0xC000_00C0_u32 as i32;
}

/// SCSI status byte values.
const SCSI_CHECK_CONDITION: u8 = 0x02;
const SCSI_BUSY: u8 = 0x08;
const SCSI_TASK_SET_FULL: u8 = 0x28;

/// The [`TransportError`] an error without sense stands for, if any: the
/// SRB status first (it says what the port driver saw), then the SCSI
/// status, then the request's NTSTATUS. `None` means "nothing the DSM
/// classifies": the error is passed up.
#[must_use]
pub const fn transport_error(srb: u8, scsi: u8, nt: i32) -> Option<TransportError> {
    use TransportError as T;
    use srb_status as S;
    let from_srb = match srb {
        S::SELECTION_TIMEOUT => Some(T::SelectionTimeout),
        S::INVALID_LUN => Some(T::InvalidLun),
        S::INVALID_TARGET_ID => Some(T::InvalidTargetId),
        S::INVALID_PATH_ID => Some(T::InvalidPathId),
        S::NO_DEVICE => Some(T::NoDevice),
        S::NO_HBA => Some(T::NoHba),
        // The link of this path is down: as fatal as a missing device.
        S::LINK_DOWN => Some(T::DeviceNotConnected),
        S::BUS_RESET => Some(T::BusReset),
        S::TIMEOUT | S::COMMAND_TIMEOUT => Some(T::Timeout),
        S::ABORTED => Some(T::Aborted),
        S::BUSY => Some(T::Busy),
        S::PARITY_ERROR | S::UNEXPECTED_BUS_FREE | S::PHASE_SEQUENCE_FAILURE => Some(T::LinkError),
        S::DATA_OVERRUN => Some(T::DataOverrun),
        _ => None,
    };
    if from_srb.is_some() {
        return from_srb;
    }
    if scsi == SCSI_BUSY || scsi == SCSI_TASK_SET_FULL {
        return Some(T::Busy);
    }
    match nt {
        nt_status::DEVICE_NOT_CONNECTED => Some(T::DeviceNotConnected),
        nt_status::DEVICE_DOES_NOT_EXIST => Some(T::DeviceDoesNotExist),
        nt_status::NO_SUCH_DEVICE => Some(T::NoSuchDevice),
        nt_status::DELETE_PENDING => Some(T::DeletePending),
        nt_status::BUFFER_OVERFLOW => Some(T::DataOverrun),
        _ => None,
    }
}

/// What the controller of a device's path looks like (`GetControllerInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerView {
    /// The path is usable now.
    pub usable: bool,
    /// Its ALUA state.
    pub access: AccessState,
    /// The target port group it leads to, if page 0x83 named one.
    pub target_port_group: Option<u16>,
}

// ------------------------------------------------------------------ Mpio

/// The DSM as mpio.sys sees it: the [`Dsm`] plus the handle tables.
///
/// `LUNS` LUNs of [`PATHS_PER_LUN`] paths, `DEVICES` device instances
/// (LUN × path pairs), `PATHS` MPIO paths (`I_T` nexuses), `TICKETS` I/Os in
/// flight with a completion callback.
#[derive(Debug)]
pub struct Mpio<const LUNS: usize, const DEVICES: usize, const PATHS: usize, const TICKETS: usize> {
    dsm: Dsm<LUNS, PATHS_PER_LUN>,
    claims: Claims,
    lifecycle: SpinLock,
    devices: Table<Device, DEVICES>,
    paths: Table<MpioPath, PATHS>,
    tickets: Table<Parked, TICKETS>,
}

impl<const LUNS: usize, const DEVICES: usize, const PATHS: usize, const TICKETS: usize>
    Mpio<LUNS, DEVICES, PATHS, TICKETS>
{
    /// Empty tables, an empty claim list.
    #[must_use]
    pub const fn new(default_policy: LoadBalancePolicy, settings: LunSettings) -> Self {
        Self {
            dsm: Dsm::new(default_policy, settings),
            claims: Claims::new(),
            lifecycle: SpinLock::new(),
            devices: Table::new(),
            paths: Table::new(),
            tickets: Table::new(),
        }
    }

    /// The core (for the control handler).
    #[must_use]
    pub const fn dsm(&self) -> &Dsm<LUNS, PATHS_PER_LUN> {
        &self.dsm
    }

    /// Replaces the supported-device list (`DriverEntry`).
    pub fn set_claims(&self, list: &ClaimList<MAX_CLAIMS>) {
        self.claims.set(list);
    }

    /// The supported-device list.
    #[must_use]
    pub fn claims(&self) -> ClaimList<MAX_CLAIMS> {
        self.claims.get()
    }

    /// The engine path id of an MPIO path handle.
    #[must_use]
    pub fn path_id(path: NonZeroU32) -> PathId {
        PathId::new(SOURCE_ID, u64::from(path.get()))
    }

    // ------------------------------------------------------------ PnP

    /// `InquireDriver`: claim (supported list) and identity (page 0x83, or
    /// the unit serial number as page 0x80). A new device handle, or `None`
    /// to decline (not listed, no usable identity, or the table is full).
    #[must_use]
    pub fn inquire(&self, vendor: &[u8], product: &[u8], serial: &[u8], vpd83: &[u8]) -> Option<NonZeroU32> {
        // MPIO gives the unit serial number as a string: rebuild page 0x80.
        let serial = serial.get(..serial.len().min(MAX_SERIAL)).unwrap_or(&[]);
        let mut page80 = [0u8; 4 + MAX_SERIAL];
        let len = 4 + serial.len();
        let (head, body) = page80.split_at_mut(4);
        head.copy_from_slice(&[
            0,
            crate::identity::UNIT_SERIAL_NUMBER,
            0,
            u8::try_from(serial.len()).unwrap_or(0),
        ]);
        if let Some(body) = body.get_mut(..serial.len()) {
            body.copy_from_slice(serial);
        }
        let vpd80 = page80.get(..len).filter(|_| !serial.is_empty());
        let vpd83 = (!vpd83.is_empty()).then_some(vpd83);
        let identity = self.dsm.inquire(&self.claims(), vendor, product, vpd83, vpd80).ok()?;
        let _lifecycle = self.lifecycle.lock();
        let (i, device) = self.devices.claim(false)?;
        device.key.store(&identity.key);
        device.ports.store(encode_ports(identity.ports), Ordering::Relaxed);
        device.lun.store(0, Ordering::Relaxed);
        device.binding.store(0, Ordering::Relaxed);
        device.target.store(0, Ordering::Relaxed);
        self.devices.publish(i)
    }

    /// The key and ports of a live device.
    fn identity(&self, device: NonZeroU32) -> Option<(LunKey, PortIds)> {
        let (i, d) = self.devices.get(device)?;
        let key = d.key.load();
        let ports = decode_ports(d.ports.load(Ordering::Relaxed));
        self.devices.still(i, device).then_some((key?, ports))
    }

    /// The binding of a live, bound device. Lock-free.
    fn binding(&self, device: NonZeroU32) -> Option<Binding> {
        let (i, d) = self.devices.get(device)?;
        let word = d.binding.load(Ordering::Acquire);
        let lun = d.lun.load(Ordering::Relaxed);
        let b = Binding::decode(lun, word);
        if self.devices.still(i, device) { b } else { None }
    }

    /// `CompareDevices`: same LUN key.
    #[must_use]
    pub fn compare_devices(&self, a: NonZeroU32, b: NonZeroU32) -> bool {
        matches!((self.identity(a), self.identity(b)), (Some((ka, _)), Some((kb, _))) if ka == kb)
    }

    /// The live MPIO path handle for mpio.sys's path value, made if new
    /// (`true`). Under the lifecycle lock.
    fn path_for(&self, mpio_path: usize) -> Option<(NonZeroU32, bool)> {
        if let Some((h, _)) = self.paths.live().find(|(_, p)| p.mpio.load(Ordering::Relaxed) == mpio_path) {
            return Some((h, false));
        }
        let (i, p) = self.paths.claim(false)?;
        p.mpio.store(mpio_path, Ordering::Relaxed);
        self.paths.publish(i).map(|h| (h, true))
    }

    /// `SetDeviceInfo`: the device is on mpio.sys's path `mpio_path`;
    /// `target` is the token for DSM-initiated requests. Adds the path to
    /// the LUN (creating the LUN on its first path, in state
    /// active/optimised until RTPG says otherwise), then restores the LUN's
    /// stored record from `store`. The path handle to give MPIO.
    pub fn set_device_info<S: PolicyStore + ?Sized>(
        &self,
        device: NonZeroU32,
        mpio_path: usize,
        target: usize,
        store: &S,
    ) -> Option<NonZeroU32> {
        let (lun, path) = {
            let _lifecycle = self.lifecycle.lock();
            if let Some(b) = self.binding(device) {
                // Told twice: the same path is fine, another is not.
                let same =
                    self.paths.get(b.path).is_some_and(|(_, p)| p.mpio.load(Ordering::Relaxed) == mpio_path);
                return same.then_some(b.path);
            }
            let (key, ports) = self.identity(device)?;
            let (path, created) = self.path_for(mpio_path)?;
            let added = self.dsm.add_path(&key, Self::path_id(path), ports, AccessState::ActiveOptimized);
            let bound = added.ok().and_then(|(lun, slot)| {
                let (_, d) = self.devices.get(device)?;
                d.target.store(target, Ordering::Relaxed);
                d.lun.store(lun.0, Ordering::Relaxed);
                let word = Binding { lun, slot, path }.encode();
                if d.binding.compare_exchange(0, word, Ordering::Release, Ordering::Relaxed).is_err() {
                    let _ = self.dsm.remove_path(lun, slot);
                    return None;
                }
                Some(lun)
            });
            let Some(lun) = bound else {
                // MPIO never learns a path handle we made for a failed call.
                if created && let Some((i, p)) = self.paths.seize(path) {
                    p.mpio.store(0, Ordering::Relaxed);
                    self.paths.release(i);
                }
                return None;
            };
            (lun, path)
        };
        // Outside the lock (registry I/O). A record that does not fit the
        // paths present yet is retried on the next path's arrival; a corrupt
        // one is not applied and the LUN keeps the default policy.
        let _: Result<Restored, _> = self.dsm.restore_policy(lun, store);
        Some(path)
    }

    /// The path info of a bound device's path (PASSIVE: takes the LUN's
    /// control lock).
    fn path_info(&self, b: Binding) -> Option<rsdsm_engine::PathInfo> {
        self.dsm.lun(b.lun)?.path_info().ok()?.into_iter().find(|p| p.slot == b.slot)
    }

    /// `IsPathActive`: may I/O use this device's path now (usable, and
    /// active optimised or non-optimised)?
    #[must_use]
    pub fn is_path_active(&self, path: NonZeroU32, device: NonZeroU32) -> bool {
        let Some(b) = self.binding(device).filter(|b| b.path == path) else { return false };
        self.path_info(b).is_some_and(|p| {
            p.usable && matches!(p.access, AccessState::ActiveOptimized | AccessState::ActiveNonOptimized)
        })
    }

    /// `GetControllerInfo`.
    #[must_use]
    pub fn controller(&self, device: NonZeroU32) -> Option<ControllerView> {
        let b = self.binding(device)?;
        let info = self.path_info(b)?;
        let ports = self.dsm.ports(b.lun, b.slot)?;
        Some(ControllerView {
            usable: info.usable,
            access: info.access,
            target_port_group: ports.target_port_group,
        })
    }

    /// `PathVerify`, step 1: the target token of a bound device.
    #[must_use]
    pub fn verify_target(&self, device: NonZeroU32) -> Option<usize> {
        self.binding(device)?;
        let (i, d) = self.devices.get(device)?;
        let target = d.target.load(Ordering::Relaxed);
        (self.devices.still(i, device) && target != 0).then_some(target)
    }

    /// `PathVerify`, step 2: the probe succeeded (`ok`) or not. Success
    /// reinstates a failed path unless it is held down for flapping;
    /// failure fails it. Whether the path is usable.
    #[must_use]
    pub fn path_verify(&self, device: NonZeroU32, path: NonZeroU32, ok: bool, now: Tick) -> bool {
        let Some(b) = self.binding(device).filter(|b| b.path == path) else { return false };
        if !ok {
            let _ = self.dsm.fail_path(b.lun, b.slot, now);
            return false;
        }
        matches!(
            self.dsm.reinstate(b.lun, b.slot, now),
            Ok(rsdsm_engine::Reinstatement::Reinstated | rsdsm_engine::Reinstatement::AlreadyInService)
        )
    }

    /// Every live bound device.
    fn bound(&self) -> impl Iterator<Item = Binding> + '_ {
        self.devices.live().filter_map(|(h, _)| self.binding(h))
    }

    /// `InvalidatePath`: the path failed for every LUN on it. The path that
    /// takes over (a usable path of one of those LUNs), if any.
    #[must_use]
    pub fn invalidate_path(&self, path: NonZeroU32, now: Tick) -> Option<NonZeroU32> {
        let mut next = None;
        for b in self.bound().filter(|b| b.path == path) {
            let _ = self.dsm.fail_path(b.lun, b.slot, now);
            if next.is_none() {
                next = self.dsm.lun(b.lun).and_then(|lun| lun.path_info().ok()).and_then(|infos| {
                    let usable = infos.into_iter().find(|p| p.usable && p.slot != b.slot)?;
                    self.bound().find(|o| o.lun == b.lun && o.slot == usable.slot).map(|o| o.path)
                });
            }
        }
        next
    }

    /// `MoveDevice`: make `suggested` the LUN's preferred path. `permanent`
    /// also stores it (through a policy set of the unchanged policy, which
    /// records the preferred path). `false` if the path is not a usable path
    /// of these devices.
    pub fn move_device<S: PolicyStore + ?Sized>(
        &self,
        devices: &[NonZeroU32],
        suggested: NonZeroU32,
        permanent: bool,
        store: &mut S,
    ) -> bool {
        let Some(b) = devices.iter().filter_map(|&d| self.binding(d)).find(|b| b.path == suggested) else {
            return false;
        };
        if !self.path_info(b).is_some_and(|p| p.usable) {
            return false;
        }
        let Some(lun) = self.dsm.lun(b.lun) else { return false };
        if lun.set_preferred_path(Some(b.slot)).is_err() {
            return false;
        }
        if permanent && let Ok(now) = lun.load_balance_policy() {
            // Best effort: the move itself has happened.
            let _ = self.dsm.set_policy(b.lun, now.policy, &now.paths, store);
        }
        true
    }

    /// `RemovePending`: the device is going away; its path stops carrying
    /// I/O (it enters verification, which counts no failure).
    pub fn remove_pending(&self, device: NonZeroU32) {
        if let Some(b) = self.binding(device) {
            let _ = self.dsm.verify(b.lun, b.slot);
        }
    }

    /// `RemoveDevice`: forget the device; its path leaves the LUN, and the
    /// LUN goes with its last path.
    pub fn remove_device(&self, device: NonZeroU32) {
        let _lifecycle = self.lifecycle.lock();
        let Some((i, d)) = self.devices.seize(device) else { return };
        let binding = Binding::decode(d.lun.load(Ordering::Relaxed), d.binding.load(Ordering::Relaxed));
        d.binding.store(0, Ordering::Relaxed);
        d.target.store(0, Ordering::Relaxed);
        self.devices.release(i);
        if let Some(b) = binding {
            let _ = self.dsm.remove_path(b.lun, b.slot);
            if !self.bound().any(|o| o.lun == b.lun) {
                let _ = self.dsm.remove_lun(b.lun);
            }
        }
    }

    /// `RemovePath`: forget the path handle (its devices are gone).
    pub fn remove_path(&self, path: NonZeroU32) {
        let _lifecycle = self.lifecycle.lock();
        if let Some((i, p)) = self.paths.seize(path) {
            p.mpio.store(0, Ordering::Relaxed);
            self.paths.release(i);
        }
    }

    /// Unload: drop every device and path.
    pub fn clear(&self) {
        let devices = self.devices.live().map(|(h, _)| h);
        for h in devices {
            self.remove_device(h);
        }
        let paths = self.paths.live().map(|(h, _)| h);
        for h in paths {
            self.remove_path(h);
        }
    }

    // ------------------------------------------------------------ per I/O

    /// `LBGetPath` / `CategorizeRequest`: the path for one I/O to the
    /// pseudo-LUN whose device instances are `devices`. Lock-free.
    ///
    /// The engine picks a slot; the device on that slot gives the path. If
    /// the pick is a path mpio.sys has not listed yet (it was just added),
    /// `current` is kept if listed, else the first listed device's path.
    #[must_use]
    pub fn select(
        &self,
        devices: &[NonZeroU32],
        current: Option<NonZeroU32>,
        io: &IoRequest,
    ) -> Option<NonZeroU32> {
        let first = devices.iter().find_map(|&d| self.binding(d))?;
        let slot = self.dsm.select(first.lun, io).ok()?;
        let listed = |wanted: &dyn Fn(&Binding) -> bool| {
            devices
                .iter()
                .filter_map(|&d| self.binding(d))
                .find(|b| b.lun == first.lun && wanted(b))
                .map(|b| b.path)
        };
        listed(&|b| b.slot == slot)
            .or_else(|| current.and_then(|c| listed(&|b| b.path == c)))
            .or(Some(first.path))
    }

    /// `SetCompletion`: count the I/O in flight on the device's path. A
    /// ticket for the completion routine, or `None` (unknown device, LUN
    /// gone, or no free ticket: the I/O then goes uncounted).
    #[must_use]
    pub fn start(&self, device: NonZeroU32, io: &IoRequest) -> Option<NonZeroU32> {
        let b = self.binding(device)?;
        let (i, parked) = self.tickets.claim(true)?;
        let Ok(ticket) = self.dsm.start(b.lun, b.slot, io) else {
            self.tickets.release(i);
            return None;
        };
        let [w0, w1] = ticket.into_raw();
        parked.lun.store(b.lun.0, Ordering::Relaxed);
        let [c0, c1] = &parked.raw;
        c0.store(w0, Ordering::Relaxed);
        c1.store(w1, Ordering::Relaxed);
        let handle = self.tickets.publish(i);
        if handle.is_none() {
            // Cannot happen (the index fits); give the count back.
            self.unpark(i, parked, io.now, IoOutcome::Error);
        }
        handle
    }

    fn unpark(&self, index: usize, parked: &Parked, now: Tick, outcome: IoOutcome) {
        let lun = LunId(parked.lun.load(Ordering::Relaxed));
        let [c0, c1] = &parked.raw;
        let raw = [c0.load(Ordering::Relaxed), c1.load(Ordering::Relaxed)];
        self.tickets.release(index);
        if let Some(ticket) = IoTicket::from_raw(raw) {
            self.dsm.complete(lun, ticket, now, outcome);
        }
    }

    /// The completion routine: the I/O behind `ticket` ended. A ticket is
    /// honoured once; a stale or repeated one is ignored.
    pub fn complete(&self, ticket: NonZeroU32, now: Tick, ok: bool) {
        if let Some((i, parked)) = self.tickets.seize(ticket) {
            self.unpark(i, parked, now, if ok { IoOutcome::Success } else { IoOutcome::Error });
        }
    }

    /// `InterpretError`: classify a failed request to `device`. A fatal
    /// verdict has already failed the path in the engine when this returns.
    /// Sense is classified for a CHECK CONDITION; otherwise the SRB status,
    /// SCSI status and NTSTATUS ([`transport_error`]). An unknown device, or
    /// an error nobody classifies, is passed up.
    ///
    /// The shim does not say whether the request was a READ/WRITE; it is
    /// taken to be one (only the ALUA standby rule looks at it: failing
    /// over from a standby port is right for any media-access command).
    #[must_use]
    pub fn interpret_error(
        &self,
        device: NonZeroU32,
        sense: &[u8],
        srb: u8,
        scsi: u8,
        nt: i32,
        now: Tick,
    ) -> Verdict {
        let pass_up = Verdict { action: SenseAction::PassUp, reread_alua: false };
        let Some(b) = self.binding(device) else { return pass_up };
        if scsi == SCSI_CHECK_CONDITION || !sense.is_empty() {
            return self.dsm.interpret_error(b.lun, b.slot, sense, true, now);
        }
        match transport_error(srb, scsi, nt) {
            Some(error) => self.dsm.interpret_transport(b.lun, b.slot, error, now),
            None => pass_up,
        }
    }

    /// Device handles in use.
    #[must_use]
    pub fn device_count(&self) -> usize {
        self.devices.live().count()
    }

    /// Path handles in use.
    #[must_use]
    pub fn path_count(&self) -> usize {
        self.paths.live().count()
    }

    /// Tickets in use (I/Os in flight with a completion callback).
    #[must_use]
    pub fn tickets_in_use(&self) -> usize {
        self.tickets.live().count()
    }
}
