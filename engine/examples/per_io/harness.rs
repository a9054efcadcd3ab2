//! The per-I/O harness shared by `examples/per_io` and `benches/per_io.rs`.
//!
//! One loop ([`measure`]) drives select + start + complete as the DSM does:
//! `qd` I/Os outstanding per thread, completed in FIFO order, 4096-byte
//! reads, the tick advancing by one per I/O (the engine reads no clock, so
//! the harness never does either). The same loop drives the engine, two
//! in-run baselines and `null` (always path 0, no bookkeeping: the loop's
//! own cost).

#![allow(dead_code)] // each user takes a different part

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rsdsm_engine::{
    AccessState, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun, PathId, PathPolicy, Tick,
    VendorPolicy,
};

/// Bytes per I/O.
pub const IO_BYTES: u32 = 4096;
/// Blocks per I/O (512-byte blocks).
pub const IO_BLOCKS: u32 = 8;

/// What the harness can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An engine policy.
    Engine(LoadBalancePolicy),
    /// One `fetch_add` on its own cache line, then `% paths`.
    BaselineRr,
    /// A mutex-protected least-queue-depth scan (rotating start, early exit
    /// on an idle path), in-flight counts updated under the same mutex.
    BaselineMutexLqd,
    /// Always path 0, no bookkeeping.
    Null,
    /// Always path 0, plus the statistics DESIGN §2 asks for (in flight,
    /// requests and bytes by direction, latency EWMA and log2 histogram)
    /// in one block of plain atomics: what statistics alone cost.
    BaselineStats,
}

/// Every engine policy with the name `per_io` takes for it.
pub const POLICIES: [(&str, LoadBalancePolicy); 9] = [
    ("failover", LoadBalancePolicy::FailoverOnly),
    ("round-robin", LoadBalancePolicy::RoundRobin),
    ("round-robin-subset", LoadBalancePolicy::RoundRobinWithSubset),
    ("least-queue-depth", LoadBalancePolicy::LeastQueueDepth),
    ("weighted-paths", LoadBalancePolicy::WeightedPaths),
    ("least-blocks", LoadBalancePolicy::LeastBlocks),
    ("weighted-round-robin", LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin)),
    ("service-time", LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime)),
    ("adaptive-latency", LoadBalancePolicy::VendorSpecific(VendorPolicy::AdaptiveLatency)),
];

/// The baselines with their names.
pub const BASELINES: [(&str, Kind); 4] = [
    ("baseline-rr", Kind::BaselineRr),
    ("baseline-mutex-lqd", Kind::BaselineMutexLqd),
    ("baseline-stats", Kind::BaselineStats),
    ("null", Kind::Null),
];

impl Kind {
    /// Parses a `per_io` policy name (also any name the engine parses).
    pub fn parse(name: &str) -> Option<Self> {
        if let Some((_, k)) = BASELINES.iter().find(|(n, _)| *n == name) {
            return Some(*k);
        }
        if let Some((_, p)) = POLICIES.iter().find(|(n, _)| *n == name) {
            return Some(Self::Engine(*p));
        }
        name.parse().ok().map(Self::Engine)
    }

    /// The name `per_io` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Engine(p) => POLICIES.iter().find(|(_, q)| *q == p).map_or("?", |(n, _)| n),
            Self::BaselineRr => "baseline-rr",
            Self::BaselineMutexLqd => "baseline-mutex-lqd",
            Self::Null => "null",
            Self::BaselineStats => "baseline-stats",
        }
    }
}

/// Something the loop issues I/Os to and completes them on.
pub trait Target: Sync {
    /// What `issue` hands back for the completion.
    type Ticket: Send;
    /// Picks a path and counts the I/O on it.
    fn issue(&self, io: &IoRequest) -> Self::Ticket;
    /// Completes an I/O.
    fn finish(&self, ticket: Self::Ticket, now: Tick);
}

/// The engine, exactly as the DSM calls it.
pub struct Engine<'a, const N: usize>(pub &'a Lun<N>);

