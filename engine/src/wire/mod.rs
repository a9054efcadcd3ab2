//! The IOCTL protocol the driver and user mode speak (DESIGN §4).
//!
//! One codec, used by both sides, so the two can never disagree on a layout.
//! Every message is a 16-byte [header](HEADER_SIZE) followed by a body whose
//! layout depends on the [`Opcode`]; all integers are little-endian.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `b"RSDM"` ([`MAGIC`]) |
//! | 4 | 2 | protocol version ([`PROTOCOL_VERSION`]) |
//! | 6 | 2 | opcode ([`Opcode`]) |
//! | 8 | 4 | `total_size`: length of the whole message, header included |
//! | 12 | 4 | status: requests 0 (reserved); replies the `HRESULT` |
//!
//! A reply whose status has the severity bit set carries no body.
//!
//! Decoding works on `&[u8]` without copying or allocating: it checks every
//! length before reading, never trusts a count, bounds every list
//! ([`MAX_PATHS`], [`MAX_LUNS`]) and rejects trailing bytes, so that a
//! message has exactly one encoding. List bodies are validated entirely at
//! decode time and then read lazily through [`RecordList`]. Encoding never
//! writes past the output buffer; if the buffer is too small it writes
//! nothing and reports the size it needs.
//!
//! ```
//! use rsdsm_engine::wire::{LunId, Opcode, Reply, Request, MAX_REPLY_SIZE, MAX_REQUEST_SIZE};
//!
//! // User mode: build a request.
//! let mut buf = [0u8; MAX_REQUEST_SIZE];
//! let len = Request::GetPolicy { lun: LunId(3) }.encode(&mut buf)?;
//! assert_eq!(len, 24);
//!
//! // Driver: decode it against the IOCTL it arrived with.
//! let opcode = Opcode::from_ioctl(Opcode::GetPolicy.ioctl()).unwrap();
//! let request = Request::decode_for(opcode, &buf[..len])?;
//! assert_eq!(request, Request::GetPolicy { lun: LunId(3) });
//!
//! // Driver: the LUN is gone; answer with its HRESULT.
//! let mut out = [0u8; MAX_REPLY_SIZE];
//! let n = rsdsm_engine::wire::encode_error(opcode, rsdsm_engine::HResult::VDS_E_OBJECT_DELETED, &mut out)?;
//!
//! // User mode: "the DSM said no" is not "the bytes are malformed".
//! let answer = Reply::decode(Opcode::GetPolicy, &out[..n])?;
//! assert_eq!(answer, Err(rsdsm_engine::HResult::VDS_E_OBJECT_DELETED));
//! # Ok::<(), rsdsm_engine::wire::WireError>(())
//! ```
//!
//! Over a socket (the simulated DSM) each call travels in a [frame](FrameHeader).

mod codec;
mod frame;
mod records;
mod reply;
mod request;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::{Error, HResult, LoadBalancePolicy, PathPolicy};

pub use frame::{
    FRAME_MAGIC, FrameHeader, ReplyHeader, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_SUCCESS, decode_reply_frame, decode_request_frame, encode_reply_frame, encode_request_frame,
};
pub use records::{
    LUN_FLAG_REMOVED, LunEntry, PATH_FLAG_HELD_DOWN, PATH_FLAG_PREFERRED, PATH_FLAG_PRIMARY,
    PATH_FLAG_USABLE, PathStatisticsEntry, Record, RecordList, Records, RecordsIter,
};
pub use reply::{ListRecord, ListWriter, Reply, VersionInfo, encode_error};
pub use request::{Request, SET_POLICY_CHECK_GENERATION};

/// A list of `VDS_PATH_POLICY` records, as `SetPolicy` and `GetPolicy` carry it.
pub type PathPolicies<'a> = Records<'a, PathPolicy>;

