//! Per-path load and statistics counters.
//!
//! Everything here is an atomic updated with `Relaxed` ordering: the counts
//! are read while I/O runs and need no ordering with anything else. The
//! latency EWMA is a racy load-modify-store on purpose: losing one sample
//! under contention is harmless for an estimate and avoids a CAS loop on
//! every completion.

use crate::Tick;
use crate::sync::{AtomicU32, AtomicU64, CachePadded, Ordering::Relaxed};

/// Buckets of the latency histogram: bucket 0 holds latency 0, bucket `k`
/// (1..=62) holds `[2^(k-1), 2^k)` ticks, the last bucket everything longer.
pub const HISTOGRAM_BUCKETS: usize = 32;

/// The EWMA keeps latency in 1/16 ticks and moves 1/8 of the way to each
/// new sample (the smoothing Linux's service-time estimators use).
pub(crate) const EWMA_FRACTION_BITS: u32 = 4;
const EWMA_SHIFT: u32 = 3;

/// The bucket a latency falls into.
///
/// ```
/// use rsdsm_engine::stats::histogram_bucket;
/// assert_eq!(histogram_bucket(0), 0);
/// assert_eq!(histogram_bucket(1), 1);
/// assert_eq!(histogram_bucket(3), 2);
/// assert_eq!(histogram_bucket(u64::MAX), 31);
/// ```
#[must_use]
pub const fn histogram_bucket(latency: Tick) -> usize {
    let bits = (u64::BITS - latency.leading_zeros()) as usize;
    if bits < HISTOGRAM_BUCKETS { bits } else { HISTOGRAM_BUCKETS - 1 }
}

/// Load of a path that the policies read on every selection: one cache line.
#[derive(Debug, Default)]
pub(crate) struct PathLoad {
    pub(crate) in_flight: AtomicU32,
    pub(crate) in_flight_bytes: AtomicU64,
    /// Latency EWMA in 1/16 ticks; 0 until the first completion.
    pub(crate) latency_ewma: AtomicU64,
    /// Tick of the last start on this path (adaptive latency's probing).
    pub(crate) last_start: AtomicU64,
}

impl PathLoad {
    loom_const_fn! {
        pub(crate) const fn new() -> Self {
            Self {
                in_flight: AtomicU32::new(0),
                in_flight_bytes: AtomicU64::new(0),
                latency_ewma: AtomicU64::new(0),
                last_start: AtomicU64::new(0),
            }
        }
    }
}

/// Cumulative statistics of a path.
#[derive(Debug, Default)]
pub(crate) struct PathCounters {
    pub(crate) load: CachePadded<PathLoad>,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    errors: AtomicU64,
    histogram: [AtomicU64; HISTOGRAM_BUCKETS],
}

impl PathCounters {
    loom_const_fn! {
        /// All zero; `const` so that a LUN can be built in a `static`.
        pub(crate) const fn new() -> Self {
            Self {
                load: CachePadded(PathLoad::new()),
                reads: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                bytes_read: AtomicU64::new(0),
                bytes_written: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                histogram: atomic_array![AtomicU64::new(0); HISTOGRAM_BUCKETS],
            }
        }
    }

    pub(crate) fn start(&self, bytes: u32, now: Tick) {
        let load = &self.load;
        load.in_flight.fetch_add(1, Relaxed);
        load.in_flight_bytes.fetch_add(u64::from(bytes), Relaxed);
        load.last_start.store(now, Relaxed);
    }

