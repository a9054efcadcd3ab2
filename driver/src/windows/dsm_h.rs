//! Hand-written declarations of the parts of the WDK's `dsm.h` (the MPIO
//! device-specific-module interface) that rsdsm uses.
//!
//! `dsm.h` is not part of any wdk-sys header subset (and it includes `scsi.h`,
//! which cannot share a bindgen translation unit with `storport.h`), so the
//! types are declared here from the public header documentation. Names follow
//! Rust conventions; each item names its C counterpart.
//!
//! # Layout
//! Every struct carries compile-time size and offset assertions for the x64
//! (LLP64) layout. The numbers are derived by hand from the C declarations
//! with the MSVC rules: `ULONG`/enum = 4 bytes, pointers and `PVOID` = 8
//! bytes (8-aligned), `UNICODE_STRING` = 16 bytes (`USHORT`, `USHORT`, 4
//! bytes padding, `PWSTR`), anonymous unions of function pointers = 8 bytes.
//! `DSM_INIT_DATA` is the `NTDDI_VERSION >= NTDDI_WIN8` form (the one every
//! supported Windows uses); its documented size macros give the per-type
//! prefix sizes checked below (`DSM_INIT_DATA_TYPE_1_SIZE` = through
//! `Reserved`, ...). They have not been compared with a C compiler's
//! `sizeof` on a machine with the WDK: the Windows CI job is where that
//! would happen (see docs/windows.md).
//!
//! # DSM type level and variadic callbacks
//! From `DsmType2` on, MPIO calls `DsmInterpretErrorEx` and the `*_EX` WMI
//! callbacks, which are C-variadic (`...`). Stable Rust can declare but not
//! *define* a variadic function, so rsdsm registers as **`DsmType1`**: the
//! error callback is the fixed-argument `DSM_INTERPRET_ERROR`, and the
//! per-LUN WMI block is empty (`GuidCount = 0`, all WMI callbacks null), so no
//! WMI callback of either form is needed. Consequences, documented in
//! docs/windows.md: no `RetryInterval` hint, no DSM version reporting
//! (`DsmType4`), no DSM-wide WMI classes (`DsmType5`), no
//! `STORAGE_REQUEST_BLOCK`/descriptor-sense support (`DsmType6`); MPIO never
//! calls a Type1 DSM's completion routine with a NULL DsmId (that is a
//! Type3 feature). Whether current MPIO versions still accept a Type1 DSM is
//! not verified.
#![allow(dead_code, reason = "a transcription of dsm.h: not every constant/type is used yet")]

use core::{
    ffi::c_void,
    mem::{offset_of, size_of},
};

use wdk_sys::{
    BOOLEAN, GUID, IO_STATUS_BLOCK, NTSTATUS, PDEVICE_OBJECT, PDRIVER_OBJECT, PIRP, PKEVENT,
    PSCSI_REQUEST_BLOCK, PSTORAGE_DEVICE_DESCRIPTOR, PSTORAGE_DEVICE_ID_DESCRIPTOR, PVOID, UNICODE_STRING,
};

/// `CTL_CODE(DeviceType, Function, Method, Access)` (a function-like macro,
/// so it has no binding).
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `MPIO_DSM`: the multi-character constant `'dsm'` as MSVC evaluates it
/// (`'d'<<16 | 's'<<8 | 'm'` = 0x0064736D).
pub const MPIO_DSM: u32 = (b'd' as u32) << 16 | (b's' as u32) << 8 | b'm' as u32;
const METHOD_BUFFERED: u32 = 0;
const FILE_READ_ACCESS: u32 = 1;
const FILE_WRITE_ACCESS: u32 = 2;

