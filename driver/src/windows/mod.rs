//! The Windows (WDM) shim: DriverEntry/Unload, registration with mpio.sys,
//! the DSM entry-point trampolines, the control device and the registry
//! store. It holds no policy: every decision is behind [`glue`].
//!
//! Load order (DriverEntry, PASSIVE_LEVEL):
//! 1. remember the service key for [`registry_store`];
//! 2. [`glue::start`] (the core loads its persisted state);
//! 3. create the control device;
//! 4. open `\DosDevices\MPIOControl`, check `DsmGetVersion`, send
//!    `IOCTL_MPDSM_REGISTER` with a `DSM_INIT_DATA` pointing at the
//!    trampolines, keep the returned MPIO context.
//!
//! Unload reverses it: `IOCTL_MPDSM_DEREGISTER`, drop the MPIO control
//! object reference, delete the control device, [`glue::stop`].
#![allow(
    clippy::doc_markdown,
    reason = "the prose names C identifiers (DriverEntry, PASSIVE_LEVEL, ...) throughout"
)]
#![allow(
    clippy::borrow_as_ptr,
    reason = "FFI out-parameters: `&mut local` coerced to `*mut` at the call is the intent"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "every narrowing cast is of a const-asserted struct size, a length bounded by a \
              module constant (MAX_INPUT, MAX_RECORD, 32-byte ids) or a WDK constant into its C type"
)]

mod control_device;
mod dsm_h;
mod entry_points;
mod glue;
mod registry_store;

use core::{
    mem::size_of,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};

use wdk_sys::{
    DRIVER_OBJECT, FILE_OBJECT, FILE_READ_ATTRIBUTES, IO_STATUS_BLOCK, NTSTATUS, PCUNICODE_STRING,
    PDEVICE_OBJECT, STATUS_INVALID_PARAMETER, STATUS_REVISION_MISMATCH, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
    UNICODE_STRING,
    ntddk::{IoGetDeviceObjectPointer, ObfDereferenceObject, ObfReferenceObject},
};

use dsm_h::{
    DSM_TYPE_1, DsmDeregisterData, DsmGetVersion, DsmInitData, DsmMpioContext,
    DsmSendDeviceIoControlSynchronous, DsmWmilibContext, IOCTL_MPDSM_DEREGISTER, IOCTL_MPDSM_REGISTER,
    VersionInfo,
};

/// mpio.sys's control device (referenced for the driver's lifetime).
static MPIO_CONTROL: AtomicPtr<wdk_sys::DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());
/// `DSM_MPIO_CONTEXT.MPIOContext` from registration.
static MPIO_CONTEXT: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(ptr::null_mut());

static MPIO_CONTROL_NAME: [u16; 24] = ascii16z(b"\\DosDevices\\MPIOControl");
/// DSM friendly name shown by MPIO (kept static: MPIO may keep the pointer).
static DISPLAY_NAME: [u16; 21] = ascii16z(b"rsdsm Multi-Path DSM");

#[allow(clippy::indexing_slicing, reason = "const evaluation only: a bad index is a compile error")]
const fn ascii16z<const N: usize, const M: usize>(s: &[u8; M]) -> [u16; N] {
    assert!(M < N);
    let mut out = [0u16; N];
    let mut i = 0;
    while i < M {
        out[i] = s[i] as u16;
        i += 1;
    }
    out
}

/// Counted string over a static NUL-terminated buffer (length up to the NUL).
fn unicode(buf: &'static [u16]) -> UNICODE_STRING {
    let units = buf.iter().position(|c| *c == 0).unwrap_or(buf.len());
    let bytes = u16::try_from(units * 2).unwrap_or(0);
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: buf.as_ptr().cast_mut() }
}

fn empty_wmi() -> DsmWmilibContext {
    // GuidCount 0 and no callbacks: rsdsm publishes no per-LUN WMI classes
    // (configuration goes through the control device instead).
    DsmWmilibContext {
        guid_count: 0,
        guid_list: ptr::null_mut(),
        registry_path: UNICODE_STRING::default(),
        mof_resource_name: UNICODE_STRING::default(),
        query_data_block: None,
        set_data_block: None,
        execute_method: None,
        function_control: None,
    }
}

/// The registration record: every entry point is a trampoline.
fn init_data(driver: &mut DRIVER_OBJECT) -> DsmInitData {
    DsmInitData {
        init_data_size: size_of::<DsmInitData>() as u32,
        inquire_driver: Some(entry_points::inquire_driver),
        compare_devices: Some(entry_points::compare_devices),
        // Optional; MPIO builds serial numbers from VPD 0x80/0x83 itself.
        device_serial_number: None,
        get_controller_info: Some(entry_points::get_controller_info),
        set_device_info: Some(entry_points::set_device_info),
        is_path_active: Some(entry_points::is_path_active),
        path_verify: Some(entry_points::path_verify),
        invalidate_path: Some(entry_points::invalidate_path),
        move_device: Some(entry_points::move_device),
        remove_pending: Some(entry_points::remove_pending),
        remove_device: Some(entry_points::remove_device),
        remove_path: Some(entry_points::remove_path),
        srb_device_control: Some(entry_points::srb_not_handled),
        lb_get_path: Some(entry_points::lb_get_path),
        interpret_error: Some(entry_points::interpret_error),
        unload: Some(entry_points::unload),
        set_completion: Some(entry_points::set_completion),
        categorize_request: Some(entry_points::categorize_request),
        broadcast_srb: Some(entry_points::srb_not_handled),
        wmi_info: empty_wmi(),
        // The core is global; the context only has to be non-null.
        dsm_context: ptr::from_mut(driver).cast(),
        driver_object: driver,
        display_name: unicode(&DISPLAY_NAME),
        reserved: 0,
        dsm_type: DSM_TYPE_1,
        dsm_version: VersionInfo::default(),
        wmi_global_info: empty_wmi(),
        is_address_type_supported: None,
        device_not_used: None,
    }
}

