//! TEMPORARY glue bodies, to be replaced by calls into the portable core.
//!
//! They make the shim a well-behaved no-op DSM: it registers with MPIO,
//! declines every device (so MPIO never calls the per-device entry points),
//! and answers every control request with `InvalidRequest`. The per-device
//! functions below are therefore unreachable in practice, but still return
//! the most conservative answer rather than panicking.

use super::{
    Category, ControlResult, ControlStatus, ControllerInfo, ControllerState, DeviceHandle, ErrorAction,
    IoSummary, PathHandle, Ticket,
};

pub(super) fn start() -> bool {
    true
}

pub(super) fn stop() {}

pub(super) fn inquire(
    _vendor: &[u8],
    _product: &[u8],
    _serial: &[u8],
    _vpd83: &[u8],
) -> Option<DeviceHandle> {
    None
}

pub(super) fn compare_devices(_a: DeviceHandle, _b: DeviceHandle) -> bool {
    false
}

pub(super) fn set_device_info(
    _device: DeviceHandle,
    _mpio_path: usize,
    _target: usize,
) -> Option<PathHandle> {
    None
}

pub(super) fn controller_info(_device: DeviceHandle) -> ControllerInfo {
    ControllerInfo { state: ControllerState::NoController, id: [0; 32], id_len: 0 }
}

pub(super) fn is_path_active(_path: PathHandle, _device: DeviceHandle) -> bool {
    false
}

pub(super) fn verify_target(_device: DeviceHandle) -> Option<usize> {
    None
}

pub(super) fn path_verify(_device: DeviceHandle, _path: PathHandle, _probe: i32) -> bool {
    false
}

pub(super) fn invalidate_path(_error_mask: u32, _path: PathHandle) -> Option<PathHandle> {
    None
}

pub(super) fn move_device(_devices: &[DeviceHandle], _suggested: PathHandle, _permanent: bool) -> bool {
    false
}

pub(super) fn remove_pending(_device: DeviceHandle) {}

pub(super) fn remove_device(_device: DeviceHandle, _path: PathHandle) {}

pub(super) fn remove_path(_path: PathHandle) {}

pub(super) fn lb_get_path(
    _devices: &[DeviceHandle],
    current: Option<PathHandle>,
    _io: IoSummary,
) -> Option<PathHandle> {
    current
}

pub(super) fn categorize(_devices: &[DeviceHandle], current: Option<PathHandle>, _io: IoSummary) -> Category {
    current.map_or(Category::Error(wdk_sys::STATUS_NO_SUCH_DEVICE), Category::Path)
}

pub(super) fn set_completion(_device: DeviceHandle, _io: IoSummary) -> Option<Ticket> {
    None
}

pub(super) fn complete(_ticket: Ticket, _now: u64, _ok: bool) {}

pub(super) fn interpret_error(
    _device: DeviceHandle,
    _sense: &[u8],
    _srb_status: u8,
    _scsi_status: u8,
    _nt_status: i32,
) -> ErrorAction {
    ErrorAction { retry: true, ..ErrorAction::default() }
}

pub(super) fn control(_ioctl_code: u32, _input: &[u8], _output: &mut [u8]) -> ControlResult {
    ControlResult { status: ControlStatus::InvalidRequest, written: 0 }
}
