//! Persisted per-LUN policy: one self-checking binary record per LUN, kept
//! in a [`PolicyStore`] (the registry in the kernel, files in the simulator,
//! memory in tests).
//!
//! # Record layout (little endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"RSDP"` |
//! | 4 | 2 | version (1) |
//! | 6 | 2 | record length in bytes, CRC included |
//! | 8 | 1 | LUN key kind |
//! | 9 | 1 | LUN key flags (bit 0: digest) |
//! | 10 | 1 | LUN key length |
//! | 11 | 1 | path count `n` |
//! | 12 | 32 | LUN key bytes |
//! | 44 | 4 | policy (`VDS_LOADBALANCE_POLICY_ENUM`) |
//! | 48 | 4 | vendor sub-policy (0 unless policy 7) |
//! | 52 | 8 | configuration generation |
//! | 60 | 1 | 1 if a preferred path follows, else 0 |
//! | 61 | 3 | reserved, zero |
//! | 64 | 16 | preferred path: source id, path id (zero if none) |
//! | 80 | 24·n | paths: source id (8), path id (8), primary (1: 0/1), reserved (3, zero), weight (4) |
//! | 80+24n | 4 | CRC-32C of every byte before it |
//!
//! # Torn records
//!
//! A record is written as a whole, in one store operation. A reader that
//! finds a partial record (power loss mid-write, a short read), a mix of two
//! records (old tail, new head) or flipped bits sees a length that does not
//! match the bytes it got, or a CRC that does not match: [`decode_record`]
//! rejects it, and the DSM reports `VDS_E_PROVIDER_CACHE_CORRUPT` instead of
//! applying it. Every field is also range checked, so even a record with a
//! valid CRC from a buggy writer is never half applied.

use heapless::Vec;
use rsdsm_engine::{Error, HResult, LoadBalancePolicy, PathId, PathPolicy};

use crate::crc32c::crc32c;
use crate::identity::{KEY_BYTES, KeyKind, LunKey};

/// Record magic, `"RSDP"` in file order.
pub const MAGIC: [u8; 4] = *b"RSDP";
/// The record version this code writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the path entries.
pub const HEADER_LEN: usize = 80;
/// Bytes per path entry.
pub const ENTRY_LEN: usize = 24;
/// Bytes of the trailing CRC.
pub const CRC_LEN: usize = 4;

/// Length of a record with `paths` entries.
#[must_use]
pub const fn record_len(paths: usize) -> usize {
    HEADER_LEN + ENTRY_LEN * paths + CRC_LEN
}

/// Longest record (64 paths, the engine's maximum).
pub const MAX_RECORD_LEN: usize = record_len(64);

/// A LUN's persisted policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<const N: usize> {
    /// The LUN.
    pub key: LunKey,
    /// The policy.
    pub policy: LoadBalancePolicy,
    /// The configuration generation it was written at.
    pub generation: u64,
    /// The preferred path.
    pub preferred: Option<PathId>,
    /// Per-path settings (`VDS_PATH_POLICY`).
    pub paths: Vec<PathPolicy, N>,
}

/// Why a record was rejected (or could not be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the header and CRC, or than the length field says.
    Short,
    /// More bytes than the length field says.
    TrailingBytes,
    /// Not a record.
    BadMagic,
    /// A version this code does not read.
    BadVersion(u16),
    /// The length field does not match the path count.
    BadLength,
    /// The CRC does not match.
    BadChecksum,
    /// A field out of range (key kind, flag, reserved bytes, policy).
    BadField,
    /// More paths than the caller's table holds.
    TooManyPaths,
    /// Encoding: the output buffer is too small.
    BufferTooSmall,
}

impl RecordError {
    /// The HRESULT a corrupt record is reported with.
    #[must_use]
    pub const fn hresult(self) -> HResult {
        match self {
            Self::BufferTooSmall => HResult::E_OUTOFMEMORY,
            _ => HResult::VDS_E_PROVIDER_CACHE_CORRUPT,
        }
    }
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::BufferTooSmall => Self::OutOfMemory,
            _ => Self::ProviderCacheCorrupt,
        }
    }
}

/// A little-endian writer over a caller buffer that never writes past it.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

/// A little-endian reader; every read is length checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const K: usize>(&mut self) -> Result<[u8; K], RecordError> {
        let (head, tail) = self.rest.split_first_chunk::<K>().ok_or(RecordError::Short)?;
        self.rest = tail;
        Ok(*head)
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        self.take().map(u64::from_le_bytes)
    }
    fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Writes `record` into `buf` and returns its length.
