//! Registry-backed persistence: one `REG_BINARY` value per LUN under
//! `<service key>\Parameters\Luns`, named by the hex of the LUN key.
//!
//! Only plain byte records are stored here; the record format (version,
//! checksum, torn-write detection) belongs to the portable core, which
//! reaches these functions through `glue::RegistryBackend`. All functions
//! run at PASSIVE_LEVEL (Zw* registry routines require it).

use core::{
    cell::UnsafeCell,
    mem::{offset_of, size_of},
    ptr,
    sync::atomic::{AtomicUsize, Ordering},
};

use wdk_sys::{
    _KEY_VALUE_INFORMATION_CLASS::KeyValuePartialInformation,
    HANDLE, KEY_ALL_ACCESS, KEY_VALUE_PARTIAL_INFORMATION, NTSTATUS, OBJ_CASE_INSENSITIVE, OBJ_KERNEL_HANDLE,
    OBJECT_ATTRIBUTES, POOL_FLAG_PAGED, REG_BINARY, REG_MULTI_SZ, REG_OPTION_NON_VOLATILE,
    STATUS_BUFFER_OVERFLOW, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_NAME_TOO_LONG,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_TYPE_MISMATCH, UNICODE_STRING,
    ntddk::{
        ExAllocatePool2, ExFreePoolWithTag, ZwClose, ZwCreateKey, ZwDeleteValueKey, ZwFlushKey,
        ZwQueryValueKey, ZwSetValueKey,
    },
};

/// Largest record accepted (the registry itself allows far more; the core's
/// records are a few hundred bytes).
pub const MAX_RECORD: usize = 64 * 1024;
/// Longest value name (hex characters).
const MAX_NAME: usize = 256;
/// Longest service key path we keep (UTF-16 units).
const MAX_KEY_PATH: usize = 512;
/// Pool tag `Rsrg`.
const POOL_TAG: u32 = u32::from_le_bytes(*b"Rsrg");

/// The service key path (`\Registry\Machine\System\...\Services\rsdsm`),
/// copied once in DriverEntry.
struct ServiceKey {
    buf: UnsafeCell<[u16; MAX_KEY_PATH]>,
    /// Length in UTF-16 units; 0 until [`init`] has run.
    len: AtomicUsize,
}

// SAFETY: `buf` is written only by `init`, in DriverEntry, before `len` is
// published with Release ordering and before any other code can run; readers
// load `len` with Acquire and only then read `buf`. Unload runs after every
// user is gone.
unsafe impl Sync for ServiceKey {}

static SERVICE_KEY: ServiceKey =
    ServiceKey { buf: UnsafeCell::new([0; MAX_KEY_PATH]), len: AtomicUsize::new(0) };

/// Remember the driver's registry path (DriverEntry, PASSIVE, once).
///
/// # Errors
/// `STATUS_NAME_TOO_LONG` if the path does not fit.
pub fn init(registry_path: &UNICODE_STRING) -> Result<(), NTSTATUS> {
    let units = usize::from(registry_path.Length) / 2;
    if units == 0 || units > MAX_KEY_PATH || registry_path.Buffer.is_null() {
        return Err(STATUS_NAME_TOO_LONG);
    }
    // SAFETY: the I/O manager passes a valid UNICODE_STRING whose Buffer holds
    // Length bytes; `buf` is not yet shared (see `impl Sync`), and `units`
    // ≤ MAX_KEY_PATH.
    unsafe {
        let src = core::slice::from_raw_parts(registry_path.Buffer, units);
        (*SERVICE_KEY.buf.get()).get_mut(..units).ok_or(STATUS_NAME_TOO_LONG)?.copy_from_slice(src);
    }
    SERVICE_KEY.len.store(units, Ordering::Release);
    Ok(())
}

fn service_key() -> Result<&'static [u16], NTSTATUS> {
    let len = SERVICE_KEY.len.load(Ordering::Acquire);
    if len == 0 {
        return Err(STATUS_OBJECT_NAME_NOT_FOUND);
    }
    // SAFETY: published by `init` (Release/Acquire on `len`); never written again.
    let buf: &'static [u16; MAX_KEY_PATH] = unsafe { &*SERVICE_KEY.buf.get() };
    buf.get(..len).ok_or(STATUS_INVALID_PARAMETER)
}

fn counted(units: &[u16]) -> Result<UNICODE_STRING, NTSTATUS> {
    let bytes = u16::try_from(units.len() * 2).map_err(|_| STATUS_NAME_TOO_LONG)?;
    Ok(UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: units.as_ptr().cast_mut() })
}

/// An open registry key, closed on drop.
struct Key(HANDLE);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the handle came from ZwCreateKey (kernel handle) and is closed once.
        let _ = unsafe { ZwClose(self.0) };
    }
}

