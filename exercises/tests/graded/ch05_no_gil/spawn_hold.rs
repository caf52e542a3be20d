//! A thread held just after it has started another: to pin the order of
//! the bands' threads, this binary defines `pthread_create` itself, in
//! place of the C library's (a definition in the program comes before the
//! shared library's, and std starts every thread with it): a thread that
//! asked for it runs a hook there once the new thread exists, and every
//! other call goes on to the C library's `pthread_create` unchanged.

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

/// The C library's `pthread_create`, found once.
static NEXT_PTHREAD_CREATE: AtomicPtr<c_void> =
    AtomicPtr::new(std::ptr::null_mut());

/// What this binary's `pthread_create` calls on this thread once it has
/// started a thread: set by [`after_this_thread_starts_one`], taken at the
/// first thread started. A pointer, so that the slot needs no destructor.
type Hook = *const (dyn Fn() + Sync + 'static);

thread_local! {
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// The start routine of a thread, as `pthread_create(3)` takes it.
type Start = extern "C" fn(*mut c_void) -> *mut c_void;

/// `pthread_create(3)`, which std calls to start every thread: the C
/// library's, then, if it started the thread, the hook of this thread if
/// it has one.
///
/// # Safety
///
/// As the C library's: `thread` is writable, and `attributes` is null or
/// initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut usize,
    attributes: *const c_void,
    start: Start,
    argument: *mut c_void,
) -> c_int {
    let mut next = NEXT_PTHREAD_CREATE.load(Ordering::Acquire);
    if next.is_null() {
        // SAFETY: `dlsym` with `RTLD_NEXT` and a C string has no other
        // preconditions.
        next = unsafe { dlsym(RTLD_NEXT, c"pthread_create".as_ptr()) };
        assert!(!next.is_null(), "the C library's pthread_create");
        NEXT_PTHREAD_CREATE.store(next, Ordering::Release);
    }
    // SAFETY: `next` is the C library's `pthread_create`, of this very
    // signature.
    let next: unsafe extern "C" fn(
        *mut usize,
        *const c_void,
        Start,
        *mut c_void,
    ) -> c_int = unsafe { std::mem::transmute(next) };
    // SAFETY: the caller's promises for `pthread_create` hold for the C
    // library's.
    let status = unsafe { next(thread, attributes, start, argument) };
    if status == 0
        && let Ok(Some(hook)) = HOOK.try_with(Cell::take)
    {
        // SAFETY: `after_this_thread_starts_one` takes the hook out of the
        // slot before the closure it points to goes out of scope.
        unsafe { (*hook)() };
    }
    status
}

/// Runs `f`, in which the first thread this thread starts is started, and
/// then this thread runs `hook` before it goes on (to start the next one,
/// say): so a trial can let the first thread run, or end, before there is
/// a second. If `hook` panics, the process aborts (a panic must not unwind
/// out of a C function).
pub fn after_this_thread_starts_one<R>(
    hook: &(dyn Fn() + Sync),
    f: impl FnOnce() -> R,
) -> R {
    /// Clears the slot as `f` returns or unwinds, while `hook` still
    /// lives.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            HOOK.with(|slot| slot.set(None));
        }
    }
    // SAFETY: only the lifetime changes; `Clear` takes the pointer out of
    // the slot before `hook` goes out of scope, and `pthread_create` calls
    // it only on this thread, inside `f`.
    let hook: Hook =
        unsafe { std::mem::transmute(hook as *const (dyn Fn() + Sync)) };
    HOOK.with(|slot| slot.set(Some(hook)));
    let _clear = Clear;
    f()
}
