//! `detach`: native jobs at once, each on a thread of its own with a
//! full stack, the GIL taken once before and once after each; and a job's
//! panic passed on once the others have ended, their results dropped.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use course::gil::Gil;
use course::grader::{spawn_limit, stack};
use exercises::ch03_gil::detach;

use super::HandOverEvery;
use super::detach_native::{
    LARGE_DEFAULT_STACK, on_one_cpu, own_stack_size, set_the_default_stack,
};

/// How much stack the first job uses: half of the 2 MiB a new thread gets
/// by default (the grader unsets `RUST_MIN_STACK`; the trial raises it to
/// 2.5 MiB), and far more than a stack cut down to make hundreds of threads
/// cheap (64 KiB, say) holds.
const JOB_STACK: usize = 1 << 20;

/// Fills `JOB_STACK` bytes of the calling thread's stack. On a stack too
/// small for them, the thread overflows it, which aborts the process.
#[inline(never)]
fn use_a_native_amount_of_stack() {
    let frame = [1_u8; JOB_STACK];
    std::hint::black_box(&frame);
}

/// More jobs than any machine has cores, and more than a cap on the
/// threads such as 16 or 64 would start at once: each waits for all the
/// others at a barrier. The first job needs 1 MiB of stack, as a native
/// call may: a thread with the default stack has room for it. Then the
/// same with `MANY_JOBS`, the last of which needs the 1 MiB (the first
/// threads may get the stacks of threads that have ended, cached by the C
/// library and larger than they asked for; all the jobs wait at the
/// barrier, so none ends before the last has its own, new stack). Then
/// quick jobs, each of which must run on a thread of its own. First of
/// all, the trial raises the stack a new thread gets by default to 2.5 MiB
/// (`RUST_MIN_STACK`), as a user may: a job's thread must get that much,
/// not a stack size spelled out as "the default" (2 MiB).
pub(super) fn runs_native_jobs_at_once() {
    let default = stack::raise_the_default_stack();
    let gil = Gil::new();
    at_a_barrier(&gil, 200, 0, default);
    // On one CPU, as on a single-core machine: a cap or waves of 1,024
    // threads per core start only 1,024 of them.
    on_one_cpu(|| at_a_barrier(&gil, MANY_JOBS, MANY_JOBS - 1, default));
    every_job_on_a_new_thread(&gil, 1);
    every_job_on_a_new_thread(&gil, MANY_JOBS);
    // As on a single-core machine: the jobs still run on threads of their
    // own (no running them on the caller because no two could run at once).
    on_one_cpu(|| {
        every_job_on_a_new_thread(&gil, 1);
        every_job_on_a_new_thread(&gil, 3);
    });
}

/// Runs `jobs` jobs that wait for each other at a barrier; job `deep` uses
/// `JOB_STACK` of stack first, and every job checks that its thread has at
/// least the `default` stack, the one a new thread gets by default (2 MiB
/// unless `RUST_MIN_STACK` says otherwise: not a decimal 2 MB, nor a size
/// spelled out, 2 MiB or more, when the default is more). A thread may get
/// a larger stack than it asked for, one of a thread that has ended, kept
/// by the C library; all the jobs wait at the barrier, so with more jobs
/// than it keeps stacks (20 of 2 MiB), some get new ones.
fn at_a_barrier(gil: &Gil, jobs: usize, deep: usize, default: usize) {
    let barrier = Barrier::new(jobs);
    let smallest = Mutex::new(None::<(usize, usize)>);
    let work: Vec<_> = (0..jobs)
        .map(|n| {
            let (barrier, smallest) = (&barrier, &smallest);
            move || {
                if n == deep {
                    use_a_native_amount_of_stack();
                }
                if let Some(size) = own_stack_size() {
                    let mut smallest = smallest.lock().unwrap();
                    if smallest.is_none_or(|(_, least)| size < least) {
                        *smallest = Some((n, size));
                    }
                }
                barrier.wait(); // Every job is running at this moment.
                n * 10
            }
        })
        .collect();
    let expected: Vec<_> = (0..jobs).map(|n| n * 10).collect();
    assert!(detach(gil, work) == expected, "the results, in job order");
    if let Some((job, size)) = smallest.into_inner().unwrap() {
        assert!(
            size >= default,
            "job {job} of {jobs} ran on a thread with {size} bytes of stack, \
             less than the {default} a new thread gets by default here \
             (RUST_MIN_STACK bytes when that is set, as the trial may do, \
             else 2 MiB): leave the stack size alone, and the standard \
             library gives each thread the default (a stack_size of your \
             own overrides RUST_MIN_STACK, however large, and one read \
             from RUST_MIN_STACK by hand may not be the default: std reads \
             it once, when it starts its first thread; \
             Builder::stack_size(2_000_000) is 2 MB, less than 2 MiB, and a \
             stack_size(3 << 20), 3 MiB, is less than a RUST_MIN_STACK of \
             more)"
        );
    }
}

