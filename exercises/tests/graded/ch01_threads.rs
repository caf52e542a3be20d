//! Graded trials of chapter 1, Threads.
//!
//! The "how" checks: jobs and chunks wait for each other at barriers and
//! channels, so a version that runs them one after another never gets past
//! the first one, and the grader reports a TIMEOUT that says why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch01")]

use std::collections::HashSet;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::Trial;
use exercises::ch01_threads::{
    VisitCounter, parallel_sum, spawn_all, spawn_worker,
};

/// Deadline for trials whose only way to hang is a missing thread.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

const NOT_AT_ONCE: &str = "did not run the jobs at the same time: each \
    job waits for another one that was never started (did you join each \
    thread inside the loop that spawns them?)";

const CHUNKS_NOT_AT_ONCE: &str = "did not sum the chunks at the same time: \
    each chunk waits at a barrier until every chunk has started";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch01::spawn_all::returns_results_in_input_order",
            2,
            returns_results_in_input_order,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(NOT_AT_ONCE),
        Trial::new(
            "ch01::spawn_all::runs_every_job_on_its_own_thread",
            2,
            runs_every_job_on_its_own_thread,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(NOT_AT_ONCE),
        Trial::new(
            "ch01::spawn_all::a_panicking_job_panics_the_caller",
            1,
            a_panicking_job_panics_the_caller,
        ),
        Trial::new(
            "ch01::parallel_sum::adds_every_element_once",
            1,
            adds_every_element_once,
        ),
        Trial::new(
            "ch01::parallel_sum::sums_the_chunks_at_once",
            2,
            sums_the_chunks_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(CHUNKS_NOT_AT_ONCE),
        Trial::new(
            "ch01::parallel_sum::borrows_balanced_chunks",
            2,
            borrows_balanced_chunks,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(CHUNKS_NOT_AT_ONCE),
        Trial::new("ch01::spawn_worker::names_the_thread", 1, names_the_thread),
        Trial::new(
            "ch01::spawn_worker::gives_the_requested_stack",
            2,
            gives_the_requested_stack,
        ),
        Trial::new(
            "ch01::spawn_worker::reports_a_stack_too_big_to_create",
            1,
            reports_a_stack_too_big_to_create,
        ),
        Trial::new(
            "ch01::visit_counter::counts_every_visit",
            2,
            counts_every_visit,
        ),
        Trial::new(
            "ch01::visit_counter::hands_out_each_ticket_once",
            2,
            hands_out_each_ticket_once,
        ),
    ]
}

/// Job `i` finishes only after job `i + 1` has, so the jobs finish in
/// reverse order; the results must still come back in input order.
fn returns_results_in_input_order() {
    const JOBS: usize = 4;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..JOBS).map(|_| mpsc::channel::<()>()).unzip();
    let mut senders: Vec<Option<mpsc::Sender<()>>> =
        senders.into_iter().map(Some).collect();
    let mut jobs = Vec::new();
    for (index, done_after_me) in receivers.into_iter().enumerate() {
        // Job `index` tells job `index - 1` when it is done.
        let tell_previous =
            index.checked_sub(1).and_then(|p| senders[p].take());
        let wait_for_next = (index + 1 < JOBS).then_some(done_after_me);
        jobs.push(move || {
            if let Some(next) = wait_for_next {
                next.recv().expect("the next job vanished");
            }
            if let Some(previous) = tell_previous {
                let _ = previous.send(());
            }
            index * 10
        });
    }
    let results = spawn_all(jobs);
    assert_eq!(
        results,
        vec![0, 10, 20, 30],
        "the jobs finished last-to-first; results must still be in the \
         order of the jobs (join the handles in order)"
    );
}

/// Six jobs meet at a barrier of six, each reporting the thread it ran on.
fn runs_every_job_on_its_own_thread() {
    const JOBS: usize = 6;
    let barrier = Arc::new(Barrier::new(JOBS));
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            move || {
                barrier.wait();
                thread::current().id()
            }
        })
        .collect();
    let ids: Vec<ThreadId> = spawn_all(jobs);
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), JOBS, "expected one result per job");
    assert_eq!(
        distinct.len(),
        JOBS,
        "expected {JOBS} distinct worker threads, saw {}",
        distinct.len()
    );
    assert!(
        !distinct.contains(&thread::current().id()),
        "a job ran on the calling thread; each job needs a thread of its own"
    );
}

