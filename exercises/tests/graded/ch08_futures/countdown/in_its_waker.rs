//! A countdown polled while a poll of another countdown, on another
//! thread, is inside its waker: countdowns that share nothing do not wait
//! for each other.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};
use std::thread;

use exercises::ch08_futures::Countdown;

use super::Watched;

/// A waker that, the first time it is cloned or woken, runs a hook: there,
/// the poll that uses it waits (on its own thread, and with whatever that
/// poll holds at that moment still held) until another countdown, on the
/// test's thread, has been polled to its end or has gone to sleep.
#[derive(Debug)]
struct Hooked {
    /// Whether the hook has run.
    ran: AtomicBool,
    /// Tells the test's thread to poll its countdown.
    go: mpsc::Sender<()>,
    /// The test thread's polls.
    watched: Arc<Watched>,
    /// Whether the test thread slept in a poll.
    slept: AtomicBool,
}

impl Hooked {
    /// The hook, the first time only.
    fn hook(&self) {
        if !self.ran.swap(true, Ordering::SeqCst) {
            // An error: the test gave up already (a panic).
            let _ = self.go.send(());
            let done = self.watched.wait_until_done();
            self.slept.store(!done, Ordering::SeqCst);
        }
    }
}

/// The vtable of a [`Hooked`] waker, whose data is an `Arc<Hooked>`
/// turned raw: clone and each wake run the hook first. A hand-made
/// vtable, as `Wake` gives no say over `clone`.
const HOOKED: RawWakerVTable = RawWakerVTable::new(
    hooked_clone,
    hooked_wake,
    hooked_wake_by_ref,
    hooked_drop,
);

fn hooked_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is an `Arc<Hooked>` made raw by `hooked_waker`, or by
    // this function, and it is alive for as long as a waker has it.
    let hooked = unsafe { &*data.cast::<Hooked>() };
    hooked.hook();
    // SAFETY: as above; the new waker owns the count added here.
    unsafe { Arc::increment_strong_count(data.cast::<Hooked>()) };
    RawWaker::new(data, &HOOKED)
}

fn hooked_wake(data: *const ()) {
    hooked_wake_by_ref(data);
    hooked_drop(data);
}

fn hooked_wake_by_ref(data: *const ()) {
    // SAFETY: see `hooked_clone`.
    unsafe { &*data.cast::<Hooked>() }.hook();
}

fn hooked_drop(data: *const ()) {
    // SAFETY: the waker that is dropped owned one count of the `Arc`.
    drop(unsafe { Arc::from_raw(data.cast::<Hooked>()) });
}

/// A waker that runs `hooked`'s hook.
fn hooked_waker(hooked: Arc<Hooked>) -> Waker {
    let data = Arc::into_raw(hooked).cast::<()>();
    // SAFETY: the vtable's functions treat `data` as the `Arc<Hooked>` it
    // is, and keep its count right: one for each waker.
    unsafe { Waker::from_raw(RawWaker::new(data, &HOOKED)) }
}

/// A countdown on another thread is polled with a [`Hooked`] waker: while
/// that poll is in its waker's `clone`, `wake` or `wake_by_ref`, a second
/// countdown, on this thread, is polled to its end. Countdowns that share
/// nothing do not wait for each other; a poll that takes a lock shared by
/// every countdown (a global "ready queue" of wakers) and uses the waker
/// under it makes the second countdown wait, asleep.
pub(super) fn polls_while_another_poll_is_in_its_waker() {
    let watched = Arc::new(Watched::new());
    let countdown = Countdown::new(3);
    let (go, going) = mpsc::channel();
    let hooked = Arc::new(Hooked {
        ran: AtomicBool::new(false),
        go: go.clone(),
        watched: Arc::clone(&watched),
        slept: AtomicBool::new(false),
    });
    let waker = hooked_waker(Arc::clone(&hooked));
    thread::scope(|s| {
        let other = s.spawn(move || {
            let mut countdown = pin!(Countdown::new(1));
            let _ = countdown.as_mut().poll(&mut Context::from_waker(&waker));
            // For a poll that never used its waker: the test's countdown
            // is polled all the same.
            let _ = go.send(());
        });
        going.recv().expect("the other countdown's thread panicked");
        watched.poll_a_countdown(countdown, u32::MAX);
        other.join().unwrap();
    });
    assert!(
        !hooked.slept.load(Ordering::SeqCst),
        "a poll of Countdown::new(3) went to sleep while a poll of another \
         countdown, on another thread, was inside its waker: do your polls \
         share a lock, a global queue of wakers? Each countdown needs only \
         its own count and the waker of its poll: wake cx.waker() and share \
         nothing"
    );
}
