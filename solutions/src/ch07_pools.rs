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

use std::any::Any;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::{self, BufRead, BufReader, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::{self, JoinHandle};

use crossbeam::channel::{self, Sender};

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
///
/// # Graded promises
///
/// - Gives `parts` shares that differ by at most one, add up to `count` and
///   come larger first: `split(10, 4)` is `[3, 3, 2, 2]`, `split(3, 5)` is
///   `[1, 1, 1, 0, 0]` and `split(0, 2)` is `[0, 0]`. Trial:
///   `ch07::countdown::split_is_balanced`.
/// - Exact for every `count` up to `u64::MAX`, above 2^53 too, where a float
///   rounds: `split(u64::MAX, 3)` is three shares of `u64::MAX / 3`, and
///   `split(u64::MAX, 64)` is 63 shares of `u64::MAX / 64 + 1` and one of
///   `u64::MAX / 64`. Trial: `ch07::countdown::split_is_exact_for_huge_counts`.
/// - `0` parts count as one: `split(7, 0)` is `[7]` and `split(0, 0)` is `[0]`.
///   Trial: `ch07::countdown::zero_parts_count_as_one`.
pub fn split(count: u64, parts: usize) -> Vec<u64> {
    // No parts at all would leave `count` uncounted: `0` counts as one.
    let parts = parts.max(1) as u64;
    // `count / parts` for everyone, and the remainder one by one to the
    // first shares: no share gets more than one extra. Integer division
    // and remainder are exact for every `u64`, and nothing here can
    // overflow (no float, which rounds above 2^53, and no `part * count`).
    let (base, extra) = (count / parts, count % parts);
    (0..parts)
        .map(|part| base + u64::from(part < extra))
        .collect()
}

/// Counts `count` down in `threads` balanced shares (see [`split`]: `0`
/// threads count as one), each share with `countdown` on a new thread of
/// its own (never on the calling thread, which only waits), all at once,
/// empty shares included. Returns the sum of what the calls of `countdown`
/// returned; if a call panics, `countdown_threads` panics too.
///
/// Not graded: a cap on the threads that lies above the 1100 the trials
/// ask for (a thousand, or four per core on a machine of more than 275
/// cores): no cap is right, but a trial cannot start more threads than
/// every grading machine allows.
///
/// # Graded promises
///
/// - Calls `countdown` once for each share of `split(count, threads)`, with
///   that share, empty shares included: `countdown_threads(2, 4, ..)` calls it
///   with `1`, `1`, `0` and `0`, in any order. Returns the sum of what the
///   calls returned, not `count`: with a `countdown` that returns
///   `2 * share + 1`, `countdown_threads(10, 4, ..)` returns `24`. (When each
///   call returns its share, as the notes' `countdown` does, the sum is
///   `count`.) A count of `0` is no shortcut: `countdown_threads(0, 4, ..)`
///   calls it four times, with `0`. So too with 1100 threads, far more than
///   there are cores: 1100 calls, one per share (no cap on the threads, not
///   even one by the number of cores). Trial:
///   `ch07::countdown::counts_every_share_once`.
/// - `0` threads count as one: `countdown_threads(7, 0, ..)` calls `countdown`
///   once, with `7`, and returns `7`. Trial:
///   `ch07::countdown::zero_parts_count_as_one`.
/// - Each share is counted on a new thread of its own, never on the calling
///   thread, even when there is only one share (`0` threads too), and even
///   when the share is empty (`countdown(0)` gets a thread as well), and
///   even when a share's thread cannot start: then `countdown_threads`
///   panics (as `Scope::spawn` does) rather than count that share itself.
///   Trial: `ch07::countdown::counts_each_share_on_a_thread_of_its_own`.
/// - All the shares are counted at the same time: the calls of `countdown` run
///   at once, 4 of them, and 1100 too. Trial:
///   `ch07::countdown::counts_the_shares_at_once`.
/// - If a call of `countdown` panics, `countdown_threads` panics too, instead
///   of returning a count, whatever that panic carries: a message, or any
///   other value (`panic_any`). Passing the panic on as it is
///   (`resume_unwind`) is best; a new panic of its own, with the message,
///   is not graded as wrong. Trial: `ch07::countdown::passes_a_panic_on`.
pub fn countdown_threads(
    count: u64,
    threads: usize,
    countdown: impl Fn(u64) -> u64 + Sync,
) -> u64 {
    let countdown = &countdown;
    thread::scope(|scope| {
        // Every thread is started before any is joined: joining inside this
        // loop would count the shares one after another. Every share gets a
        // thread, the last one too: the calling thread counts nothing, it
        // only joins.
        let handles: Vec<_> = split(count, threads)
            .into_iter()
            .map(|share| scope.spawn(move || countdown(share)))
            .collect();
        handles
            .into_iter()
            // A joined thread's panic comes back as an `Err`, which
            // `thread::scope` no longer reports: it must not be taken for a
            // count (say 0). The panic goes on as it was, message and all,
            // rather than as a new panic that hides it.
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|payload| panic::resume_unwind(payload))
            })
            .sum()
    })
}

