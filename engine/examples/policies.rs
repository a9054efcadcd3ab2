//! Shows, for every policy, which path each I/O of a small LUN takes, before
//! and after a path fails.
//!
//! The LUN has four paths: A and B active/optimized, C active/non-optimized,
//! D standby. Admin settings: A and B primary; weights A=2, B=1, C=3, D=4
//! (weighted round robin and service time read them as shares; weighted
//! paths picks the lowest). Each round dispatches 12 I/Os, keeping up to four
//! in flight so the load-aware policies have something to compare; path B's
//! I/Os are slower, which is what adaptive latency learns.
//!
//! ```text
//! cargo run -p rsdsm-engine --example policies
//! ```

use std::collections::VecDeque;

use rsdsm_engine::{
    AccessState, Error, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun, PathId, PathPolicy, PathSlot,
};

const NAMES: [&str; 4] = ["A", "B", "C", "D"];
const IDS: [PathId; 4] = [PathId::new(1, 1), PathId::new(1, 2), PathId::new(2, 1), PathId::new(2, 2)];
const WEIGHTS: [u32; 4] = [2, 1, 3, 4];
const IOS_PER_ROUND: u64 = 12;
const QUEUE_DEPTH: usize = 4;

fn main() -> Result<(), Error> {
    println!(
        "LUN: A,B active/optimized; C active/non-optimized; D standby. Primary: A,B. Weights A=2 B=1 C=3 D=4."
    );
    println!(
        "Each row: the path of each of {IOS_PER_ROUND} I/Os; then path A fails; then every optimized path fails.\n"
    );
    println!("{:<24} {:<14} {:<14} {:<14}", "policy", "all healthy", "A failed", "A,B failed");
    for policy in LoadBalancePolicy::ALL {
        let lun: Lun = Lun::new(LoadBalancePolicy::RoundRobin);
        let slots = [
            lun.add_path(IDS[0], AccessState::ActiveOptimized)?,
            lun.add_path(IDS[1], AccessState::ActiveOptimized)?,
            lun.add_path(IDS[2], AccessState::ActiveNonOptimized)?,
            lun.add_path(IDS[3], AccessState::Standby)?,
        ];
        let admin: Vec<PathPolicy> = (0..4)
            .map(|i| PathPolicy {
                path_id: IDS[i],
                // Failover only takes exactly one primary.
                primary: i == 0 || (i == 1 && policy != LoadBalancePolicy::FailoverOnly),
                weight: WEIGHTS[i],
            })
            .collect();
        lun.set_load_balance_policy(policy, &admin)?;

        let mut now = 0;
        let healthy = run_round(&lun, &slots, &mut now);
        lun.fail_path(slots[0], now)?;
        let a_failed = run_round(&lun, &slots, &mut now);
        lun.fail_path(slots[1], now)?;
        let ab_failed = run_round(&lun, &slots, &mut now);
        println!("{:<24} {healthy:<14} {a_failed:<14} {ab_failed:<14}", policy.name());
        assert_eq!(lun.in_flight(), 0, "every started I/O completed");
    }
    println!(
        "\nAfter both optimized paths fail, every policy moves to the non-optimized tier (C) and never to a failed path."
    );
    Ok(())
}

/// Dispatches one round of I/Os and returns the path letters in order.
fn run_round(lun: &Lun, slots: &[PathSlot; 4], now: &mut u64) -> String {
    let mut in_flight: VecDeque<IoTicket> = VecDeque::new();
    let mut picks = String::new();
    for n in 0..IOS_PER_ROUND {
        *now += 10;
        let io = IoRequest::read(4096).at_lba(n * 1024, 8).at(*now);
        match lun.dispatch(&io) {
            Ok(ticket) => {
                let index = slots.iter().position(|s| *s == ticket.slot()).unwrap_or(0);
                picks.push_str(NAMES[index]);
                in_flight.push_back(ticket);
            }
            Err(_) => picks.push('-'),
        }
        if in_flight.len() == QUEUE_DEPTH {
            complete_oldest(lun, slots, &mut in_flight);
        }
    }
    while !in_flight.is_empty() {
        complete_oldest(lun, slots, &mut in_flight);
    }
    picks
}

/// Completes the oldest I/O; path B is four times slower than the others.
fn complete_oldest(lun: &Lun, slots: &[PathSlot; 4], in_flight: &mut VecDeque<IoTicket>) {
    if let Some(ticket) = in_flight.pop_front() {
        let latency = if ticket.slot() == slots[1] { 400 } else { 100 };
        let done = ticket.started() + latency;
        lun.complete(ticket, done, IoOutcome::Success);
    }
}
