//! A hierarchical timing wheel; see the [module docs](super) for the structure
//! and its guarantees.

use std::time::Duration;

/// Bits of a tick number consumed by one level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Number of wheel levels: `64^LEVELS = 2^36` ticks are covered.
pub(crate) const LEVELS: usize = 6;
/// The pseudo level of the overflow list.
const OVERFLOW: u8 = LEVELS as u8;
/// Ticks covered by all levels together.
const WHEEL_SPAN_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// "No entry" in the intrusive links.
const NIL: u32 = u32::MAX;

/// The handle of an armed timer. It stays valid until the timer fires or is
/// cancelled; afterwards it is stale, and the generation it carries makes sure it
/// never matches a later timer that reuses the same slab slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TimerId {
    index: u32,
    generation: u32,
}

impl TimerId {
    /// The id packed into one word, for an atomic slot; never `u64::MAX`
    /// (the index `u32::MAX` is never used), which callers may use as "none".
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The inverse of [`to_bits`](Self::to_bits).
    pub(crate) fn from_bits(bits: u64) -> TimerId {
        TimerId { index: bits as u32, generation: (bits >> 32) as u32 }
    }
}

/// One armed timer.
#[derive(Debug)]
struct Entry<T> {
    deadline_ns: u64,
    prev: u32,
    next: u32,
    /// The level (or [`OVERFLOW`]) and slot of the list the entry is on.
    level: u8,
    slot: u8,
    payload: T,
}

/// A slab slot: the generation survives the entry so stale ids can be told apart.
#[derive(Debug)]
struct SlabSlot<T> {
    generation: u32,
    entry: Option<Entry<T>>,
}

/// One level: 64 list heads and a bitmap of the non-empty ones.
#[derive(Debug)]
struct Level {
    heads: [u32; SLOTS],
    occupied: u64,
}

/// The next list due for processing.
#[derive(Debug, Clone, Copy)]
struct Expiration {
    level: u8,
    slot: u8,
    /// The first tick the list can hold (for the overflow list: the start of the
    /// `2^36`-tick block of its earliest timer).
    tick: u64,
}

/// A hierarchical timing wheel holding payloads of type `T`.
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    tick_ns: u64,
    /// The current tick: every pending timer's (clamped) tick is `>= cur`.
    cur: u64,
    levels: [Level; LEVELS],
    overflow: u32,
    slab: Vec<SlabSlot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new(Duration::from_millis(1))
    }
}

impl<T> Wheel<T> {
    /// An empty wheel at time 0 with the given tick length (1 ms is typical).
    ///
    /// # Panics
    /// If `tick` is shorter than 1 ns or longer than `u64::MAX` ns.
    pub(crate) fn new(tick: Duration) -> Self {
        let tick_ns = u64::try_from(tick.as_nanos()).expect("timer wheel tick too long");
        assert!(tick_ns > 0, "timer wheel tick must be at least 1 ns");
        Wheel {
            tick_ns,
            cur: 0,
            levels: std::array::from_fn(|_| Level { heads: [NIL; SLOTS], occupied: 0 }),
            overflow: NIL,
            slab: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// The tick length in nanoseconds.
    #[cfg(test)]
    pub(crate) fn tick_ns(&self) -> u64 {
        self.tick_ns
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer that fires `payload` on the first [`advance`](Self::advance)
    /// whose `now_ns >= deadline_ns`. O(1) amortized.
    ///
    /// # Panics
    /// If more than `u32::MAX - 1` timers are pending at once.
    pub(crate) fn arm(&mut self, deadline_ns: u64, payload: T) -> TimerId {
        let entry = Entry { deadline_ns, prev: NIL, next: NIL, level: 0, slot: 0, payload };
        let index = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slab[i as usize];
                debug_assert!(s.entry.is_none());
                s.entry = Some(entry);
                i
            }
            None => {
                let i = u32::try_from(self.slab.len()).ok().filter(|&i| i != NIL).expect("too many timers");
                self.slab.push(SlabSlot { generation: 0, entry: Some(entry) });
                i
            }
        };
        self.len += 1;
        self.file(index);
        TimerId { index, generation: self.slab[index as usize].generation }
    }

    /// Cancels a pending timer and returns its payload; `None` if `id` is stale
    /// (the timer already fired or was cancelled). O(1).
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let s = self.slab.get(id.index as usize)?;
        if s.generation != id.generation || s.entry.is_none() {
            return None;
        }
        self.unlink(id.index);
        Some(self.release(id.index))
    }

