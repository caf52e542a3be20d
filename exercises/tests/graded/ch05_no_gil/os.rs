//! What the trials of chapter 5 ask Linux: whether a thread is asleep, how
//! much CPU time it has used (from `course::grader::task`), and a process
//! in which no new thread can start, or only a few (from
//! `course::grader::spawn_limit`); and a machine with cores to spare, or
//! with one core, as `std::thread::available_parallelism` sees it.

use std::ffi::{c_int, c_long};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use course::grader::spawn_limit::{
    while_no_thread_can_start, while_only_threads_can_start,
};
pub use course::grader::task::{Tid, asleep};

/// The id of the calling thread.
pub fn current_tid() -> Tid {
    course::grader::task::me().tid
}

/// How many cores `sched_getaffinity` says this process may use while a
/// trial pretends the machine is larger ([`with_cores_to_spare`]) or has
/// one core ([`with_one_core`]); 0 the
/// rest of the time, when it says what Linux says.
static PRETENDED_CORES: AtomicUsize = AtomicUsize::new(0);

/// The cores [`with_cores_to_spare`] pretends the machine has: far more
/// than the threads its trials start, so that code that spins only when
/// a core is idle anyway spins there.
pub const PRETENDED: usize = 64;

unsafe extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
}

/// `SYS_sched_getaffinity` of x86-64 Linux.
#[cfg(target_arch = "x86_64")]
const SYS_SCHED_GETAFFINITY: c_long = 204;
/// `SYS_sched_getaffinity` of 64-bit Arm Linux.
#[cfg(target_arch = "aarch64")]
const SYS_SCHED_GETAFFINITY: c_long = 123;

/// This test program's own `sched_getaffinity`, which the linker picks
/// over the C library's, for `std::thread::available_parallelism` to ask:
/// what the C library's says (the same system call, the rest of the mask
/// cleared), except while [`with_cores_to_spare`] runs, when it says
/// [`PRETENDED`] cores, or [`with_one_core`], when it says one.
///
/// # Safety
///
/// As the C library's: `mask` points to `size` writable bytes.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_getaffinity(
    pid: c_int,
    size: usize,
    mask: *mut u8,
) -> c_int {
    let pretended = PRETENDED_CORES.load(Ordering::SeqCst);
    if pretended == 0 {
        // SAFETY: the caller's promise; the call writes at most `size`
        // bytes, and returns how many (or -1, with `errno` set).
        let written = unsafe {
            syscall(SYS_SCHED_GETAFFINITY, c_long::from(pid), size, mask)
        };
        let Ok(written) = usize::try_from(written) else {
            return -1;
        };
        // SAFETY: `written <= size`, so these bytes are the caller's.
        unsafe { ptr::write_bytes(mask.add(written), 0, size - written) };
        return 0;
    }
    // SAFETY: the caller's promise.
    unsafe { ptr::write_bytes(mask, 0, size) };
    for cpu in 0..pretended.min(size * 8) {
        // SAFETY: `cpu / 8 < size`.
        unsafe { *mask.add(cpu / 8) |= 1 << (cpu % 8) };
    }
    0
}

/// Runs `f` while `std::thread::available_parallelism()` says the machine
/// has [`PRETENDED`] cores, many more than the threads `f` starts, as on a
/// large machine: code that spins only when cores are spare spins here too,
/// on a grader of 2 cores. Only the trial's own process is fooled.
pub fn with_cores_to_spare<T>(f: impl FnOnce() -> T) -> T {
    pretending_cores(PRETENDED, f)
}

/// Runs `f` while `std::thread::available_parallelism()` says the machine
/// has one core, as a small grader or container does: a cap on the threads
/// in flight that grows with the cores (1,024 a core, say) is then at its
/// smallest, below the threads a trial starts at once.
pub fn with_one_core<T>(f: impl FnOnce() -> T) -> T {
    pretending_cores(1, f)
}

/// Runs `f` while `sched_getaffinity` says the process may use `cores`
/// cores, then goes back to what Linux says.
fn pretending_cores<T>(cores: usize, f: impl FnOnce() -> T) -> T {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            PRETENDED_CORES.store(0, Ordering::SeqCst);
        }
    }
    PRETENDED_CORES.store(cores, Ordering::SeqCst);
    let _restore = Restore;
    f()
}

/// Room for a `pthread_attr_t`: 56 bytes on x86-64 Linux, 64 on AArch64
/// (the same type as chapter 1's trials declare these functions with).
type Attributes = [u64; 8];

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn pthread_self() -> usize;
    fn pthread_getattr_np(thread: usize, attr: *mut Attributes) -> i32;
    fn pthread_attr_getstacksize(
        attr: *const Attributes,
        size: *mut usize,
    ) -> i32;
    fn pthread_attr_destroy(attr: *mut Attributes) -> i32;
}

/// The size of the calling thread's stack, in bytes, as it was made (for
/// a thread Rust starts: what `Builder::stack_size` asked for, or 2 MiB,
/// rounded up to whole pages). Not for the main thread.
pub fn stack_size() -> usize {
    let mut attributes: Attributes = [0; 8];
    let mut size = 0;
    // SAFETY: `pthread_getattr_np` fills the attributes of the calling
    // thread (`pthread_self`, always valid) into room large enough for
    // them; `pthread_attr_getstacksize` reads them into a valid place; and
    // `pthread_attr_destroy` frees what `pthread_getattr_np` allocated.
    unsafe {
        assert_eq!(pthread_getattr_np(pthread_self(), &mut attributes), 0);
        let got = pthread_attr_getstacksize(&attributes, &mut size);
        pthread_attr_destroy(&mut attributes);
        assert_eq!(got, 0, "pthread_attr_getstacksize failed");
    }
    size
}
