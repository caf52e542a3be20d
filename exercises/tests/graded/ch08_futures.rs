//! Graded trials of chapter 8, Async: from asyncio to tokio: futures by
//! hand.
//!
//! The "how" checks: the countdown is polled with wakers that count their
//! wakes, a fresh one each poll, so a `Pending` without a wake (or with
//! two, or to an old waker) shows; `block_on` is given a future that counts
//! its polls and its wakes, and a busy loop polls far more often than it is
//! woken; and several lookups on a one-thread runtime must all be waiting
//! before the first is answered, which a `resolve` that blocks the thread
//! cannot do. Versions that never wake up or block the thread time out and
//! are told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch08")]

use std::any::Any;
use std::collections::HashMap;
use std::future::{self, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use course::grader::Trial;
use exercises::ch08_futures::{
    Callback, Countdown, Resolver, block_on, resolve,
};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;

/// Deadline for trials whose only way to hang is a future that is never
/// polled again, or a thread that waits for what it blocks.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// A pause that lets the thread in `block_on` go to sleep before it is
/// woken. Too short a pause (a slow machine) may let a wrong answer pass;
/// it never fails a right one.
const SETTLE: Duration = Duration::from_millis(50);

/// What a `block_on` that hangs after a wake-up from another thread is
/// told.
const BLOCK_ON_SLEPT: &str = "block_on slept on after another thread woke \
                              the future: the waker must unpark the thread \
                              that runs block_on";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch08::countdown::is_pending_n_times_then_ready",
            1,
            is_pending_n_times_then_ready,
        )
        .timeout(HANG_TIMEOUT),
        Trial::new(
            "ch08::countdown::wakes_itself_each_time_it_is_pending",
            1,
            wakes_itself_each_time_it_is_pending,
        )
        .timeout(HANG_TIMEOUT),
        Trial::new("ch08::countdown::runs_on_tokio", 1, runs_on_tokio)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "tokio never polled the countdown again: it returned \
                 Pending without waking: nobody will poll it again. Call \
                 cx.waker().wake_by_ref() each time you answer Pending",
            ),
        Trial::new(
            "ch08::countdown::zero_is_ready_at_once",
            1,
            zero_is_ready_at_once,
        )
        .timeout(HANG_TIMEOUT),
        Trial::new("ch08::block_on::returns_the_output", 1, returns_the_output)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "block_on never returned for a future that is ready, or that \
             wakes itself: poll first, and park only after a Pending",
            ),
        Trial::new(
            "ch08::block_on::wakes_up_when_woken_from_another_thread",
            1,
            wakes_up_when_woken_from_another_thread,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "block_on slept on after another thread woke the future: the \
             waker must unpark the thread that runs block_on (take its \
             handle with thread::current() in block_on, not in wake)",
        ),
        Trial::new(
            "ch08::block_on::polls_only_when_woken",
            2,
            polls_only_when_woken,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(BLOCK_ON_SLEPT),
        Trial::new(
            "ch08::block_on::survives_a_spurious_unpark",
            1,
            survives_a_spurious_unpark,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(BLOCK_ON_SLEPT),
        Trial::new(
            "ch08::block_on::runs_a_oneshot_receiver",
            1,
            runs_a_oneshot_receiver,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "block_on never returned after another thread sent on the \
             oneshot channel: the receiver's poll keeps the waker, the \
             sender calls it, and that must unpark block_on's thread",
        ),
        Trial::new(
            "ch08::resolve::returns_what_the_callback_gives",
            1,
            returns_what_the_callback_gives,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "resolve never returned, though the callback was called at \
             once, inside lookup",
        ),
        Trial::new(
            "ch08::resolve::waits_for_a_callback_from_another_thread",
            1,
            waits_for_a_callback_from_another_thread,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the first poll of resolve never returned: it blocks the \
             thread until the callback is called, and the callback was \
             to be called after that poll. Await a tokio::sync::oneshot \
             receiver instead",
        ),
        Trial::new(
            "ch08::resolve::a_dropped_callback_is_an_error",
            1,
            a_dropped_callback_is_an_error,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "resolve never returned after the resolver dropped the \
             callback: when the oneshot sender is dropped unsent, the \
             receiver completes with an error; return one then",
        ),
        Trial::new(
            "ch08::resolve::does_not_block_the_runtime",
            2,
            does_not_block_the_runtime,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "three lookups never all started on a current-thread runtime: \
             resolve blocks the runtime's thread: await a oneshot instead",
        ),
    ]
}

/// A waker that counts its wakes.
#[derive(Debug, Default)]
struct WakeCount(AtomicUsize);

