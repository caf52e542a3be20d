//! Chapter 6, Fairness: starvation and the new GIL: four exercises.
//!
//! A lock is fair when a thread that waits is eventually served, whoever
//! else keeps asking. Build a spin lock that serves threads in the order
//! they arrive; the hand-off of Python 3.2's new GIL; a heartbeat that
//! keeps beating on a one-thread tokio runtime while CPU-bound work runs;
//! and a read-write lock that a stream of readers cannot starve a writer of.
//!
//! - Book: chapter 6, "Fairness: starvation and the new GIL", section
//!   "Exercises".
//! - Graded by `exercises/tests/graded/ch06_fairness.rs`:
//!   `cargo course grade ch06`. The ticket lock is also model-checked
//!   by loom: see `exercises/tests/loom.rs`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: threads queue for the ticket
//! lock while it is held, two CPU-bound threads must take turns under the
//! new GIL, the heartbeat must beat while the work spins, and a writer must
//! get in while a reader always holds the lock. An unfair version times
//! out and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch06_fairness")]

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A spin lock that serves threads first come, first served, like the
/// number dispenser at a bakery counter: each thread takes the next ticket
/// and waits until its number is called. No thread can barge in ahead of
/// one that arrived earlier, not even the one that just unlocked.
///
/// `T: Send` is the whole bound of `Sync`, with no `'static`: a lock around
/// a borrowed value (`TicketLock<&mut Vec<u8>>`) is `Sync` too, so that
/// scoped threads can share it. That is not graded: the compiler checks a
/// bound on a lifetime and refuses the code that breaks it, but a running
/// trial cannot ask it (it could only fail to build, and take the whole
/// chapter's points with it).
///
/// # Graded promises
///
/// - One holder at a time: threads that lock, read the value, yield and write
///   it back, all at the same time, lose no update. Trial:
///   `ch06::ticket_lock::excludes_other_threads`. That holds in every
///   interleaving, also when two threads find the lock free at the same
///   moment (a "free lock" fast path that checks and then draws a ticket
///   lets both in): checked with loom, trial
///   `ch06::ticket_lock::loom_orders_the_holders`.
/// - A waiter calls `crate::sync::yield_now` at every turn of its wait, also
///   when it is next in line: a waiter that spins without yielding keeps the
///   holder it waits for off a core it needs, and loom, which runs one thread
///   at a time, cannot finish a model with it (the model allows 100 steps per
///   interleaving, about three times what the reference solution takes: a
///   waiter that spins dozens of turns between two yields exceeds it). Nor
///   does it look twice between two yields: while a holder yields 50 times
///   before it unlocks, a waiter that looks again before each yield takes
///   about 320 loom steps where the reference takes 222, and that model
///   allows 270. Trials:
///   `ch06::ticket_lock::loom_orders_the_holders`,
///   `ch06::ticket_lock::loom_queue_len_counts_a_held_lock`.
/// - Threads are served in the order they called `lock`: a holder that unlocks
///   and at once locks again comes after every thread that was already waiting.
///   Trial: `ch06::ticket_lock::serves_threads_in_arrival_order`.
/// - Each holder's writes to the value are seen by the next holder, under
///   Rust's memory model and not only on x86, in every interleaving (checked
///   with loom). Trial: `ch06::ticket_lock::loom_orders_the_holders`.
/// - A guard dropped while its thread panics serves the next ticket too: the
///   lock is not poisoned, `queue_len()` is back to `0`, and the next thread
///   gets in and sees the panicking holder's writes. Trial:
///   `ch06::ticket_lock::a_panicking_holder_serves_the_next_ticket`.
/// - `TicketLock<T>` is `Sync` whenever `T` is `Send`, even if `T` is not
///   `Sync` (`Cell<u32>`, as for `Mutex<Cell<u32>>`), and not for `Rc<u8>` nor
///   for a `MutexGuard<u8>` (`Sync` but not `Send`). It is `Send` when `T` is
///   (`u64`, and `Cell<u32>`, which is not `Sync`), and not for `Rc<u8>`:
///   sending the lock sends its value. Its guard is `Sync` only when `T` is,
///   as `MutexGuard` is (`u64`, and not `Cell<u32>`), and not `Send` for
///   `Rc<u8>`: the thread it is sent to gets `&mut T`. Trial:
///   `ch06::ticket_lock::is_sync_for_send_values`.
#[derive(Debug)]
pub struct TicketLock<T> {
    // TODO(ch06): two counters, the next ticket and the ticket now served
    // (`crate::sync::AtomicUsize`, so that .ci/loom can check them), and
    // the value in an `UnsafeCell`. The lock is `Sync` when `T: Send` (an
    // `unsafe impl`: say why it is sound).
    value: PhantomData<T>,
}

