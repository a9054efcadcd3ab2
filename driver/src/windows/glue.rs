//! The one place where the Windows shim meets the portable DSM core.
//!
//! Everything here is plain, safe Rust: slices, integers and the small types
//! below. The trampolines in `entry_points.rs` and the control device turn
//! mpio.sys / I/O-manager pointers into these values and call exactly one
//! function per entry point; every decision (claiming, grouping paths,
//! choosing a path, classifying an error, persisting, the control protocol)
//! is made behind these functions.
//!
//! **Bodies.** Each function is a call into the portable core: the
//! [`Mpio`](crate::mpio::Mpio) adapter (handle tables + entry-point logic over
//! [`Dsm`](crate::dsm::Dsm)), held in one `static` ([`DSM`]), and
//! [`crate::control::handle`] for the control device. This file only
//! converts types (handles, [`IoSummary`] → `IoRequest`, verdicts →
//! [`ErrorAction`]) and supplies the clock and the registry store.
//!
//! **Handles.** The values mpio.sys keeps for us (`DsmId`, `PathId`, the
//! completion context) are the raw forms of [`DeviceHandle`], [`PathHandle`]
//! and [`Ticket`]: small non-zero integers chosen by the core (for example a
//! table index + 1 and a generation), never pointers. MPIO treats them as
//! opaque `PVOID`s and only hands them back. Zero means "none" (MPIO passes
//! NULL for "no current path").
//!
//! **IRQL.** Functions marked *DISPATCH* may be called at `DISPATCH_LEVEL`
//! (per-I/O path): they must not block, allocate from paged pool, or touch the
//! registry. Those marked *PASSIVE* run at `PASSIVE_LEVEL`.
use core::num::NonZeroU32;

use heapless::Vec;
use rsdsm_engine::{AccessState, IoRequest, LoadBalancePolicy, LunSettings};

use crate::claim::{ClaimList, DeviceId};
use crate::control::{self, CallError};
use crate::identity::{KEY_BYTES, LunKey};
use crate::mpio::{self, MAX_CLAIMS, Mpio};
use crate::persist::{self, PolicyStore};
use crate::sense::SenseAction;

use super::entry_points::now;

/// LUNs the DSM can hold. The whole table is a `static` built at compile
/// time (no allocation, no initialisation order), so its size is paid in
/// the image: a `Dsm<32, 32>` is about 1.9 MB (one engine `Lun<32>` of
/// about 57 KB per LUN, most of it the per-CPU statistics stripes that let
/// CPUs count I/O without sharing cache lines), non-paged. 32 multipath
/// LUNs per host is a modest array; raising it costs ~57 KB per LUN. A LUN
/// beyond the table is still claimed in `InquireDriver` but fails
/// `SetDeviceInfo`.
const LUNS: usize = 32;
/// Device instances (LUN × path): 16 paths per LUN on average (MPIO allows
/// 32 per LUN). About 90 bytes each, zero-initialised. A device beyond the
/// table is declined in `InquireDriver` (left to another DSM).
const DEVICES: usize = 512;
/// MPIO paths (`I_T` nexuses) across all LUNs. 16 bytes each.
const PATHS: usize = 128;
/// I/Os in flight with a completion callback, across all LUNs (32 bytes
/// each). Beyond it an I/O is sent without a callback and the engine does
/// not count it in flight (queue-depth policies under-count it); it never
/// fails.
const TICKETS: usize = 2048;
/// `KeQueryUnbiasedInterruptTime` ticks per second (100 ns units).
const TICKS_PER_SECOND: u64 = 10_000_000;

/// The DSM: the core and its handle tables, built at compile time.
static DSM: Mpio<LUNS, DEVICES, PATHS, TICKETS> =
    Mpio::new(LoadBalancePolicy::RoundRobin, LunSettings::for_tick_rate(TICKS_PER_SECOND));

