//! The event queue: events ordered by (time, sequence) in virtual time.
//!
//! The simulator jumps from one event to the next; it never ticks. Ties at the same
//! instant run in the order they were scheduled, so a run is a pure function of the
//! scenario and the seed.
//!
//! # A radix heap
//!
//! A discrete-event simulator only schedules at or after the current time, so its
//! queue is *monotone*: no key pushed is below the last one popped. A radix heap
//! (Ahuja, Mehlhorn, Orlin and Tarjan, 1990) takes advantage of that. Bucket `i` holds
//! the events whose time first differs from `now` in bit `i` (counting from the least
//! significant), and a separate FIFO holds the events at exactly `now`. Scheduling is
//! an append. Popping takes the FIFO's front; when the FIFO is empty, the lowest
//! non-empty bucket's events are moved down, relative to its earliest time, which
//! becomes `now`. An event moves at most 64 times and in practice a handful, always to
//! a strictly lower bucket; a binary heap instead moves about 2·log₂ n entries per pop,
//! with a cache miss each once the heap outgrows the cache (a storm run holds ~10⁵
//! far-future attempt timeouts and slow-notice timers).
//!
//! Ties need no sequence number: the bucket of an event is a function of its time and
//! `now` alone, so events at one time always share a bucket, where they are appended
//! in scheduling order, and moving a bucket keeps its order. Ties therefore pop in
//! scheduling order, exactly as with an explicit (time, sequence) key.

use std::collections::VecDeque;

use breakwater_core::Time;

/// Buckets for times after `now`: one per bit of a `u64`.
const BUCKETS: usize = 64;

/// A min-queue of `E` keyed by (time, insertion order).
#[derive(Debug)]
pub struct EventQueue<E> {
    /// The events at exactly `now`, in scheduling order.
    current: VecDeque<E>,
    /// `buckets[i]`: the events whose time's highest bit differing from `now` is bit
    /// `i`, in scheduling order.
    buckets: [Vec<(Time, E)>; BUCKETS],
    /// Bit `i` set iff `buckets[i]` is non-empty.
    occupied: u64,
    len: usize,
    now: Time,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    #[must_use]
    pub fn new() -> EventQueue<E> {
        EventQueue {
            current: VecDeque::new(),
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            len: 0,
            now: Time::ZERO,
            popped: 0,
        }
    }

    /// The time of the last event popped.
    #[must_use]
    pub fn now(&self) -> Time {
        self.now
    }

    /// Events popped so far.
    #[must_use]
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `event` at `at`; a time in the past runs at the current time.
    pub fn schedule(&mut self, at: Time, event: E) {
        let at = at.max(self.now);
        self.len += 1;
        self.file(at, event);
    }