/// A pool of long-lived worker processes, like Python's
/// `multiprocessing.Pool`: each worker reads one job per line on its stdin
/// and answers each with one line on its stdout.
#[derive(Debug)]
pub struct ProcessPool {
    /// Started once, in `new`, and reused by every `map`: starting a
    /// process costs far more than sending it a line.
    workers: Vec<Worker>,
}

/// One worker process and the two ends of its pipes that the pool holds.
#[derive(Debug)]
struct Worker {
    /// Its stdin stays in here until `Drop` takes and closes it.
    child: Child,
    /// Buffered, to read the answers a line at a time.
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(mut command: Command) -> io::Result<Worker> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Worker {
            child,
            stdout: BufReader::new(stdout),
        })
    }

    /// Sends one job and waits for its answer.
    fn ask(&mut self, job: &str) -> io::Result<String> {
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        // The job and its newline in one buffer, sent whole: `write_all`
        // writes again until every byte is in the pipe, where a single
        // `write` may take only part of it (a pipe holds a few KiB, and a
        // signal cuts a blocked `write` short).
        stdin.write_all(format!("{job}\n").as_bytes())?;
        let mut reply = String::new();
        // Zero bytes means the worker closed its stdout: it died or quit,
        // and the job has no answer. An empty reply would be a lie.
        if self.stdout.read_line(&mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("worker {} exited before answering", self.child.id()),
            ));
        }
        // Only a newline ends an answer: a reply without one is part of a
        // line that the worker wrote before it exited, not an answer.
        if !reply.ends_with('\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "worker {} exited partway through its answer",
                    self.child.id()
                ),
            ));
        }
        Ok(reply.trim_end_matches('\n').to_string())
    }
}

impl ProcessPool {
    /// Starts `size` worker processes, each from its own call of `command`
    /// (`size` calls in all), with stdin and stdout piped to the pool and
    /// stderr left as the `Command` has it: inherited, so that the
    /// workers' messages reach the user, unless the call chose a stderr of
    /// its own, which it keeps (the pool sets only stdin and stdout, never
    /// stderr, not even to `Stdio::inherit()`).
    /// Panics if `size` is 0, in every build: a release build too, which
    /// leaves `debug_assert!`s out and would return a pool of no workers.
    /// The trials run debug builds only, so a check that only debug builds
    /// make (a `debug_assert!`) passes them, but it is wrong, and not
    /// graded. If a worker cannot be started, returns the
    /// error once the workers already started have been stopped as
    /// dropping the pool stops them (their stdins closed, which lets them
    /// finish) and waited for, so that none outlives the failed call.
    ///
    /// # Graded promises
    ///
    /// - Starts `size` distinct worker processes, children of the calling
    ///   process, with `size` calls of `command`, one per worker, each worker
    ///   from the `Command` that its call returned, as it was built: with the
    ///   variables that call set, and the rest of the caller's environment
    ///   (no `env_clear`), and no variable that the call did not set or
    ///   set otherwise (no `PYTHONUNBUFFERED=1` in place of the `0` it
    ///   chose, nor where it chose none), in the working directory that
    ///   call chose (the pool chooses none), in the caller's process group
    ///   (the pool puts no worker in a group of its own, where a Ctrl-C
    ///   meant for the caller's group would miss it), and with nothing else
    ///   changed but stdin and stdout; each worker's stderr is the
    ///   caller's own (inherited, not piped), or, where the call chose a
    ///   stderr of its own (a file, say), that one. Trial:
    ///   `ch07::process_pool::starts_size_long_lived_workers`.
    /// - Panics if `size` is `0`. Trial:
    ///   `ch07::process_pool::rejects_a_size_of_zero`.
    /// - If a worker cannot be started (its program does not exist, say),
    ///   returns the error that starting it gave, itself, not a new error that
    ///   wraps it (of kind `NotFound` for a program that does not exist, and
    ///   with the same message and `raw_os_error`, `ENOENT`: a new error that
    ///   keeps the kind but adds words of its own is not that error), and
    ///   by then every worker already started has been let finish, not killed,
    ///   and waited for: none is left running, or exited but unwaited for (a
    ///   zombie). Trial:
    ///   `ch07::process_pool::leaves_no_worker_behind_when_a_spawn_fails`.
    /// - The same holds when the workers already started never read their
    ///   stdin and are blocked writing more output than a pipe holds: `new`
    ///   stops them as the drop does, the pool's end of their stdouts closed
    ///   too, and returns the error. Trial:
    ///   `ch07::process_pool::stops_a_worker_blocked_on_a_full_pipe`.
    pub fn new(
        command: impl Fn() -> Command,
        size: usize,
    ) -> io::Result<ProcessPool> {
        assert!(size >= 1, "a process pool needs at least one worker");
        let mut pool = ProcessPool {
            workers: Vec::with_capacity(size),
        };
        for _ in 0..size {
            // If a later worker fails to start, `?` drops the pool, and its
            // `Drop` waits for the workers that did start.
            pool.workers.push(Worker::start(command())?);
        }
        Ok(pool)
    }

