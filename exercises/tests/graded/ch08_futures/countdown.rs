//! The countdown, polled by hand and by tokio: `Pending` exactly `n`
//! times, each with one wake of that poll's waker, then `Ready`, and no
//! poll puts the thread to sleep.

use std::future::poll_fn;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::alloc;
use course::grader::task::{self, Tid};
use exercises::ch08_futures::Countdown;

use super::{counting_waker, current_thread_runtime};

// std's lock of the environment, held for as long as a trial likes.
mod env_lock;
// A poll of another countdown inside its waker.
mod in_its_waker;

use in_its_waker::polls_while_another_poll_is_in_its_waker;

/// Polls `Countdown::new(n)` by hand until it is ready: it answers
/// `Pending` exactly `n` times, then `Ready("liftoff")`, also for a count
/// of several million ([`LONG`]), whose polls leave the countdown no
/// bigger than it was (the trial is exclusive: no other allocates
/// meanwhile); and `Countdown::new(u32::MAX)` and other counts past
/// `i32::MAX` are `Pending` at their first polls.
pub(super) fn is_pending_n_times_then_ready() {
    assert!(alloc::counting(), "the graded binary counts live bytes");
    for n in [1, 2, 5, LONG] {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut countdown = pin!(Countdown::new(n));
        let before = alloc::live_bytes();
        let mut pending = 0;
        let output = loop {
            match countdown.as_mut().poll(&mut cx) {
                Poll::Ready(output) => break output,
                Poll::Pending => pending += 1,
            }
            assert!(
                pending <= n,
                "Countdown::new({n}) answered Pending {pending} times and \
                 is still not ready: it should be ready at poll {}",
                n + 1
            );
        };
        assert_eq!(
            pending, n,
            "Countdown::new({n}) was ready after {pending} Pending answers, \
             not {n}: did you count down before checking for zero?"
        );
        assert_eq!(output, "liftoff", "the countdown's output");
        // The countdown is still alive: what its polls left allocated is
        // in it.
        let grown = alloc::live_bytes() - before;
        assert!(
            grown < GROWTH_ALLOWED,
            "Countdown::new({n}), polled {} times to its end, holds {grown} \
             bytes more than before its first poll: its memory grows with \
             its polls (a record of each poll, a timestamp or a waker, kept \
             in the countdown). Its state is how many polls are left, no \
             more",
            u64::from(n) + 1,
        );
    }
    // The largest counts too: a counter that cannot hold them (an `i32`,
    // say) wraps to zero or below and is ready at once.
    for n in [u32::MAX, u32::MAX - 1, 1 << 31] {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut countdown = pin!(Countdown::new(n));
        for poll in 1..=3 {
            assert!(
                countdown.as_mut().poll(&mut cx).is_pending(),
                "Countdown::new({n}) was ready at poll {poll}: it should \
                 answer Pending {n} times first. Does the counter's type \
                 hold every u32?"
            );
        }
    }
}

/// The longest countdown polled to its end: long enough that a countdown
/// that clamps its count to a "sanity limit" of a million or so is ready
/// too early, and short enough to poll in a moment.
const LONG: u32 = 3 << 21;

/// The bytes the [`LONG`] countdown's polls may leave allocated: far less
/// than a byte a poll, and more than what the grader's own threads may
/// allocate meanwhile.
const GROWTH_ALLOWED: isize = 64 << 10;

/// Each poll gets a waker of its own: every `Pending` wakes that poll's
/// waker exactly once, before the poll returns, and `Ready` wakes nobody;
/// also when the polls run inside a tokio runtime, where a wake that tokio
/// puts off until the task's poll is over (as `tokio::task::yield_now`
/// does) comes too late. And a waker that panics makes the poll panic.
pub(super) fn wakes_itself_each_time_it_is_pending() {
    polls_with_fresh_wakers();
    current_thread_runtime().block_on(poll_fn(|_| {
        polls_with_fresh_wakers();
        Poll::Ready(())
    }));
    a_waker_s_panic_goes_through();
}

/// The payload of the panic of [`PanickingWake`].
#[derive(Debug)]
struct WakerPanicked;