/// Open mpio.sys's control device, check its version and register.
///
/// # Safety
/// DriverEntry only (PASSIVE).
unsafe fn register(driver: &mut DRIVER_OBJECT) -> NTSTATUS {
    let mut name = unicode(&MPIO_CONTROL_NAME);
    let mut file: *mut FILE_OBJECT = ptr::null_mut();
    let mut mpio: PDEVICE_OBJECT = ptr::null_mut();
    // SAFETY: valid name and out pointers; PASSIVE_LEVEL.
    let status = unsafe { IoGetDeviceObjectPointer(&mut name, FILE_READ_ATTRIBUTES, &mut file, &mut mpio) };
    if status < 0 {
        return status;
    }
    // Keep the device referenced, drop the file object (as msdsm does).
    // SAFETY: both objects were just returned referenced by the I/O manager.
    unsafe {
        ObfReferenceObject(mpio.cast());
        ObfDereferenceObject(file.cast());
    }
    MPIO_CONTROL.store(mpio, Ordering::Release);

    let mut version = VersionInfo::default();
    // SAFETY: valid out buffer of the stated size.
    let status = unsafe { DsmGetVersion(&mut version, size_of::<VersionInfo>() as u32) };
    if status < 0 {
        return STATUS_REVISION_MISMATCH;
    }

    let mut init = init_data(driver);
    let mut context = DsmMpioContext { mpio_context: ptr::null_mut() };
    let mut iosb = IO_STATUS_BLOCK::default();
    // SAFETY: METHOD_BUFFERED IOCTL to mpio's control device with live input
    // and output buffers of the stated sizes; PASSIVE_LEVEL (the call waits).
    unsafe {
        DsmSendDeviceIoControlSynchronous(
            IOCTL_MPDSM_REGISTER,
            mpio,
            ptr::from_mut(&mut init).cast(),
            ptr::from_mut(&mut context).cast(),
            size_of::<DsmInitData>() as u32,
            size_of::<DsmMpioContext>() as u32,
            1, // internal device control, as mpio.sys expects
            &mut iosb,
        );
    }
    // SAFETY: DsmSendDeviceIoControlSynchronous filled the status block.
    let status = unsafe { iosb.__bindgen_anon_1.Status };
    if status < 0 {
        return status;
    }
    MPIO_CONTEXT.store(context.mpio_context, Ordering::Release);
    STATUS_SUCCESS
}

/// Undo [`register`] (whatever part of it succeeded).
///
/// # Safety
/// Unload or DriverEntry failure, PASSIVE, once.
unsafe fn deregister(driver: &mut DRIVER_OBJECT) {
    let mpio = MPIO_CONTROL.swap(ptr::null_mut(), Ordering::AcqRel);
    if mpio.is_null() {
        return;
    }
    let context = MPIO_CONTEXT.swap(ptr::null_mut(), Ordering::AcqRel);
    if !context.is_null() {
        let mut data = DsmDeregisterData {
            deregister_data_size: size_of::<DsmDeregisterData>() as u32,
            dsm_context: ptr::from_mut(driver).cast(),
            driver_object: driver,
            mpio_context: context,
        };
        let mut iosb = IO_STATUS_BLOCK::default();
        // SAFETY: as in `register`; no output buffer.
        unsafe {
            DsmSendDeviceIoControlSynchronous(
                IOCTL_MPDSM_DEREGISTER,
                mpio,
                ptr::from_mut(&mut data).cast(),
                ptr::null_mut(),
                size_of::<DsmDeregisterData>() as u32,
                0,
                1,
                &mut iosb,
            );
        }
    }
    // SAFETY: the reference taken in `register`.
    unsafe { ObfDereferenceObject(mpio.cast()) };
}

unsafe extern "C" fn driver_unload(driver: *mut DRIVER_OBJECT) {
    // SAFETY: the I/O manager passes our driver object; nothing else runs.
    unsafe {
        if let Some(driver) = driver.as_mut() {
            deregister(driver);
            control_device::delete(driver);
        }
    }
    glue::stop();
}

/// The driver's entry point.
///
/// # Safety
/// Called once by the I/O manager with this driver's object and its service
/// key path.
#[cfg_attr(not(test), unsafe(export_name = "DriverEntry"))]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager passes a valid UNICODE_STRING (or we reject null).
    let Some(path) = (unsafe { registry_path.as_ref() }) else { return STATUS_INVALID_PARAMETER };
    if let Err(status) = registry_store::init(path) {
        return status;
    }
    if !glue::start() {
        return STATUS_UNSUCCESSFUL;
    }
    // SAFETY: DriverEntry, our own driver object.
    let status = unsafe { control_device::create(driver) };
    if status < 0 {
        glue::stop();
        return status;
    }
    // SAFETY: DriverEntry, PASSIVE.
    let status = unsafe { register(driver) };
    if status < 0 {
        // SAFETY: undo the parts that succeeded, in reverse order.
        unsafe {
            deregister(driver);
            control_device::delete(driver);
        }
        glue::stop();
        return status;
    }
    driver.DriverUnload = Some(driver_unload);
    STATUS_SUCCESS
}
