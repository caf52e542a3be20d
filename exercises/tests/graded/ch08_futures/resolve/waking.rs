//! The waking: `resolve` waits for a callback from another thread, and
//! an answer that comes while a poll keeps its waker, or whose wake runs
//! a poll, is not lost.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;

use exercises::ch08_futures::resolve;

use super::super::counting_waker;
use super::{Switchboard, address_of};

/// Polled by hand, `resolve` is pending until a thread calls the callback
/// after that first poll and a second one, which brings a new waker; the
/// call wakes that newer waker, and the next poll gives the address. The
/// host, `" Db.Internal."`, reaches `lookup` exactly as given: no
/// trimming, no change of case, its trailing dot (a fully qualified name)
/// kept. Then an answer that comes while a poll
/// keeps its waker, and one whose wake runs a poll, are not lost.
pub(crate) fn waits_for_a_callback_from_another_thread() {
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
        let mut lookup = pin!(resolve(&switchboard, " Db.Internal."));
        let first = lookup.as_mut().poll(&mut cx);
        assert!(
            first.is_pending(),
            "the first poll of resolve answered {first:?}, but the resolver \
             had not called back yet: resolve must wait for the callback"
        );
        assert_eq!(
            wakes.get(),
            0,
            "resolve woke its own task before any answer came: it checks \
             in a loop (try_recv and yield_now), which keeps the runtime \
             busy and a paused clock still. Await the oneshot receiver: \
             its task then sleeps until the callback wakes it"
        );
        // Polled again, with a new waker, as when the task moves or a
        // `select!` polls it anew: the answer must wake this one.
        let (new_wakes, new_waker) = counting_waker();
        let mut new_cx = Context::from_waker(&new_waker);
        let again = lookup.as_mut().poll(&mut new_cx);
        assert!(
            again.is_pending(),
            "the second poll of resolve answered {again:?}, but the resolver \
             had not called back yet"
        );
        release.send(()).unwrap();
        let host = operator.join().unwrap();
        assert_eq!(
            host.as_deref(),
            Some(" Db.Internal."),
            "the host resolve passed to lookup, which must be the host it \
             was given, exactly (the resolver decides what a name means: \
             do not trim it, change its case or take the trailing dot off \
             a fully qualified name)"
        );
        assert!(
            wakes.get() + new_wakes.get() >= 1,
            "the callback ran on another thread but the task was never \
             woken: await the oneshot receiver, whose sender wakes it"
        );
        assert!(
            new_wakes.get() >= 1,
            "resolve was polled twice, the second time with a new waker, and \
             the callback woke only the first poll's waker: a future must \
             wake the waker of its latest poll (the task may have moved, or \
             a select! polls it anew). Keep cx.waker() at every poll \
             (clone_from, or will_wake to skip the clone), or await the \
             oneshot receiver, which does"
        );
        let second = lookup.as_mut().poll(&mut new_cx);
        let expected = address_of(" Db.Internal.");
        assert!(
            matches!(&second, Poll::Ready(Ok(a)) if *a == expected),
            "after the callback gave {expected}, the next poll of resolve \
             answered {second:?}"
        );
    });
    an_answer_while_the_waker_is_kept_is_not_lost();
    a_poll_during_the_answer_s_wake_is_not_lost();
}

/// What the operator thread of [`a_poll_during_the_answer_s_wake_is_not_lost`]
/// tells the test: the answer's wake has begun, or the callback returned.
#[derive(Debug, PartialEq)]
enum Heard {
    Woken,
    Answered,
}

