//! The simulated host's DSM for one LUN: what mpio.sys and the DSM do, done
//! with the real engine. The simulator never chooses a path itself.

use rsdsm_engine::{
    AccessState, Error, FailbackMode, Health, IoOutcome, IoRequest, IoTicket, LoadBalancePolicy, Lun,
    LunSettings, NoPath, PathPolicy, PathSlot, Reinstatement,
};

use crate::fabric::Answer;
use crate::scenario::{DsmSettings, FailbackName, PathSpec};

/// Ticks are nanoseconds of simulated time.
pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

/// What the DSM does with an I/O that came back with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Retry (on whatever path the policy picks next), counting the retry.
    Retry,
    /// Retry without counting it: the path is fine, its state changed.
    RetryUncounted,
    /// Fail the I/O to the application.
    Fail,
}

/// One LUN as the host's DSM sees it.
#[derive(Debug)]
pub struct LunHost {
    lun: Lun,
    /// Engine slot of each scenario path (by index), while present.
    slots: Vec<Option<PathSlot>>,
}

impl LunHost {
    /// A LUN with the scenario's present paths and `policy` applied.
    ///
    /// # Errors
    /// The engine's, if the scenario's admin settings are invalid for the
    /// policy (e.g. failover only without a primary path).
    pub fn new(paths: &[PathSpec], policy: LoadBalancePolicy, dsm: &DsmSettings) -> Result<Self, Error> {
        let mut settings = LunSettings::for_tick_rate(TICKS_PER_SECOND);
        settings.failback = match dsm.failback {
            FailbackName::Immediate => FailbackMode::Immediate,
            FailbackName::Manual => FailbackMode::Manual,
            FailbackName::Delayed => FailbackMode::Delayed(dsm.failback_delay_ms.ns()),
        };
        let mut host = Self { lun: Lun::with_settings(policy, settings), slots: vec![None; paths.len()] };
        for (index, spec) in paths.iter().enumerate() {
            if spec.present {
                host.add_path(index, spec)?;
            }
        }
        host.set_policy(policy, paths)?;
        Ok(host)
    }

    /// The engine's LUN (statistics, path info).
    #[must_use]
    pub fn lun(&self) -> &Lun {
        &self.lun
    }

    /// The scenario path index of an engine slot.
    #[must_use]
    pub fn path_index(&self, slot: PathSlot) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(slot))
    }

    /// The engine slot of a scenario path.
    #[must_use]
    pub fn slot(&self, index: usize) -> Option<PathSlot> {
        self.slots.get(index).copied().flatten()
    }

    /// SetLoadBalancePolicy with the scenario's admin settings. Failover
    /// only takes the first primary path as its only primary.
    ///
    /// # Errors
    /// The engine's validation result.
    pub fn set_policy(&self, policy: LoadBalancePolicy, paths: &[PathSpec]) -> Result<u64, Error> {
        let (low, high) = policy.weight_range();
        let mut primary_seen = false;
        let admin: Vec<PathPolicy> = self
            .slots
            .iter()
            .zip(paths)
            .filter(|(slot, _)| slot.is_some())
            .map(|(_, spec)| {
                let mut primary = spec.primary;
                if policy == LoadBalancePolicy::FailoverOnly {
                    primary &= !primary_seen;
                    primary_seen |= primary;
                }
                PathPolicy { path_id: spec.id.0, primary, weight: spec.weight.clamp(low, high) }
            })
            .collect();
        self.lun.set_load_balance_policy(policy, &admin)
    }

    /// LBGetPath + SetCompletion.
    ///
    /// # Errors
    /// `NoPath` when no path is usable.
    pub fn dispatch(&self, io: &IoRequest) -> Result<IoTicket, NoPath> {
        self.lun.dispatch(io)
    }

    /// The completion routine for a good I/O.
    pub fn complete_good(&self, ticket: IoTicket, now: u64) {
        self.lun.complete(ticket, now, IoOutcome::Success);
    }

    /// The completion routine for an I/O that came back with an error, and
    /// InterpretError: what to do with the I/O. A fatal error fails the path
    /// for the very next selection.
    pub fn complete_error(&self, ticket: IoTicket, now: u64, answer: Answer) -> ErrorAction {
        let slot = ticket.slot();
        self.lun.complete(ticket, now, IoOutcome::Error);
        match answer {
            Answer::Good => ErrorAction::Retry,
            Answer::TransportError | Answer::PortNotActive => {
                // Already failed by an earlier I/O on the same path: fine.
                let _ = self.lun.fail_path(slot, now);
                ErrorAction::Retry
            }
            Answer::AluaChanged => ErrorAction::RetryUncounted,
        }
    }

    /// The array reported new ALUA states (after a unit attention, the DSM
    /// re-reads them with REPORT TARGET PORT GROUPS).
    pub fn alua_states(&self, states: impl IntoIterator<Item = (usize, AccessState)>) {
        for (index, access) in states {
            if let Some(slot) = self.slot(index) {
                let _ = self.lun.set_access_state(slot, access);
            }
        }
    }

    /// PathVerify found the path working: reinstate it (with the array's
    /// current ALUA state). Returns when to try again if it is held down.
    pub fn verified(&self, index: usize, access: AccessState, now: u64) -> Option<u64> {
        let slot = self.slot(index)?;
        let _ = self.lun.set_access_state(slot, access);
        let _ = self.lun.begin_verify(slot);
        match self.lun.reinstate_path(slot, now) {
            Ok(Reinstatement::HeldDown { until }) => Some(until),
            _ => None,
        }
    }

    /// `true` if the DSM considers the path failed (or verifying).
    #[must_use]
    pub fn is_failed(&self, index: usize) -> bool {
        let Some(slot) = self.slot(index) else { return false };
        self.lun
            .path_info()
            .ok()
            .and_then(|paths| paths.iter().find(|p| p.slot == slot).map(|p| p.health != Health::Healthy))
            .unwrap_or(false)
    }

    /// Delayed failback's clock.
    pub fn poll(&self, now: u64) {
        self.lun.poll(now);
    }

    /// A path arrives (PnP + InquireDriver + SetDeviceInfo).
    ///
    /// # Errors
    /// The engine's (e.g. the table is full).
    pub fn add_path(&mut self, index: usize, spec: &PathSpec) -> Result<(), Error> {
        let slot = self.lun.add_path(spec.id.0, spec.access.0)?;
        if let Some(s) = self.slots.get_mut(index) {
            *s = Some(slot);
        }
        Ok(())
    }

    /// A path goes away (RemovePath).
    pub fn remove_path(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index).and_then(Option::take) {
            let _ = self.lun.remove_path(slot);
        }
    }

    /// The LUN goes away (RemoveDevice of its last path).
    pub fn remove_lun(&self) {
        self.lun.remove();
    }
}
