//! Whether a concrete type is `Send` or `Sync`, as a value a trial can
//! assert, both ways: `MyArc<u32>` must be `Send`, and `MyArc<Rc<u32>>`
//! must not be. A trial cannot write code that fails to compile (the
//! whole suite would not build), so the answer is read off method
//! resolution instead: an inherent associated constant whose bounds hold
//! is preferred over a trait's, and only the trait's exists otherwise.
//! It works for concrete types only, which is what a trial names.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use course::{is_send, is_sync};
//!
//! assert!(is_send!(Vec<u8>) && is_sync!(Vec<u8>));
//! assert!(!is_send!(Rc<u8>) && !is_sync!(Rc<u8>));
//! assert!(is_send!(Cell<u8>) && !is_sync!(Cell<u8>));
//! ```

use std::marker::PhantomData;

/// Ask `Probe::<T>::SEND` and `Probe::<T>::SYNC`.
#[derive(Debug)]
pub struct Probe<T: ?Sized>(PhantomData<T>);

/// The answer when `T` is not `Send`: the trait's constant.
pub trait NotSend {
    /// `T` is not `Send`.
    const SEND: bool = false;
}

/// The answer when `T` is not `Sync`: the trait's constant.
pub trait NotSync {
    /// `T` is not `Sync`.
    const SYNC: bool = false;
}

impl<T: ?Sized> NotSend for Probe<T> {}
impl<T: ?Sized> NotSync for Probe<T> {}

impl<T: ?Sized + Send> Probe<T> {
    /// `T` is `Send`.
    pub const SEND: bool = true;
}

// A second inherent block: `SYNC` needs its own bound.
impl<T: ?Sized + Sync> Probe<T> {
    /// `T` is `Sync`.
    pub const SYNC: bool = true;
}

/// Whether a concrete type is `Send` (see `course::grader::traits`).
#[macro_export]
macro_rules! is_send {
    ($t:ty) => {{
        #[allow(unused_imports)]
        use $crate::grader::traits::NotSend as _;
        $crate::grader::traits::Probe::<$t>::SEND
    }};
}

/// Whether a concrete type is `Sync` (see `course::grader::traits`).
#[macro_export]
macro_rules! is_sync {
    ($t:ty) => {{
        #[allow(unused_imports)]
        use $crate::grader::traits::NotSync as _;
        $crate::grader::traits::Probe::<$t>::SYNC
    }};
}
