//! Result codes: the HRESULTs of `IVdsLunMpio` and the engine's one error type.
//!
//! Every control operation of the engine fails with an [`Error`], and every
//! [`Error`] maps to exactly one HRESULT of the DESIGN §3 table, so the
//! driver can hand the code to user mode unchanged and the CLI can print it.

use core::fmt;

/// A Windows `HRESULT`, kept as its unsigned 32-bit pattern.
///
/// ```
/// use rsdsm_engine::HResult;
/// assert_eq!(HResult::E_INVALIDARG.0, 0x8007_0057);
/// assert_eq!(HResult::E_INVALIDARG.name(), "E_INVALIDARG");
/// assert!(HResult::S_OK.is_success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HResult(pub u32);

impl HResult {
    /// The operation succeeded.
    pub const S_OK: Self = Self(0x0000_0000);
    /// An argument was invalid.
    pub const E_INVALIDARG: Self = Self(0x8007_0057);
    /// Not enough room (here: a fixed table's capacity is exceeded).
    pub const E_OUTOFMEMORY: Self = Self(0x8007_000E);
    /// The LUN object is no longer present.
    pub const VDS_E_OBJECT_DELETED: Self = Self(0x8004_240B);
    /// The LUN is in a failed state (no usable path).
    pub const VDS_E_OBJECT_STATUS_FAILED: Self = Self(0x8004_2431);
    /// Another operation on the same object is in progress.
    pub const VDS_E_ANOTHER_CALL_IN_PROGRESS: Self = Self(0x8004_2404);
    /// The provider's cached or persisted view of the LUN is inconsistent.
    pub const VDS_E_PROVIDER_CACHE_CORRUPT: Self = Self(0x8004_241F);

    /// The handle lacks the access the request needs (the driver's check
    /// of `FILE_READ_ACCESS` / `FILE_WRITE_ACCESS`).
    pub const E_ACCESSDENIED: Self = Self(0x8007_0005);
    /// The output buffer is too small for the reply.
    pub const E_NOT_SUFFICIENT_BUFFER: Self = Self(0x8007_007A);
    /// The request names an operation the driver does not know.
    pub const E_INVALID_FUNCTION: Self = Self(0x8007_0001);

    /// Every code of the `SetLoadBalancePolicy` contract (DESIGN §3),
    /// success first.
    pub const ALL: [Self; 7] = [
        Self::S_OK,
        Self::E_INVALIDARG,
        Self::E_OUTOFMEMORY,
        Self::VDS_E_OBJECT_DELETED,
        Self::VDS_E_OBJECT_STATUS_FAILED,
        Self::VDS_E_ANOTHER_CALL_IN_PROGRESS,
        Self::VDS_E_PROVIDER_CACHE_CORRUPT,
    ];

    /// The codes only the IOCTL transport produces (access check, buffer
    /// sizing, unknown request). They have no [`Error`] of their own.
    pub const TRANSPORT: [Self; 3] =
        [Self::E_ACCESSDENIED, Self::E_NOT_SUFFICIENT_BUFFER, Self::E_INVALID_FUNCTION];

