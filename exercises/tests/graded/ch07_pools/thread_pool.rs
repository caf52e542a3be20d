//! The thread pool: every job runs before the drop returns, a panicking
//! job ends no worker, an idle pool keeps its threads, exactly `size` jobs
//! run at once, each job goes to a free thread in the order the jobs were
//! sent, and a size of zero is an error.

mod idle;
mod payload;

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use course::grader::stack::raise_the_default_stack;
use course::grader::{spawn_limit, task};
use crossbeam::channel;
use exercises::ch07_pools::{ThreadPool, countdown};

pub(super) use idle::{
    IDLE, idle_threads_sleep_until_the_pool_is_dropped,
    keeps_its_threads_while_idle, thread_ids,
};

/// Steps each thread pool job counts down after it is let go: enough work
/// that the jobs are still running when a `Drop` that does not wait
/// returns.
const JOB_STEPS: u64 = 10_000_000;

/// How long the slow job of [`runs_every_job_before_drop_returns`] runs
/// after the drop has begun: longer than a drop that gives up on its
/// workers after a second or two waits. This bounds the job from below;
/// the trial's deadline is later by as much.
pub(super) const SLOW_JOB: Duration = Duration::from_secs(3);

/// How long the thread-local that a job leaves on its worker waits, as
/// the worker ends, to hear that dropping the pool has returned: longer
/// than the moment between a drop that does not wait for its workers
/// returning and the trial saying so. This bounds the worker's end from
/// below; the trial's deadline is later by as much.
pub(super) const WORKER_END: Duration = Duration::from_secs(2);

/// Left by a job in a thread-local of its worker thread, so dropped as that
/// thread ends, after its last job.
struct EndOfWorker {
    /// Hears from the trial once dropping the pool has returned.
    returned: mpsc::Receiver<()>,
    /// Tells the trial whether it heard that before the thread ended.
    verdict: mpsc::Sender<bool>,
}

impl Drop for EndOfWorker {
    fn drop(&mut self) {
        // A drop that waits for its workers to end (joins them) cannot
        // have returned while this runs: the wait times out. A drop that
        // returned first is told of here.
        let after = self.returned.recv_timeout(WORKER_END).is_ok();
        let _ = self.verdict.send(after);
    }
}

thread_local! {
    static END_OF_WORKER: RefCell<Option<EndOfWorker>> =
        const { RefCell::new(None) };
}

/// Every queued job has finished by the time dropping the pool returns,
/// however long it runs: one of them ends [`SLOW_JOB`] after the drop
/// began. And so has every worker thread, its thread-locals' destructors
/// included: a thread-local that a job leaves on the one worker of a pool
/// is dropped, as that thread ends, before dropping the pool returns.
pub(super) fn runs_every_job_before_drop_returns() {
    the_jobs_finish_before_drop_returns();
    the_workers_end_before_drop_returns();
    the_jobs_finish_when_dropped_while_unwinding();
}

/// A pool dropped while its thread unwinds from a panic still waits for
/// its job: the job runs only once the dropping thread has been seen
/// asleep (in `join`, for a drop that waits), so a drop that returns at
/// once leaves it unfinished.
fn the_jobs_finish_when_dropped_while_unwinding() {
    let finished = Arc::new(AtomicUsize::new(0));
    let (open, gate) = channel::bounded::<()>(0);
    let dropper = task::me().tid;
    let watcher = thread::spawn(move || {
        let _ = task::watch_until_asleep(dropper);
        drop(open);
    });
    let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
        let pool = ThreadPool::new(1);
        let finished = Arc::clone(&finished);
        pool.execute(move || {
            let _ = gate.recv(); // Until the dropping thread sleeps.
            finished.fetch_add(1, Ordering::SeqCst);
        });
        panic!("a panic that drops a pool as it unwinds");
    }));
    assert!(unwound.is_err(), "the closure panics");
    let finished = finished.load(Ordering::SeqCst);
    watcher.join().expect("the watching thread panicked");
    assert_eq!(
        finished, 1,
        "a pool dropped while its thread unwound from a panic returned \
         before its job had finished: Drop joins every worker, while \
         unwinding too (skipping the wait when thread::panicking() leaves \
         the jobs running after the drop)"
    );
}

