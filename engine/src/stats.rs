//! Per-path load and statistics counters.
//!
//! Two kinds of storage, so that the policies that do not look at load
//! write no cache line another CPU writes:
//!
//! * a path's shared block: I/O under the load-aware policies (least queue
//!   depth, least blocks, the vendor policies) counts here, because they
//!   read every path's requests and bytes in flight, latency EWMA and last
//!   start on every selection;
//! * the path's block in each CPU stripe (the I/O's processor modulo
//!   `STRIPES`): I/O under the rotation policies (failover only, round
//!   robin, round robin with subset, weighted paths), which read no load,
//!   counts in its CPU's stripe. Two CPUs in different stripes then write
//!   no common cache line at all.
//!
//! Both are a `Counters` block; a `Reading` sums a path's blocks into its
//! [`PathStatistics`]. Everything is an atomic updated with `Relaxed`
//! ordering: the counts are read while I/O runs and need no ordering with
//! anything else. The latency EWMA is a racy load-modify-store on purpose:
//! losing one sample under contention is harmless for an estimate and
//! avoids a CAS loop on every completion.

use crate::Tick;
use crate::sync::{AtomicU64, Ordering::Relaxed};

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

/// Bits of [`Counters::word`] that hold the requests in flight; the bytes
/// in flight are the bits above. 2^20 requests and 2^44 bytes (16 TiB) in
/// flight on one path are far beyond what any HBA queues. Bytes on top:
/// both halves then come out in one instruction with a 32-bit immediate
/// (`>> 20`, `& 0xF_FFFF`), where a 44-bit mask needs a 64-bit constant
/// that a scan loop may have to load again on every candidate.
const REQUEST_BITS: u32 = 20;
const REQUEST_MASK: u64 = (1 << REQUEST_BITS) - 1;

/// What `start` adds to (and `complete` takes from) [`Counters::word`].
#[inline]
pub(crate) const fn load_delta(bytes: u32) -> u64 {
    (bytes as u64) << REQUEST_BITS | 1
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

/// One block of a path's counters: the path's shared block, or its block
/// in one CPU stripe (see the module documentation). Line-aligned, and the
/// load the policies read (in flight, EWMA, last start) is in its first
/// line.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Counters {
    /// Requests in flight (low 20 bits) and bytes in flight (high 44 bits)
    /// in one word: one atomic add per start and one subtract per
    /// completion, and one load gives a policy both.
    pub(crate) word: AtomicU64,
    /// Latency EWMA in 1/16 ticks; 0 until the first completion.
    pub(crate) latency_ewma: AtomicU64,
    /// Tick of the last start (adaptive latency's probing).
    pub(crate) last_start: AtomicU64,
    /// Successful writes; successful reads are the histogram's total minus
    /// these, which saves an add per read.
    writes: AtomicU64,
    errors: AtomicU64,
    /// Bytes read, bytes written.
    bytes: [AtomicU64; 2],
    histogram: [AtomicU64; HISTOGRAM_BUCKETS],
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    loom_const_fn! {
        /// All zero; `const` so that a LUN can be built in a `static`.
        pub(crate) const fn new() -> Self {
            Self {
                word: AtomicU64::new(0),
                latency_ewma: AtomicU64::new(0),
                last_start: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                bytes: [AtomicU64::new(0), AtomicU64::new(0)],
                histogram: atomic_array![AtomicU64::new(0); HISTOGRAM_BUCKETS],
            }
        }
    }

    /// Requests in flight.
    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        in_flight_count(self.word.load(Relaxed))
    }

    /// Bytes in flight.
    #[inline]
    pub(crate) fn in_flight_bytes(&self) -> u64 {
        self.word.load(Relaxed) >> REQUEST_BITS
    }

    /// Counts an I/O in flight.
    #[inline]
    pub(crate) fn start(&self, bytes: u32, now: Tick) {
        self.word.fetch_add(load_delta(bytes), Relaxed);
        self.last_start.store(now, Relaxed);
    }

    /// Takes back what [`start`](Self::start) counted and records the
    /// outcome: errors, or bytes, the latency histogram and the EWMA.
    #[inline]
    pub(crate) fn complete(&self, write: bool, bytes: u32, latency: Tick, ok: bool) {
        self.word.fetch_sub(load_delta(bytes), Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
            return;
        }
        if let Some(total) = self.bytes.get(usize::from(write)) {
            total.fetch_add(u64::from(bytes), Relaxed);
        }
        if write {
            self.writes.fetch_add(1, Relaxed);
        }
        if let Some(bucket) = self.histogram.get(histogram_bucket(latency)) {
            bucket.fetch_add(1, Relaxed);
        }
        // A racy load and store, not a CAS loop: two completions at the
        // same instant may lose one sample, which an estimate can afford.
        let ewma = ewma_step(self.latency_ewma.load(Relaxed), latency);
        self.latency_ewma.store(ewma, Relaxed);
    }

    /// Clears everything; only for a slot with nothing in flight.
    pub(crate) fn reset(&self) {
        let all = [&self.word, &self.latency_ewma, &self.last_start, &self.writes, &self.errors];
        for c in all.into_iter().chain(&self.bytes).chain(&self.histogram) {
            c.store(0, Relaxed);
        }
    }
}

/// The mean of the latency EWMAs that have a sample (are nonzero).
#[derive(Default)]
pub(crate) struct EwmaMean {
    sum: u128,
    count: u32,
}

