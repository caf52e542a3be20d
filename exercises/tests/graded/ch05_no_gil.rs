//! Graded trials of chapter 5, Removing the GIL.
//!
//! The "how" checks: image bands and blur bands wait at a barrier for every
//! band, requests wait for every request to have started, and two keys in
//! different shards are held at the same moment, so a sequential version
//! or one global lock times out and is told why. At the edges: more bands
//! than rows leave the extra bands empty, and no bands at all panic.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch05")]

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

mod blur;
mod fetch_all;
mod in_bands;
mod os;
mod sharded_map;
mod sharded_map_poison;
mod spawn_failure;
mod spawn_hold;

use blur::{
    blur_zero_bands_panics, blurs_the_bands_at_once,
    calls_on_band_for_every_band, matches_the_sequential_blur,
};
use course::grader::{Trial, task};
use fetch_all::{
    a_failed_request_panics_the_caller, fetches_every_url_on_its_own_thread,
    returns_responses_in_order, starts_every_request_at_once,
};
use in_bands::{
    a_panicking_kernel_panics_the_caller, bands_are_balanced_whole_rows,
    in_zero_bands_panics, matches_the_sequential_result,
    processes_the_bands_at_once, runs_each_band_on_its_own_thread,
};
use sharded_map::{
    counts_from_many_threads, get_waits_only_on_its_shard,
    holds_two_shards_at_once, sharded_map_frees_its_keys, zero_shards_make_one,
};
use sharded_map_poison::survives_a_panicking_f;