/// A waker whose wake panics, as an executor's may when it has failed.
#[derive(Debug)]
struct PanickingWake;

impl Wake for PanickingWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        panic::panic_any(WakerPanicked);
    }
}

/// A poll of `Countdown::new(2)` with a waker that panics: the poll
/// panics with the waker's own payload. A wake that failed is no wake,
/// and a poll that caught the panic and answered `Pending` all the same
/// would leave its executor with neither a wake nor its failure.
fn a_waker_s_panic_goes_through() {
    let waker = Waker::from(Arc::new(PanickingWake));
    let mut countdown = pin!(Countdown::new(2));
    let answer = panic::catch_unwind(AssertUnwindSafe(|| {
        countdown.as_mut().poll(&mut Context::from_waker(&waker))
    }));
    match answer {
        Err(payload) if payload.is::<WakerPanicked>() => {}
        Err(_) => panic!(
            "the waker of a poll of Countdown::new(2) panicked (with a \
             payload of a type of the test's own), and the poll panicked \
             with another payload: let the waker's panic go on as it is"
        ),
        Ok(answer) => panic!(
            "the waker of a poll of Countdown::new(2) panicked, and the \
             poll returned {answer:?}: a wake that panicked is no wake, \
             and its panic is the executor's failure, which the poll must \
             not hide. Do not catch it (no catch_unwind around the wake)"
        ),
    }
}

/// A waker that counts its wakes, and those that come from a thread other
/// than the one that made it.
#[derive(Debug)]
struct HomeWake {
    /// The thread that made it: the one that polls with it.
    home: ThreadId,
    /// Its wakes, from any thread.
    wakes: AtomicUsize,
    /// Its wakes from another thread than `home`.
    away: AtomicUsize,
}

impl Wake for HomeWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if thread::current().id() != self.home {
            self.away.fetch_add(1, Ordering::SeqCst);
        }
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fresh waker of this thread, and its counts.
fn home_waker() -> (Arc<HomeWake>, Waker) {
    let count = Arc::new(HomeWake {
        home: thread::current().id(),
        wakes: AtomicUsize::new(0),
        away: AtomicUsize::new(0),
    });
    (Arc::clone(&count), Waker::from(count))
}

/// The polls of [`wakes_itself_each_time_it_is_pending`], wherever they
/// run. A countdown of 130 has a 64th and a 128th poll too: each of those
/// must wake as the first does, on the polling thread before the poll
/// returns, not from a helper thread later. A wake from another thread
/// fails even when it comes in time, so a late one fails however the
/// threads are scheduled. After each poll, no clone of an earlier poll's
/// waker is left (the countdown keeps at most the latest), and once the
/// countdown is dropped, no clone of any of its wakers is left: each
/// waker's count of references is back to the test's own.
fn polls_with_fresh_wakers() {
    for n in [1, 3, 130] {
        let mut kept = Vec::new();
        // In a box, so that `drop` ends it before the clones are counted.
        let mut countdown = Box::pin(Countdown::new(n));
        for poll in 1..=n + 1 {
            let (counts, waker) = home_waker();
            let answer =
                countdown.as_mut().poll(&mut Context::from_waker(&waker));
            drop(waker);
            kept.push(Arc::clone(&counts));
            // Only the latest poll's waker may still have a clone in the
            // countdown: the earlier ones' are gone by now.
            let earlier = kept.len() - 1;
            for (before, counts) in (1..).zip(&kept[..earlier]) {
                let clones = Arc::strong_count(counts) - 1;
                assert!(
                    clones == 0,
                    "after poll {poll} of Countdown::new({n}), the waker of \
                     poll {before} still had {clones} clone(s) alive: the \
                     countdown keeps the wakers of its old polls, so its \
                     memory (and the tasks it keeps alive) grows with each \
                     poll. Its state is how many polls are left, no more: \
                     wake cx.waker() with wake_by_ref, which needs no clone"
                );
            }
            let woken = counts.wakes.load(Ordering::SeqCst);
            let away = counts.away.load(Ordering::SeqCst);
            assert!(
                away == 0,
                "poll {poll} of Countdown::new({n}) had its waker woken from \
                 another thread: wake cx.waker() yourself, in the poll, \
                 before it returns (a helper thread that wakes it later, \
                 \"to let the others run\", leaves the executor without a \
                 wake when the poll returns)"
            );
            match answer {
                Poll::Pending => assert!(
                    woken == 1,
                    "poll {poll} of Countdown::new({n}) answered Pending and \
                     woke this poll's waker {woken} times, not once: {}",
                    if woken == 0 {
                        "a future that answers Pending without arranging a \
                         wake-up is never polled again. Wake cx.waker(), \
                         the waker of this poll, not one kept from an \
                         earlier poll, and wake it yourself: a future \
                         polled with this cx (tokio::task::yield_now) may \
                         leave the wake to tokio, after the poll"
                    } else {
                        "each wake asks for one more poll; wake once"
                    }
                ),
                Poll::Ready(_) => {
                    assert_eq!(
                        poll,
                        n + 1,
                        "Countdown::new({n}) was ready at poll {poll}, after \
                         {} wakes: it should answer Pending (and wake) {n} \
                         times",
                        poll - 1
                    );
                    assert!(
                        woken == 0,
                        "Countdown::new({n}) woke its waker {woken} times in \
                         the poll that answered Ready: a wake asks for \
                         another poll, and a ready future needs none"
                    );
                }
            }
        }
        drop(countdown);
        for (poll, counts) in (1..).zip(&kept) {
            // One reference is the test's, in `kept`: the waker itself
            // was dropped after its poll.
            let clones = Arc::strong_count(counts) - 1;
            assert!(
                clones == 0,
                "the waker of poll {poll} of Countdown::new({n}) still had \
                 {clones} clone(s) alive after the countdown was dropped: \
                 a clone that is never dropped (mem::forget, a waker kept \
                 in a static) keeps the executor's task alive for good. \
                 Wake cx.waker() with wake_by_ref, which needs no clone"
            );
        }
    }
    dropped_before_liftoff();
}