/// `IOCTL_MPDSM_REGISTER`: input `DSM_INIT_DATA`, output `DSM_MPIO_CONTEXT`.
pub const IOCTL_MPDSM_REGISTER: u32 =
    ctl_code(MPIO_DSM, 0x01, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
/// `IOCTL_MPDSM_DEREGISTER`: input `DSM_DEREGISTER_DATA`, no output.
pub const IOCTL_MPDSM_DEREGISTER: u32 =
    ctl_code(MPIO_DSM, 0x02, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
// 0x0064736D << 16 wraps into the top bits exactly as the C macro does.
const _: () = assert!(IOCTL_MPDSM_REGISTER == 0x736D_C004);
const _: () = assert!(IOCTL_MPDSM_DEREGISTER == 0x736D_C008);

/// `DSM_INTERPRET_ERROR` return bit: fail the path over.
pub const DSM_FATAL_ERROR: u32 = 0x8000_0000;
/// Retry without using up one of the request's retries.
pub const DSM_RETRY_DONT_DECREMENT: u32 = 0x0000_8000;
/// The failover was requested by an administrator.
pub const DSM_ADMIN_FO: u32 = 0x4000_0000;
/// Bits of an error mask the DSM may use for itself (passed to InvalidatePath).
pub const DSM_FATAL_ERROR_OEM_MASK: u32 = 0x0000_FFFF;
/// Reserved bits of an error mask.
pub const DSM_FATAL_ERROR_RESERVED: u32 = 0x3FFF_0000;

/// `DSM_CATEGORIZE_REQUEST` results.
pub const DSM_BROADCAST: u32 = 1;
/// The DSM handles the request in `DsmSrbDeviceControl`.
pub const DSM_WILL_HANDLE: u32 = 2;
/// Send the request down the returned path.
pub const DSM_PATH_SET: u32 = 3;
/// The request cannot be handled; `*Status` holds why.
pub const DSM_ERROR: u32 = 4;

/// `DSM_MOVE_DEVICE` flags.
pub const DSM_MOVE_PERMANENT: u32 = 0x0000_0001;
/// The old path is about to be removed.
pub const DSM_MOVE_PENDING_REMOVAL: u32 = 0x0000_0002;
/// The move was requested from user mode.
pub const DSM_MOVE_ADMIN_REQUEST: u32 = 0x8000_0000;

/// `CONTROLLER_INFO.State` values.
pub const DSM_CONTROLLER_ACTIVE: u32 = 1;
/// Stand-by controller.
pub const DSM_CONTROLLER_STANDBY: u32 = 2;
/// Failed controller.
pub const DSM_CONTROLLER_FAILED: u32 = 3;
/// No controller (JBOD).
pub const DSM_CONTROLLER_NO_CNTRL: u32 = 4;
/// `DSM_GET_CONTROLLER_INFO` flag: the DSM must allocate the `CONTROLLER_INFO`
/// (from non-paged pool; MPIO frees it).
pub const DSM_CNTRL_FLAGS_ALLOCATE: u32 = 1;
/// `ControllerInfo` is valid; update `State`.
pub const DSM_CNTRL_FLAGS_CHECK_STATE: u32 = 2;

/// `DSM_TYPE` (a C enum: 4 bytes).
pub type DsmType = i32;
/// `DsmType1`: the original interface (fixed-argument InterpretError).
pub const DSM_TYPE_1: DsmType = 1;

// ----------------------------------------------------------------- structs

/// `DSM_IDS`: the DsmIds of one MPIO pseudo-LUN; `IdList` has `Count` entries
/// (declared `[1]`, allocated longer by MPIO).
#[repr(C)]
pub struct DsmIds {
    /// `Count`
    pub count: u32,
    /// `IdList[1]`
    pub id_list: [PVOID; 1],
}
const _: () = assert!(size_of::<DsmIds>() == 16);
const _: () = assert!(offset_of!(DsmIds, id_list) == 8);

/// `CONTROLLER_IDS`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ControllerIds {
    /// `Type` (`STORAGE_IDENTIFIER_CODE_SET`)
    pub code_set: i32,
    /// `Length` of `SerialNumber` in bytes
    pub length: u32,
    /// `SerialNumber[32]`
    pub serial_number: [u8; 32],
}
const _: () = assert!(size_of::<ControllerIds>() == 40);
const _: () = assert!(offset_of!(ControllerIds, serial_number) == 8);

/// `CONTROLLER_INFO`
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ControllerInfo {
    /// `DeviceObject`
    pub device_object: PDEVICE_OBJECT,
    /// `Identifier`
    pub identifier: ControllerIds,
    /// `State` (`DSM_CONTROLLER_*`)
    pub state: u32,
}
const _: () = assert!(size_of::<ControllerInfo>() == 56);
const _: () = assert!(offset_of!(ControllerInfo, identifier) == 8);
const _: () = assert!(offset_of!(ControllerInfo, state) == 48);

/// `DSM_COMPLETION_INFO`: filled by `DsmSetCompletion`.
#[repr(C)]
pub struct DsmCompletionInfo {
    /// `DsmCompletionRoutine`
    pub completion_routine: DsmCompletionRoutine,
    /// `DsmContext`: handed back to the completion routine.
    pub dsm_context: PVOID,
}
const _: () = assert!(size_of::<DsmCompletionInfo>() == 16);

/// `WMIGUIDREGINFO` (wmilib.h, also not in wdk-sys).
#[repr(C)]
pub struct WmiGuidRegInfo {
    /// `Guid`
    pub guid: *const GUID,
    /// `InstanceCount`
    pub instance_count: u32,
    /// `Flags`
    pub flags: u32,
}
const _: () = assert!(size_of::<WmiGuidRegInfo>() == 16);

/// `DSM_WMILIB_CONTEXT` (the current form, with `RegistryPath` and
/// `MofResourceName`). Each callback slot is a union of the plain and `_EX`
/// (variadic) signatures; rsdsm leaves all four null.
#[repr(C)]
pub struct DsmWmilibContext {
    /// `GuidCount`
    pub guid_count: u32,
    /// `GuidList`
    pub guid_list: *mut WmiGuidRegInfo,
    /// `RegistryPath`
    pub registry_path: UNICODE_STRING,
    /// `MofResourceName`
    pub mof_resource_name: UNICODE_STRING,
    /// `QueryWmiDataBlock` / `QueryWmiDataBlockEx`
    pub query_data_block: Option<DsmQueryDataBlock>,
    /// `SetWmiDataBlock` / `SetWmiDataBlockEx`
    pub set_data_block: Option<DsmSetDataBlock>,
    /// `ExecuteWmiMethod` / `ExecuteWmiMethodEx`
    pub execute_method: Option<DsmExecuteMethod>,
    /// `WmiFunctionControl` / `WmiFunctionControlEx`
    pub function_control: Option<DsmFunctionControl>,
}
const _: () = assert!(size_of::<UNICODE_STRING>() == 16);
const _: () = assert!(size_of::<DsmWmilibContext>() == 80);
const _: () = assert!(offset_of!(DsmWmilibContext, guid_list) == 8);
const _: () = assert!(offset_of!(DsmWmilibContext, registry_path) == 16);
const _: () = assert!(offset_of!(DsmWmilibContext, mof_resource_name) == 32);
const _: () = assert!(offset_of!(DsmWmilibContext, query_data_block) == 48);
const _: () = assert!(offset_of!(DsmWmilibContext, function_control) == 72);

/// `DSM_VERSION_INFO` / `MPIO_VERSION_INFO` (same layout).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct VersionInfo {
    /// `MajorVersion`
    pub major: u32,
    /// `MinorVersion`
    pub minor: u32,
    /// `ProductBuild`
    pub product_build: u32,
    /// `QfeNumber`
    pub qfe: u32,
}
const _: () = assert!(size_of::<VersionInfo>() == 16);

