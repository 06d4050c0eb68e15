//! The event queue: events ordered by (time, sequence) in virtual time.
//!
//! The simulator jumps from one event to the next; it never ticks. Ties at the same
//! instant run in the order they were scheduled (the sequence number), so a run is a
//! pure function of the scenario and the seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use breakwater_core::Time;

/// A min-queue of `E` keyed by (time, insertion order).
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    next_seq: u64,
    now: Time,
    popped: u64,
}

#[derive(Debug)]
struct Entry<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
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
            heap: BinaryHeap::new(),
            next_seq: 0,
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
        self.heap.len()
    }

    /// Whether no event is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at`; a time in the past runs at the current time.
    pub fn schedule(&mut self, at: Time, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry {
            at: at.max(self.now),
            seq,
            event,
        }));
    }

    /// The next event, advancing the clock to it.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let Reverse(entry) = self.heap.pop()?;
        self.now = entry.at;
        self.popped += 1;
        Some((entry.at, entry.event))
    }

    /// The time of the next event, if any.
    #[must_use]
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.schedule(Time::from_millis(5), "b");
        q.schedule(Time::from_millis(1), "a");
        q.schedule(Time::from_millis(5), "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(q.now(), Time::from_millis(5));
        assert_eq!(q.popped(), 3);
    }

    #[test]
    fn the_past_runs_now() {
        let mut q = EventQueue::new();
        q.schedule(Time::from_millis(10), 1);
        q.pop();
        q.schedule(Time::from_millis(3), 2);
        assert_eq!(q.pop(), Some((Time::from_millis(10), 2)));
    }
}