/// Claimed when the registry has no `Parameters\DsmSupportedDeviceList`:
/// the same placeholder the INF installs (it matches no real array), so an
/// install without the value behaves like one with the INF's default.
const DEFAULT_SUPPORTED: [&str; 1] = ["EXAMPLE EXAMPLEARRAY    "];

// The SRB/NTSTATUS codes the portable classification uses are the WDK's.
const _: () = {
    use mpio::{nt_status as nt, srb_status as srb};
    assert!(srb::ABORTED as u32 == wdk_sys::SRB_STATUS_ABORTED);
    assert!(srb::ERROR as u32 == wdk_sys::SRB_STATUS_ERROR);
    assert!(srb::BUSY as u32 == wdk_sys::SRB_STATUS_BUSY);
    assert!(srb::INVALID_PATH_ID as u32 == wdk_sys::SRB_STATUS_INVALID_PATH_ID);
    assert!(srb::NO_DEVICE as u32 == wdk_sys::SRB_STATUS_NO_DEVICE);
    assert!(srb::TIMEOUT as u32 == wdk_sys::SRB_STATUS_TIMEOUT);
    assert!(srb::SELECTION_TIMEOUT as u32 == wdk_sys::SRB_STATUS_SELECTION_TIMEOUT);
    assert!(srb::COMMAND_TIMEOUT as u32 == wdk_sys::SRB_STATUS_COMMAND_TIMEOUT);
    assert!(srb::BUS_RESET as u32 == wdk_sys::SRB_STATUS_BUS_RESET);
    assert!(srb::PARITY_ERROR as u32 == wdk_sys::SRB_STATUS_PARITY_ERROR);
    assert!(srb::NO_HBA as u32 == wdk_sys::SRB_STATUS_NO_HBA);
    assert!(srb::DATA_OVERRUN as u32 == wdk_sys::SRB_STATUS_DATA_OVERRUN);
    assert!(srb::UNEXPECTED_BUS_FREE as u32 == wdk_sys::SRB_STATUS_UNEXPECTED_BUS_FREE);
    assert!(srb::PHASE_SEQUENCE_FAILURE as u32 == wdk_sys::SRB_STATUS_PHASE_SEQUENCE_FAILURE);
    assert!(srb::INVALID_LUN as u32 == wdk_sys::SRB_STATUS_INVALID_LUN);
    assert!(srb::INVALID_TARGET_ID as u32 == wdk_sys::SRB_STATUS_INVALID_TARGET_ID);
    assert!(srb::LINK_DOWN as u32 == wdk_sys::SRB_STATUS_LINK_DOWN);
    assert!(nt::BUFFER_OVERFLOW == wdk_sys::STATUS_BUFFER_OVERFLOW);
    assert!(nt::NO_SUCH_DEVICE == wdk_sys::STATUS_NO_SUCH_DEVICE);
    assert!(nt::DELETE_PENDING == wdk_sys::STATUS_DELETE_PENDING);
    assert!(nt::DEVICE_NOT_CONNECTED == wdk_sys::STATUS_DEVICE_NOT_CONNECTED);
    assert!(nt::DEVICE_DOES_NOT_EXIST == wdk_sys::STATUS_DEVICE_DOES_NOT_EXIST);
};

/// Most paths (DsmIds) of one pseudo-LUN the shim passes in one call; MPIO
/// supports at most 32 paths per device.
pub const MAX_PATHS_PER_DEVICE: usize = 32;

macro_rules! handle {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(NonZeroU32);

        impl $name {
            /// From the core's non-zero value.
            #[must_use]
            pub const fn new(value: NonZeroU32) -> Self {
                Self(value)
            }
            /// The core's value.
            #[must_use]
            pub const fn get(self) -> NonZeroU32 {
                self.0
            }
            /// From the opaque value MPIO handed back (`PVOID as usize`);
            /// `None` for NULL or anything we cannot have issued.
            #[must_use]
            pub fn from_raw(raw: usize) -> Option<Self> {
                u32::try_from(raw).ok().and_then(NonZeroU32::new).map(Self)
            }
            /// The opaque value given to MPIO (becomes a `PVOID`).
            #[must_use]
            pub fn to_raw(self) -> usize {
                // u32 -> usize is lossless on every Windows target (64-bit).
                self.0.get() as usize
            }
        }
    };
}

