//! Adaptive latency (vendor policy 3): the path with the least expected wait,
//! estimated as (requests in flight + 1) × the path's latency EWMA.
//!
//! A path that is never chosen would keep a stale estimate forever, so an
//! idle path whose last I/O is older than (candidates × its own EWMA) takes
//! the next I/O as a probe, as Linux's historical-service-time does. A path
//! without any sample yet has an estimate of zero and is tried first.
//! The EWMA is the one the statistics keep, updated at completion.

use super::{Context, Selector, least_by_key};
use crate::IoRequest;
use crate::stats::EWMA_FRACTION_BITS;
use crate::sync::Ordering::Relaxed;

pub(crate) struct AdaptiveLatency;

impl Selector for AdaptiveLatency {
    const READS_CONFIG: bool = false;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        // Counted only when an idle path needs it: a busy LUN never pays
        // for the population count (a dozen instructions without POPCNT).
        let paths = || u64::from(candidates.count_ones());
        let slot = least_by_key::<N>(candidates, ctx.cursor(), |s| {
            let Some(load) = ctx.load(s) else { return u64::MAX };
            let in_flight = u64::from(load.in_flight());
            let ewma = load.latency_ewma.load(Relaxed);
            if in_flight != 0 {
                // The usual case under load: no probe test at all.
                return (in_flight + 1).saturating_mul(ewma);
            }
            if ewma != 0 {
                let stale_after = (ewma >> EWMA_FRACTION_BITS).saturating_mul(paths());
                if io.now.saturating_sub(load.last_start.load(Relaxed)) > stale_after {
                    return 0; // probe it
                }
            }
            ewma
        })?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
