//! The discrete-event loop: one scenario under one policy.
//!
//! Time is simulated nanoseconds, which are also the engine's ticks. Events
//! at the same time run in the order they were scheduled, and every random
//! draw comes from a stream seeded by the scenario seed, the LUN and the
//! path, so a run is a pure function of (scenario, policy, seed).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use rsdsm_engine::{Error, IoRequest, IoTicket, LoadBalancePolicy};

use crate::fabric::{Answer, FabricPath};
use crate::host::{ErrorAction, Host, LunHost, MAX_LUNS, Store, memory_store, port_ids, rtpg};
use crate::report::{PolicyResult, Recorder};
use crate::scenario::{Action, Pattern, Scenario, Workload};

/// Delayed failback is checked this often.
const POLL_PERIOD_NS: u64 = 1_000_000;
/// A closed-loop slot whose I/O failed for lack of a path waits this long
/// before issuing again (an application backing off), so that a LUN without
/// paths does not spin in zero simulated time.
const BACKOFF_NS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
enum Event {
    /// Open loop: the next arrival on a LUN.
    Arrival { lun: usize },
    /// Closed loop: a slot of the LUN's queue depth issues a new I/O.
    Issue { lun: usize },
    /// The array answered an I/O.
    Answered { lun: usize, path: usize, io: usize, epoch: u32, answer: Answer },
    /// Entry `index` of the expanded timeline.
    Timeline { index: usize },
    /// The DSM's path verification.
    Verify { lun: usize, path: usize },
    /// Delayed failback's clock.
    Poll,
}

#[derive(Debug, Clone, Copy)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One I/O from issue to its end.
#[derive(Debug)]
struct Io {
    lun: usize,
    request: IoRequest,
    issued: u64,
    ticket: Option<IoTicket>,
    retries: u32,
    /// Sent to a path the fabric had lost when it was sent (for failover time).
    hit_failure: bool,
}

/// A timeline entry after `flap` events are expanded.
#[derive(Debug, Clone, Copy)]
struct Step {
    at: u64,
    lun: usize,
    path: Option<usize>,
    action: Action,
    policy: Option<LoadBalancePolicy>,
    access: Option<rsdsm_engine::AccessState>,
}

struct LunState {
    host: LunHost,
    paths: Vec<FabricPath>,
    workload: Workload,
    rng: ChaCha8Rng,
    next_lba: u64,
    capacity_blocks: u64,
    removed: bool,
}

/// Runs `scenario` under `policy` with `seed`.
///
/// # Errors
/// The engine's answer if the scenario's admin settings are invalid for the
/// policy (e.g. failover only without any primary path).
pub fn run(scenario: &Scenario, policy: LoadBalancePolicy, seed: u64) -> Result<PolicyResult, Error> {
    Sim::new(scenario, policy, seed, scenario.duration_ms.ns(), memory_store())?.run()
}

/// A simulation that runs without end, advanced step by step (for `serve`:
/// I/O keeps flowing while control requests arrive).
pub struct Live<'a>(Sim<'a>);

impl std::fmt::Debug for Live<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("now", &self.0.now).finish_non_exhaustive()
    }
}

impl<'a> Live<'a> {
    /// Starts `scenario` under `policy`; its timeline events happen at
    /// their times, its workload never stops.
    ///
    /// # Errors
    /// As [`run`].
    pub fn new(scenario: &'a Scenario, policy: LoadBalancePolicy, seed: u64) -> Result<Self, Error> {
        Self::with_store(scenario, policy, seed, memory_store())
    }

    /// As [`new`](Self::new), with the host persisting to `store` (LUNs
    /// with a stored record start with its policy).
    ///
    /// # Errors
    /// As [`run`].
    pub fn with_store(
        scenario: &'a Scenario,
        policy: LoadBalancePolicy,
        seed: u64,
        store: Store,
    ) -> Result<Self, Error> {
        let mut sim = Sim::new(scenario, policy, seed, u64::MAX, store)?;
        sim.recorder.keep_latencies(false);
        Ok(Self(sim))
    }

    /// The simulated host (its DSM answers control requests).
    #[must_use]
    pub fn host(&self) -> Arc<Host> {
        Arc::clone(&self.0.dsm)
    }

    /// Runs every event up to simulated time `until` (ns).
    ///
    /// # Errors
    /// As [`run`].
    pub fn advance_to(&mut self, until: u64) -> Result<(), Error> {
        self.0.advance_to(until)
    }

