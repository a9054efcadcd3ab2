//! Load-balance policies: one file per policy behind one small interface.
//!
//! A policy is a `Selector`: given a `Context` (the LUN's usable paths by
//! tier, their load, the policy configuration and this CPU's rotation state)
//! it picks a slot or says none is usable. A rotation policy also says which
//! paths it rotates over in a settled state (`Selector::rotation_set`), so
//! that the LUN can serve it from one precomputed word. Policies hold no state of their
//! own; what they remember between I/Os lives in the LUN (per-CPU cursors,
//! the failover path, the sequential stream), so a policy change is nothing
//! but a change of the number the dispatcher matches on.
//!
//! Every policy first narrows the usable paths to the best tier
//! (`Context::best_tier`); failed, removed, unavailable and transitioning
//! paths are never in any tier, so they can never be picked.

mod adaptive_latency;
mod failover_only;
mod least_blocks;
mod least_queue_depth;
mod round_robin;
mod round_robin_with_subset;
mod service_time;
mod weighted_paths;
mod weighted_round_robin;

use bitflags::bitflags;

use crate::IoRequest;
use crate::config::{AdminTable, ConfigRead};
use crate::error::{Error, Invalid};
use crate::lun::{CpuState, Lun};
use crate::path::TIER_COUNT;
use crate::path::in_table;
use crate::stats::Counters;
use crate::sync::Ordering::Relaxed;

/// A LUN's load-balance policy, numbered as `VDS_LOADBALANCE_POLICY_ENUM`.
///
/// ```
/// use rsdsm_engine::{LoadBalancePolicy, VendorPolicy};
/// assert_eq!(LoadBalancePolicy::LeastQueueDepth.vds_number(), 4);
/// assert_eq!(
///     LoadBalancePolicy::from_vds(7, 1),
///     Ok(LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin))
/// );
/// assert!(LoadBalancePolicy::from_vds(0, 0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadBalancePolicy {
    /// 1: all I/O on one path; another takes over on failure.
    FailoverOnly,
    /// 2: rotate over every usable path of the best tier.
    RoundRobin,
    /// 3: rotate over the primary subset of the best tier; its non-primary
    /// paths only when none of its primary paths is usable.
    RoundRobinWithSubset,
    /// 4: fewest requests in flight; ties rotate.
    LeastQueueDepth,
    /// 5: the lowest weight wins; equal lowest weights rotate.
    WeightedPaths,
    /// 6: fewest bytes in flight; ties rotate; sequential streams stay put.
    LeastBlocks,
    /// 7: an rsdsm extension, chosen by its sub-policy.
    VendorSpecific(VendorPolicy),
}

/// rsdsm's vendor-specific policies (VDS policy 7), by sub-policy id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum VendorPolicy {
    /// 1: shares proportional to weight, smoothly interleaved.
    WeightedRoundRobin = 1,
    /// 2: least (bytes in flight + this I/O) ÷ relative throughput (weight).
    ServiceTime = 2,
    /// 3: least expected latency from the observed EWMA; probes idle paths.
    AdaptiveLatency = 3,
}

impl VendorPolicy {
    /// Every vendor policy, by id.
    pub const ALL: [Self; 3] = [Self::WeightedRoundRobin, Self::ServiceTime, Self::AdaptiveLatency];

    /// The sub-policy id.
    #[must_use]
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The policy for a sub-policy id.
    #[must_use]
    pub const fn from_id(id: u32) -> Option<Self> {
        match id {
            1 => Some(Self::WeightedRoundRobin),
            2 => Some(Self::ServiceTime),
            3 => Some(Self::AdaptiveLatency),
            _ => None,
        }
    }
}

impl LoadBalancePolicy {
    /// Every policy the engine implements.
    pub const ALL: [Self; 9] = [
        Self::FailoverOnly,
        Self::RoundRobin,
        Self::RoundRobinWithSubset,
        Self::LeastQueueDepth,
        Self::WeightedPaths,
        Self::LeastBlocks,
        Self::VendorSpecific(VendorPolicy::WeightedRoundRobin),
        Self::VendorSpecific(VendorPolicy::ServiceTime),
        Self::VendorSpecific(VendorPolicy::AdaptiveLatency),
    ];