/// Enough jobs that a stack budget shared out between their threads (512
/// MiB, say) leaves each less than `JOB_STACK`; and more than 1,024, a
/// number a solution may take for a limit of the machine's (`ulimit -n`):
/// threads started in waves of 1,024, or stacks cut down past 1,024 jobs,
/// fail here. (1,280 threads with the 2.5 MiB stack the trial sets fit in
/// the 4 GiB a trial may map.)
const MANY_JOBS: usize = 1280;

/// `jobs` jobs that return at once, each with the id of the thread it ran
/// on. Each job runs on a thread of its own: none on the calling thread
/// (not even a single job), and no thread runs two (a shared queue of jobs
/// that a thread goes back to once its job is done runs many quick jobs on
/// one thread).
fn every_job_on_a_new_thread(gil: &Gil, jobs: usize) {
    let caller = thread::current().id();
    let work: Vec<_> = (0..jobs).map(|_| || thread::current().id()).collect();
    let ran_on = detach(gil, work);
    assert_eq!(ran_on.len(), jobs, "a result per job");
    assert!(
        !ran_on.contains(&caller),
        "of {jobs} job(s), one ran on the thread that called detach: run \
         every job on a thread of its own, even a single one"
    );
    let threads: HashSet<_> = ran_on.iter().collect();
    assert_eq!(
        threads.len(),
        jobs,
        "{jobs} quick jobs ran on only {} threads: some thread ran several \
         (one taking jobs from a shared queue, as a pool does?); run every \
         job on a thread of its own, spawned for it",
        threads.len()
    );
}

