//! A slab: a `Vec` of slots with a free list, so that an entry keeps its index
//! until it is removed and a removed index is reused. Workers and pwqs are named
//! by their slab index (a work item's state word holds its pwq's index), so the
//! index must be stable; written by hand because it is 50 lines and the
//! well-known crate for it (`slab`) would be the library's only use of it.

/// A slab: stable indices, reused after removal.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, t: T) -> usize {
        if let Some(i) = self.free.pop() {
            self.items[i] = Some(t);
            i
        } else {
            self.items.push(Some(t));
            self.items.len() - 1
        }
    }
    /// Whether no slot is in use.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.len() == self.free.len()
    }
    /// The index the next `insert` will use.
    pub(crate) fn next_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.items.len())
    }
    pub(crate) fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.items.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }
    #[inline]
    pub(crate) fn try_get(&self, i: usize) -> Option<&T> {
        self.items.get(i).and_then(Option::as_ref)
    }
    #[inline]
    pub(crate) fn try_get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i).and_then(Option::as_mut)
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &T {
        self.items[i].as_ref().expect("slab slot in use")
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut T {
        self.items[i].as_mut().expect("slab slot in use")
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items.iter().enumerate().filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
    }
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.items.iter_mut().enumerate().filter_map(|(i, t)| t.as_mut().map(|t| (i, t)))
    }
}
