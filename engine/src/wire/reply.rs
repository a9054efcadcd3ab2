//! Replies: what the driver answers.

use core::marker::PhantomData;

use super::codec::{Writer, read_header, write_header, write_message};
use super::records::{LunEntry, PathStatisticsEntry, Record};
use super::{
    HEADER_SIZE, MAX_LUNS, MAX_PATHS, Opcode, PathPolicies, RawPolicy, Records, WireError, list_size,
};
use crate::{HResult, PathId, PathInfo, PathPolicy, PolicySnapshot, SupportedPolicies};

/// Fixed part of a `ListLuns`/`GetPathInfo`/`GetStatistics` body.
const LIST_FIXED: usize = 8;
/// Fixed part of a `GetPolicy` body, before the entries.
const POLICY_FIXED: usize = 40;
/// `GetVersion` body.
const VERSION_SIZE: usize = 20;

/// The largest success body of a reply.
pub(super) const fn max_body(opcode: Opcode) -> usize {
    match opcode {
        Opcode::GetVersion => VERSION_SIZE,
        Opcode::ListLuns => list_size(LIST_FIXED, MAX_LUNS, LunEntry::SIZE),
        Opcode::GetPolicy => list_size(POLICY_FIXED, MAX_PATHS, PathPolicy::SIZE),
        Opcode::GetPathInfo => list_size(LIST_FIXED, MAX_PATHS, PathInfo::SIZE),
        Opcode::GetStatistics => list_size(LIST_FIXED, MAX_PATHS, PathStatisticsEntry::SIZE),
        Opcode::SetPolicy | Opcode::GetDefaultPolicy | Opcode::GetSupportedPolicies => 8,
        Opcode::SetDefaultPolicy => 0,
    }
}

/// The `GetVersion` reply body, 20 bytes:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 2 | `protocol` |
/// | 2 | 2 | reserved, 0 |
/// | 4 | 2 | `driver_major` |
/// | 6 | 2 | `driver_minor` |
/// | 8 | 2 | `driver_patch` |
/// | 10 | 2 | reserved, 0 |
/// | 12 | 4 | `max_paths_per_lun` |
/// | 16 | 4 | `max_luns` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VersionInfo {
    /// Protocol version the driver speaks.
    pub protocol: u16,
    /// Driver major version.
    pub driver_major: u16,
    /// Driver minor version.
    pub driver_minor: u16,
    /// Driver patch version.
    pub driver_patch: u16,
    /// Most paths the driver keeps per LUN.
    pub max_paths_per_lun: u32,
    /// Most LUNs the driver manages.
    pub max_luns: u32,
}