handle!(
    /// One claimed device instance (one LUN seen through one path); MPIO's `DsmId`.
    DeviceHandle
);
handle!(
    /// One path (I_T nexus); MPIO's `PathId`.
    PathHandle
);
handle!(
    /// One started I/O awaiting completion; the context of our completion routine.
    Ticket
);

/// What the trampolines know about one I/O, read from its SRB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoSummary {
    /// `DataTransferLength`
    pub bytes: u32,
    /// Data-out (`SRB_FLAGS_DATA_OUT`).
    pub write: bool,
    /// Starting LBA from a READ/WRITE(6/10/12/16) CDB, if it is one.
    pub lba: Option<u64>,
    /// Transfer length in blocks from the same CDB (0 if not READ/WRITE).
    pub blocks: u32,
    /// SCSI operation code (`Cdb[0]`), 0 if there is no CDB.
    pub opcode: u8,
    /// Current processor index (`KeGetCurrentProcessorNumberEx`).
    pub cpu: u32,
    /// Monotonic time in 100 ns units (`KeQueryUnbiasedInterruptTime`).
    pub now: u64,
}

/// Result of [`interpret_error`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorAction {
    /// Fail the path over (`DSM_FATAL_ERROR`).
    pub fatal: bool,
    /// Ask MPIO to retry the request.
    pub retry: bool,
    /// Retry without consuming a retry (`DSM_RETRY_DONT_DECREMENT`).
    pub retry_dont_decrement: bool,
    /// Replace the request's NTSTATUS.
    pub status: Option<i32>,
    /// Low 16 bits passed to [`invalidate_path`] as part of the error mask
    /// (`DSM_FATAL_ERROR_OEM_MASK`; bit 15 is taken by `retry_dont_decrement`).
    pub oem: u16,
}

/// State reported through `DsmGetControllerInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControllerState {
    /// `DSM_CONTROLLER_ACTIVE`
    Active,
    /// `DSM_CONTROLLER_STANDBY`
    Standby,
    /// `DSM_CONTROLLER_FAILED`
    Failed,
    /// `DSM_CONTROLLER_NO_CNTRL`
    NoController,
}

/// Controller identity for `DsmGetControllerInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerInfo {
    /// State of the controller behind the device's current path.
    pub state: ControllerState,
    /// Binary identifier (e.g. target port group / WWN), first `id_len` bytes.
    pub id: [u8; 32],
    /// Valid bytes in `id` (≤ 32).
    pub id_len: usize,
}

/// Result of [`categorize`] for a non-read/write request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Send it down this path (`DSM_PATH_SET`).
    Path(PathHandle),
    /// Fail it with this NTSTATUS (`DSM_ERROR`).
    Error(i32),
}

/// Outcome of a control request, mapped to an NTSTATUS by the control device.
#[allow(
    dead_code,
    reason = "control::handle answers malformed, refused and unknown-LUN requests with an error *reply* \
              (the call succeeds); only call-level failures (unknown code, no room for a header) use a status"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlStatus {
    /// `STATUS_SUCCESS`
    Success,
    /// Unknown code or request (`STATUS_INVALID_DEVICE_REQUEST`).
    InvalidRequest,
    /// Malformed input (`STATUS_INVALID_PARAMETER`).
    InvalidParameter,
    /// Output too small (`STATUS_BUFFER_TOO_SMALL`); nothing written.
    BufferTooSmall,
    /// No such LUN/path (`STATUS_NOT_FOUND`).
    NotFound,
    /// The store could not be written (`STATUS_UNSUCCESSFUL`).
    Failed,
}

/// Result of [`control`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlResult {
    /// Status of the request.
    pub status: ControlStatus,
    /// Bytes of the output slice that were written (the shim clamps it to the
    /// slice length and reports it as `IoStatus.Information`).
    pub written: usize,
}

