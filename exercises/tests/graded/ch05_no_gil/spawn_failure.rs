//! The check that `in_bands`, `blur` and `fetch_all` share: when the
//! threads for their bands (or requests) cannot start, they panic, as
//! `Scope::spawn` does, rather than run the work on the calling thread;
//! and when only some can start, those that did do not wait for the
//! others (a start barrier for all would hang).

use std::fmt::Debug;
use std::sync::atomic::Ordering;

use super::{WhereRan, os};

/// No thread with the default stack can start while `run` calls the
/// function under test, `name`, for `units` of its `what`s (bands or
/// requests), each noting where it ran in the [`WhereRan`] it is given:
/// the function panics, or every unit ran on a thread of its own (threads
/// with a smaller stack may still start), and none ran on the calling
/// thread. First in its trial, before any thread of this process has
/// ended (see `course::grader::spawn_limit`).
pub(super) fn no_thread_can_start<T: Debug>(
    name: &str,
    what: &str,
    units: usize,
    run: impl FnOnce(&WhereRan) -> T,
) {
    let ran = WhereRan::new();
    let outcome = os::while_no_thread_can_start(|| run(&ran));
    let (elsewhere, on_caller) = (
        ran.elsewhere.load(Ordering::SeqCst),
        ran.on_caller.load(Ordering::SeqCst),
    );
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a \
             {what} whose thread cannot start is not checked"
        ),
        // Threads with a stack smaller than the default may still start:
        // then every unit ran on one.
        Some(Ok(_)) if elsewhere == units => {}
        Some(Ok(output)) => panic!(
            "no thread with the default stack could start, yet {name} \
             returned {output:?}, with {elsewhere} of {units} {what}s run \
             on threads of their own and {on_caller} on the calling \
             thread: a {what} whose thread cannot start is never done; let \
             the failure panic, as Scope::spawn does (do not log it and \
             carry on, nor run the {what} on the caller)"
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        on_caller, 0,
        "no thread could start, and a {what} ran on the calling thread \
         instead: each {what} runs on a thread of its own, or {name} panics"
    );
}

/// Only 2 new threads can start while `run` calls the function under
/// test, `name`, for 4 of its `what`s, each noting where it ran: the two
/// that started must not wait for the others (a start barrier for every
/// unit hangs, as the scope waits for them before it panics; the trial's
/// timeout says so). The function panics, or returns once every unit ran
/// on a thread of its own (a thread that ended gave its stack to a later
/// one); none ran on the calling thread.
pub(super) fn only_two_threads_can_start<T: Debug>(
    name: &str,
    what: &str,
    run: impl FnOnce(&WhereRan) -> T,
) {
    const UNITS: usize = 4;
    let ran = WhereRan::new();
    let outcome = os::while_only_threads_can_start(2, || run(&ran));
    let (elsewhere, on_caller) = (
        ran.elsewhere.load(Ordering::SeqCst),
        ran.on_caller.load(Ordering::SeqCst),
    );
    match outcome {
        None => eprintln!(
            "note: RLIMIT_DATA or the C library's stack cache works \
             otherwise here, so {what}s whose threads start while a later \
             one cannot are not checked"
        ),
        // A unit's thread that ended gave its stack to the next one's.
        Some(Ok(_)) if elsewhere == UNITS => {}
        Some(Ok(output)) => panic!(
            "only 2 threads could start, yet {name} of {UNITS} {what}s \
             returned {output:?}, with {elsewhere} run on threads of their \
             own: a {what} whose thread cannot start is never done; let \
             the failure panic"
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        on_caller, 0,
        "only 2 threads could start, and a {what} ran on the calling \
         thread instead: each {what} runs on a thread of its own, or \
         {name} panics"
    );
}