impl<const N: usize> Target for Engine<'_, N> {
    type Ticket = Option<IoTicket>;

    #[inline(always)]
    fn issue(&self, io: &IoRequest) -> Option<IoTicket> {
        match self.0.select(io) {
            Ok(slot) => Some(self.0.start(slot, io)),
            Err(_) => None,
        }
    }

    #[inline(always)]
    fn finish(&self, ticket: Option<IoTicket>, now: Tick) {
        if let Some(t) = ticket {
            self.0.complete(t, now, IoOutcome::Success);
        }
    }
}

/// Keeps a value on its own cache line.
#[repr(align(64))]
pub struct Padded<T>(pub T);

/// `baseline-rr`: one `fetch_add`, then a modulo.
pub struct BaselineRr {
    next: Padded<AtomicU64>,
    paths: u64,
}

impl BaselineRr {
    pub fn new(paths: usize) -> Self {
        Self { next: Padded(AtomicU64::new(0)), paths: paths as u64 }
    }
}

impl Target for BaselineRr {
    type Ticket = u64;

    #[inline(always)]
    fn issue(&self, _io: &IoRequest) -> u64 {
        self.next.0.fetch_add(1, Relaxed) % self.paths
    }

    #[inline(always)]
    fn finish(&self, _ticket: u64, _now: Tick) {}
}

/// `baseline-mutex-lqd`: in-flight counts and a rotating start behind one
/// mutex.
pub struct BaselineMutexLqd {
    state: Mutex<(Vec<u32>, usize)>,
}

impl BaselineMutexLqd {
    pub fn new(paths: usize) -> Self {
        Self { state: Mutex::new((vec![0; paths], 0)) }
    }
}

impl Target for BaselineMutexLqd {
    type Ticket = usize;

    #[inline(always)]
    fn issue(&self, _io: &IoRequest) -> usize {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (counts, start) = &mut *guard;
        let n = counts.len();
        let mut best = *start;
        let mut best_count = u32::MAX;
        let mut slot = *start;
        for _ in 0..n {
            let c = counts[slot];
            if c < best_count {
                best = slot;
                best_count = c;
                if c == 0 {
                    break;
                }
            }
            slot += 1;
            if slot == n {
                slot = 0;
            }
        }
        counts[best] += 1;
        *start = if best + 1 == n { 0 } else { best + 1 };
        best
    }

    #[inline(always)]
    fn finish(&self, ticket: usize, _now: Tick) {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0[ticket] -= 1;
    }
}

/// `null`: path 0, nothing counted. Its ticket has the engine ticket's shape
/// (16 bytes, in an `Option` as the engine's is), so that storing and
/// moving tickets through the ring, which the DSM does too, is part of the
/// loop's own cost and not of any policy's.
pub struct Null;

/// [`Null`]'s ticket: what an engine ticket holds.
pub struct NullTicket {
    started: Tick,
    bytes: u32,
    slot: u8,
    write: bool,
}

impl Target for Null {
    type Ticket = Option<NullTicket>;

    #[inline(always)]
    fn issue(&self, io: &IoRequest) -> Option<NullTicket> {
        Some(NullTicket { started: io.now, bytes: io.bytes, slot: 0, write: io.write })
    }

    #[inline(always)]
    fn finish(&self, ticket: Option<NullTicket>, now: Tick) {
        if let Some(t) = ticket {
            std::hint::black_box(t.slot);
            let _ = (now, t.started, t.bytes, t.write);
        }
    }
}

/// `baseline-stats`: [`Null`]'s selection (path 0) with the least
/// bookkeeping that DESIGN §2's statistics need, written as directly as
/// possible: one block of atomics, no striping, no ticket beyond
/// [`NullTicket`]. The engine's policies pay this too, so it bounds from
/// below what any of them can cost with statistics on.
#[repr(align(64))]
pub struct BaselineStats {
    /// Requests in flight (high 20 bits) and bytes in flight (low 44).
    in_flight: AtomicU64,
    /// Latency EWMA in 1/16 ticks, moved 1/8 of the way per sample.
    ewma: AtomicU64,
    writes: AtomicU64,
    bytes: [AtomicU64; 2],
    histogram: [AtomicU64; rsdsm_engine::stats::HISTOGRAM_BUCKETS],
}

