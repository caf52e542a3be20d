//! Chapter 8, Async: asyncio and tokio: three exercises on futures by
//! hand, the machinery under `async` and `await`.
//!
//! A future is a state machine that an executor polls; it answers `Ready`
//! or `Pending`, and when it answers `Pending` it must see to it that its
//! waker is called once polling again is worth it. Write a countdown that
//! wakes itself, `block_on` (the smallest executor, `asyncio.run` for one
//! future), and an `async fn` over a callback API, the bridge asyncio
//! builds with `loop.call_soon_threadsafe(future.set_result, value)`.
//!
//! - Book: chapter 8, "Async: from asyncio to tokio", section "Exercises".
//! - Graded by `exercises/tests/graded/ch08_futures.rs`:
//!   `cargo course grade ch08`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: wakers that count their wakes
//! drive the countdown, `block_on` must sleep until it is woken (a busy
//! loop polls far more often than it is woken, and fails), and several
//! lookups must wait side by side on one thread, which a `resolve` that
//! blocks the thread cannot do. Versions that never wake up or block the
//! thread time out and are told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch08_futures")]

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that is not ready `n` times and then is, with `"liftoff"`: the
/// twin of a coroutine that runs `await asyncio.sleep(0)` `n` times. An
/// asyncio task that yields puts itself back in the ready queue; a Rust
/// executor polls a future again only when its waker asks, so each
/// `Pending` comes with a wake.
///
/// A poll that gives up its processor (`thread::yield_now`, the look-alike
/// of `asyncio.sleep(0)`) is as wrong as one that sleeps, but it is not
/// graded: the thread stays runnable, which the trial cannot tell from a
/// poll that returns at once without tracing the thread's system calls.
/// Nor is a poll that spins for a while before it answers (a "breather"
/// of busy waiting, to not hog the executor): it holds up the thread as a
/// sleep does, but it never leaves the processor, so only a clock could
/// tell it, with an upper bound on how long a poll may take, which a
/// loaded machine would break.
///
/// Nor is a countdown that goes wrong only after more polls than a trial
/// can make in a moment: one that clamps `n` to a "sanity limit" above
/// the 6,291,456 polls the trial makes, or one that keeps `n + 1` polls to
/// go with `saturating_add` and so answers `Pending` one time too few for
/// `u32::MAX` alone, or one that takes `u32::MAX` for "never ready" (as
/// `Duration::MAX` is "no deadline" elsewhere) and answers `Pending` for
/// ever. It takes some 4 billion polls to see that, which the trial cannot
/// wait for (half a minute or more of polling, on a loaded machine). All
/// three are wrong all the same: `u32::MAX` is a count like any other.
///
/// Not graded either: a lock of the countdown's own, shared by every
/// countdown and held for a few instructions of its own at each poll (a
/// process-wide count of polls under a `static Mutex`, let go before the
/// wake). A poll that finds another thread inside those instructions
/// waits for it, which is wrong, but that window runs none of the trial's
/// code, so no trial can force a poll into it; only luck would. (Count
/// with an atomic, or not at all.) Nor is a poll after the one that
/// answered `Ready`: what it does is the countdown's business (a future
/// may panic then, as an `async` block does).
///
/// # Graded promises
///
/// - `Countdown::new(n)` answers `Pending` to its first `n` polls, exactly,
///   and `Ready("liftoff")` to the next one, for every `n` a `u32` holds:
///   `Countdown::new(6_291_456)` is polled to its end (no clamp to a
///   million or so), and `Countdown::new(u32::MAX)` answers `Pending` to
///   its first polls. Its memory does not grow with its polls: once
///   `Countdown::new(6_291_456)` has been polled to its end, and while it
///   is still alive, less than 64 KiB more is allocated than before its
///   first poll (no record of each poll, a timestamp, kept in it).
///   Trial: `ch08::countdown::is_pending_n_times_then_ready`.
/// - Each poll that answers `Pending` wakes the waker of that very poll
///   (`cx.waker()`, which may be a new one each time) exactly once before
///   it returns, itself, on the polling thread (not from a helper thread,
///   even one that comes in time), every poll alike (the 64th and the
///   128th as much as the first), also when it is polled inside a tokio
///   runtime (where
///   `tokio::task::yield_now`, polled with the same `cx`, leaves the wake
///   to tokio, after the poll has returned); the poll that answers `Ready`
///   wakes nobody, nor does the countdown's drop (a countdown dropped
///   before its liftoff is cancelled: it has no poll to ask for, so no
///   wake in `Drop`). A waker that panics makes the poll panic with the
///   waker's own payload: a wake that failed is no wake, and the poll does
///   not hide it (no `catch_unwind` around the wake). A countdown keeps at
///   most the waker of its latest poll: once a poll has returned, no clone
///   of an earlier poll's waker is left, so its memory does not grow with
///   its polls. No clone of a waker outlives the countdown: once it is
///   dropped, every clone it made has been dropped too (a clone kept for
///   good, or leaked with `mem::forget`, keeps the executor's task alive).
///   Trial: `ch08::countdown::wakes_itself_each_time_it_is_pending`.
/// - `Countdown::new(0)` answers `Ready("liftoff")` to its first poll, and
///   wakes nobody. Trial: `ch08::countdown::zero_is_ready_at_once`.
/// - No poll blocks the thread or puts it to sleep, not even for a moment
///   (no `thread::sleep`, no blocking wait): when to poll again is the
///   executor's business, and a poll that sleeps holds up every other task
///   on its thread. Nor does it wait for a lock that another thread may
///   hold: a poll on one thread returns while another thread holds the
///   locks of stdout and stderr (which `println!`, `eprintln!` and `dbg!`
///   take), each of the 6,291,457 polls of `Countdown::new(6_291_456)` as
///   much as the first (no progress line now and then), the first polls
///   of `Countdown::new(u32::MAX)` too (no warning that a long count will
///   take a while), and the first polls of a countdown of any round count,
///   a power of two or of ten (no progress line when the polls left are a
///   round number, such as every 2^24); while another thread is inside
///   `std::env::set_var`, which holds std's lock of the environment, the
///   one every `std::env::var` takes (no trace switch read at a poll, not
///   even once, at the first poll in the process, as a `LazyLock` started
///   by a poll does: the trial's are the process's first polls); and
///   while a poll of another countdown, on
///   another thread, is inside its waker (where a lock shared by every
///   countdown, a global queue of wakers, would still be held).
///   Trial: `ch08::countdown::never_blocks_the_thread`.
/// - So tokio, which polls a future again only when it is woken, runs a
///   countdown to its end: `Countdown::new(5)` answers `Pending` 5 times
///   and gives `"liftoff"`. Trial: `ch08::countdown::runs_on_tokio`.
#[derive(Debug)]
pub struct Countdown {
    // TODO(ch08): how many more polls answer `Pending`. (Add fields if
    // you like, but this count is all a countdown needs.)
    remaining: u32,
}

