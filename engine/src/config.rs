//! The LUN's policy configuration, published atomically without stalling I/O.
//!
//! A policy set changes several things at once (the policy, every path's
//! primary flag and weight). Selections must see all of the old values or all
//! of the new ones. The configuration therefore lives in two banks behind a
//! sequence counter (a double-buffered seqlock):
//!
//! * the writer (serialised by the LUN's control lock) makes the counter odd
//!   (with a read-modify-write, so that a reader seeing the odd value is
//!   still ordered after the previous publish), fills the *inactive* bank,
//!   then makes it even again, which flips the active bank;
//! * a reader loads the counter, reads the bank it names, and re-checks the
//!   counter afterwards. It only retries if a writer started refilling *its*
//!   bank, which takes two complete sets during one selection.
//!
//! So readers never wait for a writer (a set never stalls I/O), and a writer
//! never waits for readers. Every field is an atomic accessed with `Relaxed`
//! ordering between the fences, which is what makes the race-by-design of a
//! seqlock sound in Rust's memory model (Boehm, "Can seqlocks get along with
//! programming language memory models?", 2012).

use crate::policy::LoadBalancePolicy;
use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// Per-path admin settings and the policy, as plain data. Control operations
/// copy the active bank into one of these, change it, and publish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdminTable<const N: usize> {
    pub(crate) policy: LoadBalancePolicy,
    /// Slots that hold a path.
    pub(crate) present: u64,
    pub(crate) primary: u64,
    pub(crate) preferred: u64,
    pub(crate) weights: [u32; N],
    /// Failover only's path for this generation (slot + 1), or 0 to keep
    /// the path it is on. Set by the publishes that fail back (a policy
    /// set, a new preferred path), so that a selection that sees the new
    /// generation before the control path has moved `failover_current`
    /// still picks the new configuration's path. Never carried over:
    /// [`PolicyConfig::current`] returns it as 0.
    pub(crate) failover_pin: u32,
}

impl<const N: usize> AdminTable<N> {
    /// An empty table with `policy`.
    pub(crate) const fn new(policy: LoadBalancePolicy) -> Self {
        Self { policy, present: 0, primary: 0, preferred: 0, weights: [0; N], failover_pin: 0 }
    }
}

/// A group of paths with the same weight. Levels are kept sorted by
/// ascending weight; `suffix` is this level's mask or-ed with every heavier
/// level's, so "paths whose weight exceeds r" is one load.
#[derive(Debug, Default)]
pub(crate) struct Level {
    weight: AtomicU32,
    mask: AtomicU64,
    suffix: AtomicU64,
}

impl Level {
    loom_const_fn! {
        const fn new() -> Self {
            Self { weight: AtomicU32::new(0), mask: AtomicU64::new(0), suffix: AtomicU64::new(0) }
        }
    }
}

#[derive(Debug)]
struct Bank<const N: usize> {
    policy: AtomicU32,
    present: AtomicU64,
    primary: AtomicU64,
    preferred: AtomicU64,
    weights: [AtomicU32; N],
    levels: [Level; N],
    level_count: AtomicU32,
    failover_pin: AtomicU32,
}

impl<const N: usize> Bank<N> {
    loom_const_fn! {
        /// A bank holding `policy` and no path (what storing
        /// `AdminTable::new(policy)` produces), built in a `const` context.
        const fn with_policy(policy: LoadBalancePolicy) -> Self {
            Self {
                policy: AtomicU32::new(policy.encode()),
                present: AtomicU64::new(0),
                primary: AtomicU64::new(0),
                preferred: AtomicU64::new(0),
                weights: atomic_array![AtomicU32::new(0); N],
                levels: atomic_array![Level::new(); N],
                level_count: AtomicU32::new(0),
                failover_pin: AtomicU32::new(0),
            }
        }
    }

    fn store(&self, table: &AdminTable<N>) {
        use Ordering::Relaxed;
        self.policy.store(table.policy.encode(), Relaxed);
        self.present.store(table.present, Relaxed);
        self.primary.store(table.primary, Relaxed);
        self.preferred.store(table.preferred, Relaxed);
        self.failover_pin.store(table.failover_pin, Relaxed);
        for (cell, w) in self.weights.iter().zip(table.weights) {
            cell.store(w, Relaxed);
        }
        // Distinct weights of present paths, ascending: at most N levels.
        let mut count = 0usize;
        let mut floor: Option<u32> = None;
        while let Some(weight) = next_weight_above(table, floor) {
            let mask = mask_with_weight(table, weight);
            if let Some(level) = self.levels.get(count) {
                level.weight.store(weight, Relaxed);
                level.mask.store(mask, Relaxed);
            }
            count += 1;
            floor = Some(weight);
        }
        let mut suffix = 0;
        for level in self.levels.iter().take(count).rev() {
            suffix |= level.mask.load(Relaxed);
            level.suffix.store(suffix, Relaxed);
        }
        #[allow(clippy::cast_possible_truncation)] // count <= N <= 64
        self.level_count.store(count as u32, Relaxed);
    }

