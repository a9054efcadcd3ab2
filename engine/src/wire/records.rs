//! Fixed-size list records and zero-copy views of lists of them.
//!
//! A list travels as `count` back-to-back records. Decoding validates every
//! record once and then hands out a [`RecordList`] over the original bytes;
//! its entries are decoded again on access, which cannot fail any more.
//! Encoders take [`Records::Typed`] slices of the engine's own types.

use core::fmt;
use core::marker::PhantomData;
use core::slice::ChunksExact;

use heapless::Vec;

use super::codec::{Reader, Writer};
use super::{LunId, MAX_PATHS, RawPolicy, WireError};
use crate::stats::HISTOGRAM_BUCKETS;
use crate::{AccessState, Error, Health, PathFlags, PathId, PathInfo, PathPolicy, PathSlot, PathStatistics};

mod sealed {
    use super::WireError;

    /// The codec of one record; sealed so the set of layouts stays ours.
    pub trait Sealed: Sized {
        /// Decodes and validates one record from exactly its size in bytes.
        fn read(bytes: &[u8]) -> Result<Self, WireError>;
        /// Encodes the record into exactly its size in bytes.
        fn write(&self, out: &mut [u8]);
    }
}

/// A fixed-size record that travels in lists.
pub trait Record: sealed::Sealed + Copy {
    /// Encoded size in bytes.
    const SIZE: usize;
}

/// `ListLuns` entry flag: the LUN has been removed (its handle is stale).
pub const LUN_FLAG_REMOVED: u32 = 1 << 0;
/// `GetPathInfo` entry flag: the path is primary.
pub const PATH_FLAG_PRIMARY: u8 = 1 << 0;
/// `GetPathInfo` entry flag: the path is the preferred path.
pub const PATH_FLAG_PREFERRED: u8 = 1 << 1;
/// `GetPathInfo` entry flag: the path is usable for I/O now.
pub const PATH_FLAG_USABLE: u8 = 1 << 2;
/// `GetPathInfo` entry flag: the path is held down after flapping and
/// `held_down_until` is valid.
pub const PATH_FLAG_HELD_DOWN: u8 = 1 << 3;
const PATH_FLAGS_ALL: u8 = PATH_FLAG_PRIMARY | PATH_FLAG_PREFERRED | PATH_FLAG_USABLE | PATH_FLAG_HELD_DOWN;

/// `VDS_PATH_POLICY`, 24 bytes:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | `source_id` |
/// | 8 | 8 | `path_id` |
/// | 16 | 4 | `primary` (BOOL, 0 or 1) |
/// | 20 | 4 | `weight` |
impl Record for PathPolicy {
    const SIZE: usize = 24;
}

impl sealed::Sealed for PathPolicy {
    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let path_id = PathId::new(r.u64()?, r.u64()?);
        let primary = r.bool32()?;
        let weight = r.u32()?;
        r.finish()?;
        Ok(Self { path_id, primary, weight })
    }

    fn write(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        w.u64(self.path_id.source_id);
        w.u64(self.path_id.path_id);
        w.bool32(self.primary);
        w.u32(self.weight);
    }
}

/// One LUN of a `ListLuns` reply, 48 bytes:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | `lun` |
/// | 8 | 4 | policy number |
/// | 12 | 4 | policy vendor sub-policy |
/// | 16 | 4 | `paths` |
/// | 20 | 4 | `usable_paths` (≤ `paths`) |
/// | 24 | 4 | flags ([`LUN_FLAG_REMOVED`]) |
/// | 28 | 4 | reserved, 0 |
/// | 32 | 16 | `identity` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LunEntry {
    /// The handle to pass to per-LUN requests.
    pub lun: LunId,
    /// The policy in force.
    pub policy: RawPolicy,
    /// Paths present.
    pub paths: u32,
    /// Paths usable for I/O now.
    pub usable_paths: u32,
    /// The LUN has been removed.
    pub removed: bool,
    /// The first 16 bytes of the LUN's stable designator, zero padded, so
    /// administrators can match the handle to a disk.
    pub identity: [u8; 16],
}

impl Record for LunEntry {
    const SIZE: usize = 48;
}