impl<T> TicketLock<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> Self {
        // TODO(ch06): both counters at zero.
        let _ = value;
        todo!("ch06: TicketLock::new")
    }

    /// Takes a ticket and waits until it is served; the lock is held until
    /// the guard is dropped.
    pub fn lock(&self) -> TicketGuard<'_, T> {
        // TODO(ch06): take a ticket in one atomic step, then wait for your
        // number, calling `crate::sync::yield_now` while you wait.
        todo!("ch06: TicketLock::lock")
    }

    /// How many threads hold the lock or wait for it, right now: a snapshot
    /// that may be stale by the time the caller looks at it.
    ///
    /// # Graded promises
    ///
    /// - `queue_len()` is `0` for a new lock, `1` while one thread holds it,
    ///   one more for each thread waiting in `lock`, and `0` again once every
    ///   thread has let go. Trials: `ch06::ticket_lock::counts_the_queue`,
    ///   `ch06::ticket_lock::serves_threads_in_arrival_order`,
    ///   `ch06::ticket_lock::loom_orders_the_holders`.
    /// - `queue_len()`, read while another thread locks and unlocks twice,
    ///   never wraps around: it is at most `2`, the tickets that thread draws,
    ///   in every interleaving and under Rust's memory model, not only on x86
    ///   (checked with loom). (That thread may draw its second ticket between
    ///   the two loads, so even a right count can say `2` with one thread.)
    ///   Trial: `ch06::ticket_lock::loom_queue_len_counts_at_most_the_threads`.
    /// - `queue_len()`, read while the lock is held at every moment (one thread
    ///   hands it to another that drew its ticket before the hand-over), is at
    ///   least `1`, in every interleaving (checked with loom): it never pairs a
    ///   count of tickets drawn with a later count of tickets served. The thread
    ///   it is handed to, once in and with nobody waiting, reads exactly `1`,
    ///   also while the last holder has not yet returned from its guard's
    ///   `drop`: the count is tickets drawn minus tickets served, not a counter
    ///   of its own that lags behind them. Trial:
    ///   `ch06::ticket_lock::loom_queue_len_counts_a_held_lock`.
    pub fn queue_len(&self) -> usize {
        // TODO(ch06): tickets taken minus tickets served.
        let _ = self.value;
        todo!("ch06: TicketLock::queue_len")
    }

    /// The value, out of the lock: `self` is owned, so nobody holds it.
    ///
    /// # Graded promises
    ///
    /// - `into_inner` gives back the value, with every holder's writes. Trials:
    ///   `ch06::ticket_lock::counts_the_queue`,
    ///   `ch06::ticket_lock::excludes_other_threads`.
    /// - A lock dropped without `into_inner` drops its value, as a `Mutex` does
    ///   (an `Arc` inside loses that owner): the lock owns its value, it does
    ///   not leak it. Trial: `ch06::ticket_lock::counts_the_queue`.
    pub fn into_inner(self) -> T {
        // TODO(ch06): `UnsafeCell::into_inner`.
        todo!("ch06: TicketLock::into_inner")
    }
}

/// Access to the value of a [`TicketLock`]; dropping it serves the next
/// ticket.
#[derive(Debug)]
pub struct TicketGuard<'a, T> {
    lock: &'a TicketLock<T>,
    /// Makes the guard `Sync` only when `T` is (and, with the reference,
    /// `T: Send`: stricter than `MutexGuard`): threads that share a guard
    /// share `&T`. The reference alone would make it `Sync` whenever
    /// `T: Send`, and a `Cell` could then be shared.
    value: PhantomData<&'a mut T>,
}

impl<T> Deref for TicketGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value, through the `UnsafeCell`.
        let _ = self.lock;
        todo!("ch06: TicketGuard::deref")
    }
}

impl<T> DerefMut for TicketGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // TODO(ch06): the value, mutably.
        todo!("ch06: TicketGuard::deref_mut")
    }
}

impl<T> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): serve the next ticket, publishing your writes to the
        // value to its holder (which ordering?).
    }
}

