//! REPORT TARGET PORT GROUPS (RTPG) parameter data.
//!
//! Header, length-only format: bytes 0..4 are the return data length (big
//! endian), the number of bytes that follow; descriptors start at byte 4.
//! Extended format: byte 4 carries format type 001b in bits 6..4 (0x10) and
//! byte 5 the implicit transition time in seconds; bytes 6..8 are reserved
//! and descriptors start at byte 8; the return data length still counts from
//! byte 4. The format is recognised from byte 4: in the length-only format
//! it is the first descriptor's byte 0, whose bits 6..4 are reserved (zero).
//!
//! A target port group descriptor (8 bytes + 4 per port): byte 0 = PREF
//! (0x80) and the asymmetric access state (low 4 bits); byte 1 = supported
//! states; bytes 2..4 = target port group id; byte 5 = status code; byte 7 =
//! target port count; then per port 2 reserved bytes and the relative target
//! port id.
//!
//! Access states the engine does not model (4 logical-block dependent, 14
//! offline, reserved codes) are reported as [`AccessState::Unavailable`]
//! (no I/O goes there), with the raw code kept in
//! [`TargetPortGroup::raw_state`]: a state we cannot use must not make the
//! whole report, and so the usable groups, unreadable.

use rsdsm_engine::AccessState;

/// Why RTPG data was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluaError {
    /// Shorter than the header.
    ShortHeader,
    /// The return data length runs past the buffer (allocation too small).
    LengthPastBuffer,
    /// A descriptor (or its port list) runs past the return data.
    DescriptorPastEnd,
}

/// The header's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpgFormat {
    /// Length-only header.
    LengthOnly,
    /// Extended header, with the implicit transition time in seconds.
    Extended {
        /// Implicit transition time (0: unspecified).
        implicit_transition_secs: u8,
    },
}

/// Checked RTPG parameter data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtpg<'a> {
    format: RtpgFormat,
    descriptors: &'a [u8],
}

impl<'a> Rtpg<'a> {
    /// Checks the header and every descriptor. Bytes past the return data
    /// length are ignored.
    ///
    /// # Errors
    /// [`AluaError`] for a short header, a length past the buffer or a
    /// descriptor past the data.
    pub fn parse(data: &'a [u8]) -> Result<Self, AluaError> {
        let [a, b, c, d, rest @ ..] = data else {
            return Err(AluaError::ShortHeader);
        };
        let len =
            usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])).map_err(|_| AluaError::LengthPastBuffer)?;
        let body = rest.get(..len).ok_or(AluaError::LengthPastBuffer)?;
        let (format, descriptors) = match body {
            [first, time, _, _, tail @ ..] if first & 0x70 == 0x10 => {
                (RtpgFormat::Extended { implicit_transition_secs: *time }, tail)
            }
            [first, ..] if first & 0x70 == 0x10 => return Err(AluaError::ShortHeader),
            _ => (RtpgFormat::LengthOnly, body),
        };
        let mut check = descriptors;
        while !check.is_empty() {
            let (_, tail) = split_descriptor(check).ok_or(AluaError::DescriptorPastEnd)?;
            check = tail;
        }
        Ok(Self { format, descriptors })
    }

    /// The header format.
    #[must_use]
    pub const fn format(&self) -> RtpgFormat {
        self.format
    }

    /// The target port groups, in report order.
    #[must_use]
    pub fn groups(&self) -> Groups<'a> {
        Groups { rest: self.descriptors }
    }

    /// The group a relative target port belongs to and its state.
    #[must_use]
    pub fn state_of_port(&self, relative_port: u16) -> Option<(u16, AccessState)> {
        self.groups().find(|g| g.ports().any(|p| p == relative_port)).map(|g| (g.id, g.state))
    }

    /// The state of a target port group.
    #[must_use]
    pub fn state_of_group(&self, tpg: u16) -> Option<AccessState> {
        self.groups().find(|g| g.id == tpg).map(|g| g.state)
    }
}

/// Splits one descriptor (header + ports) off the front.
fn split_descriptor(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let count = usize::from(*data.get(7)?);
    let len = 8 + 4 * count;
    Some((data.get(..len)?, data.get(len..)?))
}

/// [`state_of_port`](Rtpg::state_of_port) on raw data.
///
/// # Errors
/// As [`Rtpg::parse`].
pub fn state_of_port(rtpg: &[u8], relative_port: u16) -> Result<Option<(u16, AccessState)>, AluaError> {
    Rtpg::parse(rtpg).map(|r| r.state_of_port(relative_port))
}

/// One target port group descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPortGroup<'a> {
    /// Target port group id.
    pub id: u16,
    /// Asymmetric access state (unmodelled codes as `Unavailable`).
    pub state: AccessState,
    /// The raw 4-bit state code.
    pub raw_state: u8,
    /// PREF: the group is preferred.
    pub preferred: bool,
    /// Supported-states byte (`T_SUP` 0x80, `O_SUP` 0x40, `LBD_SUP` 0x10,
    /// `U_SUP` 0x08, `S_SUP` 0x04, `AN_SUP` 0x02, `AO_SUP` 0x01).
    pub supported: u8,
    /// Status code (0 none, 1 changed by STPG, 2 changed implicitly).
    pub status: u8,
    ports: &'a [u8],
}

