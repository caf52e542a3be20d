//! The thread pool survives a job whose panic carries a value whose own
//! `Drop` panics, again and again, and drops every such value; its jobs'
//! panics reach the process's panic hook, and leave nothing on the
//! worker's stack.

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam::channel;
use exercises::ch07_pools::ThreadPool;

use super::Hook;

/// What a job's panic carries in [`survives_a_payload_whose_drop_panics`]:
/// a value whose own `Drop` counts its drop and panics, with another such
/// value of one less depth, until the last, of depth 0, panics with a
/// message.
struct PanicsAsItIsDropped(u32, Arc<AtomicUsize>);

impl Drop for PanicsAsItIsDropped {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        if self.0 > 0 {
            panic::panic_any(PanicsAsItIsDropped(
                self.0 - 1,
                Arc::clone(&self.1),
            ));
        }
        panic!("what a panic carries panics as it is dropped (expected)");
    }
}

/// What the jobs' panics carry in [`panics_reach_the_hook_and_leave_no_trace`]:
/// the trial's hook counts them, and prints nothing.
struct Quiet;

/// Runs `f` with a panic hook that counts the panics that carry a [`Quiet`]
/// into `quiet`, drops those that carry a [`PanicsAsItIsDropped`] without a
/// word, and hands every other panic to the hook that was set before; puts
/// that hook back afterwards.
fn with_a_quiet_hook<R>(quiet: &Arc<AtomicUsize>, f: impl FnOnce() -> R) -> R {
    let previous: Arc<Hook> = Arc::from(panic::take_hook());
    {
        let (previous, quiet) = (Arc::clone(&previous), Arc::clone(quiet));
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            if payload.is::<Quiet>() {
                quiet.fetch_add(1, Ordering::SeqCst);
            } else if !payload.is::<PanicsAsItIsDropped>() {
                previous(info);
            }
        }));
    }
    let outcome = f();
    panic::set_hook(Box::new(move |info| previous(info)));
    outcome
}

/// Where the stack of the calling thread is now: the address of a local
/// of this function's own frame.
#[inline(never)]
fn stack_position() -> usize {
    let here = 0_u8;
    std::hint::black_box(&here) as *const u8 as usize
}

/// How many jobs panic in [`panics_reach_the_hook_and_leave_no_trace`].
const PANICS: usize = 4096;

/// How much deeper in its stack the job behind [`PANICS`] panicking jobs
/// may start than the job in front of them, on a pool of one thread: a
/// little, for two closures' frames of different sizes.
const STACK_SLACK: usize = 16 << 10;

/// A pool of one thread runs a job, then [`PANICS`] jobs that panic, then
/// another job. The process's panic hook, set before the pool was made,
/// sees every one of those panics (`catch_unwind` does not stop the hook
/// from running, and a pool that leaves the hook alone leaves it so for its
/// own jobs too), and the job behind the panics starts as high on its
/// worker's stack as the job in front of them: each panic is caught and
/// done with, and leaves no frame behind.
pub(crate) fn panics_reach_the_hook_and_leave_no_trace() {
    let reported = Arc::new(AtomicUsize::new(0));
    let positions = with_a_quiet_hook(&reported, || {
        let pool = ThreadPool::new(1);
        let (report, positions) = channel::unbounded();
        let first = report.clone();
        pool.execute(move || first.send(stack_position()).unwrap());
        for _ in 0..PANICS {
            pool.execute(|| panic::panic_any(Quiet));
        }
        pool.execute(move || report.send(stack_position()).unwrap());
        // Until both jobs that report have run, or have been dropped.
        let positions: Vec<usize> = positions.iter().collect();
        drop(pool);
        positions
    });
    let reported = reported.load(Ordering::SeqCst);
    assert_eq!(
        reported, PANICS,
        "a pool's jobs panicked {PANICS} times, and the process's panic hook, \
         set before the pool was made, saw {reported} of those panics: leave \
         the hook alone, for the pool's own jobs too (catch_unwind does not \
         stop the hook, which prints a panic's message, and that message is \
         how the user learns that a job failed)"
    );
    assert_eq!(
        positions.len(),
        2,
        "a pool of one thread ran {} of the 2 jobs around {PANICS} panicking \
         jobs: a panic in a job must not end its worker thread",
        positions.len()
    );
    let deeper = positions[0].saturating_sub(positions[1]);
    assert!(
        deeper <= STACK_SLACK,
        "on a pool of one thread, the job behind {PANICS} panicking jobs \
         started {} KiB deeper in its worker's stack than the job in front \
         of them: each panic left frames on the stack (a worker that, after \
         a panic, starts its loop again by calling itself, say), so every \
         panic leaves the later jobs less stack, and enough panics overflow \
         it; catch each job's panic inside the loop, so that every job \
         starts with the whole stack",
        deeper >> 10
    );
}

/// A pool of one thread runs a job that panics with a
/// [`PanicsAsItIsDropped`] of depth 2, queued with a job in front of it and
/// one behind it: the worker that caught the panic drops what it carries,
/// which panics in turn, with a value whose drop panics too, and so on
/// three deep, and the job behind still runs, on that same thread. Then
/// again with one of depth [`DEEP`], a hundred deep, every one of which is
/// dropped too: a worker that gives up after some number of panics, and
/// forgets what the last one carries, drops too few.
pub(crate) fn survives_a_payload_whose_drop_panics() {
    payload_whose_drop_panics(2);
    with_a_quiet_hook(&Arc::default(), || payload_whose_drop_panics(DEEP));
}

/// The depth of the deep [`PanicsAsItIsDropped`] in
/// [`survives_a_payload_whose_drop_panics`].
const DEEP: u32 = 99;

/// A pool of one thread runs a job that panics with a
/// [`PanicsAsItIsDropped`] of depth `depth`, with a job in front of it and
/// one behind it.
fn payload_whose_drop_panics(depth: u32) {
    let levels = depth as usize + 1;
    let pool = ThreadPool::new(1);
    let (open, gate) = channel::bounded::<()>(0);
    let (report, ran) = channel::unbounded();
    let first = report.clone();
    pool.execute(move || {
        let _ = gate.recv(); // Until the other two jobs are queued.
        first.send(thread::current().id()).unwrap();
    });
    let drops = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&drops);
    pool.execute(move || panic::panic_any(PanicsAsItIsDropped(depth, counted)));
    pool.execute(move || report.send(thread::current().id()).unwrap());
    drop(open);
    // Until both jobs that report have run, or have been dropped unrun.
    let ran: Vec<thread::ThreadId> = ran.iter().collect();
    drop(pool);
    assert_eq!(
        ran.len(),
        2,
        "a job panicked with a value whose own Drop panics, and the job \
         queued behind it never ran on the pool of one thread: the worker \
         that caught the first panic dropped what it carried, and a panic \
         of that drop ended the worker (drop what a caught panic carries \
         under catch_unwind too, and what that panic carries the same way, \
         again and again: here each drop's panic carries a value whose drop \
         panics, {levels} deep)"
    );
    let drops = drops.load(Ordering::SeqCst);
    assert_eq!(
        drops, levels,
        "a job panicked with a value whose drop panics with another such \
         value, {levels} deep, but {drops} of the {levels} were dropped: drop \
         what a caught panic carries, on the worker, however many times over \
         (a value forgotten or leaked is never dropped, and its memory is \
         never freed)"
    );
    assert_eq!(
        ran[0], ran[1],
        "a pool of one thread ran the job behind a panicking job on another \
         thread than the job in front of it: keep the worker thread alive \
         through every panic, one in dropping what a panic carries too"
    );
}
