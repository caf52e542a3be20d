//! `spawn_all` and `parallel_sum` give their threads the stack
//! `thread::spawn` gives, whatever `RUST_MIN_STACK` says: with it set to
//! 16 MiB, a stack size spelled out (4 MiB "to be safe", or 8 MiB) is too
//! small.

use std::sync::atomic::{AtomicUsize, Ordering};

use exercises::ch01_threads::{parallel_sum, spawn_all};

use super::{STACK_SLACK, stack_size_of_this_thread};
use course::grader::stack::default_stack_bytes;

/// The stack these trials have new threads get by default: more than any
/// roomy size a solution might spell out, and few enough threads (four)
/// that their stacks fit in what a trial may map.
const BIG_DEFAULT: usize = 16 << 20;

/// Sets `RUST_MIN_STACK` to [`BIG_DEFAULT`] unless it is set already, and
/// returns the stack a new thread then gets by default. As
/// `raise_the_default_stack` does, it changes nothing unless its thread is
/// the process's only one (std reads the variable once, at the first
/// thread it starts without a size of its own).
fn set_a_big_default_stack() -> usize {
    let alone = std::fs::read_dir("/proc/self/task")
        .is_ok_and(|threads| threads.count() == 1);
    if alone && std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: this process has no thread but this one, so nothing can
        // read or write the environment meanwhile.
        unsafe { std::env::set_var("RUST_MIN_STACK", BIG_DEFAULT.to_string()) };
    }
    default_stack_bytes()
}

/// Four jobs report the size of their thread's stack, which must be at
/// least the 16 MiB that `thread::spawn` gives here.
pub(super) fn gives_each_job_the_default_stack() {
    // First thing: no thread has been started yet.
    let default = set_a_big_default_stack();
    let jobs: Vec<fn() -> usize> = vec![stack_size_of_this_thread; 4];
    let smallest = spawn_all(jobs).into_iter().min().unwrap_or(0);
    assert!(
        smallest + STACK_SLACK >= default,
        "with RUST_MIN_STACK set to {default} bytes, a job's thread had a \
         stack of {smallest} bytes, less than the {default} that \
         thread::spawn gives: a job may need all of it, and overflowing a \
         stack aborts the whole process (leave the stack size alone, rather \
         than spell out a size that looks roomy: thread::spawn gives \
         RUST_MIN_STACK bytes when it is set)"
    );
}

/// Four chunks report the size of their thread's stack, which must be at
/// least the 16 MiB that `thread::spawn` gives here.
pub(super) fn gives_each_chunk_the_default_stack() {
    // First thing: no thread has been started yet.
    let default = set_a_big_default_stack();
    let data: Vec<u64> = (1..=8).collect();
    let smallest = AtomicUsize::new(usize::MAX);
    let total = parallel_sum(&data, 4, |chunk| {
        smallest.fetch_min(stack_size_of_this_thread(), Ordering::SeqCst);
        chunk.iter().sum()
    });
    assert_eq!(total, 36, "the sum of 1..=8 on 4 threads");
    let smallest = smallest.into_inner();
    assert!(
        smallest + STACK_SLACK >= default,
        "with RUST_MIN_STACK set to {default} bytes, a chunk's thread had a \
         stack of {smallest} bytes, less than the {default} that \
         thread::spawn gives: sum_chunk may need all of it, and overflowing \
         a stack aborts the whole process (leave the stack size alone, \
         rather than spell out a size that looks roomy: thread::spawn and \
         Scope::spawn give RUST_MIN_STACK bytes when it is set)"
    );
}
