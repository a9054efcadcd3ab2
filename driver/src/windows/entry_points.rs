//! The DSM entry points registered with mpio.sys (`DSM_INIT_DATA`).
//!
//! Each trampoline checks its pointers, turns MPIO's raw arguments into safe
//! values (handles, slices, [`IoSummary`]), calls one `glue` function and
//! writes the answer back in MPIO's form. Nothing here decides anything.
//!
//! The `DsmContext` argument is ignored: the core is a single global
//! instance behind `glue`.

use core::{ffi::c_void, mem::size_of, ptr};

use heapless::Vec;
use wdk_sys::{
    BOOLEAN, NTSTATUS, PDEVICE_OBJECT, PIRP, PKEVENT, POOL_FLAG_NON_PAGED, PSCSI_REQUEST_BLOCK,
    PSTORAGE_DEVICE_DESCRIPTOR, PSTORAGE_DEVICE_ID_DESCRIPTOR, PVOID, SRB_FLAGS_DATA_OUT,
    SRB_STATUS_AUTOSENSE_VALID, SRB_STATUS_ERROR, SRB_STATUS_QUEUE_FROZEN, SRB_STATUS_SUCCESS,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_NO_SUCH_DEVICE, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
    ntddk::{ExAllocatePool2, KeGetCurrentProcessorNumberEx, KeQueryUnbiasedInterruptTime, KeSetEvent},
};

use super::{
    dsm_h::{
        ControllerIds, ControllerInfo, DSM_CNTRL_FLAGS_ALLOCATE, DSM_CONTROLLER_ACTIVE,
        DSM_CONTROLLER_FAILED, DSM_CONTROLLER_NO_CNTRL, DSM_CONTROLLER_STANDBY, DSM_ERROR, DSM_FATAL_ERROR,
        DSM_FATAL_ERROR_OEM_MASK, DSM_MOVE_PERMANENT, DSM_PATH_SET, DSM_RETRY_DONT_DECREMENT,
        DsmCompletionInfo, DsmIds, DsmSendTUR,
    },
    glue::{
        self, Category, ControllerState, DeviceHandle, IoSummary, MAX_PATHS_PER_DEVICE, PathHandle, Ticket,
    },
};

/// Pool tag `Rsdm` (CONTROLLER_INFO allocations, freed by MPIO).
const POOL_TAG: u32 = u32::from_le_bytes(*b"Rsdm");
/// Bound on the descriptors MPIO hands to InquireDriver that we will read.
const MAX_DESCRIPTOR: usize = 4096;
/// Size of the VPD 0x83 image rebuilt from MPIO's identifier list.
const VPD83_MAX: usize = 1024;
/// `STORAGE_IDENTIFIER_CODE_SET::StorageIdCodeSetBinary`.
const CODE_SET_BINARY: i32 = 1;
/// `SRB_STATUS(x)`: the SRB status without the queue-frozen/autosense flags.
const SRB_STATUS_MASK: u8 = !((SRB_STATUS_AUTOSENSE_VALID | SRB_STATUS_QUEUE_FROZEN) as u8);

fn boolean(b: bool) -> BOOLEAN {
    BOOLEAN::from(b)
}

fn device(raw: PVOID) -> Option<DeviceHandle> {
    DeviceHandle::from_raw(raw as usize)
}

fn path(raw: PVOID) -> Option<PathHandle> {
    PathHandle::from_raw(raw as usize)
}

fn to_pvoid(raw: usize) -> PVOID {
    // Handles are opaque integers that MPIO stores as PVOIDs; it never
    // dereferences them.
    ptr::without_provenance_mut(raw)
}

/// The DsmIds of a `DSM_IDS` list as handles; `None` if the list is
/// missing, too long, or holds a value we never issued.
///
/// # Safety
/// `ids` is null or a `DSM_IDS` whose `IdList` holds `Count` entries.
unsafe fn devices(ids: *const DsmIds) -> Option<Vec<DeviceHandle, MAX_PATHS_PER_DEVICE>> {
    if ids.is_null() {
        return None;
    }
    // SAFETY: non-null and valid per the function contract.
    let count = unsafe { (*ids).count } as usize;
    if count > MAX_PATHS_PER_DEVICE {
        return None;
    }
    // SAFETY: `IdList` is the trailing array of `count` PVOIDs.
    let list = unsafe { ptr::addr_of!((*ids).id_list).cast::<PVOID>() };
    let mut out = Vec::new();
    for i in 0..count {
        // SAFETY: i < count, within the trailing array.
        let raw = unsafe { list.add(i).read() };
        out.push(device(raw)?).ok()?;
    }
    Some(out)
}