impl sealed::Sealed for LunEntry {
    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let lun = LunId(r.u64()?);
        let policy = RawPolicy { number: r.u32()?, vendor: r.u32()? };
        let paths = r.u32()?;
        let usable_paths = r.u32()?;
        if paths > MAX_PATHS || usable_paths > paths {
            return Err(WireError::BadValue);
        }
        let flags = r.u32()?;
        if flags & !LUN_FLAG_REMOVED != 0 {
            return Err(WireError::BadFlags);
        }
        r.reserved::<4>()?;
        let identity = r.array()?;
        r.finish()?;
        Ok(Self { lun, policy, paths, usable_paths, removed: flags & LUN_FLAG_REMOVED != 0, identity })
    }

    fn write(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        w.u64(self.lun.0);
        w.u32(self.policy.number);
        w.u32(self.policy.vendor);
        w.u32(self.paths);
        w.u32(self.usable_paths);
        w.u32(if self.removed { LUN_FLAG_REMOVED } else { 0 });
        w.zeros(4);
        w.bytes(&self.identity);
    }
}

/// One path of a `GetPathInfo` reply, 40 bytes, naturally aligned:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | `source_id` |
/// | 8 | 8 | `path_id` |
/// | 16 | 4 | `weight` |
/// | 20 | 4 | `in_flight` |
/// | 24 | 1 | access: ALUA code ([`AccessState::alua`]) |
/// | 25 | 1 | health: 0 healthy, 1 failed, 2 verifying, 3 removed |
/// | 26 | 1 | flags: [`PATH_FLAG_PRIMARY`], [`PATH_FLAG_PREFERRED`], [`PATH_FLAG_USABLE`], [`PATH_FLAG_HELD_DOWN`] |
/// | 27 | 1 | slot (< [`MAX_PATHS`]) |
/// | 28 | 4 | reserved, 0 |
/// | 32 | 8 | `held_down_until` tick; 0 unless [`PATH_FLAG_HELD_DOWN`] |
impl Record for PathInfo {
    const SIZE: usize = 40;
}

impl sealed::Sealed for PathInfo {
    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let path_id = PathId::new(r.u64()?, r.u64()?);
        let weight = r.u32()?;
        let in_flight = r.u32()?;
        let access = AccessState::from_alua(r.u8()?).ok_or(WireError::BadValue)?;
        let health = match r.u8()? {
            0 => Health::Healthy,
            1 => Health::Failed,
            2 => Health::Verifying,
            3 => Health::Removed,
            _ => return Err(WireError::BadValue),
        };
        let flags = r.u8()?;
        if flags & !PATH_FLAGS_ALL != 0 {
            return Err(WireError::BadFlags);
        }
        let slot = r.u8()?;
        if u32::from(slot) >= MAX_PATHS {
            return Err(WireError::BadValue);
        }
        r.reserved::<4>()?;
        let until = r.u64()?;
        let held_down_until = if flags & PATH_FLAG_HELD_DOWN != 0 {
            Some(until)
        } else if until == 0 {
            None
        } else {
            return Err(WireError::ReservedNotZero);
        };
        r.finish()?;
        Ok(Self {
            path_id,
            slot: PathSlot(slot),
            access,
            health,
            flags: PathFlags::from_bits_truncate(flags & (PATH_FLAG_PRIMARY | PATH_FLAG_PREFERRED)),
            weight,
            in_flight,
            usable: flags & PATH_FLAG_USABLE != 0,
            held_down_until,
        })
    }

    fn write(&self, out: &mut [u8]) {
        let mut flags = 0;
        if self.flags.contains(PathFlags::PRIMARY) {
            flags |= PATH_FLAG_PRIMARY;
        }
        if self.flags.contains(PathFlags::PREFERRED) {
            flags |= PATH_FLAG_PREFERRED;
        }
        if self.usable {
            flags |= PATH_FLAG_USABLE;
        }
        if self.held_down_until.is_some() {
            flags |= PATH_FLAG_HELD_DOWN;
        }
        let mut w = Writer::new(out);
        w.u64(self.path_id.source_id);
        w.u64(self.path_id.path_id);
        w.u32(self.weight);
        w.u32(self.in_flight);
        w.u8(self.access.alua());
        w.u8(self.health as u8);
        w.u8(flags);
        w.u8(self.slot.0);
        w.zeros(4);
        w.u64(self.held_down_until.unwrap_or(0));
    }
}

