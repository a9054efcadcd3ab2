//! Property tests: random path tables and random event sequences, with the
//! engine's invariants checked after every step.

use proptest::prelude::*;
use rsdsm_engine::{
    AccessState, Error, FailbackMode, FlapDamping, HResult, Health, IoOutcome, IoRequest, IoTicket,
    LoadBalancePolicy, Lun, LunSettings, MAX_WEIGHT, NoPath, PathId, PathPolicy, PathSlot, Reinstatement,
};

const N: usize = 16;

const ACCESS: [AccessState; 5] = [
    AccessState::ActiveOptimized,
    AccessState::ActiveNonOptimized,
    AccessState::Standby,
    AccessState::Unavailable,
    AccessState::Transitioning,
];

#[derive(Debug, Clone, Copy)]
enum Mutation {
    None,
    DropOne,
    Duplicate,
    UnknownId,
    WeightTooHigh,
    TwoPrimariesForFailover,
}

#[derive(Debug, Clone)]
struct SetArgs {
    policy: usize,
    primary: u16,
    weights: [u32; N],
    mutation: Mutation,
}

#[derive(Debug, Clone)]
enum Event {
    Fail(usize),
    Verify(usize),
    Reinstate(usize),
    Access(usize, usize),
    Add(usize),
    Remove(usize),
    Set(SetArgs),
    Dispatch { cpu: u32, bytes: u32 },
    Complete(usize),
    Failback,
}

fn set_args() -> impl Strategy<Value = SetArgs> {
    let mutation = prop_oneof![
        6 => Just(Mutation::None),
        1 => Just(Mutation::DropOne),
        1 => Just(Mutation::Duplicate),
        1 => Just(Mutation::UnknownId),
        1 => Just(Mutation::WeightTooHigh),
        1 => Just(Mutation::TwoPrimariesForFailover),
    ];
    (0..LoadBalancePolicy::ALL.len(), any::<u16>(), prop::array::uniform16(0u32..20), mutation)
        .prop_map(|(policy, primary, weights, mutation)| SetArgs { policy, primary, weights, mutation })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => any::<usize>().prop_map(Event::Fail),
        1 => any::<usize>().prop_map(Event::Verify),
        2 => any::<usize>().prop_map(Event::Reinstate),
        2 => (any::<usize>(), 0..ACCESS.len()).prop_map(|(p, a)| Event::Access(p, a)),
        1 => (0..ACCESS.len()).prop_map(Event::Add),
        1 => any::<usize>().prop_map(Event::Remove),
        2 => set_args().prop_map(Event::Set),
        6 => (0u32..4, 1u32..65536).prop_map(|(cpu, bytes)| Event::Dispatch { cpu, bytes }),
        4 => any::<usize>().prop_map(Event::Complete),
        1 => Just(Event::Failback),
    ]
}

/// Initial path: access state and health (0 healthy, 1 failed, 2 verifying).
fn initial_path() -> impl Strategy<Value = (usize, u8)> {
    (0..ACCESS.len(), prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)])
}

struct World {
    lun: Lun<N>,
    next_id: u64,
    outstanding: Vec<IoTicket>,
    now: u64,
}

impl World {
    fn slots(&self) -> Vec<PathSlot> {
        self.lun.path_info().unwrap().iter().map(|i| i.slot).collect()
    }

    fn pick(&self, n: usize) -> Option<PathSlot> {
        let slots = self.slots();
        (!slots.is_empty()).then(|| slots[n % slots.len()])
    }