/// A countdown polled twice (both `Pending`) and then dropped, before its
/// liftoff: each poll woke its waker once, and the drop wakes nobody
/// more. A cancelled future has nothing to ask a poll for.
fn dropped_before_liftoff() {
    let mut countdown = Box::pin(Countdown::new(3));
    let mut kept = Vec::new();
    for _ in 0..2 {
        let (counts, waker) = home_waker();
        let _ = countdown.as_mut().poll(&mut Context::from_waker(&waker));
        kept.push(counts);
    }
    drop(countdown);
    for (poll, counts) in (1..).zip(&kept) {
        let woken = counts.wakes.load(Ordering::SeqCst);
        assert!(
            woken == 1,
            "poll {poll} of Countdown::new(3) answered Pending and woke its \
             waker once, but by the time the countdown had been dropped, \
             before its liftoff, that waker had been woken {woken} times: \
             a countdown wakes only in a poll that answers Pending, once. \
             A dropped future is cancelled: nobody polls it again, so it has \
             no wake to ask for (no wake in Drop)"
        );
    }
}

/// tokio's own `block_on` runs a countdown to the end: it polls a future
/// again only when it is woken, so this fails for a countdown that does
/// not wake itself.
pub(super) fn runs_on_tokio() {
    const N: u32 = 5;
    let runtime = current_thread_runtime();
    let mut countdown = pin!(Countdown::new(N));
    let mut pending = 0;
    let output = runtime.block_on(poll_fn(|cx| {
        let answer = countdown.as_mut().poll(cx);
        pending += u32::from(answer.is_pending());
        answer
    }));
    assert_eq!(output, "liftoff", "the countdown's output");
    assert_eq!(
        pending, N,
        "under tokio, Countdown::new({N}) answered Pending {pending} times, \
         not {N}"
    );
}

/// `Countdown::new(0)` is ready at the first poll, and wakes nobody.
pub(super) fn zero_is_ready_at_once() {
    let (wakes, waker) = counting_waker();
    let answer = pin!(Countdown::new(0)).poll(&mut Context::from_waker(&waker));
    assert_eq!(
        answer,
        Poll::Ready("liftoff"),
        "Countdown::new(0) has no Pending to answer: its first poll is \
         Ready(\"liftoff\")"
    );
    let woken = wakes.get();
    assert!(
        woken == 0,
        "Countdown::new(0) woke its waker {woken} times in the poll that \
         answered Ready: a wake asks for another poll, and a ready future \
         needs none"
    );
}

