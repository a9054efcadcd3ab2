//! Device identity from the Device Identification VPD page (0x83) and the
//! Unit Serial Number VPD page (0x80), laid out as SPC-4 defines them.
//!
//! Every path to a LUN reports the same logical-unit designators, so the
//! [`LunKey`] derived from them groups paths into one LUN (the
//! `CompareDevices` role) and keys persisted settings. Port / bus / target
//! numbers are never part of it: they change when HBAs re-enumerate.
//!
//! Page 0x83:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | peripheral qualifier / device type |
//! | 1 | page code 0x83 |
//! | 2..4 | page length (big endian): bytes after the header |
//! | 4.. | designation descriptors |
//!
//! A designation descriptor: byte 0 = protocol identifier (high nibble) and
//! code set (low nibble); byte 1 = PIV (0x80), association (bits 5..4) and
//! designator type (low nibble); byte 3 = designator length; then the
//! designator.
//!
//! Parsing checks the whole page first ([`Vpd83::parse`]); iterating a
//! parsed page then cannot fail.

/// Why a VPD page was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// Shorter than the 4-byte page header.
    ShortHeader,
    /// The page code is not the one expected.
    WrongPage {
        /// Page code expected.
        expected: u8,
        /// Page code found.
        found: u8,
    },
    /// The page length runs past the buffer (a truncated transfer).
    PageLengthPastBuffer,
    /// A designation descriptor header or its designator runs past the
    /// page length.
    DescriptorPastPage,
    /// Neither page has a designator usable as a LUN key.
    NoIdentifier,
}

/// The association of a designator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Association {
    /// 0: the logical unit itself.
    LogicalUnit,
    /// 1: the target port the command came through.
    TargetPort,
    /// 2: the target device containing the logical unit.
    TargetDevice,
    /// 3: reserved.
    Reserved,
}

/// The designator type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesignatorKind {
    /// 0: vendor specific.
    VendorSpecific,
    /// 1: T10 vendor id based.
    T10VendorId,
    /// 2: EUI-64 based.
    Eui64,
    /// 3: NAA.
    Naa,
    /// 4: relative target port identifier.
    RelativeTargetPort,
    /// 5: target port group.
    TargetPortGroup,
    /// 6: logical unit group.
    LuGroup,
    /// 7: MD5 logical unit identifier.
    Md5,
    /// 8: SCSI name string.
    ScsiName,
    /// Any other (reserved or newer) type, with its code.
    Other(u8),
}

impl DesignatorKind {
    const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::VendorSpecific,
            1 => Self::T10VendorId,
            2 => Self::Eui64,
            3 => Self::Naa,
            4 => Self::RelativeTargetPort,
            5 => Self::TargetPortGroup,
            6 => Self::LuGroup,
            7 => Self::Md5,
            8 => Self::ScsiName,
            other => Self::Other(other),
        }
    }
}

/// One designation descriptor, borrowing its designator from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Designator<'a> {
    /// Code set: 1 binary, 2 ASCII, 3 UTF-8.
    pub code_set: u8,
    /// What the designator designates.
    pub association: Association,
    /// The designator type.
    pub kind: DesignatorKind,
    /// Protocol identifier valid (PIV).
    pub piv: bool,
    /// Protocol identifier (meaningful when `piv`).
    pub protocol: u8,
    /// The designator bytes.
    pub value: &'a [u8],
}

impl Designator<'_> {
    /// The 16-bit id carried at offset 2 of a relative target port or
    /// target port group designator (4 bytes: 2 reserved, 2 id).
    #[must_use]
    pub fn port_id(&self) -> Option<u16> {
        match self.value {
            [_, _, hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }
}

/// A checked page 0x83.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vpd83<'a> {
    body: &'a [u8],
}

/// The page code of Device Identification.
pub const DEVICE_IDENTIFICATION: u8 = 0x83;
/// The page code of Unit Serial Number.
pub const UNIT_SERIAL_NUMBER: u8 = 0x80;

