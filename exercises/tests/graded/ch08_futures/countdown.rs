//! The countdown, polled by hand and by tokio: `Pending` exactly `n`
//! times, each with one wake of that poll's waker, then `Ready`.

use std::future::poll_fn;
use std::pin::pin;
use std::task::{Context, Poll};

use exercises::ch08_futures::Countdown;

use super::{counting_waker, current_thread_runtime};

/// Polls `Countdown::new(n)` by hand until it is ready: it answers
/// `Pending` exactly `n` times, then `Ready("liftoff")`.
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
}

/// Each poll gets a waker of its own: every `Pending` wakes that poll's
/// waker exactly once, and `Ready` wakes nobody.
pub(super) fn wakes_itself_each_time_it_is_pending() {
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
                         earlier poll"
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
