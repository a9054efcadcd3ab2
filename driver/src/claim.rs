//! The claim decision: which devices this DSM takes, from a supported-device
//! list shaped like Windows' `MPIOSupportedDeviceList`.
//!
//! An entry is a hardware id of 24 ASCII characters: an 8-character vendor
//! id (VID) followed by a 16-character product id (PID), both padded with
//! spaces, exactly as the INQUIRY data carries them. Matching follows what
//! administrators know from `mpclaim` and the Microsoft DSM:
//!
//! * the VID must match exactly (after padding), ignoring ASCII case;
//! * the entry's PID is a prefix: its trailing spaces are not compared, so
//!   `"ARRAY"` padded to 16 characters matches `"ARRAY-X500"` and `"ARRAY"`.
//!   An all-space PID matches every product of the vendor.
//!
//! [`ClaimList::from_multi_sz`] reads the list as the registry stores it
//! (`REG_MULTI_SZ`, UTF-16), [`ClaimList::from_strs`] from any `&str` list.

use heapless::Vec;

/// Length of the vendor id in INQUIRY data and in a hardware id.
pub const VID_LEN: usize = 8;
/// Length of the product id in INQUIRY data and in a hardware id.
pub const PID_LEN: usize = 16;
/// Length of a whole hardware id entry.
pub const ENTRY_LEN: usize = VID_LEN + PID_LEN;

/// Why a supported-device entry was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Longer than 24 characters.
    TooLong,
    /// Empty, or only spaces in the vendor id.
    Empty,
    /// A character outside printable ASCII (INQUIRY ids are ASCII).
    NotAscii,
    /// The list is full.
    Full,
}

/// One supported-device entry: VID and PID, space padded, as upper case
/// ASCII (so matching is case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId {
    bytes: [u8; ENTRY_LEN],
}

impl DeviceId {
    /// Parses an entry: `"VENDOR  PRODUCT         "`. Shorter strings are
    /// padded with spaces; the first 8 characters are always the VID.
    ///
    /// # Errors
    /// [`ClaimError::TooLong`] beyond 24 characters, [`ClaimError::Empty`]
    /// for a blank VID, [`ClaimError::NotAscii`] for non-printable or
    /// non-ASCII characters.
    pub fn parse(entry: &str) -> Result<Self, ClaimError> {
        Self::from_units(entry.bytes().map(u16::from))
    }

    /// Parses an entry given as UTF-16 code units (a registry string).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn from_utf16(entry: &[u16]) -> Result<Self, ClaimError> {
        Self::from_units(entry.iter().copied())
    }

    fn from_units(units: impl Iterator<Item = u16>) -> Result<Self, ClaimError> {
        let mut bytes = [b' '; ENTRY_LEN];
        let mut cells = bytes.iter_mut();
        for unit in units {
            let cell = cells.next().ok_or(ClaimError::TooLong)?;
            let byte = u8::try_from(unit).map_err(|_| ClaimError::NotAscii)?;
            if !(0x20..0x7F).contains(&byte) {
                return Err(ClaimError::NotAscii);
            }
            *cell = byte.to_ascii_uppercase();
        }
        if bytes.iter().take(VID_LEN).all(|&b| b == b' ') {
            return Err(ClaimError::Empty);
        }
        Ok(Self { bytes })
    }

    /// The 24 bytes, upper case, space padded.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; ENTRY_LEN] {
        &self.bytes
    }

    /// `true` if INQUIRY `vendor` / `product` (as the device reports them,
    /// usually 8 and 16 bytes, space padded) match this entry.
    ///
    /// Short INQUIRY fields are treated as space padded; bytes beyond 8 / 16
    /// are ignored.
    #[must_use]
    pub fn matches(&self, vendor: &[u8], product: &[u8]) -> bool {
        let (vid, pid) = self.bytes.split_at(VID_LEN);
        let padded = |field: &[u8], i: usize| field.get(i).copied().unwrap_or(b' ').to_ascii_uppercase();
        let vid_ok = vid.iter().enumerate().all(|(i, &b)| padded(vendor, i) == b);
        // The significant part of the PID: up to its last non-space byte.
        let significant = pid.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        let pid_ok = pid.iter().take(significant).enumerate().all(|(i, &b)| padded(product, i) == b);
        vid_ok && pid_ok
    }
}

/// A supported-device list of at most `N` entries.
#[derive(Debug, Clone, Default)]
pub struct ClaimList<const N: usize> {
    entries: Vec<DeviceId, N>,
}

impl<const N: usize> ClaimList<N> {
    /// An empty list (claims nothing).
    #[must_use]
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// A list from entries given as strings.
    ///
    /// # Errors
    /// The first entry's [`ClaimError`], or [`ClaimError::Full`].
    pub fn from_strs<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, ClaimError> {
        let mut list = Self::new();
        for entry in entries {
            list.add(DeviceId::parse(entry)?)?;
        }
        Ok(list)
    }

    /// A list from a `REG_MULTI_SZ` value: UTF-16 strings, each ended by a
    /// NUL, the list ended by an empty string. A missing final terminator is
    /// tolerated (the registry does not enforce it); empty strings inside are
    /// the end of the list.
    ///
    /// # Errors
    /// The first entry's [`ClaimError`], or [`ClaimError::Full`].
    pub fn from_multi_sz(value: &[u16]) -> Result<Self, ClaimError> {
        let mut list = Self::new();
        for entry in value.split(|&u| u == 0) {
            if entry.is_empty() {
                break;
            }
            list.add(DeviceId::from_utf16(entry)?)?;
        }
        Ok(list)
    }

