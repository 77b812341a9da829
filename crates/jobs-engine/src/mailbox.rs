//! A leader loop's mailbox: what other parts of the instance ask it to look at, coalesced.
//!
//! A mailbox holds a set, not a queue: a thousand changes of one task are one entry, so its size is bounded by
//! what there is to look at, never by how often something was posted. It is closed while this instance does not
//! lead: then posts are dropped (a new leader reads everything from the database anyway), so a follower buffers
//! nothing however many requests it serves.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Mailbox<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

#[derive(Debug)]
struct State<T> {
    open: bool,
    items: HashSet<T>,
}

impl<T: Hash + Eq> Default for Mailbox<T> {
    fn default() -> Self {
        Self { state: Mutex::new(State { open: false, items: HashSet::new() }), notify: Notify::new() }
    }
}

impl<T: Hash + Eq> Mailbox<T> {
    /// Asks the loop to look at `item`; dropped while the mailbox is closed.
    pub(crate) fn post(&self, item: T) {
        {
            let mut state = self.lock();
            if !state.open {
                return;
            }
            state.items.insert(item);
        }
        self.notify.notify_one();
    }

    /// Starts taking posts (leadership began), empty.
    pub(crate) fn open(&self) {
        let mut state = self.lock();
        state.open = true;
        state.items = HashSet::new();
    }

    /// Stops taking posts (leadership ended) and frees what was waiting.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        state.items = HashSet::new();
    }

    /// Waits until something was posted, then takes everything posted so far.
    pub(crate) async fn recv(&self) -> HashSet<T> {
        loop {
            {
                let mut state = self.lock();
                if !state.items.is_empty() {
                    return std::mem::take(&mut state.items);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Entries waiting to be taken.
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A set of hints: a panic while holding it leaves nothing worth refusing.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use crate::mailbox::Mailbox;

    #[test]
    fn a_closed_mailbox_keeps_nothing_however_much_is_posted() {
        let mailbox = Mailbox::default();
        for i in 0..100_000u32 {
            mailbox.post(i);
        }
        assert_eq!(mailbox.len(), 0);
    }

    #[test]
    fn repeated_posts_of_one_item_are_one_entry() {
        let mailbox = Mailbox::default();
        mailbox.open();
        for i in 0..100_000u32 {
            mailbox.post(i % 3);
        }
        assert_eq!(mailbox.len(), 3);
        mailbox.close();
        assert_eq!(mailbox.len(), 0);
        mailbox.post(7);
        assert_eq!(mailbox.len(), 0);
    }

    #[tokio::test]
    async fn recv_takes_everything_posted() {
        let mailbox = Mailbox::default();
        mailbox.open();
        mailbox.post(1);
        mailbox.post(2);
        let mut got: Vec<u32> = mailbox.recv().await.into_iter().collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(mailbox.len(), 0);
    }
}