/// Storage failure reported by the registry backend (an NTSTATUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreError(pub i32);

// ------------------------------------------------------------- lifecycle

/// DriverEntry, PASSIVE, before registering with MPIO: set up the core
/// (tables, defaults) and load persisted per-LUN records through
/// [`RegistryBackend`] as the core sees fit. `false` aborts the load.
///
/// The tables are static and empty; the claim list comes from
/// `Parameters\DsmSupportedDeviceList` (else [`DEFAULT_SUPPORTED`]).
/// Per-LUN records are read when each LUN arrives (`set_device_info`).
#[must_use]
pub fn start() -> bool {
    let mut units = [0u16; MAX_CLAIMS * 25 + 1];
    let list = if let Ok(Some(n)) = super::registry_store::load_supported_devices(&mut units) {
        supported_list(units.get(..n).unwrap_or(&[]))
    } else {
        // Absent or unreadable: the documented default. (A failure to read
        // the list must not keep the DSM from registering.)
        let mut list = ClaimList::new();
        for id in DEFAULT_SUPPORTED.iter().filter_map(|e| DeviceId::parse(e).ok()) {
            let _ = list.add(id);
        }
        list
    };
    DSM.set_claims(&list);
    true
}

/// `DsmUnload` / DriverUnload, PASSIVE: MPIO is done with us; drop all state.
pub fn stop() {
    DSM.clear();
}

// ------------------------------------------------------------- PnP side

/// `DsmInquireDriver`, PASSIVE. Decide whether to claim a device instance
/// (supported-device list on `vendor`/`product`) and derive its identity
/// from `vpd83` (a VPD page 0x83 image rebuilt from MPIO's identifier list:
/// 4-byte page header then designators) or, failing that, `serial`. Returns
/// the new device handle, or `None` to decline.
#[must_use]
pub fn inquire(vendor: &[u8], product: &[u8], serial: &[u8], vpd83: &[u8]) -> Option<DeviceHandle> {
    DSM.inquire(vendor, product, serial, vpd83).map(DeviceHandle::new)
}

/// `DsmCompareDevices`, PASSIVE: do `a` and `b` denote the same logical unit
/// (same stable identity), i.e. two paths to one pseudo-LUN?
#[must_use]
pub fn compare_devices(a: DeviceHandle, b: DeviceHandle) -> bool {
    DSM.compare_devices(a.get(), b.get())
}

/// `DsmSetDeviceInfo`, PASSIVE: `device` was placed on MPIO's path
/// `mpio_path` (the same value for every device on one physical path).
/// `target` is an opaque token for the device object that DSM-initiated
/// requests go to; keep it for [`verify_target`] (valid until
/// [`remove_device`]). Return the path handle to report to MPIO from now on,
/// or `None` to fail the call (fatal for the device).
#[must_use]
pub fn set_device_info(device: DeviceHandle, mpio_path: usize, target: usize) -> Option<PathHandle> {
    DSM.set_device_info(device.get(), mpio_path, target, &RegistryStore).map(PathHandle::new)
}

/// `DsmGetControllerInfo`, PASSIVE: controller identity and state.
#[must_use]
pub fn controller_info(device: DeviceHandle) -> ControllerInfo {
    let none = ControllerInfo { state: ControllerState::NoController, id: [0; 32], id_len: 0 };
    let Some(view) = DSM.controller(device.get()) else { return none };
    // The controller is the target port group the path leads to.
    let Some(tpg) = view.target_port_group else { return none };
    let state = match view.access {
        _ if !view.usable => ControllerState::Failed,
        AccessState::ActiveOptimized | AccessState::ActiveNonOptimized => ControllerState::Active,
        AccessState::Standby => ControllerState::Standby,
        AccessState::Unavailable | AccessState::Transitioning => ControllerState::Failed,
    };
    let mut id = [0; 32];
    let [hi, lo] = tpg.to_be_bytes();
    if let Some(dst) = id.get_mut(..2) {
        dst.copy_from_slice(&[hi, lo]);
    }
    ControllerInfo { state, id, id_len: 2 }
}