/// A job leaves an [`EndOfWorker`] on the one worker thread of a pool,
/// which waits, as that thread ends, to hear that dropping the pool has
/// returned.
fn the_workers_end_before_drop_returns() {
    let pool = ThreadPool::new(1);
    let (returned, hear) = mpsc::channel();
    let (tell, verdict) = mpsc::channel();
    pool.execute(move || {
        END_OF_WORKER.with(|end| {
            *end.borrow_mut() = Some(EndOfWorker {
                returned: hear,
                verdict: tell,
            });
        });
    });
    drop(pool);
    // Fails once the worker has ended, as it should have by now.
    let _ = returned.send(());
    let after = verdict.recv_timeout(super::HANG_TIMEOUT + WORKER_END);
    assert_eq!(
        after,
        Ok(false),
        "dropping the pool returned before its worker thread had ended (a \
         thread-local that a job left on it was dropped only after the drop \
         returned, or not at all): Drop must wait for every worker to end, \
         by joining it, not only for the jobs (a counter of the jobs left \
         says nothing of the threads, and with Relaxed, not even that the \
         jobs' writes are seen)"
    );
}

/// Every queued job has finished by the time dropping the pool returns,
/// however long it runs: one of them ends [`SLOW_JOB`] after the drop
/// began.
fn the_jobs_finish_before_drop_returns() {
    const JOBS: usize = 12;
    let pool = ThreadPool::new(3);
    let finished = Arc::new(AtomicUsize::new(0));
    let (open, gate) = channel::bounded::<()>(0);
    for _ in 0..JOBS {
        let (finished, gate) = (Arc::clone(&finished), gate.clone());
        pool.execute(move || {
            let _ = gate.recv(); // Until the gate opens, just before drop.
            countdown(JOB_STEPS);
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }
    let (dropping, dropped_at) = channel::bounded::<Instant>(1);
    let slow_finished = Arc::new(AtomicUsize::new(0));
    let slow = Arc::clone(&slow_finished);
    pool.execute(move || {
        // The moment just before the drop began.
        let since = dropped_at.recv().expect("the trial sends the moment");
        thread::sleep(SLOW_JOB.saturating_sub(since.elapsed()));
        slow.fetch_add(1, Ordering::SeqCst);
    });
    // More jobs than a bounded queue of a million holds, sent while every
    // thread is held at the gate: each waits in the queue, and runs.
    const BURST: usize = (1 << 20) + 1;
    let burst_finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..BURST {
        let burst = Arc::clone(&burst_finished);
        pool.execute(move || {
            burst.fetch_add(1, Ordering::SeqCst);
        });
    }
    dropping.send(Instant::now()).unwrap();
    drop(open);
    drop(pool);
    let burst = burst_finished.load(Ordering::SeqCst);
    assert_eq!(
        burst, BURST,
        "{BURST} jobs were sent while every thread was busy, and only \
         {burst} of them had run when dropping the pool returned: a job \
         sent while every thread is busy waits in the queue, however many \
         there are (an unbounded queue; a bounded one with try_send drops \
         the jobs that find it full)"
    );
    assert_eq!(
        slow_finished.load(Ordering::SeqCst),
        1,
        "dropping the pool returned before a job that runs {SLOW_JOB:?} \
         after the drop began had finished: Drop must join every worker, \
         however long their jobs take, not give up after a while"
    );
    let finished = finished.load(Ordering::SeqCst);
    assert_eq!(
        finished, JOBS,
        "only {finished} of {JOBS} jobs had finished when dropping the pool \
         returned: Drop must close the job channel, then join every worker \
         (which finishes the queued jobs first)"
    );
}

/// A pool of one thread runs the jobs queued after a job that panicked,
/// on that same thread: a worker that dies and is replaced by a new thread
/// shows as a second thread. And a pool leaves the process's panic hook as
/// it found it (see [`leaves_the_panic_hook_alone`]).
pub(super) fn survives_a_panicking_job() {
    leaves_the_panic_hook_alone();
    payload::survives_a_payload_whose_drop_panics();
    payload::panics_reach_the_hook_and_leave_no_trace();
    let pool = ThreadPool::new(1);
    let (report, ran) = channel::unbounded();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    for job in 0..3 {
        let panicking = Arc::clone(&threads);
        pool.execute(move || {
            panicking.lock().unwrap().insert(thread::current().id());
            if job == 1 {
                // A payload that is neither a `&str` nor a `String`: a
                // panic is a panic whatever it carries.
                panic::panic_any(job);
            }
            panic!("a job panics on purpose (expected)");
        });
        let (report, threads) = (report.clone(), Arc::clone(&threads));
        pool.execute(move || {
            threads.lock().unwrap().insert(thread::current().id());
            report.send(job).unwrap();
        });
    }
    drop(report);
    let ran: Vec<i32> = ran.iter().take(3).collect();
    assert_eq!(
        ran,
        [0, 1, 2],
        "the jobs queued after a panicking job were dropped without \
         running: a panic in a job must not end its worker thread"
    );
    drop(pool);
    let threads = threads.lock().unwrap().len();
    assert_eq!(
        threads, 1,
        "a pool of one thread ran its jobs, three of which panic, on \
         {threads} different threads: a panic in a job must not end its \
         worker thread, and replacing the thread is no cure (catch the \
         panic with std::panic::catch_unwind and keep the thread)"
    );
}

/// The process's panic hook, as `std::panic::take_hook` gives it.
type Hook = dyn Fn(&panic::PanicHookInfo<'_>) + Send + Sync;

/// How many times the hook that counts into `reported` saw a panic on a
/// new thread of this process, that panics once on purpose.
fn panics_reported(reported: &AtomicUsize) -> usize {
    let before = reported.load(Ordering::SeqCst);
    let _ = thread::spawn(|| panic!("a thread panics on purpose (expected)"))
        .join();
    reported.load(Ordering::SeqCst) - before
}

/// Two jobs run at once on a pool of two threads, and end one after the
/// other, in the order that leaves the process's panic hook silent for good
/// if each worker swaps it for a silent one around each job: the first job
/// starts (its worker has set the silent hook), then the second (its worker
/// took the silent hook as the one to put back), then the first ends and
/// its worker goes back to waiting (it put back the hook it took), then
/// the second ends (its worker puts back the silent hook). A panic on
/// another thread, while the first job's worker waits and the pool lives,
/// and again after the pool was dropped, must still reach the hook that was
/// set before the pool was made, as it does with a pool that leaves the
/// hook alone.
fn leaves_the_panic_hook_alone() {
    let previous: Arc<Hook> = Arc::from(panic::take_hook());
    let reported = Arc::new(AtomicUsize::new(0));
    {
        let (previous, reported) =
            (Arc::clone(&previous), Arc::clone(&reported));
        panic::set_hook(Box::new(move |info| {
            reported.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    }
    let pool = ThreadPool::new(2);
    let (report, reports) = channel::unbounded();
    let (end_first, first_gate) = channel::bounded::<()>(0);
    let first = report.clone();
    pool.execute(move || {
        first.send(("first runs", task::me())).unwrap();
        let _ = first_gate.recv(); // Until the second job runs.
        first.send(("first ends", task::me())).unwrap();
    });
    let (_, first) = reports.recv().expect("the first job did not run");
    let (end_second, second_gate) = channel::bounded::<()>(0);
    pool.execute(move || {
        report.send(("second runs", task::me())).unwrap();
        let _ = second_gate.recv(); // Until the first job's worker waits.
    });
    let (_, second) = reports.recv().expect("the second job did not run");
    assert_ne!(
        first.tid, second.tid,
        "a pool of 2 threads ran 2 jobs at once on one thread"
    );
    drop(end_first);
    reports.recv().expect("the first job did not end");
    // The first job's worker is done with it once it waits for another.
    while !task::asleep(first.tid) {
        thread::yield_now();
    }
    // While the pool lives, and one of its jobs runs.
    let while_it_lives = panics_reported(&reported);
    drop(end_second);
    drop(pool);
    let after_it = panics_reported(&reported);
    panic::set_hook(Box::new(move |info| previous(info)));
    assert_eq!(
        while_it_lives, 1,
        "while a pool lived, a panic on another thread did not reach the \
         panic hook that was set before the pool was made: a pool leaves \
         the process's panic hook alone for its whole life (one that swaps \
         in a silent hook in new and puts the old one back in drop \
         silences every panic of the process meanwhile, and pools whose \
         lives overlap put back each other's hooks)"
    );
    assert_eq!(
        after_it, 1,
        "after a pool's jobs had run, a panic on another thread no longer \
         reached the panic hook that was set before the pool was made: a \
         pool leaves the process's panic hook alone (workers that each \
         swap it for a silent one around a job, with take_hook and \
         set_hook, race with each other, and one of them can put back \
         another's silent hook for good)"
    );
}

/// `size` jobs wait at a barrier for each other, on a pool of 4 threads,
/// each job with a large stack, and on a pool of [`MANY_THREADS`]. The
/// trial first raises the stack that `thread::spawn` gives a thread (to
/// 2.5 MiB), and each job of the first pool keeps nearly all of it: a
/// worker whose stack size is spelled out, even as std's usual 2 MiB,
/// overflows.
pub(super) fn runs_size_jobs_at_once() {
    // First thing: no thread has been started yet.
    let default = raise_the_default_stack();
    let frames = default.saturating_sub(STACK_MARGIN) / STACK_FRAME;
    for size in [4, MANY_THREADS] {
        let pool = ThreadPool::new(size);
        let barrier = Arc::new(Barrier::new(size));
        let (report, met) = channel::unbounded();
        for job in 0..size {
            let (barrier, report) = (Arc::clone(&barrier), report.clone());
            pool.execute(move || {
                if size == 4 {
                    keeps_on_the_stack(frames);
                }
                barrier.wait(); // Every job is running.
                report.send(job).unwrap();
            });
        }
        drop(report);
        let mut met: Vec<usize> = met.iter().collect();
        met.sort();
        assert!(
            met.iter().copied().eq(0..size),
            "a pool of {size} threads ran {} of its {size} jobs",
            met.len()
        );
        drop(pool);
    }
}

/// Far more threads than any grading machine has cores, and more than a
/// "safe" cap of 1024. (Each job does almost nothing, and 1100 stacks of
/// 2 MiB fit in the memory a trial may map.)
const MANY_THREADS: usize = 1100;

/// How much of the stack that `thread::spawn` gives a thread each job of
/// [`runs_size_jobs_at_once`] leaves unused: room for the thread's own
/// frames and its thread-locals.
const STACK_MARGIN: usize = 448 << 10;

/// The stack that each call of [`keeps_on_the_stack`] keeps.
const STACK_FRAME: usize = 64 << 10;

/// Keeps `frames` times [`STACK_FRAME`] bytes on the stack, as a job with
/// large local buffers does: on a worker thread with less stack than
/// `thread::spawn` gives, it overflows the stack, which aborts this trial's
/// process.
#[inline(never)]
fn keeps_on_the_stack(frames: usize) {
    let buffer = [1_u8; STACK_FRAME];
    std::hint::black_box(&buffer);
    if frames > 1 {
        keeps_on_the_stack(frames - 1);
    }
    std::hint::black_box(&buffer);
}

/// The threads of this process, from Linux's `/proc`.
fn threads_of_this_process() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .count()
}

/// What the jobs of [`never_runs_more_than_size_jobs`] saw.
#[derive(Default)]
struct Seen {
    running: usize,
    most_at_once: usize,
    threads: HashSet<thread::ThreadId>,
}

/// While `SIZE` jobs are held at a gate, the pool has at most `SIZE`
/// threads; the other jobs are sent only then, while every thread is busy,
/// and wait in the queue: none runs on the calling thread (`execute` only
/// queues it); over all jobs, at most `SIZE` ran at once, on at most `SIZE`
/// threads.
pub(super) fn never_runs_more_than_size_jobs() {
    const SIZE: usize = 3;
    const JOBS: usize = 4 * SIZE;
    let before = threads_of_this_process();
    let pool = ThreadPool::new(SIZE);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (open, gate) = channel::bounded::<()>(0);
    let (started, starts) = channel::unbounded();
    let caller = thread::current().id();
    let on_caller = Arc::new(AtomicUsize::new(0));
    let mut started_threads = 0;
    for job in 0..JOBS {
        let (seen, gate, started) =
            (Arc::clone(&seen), gate.clone(), started.clone());
        let on_caller = Arc::clone(&on_caller);
        pool.execute(move || {
            if thread::current().id() == caller {
                // Held at the gate, the calling thread would never open it.
                on_caller.fetch_add(1, Ordering::SeqCst);
                return;
            }
            {
                let mut seen = seen.lock().unwrap();
                seen.running += 1;
                seen.most_at_once = seen.most_at_once.max(seen.running);
                seen.threads.insert(thread::current().id());
            }
            let _ = started.send(());
            let _ = gate.recv(); // Held until the gate opens.
            seen.lock().unwrap().running -= 1;
        });
        if job + 1 == SIZE {
            // Every thread is busy before the other jobs are sent.
            for _ in 0..SIZE {
                starts.recv().expect("the jobs ended without starting");
            }
            started_threads = threads_of_this_process() - before;
        }
    }
    let on_caller = on_caller.load(Ordering::SeqCst);
    drop(open);
    drop(pool);
    assert!(
        started_threads <= SIZE,
        "a pool of {SIZE} threads had started {started_threads} threads: \
         start the workers once, in new, and send them the jobs"
    );
    assert_eq!(
        on_caller, 0,
        "{on_caller} jobs, sent while all {SIZE} threads of the pool were \
         busy, ran on the calling thread, inside execute: execute only \
         queues a job, which waits for a free worker however long the \
         queue (running it on the caller runs more than {SIZE} at once, \
         and out of order)"
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.most_at_once <= SIZE,
        "{} jobs ran at once in a pool of {SIZE} threads",
        seen.most_at_once
    );
    assert!(
        seen.threads.len() <= SIZE,
        "the jobs ran on {} different threads in a pool of {SIZE}",
        seen.threads.len()
    );
}

/// A pool of no threads could run no job: `new` panics when `size` is 0.
pub(super) fn rejects_a_size_of_zero() {
    let outcome = panic::catch_unwind(|| ThreadPool::new(0));
    assert!(
        outcome.is_err(),
        "ThreadPool::new(0) returned {outcome:?}: it must panic, as the doc \
         says (a pool of no threads would run no job)"
    );
    let outcome = spawn_limit::while_only_threads_can_start(1, || {
        ThreadPool::new(2);
    });
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a pool \
             whose threads cannot all start is not checked"
        ),
        Some(outcome) => assert!(
            outcome.is_err(),
            "only one new thread could start, and ThreadPool::new(2) \
             returned: when a thread cannot start, new panics (as \
             thread::spawn does), rather than return a pool of fewer \
             threads than `size` (Builder::spawn(..).ok() drops the error)"
        ),
    }
}
/// Each job goes to whichever thread is free, from one queue, in the order
/// the jobs were sent. On a pool of two threads, the first job waits until
/// the third job has run: dealt out in turn, the third job would wait
/// behind the first on the same thread, forever. On a pool of one thread,
/// 64 jobs queued behind a held job run in the order they were sent.
pub(super) fn takes_the_jobs_in_order_on_a_free_thread() {
    let pool = ThreadPool::new(2);
    let (unblock, blocked) = channel::bounded::<()>(1);
    let (report, done) = channel::unbounded();
    let first = report.clone();
    pool.execute(move || {
        blocked.recv().expect("the third job lets the first go");
        first.send("first").unwrap();
    });
    let second = report.clone();
    pool.execute(move || second.send("second").unwrap());
    pool.execute(move || {
        unblock.send(()).unwrap();
        report.send("third").unwrap();
    });
    let mut done: Vec<&str> = done.iter().take(3).collect();
    done.sort();
    assert_eq!(done, ["first", "second", "third"], "every job ran once");
    drop(pool);

    const JOBS: usize = 64;
    let pool = ThreadPool::new(1);
    let (open, gate) = channel::bounded::<()>(0);
    pool.execute(move || {
        let _ = gate.recv(); // Until every other job is queued.
    });
    let ran = Arc::new(Mutex::new(Vec::new()));
    for job in 0..JOBS {
        let ran = Arc::clone(&ran);
        pool.execute(move || ran.lock().unwrap().push(job));
    }
    drop(open);
    drop(pool);
    let ran = ran.lock().unwrap();
    assert_eq!(
        *ran,
        (0..JOBS).collect::<Vec<_>>(),
        "a pool of one thread ran {JOBS} queued jobs in another order than \
         the one they were sent in: take the jobs from a queue, first in, \
         first out (a list's pop() takes the last one)"
    );
}