impl Countdown {
    /// A countdown that answers `Pending` to its first `n` polls.
    pub fn new(n: u32) -> Self {
        // TODO(ch08): `n` polls to go.
        let _ = n;
        todo!("ch08: Countdown::new")
    }
}

impl Future for Countdown {
    type Output = &'static str;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        // TODO(ch08): `Ready("liftoff")` when no polls remain; otherwise
        // count this one, wake this poll's waker (`cx.waker()`) so that
        // the executor polls again, and answer `Pending`. A countdown is
        // `Unpin`: `self.get_mut()` gives a plain `&mut Countdown`.
        let _ = (self.remaining, cx);
        todo!("ch08: Countdown::poll")
    }
}

/// Runs `future` on this thread until it is ready and returns its output:
/// the smallest executor, `asyncio.run` for a single future. Between polls
/// the thread sleeps, and only the future's waker wakes it: the future is
/// polled once at the start and then once per wake at most, however often
/// something else unparks the thread.
///
/// Not graded: a `Condvar` in place of `park`, with a waker that sets the
/// flag and notifies without taking the mutex, loses a wake that comes
/// between `block_on`'s check of the flag and its wait, and then sleeps
/// forever. That window is a few instructions long and runs none of the
/// trial's code, so no trial can force a wake into it; only luck would
/// catch it. (Take the mutex in the waker, or use `park`, whose token
/// keeps such a wake.) Not graded either, for the same reason: a waker
/// that skips `unpark` while `block_on` is not parked (it reads a `parked`
/// flag that `block_on` sets just before `park`, to save the system call)
/// loses a wake that comes after `block_on` found the woken flag clear and
/// before it set `parked`, and the thread sleeps forever. That window is
/// a few instructions of `block_on`'s own, with none of the trial's code
/// in it. (Unpark on every wake: `park`'s token then keeps such a wake.)
///
/// Not graded either: the memory orderings of the woken flag. The waker
/// must set it with `Release` and `block_on` take it with `Acquire`, so
/// that what the waking thread wrote before the wake is visible to the
/// poll that follows, also when the flag was up already and `park` was
/// skipped (an unpark and the `park` it ends are ordered, but a skipped
/// `park` orders nothing). With `Relaxed` this can fail on ARM and other
/// weak memory models, but never on x86, which orders plain loads and
/// stores this way anyway, so no trial can tell there; and the loom
/// models cannot see it either, as loom does not model std's `park`.
/// For the same reason, a flag taken with `compare_exchange_weak` in the
/// park loop is not graded: on ARM it may fail although the flag is set,
/// and the thread parks with the wake's token already used up, but on
/// x86 it never fails so.
///
/// Not graded either, as no trial can force them: a `Condvar` wait under
/// `if` instead of `while` (a wait that returns without a wake polls the
/// future unwoken; std's condition variable on Linux returns only after a
/// notify, and a notify that comes late, after the flag it was for has
/// been taken, needs the waking thread to be preempted between its
/// unlock and its notify); and a short spin of `yield_now` before the
/// thread parks (the thread ends up asleep, and until then it cannot be
/// told from one that is on its way to `park` without tracing its system
/// calls or bounding its time on the processor).
///
/// # Graded promises
///
/// - Returns the future's output: at once for a future that is ready at
///   its first poll (`std::future::ready(42)`, an async block), and at the
///   4th poll for one that wakes itself during each of its first 3 polls
///   and answers `Pending`. When it returns, every byte it allocated is
///   freed: its waker, and every clone of it, gives its reference back,
///   also when two clones are dropped on two threads at once, both
///   reading the count of references before either writes it (a count
///   that is not atomic, an `Rc` under a hand-made `RawWaker`, loses one
///   of the two drops, and its signal is never freed).
///   The waker and its clones point to memory that outlives the call
///   (their `Waker::data` is not in the stack of the thread that runs
///   `block_on`): a clone may be kept, and woken, after `block_on` has
///   returned, so a waker made from a pointer to a signal in `block_on`'s
///   own frame, with no reference count, is wrong.
///   A future that panics makes `block_on` panic with that very panic,
///   its payload unchanged (no `catch_unwind` and a new panic of its own),
///   as `asyncio.run` raises the coroutine's own exception; and once that
///   panic has gone on out of `block_on`, every byte it allocated is freed
///   as well (a reference given back only by a line after the poll loop,
///   which the panic skips, is a leak).
///   Trial: `ch08::block_on::returns_the_output`.
/// - A future that is woken from another thread while `block_on` sleeps
///   is polled again, and its output returned.
///   Trial: `ch08::block_on::wakes_up_when_woken_from_another_thread`.
/// - It needs no tokio runtime to run a `tokio::sync::oneshot` receiver:
///   it returns `Ok` with the value another thread sends, or an `Err` when
///   the other thread drops the sender unsent.
///   Trial: `ch08::block_on::runs_a_oneshot_receiver`.
/// - While the future is pending, the thread that runs `block_on` is
///   asleep: it does not spin, poll in a loop or yield in a loop, also
///   when `block_on` is called inside the poll of another `block_on` (a
///   nested call parks as well, and tells its wakes by its flag); and it
///   stays asleep until the future is woken: it does not get up by itself
///   now and then (a `park_timeout` "safety net", however long its
///   timeout, or any other wait with a deadline, which the trial reads in
///   `/proc`; nor a watchdog thread that unparks it now and then, however
///   seldom: `block_on` starts no thread, and the trial counts the
///   process's threads while it sleeps).
///   Trial: `ch08::block_on::sleeps_while_it_waits`.
/// - The future is polled once at the start, then at most once per wake,
///   and after every wake: a future woken 3 times from another thread, one
///   wake after the other, is polled 4 times in all.
///   Trial: `ch08::block_on::polls_only_when_woken`.
/// - An unpark of the thread that is no wake (another thread calls
///   `unpark` on it during a poll, or while it sleeps, and wakes nothing)
///   is no reason to poll, however many come (no count of unparks after
///   which it polls anyway, a "safety net" against lost wakes): with one
///   wake after the first poll, and 64 unparks before it, the future is
///   polled exactly twice. Trial: `ch08::block_on::survives_a_spurious_unpark`.
/// - A wake is never lost, even when it comes from another thread during
///   a poll and that same poll then parks the thread for a moment (as a
///   nested `block_on` or a blocking wait may): the future is polled
///   again. A nested `block_on`, run inside a poll, takes only its own
///   wakes: a wake of the outer future during that poll is still there
///   for the outer call. Nor is a wake whose thread is held up inside the
///   wake, right after its unpark, while `block_on`'s thread gets up: so
///   the waker sets the flag first and unparks second, never the other
///   way round (`block_on` would find the flag clear, park again, and
///   sleep for ever).
///   Trial: `ch08::block_on::survives_a_poll_that_parks`.
/// - Calls on several threads at once keep their wakes apart: the wake of
///   one call's future is no wake for another call, which neither polls
///   its own future for it nor takes it from the call it was for (as one
///   "woken" flag shared by every call, a `static`, would). So do calls
///   one after the other on one thread: a waker clone kept from an earlier
///   call and woken during a later one is no wake for the later call,
///   which does not poll its future for it (as it would if calls shared a
///   signal kept in a `thread_local` for the next call).
///   Trial: `ch08::block_on::keeps_the_wakes_of_each_call_apart`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    // TODO(ch08): pin the future (`std::pin::pin!`); make a `Waker` from
    // an `Arc` of a type of yours that implements `std::task::Wake` by
    // setting a flag (an `AtomicBool`) and then unparking this thread
    // (`std::thread::current()` gives its handle); then poll, and while
    // the answer is `Pending`, `std::thread::park()` until the flag is
    // set, clear it, and poll again. The thread's unpark token is no
    // proof of a wake: anything may unpark the thread, or park and eat
    // the token.
    drop(future);
    todo!("ch08: block_on")
}

