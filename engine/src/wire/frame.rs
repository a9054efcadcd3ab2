//! Socket framing: one `DeviceIoControl` call as bytes on a stream.
//!
//! The simulated DSM (`rsdsm-sim serve`) and `rsdsm-control`'s socket
//! transport carry exactly the bytes a real IOCTL would: the request frame
//! holds the IOCTL code, the input buffer and the size the caller's output
//! buffer would have; the reply frame holds what the driver would have left
//! in that output buffer, or the failure of the call itself. A message of
//! [`super`] (`RSDM` header and body) travels inside, untouched.
//!
//! All integers are little-endian.
//!
//! Request frame, [`FrameHeader::SIZE`] = 16 bytes, then the input:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `b"RSDF"` ([`FRAME_MAGIC`]) |
//! | 4 | 4 | `ioctl`: the IOCTL code |
//! | 8 | 4 | `input_len`, at most [`MAX_REQUEST_SIZE`] |
//! | 12 | 4 | `output_capacity`: the output buffer length the caller offers, at most [`MAX_REPLY_SIZE`] |
//! | 16 | `input_len` | the IOCTL input buffer |
//!
//! Reply frame, [`ReplyHeader::SIZE`] = 12 bytes, then the output:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `b"RSDF"` |
//! | 4 | 4 | `status`: [`STATUS_SUCCESS`], or an NTSTATUS for a call that failed as a whole |
//! | 8 | 4 | `len`, at most `output_capacity` and [`MAX_REPLY_SIZE`]; 0 unless `status` is [`STATUS_SUCCESS`] |
//! | 12 | `len` | the output buffer contents (an `RSDM` reply) |
//!
//! A non-zero `status` is what `DeviceIoControl` itself would fail with
//! ([`STATUS_INVALID_DEVICE_REQUEST`] for an IOCTL code the driver does not
//! know, [`STATUS_BUFFER_TOO_SMALL`] for an output buffer shorter than a
//! reply header). A request the DSM refuses is *not* a failed call: it
//! completes with status 0 and an `RSDM` reply carrying the HRESULT.
//!
//! ```
//! use rsdsm_engine::wire::{FrameHeader, ReplyHeader, IOCTL_RSDSM_GET_VERSION, STATUS_SUCCESS};
//!
//! let header = FrameHeader { ioctl: IOCTL_RSDSM_GET_VERSION, input_len: 16, output_capacity: 36 };
//! let bytes = header.encode();
//! assert_eq!(&bytes[..4], b"RSDF");
//! assert_eq!(FrameHeader::decode(&bytes)?, header);
//!
//! let reply = ReplyHeader { status: STATUS_SUCCESS, len: 36 };
//! assert_eq!(ReplyHeader::decode(&reply.encode(), 36)?, reply);
//! # Ok::<(), rsdsm_engine::wire::WireError>(())
//! ```

use super::codec::{Reader, Writer};
use super::{MAX_REPLY_SIZE, MAX_REQUEST_SIZE, WireError};

/// The first four bytes of every frame, request or reply.
pub const FRAME_MAGIC: [u8; 4] = *b"RSDF";

/// `STATUS_SUCCESS`: the IOCTL completed; the frame carries the output buffer.
pub const STATUS_SUCCESS: u32 = 0x0000_0000;
/// `STATUS_INVALID_DEVICE_REQUEST`: the driver does not know the IOCTL code.
pub const STATUS_INVALID_DEVICE_REQUEST: u32 = 0xC000_0010;
/// `STATUS_BUFFER_TOO_SMALL`: the output buffer cannot hold even a reply
/// header.
pub const STATUS_BUFFER_TOO_SMALL: u32 = 0xC000_0023;

/// `usize` → `u32` for lengths already bounded by the message limits.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The fixed part of a request frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameHeader {
    /// The IOCTL code (`IOCTL_RSDSM_*`, or anything: the server judges it).
    pub ioctl: u32,
    /// Length of the input buffer that follows.
    pub input_len: u32,
    /// Length of the output buffer the caller offers.
    pub output_capacity: u32,
}

