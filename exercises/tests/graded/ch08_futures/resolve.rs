//! `resolve`: a callback-based lookup made a future, which waits for the
//! callback without blocking the runtime's thread, and turns a dropped
//! callback into an error.

mod at_once;
mod waking;

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::Context;
use std::thread;

use exercises::ch08_futures::{Callback, Resolver, resolve};

use super::{SETTLE, counting_waker, current_thread_runtime};

pub(super) use waking::waits_for_a_callback_from_another_thread;

use at_once::{many_at_once, same_host_at_once};

/// The address the test's resolvers give `host`.
fn address_of(host: &str) -> IpAddr {
    let octet = match host {
        "db.internal" => 7,
        " Db.Internal." => 8,
        "mail.internal" => 25,
        "cache.internal" => 63,
        // An IPv4 address in IPv6-mapped form (`::ffff:10.0.0.64`), which
        // is an IPv6 address, and must come back as one.
        "legacy.internal" => {
            return IpAddr::V6(Ipv4Addr::new(10, 0, 0, 64).to_ipv6_mapped());
        }
        // The unspecified addresses, which a blocking resolver (a DNS
        // sinkhole) gives: still addresses, and answers as they are.
        "sinkhole.internal" => return IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "sinkhole6.internal" => return IpAddr::V6(Ipv6Addr::UNSPECIFIED),
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
        } else if host.ends_with(".unreachable") {
            Err(io::Error::from_raw_os_error(UNREACHABLE))
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                NoSuchHost(host.to_string()),
            ))
        });
    }
}

/// The OS error number of [`Directory`]'s answer for the hosts that end
/// in `.unreachable` (`ENETUNREACH` on Linux).
const UNREACHABLE: i32 = 101;

/// The inner error of [`Directory`]'s `NotFound` answers, of a type of the
/// test's own, which a `resolve` that passes the error on keeps.
#[derive(Debug)]
struct NoSuchHost(String);

impl std::fmt::Display for NoSuchHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no such host: {}", self.0)
    }
}

impl std::error::Error for NoSuchHost {}

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

/// Answers at once, inside `lookup`, whatever the host: an `Interrupted`
/// error at its first lookup, a `WouldBlock` one (`EAI_AGAIN`) at its
/// second, and then an address (`10.0.2.3`...). Counts its lookups.
#[derive(Debug, Default)]
struct Flaky(AtomicUsize);

/// What [`Flaky`] answers at its lookups that fail: kind and message.
const FLAKY_ERRORS: [(io::ErrorKind, &str); 2] = [
    (io::ErrorKind::Interrupted, "lookup interrupted by a signal"),
    (
        io::ErrorKind::WouldBlock,
        "temporary failure in name resolution",
    ),
];