/// Checks a VPD page header and returns the page body (bytes after the
/// header, exactly as long as the page length says).
fn page_body(page: &[u8], code: u8) -> Result<&[u8], IdentityError> {
    let [_, found, hi, lo, rest @ ..] = page else {
        return Err(IdentityError::ShortHeader);
    };
    if *found != code {
        return Err(IdentityError::WrongPage { expected: code, found: *found });
    }
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    rest.get(..len).ok_or(IdentityError::PageLengthPastBuffer)
}

impl<'a> Vpd83<'a> {
    /// Checks the page header and every descriptor.
    ///
    /// Bytes after the page length are ignored (an allocation length larger
    /// than the page).
    ///
    /// # Errors
    /// [`IdentityError`] for a short buffer, another page, a page length past
    /// the buffer or a descriptor past the page.
    pub fn parse(page: &'a [u8]) -> Result<Self, IdentityError> {
        let body = page_body(page, DEVICE_IDENTIFICATION)?;
        let mut rest = body;
        while !rest.is_empty() {
            let [_, _, _, len, tail @ ..] = rest else {
                return Err(IdentityError::DescriptorPastPage);
            };
            rest = tail.get(usize::from(*len)..).ok_or(IdentityError::DescriptorPastPage)?;
        }
        Ok(Self { body })
    }

    /// The designators, in page order.
    #[must_use]
    pub fn designators(&self) -> Designators<'a> {
        Designators { rest: self.body }
    }

    /// The relative target port identifier of the port the page came
    /// through (type 4, target port association).
    #[must_use]
    pub fn relative_target_port(&self) -> Option<u16> {
        self.port_designator(DesignatorKind::RelativeTargetPort)
    }

    /// The target port group of that port (type 5, target port association).
    #[must_use]
    pub fn target_port_group(&self) -> Option<u16> {
        self.port_designator(DesignatorKind::TargetPortGroup)
    }

    fn port_designator(&self, kind: DesignatorKind) -> Option<u16> {
        self.designators()
            .find(|d| d.kind == kind && d.association == Association::TargetPort)
            .and_then(|d| d.port_id())
    }

    /// The LUN key from the logical-unit designators, by precedence SCSI
    /// name string > NAA > EUI-64 > T10 vendor id > vendor specific (the
    /// first of a kind wins).
    #[must_use]
    pub fn lun_key(&self) -> Option<LunKey> {
        KeyKind::PRECEDENCE.iter().find_map(|&kind| {
            let d = self
                .designators()
                .find(|d| d.association == Association::LogicalUnit && Some(kind) == KeyKind::of(d.kind))?;
            let value = if kind == KeyKind::ScsiName { trim_nul(d.value) } else { d.value };
            (!value.is_empty()).then(|| LunKey::from_parts(kind, &[value]))
        })
    }
}

/// Iterator over the designators of a checked page 0x83.
#[derive(Debug, Clone)]
pub struct Designators<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Designators<'a> {
    type Item = Designator<'a>;

    fn next(&mut self) -> Option<Designator<'a>> {
        let [b0, b1, _, len, tail @ ..] = self.rest else {
            self.rest = &[];
            return None;
        };
        let len = usize::from(*len);
        let (Some(value), Some(rest)) = (tail.get(..len), tail.get(len..)) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        let association = match (b1 >> 4) & 3 {
            0 => Association::LogicalUnit,
            1 => Association::TargetPort,
            2 => Association::TargetDevice,
            _ => Association::Reserved,
        };
        Some(Designator {
            code_set: b0 & 0x0F,
            association,
            kind: DesignatorKind::from_code(b1 & 0x0F),
            piv: b1 & 0x80 != 0,
            protocol: b0 >> 4,
            value,
        })
    }
}

fn trim_nul(value: &[u8]) -> &[u8] {
    let end = value.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    value.get(..end).unwrap_or(value)
}

fn trim_spaces(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ' && b != 0).unwrap_or(value.len());
    let end = value.iter().rposition(|&b| b != b' ' && b != 0).map_or(start, |p| p + 1);
    value.get(start..end).unwrap_or(&[])
}

/// The serial number of a Unit Serial Number page (0x80), without leading
/// and trailing spaces (and NULs). May be empty.
///
/// # Errors
/// [`IdentityError`] for a short buffer, another page or a page length past
/// the buffer.
pub fn parse_unit_serial(page: &[u8]) -> Result<&[u8], IdentityError> {
    page_body(page, UNIT_SERIAL_NUMBER).map(trim_spaces)
}