/// Three jobs meet at a barrier, then count the GIL's acquisitions, then
/// meet again: meanwhile every job has started and none has ended, so the
/// GIL has been taken exactly once per job, before it. After `detach`, it
/// has been taken once more per job, after it.
pub(super) fn takes_the_gil_before_and_after() {
    const JOBS: usize = 3;
    // A default stack larger than any stack size spelled out: each job's
    // thread gets it too.
    let default = set_the_default_stack(LARGE_DEFAULT_STACK);
    at_a_barrier(&Gil::new(), JOBS, 0, default);
    let gil = Gil::new();
    // The calling thread takes the GIL once first: every later acquisition
    // it made itself would then be no switch (`stats().switches`).
    drop(gil.acquire());
    let held_during_job = AtomicUsize::new(0);
    let all_started = Barrier::new(JOBS);
    let all_counted = Barrier::new(JOBS);
    let taken_meanwhile = Mutex::new(Vec::new());
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let (gil, held) = (&gil, &held_during_job);
            let (all_started, all_counted) = (&all_started, &all_counted);
            let taken_meanwhile = &taken_meanwhile;
            move || {
                if gil.is_held_by_current_thread() {
                    held.fetch_add(1, Ordering::SeqCst);
                }
                all_started.wait();
                let stats = gil.stats();
                taken_meanwhile
                    .lock()
                    .unwrap()
                    .push((stats.acquisitions, stats.switches));
                all_counted.wait();
            }
        })
        .collect();
    detach(&gil, jobs);
    assert_eq!(
        held_during_job.load(Ordering::SeqCst),
        0,
        "a job ran while its thread held the GIL"
    );
    let taken_meanwhile = taken_meanwhile.into_inner().unwrap();
    let once = JOBS as u64 + 1;
    assert!(
        taken_meanwhile.iter().all(|&(taken, _)| taken == once),
        "while all {JOBS} jobs were running, none of them done yet, the GIL \
         had been taken {taken_meanwhile:?} times (as each job saw it, \
         counting the trial's own acquisition first), not {once}: each \
         thread takes it once before its job, to pick the job up, and once \
         after, to hand the result back"
    );
    assert!(
        taken_meanwhile
            .iter()
            .all(|&(_, switches)| switches == once),
        "while all {JOBS} jobs were running, the GIL had changed hands \
         {taken_meanwhile:?} times (as each job saw it: acquisitions, \
         switches), not {once}: each job's own thread takes it before its \
         job, not the thread that called detach"
    );
    let stats = gil.stats();
    assert_eq!(
        stats.acquisitions,
        2 * JOBS as u64 + 1,
        "each of the {JOBS} threads should take the GIL twice, before and \
         after its job, as a call from Python into native code does; the \
         GIL was taken {} times (counting the trial's own acquisition first)",
        stats.acquisitions
    );
    assert!(
        stats.switches >= 2 * JOBS as u64,
        "the GIL changed hands only {} times: after its job, each job's own \
         thread takes the GIL to hand its result back, not the thread that \
         called detach (3 threads taking it one after another make at \
         least 2 more switches)",
        stats.switches
    );
    // A single job too: its thread takes the GIL before and after it.
    let lone = Gil::new();
    detach(&lone, vec![|| ()]);
    let taken = lone.stats().acquisitions;
    assert_eq!(
        taken, 2,
        "a single job ran, and the GIL was taken {taken} times during \
         detach, not 2: a job alone is picked up and handed back under the \
         GIL as well, by its own thread, once before the job and once after \
         it (there is nobody to wait for, but the GIL still guards the \
         interpreter's data that the pickup and hand-back touch)"
    );
    queued_pickups_take_the_gil_once(Gil::new(), "Manual");
    // A policy that would hand the GIL over at the next tick: a thread that
    // ticks at pickup hands it to the threads queued behind it.
    queued_pickups_take_the_gil_once(
        Gil::with_policy(HandOverEvery(1)),
        "hand-over-every-tick",
    );
}

/// Another thread holds the GIL until the threads of all three jobs wait
/// for it to pick their jobs up; the jobs then meet at a barrier and count
/// the GIL's acquisitions. Each thread took it once to pick its job up,
/// even with the others queued behind it: it did not hand it over to them
/// (`yield_now`) and take it back before its job, nor tick, which on
/// `gil`'s policy hands the GIL over.
fn queued_pickups_take_the_gil_once(gil: Gil, policy: &str) {
    const JOBS: usize = 3;
    let all_started = Barrier::new(JOBS);
    let all_counted = Barrier::new(JOBS);
    let taken_meanwhile = Mutex::new(Vec::new());
    thread::scope(|s| {
        let gil = &gil;
        let (holding, held) = mpsc::channel();
        s.spawn(move || {
            let _held = gil.acquire();
            holding.send(()).expect("the trial vanished");
            while gil.waiting() < JOBS {
                thread::sleep(Duration::from_millis(1));
            }
        });
        held.recv().expect("the holding thread vanished");
        let jobs: Vec<_> = (0..JOBS)
            .map(|_| {
                let (all_started, all_counted) = (&all_started, &all_counted);
                let taken_meanwhile = &taken_meanwhile;
                move || {
                    all_started.wait();
                    let taken = gil.stats().acquisitions;
                    taken_meanwhile.lock().unwrap().push(taken);
                    all_counted.wait();
                }
            })
            .collect();
        detach(gil, jobs);
    });
    let taken_meanwhile = taken_meanwhile.into_inner().unwrap();
    let once = JOBS as u64 + 1;
    assert!(
        taken_meanwhile.iter().all(|&taken| taken == once),
        "another thread held the GIL until the threads of all {JOBS} jobs \
         waited for it; while the jobs ran, none done yet, the GIL had been \
         taken {taken_meanwhile:?} times (as each job saw it, counting that \
         thread's acquisition first), not {once}, on a Gil with the \
         {policy} policy: each thread takes it once to pick its job up and \
         lets it go, without handing it to the threads queued behind it \
         (yield_now) and taking it back, and without ticking \
         (GilGuard::tick, which lets the policy switch)"
    );
}