/// A job that panics must not disappear silently, nor leave the other
/// jobs running behind the caller's back.
fn a_panicking_job_panics_the_caller() {
    let calm: Vec<fn() -> u32> = vec![|| 1, || 3];
    assert_eq!(spawn_all(calm), vec![1, 3], "two jobs that return 1 and 3");
    let slow_job_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&slow_job_done);
    let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(|| panic!("this job fails on purpose")),
        Box::new(move || {
            // Still running when the first job has long panicked.
            thread::sleep(Duration::from_millis(200));
            done.store(true, Ordering::SeqCst);
            2
        }),
    ];
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| spawn_all(jobs)));
    assert!(
        outcome.is_err(),
        "one job panicked, but spawn_all returned {:?}; a lost panic hides \
         a failed job (see JoinHandle::join and panic::resume_unwind)",
        outcome.unwrap()
    );
    assert!(
        slow_job_done.load(Ordering::SeqCst),
        "spawn_all panicked while another job was still running; join every \
         thread first, then re-raise the panic (panic::resume_unwind)"
    );
}

fn adds_every_element_once() {
    let data: Vec<u64> = (1..=1000).collect();
    for threads in [1, 2, 3, 7, 16] {
        let total = parallel_sum(&data, threads, |chunk| chunk.iter().sum());
        assert_eq!(
            total, 500_500,
            "sum of 1..=1000 with {threads} threads: expected 500500"
        );
    }
    let short = [5, 6];
    let total = parallel_sum(&short, 4, |chunk| chunk.iter().sum());
    assert_eq!(total, 11, "2 elements on 4 threads: two chunks are empty");
    assert_eq!(parallel_sum(&[], 3, |chunk| chunk.iter().sum()), 0);
}

/// Every chunk waits at a barrier until all chunks have started.
fn sums_the_chunks_at_once() {
    const THREADS: usize = 4;
    let data: Vec<u64> = (0..400).collect();
    let barrier = Barrier::new(THREADS);
    let callers = Mutex::new(HashSet::new());
    let total = parallel_sum(&data, THREADS, |chunk| {
        callers.lock().unwrap().insert(thread::current().id());
        barrier.wait();
        chunk.iter().sum()
    });
    assert_eq!(total, (0..400).sum::<u64>());
    let callers = callers.into_inner().unwrap();
    assert_eq!(
        callers.len(),
        THREADS,
        "expected {THREADS} distinct threads, saw {}",
        callers.len()
    );
}

/// The chunks must be pieces of the caller's slice (not copies), tile it
/// without gaps or overlaps, and differ in length by at most one.
fn borrows_balanced_chunks() {
    const THREADS: usize = 4;
    let data: Vec<u64> = (0..10).collect();
    let start = data.as_ptr() as usize;
    let size = std::mem::size_of::<u64>();
    let seen = Mutex::new(Vec::new());
    let barrier = Barrier::new(THREADS);
    parallel_sum(&data, THREADS, |chunk| {
        let address = chunk.as_ptr() as usize;
        seen.lock().unwrap().push((address, chunk.len()));
        barrier.wait();
        0
    });
    let mut seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), THREADS, "expected one call per thread");
    seen.sort();
    let mut expected_offset = 0;
    for &(address, len) in &seen {
        let borrowed = address >= start
            && address <= start + data.len() * size
            && (address - start).is_multiple_of(size);
        assert!(
            borrowed,
            "a chunk is not part of the caller's slice: it was copied \
             (scoped threads can borrow the slice itself)"
        );
        assert_eq!(
            (address - start) / size,
            expected_offset,
            "the chunks leave a gap or overlap"
        );
        expected_offset += len;
    }
    assert_eq!(expected_offset, data.len(), "the chunks miss elements");
    let lengths: Vec<usize> = seen.iter().map(|&(_, len)| len).collect();
    let (shortest, longest) =
        (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
    assert!(
        longest - shortest <= 1,
        "10 elements on 4 threads should give chunks of 3, 3, 2, 2; got \
         lengths {lengths:?}"
    );
}