    /// The process ids of the workers, one per worker.
    ///
    /// # Graded promises
    ///
    /// - Gives one distinct id per worker: the process ids of the workers that
    ///   `new` started, the same before and after any `map`, one that failed
    ///   too: a worker that died stays in the pool, its id too, until the
    ///   pool is dropped, which waits for it. Trial:
    ///   `ch07::process_pool::starts_size_long_lived_workers`.
    pub fn pids(&self) -> Vec<u32> {
        self.workers
            .iter()
            .map(|worker| worker.child.id())
            .collect()
    }

    /// Sends each job (one line, without its newline) to a worker and
    /// returns the answers in the order of `jobs`. Every worker takes a new
    /// job as soon as it has answered its last, so all of them are busy at
    /// once. Fails if a job holds a newline, and then before it sends any
    /// job, so that the workers stay in step; fails too if a worker does not
    /// answer, and after that the workers may be out of step: drop the pool.
    ///
    /// # Graded promises
    ///
    /// - Every `map` sends its jobs to the workers that `new` started, never to
    ///   new processes: each answer comes from one of them, `map` after `map`.
    ///   Trial: `ch07::process_pool::starts_size_long_lived_workers`.
    /// - Returns one answer per job, in the order of `jobs`, not in the order
    ///   the jobs finish; each answer is the line the worker answered, without
    ///   its newline, and only that: a `\r` before the newline stays in the
    ///   answer. An empty job is a job like any other, sent to a worker, which
    ///   answers it; an empty line (a `\n` alone) is an answer like any
    ///   other, the empty string, not a worker that has gone. Only `\n` ends a line: a job that holds a `\r`, a form
    ///   feed or a U+2028 is one line like any other, sent and answered. An
    ///   answer that is not UTF-8 makes `map` fail with an error, not
    ///   panic, also with jobs left that no worker will now take. No jobs
    ///   give no answers. Trial:
    ///   `ch07::process_pool::returns_answers_in_job_order`.
    /// - Sends each job whole, its newline included, however long it is: a
    ///   `write` to a pipe may take only part of what it is given (a pipe holds
    ///   a few KiB, and a signal that interrupts a blocked `write` makes it
    ///   return how many bytes it had written), so the rest must be written
    ///   too; and a signal that interrupts a `write` blocked before it wrote a
    ///   byte makes it fail with `ErrorKind::Interrupted`, which only means
    ///   "write again" (as `write_all` does). A job of 8 MiB, whose first
    ///   `write` a signal cuts short and whose next `write` a signal
    ///   interrupts, reaches its worker whole and is answered. Trial:
    ///   `ch07::process_pool::sends_a_long_job_whole`.
    /// - Each job goes to whichever worker is free, so a slow job does not hold
    ///   up the jobs behind it: with two workers, the first job may wait until
    ///   the third job has run. Trial:
    ///   `ch07::process_pool::returns_answers_in_job_order`.
    /// - All the workers are busy at the same time: with `size` workers, the
    ///   first `size` jobs run at once, each on a different worker, and so do
    ///   the next `size`, and so on. Trial:
    ///   `ch07::process_pool::keeps_every_worker_busy_at_once`.
    /// - Feeds the workers from a thread each (or fewer), each of which takes
    ///   the next job once its worker has answered: `map` never runs more
    ///   threads at once than the pool has workers, plus one, besides the
    ///   thread that calls it (which is not counted), however many
    ///   jobs there are. A thread per job is wrong: it starts as many threads
    ///   as there are jobs, and lets later jobs take a worker before earlier
    ///   ones; so is a writer and a reader thread per worker, two threads per
    ///   worker: with three workers all busy, six. Trial:
    ///   `ch07::process_pool::feeds_the_workers_without_a_thread_per_job`.
    /// - Fails if any job holds a newline, wherever it is among the jobs, a
    ///   trailing newline included, and checks every job before it sends any:
    ///   after such a failure no job of that `map` has run, and the workers are
    ///   still in step for the next `map`. Trial:
    ///   `ch07::process_pool::rejects_a_job_with_a_newline`.
    /// - Fails if a worker exits without answering its job (a job it cannot do,
    ///   say), rather than make an answer up, and rather than give that job to
    ///   another worker: `map` fails even when the other workers could have
    ///   done every job. Only a `\n` ends an answer: a worker that writes part
    ///   of a line and then exits, with no `\n` after it, has not answered, and
    ///   `map` fails rather than take that part for the answer. It fails with
    ///   an error, not a panic, also when the dead worker was the pool's only
    ///   one and jobs were left that no worker will take. Trial:
    ///   `ch07::process_pool::reports_a_worker_that_died`.
    pub fn map(&mut self, jobs: &[String]) -> io::Result<Vec<String>> {
        if jobs.iter().any(|job| job.contains('\n')) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a job is one line: it cannot contain a newline",
            ));
        }
        // A queue, not a fixed assignment: a worker that is done asks for
        // the next job, so a slow job never holds up the jobs behind it.
        let (queue, pending) = channel::unbounded();
        for job in jobs.iter().enumerate() {
            queue.send(job).expect("the receiver is still here");
        }
        drop(queue); // Once the queue is empty, `pending` ends.
        let mut answers = vec![String::new(); jobs.len()];
        thread::scope(|scope| {
            // A thread per worker: each blocks on its own worker's pipe, so
            // one slow worker never stops the others from being fed.
            let feeders: Vec<_> = self
                .workers
                .iter_mut()
                .map(|worker| {
                    let pending = pending.clone();
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        for (index, job) in pending {
                            done.push((index, worker.ask(job)?));
                        }
                        Ok::<_, io::Error>(done)
                    })
                })
                .collect();
            for feeder in feeders {
                // A feeder's panic goes on as it was, like a countdown's.
                let done = feeder
                    .join()
                    .unwrap_or_else(|payload| panic::resume_unwind(payload))?;
                // Each answer knows its job's index: that, not the order in
                // which they arrive, decides its place.
                for (index, answer) in done {
                    answers[index] = answer;
                }
            }
            Ok(answers)
        })
    }
}