    /// The `VDS_LOADBALANCE_POLICY_ENUM` value.
    #[must_use]
    pub const fn vds_number(self) -> u32 {
        match self {
            Self::FailoverOnly => 1,
            Self::RoundRobin => 2,
            Self::RoundRobinWithSubset => 3,
            Self::LeastQueueDepth => 4,
            Self::WeightedPaths => 5,
            Self::LeastBlocks => 6,
            Self::VendorSpecific(_) => 7,
        }
    }

    /// The vendor sub-policy id, 0 for the standard policies.
    #[must_use]
    pub const fn vendor_id(self) -> u32 {
        match self {
            Self::VendorSpecific(v) => v.id(),
            _ => 0,
        }
    }

    /// The policy for a VDS number and (for 7) a vendor sub-policy id.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPolicy`]) for 0 (`UNKNOWN`), values
    /// above 7, an unknown vendor sub-policy, or a sub-policy given with a
    /// standard policy.
    pub const fn from_vds(number: u32, vendor: u32) -> Result<Self, Error> {
        let policy = match (number, vendor) {
            (1, 0) => Self::FailoverOnly,
            (2, 0) => Self::RoundRobin,
            (3, 0) => Self::RoundRobinWithSubset,
            (4, 0) => Self::LeastQueueDepth,
            (5, 0) => Self::WeightedPaths,
            (6, 0) => Self::LeastBlocks,
            (7, id) => match VendorPolicy::from_id(id) {
                Some(v) => Self::VendorSpecific(v),
                None => return Err(Error::InvalidArgument(Invalid::UnknownPolicy)),
            },
            _ => return Err(Error::InvalidArgument(Invalid::UnknownPolicy)),
        };
        Ok(policy)
    }

    /// Short name, as administrators know them from `mpclaim` and the MPIO
    /// cmdlets (FOO, RR, RRWS, LQD, WP, LB) plus ours for the extensions.
    #[must_use]
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::FailoverOnly => "FOO",
            Self::RoundRobin => "RR",
            Self::RoundRobinWithSubset => "RRWS",
            Self::LeastQueueDepth => "LQD",
            Self::WeightedPaths => "WP",
            Self::LeastBlocks => "LB",
            Self::VendorSpecific(VendorPolicy::WeightedRoundRobin) => "WRR",
            Self::VendorSpecific(VendorPolicy::ServiceTime) => "ST",
            Self::VendorSpecific(VendorPolicy::AdaptiveLatency) => "AL",
        }
    }

    /// Long name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::FailoverOnly => "failover-only",
            Self::RoundRobin => "round-robin",
            Self::RoundRobinWithSubset => "round-robin-with-subset",
            Self::LeastQueueDepth => "least-queue-depth",
            Self::WeightedPaths => "weighted-paths",
            Self::LeastBlocks => "least-blocks",
            Self::VendorSpecific(VendorPolicy::WeightedRoundRobin) => "weighted-round-robin",
            Self::VendorSpecific(VendorPolicy::ServiceTime) => "service-time",
            Self::VendorSpecific(VendorPolicy::AdaptiveLatency) => "adaptive-latency",
        }
    }

    /// `true` if the policy needs at least one primary path.
    #[must_use]
    pub const fn needs_primary(self) -> bool {
        matches!(self, Self::FailoverOnly | Self::RoundRobinWithSubset)
    }

    /// The weights the policy accepts.
    #[must_use]
    pub const fn weight_range(self) -> (u32, u32) {
        match self {
            // Weights are relative shares / throughputs: zero means nothing.
            Self::VendorSpecific(VendorPolicy::WeightedRoundRobin | VendorPolicy::ServiceTime) => {
                (1, MAX_WEIGHT)
            }
            _ => (0, MAX_WEIGHT),
        }
    }

    /// Packs the policy into one word for the configuration bank: its
    /// index in [`ALL`](Self::ALL), so that the per-I/O dispatch is one
    /// jump on a dense number.
    pub(crate) const fn encode(self) -> u32 {
        match self {
            Self::FailoverOnly => code::FAILOVER_ONLY,
            Self::RoundRobin => code::ROUND_ROBIN,
            Self::RoundRobinWithSubset => code::ROUND_ROBIN_WITH_SUBSET,
            Self::LeastQueueDepth => code::LEAST_QUEUE_DEPTH,
            Self::WeightedPaths => code::WEIGHTED_PATHS,
            Self::LeastBlocks => code::LEAST_BLOCKS,
            Self::VendorSpecific(VendorPolicy::WeightedRoundRobin) => code::WEIGHTED_ROUND_ROBIN,
            Self::VendorSpecific(VendorPolicy::ServiceTime) => code::SERVICE_TIME,
            Self::VendorSpecific(VendorPolicy::AdaptiveLatency) => code::ADAPTIVE_LATENCY,
        }
    }

    /// Inverse of [`encode`](Self::encode). The bank only ever holds encoded
    /// policies; anything else decodes to round robin rather than panicking.
    pub(crate) const fn decode(word: u32) -> Self {
        match word {
            code::FAILOVER_ONLY => Self::FailoverOnly,
            code::ROUND_ROBIN_WITH_SUBSET => Self::RoundRobinWithSubset,
            code::LEAST_QUEUE_DEPTH => Self::LeastQueueDepth,
            code::WEIGHTED_PATHS => Self::WeightedPaths,
            code::LEAST_BLOCKS => Self::LeastBlocks,
            code::WEIGHTED_ROUND_ROBIN => Self::VendorSpecific(VendorPolicy::WeightedRoundRobin),
            code::SERVICE_TIME => Self::VendorSpecific(VendorPolicy::ServiceTime),
            code::ADAPTIVE_LATENCY => Self::VendorSpecific(VendorPolicy::AdaptiveLatency),
            _ => Self::RoundRobin,
        }
    }
}

