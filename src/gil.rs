//! A toy global interpreter lock, to watch in Rust what CPython's GIL does
//! to threads (chapter 3), and later how its switching policy changes who
//! gets to run (chapter 6).
//!
//! Threads "run Python" only while they hold a [`GilGuard`]: one thread at
//! a time, whatever the number of cores. A thread gives the GIL up by
//! dropping its guard (as CPython does around blocking I/O), by calling
//! [`GilGuard::yield_now`] (hand it to a waiting thread), or from
//! [`GilGuard::tick`], which an interpreter loop calls at each of its
//! periodic checks (Python 2 counted bytecodes; CPython 3.10 and later
//! checks at backward jumps and calls) and which asks the GIL's
//! [`SwitchPolicy`] whether this is the moment to let another thread in.
//!
//! The state is a `Mutex` and two `Condvar`s; the policy is a trait. Three
//! policies come with it: [`Manual`] (switch only when told), [`EveryTicks`]
//! (Python 2's GIL: release and grab it back every N ticks) and
//! [`SwitchInterval`] (Python 3.2's GIL: a waiting thread asks the holder
//! to drop the GIL after an interval, and the holder hands it over).
//!
//! A GIL made with [`Gil::traced`] also records who held it when, who
//! waited and who asked, exactly (under its state lock): [`Gil::timeline`]
//! returns it as a [`Timeline`](crate::trace::Timeline).
//!
//! ```
//! use course::gil::Gil;
//! use std::thread;
//!
//! let gil = Gil::new();
//! thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             let _held = gil.acquire(); // One thread at a time in here.
//!         });
//!     }
//! });
//! assert_eq!(gil.stats().acquisitions, 4);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::Duration;

use crate::trace::Timeline;

mod record;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod tests;

// ANCHOR: policies
/// Decides, at each tick of the thread holding the GIL, whether that thread
/// should give it up now.
pub trait SwitchPolicy: Send + Sync + fmt::Debug {
    /// `ticks` counts the holder's ticks since it took the GIL. It is
    /// asked at every tick without the GIL's state lock, so a policy
    /// decides from the count alone.
    fn should_switch(&self, ticks: u64) -> bool;

    /// Whether a switch hands the GIL to a waiting thread (and waits until
    /// one has it), or merely releases it, so that the releasing thread
    /// may well take it straight back.
    fn hands_off(&self) -> bool;

    /// How long a thread waits for the GIL before it sets the drop request
    /// that makes the holder's next [`GilGuard::tick`] hand the GIL over;
    /// `None` (the default): waiting threads never ask.
    fn drop_request_after(&self) -> Option<Duration> {
        None
    }
}

/// Never switches on its own: the holder runs until it drops its guard or
/// calls [`GilGuard::yield_now`]. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manual;

impl SwitchPolicy for Manual {
    fn should_switch(&self, _ticks: u64) -> bool {
        false
    }

    fn hands_off(&self) -> bool {
        false
    }
}

/// Python 2's GIL: release every `n` ticks ("check interval", 100 by
/// default) and try to take it straight back, with no hand-off.
#[derive(Debug, Clone, Copy)]
pub struct EveryTicks(pub u64);

impl SwitchPolicy for EveryTicks {
    fn should_switch(&self, ticks: u64) -> bool {
        ticks >= self.0
    }

    fn hands_off(&self) -> bool {
        false
    }
}

/// Python 3.2's GIL (Antoine Pitrou's "new GIL", `Python/ceval_gil.h`): a
/// thread that has waited for the interval without seeing a switch sets a
/// drop request; the holder's next tick releases the GIL and waits until
/// another thread has taken it ("forced switching"), then queues for it
/// again like any other thread. `sys.getswitchinterval()` is 5 ms by
/// default: [`SwitchInterval::PYTHON_DEFAULT`].
#[derive(Debug, Clone, Copy)]
pub struct SwitchInterval(pub Duration);