/// One path of a `GetStatistics` reply: which path, and its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathStatisticsEntry {
    /// The path.
    pub path_id: PathId,
    /// Its statistics.
    pub statistics: PathStatistics,
}

/// 336 bytes:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 8 | `source_id` |
/// | 8 | 8 | `path_id` |
/// | 16 | 8 | `reads` |
/// | 24 | 8 | `writes` |
/// | 32 | 8 | `bytes_read` |
/// | 40 | 8 | `bytes_written` |
/// | 48 | 8 | `errors` |
/// | 56 | 4 | `in_flight` |
/// | 60 | 4 | reserved, 0 |
/// | 64 | 8 | `in_flight_bytes` |
/// | 72 | 8 | `latency_ewma` (ticks) |
/// | 80 | 256 | `histogram`: 32 × u64 ([`HISTOGRAM_BUCKETS`]) |
impl Record for PathStatisticsEntry {
    const SIZE: usize = 80 + 8 * HISTOGRAM_BUCKETS;
}

impl sealed::Sealed for PathStatisticsEntry {
    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let path_id = PathId::new(r.u64()?, r.u64()?);
        let reads = r.u64()?;
        let writes = r.u64()?;
        let bytes_read = r.u64()?;
        let bytes_written = r.u64()?;
        let errors = r.u64()?;
        let in_flight = r.u32()?;
        r.reserved::<4>()?;
        let in_flight_bytes = r.u64()?;
        let latency_ewma = r.u64()?;
        let mut histogram = [0; HISTOGRAM_BUCKETS];
        for bucket in &mut histogram {
            *bucket = r.u64()?;
        }
        r.finish()?;
        let statistics = PathStatistics {
            reads,
            writes,
            bytes_read,
            bytes_written,
            errors,
            in_flight,
            in_flight_bytes,
            latency_ewma,
            histogram,
        };
        Ok(Self { path_id, statistics })
    }

    fn write(&self, out: &mut [u8]) {
        let s = &self.statistics;
        let mut w = Writer::new(out);
        w.u64(self.path_id.source_id);
        w.u64(self.path_id.path_id);
        w.u64(s.reads);
        w.u64(s.writes);
        w.u64(s.bytes_read);
        w.u64(s.bytes_written);
        w.u64(s.errors);
        w.u32(s.in_flight);
        w.zeros(4);
        w.u64(s.in_flight_bytes);
        w.u64(s.latency_ewma);
        for bucket in s.histogram {
            w.u64(bucket);
        }
    }
}

/// A validated list of records, borrowed from the message it came in.
#[derive(Clone, Copy)]
pub struct RecordList<'a, T> {
    bytes: &'a [u8],
    _record: PhantomData<fn() -> T>,
}

impl<'a, T: Record> RecordList<'a, T> {
    /// Validates `bytes` as back-to-back records of `T`.
    ///
    /// # Errors
    /// [`WireError::LengthMismatch`] if `bytes` is not a whole number of
    /// records; any error of an invalid record.
    pub fn new(bytes: &'a [u8]) -> Result<Self, WireError> {
        let chunks = bytes.chunks_exact(T::SIZE);
        if !chunks.remainder().is_empty() {
            return Err(WireError::LengthMismatch);
        }
        for chunk in chunks {
            T::read(chunk)?;
        }
        Ok(Self { bytes, _record: PhantomData })
    }

    /// Number of records.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.bytes.len() / T::SIZE
    }

    /// `true` if there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Record `index`, or `None` past the end.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<T> {
        let start = index.checked_mul(T::SIZE)?;
        let chunk = self.bytes.get(start..start.checked_add(T::SIZE)?)?;
        T::read(chunk).ok()
    }

    /// The records in order.
    #[must_use]
    pub fn iter(&self) -> RecordsIter<'a, T> {
        RecordsIter { inner: IterInner::Encoded(self.bytes.chunks_exact(T::SIZE), PhantomData) }
    }

    /// The encoded bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<T: Record + fmt::Debug> fmt::Debug for RecordList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Record + PartialEq> PartialEq for RecordList<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<T: Record + Eq> Eq for RecordList<'_, T> {}

