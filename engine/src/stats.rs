//! Per-path load and statistics counters.
//!
//! Everything here is an atomic updated with `Relaxed` ordering: the counts
//! are read while I/O runs and need no ordering with anything else. The
//! latency EWMA is a racy load-modify-store on purpose: losing one sample
//! under contention is harmless for an estimate and avoids a CAS loop on
//! every completion.

use crate::Tick;
use crate::sync::{AtomicU64, CachePadded, Ordering::Relaxed};

/// Buckets of the latency histogram: bucket 0 holds latency 0, bucket `k`
/// (1..=30) holds `[2^(k-1), 2^k)` ticks, the last bucket everything longer.
pub const HISTOGRAM_BUCKETS: usize = 32;

/// The EWMA keeps latency in 1/16 ticks and moves 1/8 of the way to each
/// new sample (the smoothing Linux's service-time estimators use).
pub(crate) const EWMA_FRACTION_BITS: u32 = 4;
const EWMA_SHIFT: u32 = 3;

// The bucket index is masked with HISTOGRAM_BUCKETS - 1.
const _: () = assert!(HISTOGRAM_BUCKETS == 32);

/// The bucket a latency falls into.
///
/// ```
/// use rsdsm_engine::stats::histogram_bucket;
/// assert_eq!(histogram_bucket(0), 0);
/// assert_eq!(histogram_bucket(1), 1);
/// assert_eq!(histogram_bucket(3), 2);
/// assert_eq!(histogram_bucket(4), 3);
/// assert_eq!(histogram_bucket(u64::MAX), 31);
/// ```
#[must_use]
#[inline]
pub const fn histogram_bucket(latency: Tick) -> usize {
    // The bit length of `latency` is floor(log2(2 latency + 1)): a log of a
    // value that is never zero, so no zero test (one `bsr` on x86-64
    // without LZCNT). Clamping the latency to 2^30 first (which is in the
    // last bucket anyway) caps the bit length at 31, so the mask below
    // changes nothing and only tells the compiler that the index is in
    // range: no clamp of the result, no bounds check after it.
    let clamped = if latency < 1 << 30 { latency } else { 1 << 30 };
    ((clamped << 1) | 1).ilog2() as usize & (HISTOGRAM_BUCKETS - 1)
}

/// Bits of [`PathLoad::word`] that hold the bytes in flight; the requests
/// in flight are the bits above. 2^44 bytes (16 TiB) and 2^20 requests in
/// flight on one path are far beyond what any HBA queues.
const BYTES_BITS: u32 = 44;
const BYTES_MASK: u64 = (1 << BYTES_BITS) - 1;

/// What `start` adds to (and `complete` takes from) [`PathLoad::word`].
#[inline]
pub(crate) const fn load_delta(bytes: u32) -> u64 {
    (1 << BYTES_BITS) | bytes as u64
}

/// Moves an EWMA (in 1/16 ticks) 1/8 of the way towards `latency`.
///
/// The sample carries half a tick (`| 8`), so that an EWMA that has seen
/// a sample is never 0 (0 means "no sample yet" to adaptive latency) and a
/// constant latency `L` settles at `16 L + 8`, which reads back as `L`. The
/// first sample is taken as it is. Latencies of 2^59 ticks and more (18
/// years in 1 ns ticks) wrap instead of saturating: one instruction fewer
/// per I/O for a value no clock reaches.
#[inline]
pub(crate) const fn ewma_step(old: u64, latency: Tick) -> u64 {
    let sample = latency.wrapping_shl(EWMA_FRACTION_BITS) | (1 << (EWMA_FRACTION_BITS - 1));
    if old == 0 {
        return sample;
    }
    #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)] // both < 2^63
    let step = ((sample as i64).wrapping_sub(old as i64) >> EWMA_SHIFT) as u64;
    old.wrapping_add(step)
}

/// Load of a path that the policies read on every selection: one cache line.
#[derive(Debug, Default)]
pub(crate) struct PathLoad {
    /// Requests in flight (high 20 bits) and bytes in flight (low 44 bits)
    /// in one word: one atomic add per start and one subtract per
    /// completion, and one load gives a policy both.
    pub(crate) word: AtomicU64,
    /// Latency EWMA in 1/16 ticks; 0 until the first completion.
    pub(crate) latency_ewma: AtomicU64,
    /// Tick of the last start on this path (adaptive latency's probing).
    pub(crate) last_start: AtomicU64,
}

impl PathLoad {
    loom_const_fn! {
        pub(crate) const fn new() -> Self {
            Self { word: AtomicU64::new(0), latency_ewma: AtomicU64::new(0), last_start: AtomicU64::new(0) }
        }
    }

