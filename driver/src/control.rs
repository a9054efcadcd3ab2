//! The control-request handler: one IOCTL of the [wire protocol] in, the
//! bytes of its reply out.
//!
//! The Windows shim calls [`handle`] from its `IRP_MJ_DEVICE_CONTROL`
//! dispatch; the simulator and `rsdsm-control`'s in-process transport call
//! it directly. It is the only place where outside bytes meet the [`Dsm`].
//!
//! * An IOCTL code that is not one of ours, or an output buffer shorter than
//!   a reply header, fails the *call* ([`CallError`], an NTSTATUS for the
//!   IRP). Everything else completes the call with a reply message.
//! * A request that does not decode gets an error reply with
//!   [`WireError::hresult`]; a request the DSM refuses gets an error reply
//!   with the exact DESIGN §3 HRESULT. Neither changes anything.
//! * A reply that does not fit the output buffer becomes an
//!   `E_NOT_SUFFICIENT_BUFFER` error reply. `SetPolicy` and
//!   `SetDefaultPolicy` check the room for their reply *before* changing
//!   anything, so a change is never applied and then reported as failed.
//! * No allocation, no panic; lists are written record by record into the
//!   output ([`ListWriter`]). The largest stack object is one LUN's path
//!   table (`PATHS` × 40 bytes).
//!
//! `METHOD_BUFFERED` hands the driver one system buffer for both input and
//! output; the shim copies the input (at most [`MAX_REQUEST_SIZE`] bytes)
//! before calling [`handle`], which takes them as separate slices.
//!
//! [wire protocol]: rsdsm_engine::wire
//! [`MAX_REQUEST_SIZE`]: rsdsm_engine::wire::MAX_REQUEST_SIZE

use core::fmt;

use heapless::Vec;
use rsdsm_engine::wire::{
    HEADER_SIZE, ListWriter, LunEntry, MAX_LUNS, Opcode, PROTOCOL_VERSION, PathStatisticsEntry, RawPolicy,
    Reply, Request, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST, VersionInfo, WireError,
    encode_error,
};
use rsdsm_engine::{Error, HResult, Lun, PathInfo, PathPolicy, SupportedPolicies, VendorPolicy};

use crate::dsm::Dsm;
use crate::persist::PolicyStore;
use crate::registry::LunId;

/// Why a control call failed as a whole, with no reply written. The shim
/// completes the IRP with [`ntstatus`](Self::ntstatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallError {
    /// The IOCTL code is not one of rsdsm's (`STATUS_INVALID_DEVICE_REQUEST`).
    InvalidDeviceRequest,
    /// The output buffer cannot hold a reply header
    /// (`STATUS_BUFFER_TOO_SMALL`).
    BufferTooSmall,
}

impl CallError {
    /// The NTSTATUS the call completes with.
    #[must_use]
    pub const fn ntstatus(self) -> u32 {
        match self {
            Self::InvalidDeviceRequest => STATUS_INVALID_DEVICE_REQUEST,
            Self::BufferTooSmall => STATUS_BUFFER_TOO_SMALL,
        }
    }

    /// The failed call as user mode's `DeviceIoControl` reports it
    /// (`HRESULT_FROM_WIN32` of the Win32 error the NTSTATUS maps to).
    #[must_use]
    pub const fn hresult(self) -> HResult {
        match self {
            Self::InvalidDeviceRequest => HResult::E_INVALID_FUNCTION,
            Self::BufferTooSmall => HResult::E_NOT_SUFFICIENT_BUFFER,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDeviceRequest => f.write_str("not an rsdsm IOCTL code"),
            Self::BufferTooSmall => write!(f, "output buffer shorter than a {HEADER_SIZE}-byte reply header"),
        }
    }
}

impl core::error::Error for CallError {}

