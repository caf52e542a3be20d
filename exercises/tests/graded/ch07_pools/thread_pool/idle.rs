//! The thread pool while idle: it keeps its threads however long it has
//! nothing to do, and they sleep, waiting with no deadline, until a job
//! comes or the pool is dropped.

use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use course::grader::task::{self, Me, Tid};
use crossbeam::channel;
use exercises::ch07_pools::ThreadPool;

/// How long [`keeps_its_threads_while_idle`] leaves its pool with nothing
/// to do: longer than a pool whose threads quit after a second or two idle
/// waits. This bounds the idle time from below; the trial's deadline is
/// later by as much.
pub(crate) const IDLE: Duration = Duration::from_secs(3);

/// A pool keeps its threads while it has nothing to do: after [`IDLE`]
/// without a job, it still takes jobs and runs `SIZE` of them at once.
pub(crate) fn keeps_its_threads_while_idle() {
    const SIZE: usize = 2;
    let pool = ThreadPool::new(SIZE);
    for round in ["before", "after"] {
        if round == "after" {
            thread::sleep(IDLE); // Nothing for the pool to do.
        }
        // The trial's thread meets the jobs too: it waits until they run.
        let barrier = Arc::new(Barrier::new(SIZE + 1));
        for _ in 0..SIZE {
            let barrier = Arc::clone(&barrier);
            let sent = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.execute(move || {
                    barrier.wait(); // Every job of the round is running.
                });
            }));
            assert!(
                sent.is_ok(),
                "execute panicked {round} the pool had had nothing to do \
                 for {IDLE:?}: a pool keeps its threads, and they wait for \
                 the next job however long it takes (recv, not \
                 recv_timeout), until the pool is dropped"
            );
        }
        barrier.wait();
    }
    drop(pool);
}