/// Deadline for trials whose only way to hang is missing concurrency.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for the trials that start 2,000 threads of their own, or fill
/// a map of 2,200,000 shards: a few seconds alone, and several times that
/// on a loaded machine. Only a hang goes on for longer.
const LARGE_TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch05::in_bands::matches_the_sequential_result",
            1,
            matches_the_sequential_result,
        ),
        Trial::new(
            "ch05::in_bands::processes_the_bands_at_once",
            2,
            processes_the_bands_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not process the bands at the same time: each band waits \
             at a barrier until every band has started (4 bands of 20 rows, \
             then 8 bands of 3 rows, whose 5 empty bands run at the same \
             time as the others, not after them, then 2,000 bands: start \
             every band's thread, not a wave of them at a time)",
        ),
        Trial::new(
            "ch05::in_bands::bands_are_balanced_whole_rows",
            1,
            bands_are_balanced_whole_rows,
        )
        .timeout(BARRIER_TIMEOUT),
        Trial::new(
            "ch05::in_bands::runs_each_band_on_its_own_thread",
            1,
            runs_each_band_on_its_own_thread,
        ),
        Trial::new("ch05::in_bands::zero_bands_panic", 1, in_zero_bands_panics),
        Trial::new(
            "ch05::in_bands::a_panicking_kernel_panics_the_caller",
            1,
            a_panicking_kernel_panics_the_caller,
        )
        .on_timeout(
            "hung while only 2 of 4 bands' threads could start: the bands \
             that started must not wait for the others (a start barrier \
             for every band waits forever, and the scope waits for it \
             before it panics)",
        ),
        Trial::new(
            "ch05::blur::matches_the_sequential_blur",
            2,
            matches_the_sequential_blur,
        ),
        Trial::new(
            "ch05::blur::blurs_the_bands_at_once",
            2,
            blurs_the_bands_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not blur the bands at the same time: each band's thread \
             calls on_band, which waits until every band has started (3 \
             bands, then 40, then 2,000: start every band's thread, not a \
             batch at a time)",
        ),
        Trial::new(
            "ch05::blur::calls_on_band_for_every_band",
            1,
            calls_on_band_for_every_band,
        )
        .on_timeout(
            "hung while only 2 of 4 bands' threads could start: the bands \
             that started must not wait for the others (a start barrier \
             for every band waits forever, and the scope waits for it \
             before it panics)",
        ),
        Trial::new("ch05::blur::zero_bands_panic", 1, blur_zero_bands_panics),
        Trial::new(
            "ch05::sharded_map::counts_from_many_threads",
            1,
            counts_from_many_threads,
        )
        .timeout(LARGE_TRIAL_TIMEOUT),
        Trial::new(
            "ch05::sharded_map::holds_two_shards_at_once",
            3,
            holds_two_shards_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "keys in different shards (by shard_of) could not all be held \
             at the same time: is there one lock for the whole map, or does \
             update lock a shard other than the one shard_of names (a \
             hash masked with shards - 1, with 3 or 5 shards)?",
        ),
        Trial::new(
            "ch05::sharded_map::get_waits_only_on_its_shard",
            1,
            get_waits_only_on_its_shard,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "get waited for a shard other than its key's: while another \
             thread is inside update on a key of one shard, get of keys \
             in the other shards (present or absent) must not wait; lock \
             only the shard that shard_of(key) names (a get of a key in \
             the busy shard must wait, asleep on the shard's lock, not \
             spin)",
        ),
        Trial::new(
            "ch05::sharded_map::zero_shards_make_one",
            1,
            zero_shards_make_one,
        ),
        Trial::new(
            "ch05::sharded_map::frees_its_keys",
            1,
            sharded_map_frees_its_keys,
        ),
        Trial::new(
            "ch05::sharded_map::survives_a_panicking_f",
            1,
            survives_a_panicking_f,
        ),
        Trial::new(
            "ch05::fetch_all::returns_responses_in_order",
            1,
            returns_responses_in_order,
        ),
        Trial::new(
            "ch05::fetch_all::starts_every_request_at_once",
            2,
            starts_every_request_at_once,
        )
        .timeout(LARGE_TRIAL_TIMEOUT)
        .on_timeout(
            "did not start every request before waiting for one: each \
             request waits until all 2,000 have started, on a machine of \
             one core too (no cap on the requests in flight, not even one \
             that grows with the cores, such as 1,024 a core)",
        ),
        Trial::new(
            "ch05::fetch_all::fetches_every_url_on_its_own_thread",
            1,
            fetches_every_url_on_its_own_thread,
        ),
        Trial::new(
            "ch05::fetch_all::a_failed_request_panics_the_caller",
            1,
            a_failed_request_panics_the_caller,
        )
        .on_timeout(
            "hung while only 2 of 4 requests' threads could start: the \
             requests that started must not wait for the others (a start \
             barrier for every request waits forever, and the scope waits \
             for it before it panics)",
        ),
    ]
}