impl Resolver for Flaky {
    fn lookup(&self, _host: &str, done: Callback) {
        let lookups = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        done(match FLAKY_ERRORS.get(lookups - 1) {
            Some(&(kind, message)) => Err(io::Error::new(kind, message)),
            None => {
                let last = u8::try_from(lookups).unwrap_or(u8::MAX);
                Ok(IpAddr::V4(Ipv4Addr::new(10, 0, 2, last)))
            }
        });
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
/// address, an IPv6-mapped IPv4 address (`::ffff:10.0.0.64`) and the
/// unspecified addresses (`0.0.0.0`, `::`) as they are, and the
/// resolver's error as it is, kind and message, an `Interrupted` or a
/// `WouldBlock` one too, after one lookup (no retry). A host resolved
/// before is looked up anew, and gets the new answer: `resolve` keeps no
/// answers. An address literal is looked up too, not parsed by `resolve`,
/// and so is `localhost` (its address is the resolver's to give).
/// The error is the resolver's `io::Error` itself: its inner error and its
/// OS error number are kept. And a `lookup` that panics makes the poll of `resolve` panic,
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
    for host in ["sinkhole.internal", "sinkhole6.internal"] {
        let blocked = runtime.block_on(resolve(&Directory, host));
        assert!(
            matches!(&blocked, Ok(a) if *a == address_of(host)),
            "resolve(\"{host}\"): the resolver called back with the \
             unspecified address {}, and resolve gave {blocked:?}: give \
             what the resolver says, whatever the address (a resolver that \
             blocks a name answers so, and the caller decides what that \
             means)",
            address_of(host),
        );
    }
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
    assert!(
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<NoSuchHost>())
            .is_some(),
        "the resolver called back with an io::Error whose inner error is \
         of a type of the test's own, and resolve gave an error of the \
         same kind and message but without that inner error ({:?}): give \
         the resolver's io::Error itself (a oneshot carries it as it is), \
         not one rebuilt from its kind and text",
        error.get_ref(),
    );
    let unreachable = runtime.block_on(resolve(&Directory, "far.unreachable"));
    let os_error = unreachable.as_ref().map_err(io::Error::raw_os_error);
    assert!(
        matches!(os_error, Err(Some(UNREACHABLE))),
        "resolve(\"far.unreachable\"): the resolver called back with the \
         OS error number {UNREACHABLE}, and resolve gave {unreachable:?}, \
         whose raw_os_error is {os_error:?}: give the resolver's io::Error \
         itself, not one rebuilt from its kind and text"
    );
    // "db.internal" again, twice, from a resolver that answers anew each
    // time: each call asks it, and gives its latest answer. Then an
    // address literal, which is the resolver's to answer too (a hosts file
    // or a DNS64 resolver may map it), and an empty host, one with a NUL
    // byte and two not in ASCII, which are the resolver's to judge: it
    // answers them. Last, `localhost`, whose address is the resolver's to
    // give too (it need not be 127.0.0.1: a hosts file may say `::1`, or a
    // container another address).
    let moving = Moving::default();
    for (lookup, host) in [
        (1, "db.internal"),
        (2, "db.internal"),
        (3, "10.0.0.64"),
        (4, ""),
        (5, "db\0internal"),
        (6, "bücher.example"),
        (7, "例え.テスト"),
        (8, "localhost"),
        (9, "LocalHost."),
    ] {
        let moved = runtime.block_on(resolve(&moving, host));
        let asked = moving.0.load(Ordering::SeqCst);
        let expected = IpAddr::V4(Ipv4Addr::new(10, 0, 1, lookup));
        assert!(
            asked == usize::from(lookup)
                && matches!(&moved, Ok(a) if *a == expected),
            "resolve was called {lookup} time(s) with a resolver whose \
             answer changes at each lookup, after an earlier call with \
             another resolver, the last time with {host:?}: it asked the \
             resolver {asked} time(s) and gave {moved:?}, not {expected}. \
             Call lookup at every call, with any host, an address literal, \
             an empty host, one with a NUL byte and one not in ASCII too, \
             as given, and give its answer: a cache of answers gives old addresses, and another \
             resolver's, a literal parsed by resolve itself skips the \
             resolver, and so do a check of the host by resolve (what a \
             name may hold is the resolver's business) and an answer of \
             resolve's own for localhost (the resolver may map it to \
             another address than 127.0.0.1)"
        );
    }
    // A resolver whose first answer is `Interrupted` and second is
    // `WouldBlock`: each is the answer of its call, after one lookup.
    let flaky = Flaky::default();
    for (call, (kind, message)) in FLAKY_ERRORS.into_iter().enumerate() {
        let failed = runtime.block_on(resolve(&flaky, "db.internal"));
        let asked = flaky.0.load(Ordering::SeqCst);
        let gave = failed.as_ref().map_err(|e| (e.kind(), e.to_string()));
        assert!(
            asked == call + 1
                && matches!(&gave, Err((k, m)) if *k == kind && m == message),
            "resolve(\"db.internal\") number {}: the resolver called back \
             with an error ({kind:?}, \"{message}\") at its lookup number \
             {}, and an address at the next; resolve asked it {asked} \
             time(s) in all and gave {gave:?}. Give the resolver's answer, \
             whatever its kind: an error a caller may retry is still the \
             answer, and retrying is the caller's choice (each call asks \
             the resolver once)",
            call + 1,
            call + 1,
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

/// The host of the lookup whose callback is dropped at once: its case,
/// its quotes, its backslash and its control characters (a tab, a newline
/// and an escape) must all be in the error as they are.
const ODD_HOST: &str = "Printer \"Lab\\2\"\t.LOCAL\n\u{1b}[0m";

/// The host of the lookup whose callback is dropped later, on another
/// thread: over 4 KiB long, and in the error whole, not cut short.
fn long_host() -> String {
    format!(" Scanner{}.Local", ".Floor-3".repeat(520))
}

/// A resolver that drops the callback at once, and one that drops it
/// later on another thread: `resolve` returns a `BrokenPipe` error that
/// names the host as given (`Printer "Lab\2"`, a tab, `.LOCAL`, a newline
/// and an escape sequence: not lowercased, not quoted and escaped as
/// `{:?}` does, and no control character filtered out), does not panic,
/// and asks the resolver once, not again.
/// The second host is over 4 KiB long, and must be in the error whole.
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
        runtime.block_on(resolve(&switchboard, &long_host()))
    });
    check_dropped(later, &long_host(), "on another thread");
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
    // A host too long to quote in a message is described instead; a
    // short one is shown escaped, so that its control characters show.
    let named = if host.len() <= 80 {
        format!("{host:?} (shown escaped)")
    } else {
        format!(
            "of {} characters (\"{}...{}\")",
            host.len(),
            &host[..20],
            &host[host.len() - 20..]
        )
    };
    let error = match result {
        Ok(address) => panic!(
            "resolve gave {address} for the host {named}, but the resolver \
             dropped the callback ({when}) without calling it: that is an \
             error"
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
    let message = error.to_string();
    assert!(
        message.contains(host),
        "the error for a dropped callback should name the host {named}, \
         exactly as given and whole (with {{host}}, not {{host:?}}, which \
         adds quotes and escapes, not cut short, however long, and with \
         its control characters kept, not filtered out), but it says \
         (shown escaped): {}",
        if message.chars().count() <= 200 {
            message.escape_debug().to_string()
        } else {
            let start: String = message.chars().take(200).collect();
            format!("{}... ({} bytes)", start.escape_debug(), message.len())
        }
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
/// runtime's one thread never lets the second lookup start. First, three
/// lookups of one host, polled by hand, by two resolvers (the first one
/// twice): each call asks its own resolver, and gets that lookup's answer;
/// and 65,536 lookups, polled by hand, all call `lookup` at their first
/// poll, before any answer.
pub(super) fn does_not_block_the_runtime() {
    same_host_at_once();
    many_at_once();
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
