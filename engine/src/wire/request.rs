//! Requests: what user mode asks the driver.

use super::codec::{read_header, write_message};
use super::records::Record;
use super::{LunId, MAX_PATHS, Opcode, PathPolicies, RawPolicy, WireError, list_size};
use crate::PathPolicy;

/// `SetPolicy` flag: apply only if the LUN's configuration generation is
/// still `expected_generation` (`VDS_E_PROVIDER_CACHE_CORRUPT` otherwise).
pub const SET_POLICY_CHECK_GENERATION: u32 = 1 << 0;

/// Fixed part of the `SetPolicy` body, before the entries.
const SET_POLICY_FIXED: usize = 32;

/// The largest body of a request.
pub(super) const fn max_body(opcode: Opcode) -> usize {
    match opcode {
        Opcode::GetVersion | Opcode::ListLuns | Opcode::GetDefaultPolicy => 0,
        Opcode::GetPolicy
        | Opcode::GetPathInfo
        | Opcode::GetStatistics
        | Opcode::GetSupportedPolicies
        | Opcode::SetDefaultPolicy => 8,
        Opcode::SetPolicy => list_size(SET_POLICY_FIXED, MAX_PATHS, PathPolicy::SIZE),
    }
}

/// A request, one variant per [`Opcode`]. Bodies, offsets from the end of
/// the header:
///
/// * `GetVersion`, `ListLuns`, `GetDefaultPolicy`: empty.
/// * `GetPolicy`, `GetPathInfo`, `GetStatistics`, `GetSupportedPolicies`:
///   `lun: u64` at 0.
/// * `SetDefaultPolicy`: `policy: u32` at 0, `vendor: u32` at 4.
/// * `SetPolicy`:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | `lun` |
/// | 8 | 4 | `policy` |
/// | 12 | 4 | `vendor` |
/// | 16 | 8 | `expected_generation`, 0 unless checked |
/// | 24 | 4 | flags: [`SET_POLICY_CHECK_GENERATION`]; other bits 0 |
/// | 28 | 4 | `count`, at most [`MAX_PATHS`] |
/// | 32 | 24 × `count` | `VDS_PATH_POLICY` records ([`PathPolicy`]) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Protocol and driver version.
    GetVersion,
    /// Every LUN.
    ListLuns,
    /// A LUN's policy.
    GetPolicy {
        /// The LUN.
        lun: LunId,
    },
    /// `SetLoadBalancePolicy` on a LUN.
    SetPolicy {
        /// The LUN.
        lun: LunId,
        /// The new policy, validated by the engine, not the codec.
        policy: RawPolicy,
        /// Apply only if the LUN's generation is still this one.
        expected_generation: Option<u64>,
        /// Every path of the LUN with its settings.
        paths: PathPolicies<'a>,
    },
    /// A LUN's paths.
    GetPathInfo {
        /// The LUN.
        lun: LunId,
    },
    /// A LUN's per-path statistics.
    GetStatistics {
        /// The LUN.
        lun: LunId,
    },
    /// The DSM-wide default policy.
    GetDefaultPolicy,
    /// Change the DSM-wide default policy.
    SetDefaultPolicy {
        /// The new default.
        policy: RawPolicy,
    },
    /// The policies a LUN supports.
    GetSupportedPolicies {
        /// The LUN.
        lun: LunId,
    },
}

impl<'a> Request<'a> {
    /// The opcode of this request.
    #[must_use]
    pub const fn opcode(&self) -> Opcode {
        match self {
            Self::GetVersion => Opcode::GetVersion,
            Self::ListLuns => Opcode::ListLuns,
            Self::GetPolicy { .. } => Opcode::GetPolicy,
            Self::SetPolicy { .. } => Opcode::SetPolicy,
            Self::GetPathInfo { .. } => Opcode::GetPathInfo,
            Self::GetStatistics { .. } => Opcode::GetStatistics,
            Self::GetDefaultPolicy => Opcode::GetDefaultPolicy,
            Self::SetDefaultPolicy { .. } => Opcode::SetDefaultPolicy,
            Self::GetSupportedPolicies { .. } => Opcode::GetSupportedPolicies,
        }
    }

