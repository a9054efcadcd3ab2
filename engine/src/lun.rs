//! A LUN: its fixed path table, the per-I/O API, path lifecycle and
//! `SetLoadBalancePolicy`.
//!
//! # Concurrency
//!
//! * **Per I/O** ([`select`](Lun::select), [`start`](Lun::start),
//!   [`complete`](Lun::complete)): atomics only. No lock, no allocation, no
//!   floating point, no panic. The policy configuration is read through a
//!   double-buffered seqlock (see `config.rs`), so a concurrent policy set
//!   never makes a selection wait and never shows it a mix of two policies.
//! * **Control** (path arrival, failure, reinstatement, ALUA changes,
//!   policy sets, reports): serialised by a short per-LUN spin section that
//!   the I/O path never takes. Policy sets additionally pass a gate that
//!   turns a second concurrent set away with
//!   `VDS_E_ANOTHER_CALL_IN_PROGRESS` instead of blocking it.
//!
//! Which paths are usable is kept as one bit mask per tier (optimized,
//! non-optimized, standby). A path failure clears its bit, so it takes
//! effect for the very next selection.
//!
//! Two things keep the per-I/O cost of the rotation policies (failover only,
//! round robin, round robin with subset, weighted paths) down and their
//! writes off shared cache lines:
//!
//! * the **rotation set**: after every control change the LUN settles the
//!   set of paths such a policy rotates over and publishes it in one word
//!   (withdrawn before each configuration publish, so a selection never
//!   pairs a new generation with an old set); selection is one load and a
//!   step of this CPU's cursor;
//! * **statistics stripes**: each path has a counters block per CPU stripe
//!   (CPU number modulo [`STRIPES`]) besides its shared block; I/O under a
//!   rotation policy counts in its CPU's stripe, I/O under a load-aware
//!   policy in the shared block those policies read. The ticket says which,
//!   so completion balances across any policy change.

use heapless::Vec;

use crate::config::{AdminTable, PolicyConfig};
use crate::error::{Error, Invalid};
use crate::failback::{FailbackMode, LunSettings, Reinstatement};
use crate::io::{IoOutcome, IoRequest, IoTicket, NoPath, Tick};
use crate::path::{
    AccessState, Health, PathFlags, PathId, PathInfo, PathPolicy, PathSlot, TIER_COUNT, in_table,
};
use crate::policy::{self, LoadBalancePolicy, SupportedPolicies};
use crate::stats::{Counters, EwmaMean, PathStatistics, Reading};
use crate::sync::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, CachePadded, ControlLock, Gate, GatePass,
    Ordering::{Acquire, Relaxed, Release},
};

/// Default path capacity of a LUN: the MSDSM limit.
pub const DEFAULT_PATHS: usize = 32;

/// Per-CPU policy state slots; CPU numbers are taken modulo this.
pub const CPU_SLOTS: usize = 64;

/// Statistics stripes per path; an I/O counts in the stripe of its CPU
/// number modulo this. CPUs in different stripes write no common cache line
/// under the rotation policies. Each stripe costs 320 bytes per path (10 KB
/// for a `Lun<32>`): four stripes keep a LUN table modest and make two to
/// four CPUs independent; more CPUs share stripes (a quarter of the
/// contention of one shared counter each).
pub const STRIPES: usize = 4;

/// Counter blocks per slot: one per stripe and the shared one.
const BLOCKS: usize = STRIPES + 1;
/// The index of a slot's shared block in its row (and in an I/O ticket).
#[allow(clippy::cast_possible_truncation)] // 4
pub(crate) const SHARED_BLOCK: u8 = STRIPES as u8;

/// Weight a path gets when it arrives.
pub const DEFAULT_WEIGHT: u32 = 1;

/// The bit of a slot in a path mask.
#[inline]
pub(crate) const fn bit(slot: usize) -> u64 {
    1u64 << (slot & 63)
}

/// Policy state a CPU keeps for itself: only this CPU writes it.
#[derive(Debug, Default)]
pub(crate) struct CpuState {
    /// Rotation cursor: the slot after the last one picked.
    pub(crate) cursor: AtomicU32,
    /// Weighted round robin's position in its cycle.
    pub(crate) wrr: AtomicU64,
}

impl CpuState {
    loom_const_fn! {
        const fn new() -> Self {
            Self { cursor: AtomicU32::new(0), wrr: AtomicU64::new(0) }
        }
    }
}

#[derive(Debug)]
struct PathEntry {
    source_id: AtomicU64,
    path_id: AtomicU64,
    access: AtomicU8,
    health: AtomicU8,
    /// Flap damping, written under the control lock. 0 = never failed.
    last_failure: AtomicU64,
    failures: AtomicU32,
    held_until: AtomicU64,
}

impl PathEntry {
    loom_const_fn! {
        const fn new() -> Self {
            Self {
                source_id: AtomicU64::new(0),
                path_id: AtomicU64::new(0),
                access: AtomicU8::new(AccessState::Unavailable as u8),
                health: AtomicU8::new(Health::Removed as u8),
                last_failure: AtomicU64::new(0),
                failures: AtomicU32::new(0),
                held_until: AtomicU64::new(0),
            }
        }
    }

    fn id(&self) -> PathId {
        PathId::new(self.source_id.load(Relaxed), self.path_id.load(Relaxed))
    }

    fn health(&self) -> Health {
        Health::from_raw(self.health.load(Relaxed))
    }

    fn access(&self) -> AccessState {
        AccessState::from_alua(self.access.load(Relaxed)).unwrap_or(AccessState::Unavailable)
    }
}