/// `CTL_CODE` of `winioctl.h`: how Windows packs an IOCTL code.
///
/// ```
/// use rsdsm_engine::wire::{ctl_code, FILE_DEVICE_RSDSM, FILE_WRITE_ACCESS, METHOD_BUFFERED};
/// assert_eq!(ctl_code(FILE_DEVICE_RSDSM, 0x804, METHOD_BUFFERED, FILE_WRITE_ACCESS), 0x8A5D_A010);
/// ```
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `METHOD_BUFFERED`: the I/O manager copies both buffers; the only method
/// the protocol uses, so the driver never touches user addresses.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`: required by every query.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`: required by every change.
pub const FILE_WRITE_ACCESS: u32 = 2;
/// rsdsm's device type: vendor range (≥ 0x8000), so it clashes with no
/// Microsoft-defined IOCTL.
pub const FILE_DEVICE_RSDSM: u32 = 0x8A5D;
/// First IOCTL function number; vendor functions start at 0x800.
pub const FUNCTION_BASE: u32 = 0x800;

/// NT name of the control device the driver creates.
pub const DEVICE_NAME: &str = "\\Device\\RsdsmControl";
/// Symbolic link the driver creates so user mode can open the device.
pub const DOS_DEVICE_NAME: &str = "\\DosDevices\\RsdsmControl";
/// The path user mode passes to `CreateFileW`.
pub const USER_DEVICE_PATH: &str = "\\\\.\\RsdsmControl";

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"RSDM";
/// The protocol version this codec speaks; any other is rejected.
pub const PROTOCOL_VERSION: u16 = 1;
/// Size of the message header.
pub const HEADER_SIZE: usize = 16;
/// Most paths in one list (the engine's largest LUN).
pub const MAX_PATHS: u32 = 64;
/// Most LUNs in a `ListLuns` reply.
pub const MAX_LUNS: u32 = 256;

/// Largest valid request: `SetPolicy` with [`MAX_PATHS`] entries.
pub const MAX_REQUEST_SIZE: usize = Opcode::SetPolicy.max_request_size();
/// Largest valid reply: `GetStatistics` with [`MAX_PATHS`] entries.
pub const MAX_REPLY_SIZE: usize = Opcode::GetStatistics.max_reply_size();

/// What a request asks for; the number travels in the header and selects the
/// IOCTL code (function `0x800 + opcode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Opcode {
    /// The protocol and driver version and the driver's limits.
    GetVersion = 1,
    /// Every LUN the DSM manages.
    ListLuns = 2,
    /// A LUN's policy (`GetLoadBalancePolicy`).
    GetPolicy = 3,
    /// Change a LUN's policy (`SetLoadBalancePolicy`).
    SetPolicy = 4,
    /// A LUN's paths and their state (`GetPathInfo`).
    GetPathInfo = 5,
    /// A LUN's per-path statistics.
    GetStatistics = 6,
    /// The DSM-wide policy for new LUNs.
    GetDefaultPolicy = 7,
    /// Change the DSM-wide policy for new LUNs.
    SetDefaultPolicy = 8,
    /// The policies a LUN supports (`GetSupportedLbPolicies`).
    GetSupportedPolicies = 9,
}

/// `IOCTL_RSDSM_GET_VERSION`.
pub const IOCTL_RSDSM_GET_VERSION: u32 = Opcode::GetVersion.ioctl();
/// `IOCTL_RSDSM_LIST_LUNS`.
pub const IOCTL_RSDSM_LIST_LUNS: u32 = Opcode::ListLuns.ioctl();
/// `IOCTL_RSDSM_GET_POLICY`.
pub const IOCTL_RSDSM_GET_POLICY: u32 = Opcode::GetPolicy.ioctl();
/// `IOCTL_RSDSM_SET_POLICY`.
pub const IOCTL_RSDSM_SET_POLICY: u32 = Opcode::SetPolicy.ioctl();
/// `IOCTL_RSDSM_GET_PATH_INFO`.
pub const IOCTL_RSDSM_GET_PATH_INFO: u32 = Opcode::GetPathInfo.ioctl();
/// `IOCTL_RSDSM_GET_STATISTICS`.
pub const IOCTL_RSDSM_GET_STATISTICS: u32 = Opcode::GetStatistics.ioctl();
/// `IOCTL_RSDSM_GET_DEFAULT_POLICY`.
pub const IOCTL_RSDSM_GET_DEFAULT_POLICY: u32 = Opcode::GetDefaultPolicy.ioctl();
/// `IOCTL_RSDSM_SET_DEFAULT_POLICY`.
pub const IOCTL_RSDSM_SET_DEFAULT_POLICY: u32 = Opcode::SetDefaultPolicy.ioctl();
/// `IOCTL_RSDSM_GET_SUPPORTED_POLICIES`.
pub const IOCTL_RSDSM_GET_SUPPORTED_POLICIES: u32 = Opcode::GetSupportedPolicies.ioctl();

