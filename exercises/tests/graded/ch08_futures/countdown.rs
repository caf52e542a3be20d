//! The countdown, polled by hand and by tokio: `Pending` exactly `n`
//! times, each with one wake of that poll's waker, then `Ready`, and no
//! poll puts the thread to sleep.

use std::future::poll_fn;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use exercises::ch08_futures::Countdown;

use super::{counting_waker, current_thread_runtime};

/// Polls `Countdown::new(n)` by hand until it is ready: it answers
/// `Pending` exactly `n` times, then `Ready("liftoff")`; and
/// `Countdown::new(u32::MAX)` and other counts past `i32::MAX` are
/// `Pending` at their first polls.
pub(super) fn is_pending_n_times_then_ready() {
    for n in [1, 2, 5] {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut countdown = pin!(Countdown::new(n));
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

/// Each poll gets a waker of its own: every `Pending` wakes that poll's
/// waker exactly once, before the poll returns, and `Ready` wakes nobody;
/// also when the polls run inside a tokio runtime, where a wake that tokio
/// puts off until the task's poll is over (as `tokio::task::yield_now`
/// does) comes too late.
pub(super) fn wakes_itself_each_time_it_is_pending() {
    polls_with_fresh_wakers();
    current_thread_runtime().block_on(poll_fn(|_| {
        polls_with_fresh_wakers();
        Poll::Ready(())
    }));
}

/// The polls of [`wakes_itself_each_time_it_is_pending`], wherever they
/// run.
fn polls_with_fresh_wakers() {
    for n in [1, 3] {
        let mut countdown = pin!(Countdown::new(n));
        for poll in 1..=n + 1 {
            let (wakes, waker) = counting_waker();
            let answer =
                countdown.as_mut().poll(&mut Context::from_waker(&waker));
            let woken = wakes.get();
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
/// (slept, or blocked), as `/proc/thread-self/status` counts them. Being
/// preempted is counted apart, as an involuntary switch.
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status")
        .expect("cannot read /proc/thread-self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("no voluntary_ctxt_switches in /proc/thread-self/status")
}

/// `Countdown::new(100)` is polled to its end, each poll with a waker
/// that only counts: no poll may put the thread to sleep. The kernel
/// counts every time a thread gives up its processor to wait; a poll
/// that sleeps, even for a microsecond, adds one each time, 100 in all,
/// where polls that only count down and wake add none (the half of 100
/// allowed leaves room for what else the kernel may do to the thread).
pub(super) fn never_blocks_the_thread() {
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
}