/// `ZwCreateKey(root\name)`, creating it if needed.
fn create_key(root: Option<&Key>, name: &[u16]) -> Result<Key, NTSTATUS> {
    let mut name = counted(name)?;
    let mut attributes = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: root.map_or(ptr::null_mut(), |k| k.0),
        ObjectName: &mut name,
        Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        SecurityDescriptor: ptr::null_mut(),
        SecurityQualityOfService: ptr::null_mut(),
    };
    let mut handle: HANDLE = ptr::null_mut();
    let mut disposition = 0u32;
    // SAFETY: every pointer refers to a live local; `name` points into a
    // slice that outlives the call. PASSIVE_LEVEL per the module contract.
    let status = unsafe {
        ZwCreateKey(
            &mut handle,
            KEY_ALL_ACCESS,
            &mut attributes,
            0,
            ptr::null_mut(),
            REG_OPTION_NON_VOLATILE,
            &mut disposition,
        )
    };
    if status < 0 { Err(status) } else { Ok(Key(handle)) }
}

/// Open (creating as needed) `<service>\Parameters\Luns`.
fn luns_key() -> Result<Key, NTSTATUS> {
    const LUNS: [u16; 4] = ascii16(b"Luns");
    create_key(Some(&parameters_key()?), &LUNS)
}

/// Open (creating as needed) `<service>\Parameters`.
fn parameters_key() -> Result<Key, NTSTATUS> {
    const PARAMETERS: [u16; 10] = ascii16(b"Parameters");
    let service = service_key()?;
    let mut path = [0u16; MAX_KEY_PATH + 1 + PARAMETERS.len()];
    let total = service.len() + 1 + PARAMETERS.len();
    let dst = path.get_mut(..total).ok_or(STATUS_NAME_TOO_LONG)?;
    let (head, tail) = dst.split_at_mut(service.len());
    head.copy_from_slice(service);
    if let Some((sep, rest)) = tail.split_first_mut() {
        *sep = u16::from(b'\\');
        rest.copy_from_slice(&PARAMETERS);
    }
    create_key(None, dst)
}

#[allow(clippy::indexing_slicing, reason = "const evaluation only: a bad index is a compile error")]
const fn ascii16<const N: usize>(s: &[u8; N]) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        out[i] = s[i] as u16;
        i += 1;
    }
    out
}

/// Validate an ASCII hex value name and widen it.
fn value_name(name_hex: &[u8], out: &mut [u16; MAX_NAME]) -> Result<usize, NTSTATUS> {
    if name_hex.is_empty() || name_hex.len() > MAX_NAME || !name_hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    for (dst, src) in out.iter_mut().zip(name_hex) {
        *dst = u16::from(*src);
    }
    Ok(name_hex.len())
}

/// Read the record `name_hex` into `buf`.
///
/// `Ok(None)`: no such record. `Ok(Some(len))`: the stored record is `len`
/// bytes; if `len <= buf.len()` it was copied to `buf[..len]`, otherwise
/// nothing was copied (the caller's buffer is too small).
///
/// # Errors
/// The NTSTATUS of a registry failure; `STATUS_OBJECT_TYPE_MISMATCH` if the
/// value is not `REG_BINARY`; `STATUS_INVALID_PARAMETER` for a bad name.
pub fn load(name_hex: &[u8], buf: &mut [u8]) -> Result<Option<usize>, NTSTATUS> {
    let mut wide = [0u16; MAX_NAME];
    let n = value_name(name_hex, &mut wide)?;
    let mut name = counted(wide.get(..n).ok_or(STATUS_INVALID_PARAMETER)?)?;
    let key = luns_key()?;
    let want = buf.len().min(MAX_RECORD);
    let found = query_value(&key, &mut name, REG_BINARY, want, |data| {
        if let Some(dst) = buf.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
    })?;
    match found {
        Queried::Missing => Ok(None),
        Queried::Read(len) => Ok(Some(len)),
        // Too big for `buf`: report the stored length, copy nothing.
        Queried::TooLong(len) if len > buf.len() => Ok(Some(len)),
        // Larger than MAX_RECORD (never written by `save`).
        Queried::TooLong(_) => Err(STATUS_BUFFER_OVERFLOW),
    }
}

/// What [`query_value`] found.
enum Queried {
    /// No such value.
    Missing,
    /// The value's `len` bytes were handed to the consumer.
    Read(usize),
    /// The value is longer than asked for: its stored length; nothing read.
    TooLong(usize),
}

