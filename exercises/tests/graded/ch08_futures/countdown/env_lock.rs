//! std's lock of the environment, held by a thread for as long as a trial
//! likes: `std::env::var` and its kin take it to read, `set_var` and
//! `remove_var` to write, and hold it for the length of one call of the C
//! library. To stretch that call, this binary defines `setenv` itself, in
//! place of the C library's (a definition in the program comes before the
//! shared library's, and std calls `setenv` under the lock): a thread that
//! asked for it runs a hook there, and every other call goes on to the C
//! library's `setenv` unchanged.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

// The C library's (in glibc's `libc.so` since 2.34, and in `libdl`, which
// std links on Linux, before).
unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// `RTLD_NEXT`: `dlsym` looks past this program, in the libraries after it.
const RTLD_NEXT: *mut c_void = -1_isize as *mut c_void;

/// The C library's `setenv`, found once.
static NEXT_SETENV: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// What this binary's `setenv` calls on this thread, in place of the C
/// library's: set by [`while_the_environment_is_locked`], taken at the
/// first call. A pointer, so that the slot needs no destructor.
type Hook = *const (dyn Fn() + Sync + 'static);

thread_local! {
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// `setenv(3)`, which std calls (under its write lock of the environment)
/// for `set_var`: the hook of this thread if it has one, or else the C
/// library's `setenv`.
///
/// # Safety
///
/// As the C library's: `name` and `value` are C strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setenv(
    name: *const c_char,
    value: *const c_char,
    overwrite: c_int,
) -> c_int {
    if let Ok(Some(hook)) = HOOK.try_with(Cell::take) {
        // SAFETY: `while_the_environment_is_locked` takes the hook out of
        // the slot before the closure it points to goes out of scope.
        unsafe { (*hook)() };
        return 0;
    }
    let mut next = NEXT_SETENV.load(Ordering::Acquire);
    if next.is_null() {
        // SAFETY: `dlsym` with `RTLD_NEXT` and a C string has no other
        // preconditions.
        next = unsafe { dlsym(RTLD_NEXT, c"setenv".as_ptr()) };
        assert!(!next.is_null(), "the C library's setenv");
        NEXT_SETENV.store(next, Ordering::Release);
    }
    // SAFETY: `next` is the C library's `setenv`, of this very signature,
    // called with the caller's arguments.
    let next: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        c_int,
    ) -> c_int = unsafe { std::mem::transmute(next) };
    // SAFETY: the caller's promises for `setenv` hold for the C library's.
    unsafe { next(name, value, overwrite) }
}

/// Runs `hook` on this thread while it holds std's write lock of the
/// environment: no other thread can read or change an environment
/// variable through std until `hook` returns. (Nothing is set.)
pub(crate) fn while_the_environment_is_locked(hook: &(dyn Fn() + Sync)) {
    /// Clears the slot as this returns or unwinds, while `hook` still
    /// lives.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            HOOK.with(|slot| slot.set(None));
        }
    }
    // SAFETY: only the lifetime changes; `Clear` takes the pointer out of
    // the slot before `hook` goes out of scope, and `setenv` calls it only
    // on this thread, inside `set_var` below.
    let hook: Hook =
        unsafe { std::mem::transmute::<*const (dyn Fn() + Sync), Hook>(hook) };
    HOOK.with(|slot| slot.set(Some(hook)));
    let _clear = Clear;
    // SAFETY: `set_var` is unsafe because another thread may read the
    // environment through the C library meanwhile; this one changes
    // nothing (the hook runs in place of the C library's `setenv`).
    unsafe { std::env::set_var("COURSE_GRADER_ENV_LOCK", "held") };
    assert!(
        HOOK.with(Cell::get).is_none(),
        "std's set_var called this binary's setenv, which ran the hook"
    );
}