impl WakeCount {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fresh waker, and its count of wakes.
fn counting_waker() -> (Arc<WakeCount>, Waker) {
    let count = Arc::new(WakeCount::default());
    (Arc::clone(&count), Waker::from(count))
}

/// Polls `Countdown::new(n)` by hand until it is ready: it answers
/// `Pending` exactly `n` times, then `Ready("liftoff")`.
fn is_pending_n_times_then_ready() {
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
fn wakes_itself_each_time_it_is_pending() {
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
fn runs_on_tokio() {
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
fn zero_is_ready_at_once() {
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

/// `block_on` returns the output of ready futures, of an async block that
/// awaits another, and of a future that wakes itself three times before
/// it is ready.
fn returns_the_output() {
    assert_eq!(block_on(future::ready(42)), 42, "block_on(ready(42))");
    let order = block_on(async {
        let pages = async { 20 }.await;
        pages + 22
    });
    assert_eq!(order, 42, "block_on of an async block that awaits another");
    let mut polls = 0;
    let polled = block_on(poll_fn(|cx| {
        polls += 1;
        if polls <= 3 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(polls)
        }
    }));
    assert_eq!(
        polled, 4,
        "a future that wakes itself three times is ready at its 4th poll"
    );
}

/// A future hands its waker to a doorbell thread and is pending until the
/// bell rings; the doorbell waits a moment, so that `block_on` is likely
/// asleep, then rings and wakes the future.
fn wakes_up_when_woken_from_another_thread() {
    let rung = Arc::new(AtomicBool::new(false));
    let (hand_over, handed) = mpsc::channel::<Waker>();
    let bell = Arc::clone(&rung);
    // Not a scoped thread, here and below: when the last thread of a
    // scope ends, it unparks the thread that opened the scope, and that
    // would wake even a `block_on` whose waker wakes nobody.
    let doorbell = thread::spawn(move || {
        // An error: block_on dropped the future unpolled (a panic).
        let Ok(waker) = handed.recv() else { return };
        thread::sleep(SETTLE);
        bell.store(true, Ordering::SeqCst);
        waker.wake();
    });
    let mut hand_over = Some(hand_over);
    let answer = block_on(poll_fn(|cx| {
        if rung.load(Ordering::SeqCst) {
            return Poll::Ready("ding");
        }
        if let Some(hand_over) = hand_over.take() {
            hand_over.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }));
    doorbell.join().unwrap();
    assert_eq!(answer, "ding", "the future's output");
}

/// A clock thread chimes three times, each chime a wake, after a pause in
/// which the future is pending; it chimes again only once the future has
/// been polled and heard the last chime. `block_on` polls once at the
/// start and then at most once per wake: a busy loop polls thousands of
/// times meanwhile, and one that polls only twice misses a chime.
fn polls_only_when_woken() {
    const CHIMES: usize = 3;
    let chimed = Arc::new(AtomicUsize::new(0));
    let wakes = Arc::new(AtomicUsize::new(0));
    let (hear, heard) = mpsc::channel();
    let mut heard = Some(heard);
    let mut clock = None;
    let mut last_heard = 0;
    let mut polls = 0;
    block_on(poll_fn(|cx| {
        polls += 1;
        let now = chimed.load(Ordering::SeqCst);
        if now > last_heard {
            last_heard = now;
            // An error: the clock gave up already.
            let _ = hear.send(now);
        }
        if now == CHIMES {
            return Poll::Ready(());
        }
        if clock.is_none() {
            let waker = cx.waker().clone();
            let (chimed, wakes) = (Arc::clone(&chimed), Arc::clone(&wakes));
            let heard = heard.take().unwrap();
            clock = Some(thread::spawn(move || {
                thread::sleep(SETTLE);
                for chime in 1..=CHIMES {
                    chimed.store(chime, Ordering::SeqCst);
                    wakes.fetch_add(1, Ordering::SeqCst);
                    waker.wake_by_ref();
                    // An error: the future was dropped (a panic).
                    if heard.recv() != Ok(chime) {
                        return;
                    }
                }
            }));
        }
        Poll::Pending
    }));
    if let Some(clock) = clock {
        clock.join().unwrap();
    }
    let wakes = wakes.load(Ordering::SeqCst);
    assert!(
        polls <= wakes + 1,
        "block_on polled the future {polls} times, but it was woken only \
         {wakes} times: an executor polls once, then once per wake at most. \
         Polling in a loop is a busy wait that burns a core; park the thread \
         until the waker unparks it"
    );
}

/// A thread unparks `block_on`'s thread without waking the future, then
/// wakes it for real a moment later: `block_on` must not take the first
/// for the second.
fn survives_a_spurious_unpark() {
    let ready = Arc::new(AtomicBool::new(false));
    let mut prankster = None;
    let answer = block_on(poll_fn(|cx| {
        if ready.load(Ordering::SeqCst) {
            return Poll::Ready("on time");
        }
        if prankster.is_none() {
            let blocked = thread::current();
            let waker = cx.waker().clone();
            let ready = Arc::clone(&ready);
            prankster = Some(thread::spawn(move || {
                blocked.unpark(); // No wake: a spurious wake-up.
                thread::sleep(SETTLE);
                ready.store(true, Ordering::SeqCst);
                waker.wake();
            }));
        }
        Poll::Pending
    }));
    if let Some(prankster) = prankster {
        prankster.join().unwrap();
    }
    assert_eq!(answer, "on time", "the future's output");
}

/// `block_on` runs a tokio oneshot receiver, no runtime needed: it gets
/// the value another thread sends, and an error when the sender is
/// dropped unsent.
fn runs_a_oneshot_receiver() {
    let (sender, receiver) = oneshot::channel();
    let courier = thread::spawn(move || {
        thread::sleep(SETTLE);
        let _ = sender.send("parcel");
    });
    assert_eq!(
        block_on(receiver),
        Ok("parcel"),
        "the receiver's output, after another thread sent \"parcel\""
    );
    courier.join().unwrap();
    let (sender, receiver) = oneshot::channel::<&str>();
    let courier = thread::spawn(move || {
        thread::sleep(SETTLE);
        drop(sender);
    });
    assert!(
        block_on(receiver).is_err(),
        "the receiver's output, after another thread dropped the sender"
    );
    courier.join().unwrap();
}

/// The address the test's resolvers give `host`.
fn address_of(host: &str) -> IpAddr {
    let octet = match host {
        "db.internal" => 7,
        "mail.internal" => 25,
        "cache.internal" => 63,
        _ => 99,
    };
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet))
}

/// Answers at once, inside `lookup`: hosts ending in `.internal` have an
/// address, and other hosts are not found.
#[derive(Debug)]
struct Directory;

impl Resolver for Directory {
    fn lookup(&self, host: &str, done: Callback) {
        done(if host.ends_with(".internal") {
            Ok(address_of(host))
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such host: {host}"),
            ))
        });
    }
}

/// Hands every host and callback to the test, which calls back when it
/// likes, on a thread of its own.
#[derive(Debug)]
struct Switchboard(mpsc::Sender<(String, Callback)>);

impl Resolver for Switchboard {
    fn lookup(&self, host: &str, done: Callback) {
        // An error: the test gave up already.
        let _ = self.0.send((host.to_string(), done));
    }
}

/// Drops every callback without calling it.
#[derive(Debug)]
struct Forgetful;

impl Resolver for Forgetful {
    fn lookup(&self, _host: &str, done: Callback) {
        drop(done);
    }
}

fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime")
}