/// Where a [`LunKey`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeyKind {
    /// SCSI name string (NULs at the end trimmed).
    ScsiName = 8,
    /// NAA designator.
    Naa = 3,
    /// EUI-64 based designator.
    Eui64 = 2,
    /// T10 vendor id based designator.
    T10VendorId = 1,
    /// Vendor specific designator.
    VendorSpecific = 0,
    /// No LU designator: vendor id + product id + unit serial number.
    UnitSerial = 0x80,
}

impl KeyKind {
    /// Logical-unit designators by precedence.
    pub const PRECEDENCE: [Self; 5] =
        [Self::ScsiName, Self::Naa, Self::Eui64, Self::T10VendorId, Self::VendorSpecific];

    const fn of(kind: DesignatorKind) -> Option<Self> {
        match kind {
            DesignatorKind::ScsiName => Some(Self::ScsiName),
            DesignatorKind::Naa => Some(Self::Naa),
            DesignatorKind::Eui64 => Some(Self::Eui64),
            DesignatorKind::T10VendorId => Some(Self::T10VendorId),
            DesignatorKind::VendorSpecific => Some(Self::VendorSpecific),
            _ => None,
        }
    }

    /// The kind for its code (as persisted).
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            8 => Some(Self::ScsiName),
            3 => Some(Self::Naa),
            2 => Some(Self::Eui64),
            1 => Some(Self::T10VendorId),
            0 => Some(Self::VendorSpecific),
            0x80 => Some(Self::UnitSerial),
            _ => None,
        }
    }
}

/// Bytes a [`LunKey`] holds.
pub const KEY_BYTES: usize = 32;

/// A LUN's stable identity: fixed size, the same on every path.
///
/// Identifiers up to 32 bytes are kept whole. A longer one (a SCSI name
/// string, a long T10 id or serial) is kept as its first 12 bytes, the CRC-32C of
/// all of it and its last 16 bytes, with `digest` set, and with its
/// full length recorded, so two long names that differ anywhere almost
/// certainly give different keys, and keys stay comparable byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LunKey {
    kind: KeyKind,
    digest: bool,
    /// Length of the identifier (not of `bytes`), saturated at 255.
    len: u8,
    bytes: [u8; KEY_BYTES],
}

impl LunKey {
    /// A key from an identifier given as concatenated parts.
    #[must_use]
    pub fn from_parts(kind: KeyKind, parts: &[&[u8]]) -> Self {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut bytes = [0u8; KEY_BYTES];
        let all = || parts.iter().flat_map(|p| p.iter().copied());
        if total <= KEY_BYTES {
            for (cell, b) in bytes.iter_mut().zip(all()) {
                *cell = b;
            }
        } else {
            // Head, CRC, tail: the CRC sits before the tail so that the key
            // itself is not "message followed by its CRC" (whose checksum
            // would then not depend on the message).
            let mut crc = crate::crc32c::Crc32c::new();
            for part in parts {
                crc.update(part);
            }
            let head = all().take(12);
            let tail = all().skip(total - 16);
            for (cell, b) in bytes.iter_mut().zip(head.chain(crc.finish().to_le_bytes()).chain(tail)) {
                *cell = b;
            }
        }
        Self { kind, digest: total > KEY_BYTES, len: u8::try_from(total).unwrap_or(u8::MAX), bytes }
    }

    /// The fallback key: INQUIRY vendor (8) + product (16) + unit serial.
    #[must_use]
    pub fn from_unit_serial(vendor: &[u8], product: &[u8], serial: &[u8]) -> Self {
        let mut vid = [b' '; 8];
        let mut pid = [b' '; 16];
        for (c, b) in vid.iter_mut().zip(vendor) {
            *c = *b;
        }
        for (c, b) in pid.iter_mut().zip(product) {
            *c = *b;
        }
        Self::from_parts(KeyKind::UnitSerial, &[&vid, &pid, serial])
    }

    /// Rebuilds a key from its persisted parts.
    #[must_use]
    pub const fn from_raw(kind: KeyKind, digest: bool, len: u8, bytes: [u8; KEY_BYTES]) -> Self {
        Self { kind, digest, len, bytes }
    }

