//! The simulated fabric: what happens to an I/O between the host's DSM and
//! the array. A path is a FIFO queue in front of `slots` parallel servers
//! (the device queue depth), a service-time distribution, a link with finite
//! bandwidth shared by the path's transfers, and a propagation delay each
//! way.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use rsdsm_engine::AccessState;

use crate::scenario::{PathSpec, ServiceKind};

/// How the array answers one I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Data transferred, GOOD status.
    Good,
    /// No answer: the path is dead and the host's transport gives up
    /// (selection timeout / link down).
    TransportError,
    /// CHECK CONDITION, UNIT ATTENTION 2A/06: asymmetric access state changed.
    AluaChanged,
    /// CHECK CONDITION, NOT READY 04/0C (unavailable) or 04/0A
    /// (transitioning). Standby ports serve I/O here: the engine only picks
    /// them when nothing better is usable, which is when a DSM activates
    /// them (STPG).
    PortNotActive,
}

/// One path of the fabric.
#[derive(Debug)]
pub struct FabricPath {
    pub spec: PathSpec,
    rng: ChaCha8Rng,
    /// The path physically works.
    pub alive: bool,
    /// The path exists for the host (arrived and not removed).
    pub present: bool,
    /// ALUA state as the array sees it.
    pub access: AccessState,
    /// The next I/O gets a unit attention (the access state changed).
    pub unit_attention: bool,
    /// Bumped on failure: completions scheduled before it are void.
    pub epoch: u32,
    /// I/Os being served.
    pub serving: Vec<u64>,
    /// I/Os waiting for a slot, with their service times.
    pub waiting: VecDeque<(u64, u64)>,
    link_free_at: u64,
}

impl FabricPath {
    /// A path from its spec; `seed` makes its service times reproducible.
    #[must_use]
    pub fn new(spec: PathSpec, seed: u64) -> Self {
        Self {
            alive: true,
            present: spec.present,
            access: spec.access.0,
            unit_attention: false,
            epoch: 0,
            serving: Vec::new(),
            waiting: VecDeque::new(),
            link_free_at: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            spec,
        }
    }

    /// One-way propagation delay in ns.
    #[must_use]
    pub fn delay(&self) -> u64 {
        self.spec.delay_us.ns()
    }

    /// Draws the time the array needs for one I/O of `bytes`, in ns,
    /// including the transfer over the shared link starting at `now`.
    pub fn service_time(&mut self, bytes: u32, now: u64) -> u64 {
        let mean = self.spec.service.mean_us.0 * 1e3;
        let drawn = match self.spec.service.kind {
            ServiceKind::Fixed => mean,
            ServiceKind::Exponential => Exp::new(1.0 / mean).map_or(mean, |d| d.sample(&mut self.rng)),
            ServiceKind::Lognormal => {
                let sigma = self.spec.service.sigma.map_or(0.5, |s| s.0);
                // Choose mu so that the distribution's mean is `mean`.
                let mu = mean.ln() - sigma * sigma / 2.0;
                LogNormal::new(mu, sigma).map_or(mean, |d| d.sample(&mut self.rng))
            }
        };
        let service = ns(drawn);
        let Some(bandwidth) = self.spec.bandwidth_mbps else {
            return service;
        };
        // MB/s = bytes per microsecond = 1e-3 bytes per ns.
        let transfer = ns(f64::from(bytes) / (bandwidth.0 * 1e-3));
        let start = self.link_free_at.max(now);
        self.link_free_at = start + transfer;
        service.max(self.link_free_at - now)
    }

    /// `true` if a slot is free.
    #[must_use]
    pub fn has_free_slot(&self) -> bool {
        self.serving.len() < self.spec.slots.get() as usize
    }

    /// How the array answers an I/O arriving now, before any queueing.
    pub fn answer(&mut self) -> Answer {
        if !self.alive {
            Answer::TransportError
        } else if self.unit_attention {
            self.unit_attention = false;
            Answer::AluaChanged
        } else if matches!(self.access, AccessState::Unavailable | AccessState::Transitioning) {
            Answer::PortNotActive
        } else {
            Answer::Good
        }
    }
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to >= 0 and far below 2^64 ns"
)]
fn ns(v: f64) -> u64 {
    v.max(0.0).round() as u64
}