/// `resolve` is polled once, with a waker that, when the answer wakes it,
/// has the test poll `resolve` again, on the test's thread, with a new
/// waker, and waits until that poll has returned, as a waker that hands
/// the task to its executor and waits for it may. That poll gives the
/// address, or answers `Pending` having left its waker for the answer to
/// wake: a callback that wakes the task first and stores the answer
/// second leaves the poll in between with nothing, and its waker unwoken,
/// so `resolve` would hang. And a callback that wakes while it holds a
/// lock that the poll takes (around the answer and the waker) never sees
/// that poll return: the two wait for each other, and the trial times
/// out.
fn a_poll_during_the_answer_s_wake_is_not_lost() {
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (heard, hear) = mpsc::channel::<Heard>();
        let (release, released) = mpsc::channel::<()>();
        let polled = Arc::new(AtomicBool::new(false));
        let hooked = Arc::new(Hooked {
            wakes: AtomicUsize::new(0),
            hook: Mutex::new(None),
            wake_hook: Mutex::new(Some(Box::new({
                let polled = Arc::clone(&polled);
                let heard = heard.clone();
                move || {
                    // An error: the test gave up (a panic).
                    if heard.send(Heard::Woken).is_err() {
                        return;
                    }
                    // Until the test's poll has returned.
                    while !polled.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                }
            }))),
        });
        let operator = s.spawn(move || {
            let (host, done) = called.recv().ok()?;
            released.recv().ok()?;
            done(Ok(address_of(&host)));
            let _ = heard.send(Heard::Answered);
            Some(host)
        });
        let waker = hooked_waker(&hooked);
        let mut lookup = pin!(resolve(&switchboard, "cache.internal"));
        let first = lookup.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(first.is_pending(), "no answer yet, got {first:?}");
        release.send(()).unwrap();
        let expected = address_of("cache.internal");
        let (new_wakes, new_waker) = counting_waker();
        let mut new_cx = Context::from_waker(&new_waker);
        if hear.recv() == Ok(Heard::Woken) {
            let during = lookup.as_mut().poll(&mut new_cx);
            polled.store(true, Ordering::SeqCst);
            let host = operator.join().unwrap();
            assert_eq!(
                host.as_deref(),
                Some("cache.internal"),
                "the host looked up"
            );
            if during.is_pending() {
                assert!(
                    new_wakes.get() >= 1,
                    "the answer's callback woke the task, and a poll that ran \
                     during that wake found no answer yet and answered \
                     Pending; then the callback stored the answer and woke \
                     nobody, so resolve would wait forever. Store the answer \
                     first, then wake the task (a oneshot's send does)"
                );
                let after = lookup.as_mut().poll(&mut new_cx);
                assert!(
                    matches!(&after, Poll::Ready(Ok(a)) if *a == expected),
                    "after the callback gave {expected} and woke the task, \
                     the next poll of resolve answered {after:?}"
                );
            } else {
                assert!(
                    matches!(&during, Poll::Ready(Ok(a)) if *a == expected),
                    "the callback gave {expected}, and the poll of resolve \
                     during its wake answered {during:?}"
                );
            }
        } else {
            operator.join().unwrap();
            panic!(
                "the callback was called on another thread after the first \
                 poll of resolve, and did not wake that poll's waker: await \
                 the oneshot receiver, whose sender wakes it"
            );
        }
    });
}

/// A hook of a [`Hooked`] waker, run once.
type Hook = Mutex<Option<Box<dyn FnOnce() + Send>>>;

/// A waker that counts its wakes, calls a hook at its first clone (the
/// moment a future keeps it for a later wake), and another at its first
/// wake, before it counts it.
struct Hooked {
    wakes: AtomicUsize,
    hook: Hook,
    wake_hook: Hook,
}

/// The functions of a [`Hooked`] waker; its data pointer is an
/// `Arc<Hooked>` made raw.
static HOOKED: RawWakerVTable = RawWakerVTable::new(
    hooked_clone,
    hooked_wake,
    hooked_wake_by_ref,
    hooked_drop,
);

fn hooked_waker(hooked: &Arc<Hooked>) -> Waker {
    let data = Arc::into_raw(Arc::clone(hooked)).cast::<()>();
    // SAFETY: `data` is an `Arc<Hooked>` made raw, which is what every
    // function of `HOOKED` takes, and the waker owns that count.
    unsafe { Waker::from_raw(RawWaker::new(data, &HOOKED)) }
}