    /// Adds an entry; adding one that is present changes nothing.
    ///
    /// # Errors
    /// [`ClaimError::Full`] when the list holds `N` entries.
    pub fn add(&mut self, id: DeviceId) -> Result<(), ClaimError> {
        if self.contains(&id) {
            return Ok(());
        }
        self.entries.push(id).map_err(|_| ClaimError::Full)
    }

    /// Removes an entry; `true` if it was there.
    pub fn remove(&mut self, id: &DeviceId) -> bool {
        match self.entries.iter().position(|e| e == id) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// `true` if exactly this entry is in the list.
    #[must_use]
    pub fn contains(&self, id: &DeviceId) -> bool {
        self.entries.iter().any(|e| e == id)
    }

    /// `true` if a device with INQUIRY `vendor` / `product` is claimed.
    #[must_use]
    pub fn claims(&self, vendor: &[u8], product: &[u8]) -> bool {
        self.entries.iter().any(|e| e.matches(vendor, product))
    }

    /// The entries.
    #[must_use]
    pub fn entries(&self) -> &[DeviceId] {
        &self.entries
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` without entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> std::vec::Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn short_entries_are_padded_and_upper_cased() {
        let id = DeviceId::parse("acme    Box").unwrap();
        assert_eq!(id.as_bytes(), b"ACME    BOX             ");
        assert_eq!(DeviceId::parse("ACME").unwrap().as_bytes(), b"ACME                    ");
    }

    #[test]
    fn entries_longer_than_24_are_rejected() {
        assert!(DeviceId::parse("ACME    0123456789ABCDEF").is_ok());
        assert_eq!(DeviceId::parse("ACME    0123456789ABCDEFG"), Err(ClaimError::TooLong));
        assert_eq!(DeviceId::parse(""), Err(ClaimError::Empty));
        assert_eq!(DeviceId::parse("        PRODUCT"), Err(ClaimError::Empty));
        assert_eq!(DeviceId::parse("ACMÉ"), Err(ClaimError::NotAscii));
        assert_eq!(DeviceId::parse("AC\tME"), Err(ClaimError::NotAscii));
    }

    #[test]
    fn vid_is_exact_and_pid_is_a_prefix() {
        let id = DeviceId::parse("ACME    ARRAY").unwrap();
        assert!(id.matches(b"ACME    ", b"ARRAY           "));
        assert!(id.matches(b"ACME    ", b"ARRAY-X500      "));
        assert!(id.matches(b"acme    ", b"array-x500      "), "case-insensitive");
        assert!(id.matches(b"ACME", b"ARRAY"), "short INQUIRY fields are padded");
        assert!(!id.matches(b"ACME    ", b"ARRA            "));
        assert!(!id.matches(b"ACME    ", b"DISK            "));
        assert!(!id.matches(b"ACMEX   ", b"ARRAY           "), "VID is not a prefix match");
        assert!(!id.matches(b"ACM     ", b"ARRAY           "));
        assert!(!id.matches(b"", b""));

        let any = DeviceId::parse("ACME").unwrap();
        assert!(any.matches(b"ACME    ", b"WHATEVER        "));
        assert!(!any.matches(b"OTHER   ", b"WHATEVER        "));
    }

    #[test]
    fn list_add_remove_contains_claims() {
        let mut list: ClaimList<2> = ClaimList::new();
        let a = DeviceId::parse("ACME    ARRAY").unwrap();
        let b = DeviceId::parse("OTHER   DISK").unwrap();
        assert!(!list.claims(b"ACME    ", b"ARRAY           "));
        list.add(a).unwrap();
        list.add(a).unwrap();
        assert_eq!(list.len(), 1);
        list.add(b).unwrap();
        assert_eq!(list.add(DeviceId::parse("THIRD").unwrap()), Err(ClaimError::Full));
        assert!(list.contains(&b));
        assert!(list.claims(b"ACME    ", b"ARRAY 2         "));
        assert!(list.claims(b"other   ", b"disk            "));
        assert!(list.remove(&a));
        assert!(!list.remove(&a));
        assert!(!list.claims(b"ACME    ", b"ARRAY           "));
    }

    #[test]
    fn multi_sz_and_str_lists() {
        let mut raw = utf16("ACME    ARRAY\0other   disk            \0\0");
        let list: ClaimList<4> = ClaimList::from_multi_sz(&raw).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.claims(b"OTHER   ", b"DISK            "));
        // Without the final terminator, and with garbage after the end marker.
        raw.truncate(raw.len() - 2);
        assert_eq!(ClaimList::<4>::from_multi_sz(&raw).unwrap().len(), 2);
        assert_eq!(ClaimList::<4>::from_multi_sz(&utf16("A\0\0B\0")).unwrap().len(), 1);
        assert!(ClaimList::<4>::from_multi_sz(&[]).unwrap().is_empty());
        assert_eq!(
            ClaimList::<4>::from_multi_sz(&utf16("ACME    0123456789ABCDEFX\0")).unwrap_err(),
            ClaimError::TooLong
        );
        assert_eq!(ClaimList::<4>::from_multi_sz(&[0x41, 0x3A9, 0]).unwrap_err(), ClaimError::NotAscii);

        let list: ClaimList<4> = ClaimList::from_strs(["ACME    ARRAY", "OTHER"]).unwrap();
        assert!(list.claims(b"OTHER   ", b"ANYTHING"));
        assert_eq!(ClaimList::<1>::from_strs(["A", "B"]).unwrap_err(), ClaimError::Full);
    }
}