/// A success reply, one variant per [`Opcode`]. Bodies, offsets from the
/// end of the header:
///
/// * `GetVersion`: [`VersionInfo`].
/// * `ListLuns`, `GetPathInfo`, `GetStatistics`: `count: u32` at 0,
///   reserved `u32` at 4, then `count` records from 8: [`LunEntry`] (48
///   bytes, at most [`MAX_LUNS`]), [`PathInfo`] (40 bytes) or
///   [`PathStatisticsEntry`] (336 bytes), at most [`MAX_PATHS`].
/// * `SetPolicy`: `generation: u64` at 0, the LUN's new generation.
/// * `GetDefaultPolicy`: `policy: u32` at 0, `vendor: u32` at 4.
/// * `SetDefaultPolicy`: empty.
/// * `GetSupportedPolicies`: `vds_flags: u32` at 0 (`VDS_LBF_*`),
///   `vendor_mask: u32` at 4 (bit n: vendor sub-policy n is supported).
/// * `GetPolicy`:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 4 | `policy` |
/// | 4 | 4 | `vendor` |
/// | 8 | 8 | `generation` |
/// | 16 | 4 | `preferred_present` (BOOL) |
/// | 20 | 4 | `count`, at most [`MAX_PATHS`] |
/// | 24 | 8 | preferred `source_id`, 0 if absent |
/// | 32 | 8 | preferred `path_id`, 0 if absent |
/// | 40 | 24 × `count` | `VDS_PATH_POLICY` records ([`PathPolicy`]) |
///
/// A failure is not a `Reply`: its status is the HRESULT and its body is
/// empty; see [`Reply::decode`] and [`encode_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// Protocol and driver version.
    GetVersion(VersionInfo),
    /// Every LUN.
    ListLuns(Records<'a, LunEntry>),
    /// A LUN's policy, as `GetLoadBalancePolicy`.
    GetPolicy {
        /// The policy in force.
        policy: RawPolicy,
        /// The configuration generation, for a conditional `SetPolicy`.
        generation: u64,
        /// The preferred path, if any.
        preferred: Option<PathId>,
        /// Every path with its settings.
        paths: PathPolicies<'a>,
    },
    /// The policy was applied.
    SetPolicy {
        /// The LUN's new configuration generation.
        generation: u64,
    },
    /// A LUN's paths.
    GetPathInfo(Records<'a, PathInfo>),
    /// A LUN's per-path statistics.
    GetStatistics(Records<'a, PathStatisticsEntry>),
    /// The DSM-wide default policy.
    GetDefaultPolicy(RawPolicy),
    /// The default policy was changed.
    SetDefaultPolicy,
    /// The policies a LUN supports.
    GetSupportedPolicies {
        /// Standard policies, as `VDS_LBF_*` flags.
        policies: SupportedPolicies,
        /// Bit n set: vendor sub-policy n is supported.
        vendor_mask: u32,
    },
}

impl<'a> Reply<'a> {
    /// The opcode this reply answers.
    #[must_use]
    pub const fn opcode(&self) -> Opcode {
        match self {
            Self::GetVersion(_) => Opcode::GetVersion,
            Self::ListLuns(_) => Opcode::ListLuns,
            Self::GetPolicy { .. } => Opcode::GetPolicy,
            Self::SetPolicy { .. } => Opcode::SetPolicy,
            Self::GetPathInfo(_) => Opcode::GetPathInfo,
            Self::GetStatistics(_) => Opcode::GetStatistics,
            Self::GetDefaultPolicy(_) => Opcode::GetDefaultPolicy,
            Self::SetDefaultPolicy => Opcode::SetDefaultPolicy,
            Self::GetSupportedPolicies { .. } => Opcode::GetSupportedPolicies,
        }
    }

    /// The `GetPolicy` reply for an engine snapshot.
    #[must_use]
    pub fn from_snapshot<const N: usize>(snapshot: &'a PolicySnapshot<N>) -> Self {
        Self::GetPolicy {
            policy: snapshot.policy.into(),
            generation: snapshot.generation,
            preferred: snapshot.preferred,
            paths: Records::Typed(&snapshot.paths),
        }
    }

    /// Decodes the reply to a request of `expected`; `buf` must be exactly
    /// the message.
    ///
    /// `Ok(Ok(reply))` is a success, `Ok(Err(hresult))` means the DSM
    /// answered with that failure code, and `Err(_)` means the bytes are not
    /// a valid reply to `expected`.
    ///
    /// # Errors
    /// The first [`WireError`] found, including
    /// [`WireError::OpcodeMismatch`] for a reply to another request.
    pub fn decode(expected: Opcode, buf: &'a [u8]) -> Result<Result<Self, HResult>, WireError> {
        let (header, mut r) = read_header(buf)?;
        if header.opcode != expected.raw() {
            return Err(WireError::OpcodeMismatch { expected, found: header.opcode });
        }
        let status = HResult(header.status);
        if !status.is_success() {
            r.finish()?;
            return Ok(Err(status));
        }
        if status != HResult::S_OK {
            return Err(WireError::BadValue);
        }
        let reply = match expected {
            Opcode::GetVersion => {
                let protocol = r.u16()?;
                r.reserved::<2>()?;
                let driver_major = r.u16()?;
                let driver_minor = r.u16()?;
                let driver_patch = r.u16()?;
                r.reserved::<2>()?;
                Self::GetVersion(VersionInfo {
                    protocol,
                    driver_major,
                    driver_minor,
                    driver_patch,
                    max_paths_per_lun: r.u32()?,
                    max_luns: r.u32()?,
                })
            }
            Opcode::ListLuns => {
                let count = r.u32()?;
                r.reserved::<4>()?;
                Self::ListLuns(Records::Encoded(r.list(count, MAX_LUNS)?))
            }
            Opcode::GetPolicy => {
                let policy = r.policy()?;
                let generation = r.u64()?;
                let present = r.bool32()?;
                let count = r.u32()?;
                let preferred = PathId::new(r.u64()?, r.u64()?);
                let preferred = if present {
                    Some(preferred)
                } else if preferred == PathId::default() {
                    None
                } else {
                    return Err(WireError::ReservedNotZero);
                };
                let paths = Records::Encoded(r.list(count, MAX_PATHS)?);
                Self::GetPolicy { policy, generation, preferred, paths }
            }
            Opcode::SetPolicy => Self::SetPolicy { generation: r.u64()? },
            Opcode::GetPathInfo => {
                let count = r.u32()?;
                r.reserved::<4>()?;
                Self::GetPathInfo(Records::Encoded(r.list(count, MAX_PATHS)?))
            }
            Opcode::GetStatistics => {
                let count = r.u32()?;
                r.reserved::<4>()?;
                Self::GetStatistics(Records::Encoded(r.list(count, MAX_PATHS)?))
            }
            Opcode::GetDefaultPolicy => Self::GetDefaultPolicy(r.policy()?),
            Opcode::SetDefaultPolicy => Self::SetDefaultPolicy,
            Opcode::GetSupportedPolicies => {
                let policies = SupportedPolicies::from_bits(r.u32()?).ok_or(WireError::BadFlags)?;
                Self::GetSupportedPolicies { policies, vendor_mask: r.u32()? }
            }
        };
        r.finish()?;
        Ok(Ok(reply))
    }

    /// The encoded length, header included.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        HEADER_SIZE.saturating_add(self.body_len())
    }

    const fn body_len(&self) -> usize {
        match self {
            Self::ListLuns(list) => LIST_FIXED.saturating_add(list.encoded_len()),
            Self::GetPathInfo(list) => LIST_FIXED.saturating_add(list.encoded_len()),
            Self::GetStatistics(list) => LIST_FIXED.saturating_add(list.encoded_len()),
            Self::GetPolicy { paths, .. } => POLICY_FIXED.saturating_add(paths.encoded_len()),
            other => max_body(other.opcode()),
        }
    }

    /// Encodes the reply (status `S_OK`) into `out` and returns the bytes
    /// written.
    ///
    /// # Errors
    /// [`WireError::CountTooLarge`] for a list above its bound;
    /// [`WireError::OutputTooSmall`] if `out` is shorter than
    /// [`encoded_len`](Self::encoded_len). Either way nothing is written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let count = match self {
            Self::ListLuns(list) => list.count(MAX_LUNS)?,
            Self::GetPathInfo(list) => list.count(MAX_PATHS)?,
            Self::GetStatistics(list) => list.count(MAX_PATHS)?,
            Self::GetPolicy { paths, .. } => paths.count(MAX_PATHS)?,
            _ => 0,
        };
        write_message(self.opcode(), HResult::S_OK.0, self.body_len(), out, |w| match self {
            Self::GetVersion(v) => {
                w.u16(v.protocol);
                w.zeros(2);
                w.u16(v.driver_major);
                w.u16(v.driver_minor);
                w.u16(v.driver_patch);
                w.zeros(2);
                w.u32(v.max_paths_per_lun);
                w.u32(v.max_luns);
            }
            Self::ListLuns(list) => write_list(w, count, list),
            Self::GetPathInfo(list) => write_list(w, count, list),
            Self::GetStatistics(list) => write_list(w, count, list),
            Self::GetPolicy { policy, generation, preferred, paths } => {
                w.u32(policy.number);
                w.u32(policy.vendor);
                w.u64(*generation);
                w.bool32(preferred.is_some());
                w.u32(count);
                let preferred = preferred.unwrap_or_default();
                w.u64(preferred.source_id);
                w.u64(preferred.path_id);
                paths.write(w);
            }
            Self::SetPolicy { generation } => w.u64(*generation),
            Self::GetDefaultPolicy(policy) => {
                w.u32(policy.number);
                w.u32(policy.vendor);
            }
            Self::SetDefaultPolicy => {}
            Self::GetSupportedPolicies { policies, vendor_mask } => {
                w.u32(policies.bits());
                w.u32(*vendor_mask);
            }
        })
    }
}