impl Drop for ProcessPool {
    /// Closes every worker's stdin, which tells it to finish, and the
    /// pool's end of its stdout, so that a worker blocked writing output
    /// that nobody will read gets a broken pipe instead of waiting forever;
    /// then waits for every worker, so no process outlives the pool. No
    /// worker is killed: each finishes what it does at the end of its input.
    ///
    /// # Graded promises
    ///
    /// - When dropping the pool returns, none of its workers is left running,
    ///   or exited but unwaited for (a zombie), after any number of `map`s,
    ///   and after a `map` that failed because a worker died: that dead
    ///   worker is waited for too. Trial:
    ///   `ch07::process_pool::leaves_no_worker_behind`.
    /// - The same holds for workers that never read their stdin and are
    ///   blocked writing more output than a pipe holds, which nobody reads: the
    ///   drop still returns and leaves none of them behind, even when they
    ///   would write without end, so that reading their output to its end
    ///   would never end. Trial:
    ///   `ch07::process_pool::stops_a_worker_blocked_on_a_full_pipe`.
    /// - Lets every worker finish rather than kill it: a worker that reads its
    ///   stdin to its end and then still has work to do (results to save, say)
    ///   has done that work when the drop returns. Trial:
    ///   `ch07::process_pool::lets_every_worker_finish`.
    fn drop(&mut self) {
        // All pipes first, so that the workers wind down together rather
        // than one after another.
        let mut children = Vec::with_capacity(self.workers.len());
        for Worker { mut child, stdout } in self.workers.drain(..) {
            drop(child.stdin.take());
            // End of input stops a worker that reads its next job, but not
            // one that is stuck writing to a full stdout pipe. With the
            // pool's read end closed, that write fails (an `EPIPE` error,
            // or SIGPIPE kills the worker) instead of blocking forever.
            // After a `map` that succeeded, a worker that keeps to the
            // protocol has nothing left to write, so this costs it nothing.
            drop(stdout);
            children.push(child);
        }
        for mut child in children {
            // Waiting reaps the process; an unwaited child would stay a
            // zombie until this whole program exits. A worker stuck in a
            // job, neither reading nor writing, is still waited for.
            // (Python's `with Pool() as pool:` calls `terminate()` on the
            // way out instead, which stops every worker with SIGTERM, even
            // one that was finishing cleanly.)
            let _ = child.wait();
        }
    }
}