/// Start LBA and block count of a READ/WRITE CDB.
fn rw_extent(cdb: &[u8]) -> Option<(u64, u32)> {
    let be = |range: core::ops::Range<usize>| -> Option<u64> {
        cdb.get(range).map(|b| b.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x)))
    };
    let narrow = |v: u64| u32::try_from(v).ok();
    match *cdb.first()? {
        0x08 | 0x0A => {
            let lba = be(1..4)? & 0x1F_FFFF;
            let blocks = narrow(be(4..5)?)?;
            Some((lba, if blocks == 0 { 256 } else { blocks }))
        }
        0x28 | 0x2A => Some((be(2..6)?, narrow(be(7..9)?)?)),
        0xA8 | 0xAA => Some((be(2..6)?, narrow(be(6..10)?)?)),
        0x88 | 0x8A => Some((be(2..10)?, narrow(be(10..14)?)?)),
        _ => None,
    }
}

pub(super) fn now() -> u64 {
    // SAFETY: callable at any IRQL; no arguments.
    unsafe { KeQueryUnbiasedInterruptTime() }
}

/// What `glue` needs to know about the request in `srb`.
///
/// # Safety
/// `srb` is null or a valid `SCSI_REQUEST_BLOCK`.
unsafe fn io_summary(srb: PSCSI_REQUEST_BLOCK) -> IoSummary {
    // SAFETY: NULL asks for the current processor's index only; any IRQL.
    let cpu = unsafe { KeGetCurrentProcessorNumberEx(ptr::null_mut()) };
    let mut io = IoSummary { cpu, now: now(), ..IoSummary::default() };
    if srb.is_null() {
        return io;
    }
    // SAFETY: valid SRB per the contract; fields are read by value.
    let (bytes, flags, cdb, cdb_len) =
        unsafe { ((*srb).DataTransferLength, (*srb).SrbFlags, (*srb).Cdb, (*srb).CdbLength) };
    let cdb = cdb.get(..usize::from(cdb_len)).unwrap_or(&cdb);
    io.bytes = bytes;
    io.write = flags & SRB_FLAGS_DATA_OUT != 0;
    io.opcode = cdb.first().copied().unwrap_or(0);
    if let Some((lba, blocks)) = rw_extent(cdb) {
        io.lba = Some(lba);
        io.blocks = blocks;
    }
    io
}

/// NUL-terminated ASCII field at `offset` of a descriptor (empty if absent).
fn descriptor_string(desc: &[u8], offset: u32) -> &[u8] {
    let Some(rest) = usize::try_from(offset).ok().filter(|o| *o != 0).and_then(|o| desc.get(o..)) else {
        return &[];
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    rest.get(..end).unwrap_or(&[])
}

/// Rebuild a VPD page 0x83 image (header + designation descriptors) from a
/// `STORAGE_DEVICE_ID_DESCRIPTOR`. The protocol identifier and PIV bits are
/// not carried by `STORAGE_IDENTIFIER` and are left 0. Returns the length.
fn vpd83_from_ids(ids: &[u8], out: &mut [u8; VPD83_MAX]) -> usize {
    // STORAGE_DEVICE_ID_DESCRIPTOR: Version u32, Size u32, NumberOfIdentifiers
    // u32, Identifiers @12. STORAGE_IDENTIFIER: CodeSet i32 @0, Type i32 @4,
    // IdentifierSize u16 @8, NextOffset u16 @10, Association i32 @12,
    // Identifier @16.
    let u32_at =
        |b: &[u8], o: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
    let u16_at = |b: &[u8], o: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?)))
    };
    let mut len = 4;
    let count = u32_at(ids, 8).unwrap_or(0);
    let mut at = 12;
    for _ in 0..count.min(64) {
        let Some(entry) = ids.get(at..) else { break };
        let (Some(code_set), Some(kind), Some(size), Some(next), Some(assoc)) =
            (u32_at(entry, 0), u32_at(entry, 4), u16_at(entry, 8), u16_at(entry, 10), u32_at(entry, 12))
        else {
            break;
        };
        let Some(id) = entry.get(16..16 + size) else { break };
        let Ok(size8) = u8::try_from(size) else { break };
        let Some(dst) = out.get_mut(len..len + 4 + size) else { break };
        let (head, body) = dst.split_at_mut(4);
        head.copy_from_slice(&[
            (code_set & 0x0F) as u8,
            ((assoc & 0x03) << 4) as u8 | (kind & 0x0F) as u8,
            0,
            size8,
        ]);
        body.copy_from_slice(id);
        len += 4 + size;
        if next == 0 {
            break;
        }
        at += next;
    }
    let page_len = u16::try_from(len - 4).unwrap_or(0).to_be_bytes();
    if let Some(head) = out.get_mut(..4) {
        head.copy_from_slice(&[0, 0x83, page_len[0], page_len[1]]);
    }
    len
}