impl Opcode {
    /// Every opcode, in numeric order.
    pub const ALL: [Self; 9] = [
        Self::GetVersion,
        Self::ListLuns,
        Self::GetPolicy,
        Self::SetPolicy,
        Self::GetPathInfo,
        Self::GetStatistics,
        Self::GetDefaultPolicy,
        Self::SetDefaultPolicy,
        Self::GetSupportedPolicies,
    ];

    /// The number carried in the header.
    #[must_use]
    pub const fn raw(self) -> u16 {
        self as u16
    }

    /// The opcode for a header number, `None` if unknown.
    #[must_use]
    pub const fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            1 => Some(Self::GetVersion),
            2 => Some(Self::ListLuns),
            3 => Some(Self::GetPolicy),
            4 => Some(Self::SetPolicy),
            5 => Some(Self::GetPathInfo),
            6 => Some(Self::GetStatistics),
            7 => Some(Self::GetDefaultPolicy),
            8 => Some(Self::SetDefaultPolicy),
            9 => Some(Self::GetSupportedPolicies),
            _ => None,
        }
    }

    /// `true` for opcodes that change state and so need write access.
    #[must_use]
    pub const fn is_change(self) -> bool {
        matches!(self, Self::SetPolicy | Self::SetDefaultPolicy)
    }

    /// The access the I/O manager checks against the handle before the
    /// driver sees the request.
    #[must_use]
    pub const fn required_access(self) -> u32 {
        if self.is_change() { FILE_WRITE_ACCESS } else { FILE_READ_ACCESS }
    }

    /// The IOCTL code of this opcode.
    #[must_use]
    pub const fn ioctl(self) -> u32 {
        ctl_code(FILE_DEVICE_RSDSM, FUNCTION_BASE + self as u32, METHOD_BUFFERED, self.required_access())
    }

    /// The opcode of an IOCTL code. All 32 bits must match, so a code with
    /// another method or weaker access is not mistaken for ours.
    #[must_use]
    pub const fn from_ioctl(code: u32) -> Option<Self> {
        match code {
            IOCTL_RSDSM_GET_VERSION => Some(Self::GetVersion),
            IOCTL_RSDSM_LIST_LUNS => Some(Self::ListLuns),
            IOCTL_RSDSM_GET_POLICY => Some(Self::GetPolicy),
            IOCTL_RSDSM_SET_POLICY => Some(Self::SetPolicy),
            IOCTL_RSDSM_GET_PATH_INFO => Some(Self::GetPathInfo),
            IOCTL_RSDSM_GET_STATISTICS => Some(Self::GetStatistics),
            IOCTL_RSDSM_GET_DEFAULT_POLICY => Some(Self::GetDefaultPolicy),
            IOCTL_RSDSM_SET_DEFAULT_POLICY => Some(Self::SetDefaultPolicy),
            IOCTL_RSDSM_GET_SUPPORTED_POLICIES => Some(Self::GetSupportedPolicies),
            _ => None,
        }
    }

    /// The largest valid request of this opcode, header included.
    #[must_use]
    pub const fn max_request_size(self) -> usize {
        HEADER_SIZE + request::max_body(self)
    }

    /// The largest valid success reply of this opcode, header included, so
    /// user mode can size its output buffer per call.
    #[must_use]
    pub const fn max_reply_size(self) -> usize {
        HEADER_SIZE + reply::max_body(self)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The DSM-assigned handle of a LUN, as `ListLuns` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LunId(pub u64);

/// A policy as it travels: the raw `(VDS number, vendor sub-policy)` pair.
///
/// The codec carries any pair, so that an unknown policy is rejected by the
/// engine's validation with `E_INVALIDARG`, exactly like `IVdsLunMpio`, and
/// not as a malformed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RawPolicy {
    /// `VDS_LOADBALANCE_POLICY_ENUM` value.
    pub number: u32,
    /// Vendor sub-policy id (0 for the standard policies).
    pub vendor: u32,
}