impl<'a> TargetPortGroup<'a> {
    /// The relative target port ids of the group.
    #[must_use]
    pub fn ports(&self) -> Ports<'a> {
        Ports { rest: self.ports }
    }

    /// Number of ports.
    #[must_use]
    pub const fn port_count(&self) -> usize {
        self.ports.len() / 4
    }
}

/// Iterator over target port groups.
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Groups<'a> {
    type Item = TargetPortGroup<'a>;

    fn next(&mut self) -> Option<TargetPortGroup<'a>> {
        let Some((descriptor, rest)) = split_descriptor(self.rest) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        let [b0, supported, id_hi, id_lo, _, status, _, _, ports @ ..] = descriptor else {
            return None;
        };
        let raw_state = b0 & 0x0F;
        Some(TargetPortGroup {
            id: u16::from_be_bytes([*id_hi, *id_lo]),
            state: AccessState::from_alua(raw_state).unwrap_or(AccessState::Unavailable),
            raw_state,
            preferred: b0 & 0x80 != 0,
            supported: *supported,
            status: *status,
            ports,
        })
    }
}

/// Iterator over the relative target port ids of a group.
#[derive(Debug, Clone)]
pub struct Ports<'a> {
    rest: &'a [u8],
}

impl Iterator for Ports<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        let [_, _, hi, lo, rest @ ..] = self.rest else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(u16::from_be_bytes([*hi, *lo]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Group 1: A/O, preferred, ports 1 and 2. Group 2: standby, ports 3,
    /// 4, 5.
    const GROUPS: [u8; 36] = [
        0x80, 0x8F, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, //
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, //
        0x02, 0x8F, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, //
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05,
    ];

    fn length_only() -> std::vec::Vec<u8> {
        [&36u32.to_be_bytes()[..], &GROUPS].concat()
    }

    fn extended() -> std::vec::Vec<u8> {
        [&40u32.to_be_bytes()[..], &[0x10, 60, 0, 0], &GROUPS].concat()
    }

    #[test]
    fn two_groups_in_both_formats() {
        for (data, format) in [
            (length_only(), RtpgFormat::LengthOnly),
            (extended(), RtpgFormat::Extended { implicit_transition_secs: 60 }),
        ] {
            let r = Rtpg::parse(&data).unwrap();
            assert_eq!(r.format(), format);
            let groups: std::vec::Vec<_> = r.groups().collect();
            assert_eq!(groups.len(), 2);
            let (a, b) = (groups[0], groups[1]);
            assert_eq!(
                (a.id, a.state, a.preferred, a.supported, a.status),
                (1, AccessState::ActiveOptimized, true, 0x8F, 2)
            );
            assert_eq!(a.ports().collect::<std::vec::Vec<_>>(), [1, 2]);
            assert_eq!((b.id, b.state, b.preferred), (2, AccessState::Standby, false));
            assert_eq!(b.ports().collect::<std::vec::Vec<_>>(), [3, 4, 5]);
            assert_eq!(b.port_count(), 3);
            assert_eq!(r.state_of_port(2), Some((1, AccessState::ActiveOptimized)));
            assert_eq!(r.state_of_port(5), Some((2, AccessState::Standby)));
            assert_eq!(r.state_of_port(9), None);
            assert_eq!(r.state_of_group(2), Some(AccessState::Standby));
            assert_eq!(state_of_port(&data, 3), Ok(Some((2, AccessState::Standby))));
        }
    }

    #[test]
    fn unmodelled_states_are_unavailable() {
        let mut data = length_only();
        data[4] = 0x0E; // offline
        let g = Rtpg::parse(&data).unwrap().groups().next().unwrap();
        assert_eq!((g.state, g.raw_state, g.preferred), (AccessState::Unavailable, 0x0E, false));
        data[4] = 0x0F;
        assert_eq!(Rtpg::parse(&data).unwrap().state_of_port(1), Some((1, AccessState::Transitioning)));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for data in [length_only(), extended()] {
            for cut in 0..data.len() {
                let e = Rtpg::parse(&data[..cut]).unwrap_err();
                let expected = if cut < 4 { AluaError::ShortHeader } else { AluaError::LengthPastBuffer };
                assert_eq!(e, expected, "cut {cut}");
            }
            // A consistent header with a shorter return data length: only
            // descriptor boundaries parse.
            let header = if data[4] == 0x10 { 4 } else { 0 };
            for len in 1..data.len() - 4 {
                let mut d = data[..4 + len].to_vec();
                d[..4].copy_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
                let ok = len == header + 16 || (header == 4 && len == 4);
                match Rtpg::parse(&d) {
                    Ok(r) => assert!(ok, "len {len} parsed: {r:?}"),
                    Err(e) => {
                        assert!(!ok, "len {len}: {e:?}");
                        let expected = if header == 4 && len < 4 {
                            AluaError::ShortHeader
                        } else {
                            AluaError::DescriptorPastEnd
                        };
                        assert_eq!(e, expected, "len {len}");
                    }
                }
            }
        }
        // A length of 4 GiB on a short buffer.
        assert_eq!(Rtpg::parse(&[0xFF, 0xFF, 0xFF, 0xFF, 0]), Err(AluaError::LengthPastBuffer));
        // Empty report.
        assert_eq!(Rtpg::parse(&[0, 0, 0, 0]).unwrap().groups().count(), 0);
    }
}