/// A job for the thread pool: any closure to run once, on any thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Drops what a caught panic carries, on the worker: a value whose own
/// `Drop` panics would unwind the worker and end it, so that panic is
/// caught too, and what it carries dropped the same way.
fn drop_payload(mut payload: Box<dyn Any + Send>) {
    while let Err(next) =
        panic::catch_unwind(AssertUnwindSafe(move || drop(payload)))
    {
        payload = next;
    }
}

/// A fixed number of threads that run the jobs sent to them, in the order
/// they were sent, each job on whichever thread is free.
///
/// # Graded promises
///
/// - A job that panics ends neither its worker thread nor the pool, whatever
///   its panic carries (a message, or any value from `panic_any`, even one
///   whose own `Drop` panics: dropping what a caught panic carries, on the
///   worker, can panic too, and that panic must not end the worker either,
///   so catch it as well, and so on for what that panic carries, however
///   many times over, a hundred times too; each such value is dropped, not
///   forgotten, with no limit on how many times over): the jobs
///   sent after it still run, even on a pool of one thread, which runs them in
///   the order they were sent, on that one thread (not on a new thread that
///   replaces one a panic ended), and dropping the pool does not panic.
///   Each panic is caught and done with, and leaves nothing on the worker's
///   stack: after 4096 panics, a job starts as high on its worker's
///   stack as the first job did (a worker that starts its loop again by
///   calling itself after a panic leaves the later jobs less stack with
///   each panic, until it overflows).
///   The pool leaves the process's panic hook alone, for its whole life: its
///   own jobs' panics reach that hook too (`catch_unwind` does not stop the
///   hook, which prints the message that tells the user a job failed), and a
///   panic on another thread while the pool lives, and after jobs that ran at
///   once on two threads, still reaches the hook that was set before (a pool
///   that swaps in a silent hook in `new` and puts the old one back in `drop`
///   silences every panic of the process meanwhile; workers that each swap in
///   a silent hook around a job and put theirs back race, and can leave it
///   silent for good). Trial: `ch07::thread_pool::survives_a_panicking_job`.
/// - A pool keeps its threads while it has nothing to do, however long, until
///   it is dropped: after 3 seconds without a job it still takes jobs and runs
///   `size` of them at once. (The trial waits 3 seconds; threads that quit
///   after a longer idle time, 10 seconds or an hour, are just as wrong, but
///   are not graded: a worker's `recv_timeout` runs on the real clock, which
///   no trial can pause or advance, so telling it from `recv` means waiting
///   that long.) Trial: `ch07::thread_pool::keeps_its_threads_while_idle`.
/// - Each job goes to whichever thread is free, from one queue, in the order
///   the jobs were sent, so a slow job never holds up the jobs behind it while
///   another thread is free: with two threads, the first job may wait until
///   the third job has run. A pool of one thread runs its jobs in the order
///   they were sent. Trial:
///   `ch07::thread_pool::takes_the_jobs_in_order_on_a_free_thread`.
/// - An idle pool's threads sleep until a job comes: each blocks waiting for
///   it with no deadline (as `recv` does), and none polls for jobs (as
///   `try_recv` in a loop does), which would burn CPU time while there is
///   nothing to do, nor wakes up now and then to look again (as
///   `recv_timeout` in a loop does). A thread
///   woken for a job that another thread took first goes back to waiting, it
///   does not end: the pool still runs `size` jobs at once after that. Trial:
///   `ch07::thread_pool::idle_threads_sleep_until_the_pool_is_dropped`.
#[derive(Debug)]
pub struct ThreadPool {
    /// The sending end of the job queue. An `Option`, so that `Drop` can
    /// close the queue before it joins the workers.
    jobs: Option<Sender<Job>>,
    /// Started in `new`; none exits until the queue is closed and empty.
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `size` worker threads. Panics if `size` is 0, in every build:
    /// a release build too, which leaves `debug_assert!`s out and would
    /// return a pool of no threads, whose jobs never run. The trials run
    /// debug builds only, so a check that only debug builds make (a
    /// `debug_assert!`) passes them, but it is wrong, and not graded. So is
    /// a cap on the threads that lies above the 1100 the trials ask for (a
    /// thousand, or four per core on a machine of more than 275 cores): no
    /// cap is right, but a trial cannot start more threads than every
    /// grading machine allows.
    ///
    /// # Graded promises
    ///
    /// - A pool of `size` threads runs `size` jobs at the same time, each job
    ///   with as much stack as `thread::spawn` gives a thread of its own
    ///   (2 MiB, or what `RUST_MIN_STACK` says when it is set: leave the stack
    ///   size alone, as `thread::spawn` does; a size spelled out, even 2 MiB,
    ///   is wrong, and the trial sets `RUST_MIN_STACK` to 2.5 MiB): a job that
    ///   keeps nearly all of that on the stack runs as it would on a thread of
    ///   its own, it does not overflow a smaller stack. So too with 1100 threads, far more than there are cores:
    ///   1100 jobs run at once (no cap on the threads, not even one by the
    ///   number of cores). Trials:
    ///   `ch07::thread_pool::runs_size_jobs_at_once`,
    ///   `ch07::thread_pool::never_runs_more_than_size_jobs`.
    /// - The pool never runs more than `size` jobs at once, nor on more than
    ///   `size` different threads, and starts no more than `size` threads,
    ///   however many jobs it is sent; a job sent while every thread is busy
    ///   waits in the queue, never runs on the thread that called `execute`.
    ///   Trial:
    ///   `ch07::thread_pool::never_runs_more_than_size_jobs`.
    /// - Starts the `size` threads in `new`, not as jobs come: the threads
    ///   that run the first jobs are there as soon as `new` returns, before
    ///   any job is sent. Trial:
    ///   `ch07::thread_pool::idle_threads_sleep_until_the_pool_is_dropped`.
    /// - Panics if `size` is `0`, and if one of the `size` threads cannot
    ///   start (as `thread::spawn` panics), rather than return a pool of fewer
    ///   threads. Trial: `ch07::thread_pool::rejects_a_size_of_zero`.
    pub fn new(size: usize) -> ThreadPool {
        assert!(size >= 1, "a thread pool needs at least one thread");
        // crossbeam's receivers can be cloned: every worker takes the next
        // job from the same queue, with no Mutex around the receiver.
        let (jobs, queue) = channel::unbounded::<Job>();
        let workers = (0..size)
            .map(|_| {
                let queue = queue.clone();
                thread::spawn(move || {
                    // The loop ends when the queue is closed and empty.
                    for job in queue {
                        // A panicking job must not take its worker down with
                        // it: the pool would shrink by one thread per panic.
                        // The panic message is still printed by the hook.
                        if let Err(payload) =
                            panic::catch_unwind(AssertUnwindSafe(job))
                        {
                            drop_payload(payload);
                        }
                    }
                })
            })
            .collect();
        ThreadPool {
            jobs: Some(jobs),
            workers,
        }
    }