impl RawPolicy {
    /// The policy this pair names.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPolicy`](crate::Invalid::UnknownPolicy))
    /// as [`LoadBalancePolicy::from_vds`].
    pub const fn policy(self) -> Result<LoadBalancePolicy, Error> {
        LoadBalancePolicy::from_vds(self.number, self.vendor)
    }
}

impl From<LoadBalancePolicy> for RawPolicy {
    fn from(policy: LoadBalancePolicy) -> Self {
        Self { number: policy.vds_number(), vendor: policy.vendor_id() }
    }
}

/// Why bytes are not a valid message (decoding) or a value cannot be
/// encoded. Each maps to the HRESULT the driver answers with
/// ([`WireError::hresult`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The message ends before a field: `needed` bytes are needed, only
    /// `available` are there.
    Truncated {
        /// Bytes needed up to the end of the missing field.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// The header's protocol version is not [`PROTOCOL_VERSION`].
    UnsupportedVersion(u16),
    /// The header's opcode is not an [`Opcode`].
    UnknownOpcode(u16),
    /// The header's `total_size` is not the length of the buffer.
    SizeMismatch {
        /// `total_size` from the header.
        declared: u32,
        /// The buffer's length.
        actual: usize,
    },
    /// A reserved field or an unused optional field is not zero.
    ReservedNotZero,
    /// A flags field has an undefined bit set.
    BadFlags,
    /// A BOOL field is neither 0 nor 1.
    BadBool,
    /// A field holds a value outside its domain: an unknown ALUA or health
    /// code, a slot beyond [`MAX_PATHS`], a count larger than its total, a
    /// success status other than `S_OK`, or a success code passed to
    /// [`encode_error`].
    BadValue,
    /// A list count exceeds its bound.
    CountTooLarge {
        /// The count.
        count: u32,
        /// The bound.
        max: u32,
    },
    /// Bytes are left over after the last field or list entry.
    LengthMismatch,
    /// A message carries another opcode than the one it answers or the
    /// IOCTL it arrived with.
    OpcodeMismatch {
        /// The opcode expected.
        expected: Opcode,
        /// The opcode number found in the header.
        found: u16,
    },
    /// The output buffer is too small; nothing was written.
    OutputTooSmall {
        /// Bytes the message needs.
        needed: usize,
    },
}

impl WireError {
    /// The HRESULT the driver answers with when a request fails to decode.
    #[must_use]
    pub const fn hresult(self) -> HResult {
        match self {
            Self::OutputTooSmall { .. } => HResult::E_NOT_SUFFICIENT_BUFFER,
            Self::UnknownOpcode(_) => HResult::E_INVALID_FUNCTION,
            _ => HResult::E_INVALIDARG,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => {
                write!(f, "message truncated: {needed} bytes needed, {available} present")
            }
            Self::BadMagic => f.write_str("not an rsdsm message (bad magic)"),
            Self::UnsupportedVersion(v) => {
                write!(f, "unsupported protocol version {v} (expected {PROTOCOL_VERSION})")
            }
            Self::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            Self::SizeMismatch { declared, actual } => {
                write!(f, "header declares {declared} bytes but the message has {actual}")
            }
            Self::ReservedNotZero => f.write_str("a reserved field is not zero"),
            Self::BadFlags => f.write_str("undefined flag bits are set"),
            Self::BadBool => f.write_str("a BOOL field is neither 0 nor 1"),
            Self::BadValue => f.write_str("a field is out of range"),
            Self::CountTooLarge { count, max } => write!(f, "count {count} exceeds the limit {max}"),
            Self::LengthMismatch => f.write_str("trailing bytes after the last field"),
            Self::OpcodeMismatch { expected, found } => {
                write!(f, "expected opcode {} ({expected}), found {found}", expected.raw())
            }
            Self::OutputTooSmall { needed } => write!(f, "output buffer too small: {needed} bytes needed"),
        }
    }
}

impl core::error::Error for WireError {}

/// The size of `count` records of `T` behind a fixed part, for const sizes.
const fn list_size(fixed: usize, max: u32, record: usize) -> usize {
    fixed + max as usize * record
}