impl<'a, T: Record + 'a> IntoIterator for &RecordList<'a, T> {
    type Item = T;
    type IntoIter = RecordsIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A list in a message: decoded ([`Records::Encoded`]) or about to be
/// encoded from the engine's values ([`Records::Typed`]).
///
/// Equality compares the records, not the representation, so a decoded list
/// equals the slice it was encoded from.
#[derive(Clone, Copy)]
pub enum Records<'a, T> {
    /// A list decoded from a message.
    Encoded(RecordList<'a, T>),
    /// A list of values to encode.
    Typed(&'a [T]),
}

impl<'a, T: Record> Records<'a, T> {
    /// Number of records.
    #[must_use]
    pub const fn len(&self) -> usize {
        match self {
            Self::Encoded(list) => list.len(),
            Self::Typed(values) => values.len(),
        }
    }

    /// `true` if there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `index`, or `None` past the end.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<T> {
        match self {
            Self::Encoded(list) => list.get(index),
            Self::Typed(values) => values.get(index).copied(),
        }
    }

    /// The records in order.
    #[must_use]
    pub fn iter(&self) -> RecordsIter<'a, T> {
        match *self {
            Self::Encoded(list) => list.iter(),
            Self::Typed(values) => RecordsIter { inner: IterInner::Typed(values.iter()) },
        }
    }

    /// The records copied into a fixed-capacity vector, e.g. to hand a
    /// decoded `SetPolicy` path list to [`Lun::begin_set`](crate::Lun::begin_set).
    ///
    /// # Errors
    /// `E_OUTOFMEMORY` ([`Error::OutOfMemory`]) if there are more than `N`
    /// records: the LUN's table cannot hold them (DESIGN §3).
    pub fn to_vec<const N: usize>(&self) -> Result<Vec<T, N>, Error> {
        let mut out = Vec::new();
        for record in self {
            out.push(record).map_err(|_| Error::OutOfMemory)?;
        }
        Ok(out)
    }

    /// Encoded size of the records.
    pub(super) const fn encoded_len(&self) -> usize {
        self.len().saturating_mul(T::SIZE)
    }

    /// The count field, checked against `max`.
    pub(super) fn count(&self, max: u32) -> Result<u32, WireError> {
        let count = u32::try_from(self.len()).unwrap_or(u32::MAX);
        if count > max { Err(WireError::CountTooLarge { count, max }) } else { Ok(count) }
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        match self {
            Self::Encoded(list) => w.bytes(list.as_bytes()),
            Self::Typed(values) => values.iter().for_each(|v| w.record(v)),
        }
    }
}

impl<T: Record + fmt::Debug> fmt::Debug for Records<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Record + PartialEq> PartialEq for Records<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Record + Eq> Eq for Records<'_, T> {}

impl<'a, T: Record> IntoIterator for &Records<'a, T> {
    type Item = T;
    type IntoIter = RecordsIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the records of a [`RecordList`] or [`Records`].
#[derive(Debug, Clone)]
pub struct RecordsIter<'a, T> {
    inner: IterInner<'a, T>,
}

#[derive(Debug, Clone)]
enum IterInner<'a, T> {
    Encoded(ChunksExact<'a, u8>, PhantomData<fn() -> T>),
    Typed(core::slice::Iter<'a, T>),
}

impl<T: Record> Iterator for RecordsIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            // Validated at decode time, so `read` succeeds.
            IterInner::Encoded(chunks, _) => chunks.next().and_then(|c| T::read(c).ok()),
            IterInner::Typed(values) => values.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            IterInner::Encoded(chunks, _) => chunks.size_hint(),
            IterInner::Typed(values) => values.size_hint(),
        }
    }
}

impl<T: Record> ExactSizeIterator for RecordsIter<'_, T> {}
