//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
//! persisted records and of long LUN identifiers. Table driven; the table
//! is computed at compile time.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        #[allow(clippy::indexing_slicing)] // const context; i < 256 by the loop
        {
            table[i] = crc;
        }
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// An incremental CRC-32C.
#[derive(Debug, Clone, Copy)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A fresh computation.
    #[must_use]
    pub const fn new() -> Self {
        Self { state: !0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.state;
        for &b in bytes {
            let index = usize::from(crc.to_le_bytes()[0] ^ b);
            crc = (crc >> 8) ^ TABLE.get(index).copied().unwrap_or(0);
        }
        self.state = crc;
    }

    /// The checksum of everything fed.
    #[must_use]
    pub const fn finish(self) -> u32 {
        !self.state
    }
}

/// CRC-32C of `bytes`.
///
/// ```
/// assert_eq!(rsdsm::crc32c::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 B.4: 32 bytes of zeros, of ones.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let mut inc = Crc32c::new();
        inc.update(b"1234");
        inc.update(b"56789");
        assert_eq!(inc.finish(), 0xE306_9283);
    }
}