fn names_the_thread() {
    let handle = spawn_worker("pixel-worker-7", 1 << 20, || {
        thread::current().name().map(str::to_owned)
    })
    .expect("spawn_worker failed");
    let seen_inside = handle.join().unwrap();
    assert_eq!(
        seen_inside.as_deref(),
        Some("pixel-worker-7"),
        "inside the job, thread::current().name() must be the name given \
         to spawn_worker (see thread::Builder::name)"
    );
}

/// Recursion that needs about 16 MiB of stack: far more than the 2 MiB a
/// spawned thread gets by default, far less than the 64 MiB requested.
fn gives_the_requested_stack() {
    fn descend(depth: u32) -> u64 {
        let frame = black_box([depth as u8; 16 * 1024]);
        if depth == 0 {
            return u64::from(frame[0]);
        }
        u64::from(frame[100]) + descend(black_box(depth - 1))
    }
    let handle = spawn_worker("deep-recursion", 64 << 20, || descend(1000))
        .expect("spawn_worker failed");
    assert!(handle.join().is_ok());
}

/// 256 TiB of stack cannot be mapped: the error must come back as `Err`.
fn reports_a_stack_too_big_to_create() {
    let handle = spawn_worker("small", 1 << 20, || 7).expect("a 1 MiB stack");
    assert_eq!(handle.join().unwrap(), 7, "the job's result");
    let outcome = panic::catch_unwind(|| spawn_worker("huge", 1 << 48, || ()));
    match outcome {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("a thread with a 256 TiB stack cannot exist"),
        Err(_) => panic!(
            "spawn_worker panicked; it must return the io::Error instead \
             (thread::Builder::spawn returns a Result)"
        ),
    }
}

const VISITORS: usize = 8;
const VISITS_EACH: u64 = 5_000;

/// A lost update needs two threads inside `record` at the same instant, so
/// one round may miss it: the counting is repeated, each round starting all
/// threads together at a barrier, until a round comes out wrong or enough
/// rounds came out right. A correct counter is never wrong; more rounds
/// only make a broken one likelier to show.
const ROUNDS: usize = 20;

/// One round: every visitor records `VISITS_EACH` visits on a fresh
/// counter; returns the counter and every ticket handed out, sorted.
fn one_round() -> (VisitCounter, Vec<u64>) {
    let counter = VisitCounter::new();
    let start = Barrier::new(VISITORS);
    let mut tickets: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..VISITORS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    (0..VISITS_EACH)
                        .map(|_| counter.record())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    tickets.sort_unstable();
    (counter, tickets)
}

/// Eight threads start together and record visits as fast as they can.
fn counts_every_visit() {
    assert_eq!(VisitCounter::new().total(), 0, "a new counter starts at 0");
    let expected = VISITORS as u64 * VISITS_EACH;
    for round in 1..=ROUNDS {
        let (counter, _) = one_round();
        let total = counter.total();
        assert_eq!(
            total,
            expected,
            "{VISITORS} threads recorded {VISITS_EACH} visits each, but the \
             total is {total} (round {round}): {}",
            if total < expected {
                "lost updates, from a read and a write that are two steps"
            } else {
                "more visits than were recorded"
            }
        );
    }
}

/// Every visit gets its own ticket: 1, 2, ..., n, each exactly once.
fn hands_out_each_ticket_once() {
    for round in 1..=ROUNDS {
        let (_, tickets) = one_round();
        let n = tickets.len() as u64;
        if tickets.first() == Some(&0) {
            panic!(
                "the first visit got ticket 0, but tickets start at 1 \
                 (fetch_add returns the value from before the addition)"
            );
        }
        if let Some(pair) = tickets.windows(2).find(|p| p[0] == p[1]) {
            panic!(
                "ticket {} was handed out twice (round {round}): two \
                 visits read the same count before either wrote it back",
                pair[0]
            );
        }
        assert!(
            tickets.iter().copied().eq(1..=n),
            "tickets must be exactly 1..={n}; got {}..={}",
            tickets[0],
            tickets[tickets.len() - 1]
        );
    }
}
