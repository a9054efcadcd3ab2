//! Bounds-checked little-endian reading and writing, and the header.
//!
//! Everything that touches bytes goes through [`Reader`] and [`Writer`], so
//! the length checks live in one place.

use super::records::{Record, RecordList};
use super::{HEADER_SIZE, MAGIC, Opcode, PROTOCOL_VERSION, RawPolicy, WireError};

/// Reads fields in order from a byte slice, checking each length first.
///
/// Positions in [`WireError::Truncated`] count from the start of the slice,
/// which for messages is the start of the header.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let available = self.buf.len();
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated { needed: usize::MAX, available })?;
        let bytes = self.buf.get(self.pos..end).ok_or(WireError::Truncated { needed: end, available })?;
        self.pos = end;
        Ok(bytes)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let available = self.buf.len();
        let bytes = self.take(N)?;
        bytes.first_chunk::<N>().copied().ok_or(WireError::Truncated { needed: self.pos, available })
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(super) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A Windows `BOOL` that must be exactly 0 or 1.
    pub(super) fn bool32(&mut self) -> Result<bool, WireError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::BadBool),
        }
    }

    /// `N` reserved bytes, which must be zero.
    pub(super) fn reserved<const N: usize>(&mut self) -> Result<(), WireError> {
        if self.array::<N>()? == [0; N] { Ok(()) } else { Err(WireError::ReservedNotZero) }
    }

    /// `count` records of `T` that must fill the rest of the message exactly.
    pub(super) fn list<T: Record>(&mut self, count: u32, max: u32) -> Result<RecordList<'a, T>, WireError> {
        if count > max {
            return Err(WireError::CountTooLarge { count, max });
        }
        let available = self.buf.len();
        let size = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(T::SIZE))
            .ok_or(WireError::Truncated { needed: usize::MAX, available })?;
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.len() > size {
            return Err(WireError::LengthMismatch);
        }
        let bytes = self.take(size)?;
        RecordList::new(bytes)
    }

    /// A policy as its `(number, vendor)` pair.
    pub(super) fn policy(&mut self) -> Result<RawPolicy, WireError> {
        Ok(RawPolicy { number: self.u32()?, vendor: self.u32()? })
    }

    /// Succeeds only if every byte was read.
    pub(super) const fn finish(&self) -> Result<(), WireError> {
        if self.pos == self.buf.len() { Ok(()) } else { Err(WireError::LengthMismatch) }
    }
}

/// Writes fields in order into a slice sized beforehand.
///
/// Callers compute the message length first and hand in exactly that many
/// bytes; a write that would not fit is dropped (and the position still
/// advances), so a sizing bug shows as a length mismatch, never a panic.
pub(super) struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(super) const fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: 0 }
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.bytes(&v.to_le_bytes());
    }

    pub(super) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub(super) fn bool32(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    pub(super) fn zeros(&mut self, n: usize) {
        let end = self.pos.saturating_add(n);
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.fill(0);
        }
        self.pos = end;
    }

    pub(super) fn record<T: Record>(&mut self, record: &T) {
        let end = self.pos.saturating_add(T::SIZE);
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            record.write(dst);
        }
        self.pos = end;
    }

    pub(super) const fn position(&self) -> usize {
        self.pos
    }
}

/// A decoded header: the fields that vary between messages.
pub(super) struct Header {
    pub(super) opcode: u16,
    pub(super) status: u32,
}

/// Checks the header of `buf` and returns it with a reader positioned at the
/// body. The opcode is returned raw: requests and replies judge it differently.
pub(super) fn read_header(buf: &[u8]) -> Result<(Header, Reader<'_>), WireError> {
    let mut r = Reader::new(buf);
    if buf.len() < HEADER_SIZE {
        return Err(WireError::Truncated { needed: HEADER_SIZE, available: buf.len() });
    }
    if r.array::<4>()? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = r.u16()?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let opcode = r.u16()?;
    let declared = r.u32()?;
    if usize::try_from(declared).ok() != Some(buf.len()) {
        return Err(WireError::SizeMismatch { declared, actual: buf.len() });
    }
    let status = r.u32()?;
    Ok((Header { opcode, status }, r))
}

/// Writes a whole message: checks that `HEADER_SIZE + body_len` bytes fit in
/// `out` (writing nothing otherwise), writes the header, then `body`.
pub(super) fn write_message(
    opcode: Opcode,
    status: u32,
    body_len: usize,
    out: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>),
) -> Result<usize, WireError> {
    let total = HEADER_SIZE.checked_add(body_len).ok_or(WireError::OutputTooSmall { needed: usize::MAX })?;
    let total32 = u32::try_from(total).map_err(|_| WireError::OutputTooSmall { needed: total })?;
    let dst = out.get_mut(..total).ok_or(WireError::OutputTooSmall { needed: total })?;
    let mut w = Writer::new(dst);
    write_header(&mut w, opcode, status, total32);
    body(&mut w);
    if w.position() == total { Ok(total) } else { Err(WireError::LengthMismatch) }
}

/// Writes the 16-byte header.
pub(super) fn write_header(w: &mut Writer<'_>, opcode: Opcode, status: u32, total_size: u32) {
    w.bytes(&MAGIC);
    w.u16(PROTOCOL_VERSION);
    w.u16(opcode.raw());
    w.u32(total_size);
    w.u32(status);
}