    /// I/Os completed successfully and failed so far.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        self.0.recorder.counts()
    }

    /// Simulated time reached (ns).
    #[must_use]
    pub fn now(&self) -> u64 {
        self.0.now
    }

    /// Stops issuing I/O, lets everything in flight (and every pending
    /// event) run to its end, and reports, as [`run`] does: `issued`,
    /// `ios`, `failed_ios` and `in_flight_at_end` tell whether every I/O
    /// that started ended exactly once. Latency percentiles are not kept
    /// by a live simulation and read 0.
    ///
    /// # Errors
    /// As [`run`].
    pub fn finish(mut self) -> Result<PolicyResult, Error> {
        self.0.end = self.0.now;
        self.0.run()
    }
}

struct Sim<'a> {
    scenario: &'a Scenario,
    dsm: Arc<Host>,
    policy: LoadBalancePolicy,
    luns: Vec<LunState>,
    timeline: Vec<Step>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    now: u64,
    end: u64,
    ios: Vec<Option<Io>>,
    free: Vec<usize>,
    issued: u64,
    recorder: Recorder,
}

impl<'a> Sim<'a> {
    fn new(
        scenario: &'a Scenario,
        policy: LoadBalancePolicy,
        seed: u64,
        end: u64,
        store: Store,
    ) -> Result<Self, Error> {
        let mut luns = Vec::new();
        if scenario.luns.len() > MAX_LUNS {
            return Err(Error::OutOfMemory);
        }
        let dsm = Arc::new(Host::with_store(policy, &scenario.dsm, store));
        for (l, spec) in scenario.luns.iter().enumerate() {
            let serial = u32::try_from(l + 1).unwrap_or(u32::MAX);
            let host = LunHost::new(&dsm, serial, &spec.paths, policy)?;
            let paths = spec
                .paths
                .iter()
                .enumerate()
                .map(|(p, path)| FabricPath::new(path.clone(), stream(seed, l, p + 1)))
                .collect();
            let workload = scenario.workload_of(spec);
            let capacity_blocks = gib_to_blocks(workload.capacity_gib.0);
            luns.push(LunState {
                host,
                paths,
                workload,
                rng: ChaCha8Rng::seed_from_u64(stream(seed, l, 0)),
                next_lba: 0,
                capacity_blocks,
                removed: false,
            });
        }
        let names: Vec<String> = scenario
            .luns
            .iter()
            .map(|l| l.paths.iter().map(|p| p.id.to_string()).collect::<Vec<_>>().join(","))
            .collect();
        let recorder = Recorder::new(scenario, policy, scenario.duration_ms.ns(), &names);
        let mut sim = Self {
            scenario,
            dsm,
            policy,
            luns,
            timeline: expand_timeline(scenario),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            end,
            ios: Vec::new(),
            free: Vec::new(),
            issued: 0,
            recorder,
        };
        for index in 0..sim.timeline.len() {
            let at = sim.timeline.get(index).map_or(0, |s| s.at);
            sim.schedule(at, Event::Timeline { index });
        }
        for (lun, state) in sim.luns.iter().enumerate() {
            match state.workload.queue_depth {
                Some(depth) => {
                    for _ in 0..depth.get() {
                        sim.queue.push(Reverse(Scheduled {
                            at: 0,
                            seq: sim.seq,
                            event: Event::Issue { lun },
                        }));
                        sim.seq += 1;
                    }
                }
                None => {
                    sim.queue.push(Reverse(Scheduled { at: 0, seq: sim.seq, event: Event::Arrival { lun } }));
                    sim.seq += 1;
                }
            }
        }
        sim.schedule(POLL_PERIOD_NS, Event::Poll);
        Ok(sim)
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, event }));
        self.seq += 1;
    }

    /// Processes every event due at or before `until` (simulated ns).
    fn advance_to(&mut self, until: u64) -> Result<(), Error> {
        while self.queue.peek().is_some_and(|Reverse(next)| next.at <= until) {
            let Some(Reverse(next)) = self.queue.pop() else { break };
            self.now = next.at;
            match next.event {
                Event::Arrival { lun } => {
                    if self.now < self.end {
                        self.issue(lun);
                        let rate =
                            self.luns.get(lun).and_then(|l| l.workload.arrival_iops).map_or(1.0, |r| r.0);
                        let gap = self.luns.get_mut(lun).map_or(0.0, |l| {
                            Exp::new(rate / 1e9).map_or(1e9 / rate, |d| d.sample(&mut l.rng))
                        });
                        self.schedule(self.now + to_ns(gap).max(1), Event::Arrival { lun });
                    }
                }
                Event::Issue { lun } => {
                    if self.now < self.end {
                        self.issue(lun);
                    }
                }
                Event::Answered { lun, path, io, epoch, answer } => {
                    self.answered(lun, path, io, epoch, answer)
                }
                Event::Timeline { index } => {
                    if let Some(step) = self.timeline.get(index).copied() {
                        self.timeline_step(step)?;
                    }
                }
                Event::Verify { lun, path } => self.verify(lun, path),
                Event::Poll => {
                    for l in &self.luns {
                        l.host.poll(&self.dsm, self.now);
                    }
                    // Keep polling while anything can still happen.
                    if self.now < self.end || self.ios.iter().any(Option::is_some) {
                        self.schedule(self.now + POLL_PERIOD_NS, Event::Poll);
                    }
                }
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<PolicyResult, Error> {
        self.advance_to(u64::MAX)?;
        let in_flight: u64 =
            self.luns.iter().filter_map(|l| l.host.lun(&self.dsm)).map(rsdsm_engine::Lun::in_flight).sum();
        Ok(self.recorder.finish(self.issued, in_flight))
    }

    /// The application issues one I/O to a LUN.
    fn issue(&mut self, lun: usize) {
        let Some(state) = self.luns.get_mut(lun) else { return };
        if state.removed {
            return;
        }
        let w = state.workload;
        let bytes = w.block_size.0;
        let blocks = u64::from(bytes / 512);
        let lba = match w.pattern {
            Pattern::Random => state.rng.random_range(0..state.capacity_blocks / blocks) * blocks,
            Pattern::Sequential => {
                let lba = state.next_lba;
                state.next_lba = (lba + blocks) % state.capacity_blocks;
                lba
            }
        };
        let write = state.rng.random_range(0..100) >= u32::from(w.read_percent.0);
        let base = if write { IoRequest::write(bytes) } else { IoRequest::read(bytes) };
        let cpu = u32::try_from(self.issued % u64::from(self.scenario.cpus.get())).unwrap_or(0);
        let request = base.at_lba(lba, bytes / 512).on_cpu(cpu);
        self.issued += 1;
        let io = Io { lun, request, issued: self.now, ticket: None, retries: 0, hit_failure: false };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.ios.get_mut(id) {
                    *slot = Some(io);
                }
                id
            }
            None => {
                self.ios.push(Some(io));
                self.ios.len() - 1
            }
        };
        self.send(id);
    }

    /// LBGetPath, then the I/O travels to the path the engine chose.
    fn send(&mut self, id: usize) {
        let now = self.now;
        let Some(io) = self.ios.get_mut(id).and_then(Option::as_mut) else { return };
        let lun = io.lun;
        let Some(state) = self.luns.get_mut(lun) else { return };
        let request = io.request.at(now);
        let Ok(ticket) = state.host.dispatch(&self.dsm, &request) else {
            self.end_io(id, false);
            return;
        };
        let slot = ticket.slot();
        let Some(path) = state.host.path_index(slot) else {
            // Every engine slot belongs to a scenario path.
            state.host.complete_good(&self.dsm, ticket, now);
            self.end_io(id, false);
            return;
        };
        if state.host.is_failed(&self.dsm, path) {
            self.recorder.sent_to_failed_path();
        }
        io.ticket = Some(ticket);
        let Some(fabric) = state.paths.get_mut(path) else { return };
        let answer = fabric.answer();
        if answer == Answer::TransportError {
            io.hit_failure = true;
        }
        let delay = fabric.delay();
        let epoch = fabric.epoch;
        let bytes = io.request.bytes;
        let at = match answer {
            Answer::TransportError => now + self.scenario.dsm.error_detect_us.ns(),
            Answer::AluaChanged | Answer::PortNotActive => now + 2 * delay,
            Answer::Good if fabric.has_free_slot() => {
                let service = fabric.service_time(bytes, now + delay);
                fabric.serving.push(id as u64);
                now + delay + service + delay
            }
            Answer::Good => {
                let service = fabric.service_time(bytes, now + delay);
                fabric.waiting.push_back((id as u64, service));
                return;
            }
        };
        self.schedule(at, Event::Answered { lun, path, io: id, epoch, answer });
    }

    fn answered(&mut self, lun: usize, path: usize, id: usize, epoch: u32, answer: Answer) {
        let now = self.now;
        let Some(state) = self.luns.get_mut(lun) else { return };
        let Some(fabric) = state.paths.get_mut(path) else { return };
        if answer == Answer::Good && epoch != fabric.epoch {
            return; // the path failed meanwhile; the I/O was answered with an error
        }
        if answer == Answer::Good {
            fabric.serving.retain(|s| *s != id as u64);
            // A slot freed: the next waiting I/O starts its service.
            if let Some((next, service)) = fabric.waiting.pop_front() {
                fabric.serving.push(next);
                let delay = fabric.delay();
                let next = usize::try_from(next).unwrap_or(usize::MAX);
                self.schedule(now + service + delay, Event::Answered { lun, path, io: next, epoch, answer });
            }
        }
        let Some(state) = self.luns.get_mut(lun) else { return };
        let Some(io) = self.ios.get_mut(id).and_then(Option::as_mut) else { return };
        let Some(ticket) = io.ticket.take() else { return };
        if state.removed {
            // The LUN is gone: whatever comes back fails to the application.
            state.host.complete_error(&self.dsm, ticket, now, Answer::TransportError, Vec::new);
            self.end_io(id, false);
            return;
        }
        if answer == Answer::Good {
            state.host.complete_good(&self.dsm, ticket, now);
            let hit_failure = io.hit_failure;
            self.recorder.completed(lun, path, io.issued, now, io.request.bytes, hit_failure);
            self.end_io(id, true);
            return;
        }
        let report = || fabric_rtpg(&state.paths);
        match state.host.complete_error(&self.dsm, ticket, now, answer, report) {
            ErrorAction::RetryUncounted => self.send(id),
            ErrorAction::Retry => {
                io.retries += 1;
                let exhausted = io.retries > self.scenario.dsm.max_retries;
                if answer == Answer::PortNotActive {
                    // The path works; its port is just not active. Verify
                    // brings it back in its real ALUA state.
                    let at = now + self.scenario.dsm.verify_after_ms.ns();
                    self.schedule(at, Event::Verify { lun, path });
                }
                if exhausted {
                    self.end_io(id, false);
                } else {
                    self.send(id);
                }
            }
            ErrorAction::Fail => self.end_io(id, false),
        }
    }

    /// The I/O ends: completed or failed, exactly once.
    fn end_io(&mut self, id: usize, ok: bool) {
        let Some(io) = self.ios.get_mut(id).and_then(Option::take) else { return };
        self.free.push(id);
        if !ok {
            self.recorder.failed();
        }
        let lun = io.lun;
        let closed_loop = self.luns.get(lun).is_some_and(|l| l.workload.queue_depth.is_some());
        if closed_loop {
            let at = if ok { self.now } else { self.now + BACKOFF_NS };
            self.schedule(at, Event::Issue { lun });
        }
    }

    fn verify(&mut self, lun: usize, path: usize) {
        let now = self.now;
        let Some(state) = self.luns.get(lun) else { return };
        let Some(fabric) = state.paths.get(path) else { return };
        if !fabric.alive || !fabric.present || state.removed {
            return;
        }
        if let Some(until) = state.host.verified(&self.dsm, path, &fabric_rtpg(&state.paths), now) {
            self.recorder.held_down();
            self.schedule(until, Event::Verify { lun, path });
        }
    }

    fn timeline_step(&mut self, step: Step) -> Result<(), Error> {
        let now = self.now;
        self.recorder.event(now, step.lun, step.path, step.action);
        let verify_after = self.scenario.dsm.verify_after_ms.ns();
        let detect = self.scenario.dsm.error_detect_us.ns();
        let Some(state) = self.luns.get_mut(step.lun) else { return Ok(()) };
        let path = step.path.unwrap_or(0);
        match step.action {
            Action::Fail => {
                let mut victims = Vec::new();
                if let Some(fabric) = state.paths.get_mut(path) {
                    if !fabric.alive {
                        return Ok(());
                    }
                    fabric.alive = false;
                    fabric.epoch += 1;
                    victims.append(&mut fabric.serving);
                    victims.extend(fabric.waiting.drain(..).map(|(id, _)| id));
                    let epoch = fabric.epoch;
                    for id in victims {
                        let io = usize::try_from(id).unwrap_or(usize::MAX);
                        if let Some(Some(v)) = self.ios.get_mut(io) {
                            v.hit_failure = true;
                        }
                        let answer = Answer::TransportError;
                        self.queue.push(Reverse(Scheduled {
                            at: now + detect,
                            seq: self.seq,
                            event: Event::Answered { lun: step.lun, path, io, epoch, answer },
                        }));
                        self.seq += 1;
                    }
                }
            }
            Action::Recover => {
                if let Some(fabric) = state.paths.get_mut(path) {
                    fabric.alive = true;
                }
                self.schedule(now + verify_after, Event::Verify { lun: step.lun, path });
            }
            Action::Access => {
                if let (Some(fabric), Some(access)) = (state.paths.get_mut(path), step.access) {
                    fabric.access = access;
                    // The array reports the change on the next I/O of every
                    // path of the LUN (a unit attention per I_T nexus).
                    for p in &mut state.paths {
                        p.unit_attention = true;
                    }
                }
            }
            Action::AddPath => {
                if let Some(fabric) = state.paths.get_mut(path) {
                    fabric.present = true;
                    let spec = fabric.spec.clone();
                    state.host.add_path(&self.dsm, path, &spec)?;
                    // The new path joins with the scenario's admin settings.
                    let specs: Vec<_> = state.paths.iter().map(|p| p.spec.clone()).collect();
                    state.host.set_policy(&self.dsm, self.policy, &specs)?;
                }
            }
            Action::RemovePath => {
                if let Some(fabric) = state.paths.get_mut(path) {
                    fabric.present = false;
                }
                state.host.remove_path(&self.dsm, path);
            }
            Action::RemoveLun => {
                state.removed = true;
                state.host.remove_lun(&self.dsm);
            }
            Action::Policy => {
                if let Some(policy) = step.policy {
                    self.policy = policy;
                    let specs: Vec<_> = state.paths.iter().map(|p| p.spec.clone()).collect();
                    // A set the engine rejects (e.g. all paths failed) is
                    // recorded; the run goes on under the old policy.
                    if state.host.set_policy(&self.dsm, policy, &specs).is_err() {
                        self.recorder.rejected_set();
                    }
                }
            }
            Action::Flap => {}
        }
        Ok(())
    }
}