/// Python 3.2's "new GIL" (`Python/ceval_gil.c`): a thread that has waited
/// a whole switch interval, without seeing any other thread get in, asks
/// the holder to drop the GIL; the holder's next [`NewGilGuard::check`]
/// hands it over and makes sure another thread really took it.
///
/// # Graded promises
///
/// - At most one thread holds the GIL at any moment, however many threads take
///   it and call `check` (a thread holds it again when `check` returns). A
///   guard dropped while its thread panics releases the GIL too, and another
///   thread then takes it: the GIL is not poisoned, as a `Mutex` is. Trial:
///   `ch06::new_gil::one_holder_at_a_time`.
/// - Once `check` has handed the GIL over and returned, a thread that comes
///   then waits for it (`waiting()` counts it) rather than find it free: an
///   assignment `*self = gil.acquire()` would drop the old guard, and so
///   release the GIL just taken back. Trials:
///   `ch06::new_gil::check_hands_over_after_a_drop_request`,
///   `ch06::new_gil::check_waits_for_the_switch_however_long`.
/// - Two threads that only call `check` while they hold the GIL take turns:
///   the GIL changes hands ten times, so the thread that gave it up in `check`
///   asks for it back like any waiter. Trial:
///   `ch06::new_gil::cpu_threads_take_turns`.
#[derive(Debug)]
pub struct NewGil {
    // TODO(ch06): a Mutex around the state (held or not, how many
    // acquisitions so far, how many waiting, the drop request), a Condvar
    // or two, and the interval. `course::gil` shows one way.
}

impl NewGil {
    /// A free GIL whose waiters ask for a switch after `interval`.
    pub fn new(interval: Duration) -> Self {
        // TODO(ch06): a free GIL.
        let _ = interval;
        todo!("ch06: NewGil::new")
    }