impl SwitchInterval {
    /// CPython's default switch interval, 5 ms.
    pub const PYTHON_DEFAULT: SwitchInterval =
        SwitchInterval(Duration::from_millis(5));
}

impl SwitchPolicy for SwitchInterval {
    fn should_switch(&self, _ticks: u64) -> bool {
        // Ticks alone never switch: only a waiting thread's drop request.
        false
    }

    fn hands_off(&self) -> bool {
        true
    }

    fn drop_request_after(&self) -> Option<Duration> {
        Some(self.0)
    }
}
// ANCHOR_END: policies

/// Counters of what happened to a [`Gil`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GilStats {
    /// How many times a thread took the GIL.
    pub acquisitions: u64,
    /// How many of those were by a different thread than the last holder.
    pub switches: u64,
    /// How many times a waiting thread asked the holder to drop the GIL
    /// ([`SwitchInterval`] only).
    pub drop_requests: u64,
}

#[derive(Debug, Default)]
struct State {
    holder: Option<ThreadId>,
    last_holder: Option<ThreadId>,
    waiting: usize,
    stats: GilStats,
    /// Only in a GIL made with [`Gil::traced`]; checked only while taking
    /// and releasing the GIL, which lock the state anyway.
    recorder: Option<Box<record::Recorder>>,
}

// ANCHOR: lock
/// The lock. Share it by reference (`thread::scope`) or in an `Arc`.
#[derive(Debug)]
pub struct Gil {
    state: Mutex<State>,
    changed: Condvar,
    /// Signalled whenever a thread takes the GIL: what a thread that handed
    /// it over waits for (CPython's `switch_cond`).
    switched: Condvar,
    policy: Box<dyn SwitchPolicy>,
    /// Set by a waiting thread, read by the holder at every tick without
    /// taking the state lock (CPython's `gil_drop_request`, checked by its
    /// eval loop). Relaxed is enough: it is only a hint to go and take the
    /// state lock, which orders everything else.
    drop_request: AtomicBool,
}
// ANCHOR_END: lock

impl Default for Gil {
    fn default() -> Self {
        Gil::new()
    }
}

impl Gil {
    /// A free GIL with the [`Manual`] policy.
    pub fn new() -> Gil {
        Gil::with_policy(Manual)
    }

    /// A free GIL that switches as `policy` says.
    pub fn with_policy(policy: impl SwitchPolicy + 'static) -> Gil {
        Gil {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            switched: Condvar::new(),
            policy: Box::new(policy),
            drop_request: AtomicBool::new(false),
        }
    }

    /// This GIL, recording from now on who holds it when, who waits for
    /// it and who asks for it: see [`Gil::timeline`]. The recording grows
    /// with every switch, so trace a GIL for a short while only.
    pub fn traced(self) -> Gil {
        self.lock_state().recorder = Some(Box::new(record::Recorder::new()));
        self
    }

    /// Draws the calling thread on lane `lane` of the timeline, called
    /// `name` (call it before the thread first takes the GIL). A thread
    /// that never calls it gets a lane of its own below the others, in
    /// order of first appearance. Does nothing on an untraced GIL.
    pub fn name_lane(&self, lane: usize, name: &str) {
        let me = thread::current().id();
        if let Some(recorder) = &mut self.lock_state().recorder {
            recorder.name(me, lane, name);
        }
    }

    /// What a traced GIL recorded so far, titled `title` and with an empty
    /// summary: one lane per thread, running while it held the GIL,
    /// waiting while it was blocked for it, a [`Moment::Request`] mark
    /// where it asked the holder to drop it and a [`Moment::Handover`]
    /// mark where it took it from another thread. `None` if the GIL was
    /// not traced.
    ///
    /// [`Moment::Request`]: crate::trace::Moment::Request
    /// [`Moment::Handover`]: crate::trace::Moment::Handover
    pub fn timeline(&self, title: &str) -> Option<Timeline> {
        let state = self.lock_state();
        state.recorder.as_ref().map(|r| r.timeline(title))
    }

