//! # rsdsm-engine
//!
//! The load-balance policy engine of rsdsm, a Windows MPIO device-specific
//! module. For every I/O to a multipath LUN it picks the path the I/O takes.
//!
//! * `#![no_std]`, no allocation: every table has a fixed capacity chosen by
//!   the caller (a const generic, 32 paths by default, at most 64).
//! * The per-I/O API — [`Lun::select`], [`Lun::start`], [`Lun::complete`] —
//!   is lock-free and callable from many CPUs at once (kernel: up to
//!   `DISPATCH_LEVEL`). It reads no clock: the caller passes a [`Tick`].
//! * Policies are numbered as `VDS_LOADBALANCE_POLICY_ENUM` and behave as
//!   their Windows namesakes, with rotating tie-breaks; three extensions
//!   (weighted round robin, service time, adaptive latency) are vendor
//!   policy 7. One file per policy under `policy/`.
//! * `SetLoadBalancePolicy` follows `IVdsLunMpio` exactly: all or nothing,
//!   atomic for concurrent selections, and failing with the HRESULTs of the
//!   design contract ([`HResult`], [`Error`]).
//! * [`wire`] is the IOCTL protocol both the driver and user mode speak.
//!
//! ```
//! use rsdsm_engine::*;
//!
//! let lun: Lun = Lun::new(LoadBalancePolicy::RoundRobin);
//! let fast = lun.add_path(PathId::new(7, 1), AccessState::ActiveOptimized)?;
//! let slow = lun.add_path(PathId::new(7, 2), AccessState::ActiveNonOptimized)?;
//!
//! // Only the optimized tier is used while it has a usable path...
//! let io = IoRequest::read(4096).at(100);
//! assert_eq!(lun.select(&io), Ok(fast));
//! // ...and a failure takes effect for the very next I/O.
//! lun.fail_path(fast, 101)?;
//! assert_eq!(lun.select(&io), Ok(slow));
//! # Ok::<(), Error>(())
//! ```
#![no_std]
#![warn(missing_docs, clippy::pedantic)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![forbid(unsafe_code)]

#[macro_use]
mod sync;
mod config;
mod error;
mod failback;
mod io;
mod lun;
mod path;
pub mod policy;
pub mod stats;
pub mod wire;

#[cfg(all(test, loom))]
mod loom_models;

pub use error::{Error, HResult, Invalid};
pub use failback::{FailbackMode, FlapDamping, LunSettings, Reinstatement};
pub use io::{IoOutcome, IoRequest, IoTicket, NoPath, Tick};
pub use lun::{CPU_SLOTS, DEFAULT_PATHS, DEFAULT_WEIGHT, Lun, PendingSet, PolicySnapshot, STRIPES};
pub use path::{AccessState, Health, PathFlags, PathId, PathInfo, PathPolicy, PathSlot, TIER_COUNT, Tier};
pub use policy::{LoadBalancePolicy, MAX_WEIGHT, SupportedPolicies, UnknownPolicyName, VendorPolicy};
pub use stats::PathStatistics;