/// Bytes of a self-sized storage descriptor (`Version`, `Size` header),
/// bounded by [`MAX_DESCRIPTOR`].
///
/// # Safety
/// `p` is null or points to a descriptor whose `Size` bytes are readable.
unsafe fn descriptor_bytes<'a>(p: *const u8) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: every storage descriptor starts with Version u32, Size u32.
    let size = unsafe { p.add(4).cast::<u32>().read_unaligned() } as usize;
    // SAFETY: `size` (bounded) bytes are readable per the contract.
    unsafe { core::slice::from_raw_parts(p, size.min(MAX_DESCRIPTOR)) }
}

/// `DSM_INQUIRE_DRIVER`
pub unsafe extern "C" fn inquire_driver(
    _dsm_context: PVOID,
    _target_device: PDEVICE_OBJECT,
    _port_fdo: PDEVICE_OBJECT,
    descriptor: PSTORAGE_DEVICE_DESCRIPTOR,
    device_id_list: PSTORAGE_DEVICE_ID_DESCRIPTOR,
    dsm_identifier: *mut PVOID,
) -> NTSTATUS {
    if dsm_identifier.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: MPIO passes valid (or null) descriptors that live for the call.
    let (desc, ids) =
        unsafe { (descriptor_bytes(descriptor.cast::<u8>()), descriptor_bytes(device_id_list.cast::<u8>())) };
    // STORAGE_DEVICE_DESCRIPTOR: VendorIdOffset @12, ProductIdOffset @16,
    // SerialNumberOffset @24.
    let field = |o: usize| desc.get(o..o + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
    let vendor = descriptor_string(desc, field(12));
    let product = descriptor_string(desc, field(16));
    let serial = descriptor_string(desc, field(24));
    let mut page = [0u8; VPD83_MAX];
    let len = vpd83_from_ids(ids, &mut page);
    let vpd83 = page.get(..len).unwrap_or(&[]);
    let claimed = glue::inquire(vendor, product, serial, vpd83);
    // SAFETY: checked non-null; MPIO owns the out slot.
    unsafe { *dsm_identifier = claimed.map_or(ptr::null_mut(), |d| to_pvoid(d.to_raw())) };
    if claimed.is_some() { STATUS_SUCCESS } else { STATUS_NOT_SUPPORTED }
}

/// `DSM_COMPARE_DEVICES`
pub unsafe extern "C" fn compare_devices(_dsm_context: PVOID, id1: PVOID, id2: PVOID) -> BOOLEAN {
    boolean(matches!((device(id1), device(id2)), (Some(a), Some(b)) if glue::compare_devices(a, b)))
}

/// `DSM_GET_CONTROLLER_INFO`
pub unsafe extern "C" fn get_controller_info(
    _dsm_context: PVOID,
    dsm_id: PVOID,
    flags: u32,
    controller_info: *mut *mut ControllerInfo,
) -> NTSTATUS {
    let Some(dev) = device(dsm_id) else { return STATUS_INVALID_PARAMETER };
    if controller_info.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let info = glue::controller_info(dev);
    let mut identifier = ControllerIds { code_set: CODE_SET_BINARY, length: 0, serial_number: [0; 32] };
    let id_len = info.id_len.min(identifier.serial_number.len());
    if let (Some(dst), Some(src)) = (identifier.serial_number.get_mut(..id_len), info.id.get(..id_len)) {
        dst.copy_from_slice(src);
        identifier.length = id_len as u32;
    }
    let state = match info.state {
        ControllerState::Active => DSM_CONTROLLER_ACTIVE,
        ControllerState::Standby => DSM_CONTROLLER_STANDBY,
        ControllerState::Failed => DSM_CONTROLLER_FAILED,
        ControllerState::NoController => DSM_CONTROLLER_NO_CNTRL,
    };
    if flags & DSM_CNTRL_FLAGS_ALLOCATE != 0 {
        // SAFETY: non-paged allocation (MPIO frees it with ExFreePool).
        let p = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<ControllerInfo>() as u64, POOL_TAG) }
            .cast::<ControllerInfo>();
        if p.is_null() {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: `p` is a fresh allocation of the right size; the out slot is MPIO's.
        unsafe {
            p.write(ControllerInfo { device_object: ptr::null_mut(), identifier, state });
            *controller_info = p;
        }
    } else {
        // SAFETY: without ALLOCATE, MPIO passes a valid CONTROLLER_INFO (or null).
        let existing = unsafe { *controller_info };
        if existing.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: valid per the above; only State is updated (CHECK_STATE).
        unsafe { (*existing).state = state };
    }
    STATUS_SUCCESS
}