/// `DSM_INIT_DATA` (`NTDDI_VERSION >= NTDDI_WIN8` layout).
#[repr(C)]
pub struct DsmInitData {
    /// `InitDataSize`
    pub init_data_size: u32,
    /// `DsmInquireDriver`
    pub inquire_driver: Option<DsmInquireDriver>,
    /// `DsmCompareDevices`
    pub compare_devices: Option<DsmCompareDevices>,
    /// `DsmDeviceSerialNumber` (optional)
    pub device_serial_number: Option<DsmDeviceSerialNumber>,
    /// `DsmGetControllerInfo`
    pub get_controller_info: Option<DsmGetControllerInfo>,
    /// `DsmSetDeviceInfo`
    pub set_device_info: Option<DsmSetDeviceInfo>,
    /// `DsmIsPathActive`
    pub is_path_active: Option<DsmIsPathActive>,
    /// `DsmPathVerify`
    pub path_verify: Option<DsmPathVerify>,
    /// `DsmInvalidatePath`
    pub invalidate_path: Option<DsmInvalidatePath>,
    /// `DsmMoveDevice`
    pub move_device: Option<DsmMoveDevice>,
    /// `DsmRemovePending`
    pub remove_pending: Option<DsmRemovePending>,
    /// `DsmRemoveDevice`
    pub remove_device: Option<DsmRemoveDevice>,
    /// `DsmRemovePath`
    pub remove_path: Option<DsmRemovePath>,
    /// `DsmSrbDeviceControl`
    pub srb_device_control: Option<DsmSrbDeviceControl>,
    /// `DsmLBGetPath`
    pub lb_get_path: Option<DsmLbGetPath>,
    /// `DsmInterpretError` (Type1) / `DsmInterpretErrorEx` (Type2+)
    pub interpret_error: Option<DsmInterpretError>,
    /// `DsmUnload`
    pub unload: Option<DsmUnload>,
    /// `DsmSetCompletion`
    pub set_completion: Option<DsmSetCompletion>,
    /// `DsmCategorizeRequest`
    pub categorize_request: Option<DsmCategorizeRequest>,
    /// `DsmBroadcastSrb`
    pub broadcast_srb: Option<DsmBroadcastSrb>,
    /// `DsmWmiInfo`
    pub wmi_info: DsmWmilibContext,
    /// `DsmContext`: passed back as the first argument of every entry point.
    pub dsm_context: PVOID,
    /// `DriverObject`
    pub driver_object: PDRIVER_OBJECT,
    /// `DisplayName`
    pub display_name: UNICODE_STRING,
    /// `Reserved`
    pub reserved: u32,
    /// `DsmType` (version 2+)
    pub dsm_type: DsmType,
    /// `DsmVersion` (version 4+)
    pub dsm_version: VersionInfo,
    /// `DsmWmiGlobalInfo` (version 5+)
    pub wmi_global_info: DsmWmilibContext,
    /// `DsmIsAddressTypeSupported` (version 6+)
    pub is_address_type_supported: Option<DsmAddressTypeSupported>,
    /// `DsmDeviceNotUsed` (version 6+)
    pub device_not_used: Option<DsmDeviceNotUsed>,
}
const _: () = assert!(offset_of!(DsmInitData, inquire_driver) == 8);
const _: () = assert!(offset_of!(DsmInitData, lb_get_path) == 112);
const _: () = assert!(offset_of!(DsmInitData, interpret_error) == 120);
const _: () = assert!(offset_of!(DsmInitData, broadcast_srb) == 152);
const _: () = assert!(offset_of!(DsmInitData, wmi_info) == 160);
const _: () = assert!(offset_of!(DsmInitData, dsm_context) == 240);
const _: () = assert!(offset_of!(DsmInitData, driver_object) == 248);
const _: () = assert!(offset_of!(DsmInitData, display_name) == 256);
const _: () = assert!(offset_of!(DsmInitData, reserved) == 272);
const _: () = assert!(offset_of!(DsmInitData, dsm_type) == 276);
const _: () = assert!(offset_of!(DsmInitData, dsm_version) == 280);
const _: () = assert!(offset_of!(DsmInitData, wmi_global_info) == 296);
const _: () = assert!(offset_of!(DsmInitData, is_address_type_supported) == 376);
const _: () = assert!(offset_of!(DsmInitData, device_not_used) == 384);
const _: () = assert!(size_of::<DsmInitData>() == 392);
/// `DSM_INIT_DATA_TYPE_1_SIZE` = `RTL_SIZEOF_THROUGH_FIELD(DSM_INIT_DATA, Reserved)`.
pub const DSM_INIT_DATA_TYPE_1_SIZE: usize = offset_of!(DsmInitData, reserved) + 4;
const _: () = assert!(DSM_INIT_DATA_TYPE_1_SIZE == 276);