    /// Per lane of a traced GIL's timeline: how often that thread woke up
    /// to a released GIL and found that another thread (in practice the
    /// one that released it) had already taken it again. Empty if the GIL
    /// was not traced.
    pub fn lost_races(&self) -> Vec<u64> {
        let state = self.lock_state();
        state.recorder.as_ref().map_or(vec![], |r| r.lost())
    }

    /// Blocks until this thread holds the GIL.
    ///
    /// # Panics
    ///
    /// If this thread holds it already: waiting for yourself would never
    /// end.
    pub fn acquire(&self) -> GilGuard<'_> {
        let mut state = self.lock_state();
        let me = thread::current().id();
        assert!(
            state.holder != Some(me),
            "this thread already holds the GIL; acquiring it again would \
             wait forever"
        );
        state = self.take(state, me, None);
        drop(state);
        GilGuard {
            gil: self,
            ticks: 0,
            on_this_thread: PhantomData,
        }
    }

    /// What has happened so far.
    pub fn stats(&self) -> GilStats {
        self.lock_state().stats
    }

    /// How many threads are blocked in [`Gil::acquire`] right now.
    pub fn waiting(&self) -> usize {
        self.lock_state().waiting
    }

    /// Whether a waiting thread has asked the holder to drop the GIL and
    /// the holder has not done so yet.
    pub fn drop_requested(&self) -> bool {
        self.drop_request.load(Ordering::Relaxed)
    }

    /// Whether the calling thread holds the GIL.
    pub fn is_held_by_current_thread(&self) -> bool {
        self.lock_state().holder == Some(thread::current().id())
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // The state is a few counters that no panic leaves half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ANCHOR: take
    /// Waits for the GIL to be free, then takes it for `me`. With
    /// `after: Some(n)`, also waits until someone else has taken it since
    /// the `n`th acquisition: the hand-off of [`GilGuard::yield_now`].
    fn take<'s>(
        &'s self,
        mut state: MutexGuard<'s, State>,
        me: ThreadId,
        after: Option<u64>,
    ) -> MutexGuard<'s, State> {
        state.waiting += 1;
        let blocks = after.is_some() || state.holder.is_some();
        if let Some(recorder) = &mut state.recorder
            && blocks
        {
            recorder.blocked(me);
        }
        if let Some(before) = after {
            // A hand-over: first wait until another thread has taken the
            // GIL, so that this one cannot win its own release back.
            while state.stats.acquisitions == before {
                state = self
                    .switched
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        let patience = self.policy.drop_request_after();
        while state.holder.is_some() {
            let Some(interval) = patience else {
                state =
                    self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                self.lost_race(&mut state, me);
                continue;
            };
            // The new GIL's take_gil: wait one interval; if nobody took the
            // GIL meanwhile, ask its holder to drop it.
            let seen = state.stats.acquisitions;
            let (next, wait) = self
                .changed
                .wait_timeout(state, interval)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            if !wait.timed_out() {
                self.lost_race(&mut state, me);
            }
            if wait.timed_out()
                && state.holder.is_some()
                && state.stats.acquisitions == seen
                && !self.drop_request.swap(true, Ordering::Relaxed)
            {
                state.stats.drop_requests += 1;
                if let Some(recorder) = &mut state.recorder {
                    recorder.requested(me);
                }
            }
        }
        state.waiting -= 1;
        // Whoever asked has been served (or will ask again).
        self.drop_request.store(false, Ordering::Relaxed);
        state.holder = Some(me);
        state.stats.acquisitions += 1;
        if state.last_holder != Some(me) {
            state.stats.switches += 1;
        }
        let last = state.last_holder.replace(me);
        if let Some(recorder) = &mut state.recorder {
            recorder.acquired(me, last);
        }
        self.switched.notify_all();
        state
    }
    // ANCHOR_END: take

    /// Counts a wake-up of `me` that found the GIL held again, if traced.
    fn lost_race(&self, state: &mut State, me: ThreadId) {
        if let (Some(recorder), Some(_)) = (&mut state.recorder, state.holder) {
            recorder.lost_race(me);
        }
    }

    fn release(&self, state: &mut State) {
        if let (Some(recorder), Some(holder)) =
            (&mut state.recorder, state.holder)
        {
            recorder.released(holder);
        }
        state.holder = None;
        self.changed.notify_all();
    }
}