    /// The next event, advancing the clock to it.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let event = match self.current.pop_front() {
            Some(event) => event,
            None => self.refill()?,
        };
        self.len -= 1;
        self.popped += 1;
        Some((self.now, event))
    }

    /// The time of the next event, if any (a scan of one bucket when none is due now).
    #[must_use]
    pub fn peek_time(&self) -> Option<Time> {
        if !self.current.is_empty() {
            return Some(self.now);
        }
        let lowest = self.occupied.trailing_zeros() as usize;
        self.buckets.get(lowest)?.iter().map(|&(at, _)| at).min()
    }

    /// Puts an event at `at ≥ now` where it belongs relative to `now`.
    fn file(&mut self, at: Time, event: E) {
        let diff = at.as_nanos() ^ self.now.as_nanos();
        if diff == 0 {
            self.current.push_back(event);
        } else {
            let bucket = (u64::BITS - 1 - diff.leading_zeros()) as usize;
            self.buckets[bucket].push((at, event));
            self.occupied |= 1 << bucket;
        }
    }

    /// With `current` empty: advances `now` to the earliest waiting time and returns
    /// the first event scheduled for it; the others at that time land in `current`.
    ///
    /// The lowest non-empty bucket holds the earliest events (an event in a higher
    /// bucket differs from `now` in a higher bit, so it is later). When that bucket
    /// holds one event, that event is next and alone at its time: it is returned as
    /// is. Otherwise the bucket moves down relative to its earliest time; each moved
    /// event goes to a strictly lower bucket, because it agrees with the new `now` on
    /// every bit above the bucket's.
    fn refill(&mut self) -> Option<E> {
        if self.occupied == 0 {
            return None;
        }
        let lowest = self.occupied.trailing_zeros() as usize;
        if self.buckets[lowest].len() == 1 {
            let (at, event) = self.buckets[lowest].pop()?;
            self.occupied &= !(1 << lowest);
            self.now = at;
            return Some(event);
        }
        let mut moving = std::mem::take(&mut self.buckets[lowest]);
        self.occupied &= !(1 << lowest);
        if let Some(earliest) = moving.iter().map(|&(at, _)| at).min() {
            self.now = earliest;
        }
        for (at, event) in moving.drain(..) {
            self.file(at, event);
        }
        // Keep the emptied bucket's allocation for the next events it receives.
        self.buckets[lowest] = moving;
        self.current.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.schedule(Time::from_millis(5), "b");
        q.schedule(Time::from_millis(1), "a");
        q.schedule(Time::from_millis(5), "c");
        assert_eq!(q.peek_time(), Some(Time::from_millis(1)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(q.now(), Time::from_millis(5));
        assert_eq!(q.popped(), 3);
        assert!(q.is_empty());
        assert_eq!(q.peek_time(), None);
    }

    #[test]
    fn the_past_runs_now() {
        let mut q = EventQueue::new();
        q.schedule(Time::from_millis(10), 1);
        q.pop();
        q.schedule(Time::from_millis(3), 2);
        assert_eq!(q.pop(), Some((Time::from_millis(10), 2)));
    }

    #[test]
    fn far_and_near_times_interleave() {
        let mut q = EventQueue::new();
        q.schedule(Time::MAX, "end");
        q.schedule(Time::from_nanos(1), "first");
        q.schedule(Time::from_secs(30), "timeout");
        q.schedule(Time::ZERO, "zero");
        assert_eq!(q.len(), 4);
        assert_eq!(q.pop(), Some((Time::ZERO, "zero")));
        assert_eq!(q.pop(), Some((Time::from_nanos(1), "first")));
        q.schedule(Time::from_secs(30), "tie");
        q.schedule(Time::from_secs(2), "near");
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(rest, ["near", "timeout", "tie", "end"]);
    }

    /// One step of a random workload: schedule `delay` ns after now (possibly in the
    /// past, or at a few shared instants), or pop.
    #[derive(Clone, Debug)]
    enum Op {
        Schedule(i64),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (-1_000i64..1_000_000_000).prop_map(Op::Schedule),
            1 => prop::sample::select(vec![0i64, 1, 7, 1 << 20, 1 << 40]).prop_map(Op::Schedule),
            3 => Just(Op::Pop),
        ]
    }

    proptest! {
        /// The radix heap pops exactly what a binary heap keyed by (time, sequence)
        /// pops, in the same order.
        #[test]
        fn matches_a_binary_heap(ops in prop::collection::vec(op(), 0..400)) {
            let mut q = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let (mut seq, mut now) = (0u64, 0u64);
            let check = |q: &mut EventQueue<u64>, reference: &mut BinaryHeap<Reverse<(u64, u64)>>, now: &mut u64| {
                let expected = reference.pop().map(|Reverse((at, seq))| (Time::from_nanos(at), seq));
                if let Some((at, _)) = expected {
                    *now = at.as_nanos();
                }
                prop_assert_eq!(q.pop(), expected);
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Schedule(delay) => {
                        let at = now.saturating_add_signed(delay);
                        q.schedule(Time::from_nanos(at), seq);
                        reference.push(Reverse((at.max(now), seq)));
                        seq += 1;
                    }
                    Op::Pop => check(&mut q, &mut reference, &mut now)?,
                }
                prop_assert_eq!(q.len(), reference.len());
            }
            while !reference.is_empty() {
                check(&mut q, &mut reference, &mut now)?;
            }
            prop_assert_eq!(q.pop(), None);
        }
    }
}