/// `DSM_MPIO_CONTEXT`: the registration IOCTL's output.
#[repr(C)]
pub struct DsmMpioContext {
    /// `MPIOContext`: needed by `DsmNotification` and friends.
    pub mpio_context: PVOID,
}
const _: () = assert!(size_of::<DsmMpioContext>() == 8);

/// `DSM_DEREGISTER_DATA`: the deregistration IOCTL's input.
#[repr(C)]
pub struct DsmDeregisterData {
    /// `DeregisterDataSize`
    pub deregister_data_size: u32,
    /// `DsmContext`
    pub dsm_context: PVOID,
    /// `DriverObject`
    pub driver_object: PDRIVER_OBJECT,
    /// `MpioContext` (a `PDSM_MPIO_CONTEXT`, as msdsm fills it: the
    /// `MPIOContext` value returned at registration)
    pub mpio_context: PVOID,
}
const _: () = assert!(size_of::<DsmDeregisterData>() == 32);
const _: () = assert!(offset_of!(DsmDeregisterData, dsm_context) == 8);
const _: () = assert!(offset_of!(DsmDeregisterData, mpio_context) == 24);

// ------------------------------------------------------ callback typedefs
// All `extern "C"`: on x64 and ARM64 that is the Windows kernel calling
// convention (`__stdcall`/`__cdecl` are ignored there).

