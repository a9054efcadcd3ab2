//! Failover only (VDS 1): every I/O on one path; another takes over when it
//! fails.
//!
//! The active path is cached in the LUN (`failover_current`) so the common
//! case is one load and one mask test. When the cached path has left the best
//! usable tier, the first selection that notices picks the new one: the
//! preferred path, else the primary path, else the lowest usable slot of the
//! best tier (which is how a standby path gets promoted), and publishes it
//! with a compare-and-swap so that concurrent CPUs agree on one path.
//! Moving *back* to the preferred/primary path while the current one still
//! works is failback, done by the LUN's control path per its failback mode.
//!
//! The cached path is tagged with the configuration generation it was
//! decided under. A policy set publishes its configuration first and moves
//! the cached path afterwards; a selection that runs in between sees a
//! generation newer than the tag and takes the configuration's pinned path
//! (the one the set fails back to) instead of the stale cached one, so it
//! never applies the new policy to the old path. A selection that still
//! reads the previous configuration while the tag is already newer takes
//! that configuration's own pin the same way.

use super::{Context, Selector, Settled};
use crate::IoRequest;
use crate::lun::bit;
use crate::sync::Ordering::Relaxed;

pub(crate) struct FailoverOnly;

/// Packs a generation and a slot (`None`: no path) into `failover_current`.
pub(crate) fn word(generation: u64, slot: Option<usize>) -> u64 {
    (generation << 8) | slot.map_or(0, |s| (s as u64 & 0x3F) + 1)
}

fn unpack(word: u64) -> (u64, Option<usize>) {
    #[allow(clippy::cast_possible_truncation)] // the low byte: slot + 1
    (word >> 8, (word as u8).checked_sub(1).map(usize::from))
}

impl Selector for FailoverOnly {
    const READS_CONFIG: bool = true;

    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        let current = &ctx.lun.failover_current;
        let generation = ctx.config.generation();
        let cached = current.load(Relaxed);
        let (tag, slot) = unpack(cached);
        let pin = (ctx.config.failover_pin() as usize).checked_sub(1);
        let base = if tag == generation { slot } else { pin.or(slot) };
        if let Some(slot) = base
            && candidates & bit(slot) != 0
        {
            return Some(slot);
        }
        let pick = choose_home(candidates, ctx.config.preferred(), ctx.config.primary())
            .or_else(|| lowest(candidates))?;
        if tag > generation {
            // This read is of an older configuration than the cached path's.
            return Some(pick);
        }
        match current.compare_exchange(cached, word(generation, Some(pick)), Relaxed, Relaxed) {
            Ok(_) => Some(pick),
            // Another CPU moved first; follow it if its choice is usable.
            Err(winner) => match unpack(winner) {
                (t, Some(slot)) if t == generation && candidates & bit(slot) != 0 => Some(slot),
                _ => Some(pick),
            },
        }
    }

    const ROTATES: bool = true;

    fn rotation_set<const N: usize>(state: &Settled<'_, N>) -> u64 {
        // Failover's active path alone, if it is usable in the best tier:
        // the control path settles that path before it computes the set.
        state.failover.map_or(0, |slot| bit(slot) & state.best_tier(!0))
    }
}

/// The path failover wants to be on among `candidates`: the preferred path,
/// else the (first) primary path.
pub(crate) fn choose_home(candidates: u64, preferred: u64, primary: u64) -> Option<usize> {
    lowest(candidates & preferred).or_else(|| lowest(candidates & primary))
}

pub(crate) fn lowest(mask: u64) -> Option<usize> {
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}