    /// Blocks until this thread holds the GIL, asking the holder to drop it
    /// after every interval in which nobody else got it.
    ///
    /// An interval starts when the waiter, holding the GIL's state, finds the
    /// GIL held (time spent waiting for the state itself does not count), and
    /// again at every taking of the GIL it sees: any thread's, the last
    /// holder's own included (a holder that lets go and takes the GIL straight
    /// back has made a switch too). Count the acquisitions, as CPython's
    /// `switch_number` does, rather than compare who holds the GIL.
    ///
    /// Not graded: the part of an interval below a microsecond (one kept in
    /// whole microseconds, as CPython keeps it, loses it). It moves a
    /// waiter's deadline by less than the kernel adds to every timed wait
    /// (its timer slack, 50 µs by default) and the waiter's own wake-up, so
    /// only a clock finer than those could see it. Nor is how a waiter
    /// spends a zero interval: it has nothing to sleep in, and may wake
    /// again at once (the trials with one only need it to ask).
    ///
    /// Nor is it graded that time spent waiting for the state does not
    /// count: a waiter that starts its interval as it calls `acquire`,
    /// before it has the state, asks as soon as it gets a state that was
    /// busy for an interval, where it should wait a whole interval more.
    /// A trial could see that only by looking for the request within an
    /// interval of the moment the waiter got the state, which only a clock
    /// and luck in the scheduler can promise: read the clock once you hold
    /// the state and find the GIL held.
    ///
    /// # Graded promises
    ///
    /// - A waiter asks the holder to drop the GIL (`drop_requested` becomes
    ///   true) no sooner than one interval after it started waiting. Trials:
    ///   `ch06::new_gil::waits_an_interval_before_asking`,
    ///   `ch06::new_gil::check_without_a_request_keeps_the_gil`.
    /// - The interval is kept as given, also below a millisecond: with a
    ///   900 µs interval, a waiter that has asked sleeps in slices of 900 µs
    ///   (a hundred of them last at least 99 intervals), not of 0, the
    ///   interval rounded down to whole milliseconds. So is one longer than a
    ///   `u64` count of microseconds holds: with an interval of 2^64 µs (some
    ///   585,000 years) a waiter never asks, where `as_micros() as u64` wraps
    ///   it around to 0. Trial:
    ///   `ch06::new_gil::waits_an_interval_before_asking`.
    /// - A waiter that sees another thread take the GIL starts its interval
    ///   again: it asks the new holder no sooner than one interval after that
    ///   switch, not when the interval it began before the switch would have
    ///   ended. So does a waiter that finds the GIL taken anew by the thread
    ///   that held it before (it let go and took the GIL straight back, while
    ///   the waiter slept): that taking is a switch too, though the holder is
    ///   the same. Trial: `ch06::new_gil::a_switch_restarts_the_interval`.
    /// - Taking the GIL ends the drop request, however the last holder let go
    ///   (in `check` or by dropping its guard), and whether the new holder had
    ///   to wait or found the GIL free (a thread that comes just as a holder
    ///   drops its guard, before the waiter that asked has woken): nobody has
    ///   asked the new holder yet, and its first `check` keeps the GIL. So too
    ///   when the new holder is the thread in `check` taking the GIL back,
    ///   even if it asked for it there itself (the holder it asked let go by
    ///   dropping its guard): `check` returns with no request pending. So too
    ///   for a waiter whose interval runs out just as the holder lets go, and
    ///   which then finds the GIL free, with no switch meanwhile: it asks only
    ///   while the GIL is held, or its taking ends the request it set (a
    ///   request reset only by the holder as it lets go would outlive it).
    ///   Trial: `ch06::new_gil::taking_the_gil_resets_the_request`.
    /// - A thread that calls `acquire` while the GIL is free takes it at once,
    ///   even while other threads are counted as waiting (a waiter woken by the
    ///   release that has not run yet): it does not queue behind them. Any
    ///   interval will do, up to `Duration::MAX` (its waiters never ask): a
    ///   waiter with it waits for the GIL like any other, rather than panic on
    ///   a deadline that `Instant` cannot hold. Trial:
    ///   `ch06::new_gil::taking_the_gil_resets_the_request`.
    /// - A waiter sleeps between its intervals, also after it has asked: while
    ///   the holder works for a second of CPU time without calling `check`, the
    ///   waiter uses less than a twentieth of that (CPU time, not time on a
    ///   clock). Trial: `ch06::new_gil::a_waiter_sleeps_between_its_intervals`.
    /// - A waiter that asked, and then saw another waiter take the GIL instead,
    ///   asks the new holder too, an interval after that switch: it asks after
    ///   every interval in which nobody else got the GIL, not only once. Trial:
    ///   `ch06::new_gil::a_waiter_that_lost_asks_again`.
    pub fn acquire(&self) -> NewGilGuard<'_> {
        // TODO(ch06): while the GIL is held, wait with `wait_timeout`; if
        // a wait times out and nobody took the GIL meanwhile, set the drop
        // request. Then take it (and reset the request).
        todo!("ch06: NewGil::acquire")
    }

    /// Whether a waiter has asked the holder to drop the GIL and the holder
    /// has not done so yet.
    ///
    /// # Graded promises
    ///
    /// - Asked while another thread holds the GIL's state (formatting the GIL
    ///   with `{:?}`), with a request pending, `drop_requested()` waits for the
    ///   state and says `true`, rather than answer `false` at once. So does it
    ///   when a waiter's interval ran out while the state was busy and the
    ///   waiter already waits for the state to record its request: asked only
    ///   then, it waits behind that waiter (on Linux, std's `Mutex` wakes
    ///   its sleepers one at a time, first asleep first woken, when no other
    ///   thread comes for it), where a flag kept apart from the state (an
    ///   atomic, as in `course::gil`) says `false`. Trial:
    ///   `ch06::new_gil::waits_an_interval_before_asking`.
    pub fn drop_requested(&self) -> bool {
        // TODO(ch06): read the request.
        todo!("ch06: NewGil::drop_requested")
    }

    /// How many threads are waiting to take the GIL right now. A thread in
    /// [`NewGilGuard::check`] counts once another thread has taken the GIL
    /// and it waits to take it back.
    ///
    /// # Graded promises
    ///
    /// - `waiting()` counts every thread blocked in `acquire`. Trials:
    ///   `ch06::new_gil::check_without_a_request_keeps_the_gil`,
    ///   `ch06::new_gil::check_waits_to_take_it_back_like_any_waiter`.
    /// - While it waits for another thread to take the GIL, the thread in `check`
    ///   does not count: `waiting()` never counts it together with the waiter it
    ///   hands the GIL over to. Nor does a thread that calls `acquire` while
    ///   the GIL is free, even while it has to wait for the GIL's state
    ///   (another thread formatting the GIL with `{:?}` holds it): it never
    ///   waits for the GIL. Trial:
    ///   `ch06::new_gil::check_counts_as_waiting_only_after_the_switch`.
    pub fn waiting(&self) -> usize {
        // TODO(ch06): count them in acquire.
        todo!("ch06: NewGil::waiting")
    }
}