/// The bank's policy codes ([`LoadBalancePolicy::encode`]).
mod code {
    pub(super) const FAILOVER_ONLY: u32 = 0;
    pub(super) const ROUND_ROBIN: u32 = 1;
    pub(super) const ROUND_ROBIN_WITH_SUBSET: u32 = 2;
    pub(super) const LEAST_QUEUE_DEPTH: u32 = 3;
    pub(super) const WEIGHTED_PATHS: u32 = 4;
    pub(super) const LEAST_BLOCKS: u32 = 5;
    pub(super) const WEIGHTED_ROUND_ROBIN: u32 = 6;
    pub(super) const SERVICE_TIME: u32 = 7;
    pub(super) const ADAPTIVE_LATENCY: u32 = 8;
}

/// The text is not a policy name (see [`LoadBalancePolicy`]'s `FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPolicyName;

impl core::fmt::Display for UnknownPolicyName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown load-balance policy (use a VDS number 1-6, 7:ID for vendor policies, or a name such as RR, LQD, failover-only)")
    }
}

impl core::error::Error for UnknownPolicyName {}

impl core::str::FromStr for LoadBalancePolicy {
    type Err = UnknownPolicyName;

    /// Parses what administrators type: a VDS number (`"4"`; `"7:3"` for a
    /// vendor sub-policy), a short name (`"LQD"`) or a long name
    /// (`"least-queue-depth"`), case-insensitive.
    ///
    /// ```
    /// use rsdsm_engine::{LoadBalancePolicy, VendorPolicy};
    /// assert_eq!("lqd".parse(), Ok(LoadBalancePolicy::LeastQueueDepth));
    /// assert_eq!("2".parse(), Ok(LoadBalancePolicy::RoundRobin));
    /// assert_eq!("7:3".parse(), Ok(LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency)));
    /// assert_eq!("Weighted-Paths".parse(), Ok(LoadBalancePolicy::WeightedPaths));
    /// assert!("8".parse::<LoadBalancePolicy>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let by_name = Self::ALL
            .into_iter()
            .find(|p| p.short_name().eq_ignore_ascii_case(text) || p.name().eq_ignore_ascii_case(text));
        if let Some(policy) = by_name {
            return Ok(policy);
        }
        let (number, vendor) = text.split_once(':').unwrap_or((text, "0"));
        match (number.parse(), vendor.parse()) {
            (Ok(number), Ok(vendor)) => Self::from_vds(number, vendor).map_err(|_| UnknownPolicyName),
            _ => Err(UnknownPolicyName),
        }
    }
}