    /// `true` for success codes (severity bit clear), like `SUCCEEDED()`.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 & 0x8000_0000 == 0
    }

    /// The symbolic name, or `"HRESULT"` for a code this crate does not define.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::S_OK => "S_OK",
            Self::E_INVALIDARG => "E_INVALIDARG",
            Self::E_OUTOFMEMORY => "E_OUTOFMEMORY",
            Self::VDS_E_OBJECT_DELETED => "VDS_E_OBJECT_DELETED",
            Self::VDS_E_OBJECT_STATUS_FAILED => "VDS_E_OBJECT_STATUS_FAILED",
            Self::VDS_E_ANOTHER_CALL_IN_PROGRESS => "VDS_E_ANOTHER_CALL_IN_PROGRESS",
            Self::VDS_E_PROVIDER_CACHE_CORRUPT => "VDS_E_PROVIDER_CACHE_CORRUPT",
            Self::E_ACCESSDENIED => "E_ACCESSDENIED",
            Self::E_NOT_SUFFICIENT_BUFFER => "E_NOT_SUFFICIENT_BUFFER",
            Self::E_INVALID_FUNCTION => "E_INVALID_FUNCTION",
            _ => "HRESULT",
        }
    }

    /// A one-line description an administrator can act on.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::S_OK => "the operation succeeded",
            Self::E_INVALIDARG => "an argument is invalid",
            Self::E_OUTOFMEMORY => "the request exceeds a fixed table's capacity",
            Self::VDS_E_OBJECT_DELETED => "the LUN is no longer present",
            Self::VDS_E_OBJECT_STATUS_FAILED => "the LUN has failed: no path is usable",
            Self::VDS_E_ANOTHER_CALL_IN_PROGRESS => "another policy change on this LUN is in progress",
            Self::VDS_E_PROVIDER_CACHE_CORRUPT => {
                "the DSM's view of the LUN is inconsistent; refresh and retry"
            }
            Self::E_ACCESSDENIED => "access denied: the handle lacks the required read or write access",
            Self::E_NOT_SUFFICIENT_BUFFER => "the output buffer is too small",
            Self::E_INVALID_FUNCTION => "the driver does not support this request",
            _ => "unknown result code",
        }
    }

    /// The [`Error`] this code stands for; `Ok(())` for success codes.
    ///
    /// Failure codes without an [`Error`] of their own (unknown codes and the
    /// [`TRANSPORT`](Self::TRANSPORT) codes) become
    /// [`Error::ProviderCacheCorrupt`]: the peer is out of step with us.
    /// Callers that care about transport codes check for them first.
    ///
    /// # Errors
    /// The [`Error`] of a failure code.
    pub const fn to_result(self) -> Result<(), Error> {
        match self {
            c if c.is_success() => Ok(()),
            Self::E_INVALIDARG => Err(Error::InvalidArgument(Invalid::Unspecified)),
            Self::E_OUTOFMEMORY => Err(Error::OutOfMemory),
            Self::VDS_E_OBJECT_DELETED => Err(Error::ObjectDeleted),
            Self::VDS_E_OBJECT_STATUS_FAILED => Err(Error::ObjectStatusFailed),
            Self::VDS_E_ANOTHER_CALL_IN_PROGRESS => Err(Error::AnotherCallInProgress),
            _ => Err(Error::ProviderCacheCorrupt),
        }
    }
}

impl fmt::Display for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X} {}", self.0, self.name())
    }
}

/// Why an argument was rejected. All of these are `E_INVALIDARG`; the reason
/// is kept so that logs and tools can say exactly what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// The reason was not transmitted (a code decoded from the wire).
    Unspecified,
    /// The policy number is not one of `VDS_LOADBALANCE_POLICY_ENUM` 1..=7,
    /// or the vendor-specific sub-policy is unknown.
    UnknownPolicy,
    /// The path list does not name every path of the LUN exactly once.
    PathCountMismatch,
    /// A path id appears twice.
    DuplicatePath,
    /// A path id is not a path of this LUN.
    UnknownPath,
    /// The policy needs a primary path and none was given.
    NoPrimaryPath,
    /// Failover only allows exactly one primary path.
    TooManyPrimaryPaths,
    /// A weight is outside the range the policy accepts.
    WeightOutOfRange,
    /// A value that is not a valid access state, failback mode or setting.
    BadValue,
}

impl Invalid {
    /// A short description of the reason.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Unspecified => "invalid argument",
            Self::UnknownPolicy => "unknown load-balance policy",
            Self::PathCountMismatch => "the path list must name every path of the LUN exactly once",
            Self::DuplicatePath => "a path id is listed twice",
            Self::UnknownPath => "a path id is not a path of this LUN",
            Self::NoPrimaryPath => "the policy needs a primary path",
            Self::TooManyPrimaryPaths => "failover only allows exactly one primary path",
            Self::WeightOutOfRange => "a path weight is out of range",
            Self::BadValue => "a value is out of range",
        }
    }
}