    /// Decodes a whole request; `buf` must be exactly the message.
    ///
    /// # Errors
    /// The first [`WireError`] found; nothing is trusted before it is checked.
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        let (header, mut r) = read_header(buf)?;
        let opcode = Opcode::from_raw(header.opcode).ok_or(WireError::UnknownOpcode(header.opcode))?;
        if header.status != 0 {
            return Err(WireError::ReservedNotZero);
        }
        let request = match opcode {
            Opcode::GetVersion => Self::GetVersion,
            Opcode::ListLuns => Self::ListLuns,
            Opcode::GetDefaultPolicy => Self::GetDefaultPolicy,
            Opcode::GetPolicy => Self::GetPolicy { lun: LunId(r.u64()?) },
            Opcode::GetPathInfo => Self::GetPathInfo { lun: LunId(r.u64()?) },
            Opcode::GetStatistics => Self::GetStatistics { lun: LunId(r.u64()?) },
            Opcode::GetSupportedPolicies => Self::GetSupportedPolicies { lun: LunId(r.u64()?) },
            Opcode::SetDefaultPolicy => Self::SetDefaultPolicy { policy: r.policy()? },
            Opcode::SetPolicy => {
                let lun = LunId(r.u64()?);
                let policy = r.policy()?;
                let generation = r.u64()?;
                let flags = r.u32()?;
                if flags & !SET_POLICY_CHECK_GENERATION != 0 {
                    return Err(WireError::BadFlags);
                }
                let expected_generation = if flags & SET_POLICY_CHECK_GENERATION != 0 {
                    Some(generation)
                } else if generation == 0 {
                    None
                } else {
                    return Err(WireError::ReservedNotZero);
                };
                let count = r.u32()?;
                let paths = PathPolicies::Encoded(r.list(count, MAX_PATHS)?);
                Self::SetPolicy { lun, policy, expected_generation, paths }
            }
        };
        r.finish()?;
        Ok(request)
    }

    /// Decodes a request that arrived with the IOCTL of `opcode`: the header
    /// must name the same opcode, so a request cannot borrow the access
    /// rights of another IOCTL.
    ///
    /// # Errors
    /// [`WireError::OpcodeMismatch`], or any error of [`decode`](Self::decode).
    pub fn decode_for(opcode: Opcode, buf: &'a [u8]) -> Result<Self, WireError> {
        let request = Self::decode(buf)?;
        if request.opcode() == opcode {
            Ok(request)
        } else {
            Err(WireError::OpcodeMismatch { expected: opcode, found: request.opcode().raw() })
        }
    }

    /// The encoded length, header included.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        super::HEADER_SIZE.saturating_add(self.body_len())
    }

    const fn body_len(&self) -> usize {
        match self {
            Self::SetPolicy { paths, .. } => SET_POLICY_FIXED.saturating_add(paths.encoded_len()),
            other => max_body(other.opcode()),
        }
    }

    /// Encodes the request into `out` and returns the bytes written.
    ///
    /// # Errors
    /// [`WireError::CountTooLarge`] for more than [`MAX_PATHS`] paths;
    /// [`WireError::OutputTooSmall`] if `out` is shorter than
    /// [`encoded_len`](Self::encoded_len). Either way nothing is written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let count = match self {
            Self::SetPolicy { paths, .. } => paths.count(MAX_PATHS)?,
            _ => 0,
        };
        write_message(self.opcode(), 0, self.body_len(), out, |w| match self {
            Self::GetVersion | Self::ListLuns | Self::GetDefaultPolicy => {}
            Self::GetPolicy { lun }
            | Self::GetPathInfo { lun }
            | Self::GetStatistics { lun }
            | Self::GetSupportedPolicies { lun } => w.u64(lun.0),
            Self::SetDefaultPolicy { policy } => {
                w.u32(policy.number);
                w.u32(policy.vendor);
            }
            Self::SetPolicy { lun, policy, expected_generation, paths } => {
                w.u64(lun.0);
                w.u32(policy.number);
                w.u32(policy.vendor);
                w.u64(expected_generation.unwrap_or(0));
                w.u32(if expected_generation.is_some() { SET_POLICY_CHECK_GENERATION } else { 0 });
                w.u32(count);
                paths.write(w);
            }
        })
    }
}
