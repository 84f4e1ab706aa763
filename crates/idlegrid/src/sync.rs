//! Locking a mutex whose holder may have panicked. The state behind every mutex here stays
//! consistent across a panic (each holder finishes or leaves it as it was), so a poisoned lock is
//! taken as it is rather than spreading the panic to every later caller.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