/// Proof that this thread holds a [`NewGil`]; dropping it releases the GIL.
#[derive(Debug)]
pub struct NewGilGuard<'g> {
    gil: &'g NewGil,
}

impl NewGilGuard<'_> {
    /// What CPython's eval loop does between bytecodes: if a waiter asked
    /// for the GIL, resets the request, releases the GIL, waits until
    /// another thread has taken it (however long that takes: not just an
    /// interval), then waits to take it back like any other waiter.
    /// Without a request, returns at once, GIL held.
    ///
    /// Releasing wakes the waiters at once, as dropping the guard does: left
    /// to find the GIL free at the end of their interval, they would make
    /// every switch cost up to an interval more. Only a clock could show that
    /// delay, and the trials set no upper bound on time, so this is not
    /// graded.
    ///
    /// Once the switch has come, the thread in `check` waits like any other
    /// waiter: its interval starts at the switch, not at its own release (it
    /// asks the new holder no sooner than an interval after that holder got
    /// in). The two differ only by the time the new holder took to wake up,
    /// which no trial can stretch (the waiter is woken inside `check`, and
    /// runs no code of the trial's own until it holds the GIL); measuring it
    /// would take a clock finer than that wake-up, so this is not graded.
    ///
    /// # Graded promises
    ///
    /// - After a waiter has asked, `check` returns only once another thread
    ///   has had the GIL (that waiter, or a thread that came and found it
    ///   free before the waiter woke: either is a switch), and the request is
    ///   then reset. Trial:
    ///   `ch06::new_gil::check_hands_over_after_a_drop_request`.
    /// - `check` waits for another thread to take the GIL without any time
    ///   limit, even with a zero interval and a waiter slow to wake. Trial:
    ///   `ch06::new_gil::check_waits_for_the_switch_however_long`.
    /// - Once another thread has taken the GIL, the thread in `check` is told
    ///   at once and waits for the GIL again, counted by `waiting`, also while
    ///   other threads wait for it too. Trial:
    ///   `ch06::new_gil::check_waits_to_take_it_back_like_any_waiter`. So is it
    ///   when the new holder found the GIL free and took it without waiting
    ///   (the waiter that asked had not woken yet). Trial:
    ///   `ch06::new_gil::check_ends_the_request_as_it_lets_go`.
    /// - `check` resets the request as it releases the GIL: while it waits for
    ///   the switch (held back as long as the waiter is slow to wake),
    ///   `drop_requested()` is already false. It sleeps until told of the
    ///   switch, rather than waking to look: in a fifth of a second of waiting
    ///   it wakes at most 5 times (with a 1 s interval), and the wait it sleeps
    ///   in has no time limit (`Condvar::wait`, not a `wait_timeout` kept as a
    ///   safety net, however long its timeout). Trial:
    ///   `ch06::new_gil::check_ends_the_request_as_it_lets_go`.
    /// - Without a request `check` returns at once, GIL held: a thread waiting
    ///   in `acquire` does not get in during thousands of `check`s, and gets in
    ///   when the guard is dropped. Trial:
    ///   `ch06::new_gil::check_without_a_request_keeps_the_gil`.
    pub fn check(&mut self) {
        // TODO(ch06): no request, nothing to do. Otherwise release, wait
        // until the number of acquisitions has moved on, then take the GIL
        // as acquire does.
        let _ = self.gil;
        todo!("ch06: NewGilGuard::check")
    }
}

impl Drop for NewGilGuard<'_> {
    fn drop(&mut self) {
        // TODO(ch06): release the GIL and wake the waiters.
    }
}