    /// The payload of a pending timer; `None` if `id` is stale. O(1).
    pub(crate) fn get(&self, id: TimerId) -> Option<&T> {
        let s = self.slab.get(id.index as usize)?;
        s.entry.as_ref().filter(|_| s.generation == id.generation).map(|e| &e.payload)
    }

    /// Cancels every pending timer whose payload matches `pred`, handing each
    /// payload to `out` in no particular order. O(slab size): for rare bulk
    /// operations (destroying a workqueue), not for the hot path.
    pub(crate) fn cancel_if(&mut self, mut pred: impl FnMut(&T) -> bool, out: &mut impl FnMut(T)) {
        for i in 0..self.slab.len() {
            let hit = self.slab[i].entry.as_ref().is_some_and(|e| pred(&e.payload));
            if hit {
                self.unlink(i as u32);
                out(self.release(i as u32));
            }
        }
    }

    /// Fires every pending timer whose deadline is `<= now_ns`, calling `fire`
    /// with each payload in non-decreasing tick order, and cascades the timers
    /// of higher levels whose range has been reached. `now_ns` should not go
    /// backwards; if it does, the wheel's notion of the current tick stays put
    /// and only timers with a deadline `<= now_ns` fire.
    pub(crate) fn advance(&mut self, now_ns: u64, fire: &mut impl FnMut(T)) {
        let now_tick = (now_ns / self.tick_ns).max(self.cur);
        while let Some(exp) = self.next_expiration() {
            if exp.tick > now_tick {
                break;
            }
            debug_assert!(exp.tick >= self.cur);
            self.cur = exp.tick;
            let mut i = self.take_list(exp.level, exp.slot);
            while i != NIL {
                let e = self.entry(i);
                let next = e.next;
                if exp.level == 0 && e.deadline_ns <= now_ns {
                    fire(self.release(i));
                } else {
                    // Cascades to a lower level, or (level 0, deadline later in
                    // this very tick) goes back to the same slot.
                    self.file(i);
                }
                i = next;
            }
            if exp.level == 0 && self.levels[0].heads[exp.slot as usize] != NIL {
                // Timers left in the slot of tick `now_tick`, due later within it.
                debug_assert_eq!(exp.tick, now_tick);
                break;
            }
        }
        self.cur = now_tick;
    }