/// How many times the calling thread has given up its processor to wait
/// (slept, or blocked). Being preempted is counted apart, as an
/// involuntary switch.
fn voluntary_switches() -> u64 {
    task::sleeps(task::me().tid)
}

/// `Countdown::new(100)` is polled to its end, each poll with a waker
/// that only counts: no poll may put the thread to sleep. The kernel
/// counts every time a thread gives up its processor to wait; a poll
/// that sleeps, even for a microsecond, adds one each time, 100 in all,
/// where polls that only count down and wake add none (the half of 100
/// allowed leaves room for what else the kernel may do to the thread).
pub(super) fn never_blocks_the_thread() {
    // First, before any other countdown of this process is polled.
    polls_while_the_environment_is_locked();
    const N: u32 = 100;
    // Made first, so that the polls allocate nothing.
    let wakers: Vec<Waker> = (0..=N).map(|_| counting_waker().1).collect();
    let mut answers = Vec::with_capacity(wakers.len());
    let mut countdown = pin!(Countdown::new(N));
    let before = voluntary_switches();
    for waker in &wakers {
        answers.push(countdown.as_mut().poll(&mut Context::from_waker(waker)));
    }
    let slept = voluntary_switches() - before;
    assert!(
        slept < u64::from(N / 2),
        "the thread went to sleep {slept} times in {} polls of \
         Countdown::new({N}): a poll must return at once, without \
         thread::sleep or any blocking wait. Answering Pending and waking \
         is all it takes; when to poll again is the executor's business, \
         and while a poll sleeps, no other task on its thread can run",
        N + 1
    );
    assert_eq!(
        answers.last(),
        Some(&Poll::Ready("liftoff")),
        "Countdown::new({N}), polled {} times",
        N + 1
    );
    polls_while_stdout_is_locked();
    polls_while_another_poll_is_in_its_waker();
}

/// The polls of a countdown on this thread, as another thread watches
/// them: whether this thread went to sleep during them.
#[derive(Debug)]
pub(super) struct Watched {
    /// The polling thread.
    tid: Tid,
    /// Its voluntary switches when its polls began.
    before: AtomicU64,
    /// [`IDLE`], [`POLLING`] or [`DONE`].
    stage: AtomicU8,
}

/// The polls have not begun.
const IDLE: u8 = 0;
/// The polls have begun, and are not over.
const POLLING: u8 = 1;
/// The polls are over.
const DONE: u8 = 2;

impl Watched {
    /// The polls of the calling thread, not begun yet.
    pub(super) fn new() -> Self {
        Watched {
            tid: task::me().tid,
            before: AtomicU64::new(0),
            stage: AtomicU8::new(IDLE),
        }
    }

    /// Polls `countdown`, made beforehand, on the calling thread, which
    /// made `self`, with a waker made beforehand: to its end, or `polls`
    /// times if it is not over by then.
    pub(super) fn poll_a_countdown(&self, countdown: Countdown, polls: u32) {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut countdown = pin!(countdown);
        self.before.store(voluntary_switches(), Ordering::SeqCst);
        self.stage.store(POLLING, Ordering::SeqCst);
        for _ in 0..polls {
            if countdown.as_mut().poll(&mut cx).is_ready() {
                break;
            }
        }
        self.stage.store(DONE, Ordering::SeqCst);
    }