impl EwmaMean {
    /// Adds one EWMA; 0 (no sample yet) is left out.
    pub(crate) fn add(&mut self, ewma: u64) {
        if ewma != 0 {
            self.sum += u128::from(ewma);
            self.count += 1;
        }
    }

    /// The mean, `None` if no EWMA had a sample.
    pub(crate) fn mean(&self) -> Option<u64> {
        #[allow(clippy::cast_possible_truncation)] // a mean of u64 values
        self.sum.checked_div(u128::from(self.count)).map(|m| m as u64)
    }
}

/// Sums one path's shared block and stripes into a [`PathStatistics`].
pub(crate) struct Reading {
    out: PathStatistics,
    striped: bool,
    shared_ewma: u64,
    stripe_ewma: EwmaMean,
}

impl Reading {
    /// An empty reading. `striped`: a rotation policy is in force, so the
    /// stripes hold the current EWMAs (otherwise the shared block does;
    /// see `Lun::hand_over_latency`).
    pub(crate) fn new(striped: bool) -> Self {
        Self { out: PathStatistics::default(), striped, shared_ewma: 0, stripe_ewma: EwmaMean::default() }
    }

    /// Adds the path's shared block.
    pub(crate) fn add_shared(&mut self, block: &Counters) {
        self.add(block);
        self.shared_ewma = block.latency_ewma.load(Relaxed);
    }

    /// Adds one of the path's stripes.
    pub(crate) fn add_stripe(&mut self, block: &Counters) {
        self.add(block);
        self.stripe_ewma.add(block.latency_ewma.load(Relaxed));
    }

    fn add(&mut self, block: &Counters) {
        let out = &mut self.out;
        let word = block.word.load(Relaxed);
        out.in_flight = out.in_flight.wrapping_add(in_flight_count(word));
        out.in_flight_bytes = out.in_flight_bytes.wrapping_add(word >> REQUEST_BITS);
        for (total, bucket) in out.histogram.iter_mut().zip(&block.histogram) {
            *total += bucket.load(Relaxed);
        }
        out.writes += block.writes.load(Relaxed);
        out.errors += block.errors.load(Relaxed);
        let [read, written] = block.bytes.each_ref().map(|b| b.load(Relaxed));
        out.bytes_read += read;
        out.bytes_written += written;
    }

    /// The statistics. The EWMA is the mean of the stripes' EWMAs that
    /// have a sample under a rotation policy, the shared one otherwise;
    /// either falls back to the other until it has a sample.
    pub(crate) fn finish(self) -> PathStatistics {
        let mut out = self.out;
        // A write counted in the histogram but not yet in `writes` (or
        // the reverse) is a read or write "in between" for one snapshot.
        out.reads = out.histogram.iter().sum::<u64>().saturating_sub(out.writes);
        let stripes = self.stripe_ewma.mean();
        let shared = (self.shared_ewma != 0).then_some(self.shared_ewma);
        let ewma = if self.striped { stripes.or(shared) } else { shared.or(stripes) };
        out.latency_ewma = ewma.unwrap_or(0) >> EWMA_FRACTION_BITS;
        out
    }
}

fn in_flight_count(word: u64) -> u32 {
    #[allow(clippy::cast_possible_truncation)] // 20 bits
    let n = (word & REQUEST_MASK) as u32;
    n
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
        let block = Counters::new();
        let read = |block: &Counters| {
            let mut r = Reading::new(false);
            r.add_shared(block);
            r.finish()
        };
        for _ in 0..200 {
            block.start(512, 0);
            block.complete(false, 512, 1000, true);
        }
        assert_eq!(read(&block).latency_ewma, 1000);
        for _ in 0..200 {
            block.start(512, 0);
            block.complete(false, 512, 10, true);
        }
        let ewma = read(&block).latency_ewma;
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
        // One I/O on the shared block, two in stripes: a reading sums all.
        let shared = Counters::new();
        let stripes = [Counters::new(), Counters::new()];
        let read = |striped| {
            let mut r = Reading::new(striped);
            r.add_shared(&shared);
            for stripe in &stripes {
                r.add_stripe(stripe);
            }
            r.finish()
        };
        shared.start(4096, 0);
        stripes[0].start(512, 0);
        stripes[1].start(100, 0);
        assert_eq!(read(false).in_flight, 3);
        assert_eq!(read(true).in_flight_bytes, 4708);
        shared.complete(true, 4096, 5, true);
        stripes[0].complete(false, 512, 0, true);
        stripes[1].complete(false, 100, 9, false);
        let s = read(false);
        assert_eq!((s.reads, s.writes, s.errors), (1, 1, 1));
        assert_eq!((s.bytes_read, s.bytes_written), (512, 4096));
        assert_eq!((s.in_flight, s.in_flight_bytes), (0, 0));
        assert_eq!(s.histogram[0], 1);
        assert_eq!(s.histogram[3], 1);
        assert_eq!(s.histogram.iter().sum::<u64>(), 2, "errors carry no latency sample");
        // The EWMA: the shared block's when not striped, the stripes' mean
        // (of those with a sample) when striped.
        assert_eq!(s.latency_ewma, 5);
        assert_eq!(read(true).latency_ewma, 0, "stripe 0 saw latency 0, stripe 1 only an error");
    }
}
