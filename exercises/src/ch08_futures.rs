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
#[derive(Debug)]
pub struct Countdown {
    // TODO(ch08): how many more polls answer `Pending`.
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
/// message names the host.
///
/// While it waits, its task sleeps: it is woken by the answer (or the
/// callback's drop), never by itself to check again. And if the `resolve`
/// future is dropped (cancelled) before the answer comes, a later call of
/// the callback does nothing: it must not panic the resolver's thread.
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