///
/// # Errors
/// [`RecordError::BufferTooSmall`] if `buf` is shorter than
/// [`record_len`]`(record.paths.len())`; nothing is written then.
pub fn encode_record<const N: usize>(record: &Record<N>, buf: &mut [u8]) -> Result<usize, RecordError> {
    let n = record.paths.len();
    let len = record_len(n);
    let out = buf.get_mut(..len).ok_or(RecordError::BufferTooSmall)?;
    let (Ok(len16), Ok(n8)) = (u16::try_from(len), u8::try_from(n)) else {
        return Err(RecordError::BufferTooSmall);
    };
    let mut w = Writer { buf: out, at: 0 };
    w.put(&MAGIC);
    w.put(&VERSION.to_le_bytes());
    w.put(&len16.to_le_bytes());
    let key = &record.key;
    w.put(&[key.kind() as u8, u8::from(key.is_digest()), key.len(), n8]);
    w.put(key.bytes());
    w.put(&record.policy.vds_number().to_le_bytes());
    w.put(&record.policy.vendor_id().to_le_bytes());
    w.put(&record.generation.to_le_bytes());
    let preferred = record.preferred.unwrap_or_default();
    w.put(&[u8::from(record.preferred.is_some()), 0, 0, 0]);
    w.put(&preferred.source_id.to_le_bytes());
    w.put(&preferred.path_id.to_le_bytes());
    for p in &record.paths {
        w.put(&p.path_id.source_id.to_le_bytes());
        w.put(&p.path_id.path_id.to_le_bytes());
        w.put(&[u8::from(p.primary), 0, 0, 0]);
        w.put(&p.weight.to_le_bytes());
    }
    let body = len - CRC_LEN;
    let crc = crc32c(w.buf.get(..body).unwrap_or(&[]));
    w.put(&crc.to_le_bytes());
    Ok(len)
}

/// Reads a record, rejecting anything short, long, corrupt or out of range.
///
/// `data` must be exactly one record: the bytes a store returned.
///
/// # Errors
/// A [`RecordError`]; all but `BufferTooSmall` mean
/// `VDS_E_PROVIDER_CACHE_CORRUPT`.
pub fn decode_record<const N: usize>(data: &[u8]) -> Result<Record<N>, RecordError> {
    let mut r = Reader { rest: data };
    if r.take::<4>()? != MAGIC {
        return Err(RecordError::BadMagic);
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(RecordError::BadVersion(version));
    }
    let len = usize::from(r.u16()?);
    let [kind, flags, key_len, count] = r.take::<4>()?;
    if len != record_len(usize::from(count)) {
        return Err(RecordError::BadLength);
    }
    match data.len().cmp(&len) {
        core::cmp::Ordering::Less => return Err(RecordError::Short),
        core::cmp::Ordering::Greater => return Err(RecordError::TrailingBytes),
        core::cmp::Ordering::Equal => {}
    }
    let (body, crc) = data.split_at(len - CRC_LEN);
    if crc32c(body).to_le_bytes() != crc {
        return Err(RecordError::BadChecksum);
    }
    // The CRC holds: from here on only a buggy writer yields bad fields.
    let key_bytes = r.take::<KEY_BYTES>()?;
    let kind = KeyKind::from_code(kind).ok_or(RecordError::BadField)?;
    let digest = match flags {
        0 => false,
        1 => true,
        _ => return Err(RecordError::BadField),
    };
    let key = LunKey::from_raw(kind, digest, key_len, key_bytes);
    let policy = LoadBalancePolicy::from_vds(r.u32()?, r.u32()?).map_err(|_| RecordError::BadField)?;
    let generation = r.u64()?;
    let [has_preferred, 0, 0, 0] = r.take::<4>()? else {
        return Err(RecordError::BadField);
    };
    let preferred = PathId::new(r.u64()?, r.u64()?);
    let preferred = match has_preferred {
        // "Zero if none": anything else has two encodings of one record.
        0 if preferred == PathId::default() => None,
        1 => Some(preferred),
        _ => return Err(RecordError::BadField),
    };
    let mut paths = Vec::new();
    for _ in 0..count {
        let path_id = PathId::new(r.u64()?, r.u64()?);
        let primary = match r.take::<4>()? {
            [0, 0, 0, 0] => false,
            [1, 0, 0, 0] => true,
            _ => return Err(RecordError::BadField),
        };
        let weight = r.u32()?;
        paths.push(PathPolicy { path_id, primary, weight }).map_err(|_| RecordError::TooManyPaths)?;
    }
    if r.rest().len() != CRC_LEN {
        return Err(RecordError::BadLength);
    }
    Ok(Record { key, policy, generation, preferred, paths })
}

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The caller's buffer cannot hold the stored record.
    BufferTooSmall,
    /// The store has no room for another record (or a record this long).
    Full,
    /// The backing store failed (registry or file I/O).
    Backend,
}