fn write_list<T: Record>(w: &mut Writer<'_>, count: u32, list: &Records<'_, T>) {
    w.u32(count);
    w.zeros(4);
    list.write(w);
}

/// Encodes a failure reply: the header with `status` and no body.
///
/// # Errors
/// [`WireError::BadValue`] if `status` is a success code (a success needs
/// its body: use [`Reply::encode`]); [`WireError::OutputTooSmall`] if `out`
/// is shorter than the 16-byte header, in which case nothing is written.
pub fn encode_error(opcode: Opcode, status: HResult, out: &mut [u8]) -> Result<usize, WireError> {
    if status.is_success() {
        return Err(WireError::BadValue);
    }
    write_message(opcode, status.0, 0, out, |_| {})
}

/// A record type that forms a whole list reply (`count, reserved,
/// entries`), so [`ListWriter`] knows its opcode and bound.
pub trait ListRecord: Record {
    /// The opcode whose reply is a list of these records.
    const OPCODE: Opcode;
    /// The bound on the count.
    const MAX: u32;
}

impl ListRecord for LunEntry {
    const OPCODE: Opcode = Opcode::ListLuns;
    const MAX: u32 = MAX_LUNS;
}

impl ListRecord for PathInfo {
    const OPCODE: Opcode = Opcode::GetPathInfo;
    const MAX: u32 = MAX_PATHS;
}

