//! How a request reaches the DSM: the bytes of one `DeviceIoControl` call.
//!
//! * `DeviceIoControl` (Windows): the installed driver's control device
//!   `\\.\RsdsmControl`.
//! * [`UnixSocket`] (Unix): a simulated DSM (`rsdsm-sim serve`), the same
//!   bytes in [frames](rsdsm_engine::wire::FrameHeader).
//! * [`InProcess`](crate::InProcess) (feature `in-process`): the driver's
//!   portable core inside this process, for tests and the simulator.

use std::fmt;

use rsdsm_engine::HResult;
use rsdsm_engine::wire::{STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST, WireError};

/// Carries one IOCTL call to the DSM.
pub trait Transport {
    /// Sends `input` with IOCTL code `ioctl`, offering an output buffer of
    /// `output_capacity` bytes, and returns what the DSM wrote into it.
    ///
    /// # Errors
    /// [`TransportError`] if the call could not be made or failed as a
    /// whole. A request the DSM *refuses* is not a transport error: it comes
    /// back as a reply carrying the HRESULT.
    fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError> {
        (**self).call(ioctl, input, output_capacity)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError> {
        (**self).call(ioctl, input, output_capacity)
    }
}

/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`.
pub const HRESULT_FILE_NOT_FOUND: HResult = HResult(0x8007_0002);
/// `E_FAIL`: an unspecified failure (here: an I/O error on the transport).
pub const E_FAIL: HResult = HResult(0x8000_4005);
/// `E_UNEXPECTED`: the DSM's reply is not a valid reply.
pub const E_UNEXPECTED: HResult = HResult(0x8000_FFFF);
/// `E_NOTIMPL`: no transport on this platform.
pub const E_NOTIMPL: HResult = HResult(0x8000_4001);

/// The symbolic name of an HRESULT, including the few only user mode
/// produces; `"HRESULT"` if unknown.
#[must_use]
pub fn hresult_name(code: HResult) -> &'static str {
    match code {
        HRESULT_FILE_NOT_FOUND => "ERROR_FILE_NOT_FOUND",
        E_FAIL => "E_FAIL",
        E_UNEXPECTED => "E_UNEXPECTED",
        E_NOTIMPL => "E_NOTIMPL",
        other => other.name(),
    }
}

/// The HRESULT `DeviceIoControl` reports for a call the driver completed
/// with `status` (`HRESULT_FROM_WIN32` of the Win32 error the I/O manager
/// maps it to, or `HRESULT_FROM_NT` for codes without a mapping here).
#[must_use]
pub const fn hresult_from_ntstatus(status: u32) -> HResult {
    match status {
        STATUS_INVALID_DEVICE_REQUEST => HResult::E_INVALID_FUNCTION,
        STATUS_BUFFER_TOO_SMALL => HResult::E_NOT_SUFFICIENT_BUFFER,
        0xC000_0022 => HResult::E_ACCESSDENIED, // STATUS_ACCESS_DENIED
        s => HResult(s | 0x1000_0000),
    }
}

/// `HRESULT_FROM_WIN32`.
#[must_use]
pub const fn hresult_from_win32(error: u32) -> HResult {
    if error == 0 || error & 0x8000_0000 != 0 {
        HResult(error)
    } else {
        HResult(0x8007_0000 | (error & 0xFFFF))
    }
}

/// Why a call did not reach the DSM, or failed as a whole.
#[derive(Debug)]
pub enum TransportError {
    /// The control device (or socket) does not exist: the driver is not
    /// installed or not started, or the simulator is not serving there.
    NotFound(String),
    /// The control device refused to open: it is for Administrators and
    /// SYSTEM only.
    AccessDenied(String),
    /// The call was made and failed as a whole (for instance
    /// `E_INVALID_FUNCTION` for an IOCTL the driver does not know).
    CallFailed(HResult),
    /// An I/O error on the device or socket.
    Io(std::io::Error),
    /// The socket's reply frame is malformed.
    BadFrame(WireError),
    /// This platform has no such transport.
    Unsupported(&'static str),
}

impl TransportError {
    /// The HRESULT that stands for this error.
    #[must_use]
    pub fn hresult(&self) -> HResult {
        match self {
            Self::NotFound(_) => HRESULT_FILE_NOT_FOUND,
            Self::AccessDenied(_) => HResult::E_ACCESSDENIED,
            Self::CallFailed(code) => *code,
            Self::Io(e) => e.raw_os_error().and_then(|c| u32::try_from(c).ok()).map_or(E_FAIL, io_hresult),
            Self::BadFrame(_) => E_UNEXPECTED,
            Self::Unsupported(_) => E_NOTIMPL,
        }
    }
}

/// The HRESULT of an OS error code: Win32 errors on Windows; elsewhere the
/// errno does not map, so `E_FAIL`.
fn io_hresult(code: u32) -> HResult {
    if cfg!(windows) { hresult_from_win32(code) } else { E_FAIL }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(what) => write!(f, "{what} not found (is the rsdsm driver or simulator running?)"),
            Self::AccessDenied(what) => write!(f, "access to {what} denied (run as Administrator)"),
            Self::CallFailed(code) => write!(f, "the call failed: {}", code.message()),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::BadFrame(e) => write!(f, "malformed reply frame: {e}"),
            Self::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::BadFrame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(unix)]
pub use unix::UnixSocket;

#[cfg(unix)]
mod unix {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::time::Duration;

    use rsdsm_engine::wire::{FrameHeader, ReplyHeader, STATUS_SUCCESS, encode_request_frame};

    use super::{Transport, TransportError, hresult_from_ntstatus};

    /// A simulated DSM on a Unix stream socket (`rsdsm-sim serve`).
    ///
    /// One connection carries any number of calls in turn; it is opened on
    /// the first call and dropped after an I/O error, so the next call
    /// reconnects. A failed call is never retried (it may have been
    /// applied).
    #[derive(Debug)]
    pub struct UnixSocket {
        path: PathBuf,
        timeout: Option<Duration>,
        stream: Mutex<Option<UnixStream>>,
    }

    impl UnixSocket {
        /// A transport to the socket at `path`; nothing is opened yet.
        #[must_use]
        pub fn new(path: impl Into<PathBuf>) -> Self {
            Self { path: path.into(), timeout: Some(Duration::from_secs(30)), stream: Mutex::new(None) }
        }

        /// Connects now, so that a missing server is reported at once.
        ///
        /// # Errors
        /// [`TransportError::NotFound`] if nothing listens at `path`,
        /// [`TransportError::AccessDenied`], or another I/O error.
        pub fn connect(path: impl Into<PathBuf>) -> Result<Self, TransportError> {
            let socket = Self::new(path);
            let stream = socket.open()?;
            *socket.stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stream);
            Ok(socket)
        }

        /// Sets the read/write timeout of each call (`None`: wait forever).
        #[must_use]
        pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
            self.timeout = timeout;
            self
        }

        /// The socket path.
        #[must_use]
        pub fn path(&self) -> &Path {
            &self.path
        }

        fn open(&self) -> Result<UnixStream, TransportError> {
            let what = || format!("socket {}", self.path.display());
            let stream = UnixStream::connect(&self.path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    TransportError::NotFound(what())
                }
                std::io::ErrorKind::PermissionDenied => TransportError::AccessDenied(what()),
                _ => TransportError::Io(e),
            })?;
            stream.set_read_timeout(self.timeout)?;
            stream.set_write_timeout(self.timeout)?;
            Ok(stream)
        }

        fn exchange(
            stream: &mut UnixStream,
            frame: &[u8],
            output_capacity: usize,
        ) -> Result<Vec<u8>, TransportError> {
            stream.write_all(frame)?;
            let mut head = [0u8; ReplyHeader::SIZE];
            stream.read_exact(&mut head)?;
            let header = ReplyHeader::decode(&head, output_capacity).map_err(TransportError::BadFrame)?;
            let mut output = vec![0u8; header.len()];
            stream.read_exact(&mut output)?;
            if header.status == STATUS_SUCCESS {
                Ok(output)
            } else {
                Err(TransportError::CallFailed(hresult_from_ntstatus(header.status)))
            }
        }
    }

    impl Transport for UnixSocket {
        fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError> {
            let mut frame = vec![0u8; FrameHeader::SIZE + input.len()];
            let n = encode_request_frame(ioctl, input, output_capacity, &mut frame)
                .map_err(TransportError::BadFrame)?;
            frame.truncate(n);
            let mut guard = self.stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let stream = match guard.take() {
                Some(stream) => stream,
                None => self.open()?,
            };
            let mut stream = stream;
            match Self::exchange(&mut stream, &frame, output_capacity) {
                Ok(output) => {
                    *guard = Some(stream);
                    Ok(output)
                }
                // The call completed as a failure: the connection is in step.
                Err(e @ TransportError::CallFailed(_)) => {
                    *guard = Some(stream);
                    Err(e)
                }
                // Anything else: the stream's position is unknown; drop it.
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(windows)]
pub use windows::DeviceIoControl;

#[cfg(windows)]
mod windows {
    use std::os::windows::ffi::OsStrExt;

    use rsdsm_engine::wire::USER_DEVICE_PATH;
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, GENERIC_READ,
        GENERIC_WRITE, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
    };
    use windows_sys::Win32::System::IO::DeviceIoControl as Win32DeviceIoControl;

    use super::{Transport, TransportError, hresult_from_win32};

    /// The installed driver's control device, `\\.\RsdsmControl`, opened
    /// for reading and writing (the device admits Administrators and
    /// SYSTEM only).
    #[derive(Debug)]
    pub struct DeviceIoControl {
        handle: HANDLE,
    }

    // SAFETY: a file handle may be used from any thread; DeviceIoControl
    // calls on one handle are independent (synchronous I/O, no shared
    // buffers).
    unsafe impl Send for DeviceIoControl {}
    // SAFETY: as above; `&self` only issues DeviceIoControl calls.
    unsafe impl Sync for DeviceIoControl {}

    impl DeviceIoControl {
        /// Opens the control device.
        ///
        /// # Errors
        /// [`TransportError::NotFound`] if the driver is not loaded,
        /// [`TransportError::AccessDenied`] without Administrator rights,
        /// another Win32 error as [`TransportError::CallFailed`].
        pub fn open() -> Result<Self, TransportError> {
            Self::open_path(USER_DEVICE_PATH)
        }

        /// Opens a device by its Win32 path.
        ///
        /// # Errors
        /// As [`open`](Self::open).
        pub fn open_path(path: &str) -> Result<Self, TransportError> {
            let wide: Vec<u16> = std::ffi::OsStr::new(path).encode_wide().chain(Some(0)).collect();
            // SAFETY: `wide` is NUL-terminated and outlives the call; the
            // other pointer arguments are null, which CreateFileW allows.
            let handle = unsafe {
                CreateFileW(
                    wide.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    FILE_SHARE_READ | FILE_SHARE_WRITE,
                    std::ptr::null(),
                    OPEN_EXISTING,
                    FILE_ATTRIBUTE_NORMAL,
                    std::ptr::null_mut(),
                )
            };
            if handle == INVALID_HANDLE_VALUE {
                // SAFETY: no preconditions.
                let error = unsafe { GetLastError() };
                return Err(match error {
                    ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => {
                        TransportError::NotFound(format!("control device {path}"))
                    }
                    ERROR_ACCESS_DENIED => TransportError::AccessDenied(format!("control device {path}")),
                    other => TransportError::CallFailed(hresult_from_win32(other)),
                });
            }
            Ok(Self { handle })
        }
    }

    impl Drop for DeviceIoControl {
        fn drop(&mut self) {
            // SAFETY: `handle` was returned by CreateFileW and is closed once.
            unsafe {
                CloseHandle(self.handle);
            }
        }
    }

    impl Transport for DeviceIoControl {
        fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError> {
            let mut output = vec![0u8; output_capacity];
            let in_len =
                u32::try_from(input.len()).map_err(|_| TransportError::Unsupported("input too long"))?;
            let out_len =
                u32::try_from(output.len()).map_err(|_| TransportError::Unsupported("output too long"))?;
            let mut returned = 0u32;
            // SAFETY: the buffers are valid for their stated lengths for the
            // whole (synchronous) call; `returned` is a valid out pointer;
            // no OVERLAPPED is used.
            let ok = unsafe {
                Win32DeviceIoControl(
                    self.handle,
                    ioctl,
                    input.as_ptr().cast(),
                    in_len,
                    output.as_mut_ptr().cast(),
                    out_len,
                    &raw mut returned,
                    std::ptr::null_mut(),
                )
            };
            if ok == 0 {
                // SAFETY: no preconditions.
                let error = unsafe { GetLastError() };
                return Err(if error == ERROR_ACCESS_DENIED {
                    TransportError::AccessDenied("control device".to_owned())
                } else {
                    TransportError::CallFailed(hresult_from_win32(error))
                });
            }
            output.truncate(usize::try_from(returned).unwrap_or(0).min(output_capacity));
            Ok(output)
        }
    }
}