/// No thread can start: `detach` must panic, as `Scope::spawn` does, not
/// run the job on the calling thread instead (nor return no result).
fn no_thread_can_start(gil: &Gil) {
    let caller = thread::current().id();
    let outcome = spawn_limit::while_no_thread_can_start(|| {
        detach(gil, vec![|| thread::current().id()])
    });
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a job \
             whose thread cannot start is not checked"
        ),
        // A thread with a stack smaller than the default may still start.
        Some(Ok(ran_on)) if ran_on.len() == 1 && ran_on[0] != caller => {}
        Some(Ok(ran_on)) => panic!(
            "no thread with the default stack could start, yet detach \
             returned {} result(s){}: a job whose thread cannot start must \
             make detach panic, as Scope::spawn does, not run on the calling \
             thread (nor be skipped)",
            ran_on.len(),
            if ran_on.contains(&caller) {
                ", the job having run on the calling thread"
            } else {
                ""
            }
        ),
        Some(Err(_)) => {}
    }
}

/// Two jobs' threads start, and the third cannot: `detach` must panic (or,
/// if a job's thread ended in time to give its stack to the next, return
/// every result, each from a thread of its own). The threads that did
/// start must not wait for the others: a start barrier for every job
/// hangs, as the scope waits for them before it lets the panic out.
fn some_threads_cannot_start(gil: &Gil) {
    const JOBS: usize = 4;
    let caller = thread::current().id();
    let outcome = spawn_limit::while_only_threads_can_start(2, || {
        detach(gil, (0..JOBS).map(|_| || thread::current().id()).collect())
    });
    match outcome {
        None => eprintln!(
            "note: RLIMIT_DATA or the C library's stack cache works \
             otherwise here, so jobs whose threads start while a later one's \
             cannot are not checked"
        ),
        Some(Ok(ran_on))
            if ran_on.len() == JOBS && !ran_on.contains(&caller) => {}
        Some(Ok(ran_on)) => panic!(
            "only 2 threads could start, yet detach of {JOBS} jobs returned \
             {} result(s){}: a job whose thread cannot start must make \
             detach panic, as Scope::spawn does",
            ran_on.len(),
            if ran_on.contains(&caller) {
                ", a job having run on the calling thread"
            } else {
                ""
            }
        ),
        Some(Err(_)) => {}
    }
}

/// A job panics with `panic!("the native job failed")`, another returns:
/// `detach` panics with that `&'static str`, and the process's panic hook
/// reports the panic once, on the job's thread. A `detach` that raises a
/// new panic with the same payload (`panic::panic_any`) keeps the payload
/// but has the hook report it twice, the second time on the calling
/// thread.
fn a_panic_with_a_message_is_passed_on(gil: &Gil) {
    const FAILED: &str = "the native job failed";
    let hook_saw_it = super::count_hook_calls_of(|payload| {
        super::is_the_str(payload, FAILED)
    });
    let jobs: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new(|| panic!("the native job failed")),
        Box::new(|| {}),
    ];
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| detach(gil, jobs)));
    assert!(
        outcome.is_err_and(|payload| super::is_the_str(&*payload, FAILED)),
        "a job panicked with panic!(\"{FAILED}\"), and detach did not panic \
         with that job's own panic, payload unchanged"
    );
    let seen = hook_saw_it.load(Ordering::SeqCst);
    assert_eq!(
        seen, 1,
        "a job panicked with panic!(\"{FAILED}\"), and the process's panic \
         hook reported that panic {seen} times, not once: detach raised a \
         new panic with the same payload (panic::panic_any), which the hook \
         reports again, on the calling thread. Pass the job's own panic on \
         with std::panic::resume_unwind, which does not report it again"
    );
}