/// `DSM_INQUIRE_DRIVER`
pub type DsmInquireDriver = unsafe extern "C" fn(
    dsm_context: PVOID,
    target_device: PDEVICE_OBJECT,
    port_fdo: PDEVICE_OBJECT,
    descriptor: PSTORAGE_DEVICE_DESCRIPTOR,
    device_id_list: PSTORAGE_DEVICE_ID_DESCRIPTOR,
    dsm_identifier: *mut PVOID,
) -> NTSTATUS;
/// `DSM_COMPARE_DEVICES`
pub type DsmCompareDevices =
    unsafe extern "C" fn(dsm_context: PVOID, dsm_id1: PVOID, dsm_id2: PVOID) -> BOOLEAN;
/// `DSM_DEVICE_SERIAL_NUMBER` (returns a pool-allocated ASCII string)
pub type DsmDeviceSerialNumber = unsafe extern "C" fn(dsm_context: PVOID, dsm_id: PVOID) -> *mut u8;
/// `DSM_GET_CONTROLLER_INFO`
pub type DsmGetControllerInfo = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_id: PVOID,
    flags: u32,
    controller_info: *mut *mut ControllerInfo,
) -> NTSTATUS;
/// `DSM_SET_DEVICE_INFO`
pub type DsmSetDeviceInfo = unsafe extern "C" fn(
    dsm_context: PVOID,
    target_object: PDEVICE_OBJECT,
    dsm_id: PVOID,
    path_id: *mut PVOID,
) -> NTSTATUS;
/// `DSM_IS_PATH_ACTIVE`
pub type DsmIsPathActive = unsafe extern "C" fn(dsm_context: PVOID, path_id: PVOID, dsm_id: PVOID) -> BOOLEAN;
/// `DSM_PATH_VERIFY`
pub type DsmPathVerify = unsafe extern "C" fn(dsm_context: PVOID, dsm_id: PVOID, path_id: PVOID) -> NTSTATUS;
/// `DSM_INVALIDATE_PATH`
pub type DsmInvalidatePath = unsafe extern "C" fn(
    dsm_context: PVOID,
    error_mask: u32,
    path_id: PVOID,
    new_path_id: *mut PVOID,
) -> NTSTATUS;
/// `DSM_MOVE_DEVICE`
pub type DsmMoveDevice = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_ids: *mut DsmIds,
    mpio_path: PVOID,
    suggested_path: PVOID,
    flags: u32,
) -> NTSTATUS;
/// `DSM_REMOVE_PENDING`
pub type DsmRemovePending = unsafe extern "C" fn(dsm_context: PVOID, dsm_id: PVOID) -> NTSTATUS;
/// `DSM_REMOVE_DEVICE`
pub type DsmRemoveDevice =
    unsafe extern "C" fn(dsm_context: PVOID, dsm_id: PVOID, path_id: PVOID) -> NTSTATUS;
