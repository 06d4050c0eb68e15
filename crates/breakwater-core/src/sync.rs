//! The synchronisation primitives the shared state is built from, in one place so that
//! the model checker can replace them.
//!
//! Normal builds get the real ones: `std`'s `Arc` and atomics, `parking_lot`'s locks;
//! this module only re-exports them, so the code compiles exactly as if it named them
//! itself. Under `--cfg loom` (the `tests/loom.rs` suite, see `.ci/run`) they are
//! loom's instrumented versions, whose every access is a point where loom may switch
//! threads: `loom::sync`'s `Arc` and atomics, and its `std`-style locks wrapped so that
//! `lock`, `read` and `write` return the guard directly, as `parking_lot`'s do (loom's
//! locks are never poisoned: a panic fails the model instead).

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use self::model::{Mutex, RwLock};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
mod model {
    use std::sync::PoisonError;

    use loom::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

    /// loom's mutex with `parking_lot`'s `lock`.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// loom's reader-writer lock with `parking_lot`'s `read` and `write`.
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> RwLock<T> {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