    /// The admin list for `args` against the LUN's current paths.
    fn admin(&self, args: &SetArgs) -> (LoadBalancePolicy, Vec<PathPolicy>, bool) {
        let policy = LoadBalancePolicy::ALL[args.policy];
        let (low, high) = policy.weight_range();
        let snap = self.lun.load_balance_policy().unwrap();
        let count = snap.paths.len();
        let first_primary = (0..count).find(|&i| args.primary & (1 << i) != 0).unwrap_or(0);
        let mut paths: Vec<_> = snap
            .paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let primary = if policy == LoadBalancePolicy::FailoverOnly {
                    i == first_primary
                } else if policy == LoadBalancePolicy::RoundRobinWithSubset {
                    args.primary & (1 << i) != 0 || i == first_primary
                } else {
                    args.primary & (1 << i) != 0
                };
                PathPolicy { path_id: p.path_id, primary, weight: args.weights[i].clamp(low, high) }
            })
            .collect();
        let invalid = match args.mutation {
            Mutation::None => false,
            Mutation::DropOne if count >= 1 => {
                paths.pop();
                true
            }
            Mutation::Duplicate if count >= 2 => {
                paths[count - 1].path_id = paths[0].path_id;
                true
            }
            Mutation::UnknownId if count >= 1 => {
                paths[0].path_id = PathId::new(0xBAD, 0xBAD);
                true
            }
            Mutation::WeightTooHigh if count >= 1 => {
                paths[count - 1].weight = MAX_WEIGHT + 1;
                true
            }
            Mutation::TwoPrimariesForFailover if count >= 2 && policy == LoadBalancePolicy::FailoverOnly => {
                for p in &mut paths {
                    p.primary = true;
                }
                true
            }
            _ => false,
        };
        // With no path left there is no primary for a policy that needs one.
        let invalid = invalid || (paths.is_empty() && policy.needs_primary());
        (policy, paths, invalid)
    }
}

type Snapshot = (rsdsm_engine::PolicySnapshot<N>, (LoadBalancePolicy, [u32; N], u64, u64));

fn snapshot(lun: &Lun<N>) -> Snapshot {
    (lun.load_balance_policy().unwrap(), lun.configuration_view())
}

/// The invariants that must hold between any two events.
fn check(w: &World, step: usize) -> Result<(), TestCaseError> {
    let info = w.lun.path_info().unwrap();
    // Usability follows health and access state exactly.
    for i in &info {
        let expected = i.health == Health::Healthy && i.access.tier().is_some();
        prop_assert_eq!(i.usable, expected, "step {}: {:?}", step, i);
    }
    let best = info.iter().filter(|i| i.usable).filter_map(|i| i.access.tier()).min();
    let allowed: Vec<_> =
        info.iter().filter(|i| i.usable && i.access.tier() == best).map(|i| i.slot).collect();
    for cpu in 0..3 {
        let r = w.lun.select(&IoRequest::read(4096).on_cpu(cpu).at(w.now));
        match best {
            None => prop_assert_eq!(r, Err(NoPath), "step {}: no usable path", step),
            Some(tier) => {
                let slot =
                    r.map_err(|_| TestCaseError::fail(format!("step {step}: NoPath with usable paths")))?;
                prop_assert!(
                    allowed.contains(&slot),
                    "step {}: {:?} not in best tier {:?}: {:?}",
                    step,
                    slot,
                    tier,
                    info
                );
            }
        }
    }
    prop_assert_eq!(w.lun.usable_paths() as usize, info.iter().filter(|i| i.usable).count());
    prop_assert_eq!(w.lun.in_flight(), w.outstanding.len() as u64, "step {}", step);
    Ok(())
}