    /// Queues `job` to run on the next free worker thread.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        self.jobs
            .as_ref()
            .expect("the queue is open until the pool is dropped")
            .send(Box::new(job))
            // The workers only stop once the queue is closed, and it closes
            // only in `Drop`: while `self` exists, someone receives.
            .expect("the pool's workers are running");
    }
}

impl Drop for ThreadPool {
    /// Waits for every queued job to finish, however long that takes, then
    /// for every worker to end: joining every worker waits for both. A drop
    /// that waits until a counter of the jobs left is zero, and then returns
    /// without joining, is wrong twice: its workers are still running, and
    /// with a `Relaxed` counter nothing makes the jobs' writes visible to the
    /// thread that dropped the pool. Only the first is graded: x86
    /// processors show every write in time anyway, and the pool's threads
    /// and channel are std's and crossbeam's, which the loom models cannot
    /// run. For the same reason a pool of a `Mutex`, a `Condvar` and a
    /// "closed" flag is graded only on what it does: a `Drop` that sets the
    /// flag and notifies without holding the mutex is wrong (a worker that
    /// has just seen the flag clear, and not yet waited, misses the wakeup,
    /// and the drop waits for it for ever), but no trial can stop a worker
    /// between its look and its wait, so it is not graded. Likewise a drop
    /// that joins only the workers that `is_finished` says still run is
    /// wrong (a finished thread may still be running its thread-locals'
    /// destructors), but not graded: no worker can end before the drop
    /// closes the queue, so one is finished when the drop looks only if it
    /// ended in the instant between the drop's two steps, and no trial can
    /// stop the dropping thread there. Nor is a bounded queue graded whose
    /// bound lies above the million jobs a trial sends while every thread
    /// is busy: any bound is wrong, but more jobs cost a trial more time and
    /// memory than a grader can give. Nor is a drop that gives up on its
    /// workers only after a long while (thirty seconds, say): any time
    /// limit is wrong, since it leaves a job running after the drop
    /// returned, but a trial would have to hold a job longer than that,
    /// which costs every grading as long; a limit of a few seconds is graded.
    ///
    /// # Graded promises
    ///
    /// - When dropping the pool returns, every job sent to it has finished,
    ///   a million (2^20 + 1) sent while every thread was busy too (`execute`
    ///   only queues a job, on a queue with no bound: a bounded channel's
    ///   `send` waits while the queue is full), however long the
    ///   jobs run, even one that ends seconds after the drop
    ///   began, and every worker thread has ended, its thread-locals'
    ///   destructors included (as joining it waits for): a thread-local that a
    ///   job left on its worker has been dropped. So too when the pool is
    ///   dropped while its thread unwinds from a panic: a drop that skips the
    ///   wait when `thread::panicking()` leaves the jobs running. Trial:
    ///   `ch07::thread_pool::runs_every_job_before_drop_returns`.
    fn drop(&mut self) {
        // Close the queue first: a worker waiting for a job wakes up to
        // "closed" once the queue is empty. Joining first would wait forever.
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            // Jobs' panics were caught, so a worker has nothing to report.
            let _ = worker.join();
        }
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
/// with its number from `0`, before it counts any text. Every text is
/// counted, a blank one too, and never on the calling thread, even with one
/// mapper. How the counts reach the calling thread is not graded, as long
/// as the mappers count at once: mappers that add theirs into one shared
/// `Mutex<HashMap>`, taking the lock for each word, give the same counts,
/// and no test tells them apart, but a lock that every mapper takes is what
/// map-reduce avoids, and a mapper that holds it while it counts its texts
/// makes the others wait, which is graded as not running at once.
///
/// Not graded either: a mapper that takes its number in the order the
/// mappers happen to start (from a counter, as its first step), rather than
/// the number of its share, fixed before it starts, is wrong, but only when
/// the threads start in another order than they were spawned in, and no
/// trial can choose that order: a new thread runs its first step before
/// anything of the trial's can hold it. Nor is a mapper that sends its
/// counts in parts only once its map holds more different words than the
/// 131 073 a trial gives it (a million, say), and a calling thread that
/// takes one message per mapper: just as wrong, but a trial would need to
/// count as many words, which takes seconds in a debug build.
///
/// # Graded promises
///
/// - Gives the same counts as one thread counting every word of every text with
///   `words`, for any number of mappers, whether or not it divides the number
///   of texts, and however many words the texts hold, and however often one
///   word occurs in one mapper's texts (70 000 times, more than a `u16`
///   holds, in the trial: count with `usize` in the mappers too). Fifty thousand words
///   are more than a bounded channel's buffer holds (a thousand messages,
///   say, for mappers that send a word at a time), so the calling thread
///   adds the counts up as they arrive, while the mappers run, not once they
///   have ended: with one mapper held until then, the calling thread has
///   added up the counts that the other mappers sent (reading an unbounded
///   channel only after the scope has joined every mapper is wrong too).
///   Trial: `ch07::word_count::matches_the_sequential_count`.
/// - However many different words a mapper counts: with 131 073 different
///   words in one mapper's text, more than a map of 2^17 words or of a
///   hundred thousand holds, a mapper that sends its counts in parts as its
///   map grows needs every part added up, not one message per mapper (the
///   calling thread receives until the channel closes). Trial:
///   `ch07::word_count::adds_up_every_part_of_a_mapper_s_counts`.
/// - With more mappers than texts, the counts are still right and every mapper
///   runs, some with no text; no texts at all give an empty map, yet the
///   mappers still start (no shortcut). Each of the `mappers` mappers calls
///   `on_map` exactly once, with its number, `0` to `mappers - 1`, text or
///   not, on a thread of its own, never on the calling thread (a mapper
///   with no text gets a thread too). If a mapper panics (in `on_map`, say),
///   `word_count` panics too, rather than return counts that lack its
///   texts. Trial: `ch07::word_count::handles_more_mappers_than_texts`.
/// - The mappers run at the same time: their calls of `on_map` run at once,
///   and so do their calls of `words`, which no lock that every mapper takes
///   holds up: with as many texts as mappers, every mapper is inside `words`
///   at the same moment. Trial: `ch07::word_count::maps_the_texts_at_once`.
/// - The texts are shared out as `split` shares a count, in its order: mapper
///   `i`, the one that calls `on_map(i)`, counts as many texts as `split`'s
///   share `i`, so the numbers of texts the mappers count differ by at most
///   one, the larger shares first (`7` texts among `4` mappers: mappers `0`,
///   `1` and `2` count `2` each and mapper `3` counts `1`), and `0` mappers
///   count as one, which counts every text. A mapper's number is the number
///   of its share, fixed before it starts (see the note above on a number
///   taken as the mapper starts, which is not graded).
///   Each text is counted with one call of `words(text)`, a blank text too,
///   and each of equal texts too (counting equal texts once and weighing
///   their words by how many there are is wrong), on the thread of the
///   mapper it went to, the one that called `on_map`, never on the calling
///   thread, even with `1` or `0` mappers. Trials:
///   `ch07::word_count::shares_the_texts_out_evenly`,
///   `ch07::word_count::calls_on_map_before_counting`.
/// - On each mapper's thread, `on_map` is called before `words` is called on
///   any text. Trial: `ch07::word_count::calls_on_map_before_counting`.
/// - The calling thread adds the counts up itself, as they arrive, not a
///   reducer thread of its own: `word_count` starts no thread but the
///   mappers. While the mappers count, it sleeps until counts arrive (as
///   `recv` does), rather than poll the channel (`try_recv` or `try_iter`)
///   or the mappers (`is_finished`) in a loop, which burns a core the
///   mappers need, and can stop looking just after a mapper sent its counts,
///   before they are read; nor does it sleep or wait with a deadline
///   between looks. Trial:
///   `ch07::word_count::adds_the_counts_up_on_the_calling_thread`.
pub fn word_count(
    texts: &[&str],
    mappers: usize,
    on_map: impl Fn(usize) + Sync,
) -> HashMap<String, usize> {
    let on_map = &on_map;
    let (partials, reduce) = channel::unbounded();
    thread::scope(|scope| {
        // `split` gives the balanced shares, one per mapper (one mapper
        // for `0`), and an empty share still gets its mapper; `split_at`
        // cuts each mapper's texts off the front of the rest.
        let mut rest = texts;
        for (mapper, share) in
            split(texts.len() as u64, mappers).into_iter().enumerate()
        {
            let (mine, others) = rest.split_at(share as usize);
            rest = others;
            let partials = partials.clone();
            scope.spawn(move || {
                // First `on_map`, then the counting: a test's `on_map` can
                // hold every mapper back until all have started.
                on_map(mapper);
                // Map: count in a map of the thread's own, no lock needed.
                let mut counts = HashMap::<String, usize>::new();
                for word in mine.iter().flat_map(|text| words(text)) {
                    *counts.entry(word).or_insert(0) += 1;
                }
                partials.send(counts).expect("the reducer is waiting");
            });
        }
        // The mappers hold the remaining senders, so `reduce` ends exactly
        // when the last mapper has sent its counts.
        drop(partials);
        // Reduce, while the mappers are still at work: add, never
        // overwrite, since a word is usually in more than one share.
        let mut total = HashMap::new();
        for counts in reduce {
            for (word, count) in counts {
                *total.entry(word).or_insert(0) += count;
            }
        }
        total
    })
}