/// What a [`Resolver`] calls back with: the address, or why there is none.
pub type Callback = Box<dyn FnOnce(io::Result<IpAddr>) + Send>;

/// A name resolver with a callback API, the shape of C libraries such as
/// c-ares: `lookup` returns at once, and the answer comes later through a
/// callback, on whatever thread the resolver likes. Or never: a resolver
/// that gives up may drop the callback without calling it.
pub trait Resolver {
    /// Starts looking `host` up; calls `done` at most once, with the
    /// address or an error, now or later, on this thread or another.
    fn lookup(&self, host: &str, done: Callback);
}

/// Looks `host` up with `resolver`, as an `async fn`: it waits for the
/// callback without blocking the thread, so other tasks run meanwhile. If
/// the resolver drops the callback without calling it, the error is of
/// kind [`io::ErrorKind::BrokenPipe`] (the other end hung up) and its
/// message (what `to_string` gives) names the host.
///
/// While it waits, its task sleeps: it is woken by the answer (or the
/// callback's drop), never by itself to check again. And if the `resolve`
/// future is dropped (cancelled) before the answer comes, a later call of
/// the callback does nothing: it must not panic the resolver's thread.
///
/// Not graded: a slot for the answer with `Notify::notify_waiters` to
/// wake the task loses an answer that comes between the check of the
/// slot and the creation of the `notified()` future (`notify_waiters`
/// wakes only the waiters that exist), and `resolve` hangs. That window
/// runs none of the trial's code, so no trial can force an answer into
/// it; only luck would catch it. (A `oneshot` has no such window.)
/// Nor is a callback that checks `is_closed` first and then sends with
/// `send(..).expect(..)`: a cancel that comes between the check and the
/// send panics the resolver's thread all the same. That window too is a
/// few instructions of the callback's own, in a channel the trial cannot
/// reach, so no trial can force a cancel into it. (Send, and ignore the
/// error: `let _ = sender.send(result)`.)
///
/// # Graded promises
///
/// - Gives what the resolver calls back with: the address as it is (an
///   IPv4-mapped IPv6 address, `::ffff:10.0.0.64`, stays that IPv6
///   address; the unspecified `0.0.0.0` and `::`, which a resolver that
///   blocks a name answers, are addresses like any other), or the
///   resolver's own error unchanged (same kind, same message, same inner
///   error and OS error number: that very `io::Error`, not one rebuilt
///   from its kind and text; one of kind `Interrupted` or `WouldBlock`
///   too, after that one lookup: a retry is the caller's choice), also
///   when the callback is called at once, inside `lookup`.
///   Each call asks the resolver anew: a host resolved before, by this
///   resolver or another, is looked up again and gets the new answer (no
///   cache of answers), and so is an address literal such as `10.0.0.64`
///   (`resolve` does not parse it itself: the resolver may map it), an
///   empty host `""`, a host with a NUL byte in it, and hosts not in ASCII
///   (`bücher.example`, `例え.テスト`), as given, not turned into punycode
///   nor refused (`resolve` checks no host: what a name may hold is the
///   resolver's business, and its answer, an error or not, is the answer),
///   and `localhost` too (`resolve` has no answer of its own for it: the
///   resolver may give `::1`, or another address than 127.0.0.1). A panic
///   in `lookup` is no answer: it
///   goes on, with its own payload, out of the poll that called `lookup`
///   (it is not caught, nor turned into an error).
///   Trial: `ch08::resolve::returns_what_the_callback_gives`.
/// - Calls `lookup` with `host` at its first poll, exactly as given (no
///   trimming, no change of case, no trailing dot taken off a fully
///   qualified name such as `example.com.`), and answers `Pending` until
///   the callback is called, without waking its own task; the call of the
///   callback, on another thread, wakes the task (the waker of the latest
///   poll, when a later poll came with a new one), and the next poll gives
///   the address. An answer that comes during a poll, on another thread,
///   while `resolve` keeps its waker for later (as it clones
///   `cx.waker()`), is not lost: that poll gives the address, or the
///   answer wakes the waker it kept. Nor is one whose wake runs a poll
///   (on the polling thread, while the callback is still inside the wake):
///   that poll gives the address, or the callback then wakes the waker
///   that poll left; and that poll returns while the callback is still
///   inside the wake, which may wait for it. So the callback stores the
///   answer first and wakes second, as a oneshot's `send` does, and holds
///   no lock that a poll takes while it wakes.
///   Trial: `ch08::resolve::waits_for_a_callback_from_another_thread`.
/// - If the resolver drops the callback without calling it, at once or
///   later on another thread, `resolve` returns (no panic, no hang) an
///   error of kind `BrokenPipe` whose message contains `host` as given,
///   whole, quotes, backslashes and control characters (a tab, a
///   newline, an escape) included (`{host}`, not `{host:?}`, and nothing
///   filtered out), however long (a host of over 4 KiB is not cut short),
///   and it calls `lookup` once for it, not again.
///   Trial: `ch08::resolve::a_dropped_callback_is_an_error`.
/// - Several lookups awaited together on a one-thread runtime wait at the
///   same time: each has called `lookup` before any answer comes, and each
///   returns once its own answer comes, in whatever order the answers
///   come, however many are under way: 65,536 lookups polled once each
///   have all called `lookup` (no cap on lookups in flight, per resolver
///   or for the whole process, however high, that makes the later ones
///   wait for the earlier ones' answers). So do lookups of one host under way at once,
///   by one resolver or by several: each calls `lookup` on its own
///   resolver at its first poll and gives that lookup's answer (no lookup
///   is shared between calls).
///   Trial: `ch08::resolve::does_not_block_the_runtime`.
/// - If the `resolve` future is dropped (cancelled) after its first poll,
///   a later call of the callback, on another thread, does nothing and
///   does not panic.
///   Trial: `ch08::resolve::an_answer_after_cancelling_is_ignored`.
pub async fn resolve(
    resolver: &impl Resolver,
    host: &str,
) -> io::Result<IpAddr> {
    // TODO(ch08): make a `tokio::sync::oneshot` channel, pass `lookup` a
    // callback that sends the result, and await the receiver. An error
    // from the receiver means that the sender was dropped unsent.
    let _ = (resolver, host);
    todo!("ch08: resolve")
}