impl BaselineStats {
    pub fn new() -> Self {
        Self {
            in_flight: AtomicU64::new(0),
            ewma: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Target for BaselineStats {
    type Ticket = Option<NullTicket>;

    #[inline(always)]
    fn issue(&self, io: &IoRequest) -> Option<NullTicket> {
        self.in_flight.fetch_add(1 << 44 | u64::from(io.bytes), Relaxed);
        Some(NullTicket { started: io.now, bytes: io.bytes, slot: 0, write: io.write })
    }

    #[inline(always)]
    fn finish(&self, ticket: Option<NullTicket>, now: Tick) {
        if let Some(t) = ticket {
            self.in_flight.fetch_sub(1 << 44 | u64::from(t.bytes), Relaxed);
            self.bytes[usize::from(t.write)].fetch_add(u64::from(t.bytes), Relaxed);
            if t.write {
                self.writes.fetch_add(1, Relaxed);
            }
            let latency = now.saturating_sub(t.started);
            self.histogram[rsdsm_engine::stats::histogram_bucket(latency)].fetch_add(1, Relaxed);
            let sample = latency << 4 | 8;
            let old = self.ewma.load(Relaxed);
            let new = if old == 0 {
                sample
            } else {
                old.wrapping_add((sample.wrapping_sub(old) as i64 >> 3) as u64)
            };
            self.ewma.store(new, Relaxed);
        }
    }
}

/// The measured loop: `ios` I/Os on processor `cpu`, `qd` outstanding
/// (0: each completes at once), completions in FIFO order. `ring` must hold
/// at least `qd` entries, all `None`; it is left that way. Returns the
/// number of I/Os completed.
///
/// Never inlined, so that `valgrind --tool=callgrind
/// --toggle-collect='*harness*measure*'` counts exactly this loop (and the
/// engine code it calls).
#[inline(never)]
pub fn measure<T: Target>(target: &T, cpu: u32, qd: usize, ios: u64, ring: &mut [Option<T::Ticket>]) -> u64 {
    let mut io = IoRequest::read(IO_BYTES).on_cpu(cpu);
    let mut done = 0u64;
    if qd == 0 {
        for i in 0..ios {
            io.now = i;
            // Random-ish (never sequential) LBAs: least blocks' stream
            // tracking runs but never short-cuts the scan.
            io.lba = i.wrapping_mul(2 * u64::from(IO_BLOCKS));
            io.blocks = IO_BLOCKS;
            let t = target.issue(&io);
            target.finish(t, i);
            done += 1;
        }
        return done;
    }
    let ring = &mut ring[..qd];
    let mut head = 0usize;
    for i in 0..ios {
        io.now = i;
        io.lba = i.wrapping_mul(2 * u64::from(IO_BLOCKS));
        io.blocks = IO_BLOCKS;
        let cell = &mut ring[head];
        if let Some(old) = cell.take() {
            target.finish(old, i);
            done += 1;
        }
        *cell = Some(target.issue(&io));
        head += 1;
        if head == qd {
            head = 0;
        }
    }
    // Drain the remaining I/Os, oldest first.
    for k in 0..qd {
        let cell = &mut ring[(head + k) % qd];
        if let Some(old) = cell.take() {
            target.finish(old, ios);
            done += 1;
        }
    }
    done
}

/// The path settings `per_io` uses for a policy: failover's primary is path
/// 0; round robin with subset's primary paths are the even slots; weighted
/// paths gives the even slots weight 1 and the odd ones 2 (the even slots
/// share the I/O); weighted round robin weights 1-4 by slot; service time
/// weights 1-2 by slot; everything else weight 1, all primary.
pub fn path_settings(policy: LoadBalancePolicy, paths: usize) -> Vec<PathPolicy> {
    (0..paths)
        .map(|i| {
            let (primary, weight) = match policy {
                LoadBalancePolicy::FailoverOnly => (i == 0, 0),
                LoadBalancePolicy::RoundRobinWithSubset => (i % 2 == 0, 1),
                LoadBalancePolicy::WeightedPaths => (true, 1 + (i as u32 % 2)),
                LoadBalancePolicy::VendorSpecific(VendorPolicy::WeightedRoundRobin) => {
                    (true, 1 + (i as u32 % 4))
                }
                LoadBalancePolicy::VendorSpecific(VendorPolicy::ServiceTime) => (true, 1 + (i as u32 % 2)),
                _ => (true, 1),
            };
            PathPolicy { path_id: path_id(i), primary, weight }
        })
        .collect()
}

fn path_id(i: usize) -> PathId {
    PathId::new(1, i as u64 + 1)
}

/// A LUN with `paths` active/optimized paths under `policy`.
pub fn lun<const N: usize>(policy: LoadBalancePolicy, paths: usize) -> Box<Lun<N>> {
    let lun = Box::new(Lun::<N>::new(LoadBalancePolicy::RoundRobin));
    for i in 0..paths {
        lun.add_path(path_id(i), AccessState::ActiveOptimized).expect("add path");
    }
    lun.set_load_balance_policy(policy, &path_settings(policy, paths)).expect("set policy");
    lun
}

/// Timing of one run.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Per thread: seconds its loop took.
    pub per_thread: Vec<f64>,
    /// Seconds from the common start to the last thread's end.
    pub wall: f64,
}

impl Timing {
    /// Nanoseconds per I/O of each thread.
    pub fn ns_per_io(&self, ios: u64) -> Vec<f64> {
        self.per_thread.iter().map(|s| s * 1e9 / ios as f64).collect()
    }

    /// I/Os per second over all threads.
    pub fn iops(&self, ios: u64) -> f64 {
        (ios as f64 * self.per_thread.len() as f64) / self.wall
    }
}

/// Runs `threads` threads of `ios` I/Os each against `target`, thread `t`
/// on processor `t`, all released at once.
pub fn run<T: Target>(target: &T, qd: usize, ios: u64, threads: usize) -> Timing {
    let barrier = std::sync::Barrier::new(threads);
    let results: Vec<(std::time::Instant, std::time::Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut ring: Vec<Option<T::Ticket>> = (0..qd.max(1)).map(|_| None).collect();
                    barrier.wait();
                    let start = std::time::Instant::now();
                    let done = measure(target, t as u32, qd, ios, &mut ring);
                    let end = std::time::Instant::now();
                    assert_eq!(done, ios, "every I/O completes once");
                    (start, end)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let first = results.iter().map(|r| r.0).min().expect("a thread");
    let last = results.iter().map(|r| r.1).max().expect("a thread");
    Timing {
        per_thread: results.iter().map(|(s, e)| (*e - *s).as_secs_f64()).collect(),
        wall: (last - first).as_secs_f64(),
    }
}

/// Builds the target for `kind` with `paths` paths and runs it.
pub fn run_kind(kind: Kind, paths: usize, qd: usize, ios: u64, threads: usize) -> Timing {
    match kind {
        Kind::Engine(policy) if paths <= 32 => run(&Engine(&*lun::<32>(policy, paths)), qd, ios, threads),
        Kind::Engine(policy) => run(&Engine(&*lun::<64>(policy, paths)), qd, ios, threads),
        Kind::BaselineRr => run(&BaselineRr::new(paths), qd, ios, threads),
        Kind::BaselineMutexLqd => run(&BaselineMutexLqd::new(paths), qd, ios, threads),
        Kind::Null => run(&Null, qd, ios, threads),
        Kind::BaselineStats => run(&BaselineStats::new(), qd, ios, threads),
    }
}