/// `DSM_REMOVE_PATH`
pub type DsmRemovePath = unsafe extern "C" fn(dsm_context: PVOID, path_id: PVOID) -> NTSTATUS;
/// `DSM_SRB_DEVICE_CONTROL`
pub type DsmSrbDeviceControl = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_ids: *mut DsmIds,
    irp: PIRP,
    srb: PSCSI_REQUEST_BLOCK,
    event: PKEVENT,
) -> NTSTATUS;
/// `DSM_LB_GET_PATH`
pub type DsmLbGetPath = unsafe extern "C" fn(
    dsm_context: PVOID,
    srb: PSCSI_REQUEST_BLOCK,
    dsm_list: *mut DsmIds,
    current_path: PVOID,
    status: *mut NTSTATUS,
) -> PVOID;
/// `DSM_INTERPRET_ERROR` (the fixed-argument, Type1 form)
pub type DsmInterpretError = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_id: PVOID,
    srb: PSCSI_REQUEST_BLOCK,
    status: *mut NTSTATUS,
    retry: *mut BOOLEAN,
) -> u32;
/// `DSM_INTERPRET_ERROR_EX`: declared for reference only; a Rust definition
/// of a variadic function needs nightly `c_variadic` (see the module docs).
pub type DsmInterpretErrorEx = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_id: PVOID,
    srb: PSCSI_REQUEST_BLOCK,
    status: *mut NTSTATUS,
    retry: *mut BOOLEAN,
    retry_interval: *mut i32,
    ...
) -> u32;
/// `DSM_UNLOAD`
pub type DsmUnload = unsafe extern "C" fn(dsm_context: PVOID) -> NTSTATUS;
/// `DSM_COMPLETION_ROUTINE` (`DsmContext` here is the value from
/// `DSM_COMPLETION_INFO`, not the registration context)
pub type DsmCompletionRoutine =
    Option<unsafe extern "C" fn(dsm_id: PVOID, irp: PIRP, srb: PSCSI_REQUEST_BLOCK, dsm_context: PVOID)>;