impl From<StoreError> for Error {
    /// A full store is `E_OUTOFMEMORY`; an unreadable or unwritable one
    /// means the DSM's persisted view cannot be trusted.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Self::OutOfMemory,
            StoreError::BufferTooSmall | StoreError::Backend => Self::ProviderCacheCorrupt,
        }
    }
}

/// Where per-LUN records live. One record per [`LunKey`]; `save` replaces
/// it as a whole.
pub trait PolicyStore {
    /// Copies the record of `key` into `buf`; `Ok(None)` if there is none.
    ///
    /// # Errors
    /// [`StoreError`].
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, StoreError>;

    /// Stores `record` as the record of `key`, replacing any other.
    ///
    /// # Errors
    /// [`StoreError`].
    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), StoreError>;

    /// Deletes the record of `key` (no error if there is none).
    ///
    /// # Errors
    /// [`StoreError`].
    fn delete(&mut self, key: &LunKey) -> Result<(), StoreError>;
}

/// A store in fixed memory: up to `LUNS` records of up to `BYTES` bytes.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore<const LUNS: usize, const BYTES: usize> {
    records: Vec<(LunKey, Vec<u8, BYTES>), LUNS>,
}

impl<const LUNS: usize, const BYTES: usize> MemoryStore<LUNS, BYTES> {
    /// An empty store.
    #[must_use]
    pub const fn new() -> Self {
        Self { records: Vec::new() }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// `true` without records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The raw record of `key` (to inspect or damage it in tests).
    pub fn raw_mut(&mut self, key: &LunKey) -> Option<&mut Vec<u8, BYTES>> {
        self.records.iter_mut().find(|(k, _)| k == key).map(|(_, r)| r)
    }
}

impl<const LUNS: usize, const BYTES: usize> PolicyStore for MemoryStore<LUNS, BYTES> {
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let Some((_, record)) = self.records.iter().find(|(k, _)| k == key) else {
            return Ok(None);
        };
        let dst = buf.get_mut(..record.len()).ok_or(StoreError::BufferTooSmall)?;
        dst.copy_from_slice(record);
        Ok(Some(record.len()))
    }

    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), StoreError> {
        let bytes = Vec::from_slice(record).map_err(|_| StoreError::Full)?;
        if let Some(slot) = self.raw_mut(key) {
            *slot = bytes;
            return Ok(());
        }
        self.records.push((*key, bytes)).map_err(|_| StoreError::Full)
    }

    fn delete(&mut self, key: &LunKey) -> Result<(), StoreError> {
        self.records.retain(|(k, _)| k != key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsdsm_engine::VendorPolicy;

    fn sample() -> Record<4> {
        let mut paths = Vec::new();
        paths.push(PathPolicy { path_id: PathId::new(7, 0x7700_0100), primary: true, weight: 3 }).unwrap();
        paths.push(PathPolicy { path_id: PathId::new(7, 0x7700_0200), primary: false, weight: 9 }).unwrap();
        Record {
            key: LunKey::from_parts(
                KeyKind::Naa,
                &[&[0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]],
            ),
            policy: LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime),
            generation: 42,
            preferred: Some(PathId::new(7, 0x7700_0200)),
            paths,
        }
    }

    fn encoded(r: &Record<4>) -> std::vec::Vec<u8> {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = encode_record(r, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let bytes = encoded(&r);
        assert_eq!(bytes.len(), record_len(2));
        assert_eq!(&bytes[..4], b"RSDP");
        assert_eq!(decode_record::<4>(&bytes), Ok(r.clone()));
        let mut none = r;
        none.preferred = None;
        none.paths.clear();
        none.policy = LoadBalancePolicy::RoundRobin;
        assert_eq!(decode_record::<4>(&encoded(&none)), Ok(none));
    }

    #[test]
    fn encode_checks_the_buffer() {
        let r = sample();
        let mut small = [0xAAu8; 131];
        assert_eq!(encode_record(&r, &mut small), Err(RecordError::BufferTooSmall));
        assert!(small.iter().all(|&b| b == 0xAA), "nothing written");
        let mut exact = [0u8; 132];
        assert_eq!(encode_record(&r, &mut exact), Ok(132));
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bytes = encoded(&sample());
        for cut in 0..bytes.len() {
            let e = decode_record::<4>(&bytes[..cut]).unwrap_err();
            assert_eq!(Error::from(e).hresult(), HResult::VDS_E_PROVIDER_CACHE_CORRUPT, "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode_record::<4>(&long), Err(RecordError::TrailingBytes));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let bytes = encoded(&sample());
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_record::<4>(&b).is_err(), "bit {bit} flipped went unnoticed");
        }
    }

    #[test]
    fn a_mixed_record_is_rejected() {
        // New head, old tail: same length, different content.
        let old = encoded(&sample());
        let mut newer = sample();
        newer.generation = 43;
        newer.paths[0].weight = 5;
        let new = encoded(&newer);
        let mut mixed = new[..60].to_vec();
        mixed.extend_from_slice(&old[60..]);
        assert_eq!(decode_record::<4>(&mixed), Err(RecordError::BadChecksum));
    }

    #[test]
    fn versions_sizes_and_fields() {
        let mut bytes = encoded(&sample());
        bytes[4] = 2;
        assert_eq!(decode_record::<4>(&bytes), Err(RecordError::BadVersion(2)));
        let bytes = encoded(&sample());
        assert_eq!(decode_record::<1>(&bytes), Err(RecordError::TooManyPaths));
        // A well-checksummed record with a bad field.
        let mut bad = bytes.clone();
        bad[44] = 9; // policy 9
        let n = bad.len() - 4;
        let crc = crc32c(&bad[..n]).to_le_bytes();
        bad[n..].copy_from_slice(&crc);
        assert_eq!(decode_record::<4>(&bad), Err(RecordError::BadField));
    }

    /// Found by the `policy_record` fuzz target: a record without a
    /// preferred path but with non-zero preferred-path bytes (and a valid
    /// CRC) decoded, and re-encoded to different bytes.
    #[test]
    fn an_absent_preferred_path_must_be_zero() {
        let crash: [u8; 84] = [
            82, 83, 68, 80, 1, 0, 84, 0, 3, 0, 16, 0, 96, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 174, 0, 0, 0, 0, 0, 0, 0, 0, 87, 204, 30, 112,
        ];
        assert_eq!(decode_record::<4>(&crash), Err(RecordError::BadField));
        // The same record with the bytes zeroed (and its CRC redone) is fine.
        let mut fixed = crash;
        fixed[71] = 0;
        let n = fixed.len() - CRC_LEN;
        let crc = crc32c(&fixed[..n]).to_le_bytes();
        fixed[n..].copy_from_slice(&crc);
        let record = decode_record::<4>(&fixed).unwrap();
        assert_eq!(record.preferred, None);
        assert_eq!(encoded(&record), fixed.to_vec());
    }

    #[test]
    fn memory_store() {
        let mut store: MemoryStore<2, 256> = MemoryStore::new();
        let r = sample();
        let bytes = encoded(&r);
        let mut buf = [0u8; 256];
        assert_eq!(store.load(&r.key, &mut buf), Ok(None));
        store.save(&r.key, &bytes).unwrap();
        assert_eq!(store.load(&r.key, &mut buf), Ok(Some(bytes.len())));
        assert_eq!(&buf[..bytes.len()], &bytes[..]);
        assert_eq!(store.load(&r.key, &mut [0u8; 10]), Err(StoreError::BufferTooSmall));
        store.save(&r.key, &bytes[..10]).unwrap();
        assert_eq!(store.len(), 1, "save replaces");
        assert_eq!(store.save(&r.key, &[0u8; 257]), Err(StoreError::Full));
        let other = LunKey::from_parts(KeyKind::Eui64, &[b"12345678"]);
        let third = LunKey::from_parts(KeyKind::Eui64, &[b"abcdefgh"]);
        store.save(&other, b"x").unwrap();
        assert_eq!(store.save(&third, b"y"), Err(StoreError::Full));
        store.delete(&r.key).unwrap();
        store.delete(&r.key).unwrap();
        assert_eq!(store.load(&r.key, &mut buf), Ok(None));
        assert_eq!(store.len(), 1);
    }
}