/// `DSM_SET_DEVICE_INFO`
pub unsafe extern "C" fn set_device_info(
    _dsm_context: PVOID,
    target_object: PDEVICE_OBJECT,
    dsm_id: PVOID,
    path_id: *mut PVOID,
) -> NTSTATUS {
    let Some(dev) = device(dsm_id) else { return STATUS_INVALID_PARAMETER };
    if path_id.is_null() || target_object.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: checked non-null; in/out slot owned by MPIO.
    let mpio_path = unsafe { *path_id } as usize;
    match glue::set_device_info(dev, mpio_path, target_object.expose_provenance()) {
        Some(p) => {
            // SAFETY: as above.
            unsafe { *path_id = to_pvoid(p.to_raw()) };
            STATUS_SUCCESS
        }
        None => STATUS_UNSUCCESSFUL,
    }
}

/// `DSM_IS_PATH_ACTIVE`
pub unsafe extern "C" fn is_path_active(_dsm_context: PVOID, path_id: PVOID, dsm_id: PVOID) -> BOOLEAN {
    boolean(matches!((path(path_id), device(dsm_id)), (Some(p), Some(d)) if glue::is_path_active(p, d)))
}

/// `DSM_PATH_VERIFY`: probe with TEST UNIT READY, let the core judge.
pub unsafe extern "C" fn path_verify(_dsm_context: PVOID, dsm_id: PVOID, path_id: PVOID) -> NTSTATUS {
    let (Some(dev), Some(p)) = (device(dsm_id), path(path_id)) else { return STATUS_INVALID_PARAMETER };
    let Some(target) = glue::verify_target(dev) else { return STATUS_NO_SUCH_DEVICE };
    let target: PDEVICE_OBJECT = ptr::with_exposed_provenance_mut(target);
    // SAFETY: `target` is the TargetObject MPIO gave in SetDeviceInfo (stored
    // by the core as an opaque token, exposed by the `as usize` cast there);
    // MPIO keeps it valid until RemoveDevice. PathVerify runs at PASSIVE_LEVEL.
    let probe = unsafe { DsmSendTUR(target) };
    if glue::path_verify(dev, p, probe) {
        STATUS_SUCCESS
    } else if probe < 0 {
        probe
    } else {
        STATUS_UNSUCCESSFUL
    }
}

/// `DSM_INVALIDATE_PATH`
pub unsafe extern "C" fn invalidate_path(
    _dsm_context: PVOID,
    error_mask: u32,
    path_id: PVOID,
    new_path_id: *mut PVOID,
) -> NTSTATUS {
    let Some(p) = path(path_id) else { return STATUS_INVALID_PARAMETER };
    if new_path_id.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let next = glue::invalidate_path(error_mask, p);
    // SAFETY: checked non-null; MPIO owns the out slot.
    unsafe { *new_path_id = next.map_or(ptr::null_mut(), |n| to_pvoid(n.to_raw())) };
    if next.is_some() { STATUS_SUCCESS } else { STATUS_NO_SUCH_DEVICE }
}