/// Reads value `name` of `key`, which must be of type `kind`, handing its
/// data (at most `want` bytes) to `consume` while the query buffer lives.
///
/// # Errors
/// The NTSTATUS of a registry failure; `STATUS_OBJECT_TYPE_MISMATCH` for
/// another value type; `STATUS_INSUFFICIENT_RESOURCES` if the query buffer
/// cannot be allocated.
fn query_value(
    key: &Key,
    name: &mut UNICODE_STRING,
    kind: u32,
    want: usize,
    consume: impl FnOnce(&[u8]),
) -> Result<Queried, NTSTATUS> {
    let header = offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data);
    let size = (header + want).max(size_of::<KEY_VALUE_PARTIAL_INFORMATION>());
    // SAFETY: plain pool allocation at PASSIVE_LEVEL; freed below on every path.
    let info = unsafe { ExAllocatePool2(POOL_FLAG_PAGED, size as u64, POOL_TAG) };
    if info.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    let mut result_len = 0u32;
    // SAFETY: `info` is `size` writable bytes; `name` and `key` are live.
    let status = unsafe {
        ZwQueryValueKey(key.0, name, KeyValuePartialInformation, info, size as u32, &mut result_len)
    };
    let outcome = if status == STATUS_OBJECT_NAME_NOT_FOUND {
        Ok(Queried::Missing)
    } else if status >= 0 || status == STATUS_BUFFER_OVERFLOW {
        // SAFETY: on success or STATUS_BUFFER_OVERFLOW the fixed header (Type,
        // DataLength = full stored length) is filled; `info` is at least
        // size_of::<KEY_VALUE_PARTIAL_INFORMATION>() bytes.
        let (stored_kind, len) = unsafe {
            let p = info.cast::<KEY_VALUE_PARTIAL_INFORMATION>();
            ((*p).Type, (*p).DataLength as usize)
        };
        if stored_kind != kind {
            Err(STATUS_OBJECT_TYPE_MISMATCH)
        } else if status >= 0 && len <= want {
            // SAFETY: on success the Data array holds DataLength bytes inside
            // the `size`-byte allocation (DataLength <= want = size - header).
            consume(unsafe { core::slice::from_raw_parts(info.cast::<u8>().add(header), len) });
            Ok(Queried::Read(len))
        } else {
            Ok(Queried::TooLong(len))
        }
    } else {
        Err(status)
    };
    // SAFETY: allocated above with the same tag, not freed before.
    unsafe { ExFreePoolWithTag(info, POOL_TAG) };
    outcome
}

/// Write (replace) the record `name_hex` and flush the key.
///
/// # Errors
/// As for [`load`]; `STATUS_INVALID_PARAMETER` for a record over [`MAX_RECORD`].
pub fn save(name_hex: &[u8], data: &[u8]) -> Result<(), NTSTATUS> {
    if data.len() > MAX_RECORD {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mut wide = [0u16; MAX_NAME];
    let n = value_name(name_hex, &mut wide)?;
    let mut name = counted(wide.get(..n).ok_or(STATUS_INVALID_PARAMETER)?)?;
    let key = luns_key()?;
    // SAFETY: `data` is `data.len()` readable bytes (ZwSetValueKey only reads
    // it despite the PVOID type); `name`/`key` are live; PASSIVE_LEVEL.
    let status = unsafe {
        ZwSetValueKey(key.0, &mut name, 0, REG_BINARY, data.as_ptr().cast_mut().cast(), data.len() as u32)
    };
    if status < 0 {
        return Err(status);
    }
    // SAFETY: valid key handle.
    let status = unsafe { ZwFlushKey(key.0) };
    if status < 0 { Err(status) } else { Ok(()) }
}

/// Delete the record `name_hex`; an absent record is not an error.
///
/// # Errors
/// As for [`load`].
pub fn delete(name_hex: &[u8]) -> Result<(), NTSTATUS> {
    let mut wide = [0u16; MAX_NAME];
    let n = value_name(name_hex, &mut wide)?;
    let mut name = counted(wide.get(..n).ok_or(STATUS_INVALID_PARAMETER)?)?;
    let key = luns_key()?;
    // SAFETY: valid key handle and name; PASSIVE_LEVEL.
    let status = unsafe { ZwDeleteValueKey(key.0, &mut name) };
    if status < 0 && status != STATUS_OBJECT_NAME_NOT_FOUND { Err(status) } else { Ok(()) }
}

/// Read `<service>\Parameters\DsmSupportedDeviceList` (`REG_MULTI_SZ`)
/// into `out` as UTF-16 units. `Ok(None)` if the value is absent;
/// `Ok(Some(units))` with the units copied.
///
/// # Errors
/// The NTSTATUS of a registry failure; `STATUS_OBJECT_TYPE_MISMATCH` if the
/// value is not `REG_MULTI_SZ`; `STATUS_BUFFER_OVERFLOW` if it is longer
/// than `out`.
pub fn load_supported_devices(out: &mut [u16]) -> Result<Option<usize>, NTSTATUS> {
    const NAME: [u16; 22] = ascii16(b"DsmSupportedDeviceList");
    let mut name = counted(&NAME)?;
    let key = parameters_key()?;
    let found = query_value(&key, &mut name, REG_MULTI_SZ, out.len() * 2, |data| {
        for (dst, unit) in out.iter_mut().zip(data.chunks_exact(2)) {
            *dst =
                u16::from_le_bytes([unit.first().copied().unwrap_or(0), unit.get(1).copied().unwrap_or(0)]);
        }
    })?;
    match found {
        Queried::Missing => Ok(None),
        Queried::Read(len) => Ok(Some(len / 2)),
        // Longer than `out`.
        Queried::TooLong(_) => Err(STATUS_BUFFER_OVERFLOW),
    }
}