impl ListRecord for PathStatisticsEntry {
    const OPCODE: Opcode = Opcode::GetStatistics;
    const MAX: u32 = MAX_PATHS;
}

/// Writes a list reply record by record, straight into the output buffer.
///
/// For the driver: lists such as 64 statistics entries (21 KiB) or 256 LUNs
/// are too large to collect on a kernel stack first. [`new`](Self::new)
/// reserves room for `capacity` records up front, so pushes cannot run out
/// of space and a too-small buffer is reported before anything is written;
/// [`finish`](Self::finish) writes the header and count last, once the real
/// count is known (it may be below `capacity`, e.g. when a path vanished).
///
/// ```
/// use rsdsm_engine::wire::{ListWriter, Opcode, PathStatisticsEntry, Reply};
/// let mut out = [0u8; 1024];
/// let mut w = ListWriter::<PathStatisticsEntry>::new(&mut out, 2)?;
/// w.push(&PathStatisticsEntry::default())?;
/// let n = w.finish();
/// let Ok(Reply::GetStatistics(list)) = Reply::decode(Opcode::GetStatistics, &out[..n])? else { panic!() };
/// assert_eq!(list.len(), 1);
/// # Ok::<(), rsdsm_engine::wire::WireError>(())
/// ```
#[derive(Debug)]
pub struct ListWriter<'a, T> {
    out: &'a mut [u8],
    capacity: u32,
    count: u32,
    _record: PhantomData<fn(T)>,
}

impl<'a, T: ListRecord> ListWriter<'a, T> {
    /// Starts a list reply of at most `capacity` records in `out`.
    ///
    /// # Errors
    /// [`WireError::CountTooLarge`] if `capacity` exceeds the list's bound;
    /// [`WireError::OutputTooSmall`] (with the size for `capacity` records)
    /// if `out` cannot hold them. Nothing is written.
    pub fn new(out: &'a mut [u8], capacity: u32) -> Result<Self, WireError> {
        if capacity > T::MAX {
            return Err(WireError::CountTooLarge { count: capacity, max: T::MAX });
        }
        let needed = HEADER_SIZE + list_size(LIST_FIXED, capacity, T::SIZE);
        if out.len() < needed {
            return Err(WireError::OutputTooSmall { needed });
        }
        Ok(Self { out, capacity, count: 0, _record: PhantomData })
    }

    /// Records written so far.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.count
    }

    /// `true` if no record was written yet.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`WireError::CountTooLarge`] if `capacity` records were already
    /// written; nothing is written then.
    pub fn push(&mut self, record: &T) -> Result<(), WireError> {
        if self.count >= self.capacity {
            return Err(WireError::CountTooLarge { count: self.count.saturating_add(1), max: self.capacity });
        }
        let start = HEADER_SIZE + list_size(LIST_FIXED, self.count, T::SIZE);
        if let Some(dst) = self.out.get_mut(start..start + T::SIZE) {
            record.write(dst);
        }
        self.count += 1;
        Ok(())
    }

    /// Writes the header and count and returns the message length.
    #[must_use]
    pub fn finish(self) -> usize {
        let total = HEADER_SIZE + list_size(LIST_FIXED, self.count, T::SIZE);
        // At most MAX_LUNS × 48 or MAX_PATHS × 336 bytes: fits in u32.
        let total32 = u32::try_from(total).unwrap_or(u32::MAX);
        if let Some(dst) = self.out.get_mut(..HEADER_SIZE + LIST_FIXED) {
            let mut w = Writer::new(dst);
            write_header(&mut w, T::OPCODE, HResult::S_OK.0, total32);
            w.u32(self.count);
            w.zeros(4);
        }
        total
    }
}
