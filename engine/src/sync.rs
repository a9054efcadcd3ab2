//! The synchronisation primitives the engine is built on, in one place.
//!
//! The per-I/O path uses only atomics. Control operations (path state
//! changes, policy sets) are serialised by [`ControlLock`], a short spin
//! section that the per-I/O path never takes.
//!
//! Every atomic of the engine comes from here. In the engine's unit-test
//! build with `--cfg loom` they are [loom](https://docs.rs/loom)'s
//! model-checked atomics instead of `core`'s, so the loom models
//! (`loom_models.rs`) run the engine's own seqlock, counters and gate.
//! Loom's atomics cannot be built in a `const` context, so the constructors
//! that are `const fn` (a `Lun` can live in a `static`) are plain functions
//! there (`loom_const_fn!`) and arrays of atomics are built with
//! `atomic_array!`. Every other build is unaffected.

#[cfg(not(all(test, loom)))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

/// Busy-wait hint; under loom it yields to the model's scheduler.
#[inline]
fn spin_loop() {
    #[cfg(not(all(test, loom)))]
    core::hint::spin_loop();
    #[cfg(all(test, loom))]
    loom::hint::spin_loop();
}

/// Declares a `const fn`, or a plain `fn` when built for loom.
macro_rules! loom_const_fn {
    ($(#[$meta:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(all(test, loom)))]
        $(#[$meta])*
        $vis const fn $($rest)*

        #[cfg(all(test, loom))]
        $(#[$meta])*
        $vis fn $($rest)*
    };
}

/// `[const { VALUE }; N]`, or `core::array::from_fn` when built for loom.
macro_rules! atomic_array {
    ($value:expr; $n:expr) => {{
        #[cfg(not(all(test, loom)))]
        let array = [const { $value }; $n];
        #[cfg(all(test, loom))]
        let array = core::array::from_fn(|_| $value);
        array
    }};
}

/// Aligns its content to a cache line so that per-CPU and per-path hot
/// state written by different processors never shares a line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Serialises control operations on one LUN. Held for a bounded, short
/// section (a table update), never across I/O or caller code.
#[derive(Debug, Default)]
pub(crate) struct ControlLock {
    locked: AtomicBool,
}

impl ControlLock {
    loom_const_fn! {
        pub(crate) const fn new() -> Self {
            Self { locked: AtomicBool::new(false) }
        }
    }

    pub(crate) fn lock(&self) -> ControlGuard<'_> {
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while self.locked.load(Ordering::Relaxed) {
                spin_loop();
            }
        }
        ControlGuard { lock: self }
    }
}

pub(crate) struct ControlGuard<'a> {
    lock: &'a ControlLock,
}

impl Drop for ControlGuard<'_> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// A gate that admits one holder and turns everyone else away at once
/// (the "another call in progress" rule: never block, never interleave).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    busy: AtomicBool,
}

impl Gate {
    loom_const_fn! {
        pub(crate) const fn new() -> Self {
            Self { busy: AtomicBool::new(false) }
        }
    }

    pub(crate) fn try_enter(&self) -> Option<GatePass<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| GatePass { gate: self })
    }
}

#[derive(Debug)]
pub(crate) struct GatePass<'a> {
    gate: &'a Gate,
}

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        self.gate.busy.store(false, Ordering::Release);
    }
}