/// `DsmIsPathActive`, PASSIVE: may I/O to `device` go down `path` without a
/// failover (active/optimised or active/non-optimised per policy)?
#[must_use]
pub fn is_path_active(path: PathHandle, device: DeviceHandle) -> bool {
    DSM.is_path_active(path.get(), device.get())
}

/// `DsmPathVerify`, PASSIVE, step 1: the target token on which to probe
/// `device` (the shim sends TEST UNIT READY to it).
#[must_use]
pub fn verify_target(device: DeviceHandle) -> Option<usize> {
    DSM.verify_target(device.get())
}

/// `DsmPathVerify`, PASSIVE, step 2: the probe of `device` on `path` gave
/// `probe` (an NTSTATUS). Returns whether the path is usable; on success the
/// core reinstates a previously failed path (failback bookkeeping).
#[must_use]
pub fn path_verify(device: DeviceHandle, path: PathHandle, probe: i32) -> bool {
    DSM.path_verify(device.get(), path.get(), probe >= 0, now())
}

/// `DsmInvalidatePath`, PASSIVE: `path` failed (`error_mask` is what
/// [`interpret_error`] returned). Mark it failed and return the path that
/// takes over, or `None` if no path is left.
#[must_use]
pub fn invalidate_path(error_mask: u32, path: PathHandle) -> Option<PathHandle> {
    // Whatever the mask says, MPIO has given up on the path; the OEM bits
    // are ours and `interpret_error` sets none.
    let _ = error_mask;
    DSM.invalidate_path(path.get(), now()).map(PathHandle::new)
}

/// `DsmMoveDevice`, PASSIVE: an administrator asks that `devices` use
/// `suggested` (`permanent`: make it the preferred path). `false` if that
/// path is unusable.
#[must_use]
pub fn move_device(devices: &[DeviceHandle], suggested: PathHandle, permanent: bool) -> bool {
    DSM.move_device(&raw(devices), suggested.get(), permanent, &mut RegistryStore)
}

/// `DsmRemovePending`, PASSIVE: `device` is going away; stop selecting it.
pub fn remove_pending(device: DeviceHandle) {
    DSM.remove_pending(device.get());
}

/// `DsmRemoveDevice`, PASSIVE: forget `device` on `path` (frees its handle).
pub fn remove_device(device: DeviceHandle, path: PathHandle) {
    // The device knows its path.
    let _ = path;
    DSM.remove_device(device.get());
}

/// `DsmRemovePath`, PASSIVE: forget `path` (its devices are already removed).
pub fn remove_path(path: PathHandle) {
    DSM.remove_path(path.get());
}

// ---------------------------------------------------------------- I/O side

/// `DsmLBGetPath`, DISPATCH: choose the path for one read/write. `devices`
/// are the DsmIds of the pseudo-LUN, `current` the path used last. `None`
/// means every path has failed.
#[must_use]
pub fn lb_get_path(
    devices: &[DeviceHandle],
    current: Option<PathHandle>,
    io: IoSummary,
) -> Option<PathHandle> {
    DSM.select(&raw(devices), current.map(PathHandle::get), &request(io)).map(PathHandle::new)
}

/// `DsmCategorizeRequest`, DISPATCH: route a non-read/write request.
#[must_use]
pub fn categorize(devices: &[DeviceHandle], current: Option<PathHandle>, io: IoSummary) -> Category {
    DSM.select(&raw(devices), current.map(PathHandle::get), &request(io))
        .map_or(Category::Error(wdk_sys::STATUS_NO_SUCH_DEVICE), |p| Category::Path(PathHandle::new(p)))
}

/// `DsmSetCompletion`, DISPATCH: the request is being sent via `device`.
/// Return a ticket to be notified of its completion (statistics, queue
/// depth), or `None` for no completion callback.
#[must_use]
pub fn set_completion(device: DeviceHandle, io: IoSummary) -> Option<Ticket> {
    DSM.start(device.get(), &request(io)).map(Ticket::new)
}

