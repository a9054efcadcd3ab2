//! The control device `\Device\RsdsmControl` (`\\.\RsdsmControl` from user
//! mode) through which `rsdsmctl` queries and configures the DSM.
//!
//! * Created with `IoCreateDeviceSecure` and the SDDL
//!   `D:P(A;;GA;;;SY)(A;;GA;;;BA)`: only SYSTEM and Administrators can open
//!   it. `FILE_DEVICE_SECURE_OPEN` applies that ACL to `\Device\RsdsmControl\*`
//!   as well, and CREATE additionally rejects any trailing file name.
//!   [`CONTROL_CLASS_GUID`] lets an administrator override the SDDL under
//!   `HKLM\SYSTEM\CurrentControlSet\Control\Class\{guid}` (documented
//!   `IoCreateDeviceSecure` behaviour).
//! * `IoCreateDeviceSecure` is a `wdmsec.h` macro for
//!   `WdmlibIoCreateDeviceSecure` in the static library `wdmsec.lib`;
//!   neither is in wdk-sys, so it is declared here and `wdmsec` is linked.
//! * DEVICE_CONTROL accepts only our codes: device type
//!   [`RSDSM_DEVICE_TYPE`], function ≥ 0x800, `METHOD_BUFFERED`, and an
//!   access field other than `FILE_ANY_ACCESS` (the I/O manager then checks
//!   the handle's access). Lengths are checked before `SystemBuffer` is
//!   touched; the input is copied to a bounded stack buffer first because
//!   input and output share `SystemBuffer`; the output is zero-filled before
//!   `glue::control` sees it, and `IoStatus.Information` never exceeds what
//!   was written nor `OutputBufferLength`.

use core::{mem::MaybeUninit, ptr};

use wdk_sys::{
    BOOLEAN, CCHAR, DEVICE_OBJECT, DO_BUFFERED_IO, DO_DEVICE_INITIALIZING, DRIVER_OBJECT, GUID,
    IO_NO_INCREMENT, IO_STACK_LOCATION, IRP, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE,
    IRP_MJ_DEVICE_CONTROL, NTSTATUS, PCUNICODE_STRING, PDEVICE_OBJECT, PDRIVER_OBJECT, PUNICODE_STRING,
    STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS, STATUS_UNSUCCESSFUL, ULONG_PTR, UNICODE_STRING,
    ntddk::{IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink, IofCompleteRequest},
};

use super::glue::{self, ControlStatus};

/// Device type of our IOCTL codes (≥ 0x8000: vendor range).
pub const RSDSM_DEVICE_TYPE: u32 = 0x8A5D;
/// Lowest function number of our IOCTL codes (below is Microsoft's).
const FIRST_FUNCTION: u32 = 0x800;
/// Largest request accepted (copied to the stack).
pub const MAX_INPUT: usize = 4096;
/// Largest output region handed to the core (and zero-filled).
pub const MAX_OUTPUT: usize = 64 * 1024;

/// `{1c1f374f-dde5-4794-8e6d-3bab4f094834}`: device class of the control
/// device (for the SDDL override key).
pub const CONTROL_CLASS_GUID: GUID = GUID {
    Data1: 0x1c1f_374f,
    Data2: 0xdde5,
    Data3: 0x4794,
    Data4: [0x8e, 0x6d, 0x3b, 0xab, 0x4f, 0x09, 0x48, 0x34],
};

/// NUL-terminated UTF-16 from ASCII, at compile time.
#[allow(clippy::indexing_slicing, reason = "const evaluation only: a bad index is a compile error")]
const fn utf16z<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    assert!(b.len() + 1 == N);
    let mut out = [0u16; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

static DEVICE_NAME: [u16; 21] = utf16z("\\Device\\RsdsmControl");
static LINK_NAME: [u16; 25] = utf16z("\\DosDevices\\RsdsmControl");
static SDDL: [u16; 28] = utf16z("D:P(A;;GA;;;SY)(A;;GA;;;BA)");

/// A counted string over a static NUL-terminated buffer.
pub fn unicode(buf: &'static [u16]) -> UNICODE_STRING {
    let bytes = u16::try_from(buf.len().saturating_sub(1) * 2).unwrap_or(0);
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: buf.as_ptr().cast_mut() }
}

