//! The fixed LUN table behind [`Dsm`](crate::dsm::Dsm): one [`LunSlot`]
//! per LUN, each holding the engine's [`Lun`], the LUN's key and id, and the
//! target port / port group of every path.
//!
//! Every field is an atomic, so the whole table can be built by a `const fn`
//! (and live in a `static`), read from any CPU without a lock, and changed
//! under the DSM's registry lock without `unsafe`.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use rsdsm_engine::{LoadBalancePolicy, Lun};

use crate::identity::{KEY_BYTES, KeyKind, LunKey, PortIds};

/// The DSM's handle of a LUN: the wire protocol's [`LunId`], so a handle
/// listed by `ListLuns` is exactly the one per-LUN requests name. Unique
/// within a boot, never reused.
///
/// The low 16 bits are the table index, the rest a sequence number that
/// grows with every LUN arrival, so a handle to a removed LUN never reaches
/// the LUN that reuses its table entry.
pub use rsdsm_engine::wire::LunId;

/// The handle of the `sequence`-th LUN arrival, in table entry `index`.
pub(crate) const fn new_lun_id(sequence: u64, index: usize) -> LunId {
    #[allow(clippy::cast_possible_truncation)] // index < 65536, asserted by Dsm
    LunId((sequence << 16) | (index as u64 & 0xFFFF))
}

/// The table entry a handle points at.
pub(crate) const fn lun_index(id: LunId) -> usize {
    (id.0 & 0xFFFF) as usize
}

/// A short spin lock serialising registry changes (PnP-rate, PASSIVE level
/// in the kernel). The per-I/O path never takes it.
#[derive(Debug)]
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

pub(crate) struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl SpinLock {
    pub(crate) const fn new() -> Self {
        Self { locked: AtomicBool::new(false) }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
        SpinGuard { lock: self }
    }
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// A [`LunKey`] in atomics. Written only while its owner is not yet
/// published (the registry lock and a non-live slot here; a reserved handle
/// in [`mpio`](crate::mpio)); read after the owner is seen published (Acquire).
#[derive(Debug)]
pub(crate) struct KeyCell {
    meta: AtomicU64,
    words: [AtomicU64; KEY_BYTES / 8],
}

impl KeyCell {
    pub(crate) const fn new() -> Self {
        Self { meta: AtomicU64::new(0), words: [const { AtomicU64::new(0) }; KEY_BYTES / 8] }
    }

    pub(crate) fn store(&self, key: &LunKey) {
        let meta = u64::from(key.kind() as u8) | u64::from(key.is_digest()) << 8 | u64::from(key.len()) << 16;
        self.meta.store(meta | 1 << 32, Ordering::Relaxed);
        for (cell, chunk) in self.words.iter().zip(key.bytes().chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            cell.store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }

    pub(crate) fn load(&self) -> Option<LunKey> {
        let meta = self.meta.load(Ordering::Relaxed);
        if meta >> 32 == 0 {
            return None;
        }
        let [kind, digest, len, ..] = meta.to_le_bytes();
        let mut bytes = [0u8; KEY_BYTES];
        for (chunk, cell) in bytes.chunks_exact_mut(8).zip(&self.words) {
            chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
        }
        Some(LunKey::from_raw(KeyKind::from_code(kind)?, digest != 0, len, bytes))
    }
}

const HAS_PORT: u64 = 1 << 32;
const HAS_TPG: u64 = 1 << 33;

pub(crate) const fn encode_ports(p: PortIds) -> u64 {
    let mut v = 0;
    if let Some(port) = p.relative_port {
        v |= HAS_PORT | port as u64;
    }
    if let Some(tpg) = p.target_port_group {
        v |= HAS_TPG | (tpg as u64) << 16;
    }
    v
}

#[allow(clippy::cast_possible_truncation)] // 16-bit fields by construction
pub(crate) const fn decode_ports(v: u64) -> PortIds {
    PortIds {
        relative_port: if v & HAS_PORT != 0 { Some(v as u16) } else { None },
        target_port_group: if v & HAS_TPG != 0 { Some((v >> 16) as u16) } else { None },
    }
}

pub(crate) const FREE: u8 = 0;
pub(crate) const LIVE: u8 = 1;
pub(crate) const REMOVED: u8 = 2;

/// One entry of the LUN table.
#[derive(Debug)]
pub struct LunSlot<const P: usize> {
    pub(crate) state: AtomicU8,
    pub(crate) id: AtomicU64,
    key: KeyCell,
    pub(crate) ports: [AtomicU64; P],
    pub(crate) lun: Lun<P>,
}

impl<const P: usize> LunSlot<P> {
    /// A free entry.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(FREE),
            id: AtomicU64::new(0),
            key: KeyCell::new(),
            ports: [const { AtomicU64::new(0) }; P],
            lun: Lun::new(LoadBalancePolicy::RoundRobin),
        }
    }

    pub(crate) fn key(&self) -> Option<LunKey> {
        self.key.load()
    }

    pub(crate) fn set_key(&self, key: &LunKey) {
        self.key.store(key);
    }

    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) == LIVE
    }

    pub(crate) fn ports_of(&self, slot: usize) -> PortIds {
        self.ports.get(slot).map_or(PortIds::default(), |c| decode_ports(c.load(Ordering::Relaxed)))
    }

    pub(crate) fn set_ports(&self, slot: usize, ports: PortIds) {
        if let Some(c) = self.ports.get(slot) {
            c.store(encode_ports(ports), Ordering::Relaxed);
        }
    }
}

impl<const P: usize> Default for LunSlot<P> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ports_round_trip_through_atomics() {
        let cell = KeyCell::new();
        assert_eq!(cell.load(), None);
        for key in [
            LunKey::from_parts(KeyKind::Naa, &[&[0x60, 1, 2, 3, 4, 5, 6, 7]]),
            LunKey::from_parts(KeyKind::ScsiName, &[&[b'x'; 80]]),
            LunKey::from_unit_serial(b"V", b"P", b"S"),
        ] {
            cell.store(&key);
            assert_eq!(cell.load(), Some(key));
        }
        for p in [
            PortIds::default(),
            PortIds { relative_port: Some(0), target_port_group: None },
            PortIds { relative_port: Some(0xFFFF), target_port_group: Some(0) },
            PortIds { relative_port: None, target_port_group: Some(0xABCD) },
        ] {
            assert_eq!(decode_ports(encode_ports(p)), p);
        }
        let id = new_lun_id(5, 17);
        assert_eq!((lun_index(id), id.0 >> 16), (17, 5));
    }
}
