//! Chapter 7, Processes instead of threads: four exercises.
//!
//! Python gets around the GIL with processes: `multiprocessing` shares the
//! notes' countdown out among workers that each have an interpreter of
//! their own. Share the countdown out fairly and run the shares on threads;
//! keep a pool of long-lived worker processes busy over pipes; build a pool
//! of threads on a channel; and count words with map-reduce.
//!
//! - Book: chapter 7, "Processes instead of threads", section "Exercises".
//! - Graded by `exercises/tests/graded/ch07_pools.rs`:
//!   `cargo course grade ch07`. The process pool's tests run the
//!   `worker` binary of this crate in its `pool` mode (see `course::worker`).
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: shares, jobs and mappers wait at
//! barriers for each other, and the process pool's workers wait until every
//! worker has taken a job, so a version that does one piece at a time times
//! out and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch07_pools")]

use std::collections::HashMap;
use std::hint::black_box;
use std::io;
use std::process::Command;

/// The notes' countdown, `while n > 0: n -= 1`: counts `n` down to zero
/// and returns how many steps that took (which is `n`).
pub fn countdown(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 0 {
        n = black_box(n - 1); // Keep the compiler from skipping the loop.
        steps += 1;
    }
    steps
}

/// Shares `count` out into `parts` shares that differ by at most one and
/// add up to `count`, the larger shares first: `split(10, 4)` is
/// `[3, 3, 2, 2]`. There is always at least one share: `0` parts count as
/// one, so `split(7, 0)` is `[7]`. Exact for every `count`, up to
/// `u64::MAX`: `split(u64::MAX, 3)` is three shares of `u64::MAX / 3`.
pub fn split(count: u64, parts: usize) -> Vec<u64> {
    // TODO(ch07): a base share for everyone, the remainder one by one.
    let _ = (count, parts);
    todo!("ch07: split")
}

/// Counts `count` down in `threads` balanced shares (see [`split`]: `0`
/// threads count as one), each share with `countdown` on a new thread of
/// its own (never on the calling thread, which only waits), all at once,
/// empty shares included. Returns the sum of what the calls of `countdown`
/// returned; if a call panics, `countdown_threads` panics too.
pub fn countdown_threads(
    count: u64,
    threads: usize,
    countdown: impl Fn(u64) -> u64 + Sync,
) -> u64 {
    // TODO(ch07): one scoped thread per share; start them all, then join.
    let _ = (count, threads, countdown);
    todo!("ch07: countdown_threads")
}

/// A pool of long-lived worker processes, like Python's
/// `multiprocessing.Pool`: each worker reads one job per line on its stdin
/// and answers each with one line on its stdout.
#[derive(Debug)]
pub struct ProcessPool {
    // TODO(ch07): the workers: each child and its piped stdin and stdout.
}

impl ProcessPool {
    /// Starts `size` worker processes, each from its own call of `command`
    /// (`size` calls in all), with stdin and stdout piped to the pool and
    /// stderr inherited, so that the workers' messages reach the user.
    /// Panics if `size` is 0. If a worker cannot be started, returns the
    /// error once the workers already started have been waited for, so
    /// that none outlives the failed call.
    pub fn new(
        command: impl Fn() -> Command,
        size: usize,
    ) -> io::Result<ProcessPool> {
        // TODO(ch07): spawn `size` children with piped stdin and stdout.
        let _ = (command, size);
        todo!("ch07: ProcessPool::new")
    }

    /// The process ids of the workers, one per worker.
    pub fn pids(&self) -> Vec<u32> {
        // TODO(ch07): Child::id.
        todo!("ch07: ProcessPool::pids")
    }

    /// Sends each job (one line, without its newline) to a worker and
    /// returns the answers in the order of `jobs`. Every worker takes a new
    /// job as soon as it has answered its last, so all of them are busy at
    /// once. Fails if a job holds a newline or a worker does not answer;
    /// after a failure the workers may be out of step: drop the pool.
    pub fn map(&mut self, jobs: &[String]) -> io::Result<Vec<String>> {
        // TODO(ch07): a queue of (index, job), and a scoped thread per
        // worker that takes jobs from it, sends each, reads the answer.
        let _ = jobs;
        todo!("ch07: ProcessPool::map")
    }
}

impl Drop for ProcessPool {
    /// Closes every worker's stdin, which tells it to finish, and the
    /// pool's end of its stdout, so that a worker blocked writing output
    /// that nobody will read gets a broken pipe instead of waiting forever;
    /// then waits for every worker, so no process outlives the pool.
    fn drop(&mut self) {
        // TODO(ch07): close the stdins and stdouts, then wait for every
        // child.
        todo!("ch07: ProcessPool::drop")
    }
}

/// A fixed number of threads that run the jobs sent to them, in the order
/// they were sent, each job on whichever thread is free.
#[derive(Debug)]
pub struct ThreadPool {
    // TODO(ch07): the job queue's sender and the workers' join handles.
}

impl ThreadPool {
    /// Starts `size` worker threads. Panics if `size` is 0.
    pub fn new(size: usize) -> ThreadPool {
        // TODO(ch07): a crossbeam channel of boxed jobs; `size` threads
        // that run jobs from it until it closes, surviving their panics.
        let _ = size;
        todo!("ch07: ThreadPool::new")
    }

    /// Queues `job` to run on the next free worker thread.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        // TODO(ch07): box the job and send it.
        let _ = job;
        todo!("ch07: ThreadPool::execute")
    }
}

impl Drop for ThreadPool {
    /// Waits for every queued job to finish, however long that takes, then
    /// for every worker to end.
    fn drop(&mut self) {
        // TODO(ch07): close the queue, then join every worker.
        todo!("ch07: ThreadPool::drop")
    }
}

/// The words of `text`, in lower case: the runs of letters and digits
/// between everything else (`"Don't stop"` is `don`, `t`, `stop`).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    if let Some(watch) = WORDS_WATCH.get() {
        watch(text);
    }
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// For the tests only (leave it alone): once set, [`words`] calls it with
/// its `text` on the calling thread, so that a test can see which thread
/// counts which text, and when.
#[doc(hidden)]
pub static WORDS_WATCH: std::sync::OnceLock<fn(&str)> =
    std::sync::OnceLock::new();

/// Counts how often each of the [`words`] of `texts` occurs, with
/// map-reduce: the texts are shared out among `mappers` mapper threads
/// (balanced, like [`split`]: the numbers of texts the mappers get differ
/// by at most one; `0` mappers count as one, and some may get no text),
/// all running at once, each counting its own texts, with one call of
/// `words(text)` per text, and sending its counts on a channel to the
/// calling thread, which adds them up. Each mapper calls `on_map(mapper)`,
/// with its number from `0`, before it counts any text.
pub fn word_count(
    texts: &[&str],
    mappers: usize,
    on_map: impl Fn(usize) + Sync,
) -> HashMap<String, usize> {
    // TODO(ch07): scoped mapper threads that each count their texts and
    // send the counts on a channel; add them up as they arrive.
    let _ = (texts, mappers, on_map);
    todo!("ch07: word_count")
}