/// One LUN's paths and policy. `N` is the path capacity (at most 64).
///
/// ```
/// use rsdsm_engine::{AccessState, IoOutcome, IoRequest, LoadBalancePolicy, Lun, PathId};
///
/// let lun: Lun = Lun::new(LoadBalancePolicy::RoundRobin);
/// let a = lun.add_path(PathId::new(1, 10), AccessState::ActiveOptimized).unwrap();
/// let b = lun.add_path(PathId::new(1, 11), AccessState::ActiveOptimized).unwrap();
///
/// let io = IoRequest::read(4096);
/// let first = lun.select(&io).unwrap();
/// let second = lun.select(&io).unwrap();
/// assert_eq!([first, second], [a, b]);
///
/// let ticket = lun.start(first, &io);
/// lun.complete(ticket, 5, IoOutcome::Success);
///
/// lun.fail_path(a, 10).unwrap();
/// assert_eq!(lun.select(&io), Ok(b));
/// ```
#[derive(Debug)]
pub struct Lun<const N: usize = DEFAULT_PATHS> {
    /// Usable paths by tier: healthy paths whose access state is in it.
    pub(crate) usable: [AtomicU64; TIER_COUNT],
    /// The rotation set of the policy in force (`Selector::rotation_set`),
    /// or 0: select by the policy's own code. Written by the control path
    /// after every change, read by every selection: a line of its own, so
    /// that no per-I/O write shares it.
    rotation: CachePadded<AtomicU64>,
    config: PolicyConfig<N>,
    paths: [PathEntry; N],
    /// Counters by slot: the slot's block in each CPU stripe, then its
    /// shared block (index [`SHARED_BLOCK`]), which the load-aware policies
    /// read. One row per slot, so that finding any block of an I/O is
    /// arithmetic, not a branch.
    counters: [[Counters; BLOCKS]; N],
    /// A rotation policy was in force at the last settle: the stripes hold
    /// the current latency EWMAs (see `hand_over_latency`).
    striped: AtomicBool,
    cpus: [CachePadded<CpuState>; CPU_SLOTS],
    /// Failover only's active path: `generation << 8 | (slot + 1)`, where
    /// slot + 1 is 0 for none and `generation` is the configuration it was
    /// decided under (see `failover_only.rs`).
    pub(crate) failover_current: AtomicU64,
    /// Least blocks' sequential stream (see `least_blocks.rs`).
    pub(crate) stream: AtomicU64,
    control: ControlLock,
    set_gate: Gate,
    removed: AtomicBool,
    failback_kind: AtomicU8,
    failback_delay: AtomicU64,
    /// Tick at which a delayed failback is due; 0 when none is pending.
    failback_due: AtomicU64,
    sequential_window: AtomicU32,
    flap: [AtomicU64; 4],
}

/// The policy of a LUN as `GetLoadBalancePolicy` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySnapshot<const N: usize = DEFAULT_PATHS> {
    /// The policy.
    pub policy: LoadBalancePolicy,
    /// The configuration generation: it changes with every policy set and
    /// every path arrival or removal. Pass it back to
    /// [`Lun::begin_set`] to make a set conditional on it.
    pub generation: u64,
    /// Every path of the LUN, in slot order.
    pub paths: Vec<PathPolicy, N>,
    /// The preferred path, if one is set.
    pub preferred: Option<PathId>,
}

impl<const N: usize> Lun<N> {
    const CAPACITY_OK: () = assert!(N >= 1 && N <= 64, "a LUN holds 1 to 64 paths");

    loom_const_fn! {
        /// An empty LUN with default settings (microsecond ticks).
        ///
        /// `const`, like [`with_settings`](Self::with_settings), so that LUN
        /// tables can live in a `static` (a `Lun<32>` is about 57 KB, more than
        /// a kernel stack can hold).
        #[must_use]
        pub const fn new(policy: LoadBalancePolicy) -> Self {
            Self::with_settings(policy, LunSettings::for_tick_rate(1_000_000))
        }
    }

    loom_const_fn! {
        /// An empty LUN.
        #[must_use]
        #[allow(clippy::cast_lossless)] // `u64::from` is not `const`
        pub const fn with_settings(policy: LoadBalancePolicy, settings: LunSettings) -> Self {
            let () = Self::CAPACITY_OK;
            let (kind, delay) = settings.failback.encode();
            let f = settings.flap;
            Self {
                usable: atomic_array![AtomicU64::new(0); TIER_COUNT],
                rotation: CachePadded(AtomicU64::new(0)),
                config: PolicyConfig::empty(policy),
                paths: atomic_array![PathEntry::new(); N],
                counters: atomic_array![atomic_array![Counters::new(); BLOCKS]; N],
                striped: AtomicBool::new(false),
                cpus: atomic_array![CachePadded(CpuState::new()); CPU_SLOTS],
                failover_current: AtomicU64::new(0),
                stream: AtomicU64::new(0),
                control: ControlLock::new(),
                set_gate: Gate::new(),
                removed: AtomicBool::new(false),
                failback_kind: AtomicU8::new(kind),
                failback_delay: AtomicU64::new(delay),
                failback_due: AtomicU64::new(0),
                sequential_window: AtomicU32::new(settings.sequential_window),
                flap: [
                    AtomicU64::new(f.window),
                    AtomicU64::new(f.threshold as u64),
                    AtomicU64::new(f.hold),
                    AtomicU64::new(f.max_hold),
                ],
            }
        }
    }

    /// The policies this engine supports (`GetSupportedLbPolicies`).
    #[must_use]
    pub const fn supported_policies() -> SupportedPolicies {
        SupportedPolicies::all()
    }

    /// The path capacity.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    // ------------------------------------------------------------------
    // Per I/O
    // ------------------------------------------------------------------

    /// Picks the path for one I/O under the policy in force.
    ///
    /// Under round robin, round robin with subset, weighted paths and
    /// failover only this is one load of the LUN's rotation set and one
    /// step of this CPU's cursor; the other policies run their own code.
    ///
    /// # Errors
    /// [`NoPath`] when no path of the LUN is usable.
    #[inline(always)]
    #[allow(clippy::inline_always)] // measured: a call here costs a full prologue per I/O
    pub fn select(&self, io: &IoRequest) -> Result<PathSlot, NoPath> {
        let cpu = self.cpus.get(io.cpu as usize % CPU_SLOTS).ok_or(NoPath)?;
        // Acquire: a path in the set was reset and configured before the
        // set was published, and this CPU's `start` on it must come after.
        let set = self.rotation.load(Acquire);
        #[allow(clippy::cast_possible_truncation)] // < 64
        let slot = if set != 0 { policy::rotate(set, cpu) as u8 } else { self.select_by_policy(io, cpu) };
        // One byte from both ways, tested once (see `policy::NO_SLOT`).
        if slot == policy::NO_SLOT { Err(NoPath) } else { Ok(PathSlot(slot)) }
    }

    /// The policy's own selection, for the policies without a rotation set
    /// (and for every policy while none is settled): one jump to the
    /// policy's function (see `policy::select`). The slot or
    /// `policy::NO_SLOT`.
    #[inline(never)]
    fn select_by_policy(&self, io: &IoRequest, cpu: &CachePadded<CpuState>) -> u8 {
        policy::select(self, self.config.read(), &cpu.0, io)
    }