    /// A lower bound of the earliest pending deadline in nanoseconds, `None` when
    /// no timer is pending. Exact when the earliest timer is in level 0 (due in
    /// the current 64-tick window) or in the overflow list; otherwise the start
    /// of the higher-level slot that holds it. A value `<=` the time of the last
    /// `advance` means a timer is due now.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let exp = self.next_expiration()?;
        if exp.level == 0 || exp.level == OVERFLOW {
            let head = if exp.level == 0 { self.levels[0].heads[exp.slot as usize] } else { self.overflow };
            let mut min = u64::MAX;
            let mut i = head;
            while i != NIL {
                let e = self.entry(i);
                min = min.min(e.deadline_ns);
                i = e.next;
            }
            Some(min)
        } else {
            // Every timer in the slot has tick >= exp.tick, so deadline >= this.
            Some(exp.tick * self.tick_ns)
        }
    }

    // ---- internals ----

    fn entry(&self, i: u32) -> &Entry<T> {
        self.slab[i as usize].entry.as_ref().expect("timer wheel: dangling index")
    }

    fn entry_mut(&mut self, i: u32) -> &mut Entry<T> {
        self.slab[i as usize].entry.as_mut().expect("timer wheel: dangling index")
    }

    /// The tick a timer is filed under: its deadline's tick, or the current tick
    /// if that has already passed.
    fn tick_of(&self, deadline_ns: u64) -> u64 {
        (deadline_ns / self.tick_ns).max(self.cur)
    }

    /// Where a timer of tick `tick >= cur` belongs: (level or OVERFLOW, slot).
    fn position(&self, tick: u64) -> (u8, u8) {
        let masked = (self.cur ^ tick) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        let level = significant / SLOT_BITS;
        if level as usize >= LEVELS {
            (OVERFLOW, 0)
        } else {
            let slot = (tick >> (SLOT_BITS * level)) & (SLOTS as u64 - 1);
            (level as u8, slot as u8)
        }
    }

    /// Pushes entry `i` (currently on no list) onto the list it belongs to.
    fn file(&mut self, i: u32) {
        let tick = self.tick_of(self.entry(i).deadline_ns);
        let (level, slot) = self.position(tick);
        let head = if level == OVERFLOW {
            std::mem::replace(&mut self.overflow, i)
        } else {
            let l = &mut self.levels[level as usize];
            l.occupied |= 1 << slot;
            std::mem::replace(&mut l.heads[slot as usize], i)
        };
        if head != NIL {
            self.entry_mut(head).prev = i;
        }
        let e = self.entry_mut(i);
        e.prev = NIL;
        e.next = head;
        e.level = level;
        e.slot = slot;
    }

    /// Removes entry `i` from its list.
    fn unlink(&mut self, i: u32) {
        let (prev, next, level, slot) = {
            let e = self.entry(i);
            (e.prev, e.next, e.level, e.slot)
        };
        if next != NIL {
            self.entry_mut(next).prev = prev;
        }
        if prev != NIL {
            self.entry_mut(prev).next = next;
        } else if level == OVERFLOW {
            self.overflow = next;
        } else {
            let l = &mut self.levels[level as usize];
            l.heads[slot as usize] = next;
            if next == NIL {
                l.occupied &= !(1 << slot);
            }
        }
    }

    /// Detaches a whole list and returns its first index; the entries keep their
    /// (now meaningless) links, which the caller follows and then overwrites.
    fn take_list(&mut self, level: u8, slot: u8) -> u32 {
        if level == OVERFLOW {
            std::mem::replace(&mut self.overflow, NIL)
        } else {
            let l = &mut self.levels[level as usize];
            l.occupied &= !(1 << slot);
            std::mem::replace(&mut l.heads[slot as usize], NIL)
        }
    }

    /// Frees slab slot `i` (already unlinked) and returns its payload.
    fn release(&mut self, i: u32) -> T {
        let s = &mut self.slab[i as usize];
        let e = s.entry.take().expect("timer wheel: dangling index");
        s.generation = s.generation.wrapping_add(1);
        self.free.push(i);
        self.len -= 1;
        e.payload
    }

    /// The earliest non-empty list: the lowest non-empty level's first occupied
    /// slot (all timers at level k lie beyond the level-k-1 block holding `cur`),
    /// else the overflow list.
    fn next_expiration(&self) -> Option<Expiration> {
        for (level, l) in self.levels.iter().enumerate() {
            if l.occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let cur_slot = (self.cur >> shift) & (SLOTS as u64 - 1);
            debug_assert_eq!(l.occupied & ((1u64 << cur_slot) - 1), 0, "slot behind the current tick");
            let slot = l.occupied.trailing_zeros();
            let block_mask = (1u64 << (shift + SLOT_BITS)) - 1;
            let tick = (self.cur & !block_mask) | (u64::from(slot) << shift);
            return Some(Expiration { level: level as u8, slot: slot as u8, tick });
        }
        if self.overflow == NIL {
            return None;
        }
        let mut min = u64::MAX;
        let mut i = self.overflow;
        while i != NIL {
            let e = self.entry(i);
            min = min.min(self.tick_of(e.deadline_ns));
            i = e.next;
        }
        let block_mask = (1u64 << WHEEL_SPAN_BITS) - 1;
        Some(Expiration { level: OVERFLOW, slot: 0, tick: min & !block_mask })
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::{Clock, ManualClock};
    use super::*;

    const MS: u64 = 1_000_000;

    /// A tiny xorshift64 generator.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    fn drain(w: &mut Wheel<u64>, now: u64) -> Vec<u64> {
        let mut v = Vec::new();
        w.advance(now, &mut |p| v.push(p));
        v
    }

    #[test]
    fn fires_at_deadline_never_before() {
        for deadline in [0, 1, MS - 1, MS, MS + 1, 5 * MS + 123, 64 * MS, 4096 * MS + 7, 300_000 * MS + 1] {
            let mut w = Wheel::default();
            w.arm(deadline, deadline);
            if deadline > 0 {
                assert!(drain(&mut w, deadline - 1).is_empty(), "early at {deadline}");
                assert_eq!(w.len(), 1);
            }
            assert_eq!(drain(&mut w, deadline), vec![deadline]);
            assert!(w.is_empty());
            assert!(drain(&mut w, u64::MAX).is_empty());
        }
    }

    #[test]
    fn same_tick_partial_and_clock_driven() {
        let clock = ManualClock::new(0);
        let mut w = Wheel::new(Duration::from_millis(1));
        w.arm(10 * MS + 100, 1);
        w.arm(10 * MS + 900, 2);
        clock.set(10 * MS + 500);
        assert_eq!(drain(&mut w, clock.now_ns()), vec![1]);
        assert_eq!(w.next_deadline(), Some(10 * MS + 900));
        clock.advance(Duration::from_nanos(400));
        assert_eq!(drain(&mut w, clock.now_ns()), vec![2]);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn past_and_now_deadlines_fire_on_next_advance() {
        let mut w = Wheel::default();
        assert!(drain(&mut w, 100 * MS).is_empty());
        w.arm(3 * MS, 1);
        w.arm(100 * MS, 2);
        w.arm(0, 3);
        assert_eq!(w.next_deadline(), Some(0));
        let mut got = drain(&mut w, 100 * MS);
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_before_fire_returns_payload() {
        let mut w = Wheel::default();
        let a = w.arm(5 * MS, 1);
        let b = w.arm(5 * MS, 2);
        let c = w.arm(900_000 * MS, 3);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(c), Some(3));
        assert_eq!(w.len(), 1);
        assert_eq!(drain(&mut w, u64::MAX / 2), vec![2]);
        assert_eq!(w.cancel(b), None);
        assert!(w.is_empty());
    }

    #[test]
    fn stale_id_does_not_touch_reused_slot() {
        let mut w = Wheel::default();
        let a = w.arm(MS, 1);
        assert_eq!(drain(&mut w, MS), vec![1]);
        let b = w.arm(2 * MS, 2); // reuses a's slab slot
        assert_eq!(b.index, a.index);
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.len(), 1);
        assert_eq!(w.cancel(b), Some(2));
        assert_eq!(w.cancel(b), None);
        let c = w.arm(3 * MS, 3);
        assert_eq!(w.cancel(b), None);
        assert_eq!(w.cancel(a), None);
        assert_eq!(drain(&mut w, 3 * MS), vec![3]);
        assert_eq!(w.cancel(c), None);
    }

    /// Arms `n` timers at random deadlines spread over every level (and some
    /// overflow), then advances with `step` (None: one jump) and checks each
    /// fires exactly once, not early, in non-decreasing tick order per call.
    fn random_run(seed: u64, n: usize, step: impl Fn(&mut XorShift) -> Option<u64>) {
        let mut rng = XorShift(seed);
        let mut w = Wheel::default();
        let mut deadlines = Vec::new();
        for i in 0..n {
            let bits = rng.next() % 40; // ticks up to 2^40: levels 0..5 and overflow
            let d = rng.next() % ((1u64 << bits) * MS + 1);
            deadlines.push(d);
            w.arm(d, i as u64);
        }
        let max = *deadlines.iter().max().unwrap();
        let mut fired = vec![false; n];
        let mut now = 0;
        let mut count = 0;
        while now <= max || !w.is_empty() {
            now = match step(&mut rng) {
                Some(s) => now.saturating_add(s),
                None => max,
            };
            let mut last_tick = 0;
            let mut got = Vec::new();
            w.advance(now, &mut |p| got.push(p));
            for p in got {
                let d = deadlines[p as usize];
                assert!(d <= now, "fired early: deadline {d} at {now}");
                assert!(!fired[p as usize], "fired twice");
                fired[p as usize] = true;
                assert!(d / MS >= last_tick, "out of tick order");
                last_tick = d / MS;
                count += 1;
            }
            // Everything due has fired.
            if let Some(nd) = w.next_deadline() {
                assert!(nd > now, "next_deadline {nd} not after {now}");
                let earliest = (0..n).filter(|&i| !fired[i]).map(|i| deadlines[i]).min().unwrap();
                assert!(nd <= earliest, "next_deadline {nd} above earliest {earliest}");
            }
            assert_eq!(w.len(), n - count);
            if now >= max {
                break;
            }
        }
        assert_eq!(count, n);
        assert!(w.is_empty());
    }

    #[test]
    fn random_one_big_jump() {
        random_run(0x9e37_79b9_7f4a_7c15, 20_000, |_| None);
    }

    #[test]
    fn random_geometric_steps() {
        // Steps from 1 ns to ~2^41 ms, so small steps and long jumps mix.
        random_run(42, 5_000, |r| {
            let bits = r.next() % 62;
            Some(1 + r.next() % (1u64 << bits))
        });
    }

    #[test]
    fn random_small_steps_dense() {
        // Deadlines within ~4 s, advanced in sub-tick to few-tick steps.
        let mut rng = XorShift(7);
        let mut w = Wheel::default();
        let n = 10_000;
        let deadlines: Vec<u64> = (0..n).map(|_| rng.next() % (4_000 * MS)).collect();
        for (i, &d) in deadlines.iter().enumerate() {
            w.arm(d, i as u64);
        }
        let mut now = 0;
        let mut order = Vec::new();
        while !w.is_empty() {
            now += rng.next() % (3 * MS);
            let mut got = Vec::new();
            w.advance(now, &mut |p| got.push(p));
            for p in got {
                assert!(deadlines[p as usize] <= now);
                order.push(p);
            }
            if let Some(nd) = w.next_deadline() {
                assert!(nd > now);
            }
        }
        assert_eq!(order.len(), n);
        // Across calls and within them: non-decreasing ticks.
        for pair in order.windows(2) {
            assert!(deadlines[pair[0] as usize] / MS <= deadlines[pair[1] as usize] / MS);
        }
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n);
    }

    #[test]
    fn overflow_beyond_top_level() {
        let mut w = Wheel::default();
        let span = 1u64 << WHEEL_SPAN_BITS; // ticks
        let far = [span * MS, (span + 5) * MS + 3, 3 * span * MS + 1, u64::MAX];
        for (i, &d) in far.iter().enumerate() {
            w.arm(d, i as u64);
        }
        w.arm(10 * MS, 99);
        assert_eq!(w.next_deadline(), Some(10 * MS));
        assert_eq!(drain(&mut w, 10 * MS), vec![99]);
        assert_eq!(w.next_deadline(), Some(span * MS));
        assert!(drain(&mut w, span * MS - 1).is_empty());
        assert_eq!(drain(&mut w, span * MS), vec![0]);
        assert_eq!(w.next_deadline(), Some((span + 5) * MS + 3));
        assert!(drain(&mut w, (span + 5) * MS + 2).is_empty());
        assert_eq!(drain(&mut w, (span + 5) * MS + 3), vec![1]);
        assert_eq!(drain(&mut w, 3 * span * MS + 1), vec![2]);
        assert!(drain(&mut w, u64::MAX - 1).is_empty());
        assert_eq!(w.next_deadline(), Some(u64::MAX));
        assert_eq!(drain(&mut w, u64::MAX), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn next_deadline_tracks_arms_cancels_fires() {
        let mut w: Wheel<u64> = Wheel::default();
        assert_eq!(w.next_deadline(), None);
        let a = w.arm(50 * MS + 7, 1);
        assert_eq!(w.next_deadline(), Some(50 * MS + 7)); // level 0: exact
        let b = w.arm(20 * MS, 2);
        assert_eq!(w.next_deadline(), Some(20 * MS));
        let c = w.arm(10_000 * MS + 5, 3); // level 2: lower bound
        assert_eq!(w.cancel(b), Some(2));
        assert_eq!(w.next_deadline(), Some(50 * MS + 7));
        assert_eq!(w.cancel(a), Some(1));
        let nd = w.next_deadline().unwrap();
        assert!((10_000 * MS - 4096 * MS..=10_000 * MS + 5).contains(&nd), "{nd}");
        // Advancing to the bound cascades; the bound tightens until exact.
        let mut now = 0;
        let mut fired = Vec::new();
        while let Some(nd) = w.next_deadline() {
            assert!(nd > now || now == 0);
            assert!(nd <= 10_000 * MS + 5);
            now = nd;
            w.advance(now, &mut |p| fired.push((p, now)));
        }
        assert_eq!(fired, vec![(3, 10_000 * MS + 5)]);
        assert!(w.cancel(c).is_none());
    }

    #[test]
    fn custom_tick() {
        let mut w = Wheel::new(Duration::from_micros(100));
        assert_eq!(w.tick_ns(), 100_000);
        w.arm(250_000, 1);
        assert!(drain(&mut w, 249_999).is_empty());
        assert_eq!(drain(&mut w, 250_000), vec![1]);
    }

    #[test]
    fn million_armed_then_cancelled() {
        let n = 1_000_000;
        let start = std::time::Instant::now();
        let mut rng = XorShift(1);
        let mut w = Wheel::default();
        let ids: Vec<TimerId> = (0..n).map(|i| w.arm(rng.next() % (1 << 45), i as u64)).collect();
        assert_eq!(w.len(), n);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(w.cancel(*id), Some(i as u64));
        }
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
        assert!(drain(&mut w, u64::MAX).is_empty());
        eprintln!("1M arm+cancel: {:?}", start.elapsed());
    }

    #[test]
    fn cancel_if_takes_exactly_the_matching_timers() {
        let mut w = Wheel::<u64>::default();
        let ids: Vec<_> = (0..200u64).map(|i| (i, w.arm(i * 7 * MS + 1, i))).collect();
        let mut taken = Vec::new();
        w.cancel_if(|p| p % 3 == 0, &mut |p| taken.push(p));
        taken.sort_unstable();
        assert_eq!(taken, (0..200).filter(|p| p % 3 == 0).collect::<Vec<_>>());
        assert_eq!(w.len(), 200 - taken.len());
        for (i, id) in ids {
            assert_eq!(w.cancel(id).is_some(), i % 3 != 0, "timer {i}");
        }
        assert!(w.is_empty());
    }

    #[test]
    fn timer_id_bits_round_trip() {
        let mut w = Wheel::<u64>::default();
        let a = w.arm(5, 1);
        assert_eq!(w.cancel(a), Some(1));
        let b = w.arm(5, 2);
        assert_ne!(a.to_bits(), b.to_bits(), "reused slot, new generation");
        assert_ne!(b.to_bits(), u64::MAX);
        assert_eq!(TimerId::from_bits(b.to_bits()), b);
        assert_eq!(w.cancel(TimerId::from_bits(a.to_bits())), None);
    }
}