/// `DSM_MOVE_DEVICE`
pub unsafe extern "C" fn move_device(
    _dsm_context: PVOID,
    dsm_ids: *mut DsmIds,
    _mpio_path: PVOID,
    suggested_path: PVOID,
    flags: u32,
) -> NTSTATUS {
    // SAFETY: MPIO passes a valid DSM_IDS (or null, rejected).
    let Some(list) = (unsafe { devices(dsm_ids) }) else { return STATUS_INVALID_PARAMETER };
    let Some(p) = path(suggested_path) else { return STATUS_INVALID_PARAMETER };
    if glue::move_device(&list, p, flags & DSM_MOVE_PERMANENT != 0) {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER
    }
}

/// `DSM_REMOVE_PENDING`
pub unsafe extern "C" fn remove_pending(_dsm_context: PVOID, dsm_id: PVOID) -> NTSTATUS {
    if let Some(d) = device(dsm_id) {
        glue::remove_pending(d);
    }
    STATUS_SUCCESS
}

/// `DSM_REMOVE_DEVICE`
pub unsafe extern "C" fn remove_device(_dsm_context: PVOID, dsm_id: PVOID, path_id: PVOID) -> NTSTATUS {
    if let (Some(d), Some(p)) = (device(dsm_id), path(path_id)) {
        glue::remove_device(d, p);
    }
    STATUS_SUCCESS
}

/// `DSM_REMOVE_PATH`
pub unsafe extern "C" fn remove_path(_dsm_context: PVOID, path_id: PVOID) -> NTSTATUS {
    if let Some(p) = path(path_id) {
        glue::remove_path(p);
    }
    STATUS_SUCCESS
}

/// `DSM_SRB_DEVICE_CONTROL` and `DSM_BROADCAST_SRB`. `categorize` never
/// returns `DSM_WILL_HANDLE`/`DSM_BROADCAST`, so MPIO should not call these;
/// if it does, fail the request the documented way (set IoStatus, signal
/// the event, do not complete the IRP) so nothing waits forever.
pub unsafe extern "C" fn srb_not_handled(
    _dsm_context: PVOID,
    _dsm_ids: *mut DsmIds,
    irp: PIRP,
    _srb: PSCSI_REQUEST_BLOCK,
    event: PKEVENT,
) -> NTSTATUS {
    // SAFETY: MPIO passes its IRP and an initialised KEVENT (either may be
    // null, checked); at most DISPATCH_LEVEL, where KeSetEvent(Wait=FALSE) is allowed.
    unsafe {
        if !irp.is_null() {
            (*irp).IoStatus.__bindgen_anon_1.Status = STATUS_INVALID_DEVICE_REQUEST;
            (*irp).IoStatus.Information = 0;
        }
        if !event.is_null() {
            let _ = KeSetEvent(event, 0, 0);
        }
    }
    STATUS_INVALID_DEVICE_REQUEST
}

/// `DSM_LB_GET_PATH`
pub unsafe extern "C" fn lb_get_path(
    _dsm_context: PVOID,
    srb: PSCSI_REQUEST_BLOCK,
    dsm_list: *mut DsmIds,
    current_path: PVOID,
    status: *mut NTSTATUS,
) -> PVOID {
    // SAFETY: MPIO passes a valid SRB and DSM_IDS for the pseudo-LUN.
    let (list, io) = unsafe { (devices(dsm_list), io_summary(srb)) };
    let chosen = list.and_then(|l| glue::lb_get_path(&l, path(current_path), io));
    if chosen.is_none() && !status.is_null() {
        // SAFETY: checked non-null; MPIO's out slot.
        unsafe { *status = STATUS_NO_SUCH_DEVICE };
    }
    chosen.map_or(ptr::null_mut(), |p| to_pvoid(p.to_raw()))
}

