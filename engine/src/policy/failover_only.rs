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

use super::{Context, Selector};
use crate::IoRequest;
use crate::lun::bit;
use crate::sync::Ordering::Relaxed;

pub(crate) struct FailoverOnly;

impl Selector for FailoverOnly {
    #[inline]
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        let current = &ctx.lun.failover_current;
        let cached = current.load(Relaxed);
        if let Some(slot) = cached.checked_sub(1).map(|s| s as usize)
            && candidates & bit(slot) != 0
        {
            return Some(slot);
        }
        let pick = choose_home(candidates, ctx.config.preferred(), ctx.config.primary())
            .or_else(|| lowest(candidates))?;
        #[allow(clippy::cast_possible_truncation)] // slot < 64
        match current.compare_exchange(cached, pick as u32 + 1, Relaxed, Relaxed) {
            Ok(_) => Some(pick),
            // Another CPU moved first; follow it if its choice is usable.
            Err(winner) => match winner.checked_sub(1).map(|s| s as usize) {
                Some(slot) if candidates & bit(slot) != 0 => Some(slot),
                _ => Some(pick),
            },
        }
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