impl core::fmt::Display for LoadBalancePolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest path weight any policy accepts.
pub const MAX_WEIGHT: u32 = 1_000_000;

bitflags! {
    /// Supported policies as VDS `VDS_LBF_*` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct SupportedPolicies: u32 {
        /// `VDS_LBF_FAILOVER`
        const FAILOVER = 0x1;
        /// `VDS_LBF_ROUND_ROBIN`
        const ROUND_ROBIN = 0x2;
        /// `VDS_LBF_ROUND_ROBIN_WITH_SUBSET`
        const ROUND_ROBIN_WITH_SUBSET = 0x4;
        /// `VDS_LBF_DYN_LEAST_QUEUE_DEPTH`
        const DYN_LEAST_QUEUE_DEPTH = 0x8;
        /// `VDS_LBF_WEIGHTED_PATHS`
        const WEIGHTED_PATHS = 0x10;
        /// `VDS_LBF_LEAST_BLOCKS`
        const LEAST_BLOCKS = 0x20;
        /// `VDS_LBF_VENDOR_SPECIFIC`
        const VENDOR_SPECIFIC = 0x40;
    }
}

impl SupportedPolicies {
    /// The flag of one policy.
    #[must_use]
    pub const fn of(policy: LoadBalancePolicy) -> Self {
        Self::from_bits_retain(1 << (policy.vds_number() - 1))
    }
}

/// What a policy sees when it picks a path for one I/O.
pub(crate) struct Context<'a, const N: usize> {
    pub(crate) lun: &'a Lun<N>,
    pub(crate) config: ConfigRead<'a, N>,
    pub(crate) cpu: &'a CpuState,
}

impl<const N: usize> Context<'_, N> {
    /// Usable paths among `restrict`, narrowed to the best tier that has one.
    #[inline]
    pub(crate) fn best_tier(&self, restrict: u64) -> u64 {
        for tier in &self.lun.usable {
            let m = tier.load(Relaxed) & restrict;
            if m != 0 {
                return m;
            }
        }
        0
    }

    /// The load counters of a slot.
    #[inline]
    pub(crate) fn load(&self, slot: usize) -> Option<&Counters> {
        self.lun.load_of(slot)
    }

    /// This CPU's rotation cursor.
    #[inline]
    pub(crate) fn cursor(&self) -> u32 {
        self.cpu.cursor.load(Relaxed)
    }

    /// Records the pick so that the next rotation starts after it. A plain
    /// store, not an atomic read-modify-write: the cursor is this CPU's own.
    #[inline]
    pub(crate) fn advance_past(&self, slot: usize) {
        #[allow(clippy::cast_possible_truncation)] // slot < 64
        self.cpu.cursor.store(slot as u32 + 1, Relaxed);
    }
}

/// What the control path knows when it settles a LUN after a change: the
/// usable masks by tier, the configuration just published and failover's
/// active path. A rotation policy's whole per-I/O decision follows from it
/// (see [`Selector::rotation_set`]).
pub(crate) struct Settled<'a, const N: usize> {
    pub(crate) usable: [u64; TIER_COUNT],
    pub(crate) table: &'a AdminTable<N>,
    pub(crate) failover: Option<usize>,
}

impl<const N: usize> Settled<'_, N> {
    /// Usable paths among `restrict`, narrowed to the best tier that has one.
    pub(crate) fn best_tier(&self, restrict: u64) -> u64 {
        self.usable.iter().map(|m| m & restrict).find(|&m| m != 0).unwrap_or(0)
    }
}

