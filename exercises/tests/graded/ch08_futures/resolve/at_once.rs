//! Lookups under way at once, polled by hand: several of one host, each
//! asking its own resolver, and 65,536, which all call `lookup` before any
//! answer comes.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

use exercises::ch08_futures::{Callback, resolve};

use super::super::counting_waker;
use super::Switchboard;

/// Three `resolve`s of "db.internal" under way at once, by the resolvers
/// `a`, `b` and `a` again: each calls `lookup` at its first poll, on its
/// own resolver, and gives the answer of that very lookup (an error as it
/// is), not the answer of another call of the same host.
pub(super) fn same_host_at_once() {
    const HOST: &str = "db.internal";
    let (calls_a, called_a) = mpsc::channel();
    let (calls_b, called_b) = mpsc::channel();
    let (a, b) = (Switchboard(calls_a), Switchboard(calls_b));
    let (_wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut lookups = [
        pin!(resolve(&a, HOST)),
        pin!(resolve(&b, HOST)),
        pin!(resolve(&a, HOST)),
    ];
    for lookup in &mut lookups {
        let first = lookup.as_mut().poll(&mut cx);
        assert!(first.is_pending(), "no answer yet, got {first:?}");
    }
    let mut asked_a: Vec<(String, Callback)> = called_a.try_iter().collect();
    let mut asked_b: Vec<(String, Callback)> = called_b.try_iter().collect();
    let hosts = |asked: &[(String, Callback)]| {
        asked
            .iter()
            .map(|(host, _)| host.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        hosts(&asked_a) == [HOST, HOST] && hosts(&asked_b) == [HOST],
        "three resolve(\"{HOST}\") under way at once, the first and the \
         third with the resolver a, the second with the resolver b, were \
         each polled once: a was asked {:?} and b {:?}, not [\"{HOST}\", \
         \"{HOST}\"] and [\"{HOST}\"]. Each call asks its own resolver at \
         its first poll, even when a lookup of the same host is under way \
         (two resolvers may answer differently, and a second lookup may get \
         a newer answer): share no lookup between calls",
        hosts(&asked_a),
        hosts(&asked_b),
    );
    let (_, third) = asked_a.pop().expect("two lookups by a");
    let (_, first) = asked_a.pop().expect("two lookups by a");
    let (_, second) = asked_b.pop().expect("one lookup by b");
    let addresses =
        [1, 2].map(|last| IpAddr::V4(Ipv4Addr::new(10, 0, 3, last)));
    first(Ok(addresses[0]));
    second(Ok(addresses[1]));
    third(Err(io::Error::new(io::ErrorKind::TimedOut, "a timed out")));
    let answers =
        lookups.map(|mut lookup| match lookup.as_mut().poll(&mut cx) {
            Poll::Ready(answer) => {
                Some(answer.map_err(|e| (e.kind(), e.to_string())))
            }
            Poll::Pending => None,
        });
    let expected = [
        Some(Ok(addresses[0])),
        Some(Ok(addresses[1])),
        Some(Err((io::ErrorKind::TimedOut, "a timed out".to_string()))),
    ];
    assert_eq!(
        answers, expected,
        "three resolve(\"{HOST}\") under way at once, each lookup answered \
         differently: each call gives the answer of its own lookup (None: \
         still pending after its answer came)"
    );
}

/// How many lookups [`many_at_once`] has under way at once: more
/// than any cap on lookups in flight that "spares the DNS server" (c-ares
/// and `getaddrinfo_a` style caps are a few dozen, a limit copied from
/// elsewhere is 1,024 or 10,000), and still only some 30 MB of futures.
/// The answers' addresses number the lookups in two bytes.
const AT_ONCE: usize = 1 << 16;

/// [`AT_ONCE`] `resolve`s, each polled once before any answer comes: each
/// has called `lookup` by then (none waits for a slot that an earlier
/// lookup's answer frees). Then the answers come, last lookup first, and
/// each gives its own.
pub(super) fn many_at_once() {
    let (calls, called) = mpsc::channel();
    let switchboard = Switchboard(calls);
    let hosts: Vec<String> =
        (0..AT_ONCE).map(|i| format!("host-{i}.internal")).collect();
    let (_wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut lookups: Vec<_> = hosts
        .iter()
        .map(|host| Box::pin(resolve(&switchboard, host)))
        .collect();
    for lookup in &mut lookups {
        let first = lookup.as_mut().poll(&mut cx);
        assert!(first.is_pending(), "no answer yet, got {first:?}");
    }
    let mut asked: Vec<(String, Callback)> = called.try_iter().collect();
    assert_eq!(
        asked.len(),
        AT_ONCE,
        "{AT_ONCE} resolve futures were each polled once, and no lookup \
         was answered yet, but only {} of them called lookup: each calls \
         lookup at its first poll, however many are under way (no cap on \
         the lookups in flight, which makes the later ones wait for \
         answers to the earlier ones, and hangs with a resolver that \
         answers once all are in)",
        asked.len(),
    );
    let number = |host: &str| -> usize {
        host.trim_start_matches("host-")
            .trim_end_matches(".internal")
            .parse()
            .expect("a host of the test's")
    };
    let address = |i: usize| {
        let [.., high, low] = (i as u32).to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(10, 1, high, low))
    };
    while let Some((host, done)) = asked.pop() {
        done(Ok(address(number(&host))));
    }
    for (i, lookup) in lookups.iter_mut().enumerate() {
        let answer = lookup.as_mut().poll(&mut cx);
        assert!(
            matches!(&answer, Poll::Ready(Ok(a)) if *a == address(i)),
            "resolve(\"host-{i}.internal\"), one of {AT_ONCE} under way at \
             once, was answered {} and gave {answer:?}",
            address(i),
        );
    }
}