#[cfg_attr(not(test), link(name = "wdmsec"))]
unsafe extern "C" {
    /// `IoCreateDeviceSecure` (wdmsec.h).
    fn WdmlibIoCreateDeviceSecure(
        driver_object: PDRIVER_OBJECT,
        device_extension_size: u32,
        device_name: PUNICODE_STRING,
        device_type: u32,
        device_characteristics: u32,
        exclusive: BOOLEAN,
        default_sddl_string: PCUNICODE_STRING,
        device_class_guid: *const GUID,
        device_object: *mut PDEVICE_OBJECT,
    ) -> NTSTATUS;
}

type Dispatch = unsafe extern "C" fn(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS;

/// Create the device and its symbolic link; install the dispatch routines.
///
/// # Safety
/// DriverEntry only (PASSIVE), with the driver's own `DRIVER_OBJECT`.
pub unsafe fn create(driver: &mut DRIVER_OBJECT) -> NTSTATUS {
    let mut name = unicode(&DEVICE_NAME);
    let sddl = unicode(&SDDL);
    let mut device: PDEVICE_OBJECT = ptr::null_mut();
    // SAFETY: every pointer refers to a live local or static.
    let status = unsafe {
        WdmlibIoCreateDeviceSecure(
            driver,
            0,
            &mut name,
            RSDSM_DEVICE_TYPE,
            wdk_sys::FILE_DEVICE_SECURE_OPEN,
            0,
            &sddl,
            &CONTROL_CLASS_GUID,
            &mut device,
        )
    };
    if status < 0 {
        return status;
    }
    let mut link = unicode(&LINK_NAME);
    // SAFETY: valid strings.
    let status = unsafe { IoCreateSymbolicLink(&mut link, &mut name) };
    if status < 0 {
        // SAFETY: created above, not yet visible to anyone.
        unsafe { IoDeleteDevice(device) };
        return status;
    }
    // SAFETY: our device object, still initialising.
    unsafe {
        (*device).Flags |= DO_BUFFERED_IO;
        (*device).Flags &= !DO_DEVICE_INITIALIZING;
    }
    let dispatch: [(u32, Dispatch); 4] = [
        (IRP_MJ_CREATE, dispatch_create),
        (IRP_MJ_CLOSE, dispatch_close),
        (IRP_MJ_CLEANUP, dispatch_close),
        (IRP_MJ_DEVICE_CONTROL, dispatch_device_control),
    ];
    for (major, routine) in dispatch {
        if let Some(slot) = driver.MajorFunction.get_mut(major as usize) {
            *slot = Some(routine);
        }
    }
    STATUS_SUCCESS
}

/// Delete the symbolic link and the device.
///
/// # Safety
/// DriverUnload (or DriverEntry failure) only, after a successful [`create`].
pub unsafe fn delete(driver: &mut DRIVER_OBJECT) {
    let mut link = unicode(&LINK_NAME);
    // SAFETY: created in `create`; this driver owns its device objects.
    unsafe {
        let _ = IoDeleteSymbolicLink(&mut link);
        let device = driver.DeviceObject;
        if !device.is_null() {
            IoDeleteDevice(device);
        }
    }
}

/// `IoGetCurrentIrpStackLocation` (FORCEINLINE in wdm.h).
///
/// # Safety
/// `irp` is a valid IRP owned by this driver.
unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: per the contract.
    unsafe { (*irp).Tail.Overlay.__bindgen_anon_2.__bindgen_anon_1.CurrentStackLocation }
}

/// Complete `irp` with `status` and `information`.
///
/// # Safety
/// `irp` is a valid IRP owned by this driver, completed exactly once.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: per the contract; completion hands the IRP back.
    unsafe {
        (*irp).IoStatus.__bindgen_anon_1.Status = status;
        (*irp).IoStatus.Information = information as ULONG_PTR;
        IofCompleteRequest(irp, IO_NO_INCREMENT as CCHAR);
    }
    status
}