/// The interface every policy implements.
pub(crate) trait Selector {
    /// Whether the policy reads the configuration bank beyond the policy
    /// word (weights, primary paths, levels, the generation). A policy that
    /// reads only the policy word and LUN-level atomics (usable masks, path
    /// loads, cursors) cannot see a mix of two configurations: one atomic
    /// load of the policy word is the policy of one generation. Its
    /// selection needs no seqlock confirmation.
    const READS_CONFIG: bool;

    /// Picks a usable slot for `io`, or `None` if no path is usable.
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize>;

    /// For a rotation policy, the paths its selections rotate over in this
    /// settled state; 0 for a policy whose choice depends on the I/O or on
    /// the paths' load (and for "no path").
    ///
    /// Round robin, round robin with subset, weighted paths and failover
    /// only choose among paths fixed by the control state alone (usable
    /// tiers, primary flags, weights, failover's path), so the control path
    /// computes that set whenever the state changes and publishes it in one
    /// word. Their selection is then one load and one rotation step, and
    /// it can never see a mix of two states: the word is one state's
    /// answer. Whenever this returns `s != 0`, [`select`](Self::select) on
    /// the same state picks from `s`, and round robin over `s` is what it
    /// does.
    fn rotation_set<const N: usize>(_state: &Settled<'_, N>) -> u64 {
        0
    }

    /// Whether [`rotation_set`](Self::rotation_set) is nonzero whenever a
    /// path is usable (the policy's I/O then counts in the CPU stripes, see
    /// `stats.rs`).
    const ROTATES: bool = false;
}

/// One step of a rotation over a non-empty `set` with this CPU's cursor.
#[inline(always)]
#[allow(clippy::inline_always)] // the whole per-I/O choice of four policies
pub(crate) fn rotate(set: u64, cpu: &CpuState) -> usize {
    let slot = rotation_step(set, cpu.cursor.load(Relaxed));
    #[allow(clippy::cast_possible_truncation)] // slot < 64
    cpu.cursor.store(slot as u32 + 1, Relaxed);
    slot
}

/// `f::<P, N>(args)` for the policy `P` whose bank code is `code`: the one
/// place that maps codes to policy types. Round robin for an unknown code,
/// as [`LoadBalancePolicy::decode`] does.
macro_rules! by_policy {
    ($code:expr, $f:ident::<_, $n:ident>($($arg:expr),*)) => {
        match $code {
            code::FAILOVER_ONLY => $f::<failover_only::FailoverOnly, $n>($($arg),*),
            code::ROUND_ROBIN_WITH_SUBSET => $f::<round_robin_with_subset::RoundRobinWithSubset, $n>($($arg),*),
            code::LEAST_QUEUE_DEPTH => $f::<least_queue_depth::LeastQueueDepth, $n>($($arg),*),
            code::WEIGHTED_PATHS => $f::<weighted_paths::WeightedPaths, $n>($($arg),*),
            code::LEAST_BLOCKS => $f::<least_blocks::LeastBlocks, $n>($($arg),*),
            code::WEIGHTED_ROUND_ROBIN => $f::<weighted_round_robin::WeightedRoundRobin, $n>($($arg),*),
            code::SERVICE_TIME => $f::<service_time::ServiceTime, $n>($($arg),*),
            code::ADAPTIVE_LATENCY => $f::<adaptive_latency::AdaptiveLatency, $n>($($arg),*),
            _ => $f::<round_robin::RoundRobin, $n>($($arg),*),
        }
    };
}

/// `true` for the policies that have a rotation set when a path is usable
/// ([`Selector::ROTATES`]).
pub(crate) fn is_rotation<const N: usize>(policy: LoadBalancePolicy) -> bool {
    fn rotates<S: Selector, const N: usize>() -> bool {
        S::ROTATES
    }
    by_policy!(policy.encode(), rotates::<_, N>())
}