/// The payload of the panicking job: a type of the trial's own, so that a
/// panic `detach` raises itself cannot pass for the job's.
#[derive(Debug)]
struct NativeJobFailed;

/// Sets its flag when dropped: in a panicking job, while it unwinds.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A job's result that counts its own drop.
struct Counted<'a>(usize, &'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// First, no thread can start, then only two of four jobs' threads can:
/// `detach` panics. Then two jobs of five
/// panic (jobs 1 and 2), and the three others wait until
/// one has: they are still running when it panics. `detach` must panic
/// too, with a job's own panic, after the others have run to the end,
/// rather than return fewer results or raise a panic of its own; and the
/// results of the jobs that did not panic are dropped, not leaked.
pub(super) fn passes_a_job_panic_on() {
    const JOBS: usize = 5;
    const PANICKING: [usize; 2] = [1, 2];
    let gil = Gil::new();
    // First, before any thread of this process has ended (see the helper).
    no_thread_can_start(&gil);
    some_threads_cannot_start(&gil);
    // `RUST_MIN_STACK` is not set here: each job's thread gets 2 MiB, not a
    // decimal 2 MB of a default written out by hand. More jobs than the C
    // library keeps stacks of ended threads, so that some get new ones.
    at_a_barrier(&Gil::new(), 64, 63, stack::default_stack_bytes());
    a_panic_with_a_message_is_passed_on(&gil);
    let finished = AtomicUsize::new(0);
    let dropped = AtomicUsize::new(0);
    let panicked = AtomicBool::new(false);
    let jobs: Vec<_> = (0..JOBS)
        .map(|n| {
            let (finished, dropped) = (&finished, &dropped);
            let panicked = &panicked;
            move || {
                if PANICKING.contains(&n) {
                    let _unwinding = SetOnDrop(panicked);
                    panic::panic_any(NativeJobFailed);
                }
                while !panicked.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
                finished.fetch_add(1, Ordering::SeqCst);
                Counted(n, dropped)
            }
        })
        .collect();
    let before = gil.stats().acquisitions;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| detach(&gil, jobs)));
    let taken = gil.stats().acquisitions - before;
    let payload = match outcome {
        Ok(results) => panic!(
            "jobs {PANICKING:?} of {JOBS} panicked, yet detach returned the \
             results of jobs {:?}: a job's panic must reach the caller \
             (JoinHandle::join returns it as an Err; \
             std::panic::resume_unwind raises it again)",
            results.iter().map(|result| result.0).collect::<Vec<_>>()
        ),
        Err(payload) => payload,
    };
    let others = JOBS - PANICKING.len();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        others,
        "detach panicked before the other jobs had ended"
    );
    assert!(
        payload.is::<NativeJobFailed>(),
        "detach panicked, but not with a job's own panic: it raised one of \
         its own (an unwrap or an expect on the join, or a panic! with a new \
         message) instead of passing the payload of a job's panic on with \
         std::panic::resume_unwind; or, two jobs having panicked, it stopped \
         joining at the first panic it met (a collect into a Result, say) \
         while still in thread::scope's closure, and the scope, finding a \
         panicked thread nobody joined, raised its own \"a scoped thread \
         panicked\""
    );
    let dropped = dropped.load(Ordering::SeqCst);
    assert_eq!(
        dropped, others,
        "the {others} jobs that did not panic returned their results, and \
         only {dropped} were dropped by the time detach's panic reached the \
         caller: the others were leaked (a result may hold a file, a lock or \
         memory), as with MaybeUninit slots that a panic leaves unread; let \
         them be dropped"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "the GIL is free after detach"
    );
    let expected = (2 * JOBS - PANICKING.len()) as u64;
    assert_eq!(
        taken, expected,
        "jobs {PANICKING:?} of {JOBS} panicked, and the GIL was taken \
         {taken} times during detach, not {expected}: each job's thread \
         takes it once before its job, and once after it if the job \
         returned, and nobody else takes it (not the calling thread \
         either, to raise the panic: that would wait behind any thread \
         holding the GIL before the panic could come out)"
    );
}