/// With a callback called at once, inside `lookup`, `resolve` gives the
/// address, and the resolver's error as it is, kind and message.
fn returns_what_the_callback_gives() {
    let runtime = current_thread_runtime();
    let found = runtime.block_on(resolve(&Directory, "db.internal"));
    assert_eq!(
        found.ok(),
        Some(address_of("db.internal")),
        "resolve(\"db.internal\") with a resolver that answers at once"
    );
    let missing = runtime.block_on(resolve(&Directory, "nowhere.invalid"));
    let error = missing.expect_err(
        "resolve(\"nowhere.invalid\") gave an address, but the resolver \
         called back with an error",
    );
    assert_eq!(
        (error.kind(), error.to_string()),
        (
            io::ErrorKind::NotFound,
            "no such host: nowhere.invalid".to_string()
        ),
        "the resolver called back with its own error (NotFound, \"no such \
         host: nowhere.invalid\"): resolve should return that very error, \
         not one of its own"
    );
}

/// Polled by hand, `resolve` is pending until a thread calls the callback
/// after that first poll; the call wakes the task, and the next poll gives
/// the address.
fn waits_for_a_callback_from_another_thread() {
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (release, released) = mpsc::channel::<()>();
        let operator = s.spawn(move || {
            let (host, done) = called.recv().ok()?;
            released.recv().ok()?;
            done(Ok(address_of(&host)));
            Some(host)
        });
        let (wakes, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut lookup = pin!(resolve(&switchboard, "db.internal"));
        let first = lookup.as_mut().poll(&mut cx);
        assert!(
            first.is_pending(),
            "the first poll of resolve answered {first:?}, but the resolver \
             had not called back yet: resolve must wait for the callback"
        );
        release.send(()).unwrap();
        let host = operator.join().unwrap();
        assert_eq!(
            host.as_deref(),
            Some("db.internal"),
            "the host resolve passed to lookup"
        );
        assert!(
            wakes.get() >= 1,
            "the callback ran on another thread but the task was never \
             woken: await the oneshot receiver, whose sender wakes it"
        );
        let second = lookup.as_mut().poll(&mut cx);
        let expected = address_of("db.internal");
        assert!(
            matches!(&second, Poll::Ready(Ok(a)) if *a == expected),
            "after the callback gave {expected}, the next poll of resolve \
             answered {second:?}"
        );
    });
}