/// The one error type of the engine's control operations.
///
/// ```
/// use rsdsm_engine::{Error, HResult, Invalid};
/// let e = Error::InvalidArgument(Invalid::DuplicatePath);
/// assert_eq!(e.hresult(), HResult::E_INVALIDARG);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// `E_INVALIDARG`, with the reason.
    InvalidArgument(Invalid),
    /// `E_OUTOFMEMORY`: a fixed-capacity table would overflow.
    OutOfMemory,
    /// `VDS_E_OBJECT_DELETED`: the LUN was removed, possibly during the call.
    ObjectDeleted,
    /// `VDS_E_OBJECT_STATUS_FAILED`: the LUN has no usable path.
    ObjectStatusFailed,
    /// `VDS_E_ANOTHER_CALL_IN_PROGRESS`: another set on this LUN is running.
    AnotherCallInProgress,
    /// `VDS_E_PROVIDER_CACHE_CORRUPT`: a generation or checksum mismatch.
    ProviderCacheCorrupt,
}

impl Error {
    /// The HRESULT user mode receives for this error.
    #[must_use]
    pub const fn hresult(self) -> HResult {
        match self {
            Self::InvalidArgument(_) => HResult::E_INVALIDARG,
            Self::OutOfMemory => HResult::E_OUTOFMEMORY,
            Self::ObjectDeleted => HResult::VDS_E_OBJECT_DELETED,
            Self::ObjectStatusFailed => HResult::VDS_E_OBJECT_STATUS_FAILED,
            Self::AnotherCallInProgress => HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS,
            Self::ProviderCacheCorrupt => HResult::VDS_E_PROVIDER_CACHE_CORRUPT,
        }
    }
}

impl From<Invalid> for Error {
    fn from(reason: Invalid) -> Self {
        Self::InvalidArgument(reason)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArgument(reason) => {
                write!(f, "{}: {}", self.hresult(), reason.message())
            }
            other => write!(f, "{}: {}", other.hresult(), other.hresult().message()),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_vds_documentation() {
        assert_eq!(HResult::S_OK.0, 0);
        assert_eq!(HResult::E_INVALIDARG.0, 0x8007_0057);
        assert_eq!(HResult::E_OUTOFMEMORY.0, 0x8007_000E);
        assert_eq!(HResult::VDS_E_OBJECT_DELETED.0, 0x8004_240B);
        assert_eq!(HResult::VDS_E_OBJECT_STATUS_FAILED.0, 0x8004_2431);
        assert_eq!(HResult::VDS_E_ANOTHER_CALL_IN_PROGRESS.0, 0x8004_2404);
        assert_eq!(HResult::VDS_E_PROVIDER_CACHE_CORRUPT.0, 0x8004_241F);
    }

    #[test]
    fn every_failure_code_round_trips_through_error() {
        for code in HResult::ALL {
            match code.to_result() {
                Ok(()) => assert_eq!(code, HResult::S_OK),
                Err(e) => assert_eq!(e.hresult(), code),
            }
            assert_ne!(code.name(), "HRESULT");
        }
        assert_eq!(HResult(0x8000_4005).to_result(), Err(Error::ProviderCacheCorrupt));
    }

    #[test]
    fn transport_codes_are_named_failures() {
        assert_eq!(HResult::E_ACCESSDENIED.0, 0x8007_0005);
        assert_eq!(HResult::E_NOT_SUFFICIENT_BUFFER.0, 0x8007_007A);
        assert_eq!(HResult::E_INVALID_FUNCTION.0, 0x8007_0001);
        for code in HResult::TRANSPORT {
            assert!(!code.is_success());
            assert!(!HResult::ALL.contains(&code));
            assert_ne!(code.name(), "HRESULT");
            assert_ne!(code.message(), "unknown result code");
        }
    }
}