    /// Two sets completed during a selection that reads the configuration:
    /// pick again on fresh reads until one holds (rare). A loop, never a
    /// recursion: a busy writer cannot grow the stack.
    #[cold]
    #[inline(never)]
    pub(crate) fn select_again(&self, io: &IoRequest, cpu: &CpuState) -> u8 {
        loop {
            let ctx = policy::Context { lun: self, config: self.config.read(), cpu };
            if let Some(pick) = policy::select_once(&ctx, io) {
                return pick;
            }
        }
    }

    /// `true` if everything read through `read` belongs to one generation.
    #[inline]
    pub(crate) fn confirm(&self, read: &crate::config::ConfigRead<'_, N>) -> bool {
        self.config.confirm(read)
    }

    /// Counts an I/O as in flight on `slot` (the DSM's `SetCompletion`).
    ///
    /// Under a rotation policy it counts in this CPU's stripe, which no
    /// other stripe's CPU writes; under a load-aware policy on the path's
    /// shared line, which those policies read. The ticket records which.
    #[inline]
    pub fn start(&self, slot: PathSlot, io: &IoRequest) -> IoTicket {
        let block = if self.rotation.load(Relaxed) != 0 {
            io.cpu as usize % STRIPES
        } else {
            usize::from(SHARED_BLOCK)
        };
        // The block's index in the flattened table is all `complete` needs
        // to find it again: one bounds check there, no row arithmetic.
        let index = slot.index() * BLOCKS + block;
        if let Some(counters) = self.counters.as_flattened().get(index) {
            counters.start(io.bytes, io.now);
        }
        #[allow(clippy::cast_possible_truncation)] // < 64 * BLOCKS
        IoTicket { slot, write: io.write, counters: index as u16, bytes: io.bytes, started: io.now }
    }

    /// Ends an I/O: takes back exactly what `start` counted and records the
    /// outcome and latency.
    #[inline]
    #[allow(clippy::needless_pass_by_value)] // consuming the ticket is the point
    pub fn complete(&self, ticket: IoTicket, now: Tick, outcome: IoOutcome) {
        if let Some(counters) = self.counters.as_flattened().get(usize::from(ticket.counters)) {
            let latency = now.saturating_sub(ticket.started);
            counters.complete(ticket.write, ticket.bytes, latency, outcome == IoOutcome::Success);
        }
    }

    /// A slot's counters block: a stripe's, or the shared one.
    #[inline]
    fn block(&self, slot: usize, block: u8) -> Option<&Counters> {
        self.counters.get(slot).and_then(|row| row.get(usize::from(block)))
    }

    /// A slot's blocks in the CPU stripes.
    fn stripes(&self, slot: usize) -> impl Iterator<Item = &Counters> + Clone {
        self.counters.get(slot).into_iter().flat_map(|row| row.iter().take(STRIPES))
    }

    /// Requests in flight on a slot: its shared line and every stripe.
    fn slot_in_flight(&self, slot: usize) -> u32 {
        self.counters.get(slot).into_iter().flatten().fold(0, |n, block| n.wrapping_add(block.in_flight()))
    }

    /// Zeroes every counter of a slot (nothing in flight on it).
    fn reset_counters(&self, slot: usize) {
        for block in self.counters.get(slot).into_iter().flatten() {
            block.reset();
        }
    }

    /// One slot's statistics, summed over its shared line and stripes.
    fn read_statistics(&self, slot: usize) -> Option<PathStatistics> {
        let mut reading = Reading::new(self.striped.load(Relaxed));
        reading.add_shared(self.block(slot, SHARED_BLOCK)?);
        for stripe in self.stripes(slot) {
            reading.add_stripe(stripe);
        }
        Some(reading.finish())
    }

    /// [`select`](Self::select) then [`start`](Self::start).
    ///
    /// # Errors
    /// [`NoPath`] when no path is usable.
    #[inline]
    pub fn dispatch(&self, io: &IoRequest) -> Result<IoTicket, NoPath> {
        self.select(io).map(|slot| self.start(slot, io))
    }

    /// The load of a slot taken from a usable mask (so below `N`).
    #[inline]
    pub(crate) fn load_of(&self, slot: usize) -> Option<&Counters> {
        // No bounds check per candidate (see `in_table`).
        self.block(in_table::<N>(slot), SHARED_BLOCK)
    }

    pub(crate) fn sequential_window(&self) -> u32 {
        self.sequential_window.load(Relaxed)
    }

    // ------------------------------------------------------------------
    // Path lifecycle
    // ------------------------------------------------------------------

    /// A path arrives, healthy, in the given access state.
    ///
    /// It joins the policy with weight [`DEFAULT_WEIGHT`] and as a primary
    /// path, except under failover only when a primary path exists already.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` if the LUN was removed; `E_INVALIDARG`
    /// ([`Invalid::DuplicatePath`]) if the id is a path of this LUN already;
    /// `E_OUTOFMEMORY` if every slot is taken (or still draining I/O).
    pub fn add_path(&self, id: PathId, access: AccessState) -> Result<PathSlot, Error> {
        let _guard = self.control.lock();
        self.check_present()?;
        let mut table = self.config.current();
        if self.find(id, table.present).is_some() {
            return Err(Invalid::DuplicatePath.into());
        }
        // A removed slot is reused only once its last I/O has completed,
        // so that a late completion never lands on the new path's counters.
        let free = self
            .paths
            .iter()
            .enumerate()
            .position(|(slot, _)| table.present & bit(slot) == 0 && self.slot_in_flight(slot) == 0);
        let slot = free.ok_or(Error::OutOfMemory)?;
        let entry = self.paths.get(slot).ok_or(Error::OutOfMemory)?;
        self.reset_counters(slot);
        entry.source_id.store(id.source_id, Relaxed);
        entry.path_id.store(id.path_id, Relaxed);
        entry.access.store(access.alua(), Relaxed);
        entry.health.store(Health::Healthy as u8, Relaxed);
        entry.last_failure.store(0, Relaxed);
        entry.failures.store(0, Relaxed);
        entry.held_until.store(0, Relaxed);
        table.present |= bit(slot);
        if let Some(w) = table.weights.get_mut(slot) {
            *w = DEFAULT_WEIGHT;
        }
        let lone_primary =
            table.policy == LoadBalancePolicy::FailoverOnly && table.primary & table.present != 0;
        if !lone_primary {
            table.primary |= bit(slot);
        }
        // Configuration first, usable bit second: a selection that sees the
        // path usable also finds it in the configuration it reads.
        self.publish(&table);
        self.refresh_usable(slot);
        self.settle(false);
        #[allow(clippy::cast_possible_truncation)] // slot < N <= 64
        Ok(PathSlot(slot as u8))
    }