/// Our completion routine, DISPATCH: the request behind `ticket` finished at
/// `now` (100 ns units), successfully or not.
pub fn complete(ticket: Ticket, now: u64, ok: bool) {
    DSM.complete(ticket.get(), now, ok);
}

/// `DsmInterpretError`, DISPATCH: a request to `device` failed. `sense` is
/// the autosense data (empty when not valid), `srb_status` the SRB status
/// without the queue-frozen/autosense flags, `scsi_status` the SCSI status
/// byte, `nt_status` the request's NTSTATUS.
#[must_use]
pub fn interpret_error(
    device: DeviceHandle,
    sense: &[u8],
    srb_status: u8,
    scsi_status: u8,
    nt_status: i32,
) -> ErrorAction {
    let verdict = DSM.interpret_error(device.get(), sense, srb_status, scsi_status, nt_status, now());
    // A re-read of ALUA states (`verdict.reread_alua`) needs an RTPG from the
    // shim, which it does not send yet; path verification catches up.
    let (fatal, retry, retry_dont_decrement) = match verdict.action {
        // The path is failed already; MPIO retries on another one.
        SenseAction::FatalFailover => (true, true, false),
        SenseAction::Retry => (false, true, false),
        SenseAction::RetryNoCount => (false, true, true),
        SenseAction::PassUp => (false, false, false),
    };
    ErrorAction { fatal, retry, retry_dont_decrement, status: None, oem: 0 }
}

// ---------------------------------------------------------- control device

/// `IRP_MJ_DEVICE_CONTROL` on `\Device\RsdsmControl`, PASSIVE. The shim has
/// checked that `ioctl_code` is one of ours (device type 0x8A5D, function ≥
/// 0x800, METHOD_BUFFERED, access not FILE_ANY_ACCESS) and the I/O manager has
/// checked the handle's access against the code's access bits; the codec must
/// still reject codes whose access bits are wrong for the operation (queries
/// need FILE_READ_ACCESS, changes FILE_WRITE_ACCESS). `input` is a private
/// copy; `output` is the caller's buffer (initially zero-filled by the shim).
#[must_use]
pub fn control(ioctl_code: u32, input: &[u8], output: &mut [u8]) -> ControlResult {
    match control::handle(DSM.dsm(), &mut RegistryStore, ioctl_code, input, output) {
        Ok(written) => ControlResult { status: ControlStatus::Success, written },
        Err(CallError::InvalidDeviceRequest) => {
            ControlResult { status: ControlStatus::InvalidRequest, written: 0 }
        }
        Err(CallError::BufferTooSmall) => ControlResult { status: ControlStatus::BufferTooSmall, written: 0 },
    }
}

// ----------------------------------------------------------------- storage

/// Registry persistence for the core's per-LUN records (PASSIVE only): one
/// `REG_BINARY` value per LUN under the service key's `Parameters\Luns`,
/// named by the hex of `key`. The core wraps this in its store trait.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryBackend;

/// Longest LUN key (bytes) the backend accepts; its hex name is twice that.
pub const MAX_STORE_KEY: usize = 128;

#[allow(clippy::unused_self, reason = "methods so the core can wrap a backend value in its store trait")]
impl RegistryBackend {
    /// Read the record for `key` into `buf`: `Ok(None)` if absent,
    /// `Ok(Some(len))` with the full stored length (only `min(len,
    /// buf.len())` bytes are copied; a longer record is reported, not cut
    /// silently).
    ///
    /// # Errors
    /// The NTSTATUS of a registry failure, or `STATUS_INVALID_PARAMETER` for
    /// an empty or over-long key.
    pub fn load(self, key: &[u8], buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let mut name = [0u8; MAX_STORE_KEY * 2];
        let name = hex_name(key, &mut name)?;
        super::registry_store::load(name, buf).map_err(StoreError)
    }