    /// Where the key came from.
    #[must_use]
    pub const fn kind(&self) -> KeyKind {
        self.kind
    }

    /// `true` if the identifier was longer than 32 bytes and is digested.
    #[must_use]
    pub const fn is_digest(&self) -> bool {
        self.digest
    }

    /// The identifier's length (saturated at 255).
    #[must_use]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// `true` for an empty identifier (never produced by parsing).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key bytes (zero padded).
    #[must_use]
    pub const fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }

    /// The identifier bytes when held whole, else the digest form.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        let n = if self.digest { KEY_BYTES } else { usize::from(self.len) };
        self.bytes.get(..n).unwrap_or(&self.bytes)
    }

    /// CRC-32C of the key's full form (kind, flags, length, bytes), handy
    /// as a registry value name or hash.
    #[must_use]
    pub fn checksum(&self) -> u32 {
        let mut crc = crate::crc32c::Crc32c::new();
        crc.update(&[self.kind as u8, u8::from(self.digest), self.len]);
        crc.update(&self.bytes);
        crc.finish()
    }
}

/// The target port a path goes through, from the page 0x83 it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortIds {
    /// Relative target port identifier.
    pub relative_port: Option<u16>,
    /// Target port group.
    pub target_port_group: Option<u16>,
}

/// What `InquireDriver` learns about a device on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The LUN key (same on every path).
    pub key: LunKey,
    /// The target port of this path.
    pub ports: PortIds,
}