/// Runs `work` on a thread of tokio's blocking pool and calls `beat` once
/// every `period` while it runs, the first time at once; returns what
/// `work` returned. If `work` panics, the panic goes on from here with its
/// original payload.
///
/// Beats never come ahead of the schedule: the k-th beat comes no sooner
/// than k periods after the first. If something holds the runtime up more
/// than 5 ms past a beat's time (a long `beat`, or another task that blocks
/// the thread), that beat comes late, as soon as the loop runs again, and
/// the next one a full `period` after it: the beats missed meanwhile are not
/// made up in a burst. This holds for a beat late by less than a period too
/// (with a period of 20 ms, a beat due at 20 ms that comes at 28 ms is
/// followed by one at 48 ms, not 40 ms): tokio's `MissedTickBehavior::Delay`
/// does exactly this. (tokio applies the missed-tick behaviour only to a
/// tick more than 5 ms late; a tick less late keeps its place in the
/// schedule, so the next may follow it sooner than `period`.) (tokio's timer counts in whole milliseconds and
/// rounds each deadline up, so with a period that is not a whole number of
/// milliseconds two beats may come up to a millisecond closer than
/// `period`, but never ahead of the schedule.)
///
/// `period` must not be zero: `tokio::time::interval` panics on a zero
/// period, and so may `with_heartbeat`. What it does then is not graded.
///
/// The loop must keep looking at `work` however the beats go: a `select!`
/// that is `biased;` towards the tick could, with beats that each outlast a
/// period, find a beat due at every turn and never see `work` end. That is
/// not graded: tokio's timer marks a deadline as passed only when its
/// driver turns, which it does not within the one poll in which the tick
/// was set again, so the work's handle is still polled in every test a
/// trial can set up.
///
/// # Graded promises
///
/// - `with_heartbeat` returns what `work` returned, whether `work` ends within
///   the first period, after several, or while a beat runs (the loop still
///   sees the end when the beat returns, however short the window). It
///   returns as soon as `work` has ended, not at the next beat: on tokio's
///   paused clock, with no beat due, no time passes and no beat comes
///   between the end of `work` and the return. `work`
///   runs on a thread of the runtime's blocking pool
///   (`Handle::try_current()` finds the runtime there, and the thread has the
///   name the runtime gives its threads), not on a thread of its own, even
///   one that enters the runtime. Trial:
///   `ch06::heartbeat::returns_the_result`.
/// - Beats keep coming while CPU-bound `work` that never awaits runs, on a
///   current-thread runtime and on a multi-thread one alike (there too the
///   work goes to the blocking pool: `tokio::task::block_in_place` would run
///   it where `with_heartbeat` itself runs, which then cannot beat until the
///   work is over), and no faster than once per `period`, also for a
///   period that is not a whole number of milliseconds (1.9 ms, not rounded
///   down to 1 ms): the `k`-th beat after the first comes no sooner than `k`
///   periods after it. Nor later, on tokio's paused clock with nothing holding
///   the runtime up, than `k` periods and the millisecond by which tokio's
///   timer rounds a deadline up (1.9 ms is not rounded up to 2 ms either, nor
///   is a period under a millisecond, 0.4 ms, raised to 1 ms: the timer fires
///   the ticks due within a millisecond together, so they keep their
///   average). Trial: `ch06::heartbeat::beats_while_the_work_runs`.
/// - The first beat comes at once. After the runtime was held up for several
///   periods, by another task or by a `beat` that itself lasts longer than a
///   period, one late beat comes as soon as the loop runs again (the moment a
///   long beat returns, not a period later) and the next a full `period` after
///   it: neither a burst of the missed beats nor the original schedule. So
///   too after a stall that leaves a beat more than 5 ms but less than a
///   period late (period 20 ms, the runtime held up until 28 ms: beats at 0,
///   28 and 48 ms, not 40 ms). Trial:
///   `ch06::heartbeat::does_not_burst_after_a_stall`.
/// - Between beats `with_heartbeat` sleeps: while no beat is due and `work`
///   still runs, nothing wakes it, however often the runtime's other tasks run
///   (no loop that checks the handle and yields with `yield_now`, which keeps
///   the runtime's thread busy for the whole run). Trial:
///   `ch06::heartbeat::sleeps_between_beats`.
/// - A panic in `work` comes out of `with_heartbeat` with `work`'s own payload,
///   of its own type: a `&'static str` stays a `&'static str` (not a `String`
///   with the same text), and a `panic_any(42_u32)` stays that `u32`. A panic
///   in `beat`, the caller's own callback, comes out of `with_heartbeat` too,
///   with its payload, at once: it is not caught and logged while the beats
///   go on, nor held back until `work` ends (`work` there ends only once the
///   caller has the panic). Trial: `ch06::heartbeat::passes_a_panic_on`.
pub async fn with_heartbeat<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    period: Duration,
    beat: impl FnMut(),
) -> T {
    // TODO(ch06): run `work` with `tokio::task::spawn_blocking`, and
    // `tokio::select!` between its handle and the ticks of a
    // `tokio::time::interval` (mind its `MissedTickBehavior`); resume a
    // panic with its own payload.
    let _ = (work, period, beat);
    todo!("ch06: with_heartbeat")
}