unsafe extern "C" fn dispatch_create(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a valid IRP; its FileObject (may be
    // null) is the one being opened.
    unsafe {
        let file = (*current_stack_location(irp)).FileObject;
        if !file.is_null() && (*file).FileName.Length != 0 {
            return complete(irp, STATUS_OBJECT_NAME_NOT_FOUND, 0);
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "C" fn dispatch_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: valid IRP from the I/O manager.
    unsafe { complete(irp, STATUS_SUCCESS, 0) }
}

/// Whether `code` is one of ours (see the module docs).
const fn is_our_code(code: u32) -> bool {
    let device_type = code >> 16;
    let access = (code >> 14) & 0x3;
    let function = (code >> 2) & 0xFFF;
    let method = code & 0x3;
    device_type == RSDSM_DEVICE_TYPE && function >= FIRST_FUNCTION && method == 0 && access != 0
}

fn nt_status(s: ControlStatus) -> NTSTATUS {
    match s {
        ControlStatus::Success => STATUS_SUCCESS,
        ControlStatus::InvalidRequest => STATUS_INVALID_DEVICE_REQUEST,
        ControlStatus::InvalidParameter => STATUS_INVALID_PARAMETER,
        ControlStatus::BufferTooSmall => STATUS_BUFFER_TOO_SMALL,
        ControlStatus::NotFound => STATUS_NOT_FOUND,
        ControlStatus::Failed => STATUS_UNSUCCESSFUL,
    }
}

unsafe extern "C" fn dispatch_device_control(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: valid IRP from the I/O manager; METHOD_BUFFERED (checked
    // below before any buffer access) means SystemBuffer is a non-paged
    // buffer of max(InputBufferLength, OutputBufferLength) bytes whose first
    // InputBufferLength bytes hold the caller's input.
    unsafe {
        let params = &(*current_stack_location(irp)).Parameters.DeviceIoControl;
        let code = params.IoControlCode;
        let in_len = params.InputBufferLength as usize;
        let out_len = params.OutputBufferLength as usize;
        if !is_our_code(code) {
            return complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
        }
        if in_len > MAX_INPUT {
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        }
        let system = (*irp).AssociatedIrp.SystemBuffer.cast::<u8>();
        if system.is_null() && (in_len != 0 || out_len != 0) {
            return complete(irp, STATUS_INVALID_PARAMETER, 0);
        }

        // 1. Private copy of the input (bounded, before the output is written).
        let mut input_buf = MaybeUninit::<[u8; MAX_INPUT]>::uninit();
        let input_ptr = input_buf.as_mut_ptr().cast::<u8>();
        if in_len != 0 {
            ptr::copy_nonoverlapping(system, input_ptr, in_len);
        }
        let input = core::slice::from_raw_parts(input_ptr, in_len);

        // 2. Output region: zero-filled so nothing uninitialised can leak.
        let out_cap = out_len.min(MAX_OUTPUT);
        let output: &mut [u8] = if out_cap == 0 {
            &mut []
        } else {
            ptr::write_bytes(system, 0, out_cap);
            core::slice::from_raw_parts_mut(system, out_cap)
        };

        let result = glue::control(code, input, output);
        let status = nt_status(result.status);
        let information = if status < 0 { 0 } else { result.written.min(out_cap) };
        complete(irp, status, information)
    }
}

#[cfg(test)]
mod tests {
    use super::is_our_code;

    #[test]
    fn codes() {
        assert!(is_our_code(0x8A5D << 16 | 1 << 14 | 0x800 << 2));
        assert!(!is_our_code(0x8A5D << 16 | 0x800 << 2)); // FILE_ANY_ACCESS
        assert!(!is_our_code(0x8A5D << 16 | 1 << 14 | 0x7FF << 2));
        assert!(!is_our_code(0x8A5D << 16 | 1 << 14 | 0x800 << 2 | 3)); // METHOD_NEITHER
        assert!(!is_our_code(0x0022 << 16 | 1 << 14 | 0x800 << 2));
    }
}