fn hooked_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` comes from `hooked_waker` or this function, an
    // `Arc<Hooked>` whose count the waker being cloned owns.
    let hooked = unsafe { &*data.cast::<Hooked>() };
    // SAFETY: as above; the clone owns the count added here.
    unsafe { Arc::increment_strong_count(data.cast::<Hooked>()) };
    let hook = hooked.hook.lock().unwrap().take();
    if let Some(hook) = hook {
        hook();
    }
    RawWaker::new(data, &HOOKED)
}

fn hooked_wake(data: *const ()) {
    hooked_wake_by_ref(data);
    hooked_drop(data);
}

fn hooked_wake_by_ref(data: *const ()) {
    // SAFETY: `data` is an `Arc<Hooked>` that the waker keeps alive.
    let hooked = unsafe { &*data.cast::<Hooked>() };
    let hook = hooked.wake_hook.lock().unwrap().take();
    if let Some(hook) = hook {
        hook();
    }
    hooked.wakes.fetch_add(1, Ordering::SeqCst);
}

fn hooked_drop(data: *const ()) {
    // SAFETY: `data` is an `Arc<Hooked>` whose count this waker owns and
    // gives back here, once.
    unsafe { Arc::decrement_strong_count(data.cast::<Hooked>()) };
}

/// The state of thread `tid` of this process (`R` running, `S` asleep in
/// a wait...), or `None` once it has gone.
fn thread_state(tid: &str) -> Option<char> {
    let stat =
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    after_name.trim_start().chars().next()
}

/// The answer comes during the first poll, at the moment `resolve` keeps
/// its waker (a clone of it) for later: the waker's clone has another
/// thread call the callback, and waits until that call has returned, or
/// is asleep waiting for something the poll holds (a lock around both the
/// slot and the waker, which is right). That poll answers `Ready` with
/// the address, or `Pending` having left a waker that the answer wakes:
/// a `resolve` that checks for the answer first and keeps the waker
/// second, apart, loses an answer that comes in between.
fn an_answer_while_the_waker_is_kept_is_not_lost() {
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (go, went) = mpsc::channel::<()>();
        let (tid_sender, tid) = mpsc::channel::<String>();
        let calling = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let operator = s.spawn({
            let (calling, finished) =
                (Arc::clone(&calling), Arc::clone(&finished));
            move || {
                let me = std::fs::read_link("/proc/thread-self")
                    .expect("cannot read /proc/thread-self");
                let me = me.file_name().expect("a thread id").to_string_lossy();
                tid_sender.send(me.into_owned()).unwrap();
                went.recv().ok()?;
                calling.store(true, Ordering::SeqCst);
                let (host, done) = called.recv().ok()?;
                done(Ok(address_of(&host)));
                finished.store(true, Ordering::SeqCst);
                Some(host)
            }
        });
        let operator_tid = tid.recv().expect("the operator's thread id");
        let hooked = Arc::new(Hooked {
            wakes: AtomicUsize::new(0),
            hook: Mutex::new(Some(Box::new({
                let (calling, finished) =
                    (Arc::clone(&calling), Arc::clone(&finished));
                move || {
                    go.send(()).unwrap();
                    // Until the callback has returned, or waits for this
                    // poll to let go of something.
                    let let_go = || {
                        finished.load(Ordering::SeqCst)
                            || (calling.load(Ordering::SeqCst)
                                && thread_state(&operator_tid) == Some('S'))
                    };
                    while !let_go() {
                        thread::yield_now();
                    }
                }
            }))),
            wake_hook: Mutex::new(None),
        });
        let waker = hooked_waker(&hooked);
        let mut cx = Context::from_waker(&waker);
        let mut lookup = pin!(resolve(&switchboard, "mail.internal"));
        let first = lookup.as_mut().poll(&mut cx);
        let host = operator.join().unwrap();
        assert_eq!(
            host.as_deref(),
            Some("mail.internal"),
            "the host looked up"
        );
        let expected = address_of("mail.internal");
        let woken = hooked.wakes.load(Ordering::SeqCst);
        match first {
            Poll::Ready(Ok(address)) if address == expected => {}
            Poll::Pending => {
                assert!(
                    woken >= 1,
                    "the answer came during the first poll of resolve, \
                     after it had looked for the answer and before it had \
                     kept its waker (while it cloned cx.waker()): the poll \
                     answered Pending, and the answer woke nobody, so \
                     resolve would wait forever. Keep the waker first, then \
                     look for the answer, under one lock, or await a \
                     oneshot receiver, which does"
                );
                let second = lookup.as_mut().poll(&mut cx);
                assert!(
                    matches!(&second, Poll::Ready(Ok(a)) if *a == expected),
                    "after the callback gave {expected} and woke the task, \
                     the next poll of resolve answered {second:?}"
                );
            }
            other => panic!(
                "the callback gave {expected}, and the poll of resolve \
                 answered {other:?}"
            ),
        }
    });
}