/// The identity of a device from its INQUIRY vendor / product and the VPD
/// pages it returned.
///
/// The key comes from page 0x83's logical-unit designators; without one,
/// from page 0x80 (with vendor and product, as serial numbers are unique
/// only per product). Port ids come from page 0x83.
///
/// # Errors
/// A malformed page 0x83 or 0x80 is an error even if the other page would
/// do: a device that returns garbage is not grouped on a guess.
/// [`IdentityError::NoIdentifier`] if neither page yields a key.
pub fn identify(
    vendor: &[u8],
    product: &[u8],
    vpd83: Option<&[u8]>,
    vpd80: Option<&[u8]>,
) -> Result<Identity, IdentityError> {
    let page = vpd83.map(Vpd83::parse).transpose()?;
    let ports = page.map_or_else(PortIds::default, |p| PortIds {
        relative_port: p.relative_target_port(),
        target_port_group: p.target_port_group(),
    });
    if let Some(key) = page.and_then(|p| p.lun_key()) {
        return Ok(Identity { key, ports });
    }
    let serial = vpd80.map(parse_unit_serial).transpose()?.filter(|s| !s.is_empty());
    let serial = serial.ok_or(IdentityError::NoIdentifier)?;
    Ok(Identity { key: LunKey::from_unit_serial(vendor, product, serial), ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NAA 6 (registered extended), 16 bytes, LU association, binary.
    const NAA6: [u8; 20] = [
        0x01, 0x03, 0x00, 0x10, 0x60, 0x0A, 0x0B, 0x80, 0x00, 0x12, 0x34, 0x56, 0x00, 0x00, 0x0A, 0xBC, 0x5F,
        0x01, 0x02, 0x03,
    ];
    /// EUI-64, 8 bytes, LU.
    const EUI64: [u8; 12] = [0x01, 0x02, 0x00, 0x08, 0x00, 0x11, 0x22, 0xFF, 0xFE, 0x33, 0x44, 0x55];
    /// T10 vendor id: "ACME    " + "SN0001", ASCII, LU.
    const T10: [u8; 18] = *b"\x02\x01\x00\x0eACME    SN0001";
    /// SCSI name string, UTF-8, LU, NUL padded to a multiple of 4.
    const NAME: [u8; 28] = *b"\x03\x08\x00\x18naa.600A0B800012345600\0\0";
    /// Relative target port 2, target port association, FC protocol (PIV).
    const RTP: [u8; 8] = [0x01, 0x80 | 0x10 | 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02];
    /// Target port group 0x0101, target port association.
    const TPG: [u8; 8] = [0x01, 0x15, 0x00, 0x04, 0x00, 0x00, 0x01, 0x01];
    /// Vendor specific, LU.
    const VS: [u8; 7] = [0x02, 0x00, 0x00, 0x03, b'X', b'Y', b'Z'];
    /// NAA of the target port (association 1): never a LUN key.
    const PORT_NAA: [u8; 12] = [0x01, 0x93, 0x00, 0x08, 0x50, 0x0A, 0x0B, 0x80, 0, 0, 0, 1];

    fn page(descriptors: &[&[u8]]) -> std::vec::Vec<u8> {
        let body: std::vec::Vec<u8> = descriptors.concat();
        let len = u16::try_from(body.len()).unwrap().to_be_bytes();
        [&[0x00, 0x83, len[0], len[1]][..], &body].concat()
    }

    #[test]
    fn designators_are_decoded_field_by_field() {
        let p = page(&[&NAA6, &RTP, &TPG, &PORT_NAA]);
        let page = Vpd83::parse(&p).unwrap();
        let all: std::vec::Vec<_> = page.designators().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0],
            Designator {
                code_set: 1,
                association: Association::LogicalUnit,
                kind: DesignatorKind::Naa,
                piv: false,
                protocol: 0,
                value: &NAA6[4..],
            }
        );
        assert_eq!(all[0].value[0] >> 4, 6, "NAA 6");
        assert_eq!(all[1].kind, DesignatorKind::RelativeTargetPort);
        assert_eq!(all[1].association, Association::TargetPort);
        assert!(all[1].piv);
        assert_eq!(all[3].association, Association::TargetPort);
        assert_eq!(page.relative_target_port(), Some(2));
        assert_eq!(page.target_port_group(), Some(0x0101));
        let key = page.lun_key().unwrap();
        assert_eq!((key.kind(), key.as_slice()), (KeyKind::Naa, &NAA6[4..]));
    }

    #[test]
    fn key_precedence() {
        type Case<'a> = (&'a [&'a [u8]], KeyKind, &'a [u8]);
        let cases: [Case<'_>; 6] = [
            (&[&VS, &T10, &EUI64, &NAA6, &NAME], KeyKind::ScsiName, b"naa.600A0B800012345600"),
            (&[&VS, &T10, &EUI64, &NAA6], KeyKind::Naa, &NAA6[4..]),
            (&[&T10, &VS, &EUI64, &PORT_NAA], KeyKind::Eui64, &EUI64[4..]),
            (&[&VS, &T10, &RTP], KeyKind::T10VendorId, b"ACME    SN0001"),
            (&[&RTP, &VS], KeyKind::VendorSpecific, b"XYZ"),
            (&[&NAME, &NAA6], KeyKind::ScsiName, b"naa.600A0B800012345600"),
        ];
        for (descriptors, kind, value) in cases {
            let p = page(descriptors);
            let key = Vpd83::parse(&p).unwrap().lun_key().unwrap();
            assert_eq!((key.kind(), key.as_slice()), (kind, value));
        }
        // Only port designators: no key from 0x83.
        let p = page(&[&RTP, &TPG, &PORT_NAA]);
        assert_eq!(Vpd83::parse(&p).unwrap().lun_key(), None);
    }

    #[test]
    fn same_lun_through_two_ports_gives_one_key() {
        let rtp1 = [0x01, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01];
        let a = page(&[&NAA6, &RTP, &TPG]);
        let b = page(&[&rtp1, &NAA6]);
        let ia = identify(b"ACME", b"ARRAY", Some(&a), None).unwrap();
        let ib = identify(b"ACME", b"ARRAY", Some(&b), None).unwrap();
        assert_eq!(ia.key, ib.key);
        assert_eq!(ia.ports, PortIds { relative_port: Some(2), target_port_group: Some(0x0101) });
        assert_eq!(ib.ports, PortIds { relative_port: Some(1), target_port_group: None });
    }

    #[test]
    fn unit_serial_fallback() {
        let serial = b"\x00\x80\x00\x0a  SER-42  ";
        assert_eq!(parse_unit_serial(serial), Ok(&b"SER-42"[..]));
        let only_ports = page(&[&RTP]);
        let id = identify(b"ACME    ", b"ARRAY", Some(&only_ports), Some(serial)).unwrap();
        assert_eq!(id.key.kind(), KeyKind::UnitSerial);
        assert_eq!(id.key, LunKey::from_unit_serial(b"ACME", b"ARRAY           ", b"SER-42"));
        assert_eq!(id.ports.relative_port, Some(2));
        assert_eq!(
            identify(b"A", b"B", None, Some(serial)).unwrap().key,
            LunKey::from_unit_serial(b"A", b"B", b"SER-42")
        );
        assert_eq!(identify(b"A", b"B", None, None), Err(IdentityError::NoIdentifier));
        assert_eq!(identify(b"A", b"B", None, Some(b"\x00\x80\x00\x02  ")), Err(IdentityError::NoIdentifier));
        assert_eq!(
            parse_unit_serial(b"\x00\x83\x00\x00"),
            Err(IdentityError::WrongPage { expected: 0x80, found: 0x83 })
        );
        assert_eq!(parse_unit_serial(b"\x00\x80\x00\x05abc"), Err(IdentityError::PageLengthPastBuffer));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let p = page(&[&NAA6, &EUI64, &T10, &NAME, &RTP, &TPG, &VS]);
        assert!(Vpd83::parse(&p).is_ok());
        for cut in 0..p.len() {
            let e = Vpd83::parse(&p[..cut]).unwrap_err();
            let expected =
                if cut < 4 { IdentityError::ShortHeader } else { IdentityError::PageLengthPastBuffer };
            assert_eq!(e, expected, "cut at {cut}");
        }
        // A page length that ends inside a descriptor (consistent header,
        // inconsistent descriptors), for every shorter page length.
        for len in 1..p.len() - 4 {
            let mut q = p[..4 + len].to_vec();
            q[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            let boundaries = [20, 32, 50, 78, 86, 94, 101];
            match Vpd83::parse(&q) {
                Ok(_) => assert!(boundaries.contains(&len), "len {len} parsed"),
                Err(e) => assert_eq!(e, IdentityError::DescriptorPastPage, "len {len}"),
            }
        }
    }

    #[test]
    fn malformed_pages_are_rejected() {
        assert_eq!(
            Vpd83::parse(&[0, 0x80, 0, 0]),
            Err(IdentityError::WrongPage { expected: 0x83, found: 0x80 })
        );
        // A descriptor claiming 200 bytes in a 12-byte page.
        assert_eq!(
            Vpd83::parse(&[0, 0x83, 0, 8, 1, 3, 0, 200, 1, 2, 3, 4]),
            Err(IdentityError::DescriptorPastPage)
        );
        // Trailing bytes after the page length are ignored.
        let mut p = page(&[&NAA6]);
        p.extend_from_slice(&[0xFF; 9]);
        assert_eq!(Vpd83::parse(&p).unwrap().designators().count(), 1);
        // An empty page is valid but identifies nothing.
        assert_eq!(Vpd83::parse(&[0, 0x83, 0, 0]).unwrap().designators().count(), 0);
        // A zero-length designator is accepted, but never a key.
        let p = page(&[&[0x01, 0x03, 0x00, 0x00]]);
        assert_eq!(Vpd83::parse(&p).unwrap().lun_key(), None);
    }

    #[test]
    fn long_identifiers_are_digested_stably() {
        let long_a = b"iqn.2001-04.com.example:storage.disk1.sys1.xyz.lun-0001";
        let long_b = b"iqn.2001-04.com.example:storage.disk1.sys1.xyz.lun-0002";
        let a = LunKey::from_parts(KeyKind::ScsiName, &[long_a]);
        let b = LunKey::from_parts(KeyKind::ScsiName, &[long_b]);
        assert!(a.is_digest());
        assert_ne!(a, b);
        assert_eq!(a, LunKey::from_parts(KeyKind::ScsiName, &[&long_a[..10], &long_a[10..]]));
        assert_eq!(&a.bytes()[..12], &long_a[..12]);
        assert_eq!(usize::from(a.len()), long_a.len());
        assert_eq!(a.as_slice().len(), 32);
        assert_ne!(a.checksum(), b.checksum());
    }
}
