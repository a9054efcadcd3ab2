//! # rsdsm
//!
//! The rsdsm device-specific module for Windows MPIO.
//!
//! Everything a DSM decides lives in the portable core, which is `no_std`,
//! allocation-free and tested on any host; the `cfg(windows)` WDM shim only
//! translates between mpio.sys and the core.
#![cfg_attr(not(test), no_std)]
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

// Host builds of the cdylib take their panic handler from std; the portable
// modules themselves use only `core` (wincheck builds them without std).
#[cfg(all(not(test), not(windows)))]
extern crate std;

// Kernel builds: a panic bug-checks with a recognisable code instead of
// unwinding (there is nothing to unwind into).
#[cfg(all(windows, not(test)))]
extern crate wdk_panic;

pub mod alua;
pub mod claim;
pub mod control;
pub mod crc32c;
pub mod dsm;
pub mod identity;
pub mod mpio;
pub mod persist;
pub mod registry;
pub mod sense;

// The WDM shim: DriverEntry, mpio.sys registration, DSM entry points, the
// control device and the registry store. Windows targets only.
#[cfg(windows)]
mod windows;