impl FrameHeader {
    /// Encoded size of the header.
    pub const SIZE: usize = 16;

    /// The header as bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        let mut w = Writer::new(&mut out);
        w.bytes(&FRAME_MAGIC);
        w.u32(self.ioctl);
        w.u32(self.input_len);
        w.u32(self.output_capacity);
        out
    }

    /// Decodes the header from the first [`SIZE`](Self::SIZE) bytes of
    /// `buf` (further bytes are ignored: read the header, then the input).
    ///
    /// # Errors
    /// [`WireError::Truncated`] for fewer than 16 bytes,
    /// [`WireError::BadMagic`], or [`WireError::CountTooLarge`] if
    /// `input_len` exceeds [`MAX_REQUEST_SIZE`] or `output_capacity`
    /// exceeds [`MAX_REPLY_SIZE`].
    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let head =
            buf.get(..Self::SIZE).ok_or(WireError::Truncated { needed: Self::SIZE, available: buf.len() })?;
        let mut r = Reader::new(head);
        if r.array::<4>()? != FRAME_MAGIC {
            return Err(WireError::BadMagic);
        }
        let header = Self { ioctl: r.u32()?, input_len: r.u32()?, output_capacity: r.u32()? };
        if header.input_len > len32(MAX_REQUEST_SIZE) {
            return Err(WireError::CountTooLarge { count: header.input_len, max: len32(MAX_REQUEST_SIZE) });
        }
        if header.output_capacity > len32(MAX_REPLY_SIZE) {
            return Err(WireError::CountTooLarge {
                count: header.output_capacity,
                max: len32(MAX_REPLY_SIZE),
            });
        }
        Ok(header)
    }

    /// `input_len` as a `usize`.
    #[must_use]
    pub fn input_len(&self) -> usize {
        self.input_len as usize
    }

    /// `output_capacity` as a `usize`.
    #[must_use]
    pub fn output_capacity(&self) -> usize {
        self.output_capacity as usize
    }
}

/// The fixed part of a reply frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReplyHeader {
    /// [`STATUS_SUCCESS`] or the NTSTATUS the call failed with.
    pub status: u32,
    /// Length of the output that follows.
    pub len: u32,
}

impl ReplyHeader {
    /// Encoded size of the header.
    pub const SIZE: usize = 12;

    /// The header as bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        let mut w = Writer::new(&mut out);
        w.bytes(&FRAME_MAGIC);
        w.u32(self.status);
        w.u32(self.len);
        out
    }

    /// Decodes the header from the first [`SIZE`](Self::SIZE) bytes of
    /// `buf`, for a request that offered `output_capacity` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] for fewer than 12 bytes,
    /// [`WireError::BadMagic`], [`WireError::CountTooLarge`] if `len`
    /// exceeds `output_capacity` or [`MAX_REPLY_SIZE`], and
    /// [`WireError::BadValue`] for a failed call that carries output.
    pub fn decode(buf: &[u8], output_capacity: usize) -> Result<Self, WireError> {
        let head =
            buf.get(..Self::SIZE).ok_or(WireError::Truncated { needed: Self::SIZE, available: buf.len() })?;
        let mut r = Reader::new(head);
        if r.array::<4>()? != FRAME_MAGIC {
            return Err(WireError::BadMagic);
        }
        let header = Self { status: r.u32()?, len: r.u32()? };
        let max = len32(output_capacity.min(MAX_REPLY_SIZE));
        if header.len > max {
            return Err(WireError::CountTooLarge { count: header.len, max });
        }
        if header.status != STATUS_SUCCESS && header.len != 0 {
            return Err(WireError::BadValue);
        }
        Ok(header)
    }

    /// `len` as a `usize`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` if the reply carries no output.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Encodes a whole request frame (header and `input`) into `out`.