/// The driver's version, from the crate version.
pub const DRIVER_VERSION: (u16, u16, u16) = (
    parse_u16(env!("CARGO_PKG_VERSION_MAJOR")),
    parse_u16(env!("CARGO_PKG_VERSION_MINOR")),
    parse_u16(env!("CARGO_PKG_VERSION_PATCH")),
);

/// A decimal `u16` at compile time; stops at the first non-digit.
const fn parse_u16(s: &str) -> u16 {
    let mut rest = s.as_bytes();
    let mut value: u16 = 0;
    while let [b, tail @ ..] = rest {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.saturating_mul(10).saturating_add((*b - b'0') as u16);
        rest = tail;
    }
    value
}

/// Handles one control call: `ioctl` with its `input` buffer, answering
/// into `output`. Returns the number of bytes written (the IRP's
/// `Information`).
///
/// Changes are persisted through `store` before they take effect
/// ([`Dsm::set_policy_if`]). The DSM-wide default policy is not persisted
/// here (the store keeps per-LUN records); the shim keeps it in its
/// configuration.
///
/// # Errors
/// [`CallError`] if the call fails as a whole; nothing is written then.
pub fn handle<const LUNS: usize, const PATHS: usize, S: PolicyStore + ?Sized>(
    dsm: &Dsm<LUNS, PATHS>,
    store: &mut S,
    ioctl: u32,
    input: &[u8],
    output: &mut [u8],
) -> Result<usize, CallError> {
    let opcode = Opcode::from_ioctl(ioctl).ok_or(CallError::InvalidDeviceRequest)?;
    if output.len() < HEADER_SIZE {
        return Err(CallError::BufferTooSmall);
    }
    let outcome = match Request::decode_for(opcode, input) {
        Ok(request) => answer(dsm, store, &request, output),
        Err(e) => Err(e.hresult()),
    };
    match outcome {
        Ok(n) => Ok(n),
        // The output holds at least a header and the code is a failure, so
        // this cannot fail; if it did, report a failed call, not garbage.
        Err(code) => encode_error(opcode, failure(code), output).map_err(|_| CallError::BufferTooSmall),
    }
}

/// A failure code for the error reply (never a success code).
const fn failure(code: HResult) -> HResult {
    if code.is_success() { HResult::VDS_E_PROVIDER_CACHE_CORRUPT } else { code }
}

fn wire(e: WireError) -> HResult {
    e.hresult()
}

fn dsm_error(e: Error) -> HResult {
    e.hresult()
}

