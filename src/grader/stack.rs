//! For trials that check the stack a solution's threads get: raising the
//! stack that a new thread gets by default, so that a thread whose stack
//! size is spelled out as "the default" (2 MiB) shows up as too small.
//!
//! The standard library gives a thread started without a stack size of its
//! own `RUST_MIN_STACK` bytes when that variable is set, else 2 MiB, and it
//! reads the variable once, when it first starts such a thread. The grader
//! unsets it for every trial (see [`crate::grader`]); each trial runs in a
//! process of its own, so a trial that sets it first thing, while its
//! thread is the process's only one, sets it for itself alone.

/// The stack that [`raise_the_default_stack`] has new threads get: 2.5 MiB,
/// more than std's 2 MiB. (1100 threads with this stack still fit in the
/// 4 GiB a trial may map.)
pub const RAISED_STACK: usize = 5 << 19;

/// The stack a thread started without a stack size of its own gets:
/// `RUST_MIN_STACK` bytes if that variable is set, else 2 MiB (std's
/// default).
pub fn default_stack_bytes() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(2 << 20)
}

/// Sets `RUST_MIN_STACK` to [`RAISED_STACK`] unless it is set already, and
/// returns the stack a new thread then gets by default. Call it first thing
/// in a trial, while its thread is the process's only one: otherwise it
/// changes nothing (another thread may read the environment meanwhile, and
/// std may have read the variable already), and returns the stack a new
/// thread gets as things are.
pub fn raise_the_default_stack() -> usize {
    let alone = std::fs::read_dir("/proc/self/task")
        .is_ok_and(|threads| threads.count() == 1);
    if alone && std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: this process has no thread but this one, so nothing can
        // read or write the environment meanwhile.
        unsafe {
            std::env::set_var("RUST_MIN_STACK", RAISED_STACK.to_string())
        };
    }
    default_stack_bytes()
}