    pub(crate) fn complete(&self, write: bool, bytes: u32, latency: Tick, ok: bool) {
        let load = &self.load;
        load.in_flight.fetch_sub(1, Relaxed);
        load.in_flight_bytes.fetch_sub(u64::from(bytes), Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
            return;
        }
        if write {
            self.writes.fetch_add(1, Relaxed);
            self.bytes_written.fetch_add(u64::from(bytes), Relaxed);
        } else {
            self.reads.fetch_add(1, Relaxed);
            self.bytes_read.fetch_add(u64::from(bytes), Relaxed);
        }
        // Clamp so that the fixed-point value cannot overflow.
        let sample = latency.min(u64::MAX >> (EWMA_FRACTION_BITS + 1)) << EWMA_FRACTION_BITS;
        let old = load.latency_ewma.load(Relaxed);
        let new = if old == 0 {
            sample
        } else if sample >= old {
            old + ((sample - old) >> EWMA_SHIFT)
        } else {
            old - ((old - sample) >> EWMA_SHIFT)
        };
        load.latency_ewma.store(new.max(1), Relaxed);
        if let Some(bucket) = self.histogram.get(histogram_bucket(latency)) {
            bucket.fetch_add(1, Relaxed);
        }
    }

    /// Clears everything; only for a slot with nothing in flight.
    pub(crate) fn reset(&self) {
        let load = &self.load;
        load.in_flight.store(0, Relaxed);
        load.in_flight_bytes.store(0, Relaxed);
        load.latency_ewma.store(0, Relaxed);
        load.last_start.store(0, Relaxed);
        for c in [&self.reads, &self.writes, &self.bytes_read, &self.bytes_written, &self.errors] {
            c.store(0, Relaxed);
        }
        for b in &self.histogram {
            b.store(0, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> PathStatistics {
        let load = &self.load;
        let mut histogram = [0; HISTOGRAM_BUCKETS];
        for (out, b) in histogram.iter_mut().zip(&self.histogram) {
            *out = b.load(Relaxed);
        }
        PathStatistics {
            reads: self.reads.load(Relaxed),
            writes: self.writes.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            errors: self.errors.load(Relaxed),
            in_flight: load.in_flight.load(Relaxed),
            in_flight_bytes: load.in_flight_bytes.load(Relaxed),
            latency_ewma: load.latency_ewma.load(Relaxed) >> EWMA_FRACTION_BITS,
            histogram,
        }
    }
}

/// A snapshot of one path's statistics, read without stopping I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathStatistics {
    /// Reads completed successfully.
    pub reads: u64,
    /// Writes completed successfully.
    pub writes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// I/Os that completed with an error.
    pub errors: u64,
    /// Requests in flight.
    pub in_flight: u32,
    /// Bytes in flight.
    pub in_flight_bytes: u64,
    /// Latency EWMA in ticks (0 before the first completion).
    pub latency_ewma: u64,
    /// Latency histogram, see [`histogram_bucket`].
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

impl PathStatistics {
    /// Completed requests (successful reads and writes, plus errors).
    #[must_use]
    pub const fn completed(&self) -> u64 {
        self.reads + self.writes + self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_converges_to_a_constant_latency() {
        let c = PathCounters::default();
        for _ in 0..200 {
            c.start(512, 0);
            c.complete(false, 512, 1000, true);
        }
        assert_eq!(c.snapshot().latency_ewma, 1000);
        for _ in 0..200 {
            c.start(512, 0);
            c.complete(false, 512, 10, true);
        }
        let ewma = c.snapshot().latency_ewma;
        assert!((10..=12).contains(&ewma), "{ewma}");
    }

    #[test]
    fn histogram_and_counts_follow_completions() {
        let c = PathCounters::default();
        c.start(4096, 0);
        c.start(512, 0);
        c.start(100, 0);
        assert_eq!(c.snapshot().in_flight, 3);
        assert_eq!(c.snapshot().in_flight_bytes, 4708);
        c.complete(true, 4096, 5, true);
        c.complete(false, 512, 0, true);
        c.complete(false, 100, 9, false);
        let s = c.snapshot();
        assert_eq!((s.reads, s.writes, s.errors), (1, 1, 1));
        assert_eq!((s.bytes_read, s.bytes_written), (512, 4096));
        assert_eq!((s.in_flight, s.in_flight_bytes), (0, 0));
        assert_eq!(s.histogram[0], 1);
        assert_eq!(s.histogram[3], 1);
        assert_eq!(s.histogram.iter().sum::<u64>(), 2, "errors carry no latency sample");
    }
}