    /// Replace the record for `key` with `data`.
    ///
    /// # Errors
    /// As for [`RegistryBackend::load`].
    pub fn save(self, key: &[u8], data: &[u8]) -> Result<(), StoreError> {
        let mut name = [0u8; MAX_STORE_KEY * 2];
        let name = hex_name(key, &mut name)?;
        super::registry_store::save(name, data).map_err(StoreError)
    }

    /// Remove the record for `key` (absent is not an error).
    ///
    /// # Errors
    /// As for [`RegistryBackend::load`].
    pub fn delete(self, key: &[u8]) -> Result<(), StoreError> {
        let mut name = [0u8; MAX_STORE_KEY * 2];
        let name = hex_name(key, &mut name)?;
        super::registry_store::delete(name).map_err(StoreError)
    }
}

/// Lower-case hex of `key` into `out`; the value name of its record.
fn hex_name<'a>(key: &[u8], out: &'a mut [u8; MAX_STORE_KEY * 2]) -> Result<&'a [u8], StoreError> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if key.is_empty() || key.len() > MAX_STORE_KEY {
        return Err(StoreError(wdk_sys::STATUS_INVALID_PARAMETER));
    }
    for (pair, byte) in out.chunks_exact_mut(2).zip(key) {
        if let [hi, lo] = pair {
            *hi = DIGITS.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
            *lo = DIGITS.get(usize::from(byte & 0xF)).copied().unwrap_or(b'0');
        }
    }
    out.get(..key.len() * 2).ok_or(StoreError(wdk_sys::STATUS_INVALID_PARAMETER))
}

// ------------------------------------------------------------- conversions

/// The handles' values, for the core (at most [`MAX_PATHS_PER_DEVICE`]; the
/// shim passes no more).
fn raw(devices: &[DeviceHandle]) -> Vec<NonZeroU32, MAX_PATHS_PER_DEVICE> {
    devices.iter().map(|d| d.get()).take(MAX_PATHS_PER_DEVICE).collect()
}

fn request(io: IoSummary) -> IoRequest {
    IoRequest {
        bytes: io.bytes,
        write: io.write,
        lba: io.lba.unwrap_or(0),
        blocks: io.blocks,
        cpu: io.cpu,
        now: io.now,
    }
}

/// A supported-device list from a `REG_MULTI_SZ` value; malformed entries
/// are skipped (one bad line must not disable the others).
fn supported_list(units: &[u16]) -> ClaimList<MAX_CLAIMS> {
    let mut list = ClaimList::new();
    for entry in units.split(|&u| u == 0).take_while(|e| !e.is_empty()) {
        if let Ok(id) = DeviceId::from_utf16(entry) {
            let _ = list.add(id);
        }
    }
    list
}

/// The core's [`PolicyStore`] over [`RegistryBackend`]: one value per LUN,
/// named by the hex of the key's kind, digest flag, length and bytes (so
/// keys of different kinds never share a value).
#[derive(Debug, Clone, Copy, Default)]
struct RegistryStore;

fn store_name(key: &LunKey) -> [u8; 3 + KEY_BYTES] {
    let mut name = [0u8; 3 + KEY_BYTES];
    let (head, bytes) = name.split_at_mut(3);
    head.copy_from_slice(&[key.kind() as u8, u8::from(key.is_digest()), key.len()]);
    bytes.copy_from_slice(key.bytes());
    name
}

impl PolicyStore for RegistryStore {
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, persist::StoreError> {
        match RegistryBackend.load(&store_name(key), buf) {
            Ok(Some(len)) if len > buf.len() => Err(persist::StoreError::BufferTooSmall),
            Ok(found) => Ok(found),
            Err(StoreError(_)) => Err(persist::StoreError::Backend),
        }
    }

    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), persist::StoreError> {
        RegistryBackend.save(&store_name(key), record).map_err(|_| persist::StoreError::Backend)
    }

    fn delete(&mut self, key: &LunKey) -> Result<(), persist::StoreError> {
        RegistryBackend.delete(&store_name(key)).map_err(|_| persist::StoreError::Backend)
    }
}