/// The ids of this process's threads, from Linux's `/proc`.
pub(crate) fn thread_ids() -> HashSet<Tid> {
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The CPU time, in `/proc`'s ticks (hundredths of a second), that an idle
/// worker may use on its way to waiting for the next job: far more than
/// ending a job and going to sleep costs, and far less than a thread that
/// polls for jobs uses before it would ever go to sleep.
const IDLE_TICKS: u64 = 10;

/// Whether `worker` sleeps in a wait with no deadline, as a worker waiting
/// for its next job does; fails if it is seen in a sleep or a wait with a
/// deadline (`recv_timeout` in a loop), which wakes it for nothing, again
/// and again, while the pool has nothing to do.
fn asleep_until_woken(worker: &Me, what: &str) -> bool {
    if !task::asleep(worker.tid) {
        return false;
    }
    match task::wait(worker.tid) {
        Some((task::Wait::UntilWoken, _)) => true,
        Some((task::Wait::UntilADeadline, line)) => panic!(
            "a worker thread of an idle pool was seen {what} in a sleep or a \
             wait with a deadline (/proc: {line}): it waits for the next \
             job with no deadline (recv, not recv_timeout in a loop, which \
             wakes every idle thread again and again for nothing)"
        ),
        _ => false,
    }
}

/// Waits until every one of `workers` is asleep at once in a wait with no
/// deadline, as an idle worker waits for its next job, and fails if one of
/// them has ended, or is seen in a wait with a deadline (see
/// [`asleep_until_woken`]), or has used more than [`IDLE_TICKS`] of CPU
/// time meanwhile, which is polling, not waiting. CPU time, not the clock:
/// however loaded the machine, a thread that sleeps uses none.
fn wait_until_asleep(workers: &[Me], what: &str) {
    let start: Vec<u64> =
        workers.iter().map(|w| task::cpu_ticks(w.tid)).collect();
    while !workers
        .iter()
        .all(|worker| asleep_until_woken(worker, what))
    {
        for (worker, start) in workers.iter().zip(&start) {
            assert!(
                task::state(worker.tid).is_some(),
                "a worker thread ended {what}, while the pool was still \
                 there: its threads wait for the next job until the pool is \
                 dropped (with a Condvar, wait in a `while` loop, not an \
                 `if`: a wait may end with no job for this thread)"
            );
            let used = task::cpu_ticks(worker.tid).saturating_sub(*start);
            assert!(
                used <= IDLE_TICKS,
                "a worker thread of an idle pool used {used} hundredths of a \
                 second of CPU time {what} without going to sleep: it polls \
                 for jobs (try_recv in a loop) instead of waiting for one \
                 (recv), and an idle pool burns every core it has a thread \
                 on"
            );
        }
        thread::yield_now();
    }
}

/// `new` starts the pool's `SIZE` threads: the threads that run the first
/// jobs were there as soon as `new` returned, before any job was sent.
/// Idle, they sleep (see [`wait_until_asleep`]). And a worker woken for a
/// job that another worker took first goes back to waiting: one worker is
/// frozen (see `course::grader::task`) while it waits, a job is sent, which
/// wakes it, and the other worker takes that job before the frozen one is
/// let go; the two then still run two jobs at once.
pub(crate) fn idle_threads_sleep_until_the_pool_is_dropped() {
    const SIZE: usize = 2;
    let before = thread_ids();
    let pool = ThreadPool::new(SIZE);
    let after_new = thread_ids();
    let barrier = Arc::new(Barrier::new(SIZE + 1));
    let (report, reports) = channel::unbounded();
    for _ in 0..SIZE {
        let (barrier, report) = (Arc::clone(&barrier), report.clone());
        pool.execute(move || {
            report.send(task::me()).unwrap();
            barrier.wait(); // Every job runs, each on a thread of its own.
        });
    }
    let workers: Vec<Me> = reports.iter().take(SIZE).collect();
    barrier.wait();
    for worker in &workers {
        assert!(
            after_new.contains(&worker.tid) && !before.contains(&worker.tid),
            "a job ran on a thread that was not there when ThreadPool::new \
             returned: new starts all {SIZE} worker threads, not execute"
        );
    }
    wait_until_asleep(&workers, "after its jobs had ended");

    // One worker is held by a job; the other waits.
    let (open, gate) = channel::bounded::<()>(0);
    let (report, ran_on) = channel::unbounded();
    let held = report.clone();
    pool.execute(move || {
        held.send(task::me().tid).unwrap();
        let _ = gate.recv(); // Until the gate opens.
    });
    let busy = ran_on.recv().expect("the job did not run");
    let idle = *workers
        .iter()
        .find(|worker| worker.tid != busy)
        .expect("the job ran on neither worker thread");
    // The busy worker asleep at the gate holds the queue's lock no more,
    // so the idle one, seen asleep after that, sleeps on the Condvar, not
    // on that lock (a worker frozen on the lock would go to the Condvar
    // after the thaw and never see the wake-up this trial is about).
    while !task::asleep(busy) {
        thread::yield_now();
    }
    wait_until_asleep(&[idle], "while the other ran a job");
    task::freeze(idle);
    // Wakes the frozen worker, if anything, but the busy one takes it.
    pool.execute(move || report.send(task::me().tid).unwrap());
    drop(open);
    let took = ran_on.recv();
    // The frozen worker sleeps in the hold, in a system call of its own.
    let held_in = loop {
        match task::syscall(idle.tid) {
            Some(call) => break call,
            None => thread::yield_now(),
        }
    };
    task::thaw();
    assert_eq!(took, Ok(busy), "the job ran on a frozen thread");
    // Once let go, the worker has seen that the job is gone, and has ended
    // or gone back to sleep in a wait of another system call: only then
    // are more jobs sent, which it could take instead. It must be seen
    // asleep after the busy worker was: a worker asleep on the queue's
    // lock, which the busy one holds for a moment, has not yet looked at
    // the queue, and once the busy worker sleeps nobody holds that lock.
    // `syscall` names a call only while the thread is blocked in it: a
    // thread between two calls (just out of the hold) counts as not yet
    // asleep.
    while task::state(idle.tid).is_some()
        && !(task::asleep(busy)
            && task::syscall(idle.tid).is_some_and(|call| call != held_in))
    {
        thread::yield_now();
    }

    // Both workers are still there, and run two jobs at once.
    let (started, starts) = channel::unbounded();
    let (open, gate) = channel::bounded::<()>(0);
    for _ in 0..SIZE {
        let (started, gate) = (started.clone(), gate.clone());
        pool.execute(move || {
            started.send(()).unwrap();
            let _ = gate.recv(); // Until both jobs run.
        });
    }
    let mut running = 0;
    while running < SIZE {
        if starts.try_recv().is_ok() {
            running += 1;
            continue;
        }
        assert!(
            task::state(idle.tid).is_some(),
            "a worker thread ended after it was woken while another worker \
             took the job it was woken for: a woken worker that finds no \
             job goes back to waiting (with a Condvar, wait in a `while` \
             loop, not an `if`), and the pool keeps its threads until it \
             is dropped"
        );
        thread::yield_now();
    }
    drop(open);
    drop(pool);
}