/// Proof that this thread holds the GIL; dropping it releases the GIL.
///
/// Not `Send`: the GIL records which thread holds it. A guard moved to
/// another thread would hold the GIL in the name of the thread that took
/// it: [`Gil::is_held_by_current_thread`] would be wrong on both threads,
/// [`Gil::acquire`] on the first would panic as if it still held the GIL,
/// and [`GilGuard::yield_now`] would take the GIL back for the new thread.
/// A `std::sync::MutexGuard` stays on its thread for the same kind of
/// reason.
#[derive(Debug)]
pub struct GilGuard<'g> {
    gil: &'g Gil,
    ticks: u64,
    /// Makes the guard not `Send`, at no cost: a `MutexGuard` is not `Send`
    /// (and is `Sync`, as this guard may stay: through a shared reference
    /// another thread can only call [`GilGuard::gil`]).
    on_this_thread: PhantomData<MutexGuard<'static, ()>>,
}

impl<'g> GilGuard<'g> {
    // ANCHOR: tick
    /// One periodic check of the interpreter loop (a "tick"). If the
    /// policy says so, lets other threads in before returning (with the
    /// GIL held again).
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.gil.drop_request.load(Ordering::Relaxed) {
            self.forced_switch();
            return;
        }
        if self.gil.policy.should_switch(self.ticks) {
            if self.gil.policy.hands_off() {
                self.yield_now();
            } else {
                self.release_and_retake();
            }
        }
    }

    /// Hands the GIL to a waiting thread, if there is one, and waits to
    /// get it back; returns at once when no thread is waiting.
    pub fn yield_now(&mut self) {
        let state = self.gil.lock_state();
        self.ticks = 0;
        if state.waiting == 0 {
            return;
        }
        self.hand_over(state);
    }

    /// The new GIL's answer to a drop request: release, wait until another
    /// thread has taken the GIL (so that this one cannot win it straight
    /// back), then wait for it like everyone else.
    fn forced_switch(&mut self) {
        let state = self.gil.lock_state();
        self.ticks = 0;
        self.gil.drop_request.store(false, Ordering::Relaxed);
        self.hand_over(state);
    }

    /// Releases the GIL to a waiting thread and waits (counted as waiting,
    /// so that the other hands back in turn) until that thread has taken
    /// it and the GIL is free again.
    fn hand_over(&mut self, mut state: MutexGuard<'_, State>) {
        let before = state.stats.acquisitions;
        self.gil.release(&mut state);
        let me = thread::current().id();
        let _state = self.gil.take(state, me, Some(before));
    }

    /// Releases the GIL and competes for it again at once, as Python 2's
    /// GIL did: on several cores the releasing thread often wins.
    fn release_and_retake(&mut self) {
        let mut state = self.gil.lock_state();
        self.ticks = 0;
        self.gil.release(&mut state);
        drop(state);
        let state = self.gil.lock_state();
        let _state = self.gil.take(state, thread::current().id(), None);
    }
    // ANCHOR_END: tick

    /// The GIL this guard holds, for as long as the GIL itself lives: so
    /// that code can drop the guard and [`Gil::acquire`] it again later.
    pub fn gil(&self) -> &'g Gil {
        self.gil
    }
}

impl Drop for GilGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.gil.lock_state();
        self.gil.release(&mut state);
    }
}