/// A resolver that drops the callback at once, and one that drops it
/// later on another thread: `resolve` returns a `BrokenPipe` error that
/// names the host, and does not panic.
fn a_dropped_callback_is_an_error() {
    let runtime = current_thread_runtime();
    let at_once = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(resolve(&Forgetful, "printer.local"))
    }));
    let at_once = match at_once {
        Ok(result) => result,
        Err(payload) => panic!(
            "resolve panicked (\"{}\") when the resolver dropped the \
             callback: the oneshot receiver then completes with an error; \
             turn it into an io::Error of kind BrokenPipe instead of \
             unwrapping it",
            panic_text(payload.as_ref())
        ),
    };
    check_dropped(at_once, "printer.local", "at once");
    let later = thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        s.spawn(move || {
            let Ok((_host, done)) = called.recv() else {
                return;
            };
            thread::sleep(SETTLE);
            drop(done);
        });
        runtime.block_on(resolve(&switchboard, "scanner.local"))
    });
    check_dropped(later, "scanner.local", "on another thread");
}

/// The message of a panic, if it has one.
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

fn check_dropped(result: io::Result<IpAddr>, host: &str, when: &str) {
    let error = match result {
        Ok(address) => panic!(
            "resolve(\"{host}\") gave {address}, but the resolver dropped \
             the callback ({when}) without calling it: that is an error"
        ),
        Err(error) => error,
    };
    assert_eq!(
        error.kind(),
        io::ErrorKind::BrokenPipe,
        "the resolver dropped the callback ({when}); resolve gave the \
         error \"{error}\", of kind {:?}, not BrokenPipe",
        error.kind()
    );
    assert!(
        error.to_string().contains(host),
        "the error for a dropped callback should name the host \"{host}\", \
         but it says \"{error}\""
    );
}

/// Reports when its lookup is done.
async fn resolve_and_report(
    resolver: &Switchboard,
    host: &'static str,
    finished: mpsc::Sender<&'static str>,
) -> io::Result<IpAddr> {
    let result = resolve(resolver, host).await;
    // An error: the operator gave up already.
    let _ = finished.send(host);
    result
}

/// Three lookups run side by side on a current-thread runtime. The
/// operator thread waits until all three have called `lookup`, then
/// answers them in an order of its own, one at a time, waiting for each
/// lookup to finish before the next answer: a `resolve` that blocks the
/// runtime's one thread never lets the second lookup start.
fn does_not_block_the_runtime() {
    const ASKED: [&str; 3] = ["mail.internal", "db.internal", "cache.internal"];
    const ANSWERED: [&str; 3] =
        ["cache.internal", "mail.internal", "db.internal"];
    let runtime = current_thread_runtime();
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (finished, finishes) = mpsc::channel();
        let operator = s.spawn(move || {
            let mut waiting = HashMap::new();
            for _ in ASKED {
                let Ok((host, done)) = called.recv() else {
                    return vec![];
                };
                waiting.insert(host, done);
            }
            let mut order = Vec::new();
            for host in ANSWERED {
                let Some(done) = waiting.remove(host) else {
                    break;
                };
                done(Ok(address_of(host)));
                let Ok(finished) = finishes.recv() else { break };
                order.push(finished);
            }
            order
        });
        let results = runtime.block_on(async {
            let [a, b, c] = ASKED;
            tokio::join!(
                resolve_and_report(&switchboard, a, finished.clone()),
                resolve_and_report(&switchboard, b, finished.clone()),
                resolve_and_report(&switchboard, c, finished.clone()),
            )
        });
        let order = operator.join().unwrap();
        let results = [results.0, results.1, results.2];
        for (host, result) in ASKED.iter().zip(&results) {
            assert!(
                matches!(result, Ok(a) if *a == address_of(host)),
                "resolve(\"{host}\") gave {result:?}, but the resolver \
                 called back with {}",
                address_of(host)
            );
        }
        assert_eq!(
            order, ANSWERED,
            "the lookups, asked in the order {ASKED:?}, were answered one \
             at a time in the order {ANSWERED:?}, each after the one \
             before had finished; they should have finished in that order"
        );
    });
}