/// The rotation set of the policy in `state` ([`Selector::rotation_set`]).
pub(crate) fn rotation_set<const N: usize>(state: &Settled<'_, N>) -> u64 {
    fn of<S: Selector, const N: usize>(state: &Settled<'_, N>) -> u64 {
        S::rotation_set(state)
    }
    by_policy!(state.table.policy.encode(), of::<_, N>(state))
}

/// What the selection functions return for "no usable path": a slot is one
/// byte all the way up to [`Lun::select`], which tests it once (a `Result`
/// from each of its two ways would be merged and tested again).
pub(crate) const NO_SLOT: u8 = u8::MAX;

/// The policy in force for this read of the configuration picks a path;
/// a policy that reads the configuration bank beyond the policy word has
/// its read confirmed against the seqlock ([`Selector::READS_CONFIG`]), and
/// selects again through [`Lun::select_again`] if two sets raced it.
///
/// Each policy runs in a function of its own, called in tail position: the
/// dispatch itself needs no registers saved, and a policy's prologue saves
/// only what that policy uses (one function for all of them would save
/// every callee-saved register for the busiest one).
#[inline(always)]
#[allow(clippy::inline_always)] // the whole body is one jump
pub(crate) fn select<const N: usize>(
    lun: &Lun<N>,
    config: ConfigRead<'_, N>,
    cpu: &CpuState,
    io: &IoRequest,
) -> u8 {
    #[inline(never)]
    fn call<S: Selector, const N: usize>(
        lun: &Lun<N>,
        config: ConfigRead<'_, N>,
        cpu: &CpuState,
        io: &IoRequest,
    ) -> u8 {
        pick::<S, N>(&Context { lun, config, cpu }, io).unwrap_or_else(|| lun.select_again(io, cpu))
    }
    by_policy!(config.policy_code(), call::<_, N>(lun, config, cpu, io))
}

/// One selection on `ctx`'s read of the configuration, or `None` if two
/// sets raced it (the caller reads the configuration again). Inlined whole:
/// also the body of [`Lun::select_again`]'s loop, which must not recurse.
/// The slot is a slot index or [`NO_SLOT`].
#[inline(always)]
#[allow(clippy::inline_always)] // the body of every policy's selection function
pub(crate) fn select_once<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<u8> {
    by_policy!(ctx.config.policy_code(), pick::<_, N>(ctx, io))
}

#[inline(always)]
#[allow(clippy::inline_always)] // see select_once
fn pick<S: Selector, const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<u8> {
    let pick = S::select(ctx, io);
    if S::READS_CONFIG && !ctx.lun.confirm(&ctx.config) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // < N <= 64
    Some(pick.filter(|&slot| slot < N).map_or(NO_SLOT, |slot| slot as u8))
}

pub(crate) use failover_only::{choose_home as failover_home, word as failover_word};

/// The first slot of `mask` at or after `start` (mod 64), wrapping around.
#[inline]
pub(crate) fn next_in_rotation(mask: u64, start: u32) -> Option<usize> {
    (mask != 0).then(|| rotation_step(mask, start))
}

/// The first slot of a non-empty `mask` at or after `start` (mod 64).
#[inline(always)]
#[allow(clippy::inline_always)] // a handful of instructions on the per-I/O path
fn rotation_step(mask: u64, start: u32) -> usize {
    let s = start & 63;
    ((mask.rotate_right(s).trailing_zeros() + s) & 63) as usize
}

/// The slot of `mask` with the smallest `key`, scanning from `start` so that
/// ties go to the first slot at or after it (rotating ties, not "lowest
/// index wins"). Stops early at a key of zero: nothing beats an idle path.
///
/// Two passes (the slots from `start` up, then the ones below it) instead of
/// one over a rotated mask: a slot is then a plain `trailing_zeros`, with no
/// add-and-wrap per candidate.
#[inline(always)]
#[allow(clippy::inline_always)] // a call per selection would spill the policy's context
pub(crate) fn least_by_key<const N: usize>(
    mask: u64,
    start: u32,
    key: impl FnMut(usize) -> u64,
) -> Option<usize> {
    match least_keyed::<N>(mask, start, key) {
        Some((slot, _)) => Some(slot),
        // Every key u64::MAX (no such path): the first slot in rotation order.
        None => next_in_rotation(mask, start).map(in_table::<N>),
    }
}