/// A read-write lock that prefers writers: once a writer waits, new readers
/// wait behind it, so a stream of readers cannot starve it. (A stream of
/// writers can starve the readers instead.)
///
/// `std::sync::RwLock` leaves the policy to the platform: "a writer which
/// is waiting to acquire the lock in `write` might or might not block
/// concurrent calls to `read`". This one promises it.
///
/// A read guard hands out a shared `&T` (`&*value.get()`), never a `&mut T`,
/// not even one coerced to `&T` at once (`&mut *value.get()`, copied from
/// the write guard's `deref_mut`): readers on several threads at a time
/// would each hold a `&mut T` to the same value, which is undefined
/// behaviour even if they only read. That is not graded: nothing a running
/// program can observe tells the two apart (the one that sees it is Miri,
/// which needs a nightly toolchain this course does not use).
///
/// # Graded promises
///
/// - `FairRwLock<T>` is `Sync` when `T` is `Send + Sync` (`Vec<u8>`), and not
///   for `Cell<u8>` or `Rc<u8>`, nor for a `MutexGuard<u8>` (`Sync` but not
///   `Send`: a writer gets `&mut T` on its own thread, enough to move it
///   there); a `FairRwLock<Cell<u8>>` still works on one thread. It is
///   `Send` when `T` is (`Vec<u8>`, and `Cell<u8>`, which is not `Sync`),
///   and not for `Rc<u8>`: sending the lock sends its value. Dropping the
///   lock drops its value (an `Arc` inside loses that owner): it owns its
///   value, it does not leak it. Trial:
///   `ch06::fair_rwlock::is_sync_only_for_sync_values`.
/// - Readers cannot starve a writer: even while a reader holds the lock at
///   every moment, taking each new guard with `try_read` before it drops the
///   last, `try_read` refuses once a writer waits, and the writer then gets in.
///   New readers stay out as long as a writer waits, also in the gap after
///   the last reader has left and before the woken writer runs (with the
///   writer held still there, `try_read` refuses). Trial:
///   `ch06::fair_rwlock::a_writer_is_not_starved_by_readers`.
#[derive(Debug)]
pub struct FairRwLock<T> {
    // TODO(ch06): a Mutex around the state (readers inside, a writer
    // inside or not, writers waiting), a Condvar or two, and the value in
    // an `UnsafeCell`. The lock is `Sync` when `T: Send + Sync` (an
    // `unsafe impl`: say why it is sound).
    value: PhantomData<T>,
}

