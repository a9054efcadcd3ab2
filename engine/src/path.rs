//! The path model: identity, ALUA access state, health and admin settings.

use bitflags::bitflags;

use crate::Tick;

/// A path's identity, laid out as VDS `VDS_PATH_ID`.
///
/// `source_id` names the DSM instance (VDS: `ullSourceId`), `path_id` the path
/// within it. Both are opaque to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PathId {
    /// The DSM's unique id (`ullSourceId`).
    pub source_id: u64,
    /// The path's id within that DSM (`ullPathId`).
    pub path_id: u64,
}

impl PathId {
    /// A path id from its two halves.
    #[must_use]
    pub const fn new(source_id: u64, path_id: u64) -> Self {
        Self { source_id, path_id }
    }
}

/// ALUA / ANA access state of the target port group a path leads to.
///
/// The discriminants are the ALUA codes of REPORT TARGET PORT GROUPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessState {
    /// Active/optimized: the preferred tier.
    ActiveOptimized = 0,
    /// Active/non-optimized: used only when no optimized path is usable.
    ActiveNonOptimized = 1,
    /// Standby: promoted only when no active path is usable.
    Standby = 2,
    /// Unavailable: never chosen.
    Unavailable = 3,
    /// Transitioning between states: never chosen.
    Transitioning = 15,
}

impl AccessState {
    /// The state for an ALUA code, or `None` for a code we do not model.
    #[must_use]
    pub const fn from_alua(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::ActiveOptimized),
            1 => Some(Self::ActiveNonOptimized),
            2 => Some(Self::Standby),
            3 => Some(Self::Unavailable),
            15 => Some(Self::Transitioning),
            _ => None,
        }
    }

    /// The ALUA code.
    #[must_use]
    pub const fn alua(self) -> u8 {
        self as u8
    }

    /// The selection tier of this state, or `None` if I/O may never use it.
    #[must_use]
    pub const fn tier(self) -> Option<Tier> {
        match self {
            Self::ActiveOptimized => Some(Tier::Optimized),
            Self::ActiveNonOptimized => Some(Tier::NonOptimized),
            Self::Standby => Some(Tier::Standby),
            Self::Unavailable | Self::Transitioning => None,
        }
    }
}

/// Selection tiers, best first. Every policy picks only from the best tier
/// that has a usable path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tier {
    /// Active/optimized paths.
    Optimized = 0,
    /// Active/non-optimized paths.
    NonOptimized = 1,
    /// Standby paths (promotion).
    Standby = 2,
}

/// Number of [`Tier`]s.
pub const TIER_COUNT: usize = 3;

/// A path's health as the DSM last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Health {
    /// In service.
    Healthy = 0,
    /// Failed; not used until reinstated.
    Failed = 1,
    /// Being verified (e.g. TEST UNIT READY / RTPG outstanding); not used.
    Verifying = 2,
    /// Removed from the LUN; the slot is free once its I/O has drained.
    Removed = 3,
}

impl Health {
    pub(crate) const fn from_raw(raw: u8) -> Self {
        match raw {
            0 => Self::Healthy,
            1 => Self::Failed,
            2 => Self::Verifying,
            _ => Self::Removed,
        }
    }
}

bitflags! {
    /// Admin flags of a path.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PathFlags: u8 {
        /// `bPrimaryPath`: in the active subset (failover only, round robin
        /// with subset).
        const PRIMARY = 0b01;
        /// The preferred path: failover only uses it whenever it is usable,
        /// and fails back to it.
        const PREFERRED = 0b10;
    }
}

/// Per-path settings of a `SetLoadBalancePolicy` call, as `VDS_PATH_POLICY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PathPolicy {
    /// The path.
    pub path_id: PathId,
    /// `bPrimaryPath`.
    pub primary: bool,
    /// `ulWeight`: for weighted paths the lowest weight wins; for weighted
    /// round robin and service time it is the path's relative share.
    pub weight: u32,
}

/// What `GetPathInfo` reports for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathInfo {
    /// The path.
    pub path_id: PathId,
    /// Table slot the path occupies in its LUN.
    pub slot: PathSlot,
    /// ALUA state.
    pub access: AccessState,
    /// Health.
    pub health: Health,
    /// Admin flags (primary, preferred).
    pub flags: PathFlags,
    /// Admin weight.
    pub weight: u32,
    /// Requests in flight now.
    pub in_flight: u32,
    /// `true` when the path is usable for I/O right now.
    pub usable: bool,
    /// If the path is held down after flapping: the tick it may return at.
    pub held_down_until: Option<Tick>,
}

/// A slot (or other index) known to be below `N`, masked into `0..N` when
/// `N` is a power of two (every real table): a no-op on such a value that
/// tells the compiler so, which drops the bounds check after it, a second
/// copy of the slot in a scan, and `pick`'s range test on the result.
#[inline(always)]
#[allow(clippy::inline_always)] // one `and`, or nothing
pub(crate) const fn in_table<const N: usize>(index: usize) -> usize {
    if N.is_power_of_two() { index & (N - 1) } else { index }
}

/// A path's slot in its LUN's fixed table: the O(1) handle the per-I/O API
/// uses instead of a [`PathId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathSlot(pub(crate) u8);

impl PathSlot {
    /// The slot index.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The slot with this index (`None` from 64 on, the largest table), for
    /// a caller that keeps slots in atomics as their [`index`](Self::index).
    /// A slot is only a position: every call that takes one checks that it
    /// holds a path of the LUN.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // index < 64
    pub const fn from_index(index: usize) -> Option<Self> {
        if index < 64 { Some(Self(index as u8)) } else { None }
    }
}
