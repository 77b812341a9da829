//! Planning the due slots of a task: on-time fires, late fires within the grace period, and misfires.

use jobs_model::{MisfirePolicy, Timestamp};

use crate::schedule::Schedule;

/// What to do with a task's slots up to the planning horizon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Slots to fire, oldest first.
    pub fires: Vec<Timestamp>,
    /// Misfired slots not fired (policy `skip`), oldest first, to record as missed.
    pub missed: Vec<Timestamp>,
    /// Misfired slots neither fired nor listed in `missed`, to count as missed with the plan's first execution:
    /// the slots a `FireOnce` catch-up fire stands for, and those older than the newest `max_slots` misfires
    /// (counted one by one up to `max_slots` of them, estimated beyond from the interval of those counted).
    pub folded: u64,
    /// The first slot not planned: the first one after the horizon, or the first one cut by `max_slots`.
    /// `None` when the schedule never fires again.
    pub next: Option<Timestamp>,
}

/// Plans the slots of a task due at `next_fire` (its stored next fire time, itself the first slot) up to `horizon`.
///
/// A slot less than `grace_ms` late at `now` (`now - slot < grace_ms`), or not yet due, is fired.
/// An older slot is a misfire, handled by `policy`: `FireOnce` fires the latest misfire once, `FireAll` fires every
/// one, `Skip` lists them in `missed`.
/// `fires` and `missed` together hold at most `max_slots` slots (at least one): beyond that the newest misfires are
/// kept, and on-time slots cut by the cap are left to the next plan through `next`. The work is bounded by
/// `max_slots` whatever the length of an outage.
pub fn plan(
    schedule: &Schedule,
    next_fire: Timestamp,
    now: Timestamp,
    horizon: Timestamp,
    grace_ms: i64,
    policy: MisfirePolicy,
    max_slots: usize,
) -> Plan {
    let max_slots = max_slots.max(1);
    let slots = Slots { schedule, first: next_fire };
    let mut plan = Plan::default();
    let mut cursor = Some(next_fire);

    // Misfires: slots at least `grace_ms` late; none beyond the horizon, whatever the arguments.
    let misfire_end = now.add_millis(-grace_ms.max(0)).min(horizon);
    if next_fire <= misfire_end {
        let (misfires, first_on_time) = slots.newest(misfire_end, max_slots);
        plan.folded = misfires.first().map_or(0, |oldest| slots.count_before(*oldest, max_slots));
        match policy {
            MisfirePolicy::FireAll => plan.fires = misfires,
            MisfirePolicy::FireOnce => {
                plan.folded += u64::try_from(misfires.len().saturating_sub(1)).unwrap_or(u64::MAX);
                plan.fires.extend(misfires.last());
            }
            MisfirePolicy::Skip => plan.missed = misfires,
        }
        cursor = first_on_time;
    }

    while let Some(slot) = cursor
        && slot <= horizon
        && plan.fires.len() + plan.missed.len() < max_slots
    {
        plan.fires.push(slot);
        cursor = schedule.next_after(slot);
    }
    plan.next = cursor;
    plan
}

impl Plan {
    /// Keeps at most `max` of the fires already late at `now` (the newest), and returns the older ones, oldest
    /// first, for the caller to record as missed: a task's `max_catchup`, so that a gap (a failover, an outage, an
    /// overload) ends in a few late fires per task rather than a burst. Fires not yet due are never capped.
    pub fn cap_late(&mut self, now: Timestamp, max: usize) -> Vec<Timestamp> {
        let late = self.fires.iter().take_while(|slot| **slot < now).count();
        let capped = late.saturating_sub(max);
        self.fires.drain(..capped).collect()
    }
}

/// A task's slots: `first` (its stored next fire time), then the schedule's fires after it.
struct Slots<'a> {
    schedule: &'a Schedule,
    first: Timestamp,
}

impl Slots<'_> {
    /// The first slot at or after `at`.
    fn at_or_after(&self, at: Timestamp) -> Option<Timestamp> {
        if at <= self.first { Some(self.first) } else { self.schedule.next_after(at.add_millis(-1)) }
    }

    /// How many slots come before `slot`: counted one by one up to `max`, and beyond that estimated from the mean
    /// interval of those counted, so that the work stays bounded by `max` whatever the length of an outage (exact
    /// for fixed intervals, close for the rest).
    fn count_before(&self, slot: Timestamp, max: usize) -> u64 {
        let mut count: u64 = 0;
        let mut cursor = Some(self.first);
        while let Some(earlier) = cursor
            && earlier < slot
        {
            if count == u64::try_from(max).unwrap_or(u64::MAX) {
                let interval = earlier.millis_since(self.first) / i64::try_from(count).unwrap_or(i64::MAX).max(1);
                let rest = slot.millis_since(earlier) / interval.max(1);
                return count.saturating_add(u64::try_from(rest).unwrap_or(0));
            }
            count += 1;
            cursor = self.schedule.next_after(earlier);
        }
        count
    }

    /// The newest `max` slots up to `last` (inclusive), oldest first, and the first slot after `last`.
    fn newest(&self, last: Timestamp, max: usize) -> (Vec<Timestamp>, Option<Timestamp>) {
        let mut slots = Vec::new();
        let mut cursor = Some(self.first);
        while let Some(slot) = cursor
            && slot <= last
        {
            if slots.len() == max {
                // Too many to walk: step back from `last` instead, a bounded search per slot.
                let mut newest = Vec::with_capacity(max);
                let mut before = last.add_millis(1);
                while newest.len() < max {
                    let Some(slot) = self.latest_before(before) else { break };
                    newest.push(slot);
                    before = slot;
                }
                newest.reverse();
                return (newest, self.schedule.next_after(last));
            }
            slots.push(slot);
            cursor = self.schedule.next_after(slot);
        }
        (slots, cursor)
    }

    /// The latest slot before `before`, found with [`Schedule::next_after`] alone (so with the same DST rules):
    /// a window doubling back from `before` until it holds a slot, then halved down to under a second.
    fn latest_before(&self, before: Timestamp) -> Option<Timestamp> {
        if before <= self.first {
            return None;
        }
        let holds_slot = |from: Timestamp, to: Timestamp| self.at_or_after(from).is_some_and(|slot| slot < to);
        // Invariant: no slot in [high, before).
        let mut high = before;
        let mut width: i64 = 1000;
        let mut low = loop {
            let low = before.add_millis(-width).max(self.first);
            if holds_slot(low, before) {
                break low;
            }
            high = low;
            width = width.saturating_mul(2);
        };
        // Invariant: a slot in [low, high), none in [high, before).
        while high.millis_since(low) > 1000 {
            let middle = low.add_millis(high.millis_since(low) / 2);
            if holds_slot(middle, high) {
                low = middle;
            } else {
                high = middle;
            }
        }
        // Under a second wide: fires are whole seconds, so `first` and one fire at most.
        let mut latest = self.at_or_after(low)?;
        for _ in 0..2 {
            match self.schedule.next_after(latest) {
                Some(slot) if slot < high => latest = slot,
                _ => break,
            }
        }
        Some(latest)
    }
}
