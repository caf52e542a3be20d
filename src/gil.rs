//! A toy global interpreter lock, to watch in Rust what CPython's GIL does
//! to threads (chapter 3), and later how its switching policy changes who
//! gets to run (chapter 6).
//!
//! Threads "run Python" only while they hold a [`GilGuard`]: one thread at
//! a time, whatever the number of cores. A thread gives the GIL up by
//! dropping its guard (as CPython does around blocking I/O), by calling
//! [`GilGuard::yield_now`] (hand it to a waiting thread), or from
//! [`GilGuard::tick`], which an interpreter loop calls once per
//! "bytecode" and which asks the GIL's [`SwitchPolicy`] whether this is
//! the moment to let another thread in.
//!
//! The state is a `Mutex` and a `Condvar`; the policy is a trait. Three
//! policies come with it: [`Manual`] (switch only when told), [`EveryTicks`]
//! (Python 2's GIL: release and grab it back every N ticks) and
//! [`SwitchInterval`] (Python 3.2's GIL: a waiting thread asks the holder
//! to drop the GIL after an interval, and the holder hands it over).
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

/// Python 3.2's GIL (Antoine Pitrou's "new GIL", `Python/ceval_gil.c`): a
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
}

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
            if wait.timed_out()
                && state.holder.is_some()
                && state.stats.acquisitions == seen
                && !self.drop_request.swap(true, Ordering::Relaxed)
            {
                state.stats.drop_requests += 1;
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
        state.last_holder = Some(me);
        self.switched.notify_all();
        state
    }

    fn release(&self, state: &mut State) {
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
    /// One "bytecode" done. If the policy says so, lets other threads in
    /// before returning (with the GIL held again).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;

    // A guard stays on the thread that took the GIL. This compiles only
    // while `GilGuard` is not `Send`: if it were, both impls below would
    // apply to it, the `_` could be either `()` or `u8`, and the path
    // would be ambiguous (error E0283). The trick is the one of the
    // static_assertions crate's `assert_not_impl_any!`.
    const _: fn() = || {
        trait AmbiguousIfSend<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
        let _ = <GilGuard<'static> as AmbiguousIfSend<_>>::some_item;
    };

    // ...and it is still `Sync`: a shared `&GilGuard` only reads the GIL.
    const _: fn() = || {
        fn sync<T: Sync>() {}
        sync::<GilGuard<'static>>();
    };

    /// However many threads want it, at most one holds it.
    #[test]
    fn one_holder_at_a_time() {
        let gil = Gil::new();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _held = gil.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(gil.stats().acquisitions, 1600);
    }

    /// `yield_now` lets a waiting thread run before the yielder goes on.
    #[test]
    fn yield_now_hands_the_gil_to_a_waiter() {
        let gil = Gil::new();
        let started = Barrier::new(2);
        let mut held = gil.acquire();
        thread::scope(|s| {
            s.spawn(|| {
                started.wait();
                let _held = gil.acquire();
            });
            started.wait();
            // Wait until the other thread is blocked in `acquire`.
            while gil.lock_state().waiting == 0 {
                thread::yield_now();
            }
            held.yield_now();
            assert_eq!(gil.stats().acquisitions, 3, "it ran in between");
            drop(held);
        });
    }

    #[test]
    fn yield_now_alone_keeps_the_gil() {
        let gil = Gil::new();
        let mut held = gil.acquire();
        held.yield_now();
        assert!(gil.is_held_by_current_thread());
        assert_eq!(gil.stats().acquisitions, 1);
    }

    #[test]
    #[should_panic(expected = "already holds the GIL")]
    fn acquiring_twice_on_one_thread_panics() {
        let gil = Gil::new();
        let _first = gil.acquire();
        let _second = gil.acquire();
    }

    /// With `EveryTicks`, two counting threads both make progress.
    #[test]
    fn every_ticks_releases_on_schedule() {
        let gil = Gil::with_policy(EveryTicks(10));
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut held = gil.acquire();
                    for _ in 0..1000 {
                        held.tick();
                    }
                });
            }
        });
        // Two first acquisitions, plus one retake per 10 ticks.
        assert_eq!(gil.stats().acquisitions, 2 + 2 * 100);
    }

    /// Under the new GIL, a waiting thread's drop request makes the
    /// holder's next tick hand the GIL over before returning.
    #[test]
    fn a_drop_request_hands_the_gil_over() {
        let gil = Gil::with_policy(SwitchInterval(Duration::from_millis(1)));
        let served = AtomicBool::new(false);
        let mut held = gil.acquire();
        thread::scope(|s| {
            s.spawn(|| {
                let _held = gil.acquire();
                served.store(true, Ordering::SeqCst);
            });
            while !gil.drop_requested() {
                thread::yield_now();
            }
            held.tick();
            assert!(served.load(Ordering::SeqCst), "it ran in between");
            assert!(!gil.drop_requested(), "the request was served");
            drop(held);
        });
        assert_eq!(gil.stats().drop_requests, 1);
    }

    /// Two threads that tick under the new GIL take turns: whichever
    /// holds the GIL ticks until both have run, which only a switch
    /// allows.
    #[test]
    fn cpu_bound_threads_take_turns() {
        let gil = Gil::with_policy(SwitchInterval(Duration::from_millis(1)));
        let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
        thread::scope(|s| {
            for me in 0..2 {
                let (gil, progress) = (&gil, &progress);
                s.spawn(move || {
                    let mut held = gil.acquire();
                    loop {
                        let mine = progress[me].fetch_add(1, Ordering::SeqCst);
                        let theirs = progress[1 - me].load(Ordering::SeqCst);
                        if mine >= 3 && theirs >= 3 {
                            break; // Both have run, so the GIL switched.
                        }
                        held.tick();
                    }
                });
            }
        });
        assert!(gil.stats().switches >= 3);
    }

    /// Without a drop request, ticking under the new GIL never lets a
    /// waiting thread in.
    #[test]
    fn no_request_no_switch() {
        let gil = Gil::with_policy(SwitchInterval(Duration::from_secs(60)));
        let served = AtomicBool::new(false);
        let mut held = gil.acquire();
        thread::scope(|s| {
            s.spawn(|| {
                let _held = gil.acquire();
                served.store(true, Ordering::SeqCst);
            });
            while gil.waiting() == 0 {
                thread::yield_now();
            }
            for _ in 0..10_000 {
                held.tick();
            }
            assert!(!served.load(Ordering::SeqCst));
            drop(held);
        });
        assert!(served.load(Ordering::SeqCst));
    }
}