    /// A path leaves the LUN. Its I/O in flight still completes normally.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn remove_path(&self, slot: PathSlot) -> Result<(), Error> {
        let _guard = self.control.lock();
        let (entry, s) = self.entry(slot)?;
        entry.health.store(Health::Removed as u8, Relaxed);
        self.refresh_usable(s);
        let mut table = self.config.current();
        table.present &= !bit(s);
        table.primary &= !bit(s);
        table.preferred &= !bit(s);
        if let Some(w) = table.weights.get_mut(s) {
            *w = 0;
        }
        self.publish(&table);
        self.settle(false);
        Ok(())
    }

    /// The DSM found the path failed (fatal sense, transport error, failed
    /// verify). Takes effect for the very next selection.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn fail_path(&self, slot: PathSlot, now: Tick) -> Result<(), Error> {
        let _guard = self.control.lock();
        let (entry, s) = self.entry(slot)?;
        if entry.health() == Health::Failed {
            return Ok(());
        }
        entry.health.store(Health::Failed as u8, Relaxed);
        self.refresh_usable(s);
        let flap = self.flap_damping();
        let previous = match entry.last_failure.load(Relaxed) {
            0 => None,
            at => Some(at - 1),
        };
        let failures = flap.failures_after(previous, entry.failures.load(Relaxed), now);
        entry.failures.store(failures, Relaxed);
        entry.last_failure.store(now.saturating_add(1), Relaxed);
        let hold = flap.hold_for(failures);
        entry.held_until.store(if hold == 0 { 0 } else { now.saturating_add(hold) }, Relaxed);
        self.settle(false);
        Ok(())
    }

    /// The DSM started verifying the path; it carries no I/O meanwhile.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn begin_verify(&self, slot: PathSlot) -> Result<(), Error> {
        let _guard = self.control.lock();
        let (entry, s) = self.entry(slot)?;
        if entry.health() == Health::Healthy {
            entry.health.store(Health::Verifying as u8, Relaxed);
            self.refresh_usable(s);
            self.settle(false);
        }
        Ok(())
    }

    /// A verify succeeded: the path returns to service, unless it is held
    /// down for flapping. Under failover only, failback follows the mode.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn reinstate_path(&self, slot: PathSlot, now: Tick) -> Result<Reinstatement, Error> {
        let _guard = self.control.lock();
        let (entry, s) = self.entry(slot)?;
        if entry.health() == Health::Healthy {
            return Ok(Reinstatement::AlreadyInService);
        }
        let until = entry.held_until.load(Relaxed);
        if now < until {
            entry.health.store(Health::Failed as u8, Relaxed);
            self.refresh_usable(s);
            self.settle(false);
            return Ok(Reinstatement::HeldDown { until });
        }
        entry.health.store(Health::Healthy as u8, Relaxed);
        self.refresh_usable(s);
        match self.failback_mode() {
            FailbackMode::Immediate => self.settle(true),
            FailbackMode::Manual => self.settle(false),
            FailbackMode::Delayed(delay) => {
                self.failback_due.store(now.saturating_add(delay).max(1), Relaxed);
                self.settle(false);
            }
        }
        Ok(Reinstatement::Reinstated)
    }

    /// The path's target port group changed ALUA state.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn set_access_state(&self, slot: PathSlot, access: AccessState) -> Result<(), Error> {
        let _guard = self.control.lock();
        let (entry, s) = self.entry(slot)?;
        entry.access.store(access.alua(), Relaxed);
        self.refresh_usable(s);
        self.settle(false);
        Ok(())
    }

    /// Makes `slot` the preferred path (or clears it), and moves failover
    /// there at once if it is usable.
    ///
    /// # Errors
    /// `E_INVALIDARG` ([`Invalid::UnknownPath`]) if the slot holds no path.
    pub fn set_preferred_path(&self, slot: Option<PathSlot>) -> Result<(), Error> {
        let _guard = self.control.lock();
        let mut table = self.config.current();
        table.preferred = match slot {
            Some(slot) => bit(self.entry(slot)?.1),
            None => 0,
        };
        table.failover_pin = self.failover_pin(&table);
        self.publish(&table);
        self.settle(true);
        Ok(())
    }

    /// Fails back now: failover only returns to the preferred (or primary)
    /// path if it is usable. This is the manual failback.
    pub fn failback(&self) {
        let _guard = self.control.lock();
        self.failback_due.store(0, Relaxed);
        self.settle(true);
    }

    /// Runs what is due at `now`: a delayed failback. Call it from a timer.
    pub fn poll(&self, now: Tick) {
        let due = self.failback_due.load(Relaxed);
        if due != 0 && now >= due {
            let _guard = self.control.lock();
            if self.failback_due.load(Relaxed) == due {
                self.failback_due.store(0, Relaxed);
                self.settle(true);
            }
        }
    }

    /// The LUN is gone. Every later control call fails with
    /// `VDS_E_OBJECT_DELETED`, also a set that began before; selections find
    /// no path. I/O in flight still completes.
    pub fn remove(&self) {
        let _guard = self.control.lock();
        self.removed.store(true, Release);
        for tier in &self.usable {
            tier.store(0, Relaxed);
        }
        self.rotation.store(0, Release);
    }

    /// Makes a removed LUN an empty, present one again, with `policy` and
    /// `settings`, so that a fixed LUN table can reuse its entry for the
    /// next LUN that arrives (the object is too big to rebuild in place on
    /// a kernel stack). Every path slot is cleared and every counter zeroed.
    ///
    /// # Errors
    /// * `E_INVALIDARG` ([`Invalid::BadValue`]) if the LUN was not removed;
    /// * `VDS_E_ANOTHER_CALL_IN_PROGRESS` if a set that began before the
    ///   removal is still pending (it must fail with `VDS_E_OBJECT_DELETED`,
    ///   not land on the next LUN) or if I/O is still in flight.
    pub fn recycle(&self, policy: LoadBalancePolicy, settings: &LunSettings) -> Result<(), Error> {
        let _pass = self.set_gate.try_enter().ok_or(Error::AnotherCallInProgress)?;
        let _guard = self.control.lock();
        if !self.removed.load(Acquire) {
            return Err(Invalid::BadValue.into());
        }
        if self.in_flight() != 0 {
            return Err(Error::AnotherCallInProgress);
        }
        for slot in 0..N {
            self.reset_counters(slot);
        }
        for entry in &self.paths {
            entry.source_id.store(0, Relaxed);
            entry.path_id.store(0, Relaxed);
            entry.access.store(AccessState::Unavailable as u8, Relaxed);
            entry.health.store(Health::Removed as u8, Relaxed);
            entry.last_failure.store(0, Relaxed);
            entry.failures.store(0, Relaxed);
            entry.held_until.store(0, Relaxed);
        }
        for cpu in &self.cpus {
            cpu.cursor.store(0, Relaxed);
            cpu.wrr.store(0, Relaxed);
        }
        self.publish(&AdminTable::new(policy));
        self.failover_current.store(0, Relaxed);
        self.stream.store(0, Relaxed);
        self.failback_due.store(0, Relaxed);
        self.apply_settings(settings);
        self.removed.store(false, Release);
        Ok(())
    }

    /// `true` once [`remove`](Self::remove) was called.
    #[must_use]
    pub fn is_removed(&self) -> bool {
        self.removed.load(Acquire)
    }

    /// Changes the LUN's settings.
    pub fn set_settings(&self, settings: &LunSettings) {
        let _guard = self.control.lock();
        self.apply_settings(settings);
    }

    /// The LUN's settings.
    #[must_use]
    pub fn settings(&self) -> LunSettings {
        LunSettings {
            failback: self.failback_mode(),
            flap: self.flap_damping(),
            sequential_window: self.sequential_window.load(Relaxed),
        }
    }

    fn apply_settings(&self, s: &LunSettings) {
        let (kind, delay) = s.failback.encode();
        self.failback_kind.store(kind, Relaxed);
        self.failback_delay.store(delay, Relaxed);
        self.sequential_window.store(s.sequential_window, Relaxed);
        let f = &s.flap;
        for (cell, v) in self.flap.iter().zip([f.window, u64::from(f.threshold), f.hold, f.max_hold]) {
            cell.store(v, Relaxed);
        }
    }

    fn failback_mode(&self) -> FailbackMode {
        FailbackMode::decode(self.failback_kind.load(Relaxed), self.failback_delay.load(Relaxed))
    }

    fn flap_damping(&self) -> crate::FlapDamping {
        let [window, threshold, hold, max_hold] = self.flap.each_ref().map(|c| c.load(Relaxed));
        crate::FlapDamping { window, threshold: u32::try_from(threshold).unwrap_or(u32::MAX), hold, max_hold }
    }

    fn check_present(&self) -> Result<(), Error> {
        if self.removed.load(Acquire) { Err(Error::ObjectDeleted) } else { Ok(()) }
    }

    /// The entry of a slot that holds a path.
    fn entry(&self, slot: PathSlot) -> Result<(&PathEntry, usize), Error> {
        let s = slot.index();
        match self.paths.get(s) {
            Some(e) if e.health() != Health::Removed => Ok((e, s)),
            _ => Err(Invalid::UnknownPath.into()),
        }
    }

    fn find(&self, id: PathId, present: u64) -> Option<usize> {
        self.paths.iter().enumerate().position(|(s, p)| present & bit(s) != 0 && p.id() == id)
    }

    /// The slot of a path id.
    #[must_use]
    pub fn slot_of(&self, id: PathId) -> Option<PathSlot> {
        let present = self.config.current().present;
        #[allow(clippy::cast_possible_truncation)] // slot < 64
        self.find(id, present).map(|s| PathSlot(s as u8))
    }

    /// Puts `slot` into the usable mask of its tier (or none). Under the
    /// control lock. Clears before it sets, so a path is never seen in two
    /// tiers at once.
    fn refresh_usable(&self, slot: usize) {
        let Some(entry) = self.paths.get(slot) else { return };
        let tier = match entry.health() {
            Health::Healthy if !self.removed.load(Relaxed) => entry.access().tier(),
            _ => None,
        };
        for (index, mask) in self.usable.iter().enumerate() {
            if tier.map(|t| t as usize) != Some(index) {
                mask.fetch_and(!bit(slot), Relaxed);
            }
        }
        if let Some(mask) = tier.and_then(|t| self.usable.get(t as usize)) {
            mask.fetch_or(bit(slot), Release);
        }
    }

    fn best_tier(&self) -> u64 {
        self.usable.iter().map(|m| m.load(Relaxed)).find(|&m| m != 0).unwrap_or(0)
    }

    /// Settles the LUN after a control change (under the control lock):
    /// failover's active path (see [`settle_failover`](Self::settle_failover)),
    /// then the rotation set that selections read.
    fn settle(&self, fail_back: bool) {
        self.settle_failover(fail_back);
        self.refresh_rotation();
    }

    /// Publishes a new configuration (under the control lock). The
    /// rotation set is withdrawn first and settled again afterwards
    /// ([`settle`](Self::settle)), so that a selection that reads the new
    /// generation never uses the previous generation's set: in between,
    /// selections run the policy's own code on the configuration they read.
    fn publish(&self, table: &AdminTable<N>) -> u64 {
        // Relaxed: the configuration's release of its sequence number
        // orders this store before the new generation.
        self.rotation.store(0, Relaxed);
        self.config.publish(table)
    }

    /// Recomputes and publishes the rotation set (under the control lock).
    /// Release: what the control path did to a path in the set (reset its
    /// counters, configured it) is visible to a selection that picks it.
    fn refresh_rotation(&self) {
        let set = if self.removed.load(Relaxed) {
            0
        } else {
            let table = self.config.current();
            #[allow(clippy::cast_possible_truncation)] // the low byte: slot + 1
            let failover = (self.failover_current.load(Relaxed) as u8).checked_sub(1).map(usize::from);
            let usable = self.usable.each_ref().map(|m| m.load(Relaxed));
            policy::rotation_set(&policy::Settled { usable, table: &table, failover })
        };
        self.rotation.store(set, Release);
        self.hand_over_latency(policy::is_rotation::<N>(self.config.current().policy));
    }

    /// Where the current latency EWMAs live follows the policy class (see
    /// `stats.rs`): the stripes under a rotation policy, the shared line
    /// under a load-aware one. On a change of class (under the control
    /// lock) the estimate moves with it: into the shared line as the mean
    /// of the stripes' (adaptive latency starts from what round robin
    /// measured), and the stripes start afresh either way.
    fn hand_over_latency(&self, to_stripes: bool) {
        if self.striped.load(Relaxed) == to_stripes {
            return;
        }
        for slot in 0..N {
            let stripes = self.stripes(slot);
            if !to_stripes {
                let mut mean = EwmaMean::default();
                stripes.clone().for_each(|s| mean.add(s.latency_ewma.load(Relaxed)));
                if let (Some(shared), Some(mean)) = (self.block(slot, SHARED_BLOCK), mean.mean()) {
                    shared.latency_ewma.store(mean, Relaxed);
                }
            }
            for stripe in stripes {
                stripe.latency_ewma.store(0, Relaxed);
            }
        }
        self.striped.store(to_stripes, Relaxed);
    }

    /// Re-decides failover's active path after a control change (under the
    /// control lock). Without `fail_back` it only moves off a path that left
    /// the best tier; with it, it also returns to the preferred/primary path.
    fn settle_failover(&self, fail_back: bool) {
        let table = self.config.current();
        let candidates = self.best_tier();
        #[allow(clippy::cast_possible_truncation)] // the low byte: slot + 1
        let current = (self.failover_current.load(Relaxed) as u8).checked_sub(1).map(usize::from);
        let current = current.filter(|&s| candidates & bit(s) != 0);
        let home = policy::failover_home(candidates, table.preferred, table.primary);
        let lowest = (candidates != 0).then(|| candidates.trailing_zeros() as usize);
        let next = if fail_back { home.or(current) } else { current.or(home) }.or(lowest);
        let word = policy::failover_word(self.config.generation(), next);
        self.failover_current.store(word, Relaxed);
    }

    /// The pin of a table about to be published by a call that fails back:
    /// the path [`settle_failover(true)`](Self::settle_failover) will move
    /// failover to, or 0 if it will keep the current one.
    fn failover_pin(&self, table: &AdminTable<N>) -> u32 {
        let home = policy::failover_home(self.best_tier(), table.preferred, table.primary);
        #[allow(clippy::cast_possible_truncation)] // slot < 64
        home.map_or(0, |s| s as u32 + 1)
    }

    // ------------------------------------------------------------------
    // SetLoadBalancePolicy and queries
    // ------------------------------------------------------------------

    /// `SetLoadBalancePolicy`: applies `policy` and the per-path settings
    /// atomically, or changes nothing.
    ///
    /// `paths` must name every path of the LUN exactly once.
    ///
    /// # Errors
    /// Exactly the DESIGN §3 table: `E_INVALIDARG` (bad policy, count, ids,
    /// primary paths or weights), `E_OUTOFMEMORY` (more entries than the
    /// table holds), `VDS_E_OBJECT_DELETED`, `VDS_E_OBJECT_STATUS_FAILED`
    /// (no usable path), `VDS_E_ANOTHER_CALL_IN_PROGRESS`.
    ///
    /// ```
    /// use rsdsm_engine::*;
    /// let lun: Lun = Lun::new(LoadBalancePolicy::RoundRobin);
    /// let id = PathId::new(1, 1);
    /// lun.add_path(id, AccessState::ActiveOptimized).unwrap();
    /// let err = lun
    ///     .set_load_balance_policy(LoadBalancePolicy::FailoverOnly, &[PathPolicy { path_id: id, primary: false, weight: 0 }])
    ///     .unwrap_err();
    /// assert_eq!(err.hresult(), HResult::E_INVALIDARG);
    /// assert!(lun.set_load_balance_policy(LoadBalancePolicy::FailoverOnly, &[PathPolicy { path_id: id, primary: true, weight: 0 }]).is_ok());
    /// ```
    pub fn set_load_balance_policy(
        &self,
        policy: LoadBalancePolicy,
        paths: &[PathPolicy],
    ) -> Result<u64, Error> {
        self.begin_set(policy, paths, None)?.commit()
    }

    /// The first half of a set: checks everything and holds this LUN's set
    /// gate until the returned [`PendingSet`] is committed or dropped. The
    /// driver persists the new policy between the two halves.
    ///
    /// With `expected_generation`, the set only proceeds if the LUN's
    /// configuration is still the one the caller read
    /// ([`PolicySnapshot::generation`]); otherwise the caller's view is
    /// stale: `VDS_E_PROVIDER_CACHE_CORRUPT`.
    ///
    /// # Errors
    /// As [`set_load_balance_policy`](Self::set_load_balance_policy), plus
    /// `VDS_E_PROVIDER_CACHE_CORRUPT` for a generation mismatch.
    pub fn begin_set<'a>(
        &'a self,
        policy: LoadBalancePolicy,
        paths: &'a [PathPolicy],
        expected_generation: Option<u64>,
    ) -> Result<PendingSet<'a, N>, Error> {
        self.check_present()?;
        let pass = self.set_gate.try_enter().ok_or(Error::AnotherCallInProgress)?;
        {
            let _guard = self.control.lock();
            if expected_generation.is_some_and(|g| g != self.config.generation()) {
                return Err(Error::ProviderCacheCorrupt);
            }
            self.validate(policy, paths)?;
        }
        Ok(PendingSet { lun: self, policy, paths, _pass: pass })
    }

    /// Builds the table `policy` + `paths` would publish. Under the control lock.
    fn validate(&self, policy: LoadBalancePolicy, paths: &[PathPolicy]) -> Result<AdminTable<N>, Error> {
        self.check_present()?;
        if paths.len() > N {
            return Err(Error::OutOfMemory);
        }
        let mut table = self.config.current();
        if paths.len() != table.present.count_ones() as usize {
            return Err(Invalid::PathCountMismatch.into());
        }
        let (low, high) = policy.weight_range();
        let mut seen = 0u64;
        let mut primary = 0u64;
        for p in paths {
            let slot = self.find(p.path_id, table.present).ok_or(Invalid::UnknownPath)?;
            if seen & bit(slot) != 0 {
                return Err(Invalid::DuplicatePath.into());
            }
            seen |= bit(slot);
            if p.weight < low || p.weight > high {
                return Err(Invalid::WeightOutOfRange.into());
            }
            if let Some(w) = table.weights.get_mut(slot) {
                *w = p.weight;
            }
            if p.primary {
                primary |= bit(slot);
            }
        }
        if policy.needs_primary() && primary == 0 {
            return Err(Invalid::NoPrimaryPath.into());
        }
        if policy == LoadBalancePolicy::FailoverOnly && primary.count_ones() > 1 {
            return Err(Invalid::TooManyPrimaryPaths.into());
        }
        if self.best_tier() == 0 {
            return Err(Error::ObjectStatusFailed);
        }
        table.policy = policy;
        table.primary = primary;
        Ok(table)
    }

    /// `GetLoadBalancePolicy`.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` if the LUN was removed.
    pub fn load_balance_policy(&self) -> Result<PolicySnapshot<N>, Error> {
        let _guard = self.control.lock();
        self.check_present()?;
        let table = self.config.current();
        let mut paths = Vec::new();
        let mut preferred = None;
        for (slot, entry) in self.paths.iter().enumerate() {
            if table.present & bit(slot) == 0 {
                continue;
            }
            let path_id = entry.id();
            let weight = table.weights.get(slot).copied().unwrap_or(0);
            let primary = table.primary & bit(slot) != 0;
            // Capacity N holds every slot, so this never fails.
            let _ = paths.push(PathPolicy { path_id, primary, weight });
            if table.preferred & bit(slot) != 0 {
                preferred = Some(path_id);
            }
        }
        Ok(PolicySnapshot { policy: table.policy, generation: self.config.generation(), paths, preferred })
    }

    /// The policy in force, read lock-free as a selection would.
    #[must_use]
    pub fn policy(&self) -> LoadBalancePolicy {
        loop {
            let read = self.config.read();
            let policy = read.policy();
            if self.config.confirm(&read) {
                return policy;
            }
        }
    }

    /// `(policy, weights of every slot, primary mask)` of one generation,
    /// read lock-free exactly as selections read the configuration. Tests
    /// and tools use it to check that no mix of two sets is ever visible.
    #[must_use]
    pub fn configuration_view(&self) -> (LoadBalancePolicy, [u32; N], u64, u64) {
        loop {
            let read = self.config.read();
            let table = read.table();
            if self.config.confirm(&read) {
                return (table.policy, table.weights, table.primary, read.generation());
            }
        }
    }

    /// The health of the path in `slot` now: one atomic load, no lock (for
    /// checkers on the I/O path; [`path_info`](Self::path_info) takes the
    /// control lock and reports everything). `None` for a slot beyond the
    /// table.
    ///
    /// ```
    /// use rsdsm_engine::*;
    /// let lun: Lun = Lun::new(LoadBalancePolicy::RoundRobin);
    /// let slot = lun.add_path(PathId::new(1, 1), AccessState::ActiveOptimized)?;
    /// assert_eq!(lun.health(slot), Some(Health::Healthy));
    /// lun.fail_path(slot, 10)?;
    /// assert_eq!(lun.health(slot), Some(Health::Failed));
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use]
    pub fn health(&self, slot: PathSlot) -> Option<Health> {
        self.paths.get(slot.index()).map(PathEntry::health)
    }

    /// `GetPathInfo`: every path, in slot order.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` if the LUN was removed.
    pub fn path_info(&self) -> Result<Vec<PathInfo, N>, Error> {
        let _guard = self.control.lock();
        self.check_present()?;
        let table = self.config.current();
        let usable = self.usable.iter().fold(0, |acc, m| acc | m.load(Relaxed));
        let mut out = Vec::new();
        for (s, entry) in self.paths.iter().enumerate() {
            if table.present & bit(s) == 0 {
                continue;
            }
            let mut flags = PathFlags::empty();
            flags.set(PathFlags::PRIMARY, table.primary & bit(s) != 0);
            flags.set(PathFlags::PREFERRED, table.preferred & bit(s) != 0);
            let held = entry.held_until.load(Relaxed);
            #[allow(clippy::cast_possible_truncation)] // slot < 64
            let _ = out.push(PathInfo {
                path_id: entry.id(),
                slot: PathSlot(s as u8),
                access: entry.access(),
                health: entry.health(),
                flags,
                weight: table.weights.get(s).copied().unwrap_or(0),
                in_flight: self.slot_in_flight(s),
                usable: usable & bit(s) != 0,
                held_down_until: (held != 0 && entry.health() != Health::Healthy).then_some(held),
            });
        }
        Ok(out)
    }

    /// Statistics of one path, read without stopping I/O.
    #[must_use]
    pub fn statistics(&self, slot: PathSlot) -> Option<PathStatistics> {
        self.entry(slot).ok().and_then(|(_, s)| self.read_statistics(s))
    }

    /// Statistics of a slot whatever it holds (also a removed path that is
    /// still draining I/O).
    #[must_use]
    pub fn slot_statistics(&self, slot: PathSlot) -> Option<PathStatistics> {
        self.read_statistics(slot.index())
    }

    /// Requests in flight over all slots, removed paths included.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        (0..N).map(|slot| u64::from(self.slot_in_flight(slot))).sum()
    }

    /// Number of usable paths.
    #[must_use]
    pub fn usable_paths(&self) -> u32 {
        self.usable_mask().count_ones()
    }

    /// The slots usable for I/O now, as a bit mask (bit `i` = slot `i`), in
    /// any tier. Lock-free: for decisions on the error path, such as
    /// "is there another path to fail over to?".
    #[must_use]
    pub fn usable_mask(&self) -> u64 {
        self.usable.iter().fold(0, |acc, m| acc | m.load(Relaxed))
    }
}