    fn load(&self) -> AdminTable<N> {
        use Ordering::Relaxed;
        let mut weights = [0; N];
        for (w, cell) in weights.iter_mut().zip(&self.weights) {
            *w = cell.load(Relaxed);
        }
        AdminTable {
            policy: LoadBalancePolicy::decode(self.policy.load(Relaxed)),
            present: self.present.load(Relaxed),
            primary: self.primary.load(Relaxed),
            preferred: self.preferred.load(Relaxed),
            weights,
            failover_pin: self.failover_pin.load(Relaxed),
        }
    }
}

fn next_weight_above<const N: usize>(table: &AdminTable<N>, floor: Option<u32>) -> Option<u32> {
    let mut best: Option<u32> = None;
    for (slot, &w) in table.weights.iter().enumerate() {
        let present = table.present & (1u64 << (slot & 63)) != 0;
        let above = floor.is_none_or(|f| w > f);
        if present && above && best.is_none_or(|b| w < b) {
            best = Some(w);
        }
    }
    best
}

fn mask_with_weight<const N: usize>(table: &AdminTable<N>, weight: u32) -> u64 {
    let mut mask = 0;
    for (slot, &w) in table.weights.iter().enumerate() {
        if w == weight {
            mask |= 1u64 << (slot & 63);
        }
    }
    mask & table.present
}

/// The double-buffered configuration.
#[derive(Debug)]
pub(crate) struct PolicyConfig<const N: usize> {
    /// Even: bank `(seq >> 1) & 1` is active. Odd: a writer is filling the
    /// other bank. `seq >> 1` is the configuration's generation.
    seq: AtomicU64,
    banks: [Bank<N>; 2],
}

/// A read of the active bank, to be confirmed with [`PolicyConfig::confirm`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConfigRead<'a, const N: usize> {
    bank: &'a Bank<N>,
    seq: u64,
}

impl<const N: usize> PolicyConfig<N> {
    #[cfg(test)]
    pub(crate) fn new(initial: &AdminTable<N>) -> Self {
        let config = Self::empty(initial.policy);
        if let Some(bank) = config.banks.first() {
            bank.store(initial);
        }
        config
    }

    loom_const_fn! {
        /// A configuration with `policy` and no path: the same as
        /// `new(&AdminTable::new(policy))`, but `const`.
        pub(crate) const fn empty(policy: LoadBalancePolicy) -> Self {
            Self {
                seq: AtomicU64::new(0),
                banks: [Bank::with_policy(policy), Bank::with_policy(LoadBalancePolicy::FailoverOnly)],
            }
        }
    }

    /// Starts a read. Cheap: one load.
    #[inline]
    pub(crate) fn read(&self) -> ConfigRead<'_, N> {
        let seq = self.seq.load(Ordering::Acquire);
        let [first, second] = &self.banks;
        let bank = if (seq >> 1) & 1 == 0 { first } else { second };
        ConfigRead { bank, seq }
    }

    /// `true` if everything read through `read` belongs to one generation.
    #[inline]
    pub(crate) fn confirm(&self, read: &ConfigRead<'_, N>) -> bool {
        fence(Ordering::Acquire);
        // The bank read was first rewritten when seq reached (read.seq|1)+2.
        self.seq.load(Ordering::Relaxed) <= (read.seq | 1) + 1
    }

    /// The active table. Callers hold the control lock, so no writer runs.
    /// The pin is per publish, so it comes back as 0.
    pub(crate) fn current(&self) -> AdminTable<N> {
        AdminTable { failover_pin: 0, ..self.read().bank.load() }
    }

    /// The generation of the active table (counts published tables).
    pub(crate) fn generation(&self) -> u64 {
        self.seq.load(Ordering::Acquire) >> 1
    }

    /// Publishes `table` as the next generation. Callers hold the control
    /// lock: there is never more than one writer.
    pub(crate) fn publish(&self, table: &AdminTable<N>) -> u64 {
        let seq = self.seq.load(Ordering::Relaxed);
        let next = (seq >> 1).wrapping_add(1);
        let [first, second] = &self.banks;
        let bank = if next & 1 == 0 { first } else { second };
        // The odd mark must be a read-modify-write, not a store: a reader
        // that loads it (Acquire) then reads the active bank, and only an
        // RMW continues the release sequence of the previous publish's
        // `seq` store, so that the reader also sees that bank's contents.
        // With a plain store the reader could confirm a bank it read stale
        // (found by the loom model `loom_models_seqlock_*`).
        self.seq.fetch_or(1, Ordering::Relaxed);
        fence(Ordering::Release);
        bank.store(table);
        self.seq.store(next << 1, Ordering::Release);
        next
    }
}

