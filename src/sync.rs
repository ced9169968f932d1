//! The synchronisation the store's small lock-free protocols use, in one place so that a model
//! checker can stand in for it (`--cfg loom`): the cap's atomics, the eviction order's mutex,
//! and the subscriber list's `ArcSwap`. (The maps by key have their loom stand-in in
//! `keymap`.)

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// A newcomer waiting for another of its key yields: under loom, to loom's scheduler, which
/// then runs the thread it waits for.
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;

#[cfg(not(loom))]
pub(crate) use arc_swap::ArcSwap;

#[cfg(loom)]
pub(crate) use loom_swap::ArcSwap;

/// The two `ArcSwap` operations the subscriber list uses, on a loom lock. Loom cannot see
/// inside arc-swap, so the model checks the list's protocol against what those operations
/// promise: `load` sees one whole list, and `rcu` retries until no other update came between
/// its read and its write.
#[cfg(loom)]
mod loom_swap {
    use std::fmt;
    use std::sync::Arc;

    use loom::sync::RwLock;

    pub(crate) struct ArcSwap<T> {
        current: RwLock<Arc<T>>,
        /// Off only in the mutation the model must catch: a write that ignores an update
        /// made since its read.
        retries: bool,
    }

    impl<T: Default> Default for ArcSwap<T> {
        fn default() -> Self {
            ArcSwap {
                current: RwLock::new(Arc::new(T::default())),
                retries: true,
            }
        }
    }

    impl<T> fmt::Debug for ArcSwap<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("ArcSwap(loom)")
        }
    }

    impl<T> ArcSwap<T> {
        /// `rcu` broken the obvious way: read, build, write, whatever came between.
        #[cfg(test)]
        pub(crate) fn last_writer_wins(self) -> Self {
            ArcSwap {
                retries: false,
                ..self
            }
        }

        pub(crate) fn load(&self) -> Arc<T> {
            Arc::clone(&self.current.read().expect("not poisoned"))
        }

        pub(crate) fn rcu<R: Into<Arc<T>>>(&self, mut update: impl FnMut(&Arc<T>) -> R) {
            loop {
                let seen = self.load();
                let new = update(&seen).into();
                let mut current = self.current.write().expect("not poisoned");
                if !self.retries || Arc::ptr_eq(&current, &seen) {
                    *current = new;
                    return;
                }
            }
        }
    }
}