/// Whether `f` panics. The panic's message still goes to the trial's
/// output, where it does no harm.
fn panics<T>(f: impl FnOnce() -> T) -> bool {
    panic::catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// The calling thread starts the bands (or, in `blur`, their threads; in
/// `fetch_all`, the requests) and then only waits, asleep until a band's
/// end wakes it (in `join`, or at the end of `thread::scope`): it neither
/// spins on `is_finished`, which takes a core from the bands, nor polls
/// with `thread::sleep` (or a wait with a timeout) between looks, which
/// wakes it for nothing and finds a band's end late. `run` starts two,
/// each calling the `wait` it is given: both are held there until the
/// caller has been seen in a wait with no deadline 100 times in a row (it
/// stays there: they wait), or in a sleep or a wait with a deadline once,
/// or it has used a fifth of a second of CPU time
/// (`course::grader::task::watch_until_asleep`). Nor does it spin a
/// moment before it sleeps (on `is_finished`, for up to a tenth of a
/// second, say): from the moment both have started until it is seen
/// asleep, it may use [`CALLER_CPU_WHILE_WAITING`] of CPU time, which the
/// rest of starting a thread and going to sleep never comes near, however
/// loaded the machine (time it waits for a CPU is not counted). All the
/// while, `std::thread::available_parallelism()` says the machine has many
/// cores to spare (`os::with_cores_to_spare`): the caller sleeps there too.
fn the_caller_sleeps_until_woken(
    what: &str,
    run: impl FnOnce(&(dyn Fn() + Sync)),
) {
    let caller = os::current_tid();
    let started = Barrier::new(2);
    let watcher = AtomicUsize::new(0);
    let done = Barrier::new(2);
    let seen = Mutex::new(None);
    os::with_cores_to_spare(|| {
        run(&|| {
            started.wait(); // Both threads are running.
            if watcher.fetch_add(1, Ordering::SeqCst) == 0 {
                let before = task::scheduled(caller).running;
                let watched = task::watch_until_asleep(caller);
                let used = task::scheduled(caller).running - before;
                *seen.lock().unwrap() = Some((watched, used));
            }
            done.wait(); // The other thread waits for the watcher.
        });
    });
    let cores = os::PRETENDED;
    match seen.into_inner().unwrap() {
        Some((task::Watched::AsleepUntilWoken, used))
            if used > CALLER_CPU_WHILE_WAITING =>
        {
            panic!(
                "while both {what}s waited, the calling thread used \
                 {used:?} of CPU time before it went to sleep: it goes \
                 straight to sleep in join (or at the end of the scope), \
                 rather than spin on is_finished a moment first (spinning \
                 takes a core the {what}s may need, also on a machine of \
                 {cores} cores, as this one says it is)"
            )
        }
        Some((task::Watched::AsleepUntilWoken, _)) => {}
        Some((task::Watched::Busy, _)) => panic!(
            "while both {what}s waited, the calling thread used a fifth of \
             a second of CPU time without going to sleep: it only waits for \
             the {what}s (join each handle, or let the scope join them), \
             rather than spin on is_finished, also when cores are spare \
             (this machine says it has {cores})"
        ),
        Some((task::Watched::Polling(line), _)) => panic!(
            "while both {what}s waited, the calling thread was seen in a \
             sleep or a wait with a deadline (/proc: {line}): it waits in \
             join, or at the end of the scope, until a {what}'s end wakes \
             it, rather than poll is_finished with thread::sleep between \
             looks"
        ),
        None => panic!(
            "the {what}s' code never ran, so the calling thread could not \
             be watched"
        ),
    }
}

/// The CPU time the calling thread may use in
/// [`the_caller_sleeps_until_woken`] from the moment both of its threads
/// have started until it is seen asleep (2 ms): what is left of starting a
/// thread, and going to sleep, takes microseconds.
const CALLER_CPU_WHILE_WAITING: Duration = Duration::from_millis(2);

/// `ids` holds `expected` threads, all different, none of them this one
/// (a thread's id is never reused, even after the thread has ended).
fn assert_one_thread_each(ids: Vec<ThreadId>, expected: usize, what: &str) {
    assert_eq!(
        ids.len(),
        expected,
        "expected {expected} calls, one per {what}"
    );
    assert!(
        !ids.contains(&thread::current().id()),
        "a {what} ran on the calling thread; each {what} needs a thread of \
         its own"
    );
    let distinct: HashSet<ThreadId> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        expected,
        "{expected} of them ran on only {} threads; each {what} needs a \
         thread of its own",
        distinct.len()
    );
}

/// Where a kernel, a fetch or an `on_band` ran: how many times on the
/// thread that made this, and how many times on other threads.
pub(super) struct WhereRan {
    caller: ThreadId,
    pub(super) on_caller: AtomicUsize,
    pub(super) elsewhere: AtomicUsize,
}

impl WhereRan {
    pub(super) fn new() -> Self {
        WhereRan {
            caller: thread::current().id(),
            on_caller: AtomicUsize::new(0),
            elsewhere: AtomicUsize::new(0),
        }
    }

    /// Counts one run, on the thread that calls this.
    pub(super) fn note(&self) {
        if thread::current().id() == self.caller {
            self.on_caller.fetch_add(1, Ordering::SeqCst);
        } else {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
        }
    }
}
