//! What the per-I/O API takes and gives back.

use crate::PathSlot;

/// A point in time, in the caller's units (the engine never reads a clock).
///
/// Every duration the engine is configured with (failback delay, hold-down,
/// probe interval) is in the same units. The kernel shim passes
/// `KeQueryInterruptTime` (100 ns), the simulator microseconds.
pub type Tick = u64;

/// What the DSM knows about one I/O when it asks for a path.
///
/// ```
/// use rsdsm_engine::IoRequest;
/// let io = IoRequest::read(4096).at_lba(2048, 8).on_cpu(1).at(10);
/// assert_eq!((io.bytes, io.lba, io.blocks, io.cpu, io.now), (4096, 2048, 8, 1, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoRequest {
    /// Transfer length in bytes.
    pub bytes: u32,
    /// `true` for a write.
    pub write: bool,
    /// Starting logical block (0 when the request has none).
    pub lba: u64,
    /// Transfer length in blocks (0 when the request has none).
    pub blocks: u32,
    /// The processor the request is issued on. Per-CPU policy state is
    /// indexed by it, so concurrent callers must pass distinct values (the
    /// kernel's current processor number at `DISPATCH_LEVEL` is).
    pub cpu: u32,
    /// The current tick.
    pub now: Tick,
}

impl IoRequest {
    /// A read of `bytes`.
    #[must_use]
    pub const fn read(bytes: u32) -> Self {
        Self { bytes, write: false, lba: 0, blocks: 0, cpu: 0, now: 0 }
    }

    /// A write of `bytes`.
    #[must_use]
    pub const fn write(bytes: u32) -> Self {
        Self { bytes, write: true, lba: 0, blocks: 0, cpu: 0, now: 0 }
    }

    /// With a starting block and a length in blocks.
    #[must_use]
    pub const fn at_lba(mut self, lba: u64, blocks: u32) -> Self {
        self.lba = lba;
        self.blocks = blocks;
        self
    }

    /// Issued on processor `cpu`.
    #[must_use]
    pub const fn on_cpu(mut self, cpu: u32) -> Self {
        self.cpu = cpu;
        self
    }

    /// Issued at tick `now`.
    #[must_use]
    pub const fn at(mut self, now: Tick) -> Self {
        self.now = now;
        self
    }
}

/// Proof that `start` counted an I/O on a path; give it back to `complete`.
///
/// It records exactly what `start` added, so completion subtracts the same
/// amounts whatever policy is in force by then. It is neither `Copy` nor
/// `Clone`: an I/O completes once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an I/O that was started must be completed"]
pub struct IoTicket {
    pub(crate) slot: PathSlot,
    pub(crate) write: bool,
    /// The counters block it counts in, as an index into the LUN's
    /// flattened table of blocks (`slot * BLOCKS + block`): the statistics
    /// stripe of the CPU that started it, or the path's shared block when a
    /// load-aware policy was in force (see `Lun::start`). Two bytes, so that
    /// the ticket stays two words.
    pub(crate) counters: u16,
    pub(crate) bytes: u32,
    pub(crate) started: Tick,
}

impl IoTicket {
    /// The path the I/O was counted on.
    #[must_use]
    pub const fn slot(&self) -> PathSlot {
        self.slot
    }

    /// The bytes counted in flight.
    #[must_use]
    pub const fn bytes(&self) -> u32 {
        self.bytes
    }

    /// When the I/O started.
    #[must_use]
    pub const fn started(&self) -> Tick {
        self.started
    }

    /// The ticket as two words, for a caller that must park it in atomics
    /// (the kernel shim keeps in-flight tickets in a lock-free table and
    /// hands MPIO only a small handle). Lossless:
    /// [`from_raw`](Self::from_raw) gives back an equal ticket.
    ///
    /// Layout: word 0 is [`started`](Self::started); word 1 holds
    /// [`bytes`](Self::bytes) in bits 0–31, the write flag in bit 32, the
    /// path slot in bits 40–47 and the counters block it counts in (a
    /// statistics stripe or the path's shared block) in bits 48–63. Every
    /// other bit is zero.
    ///
    /// A raw ticket is still a ticket: turn it back and complete it exactly
    /// once. Completing a copy twice, or a value that never came from
    /// `into_raw`, corrupts the path's in-flight counters (no memory
    /// unsafety: they are plain atomics).
    #[must_use]
    pub const fn into_raw(self) -> [u64; 2] {
        let flags = (self.write as u64) << 32;
        [self.started, self.bytes as u64 | flags | (self.slot.0 as u64) << 40 | (self.counters as u64) << 48]
    }

    /// The ticket [`into_raw`](Self::into_raw) gave `raw` for; `None` if a
    /// bit that `into_raw` never sets is set.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // fields masked/shifted to their width
    pub const fn from_raw(raw: [u64; 2]) -> Option<Self> {
        const USED: u64 = 0xFFFF_FFFF | 1 << 32 | 0xFF_FFFF << 40;
        let [started, packed] = raw;
        if packed & !USED != 0 {
            return None;
        }
        Some(Self {
            slot: PathSlot((packed >> 40) as u8),
            write: packed & 1 << 32 != 0,
            counters: (packed >> 48) as u16,
            bytes: packed as u32,
            started,
        })
    }
}

/// How an I/O ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOutcome {
    /// Completed successfully.
    Success,
    /// Completed with an error (counted in the path's error statistics).
    Error,
}

/// No path is usable for this I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoPath;

impl core::fmt::Display for NoPath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("no usable path")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tickets_round_trip_and_reject_stray_bits() {
        for (slot, write, counters, bytes, started) in [
            (0u8, false, 0u16, 0u32, 0u64),
            (63, true, u16::MAX, u32::MAX, u64::MAX),
            (17, false, 4, 4096, 123_456_789),
        ] {
            let raw = IoTicket { slot: PathSlot(slot), write, counters, bytes, started }.into_raw();
            let back = IoTicket::from_raw(raw).unwrap();
            assert_eq!(
                (back.slot, back.write, back.counters, back.bytes, back.started),
                (PathSlot(slot), write, counters, bytes, started)
            );
            assert_eq!(back.into_raw(), raw);
        }
        for stray in [1u64 << 33, 1 << 36, 1 << 39] {
            assert_eq!(IoTicket::from_raw([0, stray]), None);
        }
    }

    #[test]
    fn a_parked_ticket_completes_what_start_counted() {
        let lun: crate::Lun<4> = crate::Lun::new(crate::LoadBalancePolicy::RoundRobin);
        let slot = lun.add_path(crate::PathId::new(1, 1), crate::AccessState::ActiveOptimized).unwrap();
        let raw = lun.start(slot, &IoRequest::write(512).at(5)).into_raw();
        assert_eq!(lun.in_flight(), 1);
        lun.complete(IoTicket::from_raw(raw).unwrap(), 9, IoOutcome::Success);
        assert_eq!(lun.in_flight(), 0);
    }

    #[test]
    fn slots_from_indices_are_positions_checked_by_the_lun() {
        for i in [0usize, 1, 31, 63] {
            assert_eq!(PathSlot::from_index(i).map(PathSlot::index), Some(i));
        }
        assert_eq!(PathSlot::from_index(64), None);
        let lun: crate::Lun<4> = crate::Lun::new(crate::LoadBalancePolicy::RoundRobin);
        let empty = PathSlot::from_index(3).unwrap();
        assert!(lun.fail_path(empty, 1).is_err(), "a slot without a path is refused");
    }
}
