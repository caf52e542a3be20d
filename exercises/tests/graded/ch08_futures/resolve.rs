//! `resolve`: a callback-based lookup made a future, which waits for the
//! callback without blocking the runtime's thread, and turns a dropped
//! callback into an error.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;

use exercises::ch08_futures::{Callback, Resolver, resolve};

use super::{SETTLE, counting_waker, current_thread_runtime};

/// The address the test's resolvers give `host`.
fn address_of(host: &str) -> IpAddr {
    let octet = match host {
        "db.internal" => 7,
        " Db.Internal " => 8,
        "mail.internal" => 25,
        "cache.internal" => 63,
        // An IPv4 address in IPv6-mapped form (`::ffff:10.0.0.64`), which
        // is an IPv6 address, and must come back as one.
        "legacy.internal" => {
            return IpAddr::V6(Ipv4Addr::new(10, 0, 0, 64).to_ipv6_mapped());
        }
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

/// Drops every callback without calling it, and counts its lookups.
#[derive(Debug, Default)]
struct Forgetful(AtomicUsize);

impl Resolver for Forgetful {
    fn lookup(&self, _host: &str, done: Callback) {
        self.0.fetch_add(1, Ordering::SeqCst);
        drop(done);
    }
}

/// Answers at once, inside `lookup`, with an address that changes at each
/// lookup (`10.0.1.1`, then `10.0.1.2`...), whatever the host: a host that
/// has moved. Counts its lookups.
#[derive(Debug, Default)]
struct Moving(AtomicUsize);

impl Resolver for Moving {
    fn lookup(&self, _host: &str, done: Callback) {
        let lookups = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let last = u8::try_from(lookups).unwrap_or(u8::MAX);
        done(Ok(IpAddr::V4(Ipv4Addr::new(10, 0, 1, last))));
    }
}

/// The payload of the panic of [`Crashing`]'s lookups.
#[derive(Debug)]
struct LookupCrashed;

/// Panics in `lookup`, with [`LookupCrashed`], without calling back.
#[derive(Debug)]
struct Crashing;

impl Resolver for Crashing {
    fn lookup(&self, _host: &str, _done: Callback) {
        panic::panic_any(LookupCrashed);
    }
}

/// With a callback called at once, inside `lookup`, `resolve` gives the
/// address, an IPv6-mapped IPv4 address (`::ffff:10.0.0.64`) as it is,
/// and the resolver's error as it is, kind and message. A host resolved
/// before is looked up anew, and gets the new answer: `resolve` keeps no
/// answers. And a `lookup` that panics makes the poll of `resolve` panic,
/// with that panic's own payload.
pub(super) fn returns_what_the_callback_gives() {
    let runtime = current_thread_runtime();
    let found = runtime.block_on(resolve(&Directory, "db.internal"));
    assert_eq!(
        found.ok(),
        Some(address_of("db.internal")),
        "resolve(\"db.internal\") with a resolver that answers at once"
    );
    let mapped = runtime.block_on(resolve(&Directory, "legacy.internal"));
    assert_eq!(
        mapped.ok(),
        Some(address_of("legacy.internal")),
        "resolve(\"legacy.internal\"): the resolver called back with the \
         IPv6 address {}, and resolve should give that very address, not \
         the IPv4 address 10.0.0.64 it maps: give what the resolver says, \
         unconverted",
        address_of("legacy.internal"),
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
    // "db.internal" again, twice, from a resolver that answers anew each
    // time: each call asks it, and gives its latest answer.
    let moving = Moving::default();
    for lookup in 1..=2 {
        let moved = runtime.block_on(resolve(&moving, "db.internal"));
        let asked = moving.0.load(Ordering::SeqCst);
        let expected = IpAddr::V4(Ipv4Addr::new(10, 0, 1, lookup));
        assert!(
            asked == usize::from(lookup)
                && matches!(&moved, Ok(a) if *a == expected),
            "resolve(\"db.internal\") was called {lookup} time(s) with a \
             resolver whose answer changes at each lookup, after an earlier \
             call with another resolver: it asked the resolver {asked} \
             time(s) and gave {moved:?}, not {expected}. Call lookup at \
             every call and give its answer: a cache of answers gives old \
             addresses, and another resolver's"
        );
    }
    let (_, waker) = counting_waker();
    let crashed = panic::catch_unwind(AssertUnwindSafe(|| {
        pin!(resolve(&Crashing, "db.internal"))
            .poll(&mut Context::from_waker(&waker))
    }));
    match crashed {
        Err(payload) if payload.is::<LookupCrashed>() => {}
        Err(payload) => panic!(
            "the resolver's lookup panicked (with a payload of a type of \
             the test's own), and the poll of resolve panicked too, but \
             with another payload (\"{}\"): let the panic go on as it is",
            panic_text(payload.as_ref())
        ),
        Ok(answer) => panic!(
            "the resolver's lookup panicked, and the poll of resolve \
             answered {answer:?}: a panic is a bug to show, not an answer \
             to turn into an error or a wait. Let it go on: do not catch it"
        ),
    }
}

/// Polled by hand, `resolve` is pending until a thread calls the callback
/// after that first poll and a second one, which brings a new waker; the
/// call wakes that newer waker, and the next poll gives the address. The
/// host, `" Db.Internal "`, reaches `lookup` exactly as given: no
/// trimming, no change of case. Then an answer that comes while a poll
/// keeps its waker, and one whose wake runs a poll, are not lost.
pub(super) fn waits_for_a_callback_from_another_thread() {
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
        let mut lookup = pin!(resolve(&switchboard, " Db.Internal "));
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
            Some(" Db.Internal "),
            "the host resolve passed to lookup, which must be the host it \
             was given, exactly (the resolver decides what a name means: \
             do not trim it or change its case)"
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
        let expected = address_of(" Db.Internal ");
        assert!(
            matches!(&second, Poll::Ready(Ok(a)) if *a == expected),
            "after the callback gave {expected}, the next poll of resolve \
             answered {second:?}"
        );
    });
    an_answer_while_the_waker_is_kept_is_not_lost();
    a_poll_during_the_answer_s_wake_is_not_lost();
}

/// The calling thread's id, as `/proc/self/task` names it.
fn my_tid() -> String {
    let me = std::fs::read_link("/proc/thread-self")
        .expect("cannot read /proc/thread-self");
    me.file_name()
        .expect("a thread id")
        .to_string_lossy()
        .into_owned()
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
/// waker, and waits until that poll has returned (or is asleep waiting
/// for something the callback holds, a lock around the answer and the
/// waker, which is right). That poll gives the address, or answers
/// `Pending` having left its waker for the answer to wake: a callback that
/// wakes the task first and stores the answer second leaves the poll in
/// between with nothing, and its waker unwoken, so `resolve` would hang.
fn a_poll_during_the_answer_s_wake_is_not_lost() {
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (heard, hear) = mpsc::channel::<Heard>();
        let (release, released) = mpsc::channel::<()>();
        let polling = Arc::new(AtomicBool::new(false));
        let polled = Arc::new(AtomicBool::new(false));
        let test_tid = my_tid();
        let hooked = Arc::new(Hooked {
            wakes: AtomicUsize::new(0),
            hook: Mutex::new(None),
            wake_hook: Mutex::new(Some(Box::new({
                let (polling, polled) =
                    (Arc::clone(&polling), Arc::clone(&polled));
                let heard = heard.clone();
                move || {
                    // An error: the test gave up (a panic).
                    if heard.send(Heard::Woken).is_err() {
                        return;
                    }
                    // Until the test's poll has returned, or waits for
                    // something the callback holds.
                    let let_go = || {
                        polled.load(Ordering::SeqCst)
                            || (polling.load(Ordering::SeqCst)
                                && thread_state(&test_tid) == Some('S'))
                    };
                    while !let_go() {
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
            polling.store(true, Ordering::SeqCst);
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

/// The host of the lookup whose callback is dropped at once: its case,
/// its quotes and its backslash must all be in the error as they are.
const ODD_HOST: &str = "Printer \"Lab\\2\".LOCAL";

/// A resolver that drops the callback at once, and one that drops it
/// later on another thread: `resolve` returns a `BrokenPipe` error that
/// names the host as given (`Printer "Lab\2".LOCAL`, not
/// `printer "lab\2".local`, nor `"Printer \"Lab\\2\".LOCAL"` as `{:?}`
/// quotes it), does not panic, and asks the resolver once, not again.
pub(super) fn a_dropped_callback_is_an_error() {
    let runtime = current_thread_runtime();
    let forgetful = Forgetful::default();
    let at_once = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(resolve(&forgetful, ODD_HOST))
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
    let lookups = forgetful.0.load(Ordering::SeqCst);
    assert_eq!(
        lookups, 1,
        "one resolve called lookup {lookups} times: ask once. A resolver \
         that drops the callback has hung up, and a second try hides that \
         from the caller"
    );
    check_dropped(at_once, ODD_HOST, "at once");
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
        runtime.block_on(resolve(&switchboard, " Scanner.Local"))
    });
    check_dropped(later, " Scanner.Local", "on another thread");
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
        "the error for a dropped callback should name the host {host}, \
         exactly as given (with {{host}}, not {{host:?}}, which adds quotes \
         and escapes), but it says: {error}"
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
pub(super) fn does_not_block_the_runtime() {
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

/// `resolve` is polled once, then dropped (cancelled); the resolver calls
/// back afterwards, on a thread of its own: the callback does nothing, and
/// does not panic.
pub(super) fn an_answer_after_cancelling_is_ignored() {
    thread::scope(|s| {
        let (calls, called) = mpsc::channel();
        let switchboard = Switchboard(calls);
        let (release, released) = mpsc::channel::<()>();
        let operator = s.spawn(move || {
            let (host, done) = called.recv().ok()?;
            released.recv().ok()?;
            let answered = panic::catch_unwind(AssertUnwindSafe(|| {
                done(Ok(address_of(&host)));
            }));
            Some(answered.map_err(|payload| panic_text(&*payload).to_owned()))
        });
        let (_wakes, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut lookup = pin!(resolve(&switchboard, "db.internal"));
            let first = lookup.as_mut().poll(&mut cx);
            assert!(first.is_pending(), "no answer yet, got {first:?}");
        } // Dropped here: the caller gave up.
        release.send(()).unwrap();
        let answered = operator.join().unwrap();
        assert!(
            matches!(answered, Some(Ok(()))),
            "the resolve future was dropped (cancelled) before the answer, \
             and then the callback panicked on the resolver's thread: \
             {answered:?}. Nobody waits for the answer any more, which is \
             fine: ignore send's error (let _ = sender.send(...))"
        );
    });
}