/// Applies a decoded request and writes its success reply, or returns the
/// HRESULT of the error reply.
fn answer<const LUNS: usize, const PATHS: usize, S: PolicyStore + ?Sized>(
    dsm: &Dsm<LUNS, PATHS>,
    store: &mut S,
    request: &Request<'_>,
    output: &mut [u8],
) -> Result<usize, HResult> {
    match *request {
        Request::GetVersion => {
            let (driver_major, driver_minor, driver_patch) = DRIVER_VERSION;
            let info = VersionInfo {
                protocol: PROTOCOL_VERSION,
                driver_major,
                driver_minor,
                driver_patch,
                max_paths_per_lun: u32::try_from(PATHS).unwrap_or(u32::MAX),
                max_luns: u32::try_from(LUNS).unwrap_or(u32::MAX),
            };
            Reply::GetVersion(info).encode(output).map_err(wire)
        }
        Request::ListLuns => list_luns(dsm, output),
        Request::GetPolicy { lun } => {
            let snapshot = present(dsm, lun)?.load_balance_policy().map_err(dsm_error)?;
            Reply::from_snapshot(&snapshot).encode(output).map_err(wire)
        }
        Request::SetPolicy { lun, policy, expected_generation, paths } => {
            let reply_len = Reply::SetPolicy { generation: 0 }.encoded_len();
            if output.len() < reply_len {
                return Err(HResult::E_NOT_SUFFICIENT_BUFFER);
            }
            present(dsm, lun)?;
            let policy = policy.policy().map_err(dsm_error)?;
            let paths: Vec<PathPolicy, PATHS> = paths.to_vec().map_err(dsm_error)?;
            let generation =
                dsm.set_policy_if(lun, policy, &paths, expected_generation, store).map_err(dsm_error)?;
            Reply::SetPolicy { generation }.encode(output).map_err(wire)
        }
        Request::GetPathInfo { lun } => {
            let info = present(dsm, lun)?.path_info().map_err(dsm_error)?;
            let mut w = ListWriter::<PathInfo>::new(output, count(info.len())).map_err(wire)?;
            for path in &info {
                w.push(path).map_err(wire)?;
            }
            Ok(w.finish())
        }
        Request::GetStatistics { lun } => {
            let engine = present(dsm, lun)?;
            let info = engine.path_info().map_err(dsm_error)?;
            let mut w = ListWriter::<PathStatisticsEntry>::new(output, count(info.len())).map_err(wire)?;
            for path in &info {
                // A path that left since `path_info` is skipped.
                if let Some(statistics) = engine.statistics(path.slot) {
                    w.push(&PathStatisticsEntry { path_id: path.path_id, statistics }).map_err(wire)?;
                }
            }
            Ok(w.finish())
        }
        Request::GetDefaultPolicy => {
            Reply::GetDefaultPolicy(dsm.default_policy().into()).encode(output).map_err(wire)
        }
        Request::SetDefaultPolicy { policy } => {
            if output.len() < Reply::SetDefaultPolicy.encoded_len() {
                return Err(HResult::E_NOT_SUFFICIENT_BUFFER);
            }
            let policy = policy.policy().map_err(dsm_error)?;
            dsm.set_default_policy(policy);
            Reply::SetDefaultPolicy.encode(output).map_err(wire)
        }
        Request::GetSupportedPolicies { lun } => {
            present(dsm, lun)?;
            let vendor_mask =
                VendorPolicy::ALL.iter().fold(0u32, |m, v| m | 1u32.checked_shl(v.id()).unwrap_or(0));
            let policies: SupportedPolicies = Lun::<PATHS>::supported_policies();
            Reply::GetSupportedPolicies { policies, vendor_mask }.encode(output).map_err(wire)
        }
    }
}

/// The engine's LUN behind a handle, or `VDS_E_OBJECT_DELETED`.
fn present<const LUNS: usize, const PATHS: usize>(
    dsm: &Dsm<LUNS, PATHS>,
    lun: LunId,
) -> Result<&Lun<PATHS>, HResult> {
    dsm.lun(lun).ok_or(HResult::VDS_E_OBJECT_DELETED)
}

/// A list length as a wire count (lists are bounded far below `u32::MAX`).
fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// `ListLuns`: every present LUN, at most [`MAX_LUNS`] (the protocol's
/// bound; a DSM built for more LUNs lists the first `MAX_LUNS` in table
/// order). A LUN that arrives while the list is written may be missing and
/// one that leaves is skipped: the list is a snapshot, not a lock.
fn list_luns<const LUNS: usize, const PATHS: usize>(
    dsm: &Dsm<LUNS, PATHS>,
    output: &mut [u8],
) -> Result<usize, HResult> {
    let present = dsm.luns().count().min(MAX_LUNS as usize);
    let mut w = ListWriter::<LunEntry>::new(output, count(present)).map_err(wire)?;
    for view in dsm.luns() {
        if w.len() >= count(present) {
            break;
        }
        let Ok(paths) = view.lun.path_info() else { continue };
        let mut identity = [0u8; 16];
        for (dst, src) in identity.iter_mut().zip(view.key.as_slice()) {
            *dst = *src;
        }
        let entry = LunEntry {
            lun: view.id,
            policy: RawPolicy::from(view.lun.policy()),
            paths: count(paths.len()),
            usable_paths: count(paths.iter().filter(|p| p.usable).count()),
            removed: false,
            identity,
        };
        w.push(&entry).map_err(wire)?;
    }
    Ok(w.finish())
}
