//! When received ops are written to storage: the save policy, pure and
//! tested natively (the browser ledger only runs the IndexedDB writes).
//!
//! - rule `batch_received_ops`: a received op waits up to
//!   [`SAVE_BATCH_MS`] so that a burst becomes one transaction (own ops do
//!   not wait: `durable_before_visible` commits them at once, taking any
//!   waiting received ops along).
//! - rule `requeue_failed_batch`: a batch storage refused goes back in
//!   front of the queue and is retried after [`SAVE_RETRY_MS`] (or with the
//!   next op); the queue keeps at most [`MAX_UNSAVED`] items, dropping the
//!   oldest from memory-only retry (they stay in the replica; the storage
//!   error tells the user they are not saved).

/// How long a received op waits for others to share its transaction.
pub const SAVE_BATCH_MS: u64 = 50;
/// How long after a failed save it is tried again.
pub const SAVE_RETRY_MS: u64 = 5_000;
/// Items kept for retry at most.
pub const MAX_UNSAVED: usize = 50_000;

/// Items waiting to be written, and when the next write is due.
#[derive(Debug)]
pub struct SaveQueue<T> {
    items: Vec<T>,
    due: Option<u64>,
    /// Items given up on because the queue was full, ever.
    pub dropped: u64,
}

impl<T> Default for SaveQueue<T> {
    fn default() -> Self {
        SaveQueue { items: vec![], due: None, dropped: 0 }
    }
}

impl<T> SaveQueue<T> {
    /// Queues items received at `now`; returns the time a save must run if
    /// one was not already due (the caller arms a timer for it).
    pub fn push(&mut self, items: impl IntoIterator<Item = T>, now: u64) -> Option<u64> {
        self.items.extend(items);
        self.bound();
        self.arm(now.saturating_add(SAVE_BATCH_MS))
    }

    fn arm(&mut self, at: u64) -> Option<u64> {
        if self.items.is_empty() || self.due.is_some() {
            return None;
        }
        self.due = Some(at);
        Some(at)
    }

    /// When the next save is due.
    pub fn due(&self) -> Option<u64> {
        self.due
    }

    /// Takes everything waiting (a save runs now, or an own-op commit takes
    /// the batch along); the next push arms a new save.
    pub fn take(&mut self) -> Vec<T> {
        self.due = None;
        std::mem::take(&mut self.items)
    }

    /// Rule `requeue_failed_batch`: `batch` failed at `now`. Returns when to
    /// retry (`None` if a save is already due sooner).
    pub fn failed(&mut self, mut batch: Vec<T>, now: u64) -> Option<u64> {
        batch.append(&mut self.items);
        self.items = batch;
        self.bound();
        self.due = None;
        self.arm(now.saturating_add(SAVE_RETRY_MS))
    }

    /// Returns items a failed transaction took along, without a new timer
    /// (the caller's own retry covers them).
    pub fn put_back(&mut self, mut batch: Vec<T>) {
        batch.append(&mut self.items);
        self.items = batch;
        self.bound();
    }

    fn bound(&mut self) {
        let excess = self.items.len().saturating_sub(MAX_UNSAVED);
        if excess > 0 {
            self.items.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets everything (storage is unusable: nothing can be saved).
    pub fn clear(&mut self) {
        self.items.clear();
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_received_ops_into_one_save() {
        let mut q = SaveQueue::default();
        assert_eq!(q.push([1], 100), Some(100 + SAVE_BATCH_MS));
        assert_eq!(q.push([2, 3], 120), None, "already due");
        assert_eq!(q.take(), vec![1, 2, 3]);
        assert_eq!(q.push([4], 200), Some(200 + SAVE_BATCH_MS), "re-armed after a take");
    }

    #[test]
    fn requeue_failed_batch_in_front_and_retry_later() {
        let mut q = SaveQueue::default();
        q.push([1, 2], 0);
        let batch = q.take();
        q.push([3], 10);
        q.take(); // an own-op commit took 3 along and failed too
        q.put_back(vec![3]);
        assert_eq!(q.failed(batch, 60), Some(60 + SAVE_RETRY_MS));
        assert_eq!(q.take(), vec![1, 2, 3], "order kept");
    }

    #[test]
    fn the_queue_is_bounded_dropping_the_oldest() {
        let mut q = SaveQueue::default();
        q.push(0..MAX_UNSAVED as u64, 0);
        let batch = q.take();
        q.push([u64::MAX], 1);
        q.failed(batch, 2);
        assert_eq!(q.len(), MAX_UNSAVED);
        assert_eq!(q.dropped, 1);
        let items = q.take();
        assert_eq!(items[0], 1, "the oldest went first");
        assert_eq!(*items.last().unwrap(), u64::MAX);
    }

    #[test]
    fn nothing_to_save_arms_nothing() {
        let mut q: SaveQueue<u8> = SaveQueue::default();
        assert_eq!(q.push([], 0), None);
        assert_eq!(q.failed(vec![], 0), None);
        assert!(q.due().is_none());
    }
}