/// What REPORT TARGET PORT GROUPS returns for a LUN's present paths now.
fn fabric_rtpg(paths: &[FabricPath]) -> Vec<u8> {
    let ports: Vec<_> = paths
        .iter()
        .filter(|p| p.present)
        .map(|p| {
            let (port, group) = port_ids(&p.spec);
            (port, group, p.access)
        })
        .collect();
    rtpg(&ports)
}

/// Expands `flap` events into failures and recoveries and sorts by time.
fn expand_timeline(scenario: &Scenario) -> Vec<Step> {
    let mut steps = Vec::new();
    for e in &scenario.events {
        let lun = e
            .lun
            .as_ref()
            .and_then(|n| scenario.luns.iter().position(|l| l.name == *n.get_ref()))
            .unwrap_or(0);
        let path = e.path.as_ref().and_then(|p| {
            scenario.luns.get(lun).and_then(|l| l.paths.iter().position(|q| q.id == *p.get_ref()))
        });
        let at = e.at_ms.ns();
        let step = Step {
            at,
            lun,
            path,
            action: e.action,
            policy: e.policy.map(|p| p.0),
            access: e.access.map(|a| a.0),
        };
        if e.action == Action::Flap {
            let period = e.period_ms.map_or(0, crate::scenario::Millis::ns);
            for i in 0..e.count.map_or(0, std::num::NonZeroU32::get) {
                let t = at + 2 * u64::from(i) * period;
                steps.push(Step { at: t, action: Action::Fail, ..step });
                steps.push(Step { at: t + period, action: Action::Recover, ..step });
            }
        } else {
            steps.push(step);
        }
    }
    steps.sort_by_key(|s| s.at);
    steps
}

/// Independent random stream for (seed, LUN, path); path 0 is the LUN's
/// workload generator.
fn stream(seed: u64, lun: usize, path: usize) -> u64 {
    let mut x = seed ^ ((lun as u64) << 32) ^ (path as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser: nearby inputs give unrelated seeds.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "clamped non-negative")]
fn to_ns(v: f64) -> u64 {
    v.max(0.0).round() as u64
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "capacity is positive and small")]
fn gib_to_blocks(gib: f64) -> u64 {
    ((gib * f64::from(1u32 << 30)) / 512.0).max(1.0) as u64
}
