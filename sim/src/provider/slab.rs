//! A slab with a free list and generations: in-flight jobs without per-event allocation.

use serde::Serialize;

/// A job at a server: an index and a generation, so a stale id is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceId {
    index: u32,
    generation: u32,
}

impl ServiceId {
    /// The slot index (dense, reused): a driver may index its own `Vec` with it.
    #[must_use]
    pub fn index(self) -> usize {
        self.index as usize
    }
}

#[derive(Clone, Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Values addressed by [`ServiceId`]; freed slots are reused, so steady state allocates
/// nothing.
#[derive(Clone, Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Slab<T> {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> ServiceId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(e) = self.entries.get_mut(index as usize) {
                e.generation = e.generation.wrapping_add(1);
                e.value = Some(value);
                return ServiceId {
                    index,
                    generation: e.generation,
                };
            }
        }
        let index = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.entries.push(Entry {
            generation: 0,
            value: Some(value),
        });
        ServiceId {
            index,
            generation: 0,
        }
    }

    pub(crate) fn get_mut(&mut self, id: ServiceId) -> Option<&mut T> {
        self.entries
            .get_mut(id.index as usize)
            .filter(|e| e.generation == id.generation)
            .and_then(|e| e.value.as_mut())
    }

    pub(crate) fn remove(&mut self, id: ServiceId) -> Option<T> {
        let e = self
            .entries
            .get_mut(id.index as usize)
            .filter(|e| e.generation == id.generation)?;
        let value = e.value.take()?;
        self.free.push(id.index);
        self.len -= 1;
        Some(value)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_slots_and_refuses_stale_ids() {
        let mut s = Slab::new();
        let a = s.insert(1);
        let b = s.insert(2);
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.remove(a), None);
        let c = s.insert(3);
        assert_eq!(c.index(), a.index());
        assert_eq!(s.get_mut(a), None);
        assert_eq!(s.get_mut(c), Some(&mut 3));
        assert_eq!(s.get_mut(b), Some(&mut 2));
        assert_eq!(s.len(), 2);
    }
}