    /// Requests in flight.
    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        #[allow(clippy::cast_possible_truncation)] // 20 bits
        let n = (self.word.load(Relaxed) >> BYTES_BITS) as u32;
        n
    }

    /// Bytes in flight.
    #[inline]
    pub(crate) fn in_flight_bytes(&self) -> u64 {
        self.word.load(Relaxed) & BYTES_MASK
    }
}

/// Cumulative statistics of a path.
///
/// Everything a completion writes is indexed by its direction instead of
/// branched on: bytes and histogram are kept per direction, and the
/// request counts are the histograms' totals. A successful completion is
/// then three atomic adds (bytes, histogram bucket, in-flight word) and one
/// store (EWMA), with no branch but the outcome's.
#[derive(Debug)]
pub(crate) struct PathCounters {
    pub(crate) load: CachePadded<PathLoad>,
    bytes: [AtomicU64; 2],
    errors: AtomicU64,
    /// `[direction][bucket]`, flattened: reads first, then writes.
    histogram: [AtomicU64; 2 * HISTOGRAM_BUCKETS],
}

impl Default for PathCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl PathCounters {
    loom_const_fn! {
        /// All zero; `const` so that a LUN can be built in a `static`.
        pub(crate) const fn new() -> Self {
            Self {
                load: CachePadded(PathLoad::new()),
                bytes: [AtomicU64::new(0), AtomicU64::new(0)],
                errors: AtomicU64::new(0),
                histogram: atomic_array![AtomicU64::new(0); 2 * HISTOGRAM_BUCKETS],
            }
        }
    }

    #[inline]
    pub(crate) fn start(&self, bytes: u32, now: Tick) {
        let load = &self.load;
        load.word.fetch_add(load_delta(bytes), Relaxed);
        load.last_start.store(now, Relaxed);
    }

    #[inline]
    pub(crate) fn complete(&self, write: bool, bytes: u32, latency: Tick, ok: bool) {
        let load = &self.load;
        load.word.fetch_sub(load_delta(bytes), Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
            return;
        }
        let direction = usize::from(write);
        if let Some(total) = self.bytes.get(direction) {
            total.fetch_add(u64::from(bytes), Relaxed);
        }
        if let Some(bucket) = self.histogram.get(direction * HISTOGRAM_BUCKETS + histogram_bucket(latency)) {
            bucket.fetch_add(1, Relaxed);
        }
        // A racy load and store, not a CAS loop: two completions on one
        // path at the same instant may lose one sample, which an estimate
        // can afford.
        let ewma = ewma_step(load.latency_ewma.load(Relaxed), latency);
        load.latency_ewma.store(ewma, Relaxed);
    }

    /// Clears everything; only for a slot with nothing in flight.
    pub(crate) fn reset(&self) {
        let load = &self.load;
        load.word.store(0, Relaxed);
        load.latency_ewma.store(0, Relaxed);
        load.last_start.store(0, Relaxed);
        for c in self.bytes.iter().chain([&self.errors]).chain(&self.histogram) {
            c.store(0, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> PathStatistics {
        let load = &self.load;
        let mut histogram = [0; HISTOGRAM_BUCKETS];
        let mut by_direction = [0u64; 2];
        for (i, b) in self.histogram.iter().enumerate() {
            let n = b.load(Relaxed);
            if let Some(out) = histogram.get_mut(i % HISTOGRAM_BUCKETS) {
                *out += n;
            }
            if let Some(total) = by_direction.get_mut(i / HISTOGRAM_BUCKETS) {
                *total += n;
            }
        }
        let [reads, writes] = by_direction;
        let [bytes_read, bytes_written] = self.bytes.each_ref().map(|b| b.load(Relaxed));
        let word = load.word.load(Relaxed);
        PathStatistics {
            reads,
            writes,
            bytes_read,
            bytes_written,
            errors: self.errors.load(Relaxed),
            #[allow(clippy::cast_possible_truncation)] // 20 bits
            in_flight: (word >> BYTES_BITS) as u32,
            in_flight_bytes: word & BYTES_MASK,
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
    fn buckets_are_bit_lengths_capped_at_the_last() {
        let bit_length = |l: u64| (u64::BITS - l.leading_zeros()) as usize;
        let edges = (0..64).flat_map(|k| {
            let p = 1u64 << k;
            [p - 1, p, p + 1]
        });
        for latency in edges.chain([0, u64::MAX, u64::MAX - 1, (1 << 31) - 1]) {
            let expected = bit_length(latency).min(HISTOGRAM_BUCKETS - 1);
            assert_eq!(histogram_bucket(latency), expected, "latency {latency}");
        }
    }

    #[test]
    fn an_ewma_that_saw_a_sample_is_never_zero() {
        // 0 means "no sample yet" to adaptive latency.
        let mut ewma = 0;
        for latency in [0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] {
            ewma = ewma_step(ewma, latency);
            assert_ne!(ewma, 0);
        }
        assert_eq!(ewma >> EWMA_FRACTION_BITS, 0, "settles at zero ticks");
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