fn apply(w: &mut World, event: &Event, step: usize) -> Result<(), TestCaseError> {
    w.now += 1 + (step as u64 % 7) * 100;
    let now = w.now;
    match event {
        Event::Fail(n) => {
            if let Some(s) = w.pick(*n) {
                w.lun.fail_path(s, now).unwrap();
            }
        }
        Event::Verify(n) => {
            if let Some(s) = w.pick(*n) {
                w.lun.begin_verify(s).unwrap();
            }
        }
        Event::Reinstate(n) => {
            if let Some(s) = w.pick(*n) {
                let before = w.lun.path_info().unwrap().into_iter().find(|i| i.slot == s).unwrap();
                let r = w.lun.reinstate_path(s, now).unwrap();
                let after = w.lun.path_info().unwrap().into_iter().find(|i| i.slot == s).unwrap();
                match r {
                    Reinstatement::Reinstated => prop_assert_eq!(after.health, Health::Healthy),
                    Reinstatement::AlreadyInService => prop_assert_eq!(before.health, Health::Healthy),
                    Reinstatement::HeldDown { until } => {
                        prop_assert!(until > now);
                        prop_assert!(!after.usable);
                    }
                }
            }
        }
        Event::Access(n, a) => {
            if let Some(s) = w.pick(*n) {
                w.lun.set_access_state(s, ACCESS[*a]).unwrap();
            }
        }
        Event::Add(a) => {
            let id = PathId::new(1, w.next_id);
            w.next_id += 1;
            match w.lun.add_path(id, ACCESS[*a]) {
                Ok(s) => prop_assert_eq!(w.lun.slot_of(id), Some(s)),
                Err(e) => prop_assert_eq!(e, Error::OutOfMemory),
            }
        }
        Event::Remove(n) => {
            if let Some(s) = w.pick(*n) {
                w.lun.remove_path(s).unwrap();
                prop_assert!(w.lun.statistics(s).is_none());
            }
        }
        Event::Set(args) => {
            let (policy, paths, invalid) = w.admin(args);
            let before = snapshot(&w.lun);
            let usable = w.lun.usable_paths();
            match w.lun.set_load_balance_policy(policy, &paths) {
                Ok(generation) => {
                    prop_assert!(!invalid, "step {}: accepted an invalid set {:?}", step, paths);
                    prop_assert!(usable > 0);
                    let snap = w.lun.load_balance_policy().unwrap();
                    prop_assert_eq!(snap.policy, policy);
                    prop_assert_eq!(snap.generation, generation);
                    prop_assert_eq!(snap.paths.as_slice(), paths.as_slice());
                }
                Err(e) => {
                    let expected =
                        if invalid { HResult::E_INVALIDARG } else { HResult::VDS_E_OBJECT_STATUS_FAILED };
                    prop_assert_eq!(e.hresult(), expected, "step {}: {} for {:?}", step, e, paths);
                    if !invalid {
                        prop_assert_eq!(usable, 0);
                    }
                    prop_assert_eq!(
                        snapshot(&w.lun),
                        before,
                        "step {}: a rejected set changed the LUN",
                        step
                    );
                }
            }
        }
        Event::Dispatch { cpu, bytes } => {
            let io = IoRequest::write(*bytes).at_lba(now * 8, 8).on_cpu(*cpu).at(now);
            match w.lun.dispatch(&io) {
                Ok(t) => w.outstanding.push(t),
                Err(NoPath) => prop_assert_eq!(w.lun.usable_paths(), 0),
            }
        }
        Event::Complete(n) => {
            if !w.outstanding.is_empty() {
                let t = w.outstanding.swap_remove(n % w.outstanding.len());
                let outcome = if n % 5 == 0 { IoOutcome::Error } else { IoOutcome::Success };
                w.lun.complete(t, now, outcome);
            }
        }
        Event::Failback => {
            w.lun.failback();
            w.lun.poll(now);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_event(
        initial in prop::collection::vec(initial_path(), 1..=16),
        policy in set_args(),
        failback in prop_oneof![Just(FailbackMode::Immediate), Just(FailbackMode::Manual), (1u64..500).prop_map(FailbackMode::Delayed)],
        events in prop::collection::vec(event(), 1..80),
    ) {
        let settings = LunSettings {
            failback,
            flap: FlapDamping { window: 400, threshold: 2, hold: 300, max_hold: 2000 },
            sequential_window: 1 << 16,
        };
        let lun = Lun::<N>::with_settings(LoadBalancePolicy::RoundRobin, settings);
        for (n, &(access, health)) in initial.iter().enumerate() {
            let slot = lun.add_path(PathId::new(1, n as u64), ACCESS[access]).unwrap();
            match health {
                1 => lun.fail_path(slot, 1).unwrap(),
                2 => lun.begin_verify(slot).unwrap(),
                _ => {}
            }
        }
        let mut w = World { lun, next_id: 100, outstanding: Vec::new(), now: 10 };
        let initial_set = SetArgs { mutation: Mutation::None, ..policy };
        apply(&mut w, &Event::Set(initial_set), 0)?;
        check(&w, 0)?;
        for (step, e) in events.iter().enumerate() {
            apply(&mut w, e, step + 1)?;
            check(&w, step + 1)?;
        }
        for t in w.outstanding.drain(..) {
            w.lun.complete(t, u64::MAX, IoOutcome::Success);
        }
        prop_assert_eq!(w.lun.in_flight(), 0);
        for info in w.lun.path_info().unwrap() {
            let st = w.lun.slot_statistics(info.slot).unwrap();
            prop_assert_eq!((st.in_flight, st.in_flight_bytes), (0, 0));
        }
    }
}