impl<T> FairRwLock<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> Self {
        // TODO(ch06): no readers, no writer.
        let _ = value;
        todo!("ch06: FairRwLock::new")
    }

    /// Shared access: waits while a writer holds the lock or waits for it.
    ///
    /// The reader tests and waits under one locking of the state: a `read`
    /// that tests with `try_read` and then locks the state anew to wait loses
    /// the wake-up of a writer that leaves between the two, and sleeps until
    /// the next writer leaves (forever, if that was the last). The window is
    /// a few instructions between two lockings of the state, where no trial
    /// can hold the reader, and only luck would hit it, so this is not graded:
    /// test again after each wake-up, in a loop around the `Condvar::wait`,
    /// with the state locked once.
    ///
    /// # Graded promises
    ///
    /// - Several threads can hold `read` guards at the same time. Trial:
    ///   `ch06::fair_rwlock::readers_share_the_lock`.
    /// - A reader that comes while a writer waits gets in only after that
    ///   writer, and reads what it wrote, also when another writer holds the
    ///   lock then: when that one leaves, the writer that waited goes before
    ///   the readers that queued meanwhile, whether they queued after it or
    ///   before it (it is woken, not only the reader that has waited
    ///   longest). Trial:
    ///   `ch06::fair_rwlock::a_waiting_writer_blocks_new_readers`.
    pub fn read(&self) -> ReadGuard<'_, T> {
        // TODO(ch06): wait while a writer is inside or waiting.
        todo!("ch06: FairRwLock::read")
    }

    /// Shared access if it can be had at once: `None` while a writer holds
    /// the lock or waits for it.
    ///
    /// # Graded promises
    ///
    /// - `try_read` gives a guard on a free lock and while other readers hold
    ///   it, even while other threads are taking and dropping read guards at
    ///   that very moment; `None` only while a writer holds the lock or waits
    ///   for it. Trials:
    ///   `ch06::fair_rwlock::readers_share_the_lock`,
    ///   `ch06::fair_rwlock::writers_exclude_everyone`,
    ///   `ch06::fair_rwlock::a_waiting_writer_blocks_new_readers`.
    /// - Readers still blocked in `read` do not make `try_read` refuse: right
    ///   after a writer leaves, while the readers it kept out are waking up,
    ///   `try_read` gives a guard. Trial:
    ///   `ch06::fair_rwlock::try_read_does_not_defer_to_queued_readers`.
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        // TODO(ch06): the test of `read`, without the wait.
        todo!("ch06: FairRwLock::try_read")
    }

    /// Exclusive access: waits until no reader and no writer holds the
    /// lock, keeping new readers out meanwhile.
    ///
    /// The last reader out wakes the writer while holding the state's mutex,
    /// the one the writer holds from its check that readers are inside until
    /// it waits: a reader that leaves without it (an atomic count of readers,
    /// say) can change the count and notify in between, and the writer sleeps
    /// forever. That window is a few instructions inside `write`, where no
    /// trial can hold the writer, and only luck would hit it, so this is not
    /// graded: keep every change the writer waits on under the mutex it waits
    /// with. Nor is a writer that, having found nobody inside (and taken
    /// itself off the waiting writers), lets go of the state and locks it
    /// again to mark itself inside: in between, the lock looks free, and a
    /// `try_read` or another writer can walk in. That window too is a few
    /// instructions where no trial can hold the writer: go in under the same
    /// locking in which the writer found the lock free.
    ///
    /// # Graded promises
    ///
    /// - `write` waits until the readers inside have left, then holds the lock
    ///   alone: no reader sees a half-done write or the value change under its
    ///   guard, and writers lose no update. A reader woken as a writer leaves
    ///   looks again for both a writer inside and one waiting: if another
    ///   writer walked in before it ran, it goes back to its wait (a
    ///   `Condvar::wait`), not in beside that writer. Trial:
    ///   `ch06::fair_rwlock::writers_exclude_everyone`.
    /// - A writer waiting for a reader to leave sleeps until it is woken: while
    ///   the reader stays a tenth of a second, the writer wakes at most 5 times
    ///   (not once a millisecond to look), and the wait it sleeps in has no
    ///   time limit (`Condvar::wait`, not a `wait_timeout` kept as a safety
    ///   net, however long its timeout). Trial:
    ///   `ch06::fair_rwlock::a_waiting_writer_blocks_new_readers`.
    pub fn write(&self) -> WriteGuard<'_, T> {
        // TODO(ch06): count yourself as waiting, wait until nobody is
        // inside, then go in.
        todo!("ch06: FairRwLock::write")
    }

    /// How many writers are waiting in [`FairRwLock::write`] right now; a
    /// writer that holds the lock no longer counts.
    ///
    /// # Graded promises
    ///
    /// - `writers_waiting()` counts a writer blocked in `write` (`1` for one,
    ///   `2` for two waiting behind a reader: a count, not a flag, and `1` once
    ///   one of the two has gone in while the other still waits), but not a
    ///   writer that holds the lock nor one that has finished. Asked
    ///   while another thread holds the lock's state (formatting the lock with
    ///   `{:?}`), it waits for the state rather than answer `0`, and so counts
    ///   a writer that came before it and waits for the state too: the count
    ///   is read under the state's mutex, not from a copy kept beside it (an
    ///   atomic, say) that the writer has not yet raised.
    ///   Trials: `ch06::fair_rwlock::writers_exclude_everyone`,
    ///   `ch06::fair_rwlock::a_waiting_writer_blocks_new_readers`.
    pub fn writers_waiting(&self) -> usize {
        // TODO(ch06): read the count.
        let _ = self.value;
        todo!("ch06: FairRwLock::writers_waiting")
    }
}

/// Shared access to the value of a [`FairRwLock`].
#[derive(Debug)]
pub struct ReadGuard<'a, T> {
    lock: &'a FairRwLock<T>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value, shared.
        let _ = self.lock;
        todo!("ch06: ReadGuard::deref")
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): one reader fewer; the last one lets a writer in.
    }
}

/// Exclusive access to the value of a [`FairRwLock`].
#[derive(Debug)]
pub struct WriteGuard<'a, T> {
    lock: &'a FairRwLock<T>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value.
        let _ = self.lock;
        todo!("ch06: WriteGuard::deref")
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // TODO(ch06): the value, mutably.
        todo!("ch06: WriteGuard::deref_mut")
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): the writer is out: wake a waiting writer first, or
        // else every waiting reader.
    }
}