/// [`least_by_key`]'s scan, with the winning key; `None` if no slot has a
/// key below `u64::MAX`. `mask` holds slots of a table of `N`.
#[inline(always)]
#[allow(clippy::inline_always)] // as `least_by_key`
pub(crate) fn least_keyed<const N: usize>(
    mask: u64,
    start: u32,
    mut key: impl FnMut(usize) -> u64,
) -> Option<(usize, u64)> {
    let from = !0u64 << (start & 63);
    // A plain sentinel key rather than an `Option`: one compare per
    // candidate. `best` means something only once `best_key` is below it.
    let mut best = 0;
    let mut best_key = u64::MAX;
    for mut rest in [mask & from, mask & !from] {
        while rest != 0 {
            // The key's own mask (`Lun::load_of`) folds into this one, and
            // the slot needs no second register (see `in_table`).
            let slot = in_table::<N>(rest.trailing_zeros() as usize);
            rest &= rest - 1;
            let k = key(slot);
            if k < best_key {
                best = slot;
                best_key = k;
                if k == 0 {
                    return Some((slot, 0));
                }
            }
        }
    }
    (best_key != u64::MAX).then_some((best, best_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vds_numbers_round_trip() {
        for p in LoadBalancePolicy::ALL {
            assert_eq!(LoadBalancePolicy::from_vds(p.vds_number(), p.vendor_id()), Ok(p));
            assert_eq!(LoadBalancePolicy::decode(p.encode()), p);
        }
        for bad in [(0, 0), (8, 0), (u32::MAX, 0), (7, 0), (7, 4), (2, 1)] {
            assert_eq!(
                LoadBalancePolicy::from_vds(bad.0, bad.1),
                Err(Error::InvalidArgument(Invalid::UnknownPolicy)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn supported_flags_are_the_vds_lbf_values() {
        assert_eq!(SupportedPolicies::of(LoadBalancePolicy::FailoverOnly).bits(), 0x1);
        assert_eq!(SupportedPolicies::of(LoadBalancePolicy::LeastBlocks).bits(), 0x20);
        let v = LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime);
        assert_eq!(SupportedPolicies::of(v).bits(), 0x40);
    }

    #[test]
    fn rotation_wraps_and_skips_gaps() {
        assert_eq!(next_in_rotation(0, 5), None);
        assert_eq!(next_in_rotation(0b1010, 0), Some(1));
        assert_eq!(next_in_rotation(0b1010, 2), Some(3));
        assert_eq!(next_in_rotation(0b1010, 4), Some(1));
        assert_eq!(next_in_rotation(1 << 63, 63), Some(63));
        assert_eq!(next_in_rotation(1, 64), Some(0));
    }

    #[test]
    fn least_by_key_rotates_ties_and_exits_on_idle() {
        let keys = [3u64, 1, 1, 1];
        assert_eq!(least_by_key::<64>(0b1111, 0, |s| keys[s]), Some(1));
        assert_eq!(least_by_key::<64>(0b1111, 2, |s| keys[s]), Some(2));
        assert_eq!(least_by_key::<64>(0b1111, 3, |s| keys[s]), Some(3));
        assert_eq!(least_by_key::<64>(0b1111, 4, |s| keys[s]), Some(1));
        // No slot with a key below u64::MAX: the first in rotation order.
        assert_eq!(least_by_key::<64>(0b1100, 3, |_| u64::MAX), Some(3));
        assert_eq!(least_by_key::<64>(0b1100, 0, |_| u64::MAX), Some(2));
        assert_eq!(least_keyed::<64>(0b1100, 0, |_| u64::MAX), None);
        let mut calls = 0;
        let idle = [0u64, 0, 0, 0];
        assert_eq!(
            least_by_key::<64>(0b1111, 2, |s| {
                calls += 1;
                idle[s]
            }),
            Some(2)
        );
        assert_eq!(calls, 1);
    }
}
