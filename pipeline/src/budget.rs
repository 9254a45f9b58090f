//! One CPU budget per process: stage nodes and the units inside them draw from the same
//! permits, so `--jobs N` means at most N computations at once, not N stages times N units.
//!
//! A running node holds one permit and lends it to the first of its unit workers, which
//! therefore never waits; further unit workers take permits other nodes are not using, and
//! give up when their node has no units left.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub(crate) struct Budget {
    free: Mutex<usize>,
    released: Condvar,
}

/// A permit, returned to the budget when dropped.
pub(crate) struct Permit<'a> {
    budget: &'a Budget,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.budget.free.lock().expect("budget lock") += 1;
        self.budget.released.notify_all();
    }
}

/// How often a waiting unit worker rechecks whether its node still has units left.
const RECHECK: Duration = Duration::from_millis(50);

impl Budget {
    pub fn new(permits: usize) -> Budget {
        Budget {
            free: Mutex::new(permits.max(1)),
            released: Condvar::new(),
        }
    }

    /// Waits for a permit.
    pub fn acquire(&self) -> Permit<'_> {
        self.acquire_unless(|| false).expect("never gives up")
    }

    /// Waits for a permit, unless `give_up` turns true first.
    pub fn acquire_unless(&self, give_up: impl Fn() -> bool) -> Option<Permit<'_>> {
        let mut free = self.free.lock().expect("budget lock");
        loop {
            if give_up() {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(Permit { budget: self });
            }
            free = self
                .released
                .wait_timeout(free, RECHECK)
                .expect("budget lock")
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_holders_than_permits() {
        let budget = Budget::new(2);
        let holders = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    let _permit = budget.acquire();
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    holders.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn waiting_stops_when_the_work_is_gone() {
        let budget = Budget::new(1);
        let _held = budget.acquire();
        assert!(budget.acquire_unless(|| true).is_none());
    }
}