impl<const N: usize> ConfigRead<'_, N> {
    #[inline]
    pub(crate) fn policy(&self) -> LoadBalancePolicy {
        LoadBalancePolicy::decode(self.policy_code())
    }

    /// The policy as the bank stores it ([`LoadBalancePolicy::encode`]).
    #[inline]
    pub(crate) fn policy_code(&self) -> u32 {
        self.bank.policy.load(Ordering::Relaxed)
    }

    /// Low 16 bits of the generation this read belongs to.
    #[inline]
    pub(crate) fn generation_tag(&self) -> u16 {
        #[allow(clippy::cast_possible_truncation)] // deliberately the low bits
        let tag = (self.seq >> 1) as u16;
        tag
    }

    #[inline]
    pub(crate) fn primary(&self) -> u64 {
        self.bank.primary.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn preferred(&self) -> u64 {
        self.bank.preferred.load(Ordering::Relaxed)
    }

    /// Failover only's pinned path of this generation (slot + 1), 0 for none.
    #[inline]
    pub(crate) fn failover_pin(&self) -> u32 {
        self.bank.failover_pin.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn level_count(&self) -> usize {
        self.bank.level_count.load(Ordering::Relaxed) as usize
    }

    /// `(weight, mask of paths with exactly that weight, mask of paths with
    /// that weight or more)` of level `index` (0 = lightest).
    #[inline]
    pub(crate) fn level(&self, index: usize) -> Option<(u32, u64, u64)> {
        self.bank.levels.get(index).map(|l| {
            (
                l.weight.load(Ordering::Relaxed),
                l.mask.load(Ordering::Relaxed),
                l.suffix.load(Ordering::Relaxed),
            )
        })
    }

    /// `(weight, mask of paths with exactly that weight)` of level `index`
    /// (below the level count, so below `N`): `level` without the load of
    /// the suffix mask, for a scan by level.
    #[inline]
    pub(crate) fn level_weight(&self, index: usize) -> Option<(u32, u64)> {
        // No bounds check (see `in_table`).
        let index = crate::path::in_table::<N>(index);
        self.bank
            .levels
            .get(index)
            .map(|l| (l.weight.load(Ordering::Relaxed), l.mask.load(Ordering::Relaxed)))
    }

    /// The paths of level `index` or a heavier one (its `suffix` mask).
    #[inline]
    pub(crate) fn level_members(&self, index: usize) -> Option<u64> {
        self.bank.levels.get(index).map(|l| l.suffix.load(Ordering::Relaxed))
    }

    /// The whole table (for reports); confirm the read afterwards.
    pub(crate) fn table(&self) -> AdminTable<N> {
        self.bank.load()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.seq >> 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(weights: &[u32]) -> AdminTable<8> {
        let mut t = AdminTable::new(LoadBalancePolicy::WeightedPaths);
        for (i, &w) in weights.iter().enumerate() {
            t.present |= 1 << i;
            t.weights[i] = w;
        }
        t
    }

    #[test]
    fn levels_are_distinct_weights_ascending_with_suffix_masks() {
        let config = PolicyConfig::new(&table(&[5, 1, 5, 3]));
        let r = config.read();
        assert_eq!(r.level_count(), 3);
        assert_eq!(r.level(0), Some((1, 0b0010, 0b1111)));
        assert_eq!(r.level(1), Some((3, 0b1000, 0b1101)));
        assert_eq!(r.level(2), Some((5, 0b0101, 0b0101)));
        assert!(config.confirm(&r));
    }

    #[test]
    fn absent_slots_form_no_level() {
        let mut t = table(&[2, 2]);
        t.weights[5] = 1; // not present
        let config = PolicyConfig::new(&t);
        let r = config.read();
        assert_eq!(r.level_count(), 1);
        assert_eq!(r.level(0), Some((2, 0b11, 0b11)));
    }

    #[test]
    fn a_read_survives_one_publish_but_not_two() {
        let config = PolicyConfig::new(&table(&[1]));
        let r = config.read();
        assert_eq!(config.publish(&table(&[2])), 1);
        assert!(config.confirm(&r), "one publish fills the other bank");
        assert_eq!(config.publish(&table(&[3])), 2);
        assert!(!config.confirm(&r), "the second publish refilled the bank read");
        let r = config.read();
        assert_eq!(r.level_weight(0), Some((3, 0b1)));
        assert_eq!(r.generation(), 2);
        assert_eq!(config.current().weights[0], 3);
    }
}