///
/// # Errors
/// [`WireError::CountTooLarge`] if `input` or `output_capacity` exceed
/// their bounds; [`WireError::OutputTooSmall`] if `out` cannot hold the
/// frame. Nothing is written then.
pub fn encode_request_frame(
    ioctl: u32,
    input: &[u8],
    output_capacity: usize,
    out: &mut [u8],
) -> Result<usize, WireError> {
    if input.len() > MAX_REQUEST_SIZE {
        return Err(WireError::CountTooLarge { count: len32(input.len()), max: len32(MAX_REQUEST_SIZE) });
    }
    if output_capacity > MAX_REPLY_SIZE {
        return Err(WireError::CountTooLarge { count: len32(output_capacity), max: len32(MAX_REPLY_SIZE) });
    }
    let total = FrameHeader::SIZE + input.len();
    let dst = out.get_mut(..total).ok_or(WireError::OutputTooSmall { needed: total })?;
    let header =
        FrameHeader { ioctl, input_len: len32(input.len()), output_capacity: len32(output_capacity) };
    let mut w = Writer::new(dst);
    w.bytes(&header.encode());
    w.bytes(input);
    Ok(total)
}

/// Decodes a whole request frame; `buf` must be exactly the frame.
///
/// # Errors
/// Any error of [`FrameHeader::decode`]; [`WireError::Truncated`] if the
/// input is short, [`WireError::LengthMismatch`] if bytes follow it.
pub fn decode_request_frame(buf: &[u8]) -> Result<(FrameHeader, &[u8]), WireError> {
    let header = FrameHeader::decode(buf)?;
    let body = body(buf, FrameHeader::SIZE, header.input_len())?;
    Ok((header, body))
}

/// Encodes a whole reply frame into `out`. A failed call (`status` not
/// [`STATUS_SUCCESS`]) must carry no output.
///
/// # Errors
/// [`WireError::CountTooLarge`] if `output` exceeds [`MAX_REPLY_SIZE`];
/// [`WireError::BadValue`] for output with a failure status;
/// [`WireError::OutputTooSmall`] if `out` cannot hold the frame. Nothing is
/// written then.
pub fn encode_reply_frame(status: u32, output: &[u8], out: &mut [u8]) -> Result<usize, WireError> {
    if output.len() > MAX_REPLY_SIZE {
        return Err(WireError::CountTooLarge { count: len32(output.len()), max: len32(MAX_REPLY_SIZE) });
    }
    if status != STATUS_SUCCESS && !output.is_empty() {
        return Err(WireError::BadValue);
    }
    let total = ReplyHeader::SIZE + output.len();
    let dst = out.get_mut(..total).ok_or(WireError::OutputTooSmall { needed: total })?;
    let mut w = Writer::new(dst);
    w.bytes(&ReplyHeader { status, len: len32(output.len()) }.encode());
    w.bytes(output);
    Ok(total)
}

/// Decodes a whole reply frame to a request that offered `output_capacity`
/// bytes; `buf` must be exactly the frame.
///
/// # Errors
/// Any error of [`ReplyHeader::decode`]; [`WireError::Truncated`] if the
/// output is short, [`WireError::LengthMismatch`] if bytes follow it.
pub fn decode_reply_frame(buf: &[u8], output_capacity: usize) -> Result<(ReplyHeader, &[u8]), WireError> {
    let header = ReplyHeader::decode(buf, output_capacity)?;
    let body = body(buf, ReplyHeader::SIZE, header.len())?;
    Ok((header, body))
}

/// Exactly `len` bytes after a `start`-byte header.
fn body(buf: &[u8], start: usize, len: usize) -> Result<&[u8], WireError> {
    let end = start.saturating_add(len);
    let body = buf.get(start..end).ok_or(WireError::Truncated { needed: end, available: buf.len() })?;
    if buf.len() == end { Ok(body) } else { Err(WireError::LengthMismatch) }
}
