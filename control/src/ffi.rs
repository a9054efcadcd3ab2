//! C ABI for callers in C, C#, or PowerShell (`Add-Type` / P/Invoke):
//! `SetLoadBalancePolicy` with the VDS structure layouts.
//!
//! ```c
//! typedef struct { ULONGLONG ullSourceId; ULONGLONG ullPathId; } VDS_PATH_ID;
//! typedef struct { VDS_PATH_ID pathId; BOOL bPrimaryPath; ULONG ulWeight; } VDS_PATH_POLICY;
//! HRESULT RsdsmSetLoadBalancePolicy(ULONGLONG lun, LONG policy,
//!                                   const VDS_PATH_POLICY *paths, LONG count);
//! ```
//!
//! The call reaches the DSM on the default transport: the driver's control
//! device on Windows; elsewhere the simulated DSM whose socket path is in
//! the `RSDSM_SOCKET` environment variable. The result is the DSM's HRESULT,
//! exactly as `IVdsLunMpio::SetLoadBalancePolicy` returns it. The header is
//! `control/include/rsdsm.h`.

use std::os::raw::c_long;

use crate::{ControlError, Dsm, HResult, LunId, PathId, PathPolicy, RawPolicy, transport};

/// `VDS_PATH_ID`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VdsPathId {
    /// `ullSourceId`.
    pub source_id: u64,
    /// `ullPathId`.
    pub path_id: u64,
}

/// `VDS_PATH_POLICY`: 24 bytes, as in vds.h.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VdsPathPolicy {
    /// `pathId`.
    pub path: VdsPathId,
    /// `bPrimaryPath` (a Win32 `BOOL`: non-zero is true).
    pub primary: i32,
    /// `ulWeight`.
    pub weight: u32,
}

const _: () = assert!(size_of::<VdsPathPolicy>() == 24);
const _: () = assert!(core::mem::offset_of!(VdsPathPolicy, primary) == 16);
const _: () = assert!(core::mem::offset_of!(VdsPathPolicy, weight) == 20);

/// `E_POINTER`: a null pointer where one is required.
const E_POINTER: HResult = HResult(0x8000_4003);

/// `IVdsLunMpio::SetLoadBalancePolicy` for the LUN with handle `lun`:
/// `policy` is a `VDS_LOADBALANCE_POLICY_ENUM` value (standard policies;
/// see [`RsdsmSetLoadBalancePolicyEx`] for vendor sub-policies).
///
/// # Safety
/// `paths` points to `count` readable `VDS_PATH_POLICY` structures (it may
/// be null only when `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn RsdsmSetLoadBalancePolicy(
    lun: u64,
    policy: c_long,
    paths: *const VdsPathPolicy,
    count: c_long,
) -> i32 {
    // SAFETY: forwarded from this function's own contract.
    unsafe { RsdsmSetLoadBalancePolicyEx(lun, policy, 0, paths, count) }
}

/// [`RsdsmSetLoadBalancePolicy`] with a vendor sub-policy id for policy 7
/// (1 weighted round robin, 2 service time, 3 adaptive latency).
///
/// # Safety
/// As [`RsdsmSetLoadBalancePolicy`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn RsdsmSetLoadBalancePolicyEx(
    lun: u64,
    policy: c_long,
    vendor: u32,
    paths: *const VdsPathPolicy,
    count: c_long,
) -> i32 {
    let Ok(count) = usize::try_from(count) else { return as_i32(HResult::E_INVALIDARG) };
    let entries: &[VdsPathPolicy] = if count == 0 {
        &[]
    } else if paths.is_null() {
        return as_i32(E_POINTER);
    } else {
        // SAFETY: the caller guarantees `count` readable structures at
        // `paths`; `VdsPathPolicy` is `repr(C)` plain data valid for any
        // bit pattern, and the slice lives only during this call.
        unsafe { std::slice::from_raw_parts(paths, count) }
    };
    let settings: Vec<PathPolicy> = entries
        .iter()
        .map(|p| PathPolicy {
            path_id: PathId::new(p.path.source_id, p.path.path_id),
            primary: p.primary != 0,
            weight: p.weight,
        })
        .collect();
    // A negative or unknown policy is the DSM's to reject (E_INVALIDARG).
    let number = u32::try_from(policy).unwrap_or(u32::MAX);
    let raw = RawPolicy { number, vendor };
    let result = std::panic::catch_unwind(|| set(LunId(lun), raw, &settings));
    match result {
        Ok(Ok(())) => as_i32(HResult::S_OK),
        Ok(Err(e)) => as_i32(e.hresult()),
        Err(_) => as_i32(transport::E_UNEXPECTED),
    }
}

fn set(lun: LunId, policy: RawPolicy, paths: &[PathPolicy]) -> Result<(), ControlError> {
    #[cfg(windows)]
    let transport = transport::DeviceIoControl::open().map_err(ControlError::Transport)?;
    #[cfg(unix)]
    let transport = {
        let path = std::env::var_os("RSDSM_SOCKET").ok_or_else(|| {
            ControlError::Transport(transport::TransportError::NotFound(
                "RSDSM_SOCKET is not set (the simulated DSM's socket path)".into(),
            ))
        })?;
        transport::UnixSocket::connect(std::path::PathBuf::from(path)).map_err(ControlError::Transport)?
    };
    let dsm = Dsm::connect(transport)?;
    dsm.lun(lun).set_load_balance_policy(policy, paths).map(|_| ())
}

#[allow(clippy::cast_possible_wrap, reason = "an HRESULT is a LONG: the bits are the value")]
const fn as_i32(code: HResult) -> i32 {
    code.0 as i32
}