    /// From another thread: waits until the polls are over (`true`), or
    /// until the polling thread has gone to sleep during them (`false`),
    /// as it does when it waits for something that this thread holds.
    pub(super) fn wait_until_done(&self) -> bool {
        loop {
            let stage = self.stage.load(Ordering::SeqCst);
            let switches = task::sleeps(self.tid);
            // Done since the count was read: whatever the count says, it
            // may be of a sleep after the polls.
            if self.stage.load(Ordering::SeqCst) == DONE {
                return true;
            }
            // The polls had begun before the count was read, and are
            // still not over: a sleep since they began is one in a poll.
            if stage == POLLING && switches > self.before.load(Ordering::SeqCst)
            {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Another thread takes the locks of stdout and stderr, and holds them
/// until a countdown on this thread has been polled to its end (or as
/// many times as the [`LONG`] one), or has gone to sleep in a poll,
/// waiting for them: a poll that prints (a `println!` left in to trace it) does.
/// First `Countdown::new(3)`, then the [`LONG`] one, for a poll that
/// prints only now and then (a progress line every million polls left,
/// say), then the first polls of `Countdown::new(u32::MAX)`, for one that
/// prints only for the longest counts (a warning that it will take a
/// while). Last, the first 3 polls of countdowns of every round count (a
/// power of two or of ten, and one more), for a poll that prints only when
/// the polls left are a round number, however large (a progress line every
/// 2^24 polls left, which no countdown of [`LONG`] polls reaches).
fn polls_while_stdout_is_locked() {
    for n in [3, LONG, u32::MAX] {
        polls_while_stdout_is_locked_for(n, LONG + 1);
    }
    let powers_of_two = (0..32).map(|k| 1u32 << k);
    let powers_of_ten = (0..10).map(|k| 10u32.pow(k));
    for round in powers_of_two.chain(powers_of_ten) {
        polls_while_stdout_is_locked_for(round, 3);
        polls_while_stdout_is_locked_for(round.saturating_add(1), 3);
    }
}

/// [`polls_while_stdout_is_locked`] for `Countdown::new(n)`, polled to
/// its end or `polls` times.
fn polls_while_stdout_is_locked_for(n: u32, polls: u32) {
    let watched = Watched::new();
    // Made before the lock is taken: what is graded is its polls.
    let countdown = Countdown::new(n);
    let slept = thread::scope(|s| {
        let (held, locked) = mpsc::channel();
        let watched = &watched;
        let holder = s.spawn(move || {
            let stdout = io::stdout().lock();
            let stderr = io::stderr().lock();
            held.send(()).unwrap();
            let done = watched.wait_until_done();
            drop((stdout, stderr));
            !done
        });
        locked
            .recv()
            .expect("the thread that locks stdout panicked");
        watched.poll_a_countdown(countdown, polls);
        holder.join().unwrap()
    });
    assert!(
        !slept,
        "a poll of Countdown::new({n}) went to sleep while another thread \
         held the lock of stdout and stderr: does it print (println!, \
         eprintln!, dbg!), even now and then (a progress line, a warning \
         for a long count)? Printing \
         takes a lock that any thread may hold, and writes to a pipe that \
         may be full: leave the tracing out"
    );
}

/// Another thread holds std's lock of the environment (it is inside
/// `set_var`) until a countdown on this thread has been polled to its end,
/// or has gone to sleep in a poll, waiting for that lock: a poll that
/// reads an environment variable (a trace switch, `COUNTDOWN_TRACE=1`)
/// does, as `std::env::var` takes it. These are the first polls of a
/// countdown in the trial's process, so a switch read only once, at the
/// first poll of all (a `LazyLock`), is read under the lock too.
fn polls_while_the_environment_is_locked() {
    let watched = Watched::new();
    // Made before the lock is taken: what is graded is its polls.
    let countdown = Countdown::new(3);
    let slept = AtomicBool::new(false);
    thread::scope(|s| {
        let (held, locked) = mpsc::channel();
        let (watched, slept) = (&watched, &slept);
        s.spawn(move || {
            env_lock::while_the_environment_is_locked(&|| {
                // An error: the test gave up already (a panic).
                let _ = held.send(());
                slept.store(!watched.wait_until_done(), Ordering::SeqCst);
            });
        });
        locked
            .recv()
            .expect("the thread that locks the environment panicked");
        watched.poll_a_countdown(countdown, u32::MAX);
    });
    assert!(
        !slept.load(Ordering::SeqCst),
        "a poll of Countdown::new(3) went to sleep while another thread \
         was in std::env::set_var, which holds std's lock of the \
         environment: does it read an environment variable (a trace \
         switch, std::env::var), even once, at the first poll only (a \
         LazyLock)? Every read takes that lock, which any thread may \
         hold: read it in new, or leave the tracing out"
    );
}
