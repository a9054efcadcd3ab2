//! Failback modes and the hold-down of flapping paths.

use crate::Tick;

/// When failover returns to the preferred (or primary) path after it comes
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailbackMode {
    /// As soon as the path is reinstated.
    Immediate,
    /// Only when asked ([`Lun::failback`](crate::Lun::failback)) or when a
    /// policy is set.
    Manual,
    /// This many ticks after the path is reinstated (if it is still usable
    /// then), so that a path that is about to fail again is not used.
    Delayed(Tick),
}

impl FailbackMode {
    pub(crate) const fn encode(self) -> (u8, Tick) {
        match self {
            Self::Immediate => (0, 0),
            Self::Manual => (1, 0),
            Self::Delayed(t) => (2, t),
        }
    }

    pub(crate) const fn decode(kind: u8, delay: Tick) -> Self {
        match kind {
            1 => Self::Manual,
            2 => Self::Delayed(delay),
            _ => Self::Immediate,
        }
    }
}

/// Hold-down of flapping paths: a path that fails `threshold` times with
/// less than `window` between consecutive failures is held down for `hold`
/// ticks after its last failure, doubling with each further failure up to
/// `max_hold`. A reinstatement during hold-down is refused, so one good
/// verify does not bring a flapping path back.
///
/// ```
/// use rsdsm_engine::FlapDamping;
/// let d = FlapDamping { window: 100, threshold: 2, hold: 10, max_hold: 35 };
/// assert_eq!(d.hold_for(1), 0);
/// assert_eq!(d.hold_for(2), 10);
/// assert_eq!(d.hold_for(3), 20);
/// assert_eq!(d.hold_for(5), 35);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlapDamping {
    /// Failures closer together than this count as one flapping episode.
    pub window: Tick,
    /// Failures in an episode before hold-down starts; 0 disables damping.
    pub threshold: u32,
    /// The first hold-down.
    pub hold: Tick,
    /// The longest hold-down.
    pub max_hold: Tick,
}

impl FlapDamping {
    /// No hold-down at all.
    pub const DISABLED: Self = Self { window: 0, threshold: 0, hold: 0, max_hold: 0 };

    /// Defaults for a tick rate: failures less than 60 s apart form an
    /// episode; the second one holds the path down 10 s, doubling up to 5 min.
    #[must_use]
    pub const fn for_tick_rate(ticks_per_second: u64) -> Self {
        Self {
            window: 60 * ticks_per_second,
            threshold: 2,
            hold: 10 * ticks_per_second,
            max_hold: 300 * ticks_per_second,
        }
    }

    /// The hold-down after the `failures`-th failure of an episode.
    #[must_use]
    pub const fn hold_for(&self, failures: u32) -> Tick {
        if self.threshold == 0 || failures < self.threshold {
            return 0;
        }
        let doublings = failures - self.threshold;
        let hold = if doublings >= 63 { Tick::MAX } else { self.hold.saturating_mul(1 << doublings) };
        if hold < self.max_hold { hold } else { self.max_hold }
    }

    /// The failure count of the episode after a failure at `now`, given the
    /// previous failure (if any) and the count so far.
    #[must_use]
    pub const fn failures_after(&self, previous: Option<Tick>, failures: u32, now: Tick) -> u32 {
        match previous {
            Some(at) if now.saturating_sub(at) < self.window => failures.saturating_add(1),
            _ => 1,
        }
    }
}

/// Per-LUN behaviour settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LunSettings {
    /// Failover only's failback mode.
    pub failback: FailbackMode,
    /// Hold-down of flapping paths.
    pub flap: FlapDamping,
    /// Least blocks' sequential window in bytes (0: no sequential affinity).
    pub sequential_window: u32,
}

impl LunSettings {
    /// Defaults for a tick rate: immediate failback, flap damping per
    /// [`FlapDamping::for_tick_rate`], a 1 MiB sequential window (the size
    /// Microsoft's DSM uses for its least-blocks cache).
    #[must_use]
    pub const fn for_tick_rate(ticks_per_second: u64) -> Self {
        Self {
            failback: FailbackMode::Immediate,
            flap: FlapDamping::for_tick_rate(ticks_per_second),
            sequential_window: 1 << 20,
        }
    }
}

impl Default for LunSettings {
    /// [`LunSettings::for_tick_rate`] with microsecond ticks.
    fn default() -> Self {
        Self::for_tick_rate(1_000_000)
    }
}

/// What [`Lun::reinstate_path`](crate::Lun::reinstate_path) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reinstatement {
    /// The path is in service again.
    Reinstated,
    /// The path was already in service.
    AlreadyInService,
    /// The path is flapping and stays out of service until this tick.
    HeldDown {
        /// When a reinstatement will next be accepted.
        until: Tick,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_count_only_close_failures() {
        let d = FlapDamping { window: 100, threshold: 2, hold: 10, max_hold: 1000 };
        assert_eq!(d.failures_after(None, 0, 5), 1);
        assert_eq!(d.failures_after(Some(5), 1, 50), 2);
        assert_eq!(d.failures_after(Some(50), 2, 149), 3);
        assert_eq!(d.failures_after(Some(149), 3, 249), 1, "a quiet window ends the episode");
    }

    #[test]
    fn hold_grows_and_saturates() {
        let d = FlapDamping { window: 1, threshold: 3, hold: 7, max_hold: u64::MAX };
        assert_eq!(d.hold_for(2), 0);
        assert_eq!(d.hold_for(3), 7);
        assert_eq!(d.hold_for(4), 14);
        assert_eq!(d.hold_for(u32::MAX), u64::MAX);
        assert_eq!(FlapDamping::DISABLED.hold_for(100), 0);
    }

    #[test]
    fn failback_modes_round_trip() {
        for m in [FailbackMode::Immediate, FailbackMode::Manual, FailbackMode::Delayed(42)] {
            let (k, d) = m.encode();
            assert_eq!(FailbackMode::decode(k, d), m);
        }
    }
}
