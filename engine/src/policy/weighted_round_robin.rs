//! Weighted round robin (vendor policy 1): each path's share of I/O is
//! proportional to its weight, and the paths are interleaved rather than
//! served in bursts.
//!
//! Interleaved weighted round robin: a cycle has as many rounds as the
//! largest weight; in round `r` every candidate whose weight exceeds `r`
//! gets one I/O, in slot order. Over a cycle a path with weight `w` gets
//! exactly `w` I/Os. The configuration keeps, per distinct weight, the mask
//! of paths at least that heavy, so a round's members are one load and the
//! per-I/O work is a few bit operations whatever the weights are.
//!
//! The position in the cycle is per CPU (one word on this CPU's line) and is
//! tagged with the configuration generation, so a new set of weights starts
//! a fresh cycle.

use super::{Context, Selector, next_in_rotation};
use crate::IoRequest;
use crate::sync::Ordering::Relaxed;

pub(crate) struct WeightedRoundRobin;

/// `tag:16 | round:32 | level:8 | next slot:8`.
#[derive(Clone, Copy)]
struct Position {
    tag: u16,
    round: u32,
    level: usize,
    next: u32,
}

impl Position {
    fn unpack(word: u64) -> Self {
        #[allow(clippy::cast_possible_truncation)] // field extraction
        Self {
            tag: (word >> 48) as u16,
            round: (word >> 16) as u32,
            level: ((word >> 8) & 0xFF) as usize,
            next: (word & 0xFF) as u32,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.tag) << 48)
            | (u64::from(self.round) << 16)
            | ((self.level as u64 & 0xFF) << 8)
            | u64::from(self.next & 0xFF)
    }

    const fn start(tag: u16) -> Self {
        Self { tag, round: 0, level: 0, next: 0 }
    }
}

impl Selector for WeightedRoundRobin {
    const READS_CONFIG: bool = true;

    #[inline(always)]
    #[allow(clippy::inline_always)] // one call per selection (Lun::select_by_policy), not two
    fn select<const N: usize>(ctx: &Context<'_, N>, _io: &IoRequest) -> Option<usize> {
        let candidates = ctx.best_tier(!0);
        if candidates == 0 {
            return None;
        }
        let config = &ctx.config;
        let tag = config.generation_tag();
        let levels = config.level_count();
        let word = ctx.cpu.wrr.load(Relaxed);
        let mut pos = Position::unpack(word);
        if pos.tag != tag || pos.level >= levels {
            pos = Position::start(tag);
        } else if let Some(members) = config.level_members(pos.level) {
            // The usual case: the round goes on. Only the next-slot byte of
            // the position changes.
            let pending = members & candidates & (!0u64).checked_shl(pos.next).unwrap_or(0);
            if pending != 0 {
                let slot = pending.trailing_zeros();
                ctx.cpu.wrr.store((word & !0xFF) | u64::from(slot + 1), Relaxed);
                return Some(slot as usize);
            }
        }
        // Three steps always suffice: finish the current round, start the
        // next one, or (if no candidate is heavy enough) restart the cycle.
        for _ in 0..3 {
            let Some((weight, _, members)) = config.level(pos.level) else { break };
            let pending = members & candidates & 1u64.checked_shl(pos.next).map_or(0, u64::wrapping_neg);
            if pending != 0 {
                let slot = pending.trailing_zeros();
                pos.next = slot + 1;
                ctx.cpu.wrr.store(pos.pack(), Relaxed);
                return Some(slot as usize);
            }
            pos.round = pos.round.saturating_add(1);
            pos.next = 0;
            if pos.round >= weight {
                pos.level += 1;
            }
            let next_members = config.level(pos.level).map_or(0, |(_, _, m)| m);
            if pos.level >= levels || next_members & candidates == 0 {
                pos = Position::start(tag);
            }
        }
        // Candidates outside every level (a path that arrived during this
        // read): plain rotation keeps I/O flowing.
        let slot = next_in_rotation(candidates, ctx.cursor())?;
        ctx.advance_past(slot);
        Some(slot)
    }
}