/// A validated set holding the LUN's set gate: [`commit`](Self::commit) it,
/// or drop it to abandon the set with nothing changed.
#[derive(Debug)]
#[must_use = "a pending set changes nothing until it is committed"]
pub struct PendingSet<'a, const N: usize> {
    lun: &'a Lun<N>,
    policy: LoadBalancePolicy,
    paths: &'a [PathPolicy],
    _pass: GatePass<'a>,
}

impl<const N: usize> PendingSet<'_, N> {
    /// Publishes the set atomically and returns the new generation. The
    /// checks run again under the control lock, so a path that arrived or
    /// left, or a LUN removed, since [`Lun::begin_set`] is caught here.
    ///
    /// # Errors
    /// `VDS_E_OBJECT_DELETED` if the LUN was removed meanwhile; any error of
    /// [`Lun::set_load_balance_policy`] if the LUN changed meanwhile.
    pub fn commit(self) -> Result<u64, Error> {
        let lun = self.lun;
        let _guard = lun.control.lock();
        let mut table = lun.validate(self.policy, self.paths)?;
        table.failover_pin = lun.failover_pin(&table);
        let generation = lun.publish(&table);
        lun.stream.store(0, Relaxed);
        lun.failback_due.store(0, Relaxed);
        lun.settle(true);
        Ok(generation)
    }

    /// The policy this set applies.
    #[must_use]
    pub fn policy(&self) -> LoadBalancePolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LUN table can be built at compile time, in a `static`.
    #[cfg(not(loom))]
    static STATIC_LUN: Lun<4> = Lun::new(LoadBalancePolicy::RoundRobin);

    #[test]
    #[cfg(not(loom))]
    fn a_static_lun_works_like_a_built_one() {
        let built: Lun<4> = Lun::with_settings(LoadBalancePolicy::RoundRobin, LunSettings::default());
        assert_eq!(STATIC_LUN.settings(), built.settings());
        assert_eq!(STATIC_LUN.configuration_view(), built.configuration_view());
        let a = STATIC_LUN.add_path(PathId::new(1, 1), AccessState::ActiveOptimized).unwrap();
        assert_eq!(STATIC_LUN.select(&IoRequest::read(512)), Ok(a));
    }

    /// The rotation set a rotation policy publishes is exactly the set its
    /// own code rotates over, in every state a random walk reaches (and 0,
    /// "select by the policy's code", for the other policies).
    #[test]
    #[cfg(not(loom))]
    #[cfg_attr(
        miri,
        ignore = "a walk over 300 LUN histories: minutes under miri, and no access pattern the other tests lack"
    )]
    #[allow(clippy::cast_possible_truncation)] // small random numbers
    fn rotation_sets_are_what_the_policies_own_code_rotates_over() {
        const ACCESS: [AccessState; 4] = [
            AccessState::ActiveOptimized,
            AccessState::ActiveNonOptimized,
            AccessState::Standby,
            AccessState::Unavailable,
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        let mut checked = 0;
        for _ in 0..300 {
            let lun: Lun<8> = Lun::new(LoadBalancePolicy::RoundRobin);
            let paths = 1 + next(8) as usize;
            let slots: Vec<PathSlot, 8> = (0..paths)
                .map(|i| lun.add_path(PathId::new(1, i as u64), ACCESS[next(4) as usize]).unwrap())
                .collect();
            for _ in 0..6 {
                let slot = slots[next(paths as u64) as usize];
                match next(4) {
                    0 => lun.fail_path(slot, 1).unwrap(),
                    1 => lun.set_access_state(slot, ACCESS[next(4) as usize]).unwrap(),
                    2 => {
                        let _ = lun.reinstate_path(slot, 1).unwrap();
                    }
                    _ => {
                        let policy = LoadBalancePolicy::ALL[next(9) as usize];
                        let primary = next(paths as u64) as usize;
                        let settings: Vec<PathPolicy, 8> = (0..paths)
                            .map(|i| PathPolicy {
                                path_id: PathId::new(1, i as u64),
                                primary: i == primary
                                    || (policy != LoadBalancePolicy::FailoverOnly && next(2) == 0),
                                weight: 1 + next(3) as u32,
                            })
                            .collect();
                        let _ = lun.set_load_balance_policy(policy, &settings);
                    }
                }
                let set = lun.rotation.load(Relaxed);
                let rotation = matches!(
                    lun.policy(),
                    LoadBalancePolicy::FailoverOnly
                        | LoadBalancePolicy::RoundRobin
                        | LoadBalancePolicy::RoundRobinWithSubset
                        | LoadBalancePolicy::WeightedPaths
                );
                assert_eq!(policy::is_rotation::<8>(lun.policy()), rotation, "{:?}: ROTATES", lun.policy());
                if !rotation {
                    assert_eq!(set, 0, "{:?} has no rotation set", lun.policy());
                    continue;
                }
                let cpu = CachePadded(CpuState::new());
                let mut visited = 0u64;
                for n in 0..16 {
                    match lun.select_by_policy(&IoRequest::read(512).at(n), &cpu) {
                        policy::NO_SLOT => assert_eq!(set, 0, "no path, so no set"),
                        slot => visited |= bit(usize::from(slot)),
                    }
                }
                assert_eq!(visited, set, "{:?}: the policy's code rotates over {visited:#b}", lun.policy());
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked} rotation states checked");
    }

    #[test]
    fn recycle_needs_a_removed_drained_lun_without_a_pending_set() {
        let lun: Lun<4> = Lun::new(LoadBalancePolicy::RoundRobin);
        let id = PathId::new(1, 1);
        let slot = lun.add_path(id, AccessState::ActiveOptimized).unwrap();
        assert_eq!(
            lun.recycle(LoadBalancePolicy::LeastBlocks, &LunSettings::default()),
            Err(Invalid::BadValue.into())
        );

        let paths = [PathPolicy { path_id: id, primary: true, weight: 1 }];
        let pending = lun.begin_set(LoadBalancePolicy::FailoverOnly, &paths, None).unwrap();
        let ticket = lun.start(slot, &IoRequest::read(512));
        lun.remove();
        assert_eq!(
            lun.recycle(LoadBalancePolicy::LeastBlocks, &LunSettings::default()),
            Err(Error::AnotherCallInProgress)
        );
        assert_eq!(pending.commit(), Err(Error::ObjectDeleted));
        assert_eq!(
            lun.recycle(LoadBalancePolicy::LeastBlocks, &LunSettings::default()),
            Err(Error::AnotherCallInProgress),
            "I/O still in flight"
        );
        lun.complete(ticket, 1, IoOutcome::Success);
        lun.recycle(LoadBalancePolicy::LeastBlocks, &LunSettings::default()).unwrap();

        assert!(!lun.is_removed());
        assert_eq!(lun.policy(), LoadBalancePolicy::LeastBlocks);
        assert!(lun.path_info().unwrap().is_empty());
        assert_eq!(lun.select(&IoRequest::read(512)), Err(NoPath));
        let again = lun.add_path(id, AccessState::ActiveOptimized).unwrap();
        assert_eq!(lun.statistics(again).unwrap().reads, 0);
    }
}
