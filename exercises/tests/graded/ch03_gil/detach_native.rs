//! What the `detach` trials need of the C library and of the environment:
//! the stack a new thread gets by default, the size of a thread's own
//! stack, and a thread kept to one CPU.

use std::panic::{self, AssertUnwindSafe};
use std::thread;

use course::grader::stack;

/// The stack a new thread gets by default in
/// `takes_the_gil_before_and_after`, which sets `RUST_MIN_STACK` to it: 16
/// MiB, more than any stack size a solution could spell out and still
/// start the 1,280 threads of `runs_native_jobs_at_once` in the 4 GiB a
/// trial may map (4 MiB each is too much already).
pub(super) const LARGE_DEFAULT_STACK: usize = 16 << 20;

/// What `RUST_MIN_STACK` says once the standard library has read it, in
/// `takes_the_gil_before_and_after`: 1.5 MiB, less than the stack std
/// gives, and less than 2 MiB, yet room for a job's 1 MiB.
const LATER_MIN_STACK: usize = 3 << 19;

/// Sets `RUST_MIN_STACK` to `bytes`, as a user whose native code needs a
/// deep stack may, and returns the stack a new thread then gets by
/// default. Then starts a thread, so that the standard library reads the
/// variable (it does once per process, when it starts its first thread
/// without a stack size of its own), and sets the variable to
/// `LATER_MIN_STACK`, which no new thread gets from std any more: only a
/// stack size read from it by hand. First thing in a trial, while its
/// thread is the process's only one; otherwise it changes nothing (see
/// `stack::raise_the_default_stack`).
pub(super) fn set_the_default_stack(bytes: usize) -> usize {
    let alone = std::fs::read_dir("/proc/self/task")
        .is_ok_and(|threads| threads.count() == 1);
    if alone && std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: this process has no thread but this one, so nothing can
        // read or write the environment meanwhile.
        unsafe { std::env::set_var("RUST_MIN_STACK", bytes.to_string()) };
        let default = stack::default_stack_bytes();
        thread::spawn(|| ()).join().expect("an empty thread failed");
        // SAFETY: the only other thread this process has had has ended
        // (joined above), so nothing can read or write the environment
        // meanwhile.
        unsafe {
            std::env::set_var("RUST_MIN_STACK", LATER_MIN_STACK.to_string())
        };
        return default;
    }
    stack::default_stack_bytes()
}

/// Room for a `pthread_attr_t`: 56 bytes on x86-64 Linux, 64 on AArch64.
type PthreadAttr = [u64; 8];

/// Linux's `cpu_set_t`: one bit per CPU, 1024 of them.
type CpuMask = [u64; 16];

// The C library's, which every Rust program on Linux links (declared as
// the other chapters' trials declare them: one test binary holds them all).
unsafe extern "C" {
    fn pthread_self() -> usize;
    fn pthread_getattr_np(thread: usize, attr: *mut PthreadAttr) -> i32;
    fn pthread_attr_getstack(
        attr: *const PthreadAttr,
        address: *mut *mut u8,
        size: *mut usize,
    ) -> i32;
    fn pthread_attr_destroy(attr: *mut PthreadAttr) -> i32;
    fn sched_getaffinity(pid: i32, size: usize, mask: *mut CpuMask) -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const CpuMask) -> i32;
}

/// The size of the calling thread's stack, as the C library gave it (a
/// stack it kept from an ended thread may be larger than asked for, never
/// smaller); `None` if it does not say.
pub(super) fn own_stack_size() -> Option<usize> {
    let mut attr: PthreadAttr = [0; 8];
    // SAFETY: `attr` is room enough for a `pthread_attr_t`, which
    // `pthread_getattr_np` initialises for the calling thread.
    if unsafe { pthread_getattr_np(pthread_self(), &mut attr) } != 0 {
        return None;
    }
    let (mut addr, mut size) = (std::ptr::null_mut(), 0);
    // SAFETY: `attr` was initialised above; the two out-pointers are valid.
    let status = unsafe { pthread_attr_getstack(&attr, &mut addr, &mut size) };
    // SAFETY: `attr` was initialised above and is not used again.
    unsafe { pthread_attr_destroy(&mut attr) };
    (status == 0).then_some(size)
}

/// Runs `f` with the calling thread allowed on one CPU only, so that
/// `std::thread::available_parallelism()` says 1, as on a single-core
/// machine; restores the thread's CPUs afterwards. Just runs `f` where the
/// CPUs cannot be read or set.
pub(super) fn on_one_cpu<T>(f: impl FnOnce() -> T) -> T {
    let mut all: CpuMask = [0; 16];
    let size = std::mem::size_of::<CpuMask>();
    // SAFETY: `all` is a writable mask of `size` bytes; pid 0 is the
    // calling thread.
    if unsafe { sched_getaffinity(0, size, &mut all) } < 0 {
        return f();
    }
    let Some(word) = all.iter().position(|&bits| bits != 0) else {
        return f();
    };
    let mut one: CpuMask = [0; 16];
    one[word] = 1 << all[word].trailing_zeros();
    // SAFETY: `one` is a mask of `size` bytes naming a CPU the thread may
    // use already.
    let narrowed = unsafe { sched_setaffinity(0, size, &one) } == 0;
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    if narrowed {
        // SAFETY: `all` is the mask read above, of `size` bytes.
        unsafe { sched_setaffinity(0, size, &all) };
    }
    result.unwrap_or_else(|payload| panic::resume_unwind(payload))
}