/// `DSM_INTERPRET_ERROR` (Type1, fixed arguments)
pub unsafe extern "C" fn interpret_error(
    _dsm_context: PVOID,
    dsm_id: PVOID,
    srb: PSCSI_REQUEST_BLOCK,
    status: *mut NTSTATUS,
    retry: *mut BOOLEAN,
) -> u32 {
    let Some(dev) = device(dsm_id) else { return 0 };
    if srb.is_null() || status.is_null() || retry.is_null() {
        return 0;
    }
    // SAFETY: valid SRB, status and retry slots per the DSM contract.
    let (srb_status, scsi_status, sense_ptr, sense_len, nt_status) = unsafe {
        ((*srb).SrbStatus, (*srb).ScsiStatus, (*srb).SenseInfoBuffer, (*srb).SenseInfoBufferLength, *status)
    };
    let sense: &[u8] = if srb_status & SRB_STATUS_AUTOSENSE_VALID as u8 != 0 && !sense_ptr.is_null() {
        // SAFETY: with AUTOSENSE_VALID the sense buffer holds (up to)
        // SenseInfoBufferLength bytes, alive until the request completes.
        unsafe { core::slice::from_raw_parts(sense_ptr.cast::<u8>(), usize::from(sense_len)) }
    } else {
        &[]
    };
    let action = glue::interpret_error(dev, sense, srb_status & SRB_STATUS_MASK, scsi_status, nt_status);
    // SAFETY: checked non-null above.
    unsafe {
        if let Some(s) = action.status {
            *status = s;
        }
        *retry = boolean(action.retry);
    }
    let mut mask = u32::from(action.oem) & DSM_FATAL_ERROR_OEM_MASK & !DSM_RETRY_DONT_DECREMENT;
    if action.retry_dont_decrement {
        mask |= DSM_RETRY_DONT_DECREMENT;
    }
    if action.fatal {
        mask |= DSM_FATAL_ERROR;
    }
    mask
}

/// `DSM_UNLOAD`
pub unsafe extern "C" fn unload(_dsm_context: PVOID) -> NTSTATUS {
    glue::stop();
    STATUS_SUCCESS
}

/// Our `DSM_COMPLETION_ROUTINE`.
unsafe extern "C" fn completion(_dsm_id: PVOID, _irp: PIRP, srb: PSCSI_REQUEST_BLOCK, context: PVOID) {
    let Some(ticket) = Ticket::from_raw(context as usize) else { return };
    let ok = !srb.is_null()
        // SAFETY: non-null SRB of the completing request.
        && unsafe { (*srb).SrbStatus } & SRB_STATUS_MASK == SRB_STATUS_SUCCESS as u8;
    glue::complete(ticket, now(), ok);
}

/// `DSM_SET_COMPLETION`
pub unsafe extern "C" fn set_completion(
    _dsm_context: PVOID,
    dsm_id: PVOID,
    _irp: PIRP,
    srb: PSCSI_REQUEST_BLOCK,
    info: *mut DsmCompletionInfo,
) {
    let Some(dev) = device(dsm_id) else { return };
    if info.is_null() {
        return;
    }
    // SAFETY: valid SRB per the DSM contract.
    let io = unsafe { io_summary(srb) };
    if let Some(ticket) = glue::set_completion(dev, io) {
        // SAFETY: checked non-null; MPIO's completion-info slot.
        unsafe {
            (*info).completion_routine = Some(completion);
            (*info).dsm_context = to_pvoid(ticket.to_raw());
        }
    }
}

/// `DSM_CATEGORIZE_REQUEST`: every non-read/write goes down a path the core
/// picks (never WILL_HANDLE or BROADCAST).
pub unsafe extern "C" fn categorize_request(
    _dsm_context: PVOID,
    dsm_ids: *mut DsmIds,
    _irp: PIRP,
    srb: PSCSI_REQUEST_BLOCK,
    current_path: PVOID,
    path_id: *mut PVOID,
    status: *mut NTSTATUS,
) -> u32 {
    if path_id.is_null() || status.is_null() {
        return DSM_ERROR;
    }
    // SAFETY: MPIO passes a valid DSM_IDS and SRB.
    let (list, io) = unsafe { (devices(dsm_ids), io_summary(srb)) };
    let category = list
        .map_or(Category::Error(STATUS_INVALID_PARAMETER), |l| glue::categorize(&l, path(current_path), io));
    match category {
        Category::Path(p) => {
            // SAFETY: checked non-null.
            unsafe { *path_id = to_pvoid(p.to_raw()) };
            DSM_PATH_SET
        }
        Category::Error(e) => {
            // SAFETY: checked non-null; the SRB (if any) is MPIO's request.
            unsafe {
                *path_id = ptr::null_mut();
                *status = e;
                if !srb.is_null() {
                    (*srb).SrbStatus = SRB_STATUS_ERROR as u8;
                }
            }
            DSM_ERROR
        }
    }
}

const _: () = assert!(size_of::<*mut c_void>() == 8, "the DSM layouts are x64/ARM64 only");