/// `DSM_SET_COMPLETION`
pub type DsmSetCompletion = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_id: PVOID,
    irp: PIRP,
    srb: PSCSI_REQUEST_BLOCK,
    completion: *mut DsmCompletionInfo,
);
/// `DSM_CATEGORIZE_REQUEST`
pub type DsmCategorizeRequest = unsafe extern "C" fn(
    dsm_context: PVOID,
    dsm_ids: *mut DsmIds,
    irp: PIRP,
    srb: PSCSI_REQUEST_BLOCK,
    current_path: PVOID,
    path_id: *mut PVOID,
    status: *mut NTSTATUS,
) -> u32;
/// `DSM_BROADCAST_SRB`
pub type DsmBroadcastSrb = DsmSrbDeviceControl;
/// `DSM_QUERY_DATABLOCK` (Type1 WMI; unused: GuidCount is 0)
pub type DsmQueryDataBlock = unsafe extern "C" fn(
    dsm_context: PVOID,
    irp: PIRP,
    guid_index: u32,
    instance_index: u32,
    instance_count: u32,
    instance_length_array: *mut u32,
    buffer_avail: u32,
    buffer: *mut u8,
    dsm_data_length: *mut u32,
) -> NTSTATUS;
/// `DSM_SET_DATABLOCK` (unused)
pub type DsmSetDataBlock = unsafe extern "C" fn(
    dsm_context: PVOID,
    irp: PIRP,
    guid_index: u32,
    instance_index: u32,
    buffer_size: u32,
    buffer: *mut u8,
) -> NTSTATUS;
/// `DSM_EXECUTE_METHOD` (unused)
pub type DsmExecuteMethod = unsafe extern "C" fn(
    dsm_context: PVOID,
    irp: PIRP,
    guid_index: u32,
    instance_index: u32,
    method_id: u32,
    in_buffer_size: u32,
    out_buffer_size: *mut u32,
    buffer: *mut u8,
) -> NTSTATUS;
/// `DSM_FUNCTION_CONTROL` (unused; `Function` is the `WMIENABLEDISABLECONTROL` enum)
pub type DsmFunctionControl = unsafe extern "C" fn(
    dsm_context: PVOID,
    irp: PIRP,
    guid_index: u32,
    function: i32,
    enable: BOOLEAN,
) -> NTSTATUS;
/// `DSM_ADDRESS_TYPE_SUPPORTED` (Type6; not registered)
pub type DsmAddressTypeSupported = unsafe extern "C" fn(dsm_context: PVOID, address_type: u32) -> BOOLEAN;
/// `DSM_DEVICE_NOT_USED` (Type6; not registered)
pub type DsmDeviceNotUsed = unsafe extern "C" fn(dsm_context: PVOID, dsm_id: PVOID) -> NTSTATUS;

/// `DSM_NOTIFICATION_TYPE` values (for `DsmNotification`).
pub mod notification {
    /// `DeviceFailure`: one variadic argument, the DsmId.
    pub const DEVICE_FAILURE: i32 = 0;
    /// `PathFailure`: the PathId.
    pub const PATH_FAILURE: i32 = 1;
    /// `PathOnLine`: the PathId.
    pub const PATH_ON_LINE: i32 = 2;
}

// ------------------------------------------------------- mpio.sys exports
// Imported from mpio.sys through mpio.lib (WDK km library; under wincheck an
// import library generated from driver/mpio.def). Test builds link nothing.
#[cfg_attr(not(test), link(name = "mpio"))]
unsafe extern "C" {
    /// `DsmGetVersion`
    pub fn DsmGetVersion(mpio_version: *mut VersionInfo, mpio_version_size: u32) -> NTSTATUS;

    /// `DsmSendDeviceIoControlSynchronous` (PASSIVE_LEVEL; builds and waits
    /// for the IRP itself)
    pub fn DsmSendDeviceIoControlSynchronous(
        io_control_code: u32,
        target_device_object: PDEVICE_OBJECT,
        input_buffer: *mut c_void,
        output_buffer: *mut c_void,
        input_buffer_length: u32,
        output_buffer_length: u32,
        internal_device_io_control: BOOLEAN,
        io_status: *mut IO_STATUS_BLOCK,
    );

    /// `DsmSendTUR`: TEST UNIT READY to `target_device` (PASSIVE_LEVEL).
    pub fn DsmSendTUR(target_device: PDEVICE_OBJECT) -> NTSTATUS;

    /// `DsmNotification` (variadic; calling it is fine in stable Rust).
    pub fn DsmNotification(mpio_context: PVOID, notification_type: i32, ...);
}
