//! Graded trials of chapter 6, Fairness: starvation and the new GIL.
//!
//! The "how" checks: threads queue for the ticket lock one by one while it
//! is held, and the thread that lets go and asks again at once must come
//! last; two CPU-bound threads under the new GIL can only both progress if
//! the holder hands over when asked; work that spins until the third
//! heartbeat can only finish if it runs off the runtime's one thread; and a
//! writer must get in while one thread keeps a read lock held at every
//! moment. Unfair or blocking versions time out and are told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch06")]

// The trials' bodies, one module per exercise, in `ch06_fairness/`.
mod fair_rwlock;
mod heartbeat;
mod new_gil;
mod ticket_lock;

use std::time::Duration;

use course::grader::Trial;
use fair_rwlock::{
    a_waiting_writer_blocks_new_readers, a_writer_is_not_starved_by_readers,
    is_sync_only_for_sync_values, readers_share_the_lock,
    try_read_does_not_defer_to_queued_readers, writers_exclude_everyone,
};
use heartbeat::{
    beats_while_the_work_runs, does_not_burst_after_a_stall, passes_a_panic_on,
    returns_the_result, sleeps_between_beats,
};
use new_gil::{
    a_switch_restarts_the_interval, a_waiter_sleeps_between_its_intervals,
    a_waiter_that_lost_asks_again,
    check_counts_as_waiting_only_after_the_switch,
    check_ends_the_request_as_it_lets_go,
    check_hands_over_after_a_drop_request,
    check_waits_for_the_switch_however_long,
    check_waits_to_take_it_back_like_any_waiter,
    check_without_a_request_keeps_the_gil, cpu_threads_take_turns,
    one_holder_at_a_time, taking_the_gil_resets_the_request,
    waits_an_interval_before_asking,
};
use ticket_lock::{
    a_panicking_holder_serves_the_next_ticket, counts_the_queue,
    excludes_other_threads, is_sync_for_send_values,
    serves_threads_in_arrival_order,
};

/// Deadline for trials whose only way to hang is a lock that never lets a
/// waiting thread in.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for the ticket lock's busiest trial: generous, since each of
/// its hand-overs may wait for a time slice on a loaded machine.
const CONVOY_TIMEOUT: Duration = Duration::from_secs(10);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch06::ticket_lock::excludes_other_threads",
            2,
            excludes_other_threads,
        )
        .timeout(CONVOY_TIMEOUT)
        .on_timeout(
            "a thread waited forever for its turn: does dropping the guard \
             serve the next ticket, and does every thread get a ticket of \
             its own?",
        ),
        Trial::new(
            "ch06::ticket_lock::serves_threads_in_arrival_order",
            3,
            serves_threads_in_arrival_order,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a thread never got the lock, or queue_len never counted a \
             waiting thread (if counts_the_queue failed too, start there)",
        ),
        Trial::new("ch06::ticket_lock::counts_the_queue", 1, counts_the_queue)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "queue_len never reached 3 with one thread holding the \
                 lock and two waiting for it: it counts the tickets drawn \
                 but not yet served (next ticket minus now serving)",
            ),
        Trial::new(
            "ch06::ticket_lock::a_panicking_holder_serves_the_next_ticket",
            1,
            a_panicking_holder_serves_the_next_ticket,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the next thread never got the lock after a holder panicked: \
             the guard dropped while the panic unwound must serve the next \
             ticket all the same",
        ),
        Trial::new(
            "ch06::ticket_lock::is_sync_for_send_values",
            1,
            is_sync_for_send_values,
        ),
        Trial::new(
            "ch06::new_gil::one_holder_at_a_time",
            1,
            one_holder_at_a_time,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a thread never got the GIL: is it released when the guard \
                 drops, also while its thread panics, and does check() take \
                 it back once another thread has had it?",
        ),
        Trial::new(
            "ch06::new_gil::waits_an_interval_before_asking",
            1,
            waits_an_interval_before_asking,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL: wait in slices of \
             one interval (Condvar::wait_timeout), and when a wait times \
             out with no switch meanwhile, set the drop request",
        ),
        Trial::new(
            "ch06::new_gil::a_switch_restarts_the_interval",
            1,
            a_switch_restarts_the_interval,
        )
        // Each attempt takes one and a half 1 s intervals, and the check of
        // the holder's own taking two.
        .timeout(Duration::from_secs(30))
        // It freezes a thread with a signal, which only one trial at a
        // time may do.
        .exclusive()
        .on_timeout(
            "the waiter that did not get the GIL at the switch never asked \
             the new holder to drop it: after a switch, wait a whole \
             interval again, and ask if it times out with no switch \
             meanwhile",
        ),
        Trial::new(
            "ch06::new_gil::check_hands_over_after_a_drop_request",
            3,
            check_hands_over_after_a_drop_request,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL, or check() never \
             returned: it waits until another thread has taken the GIL, \
             then takes it back once it is free",
        ),
        Trial::new(
            "ch06::new_gil::taking_the_gil_resets_the_request",
            1,
            taking_the_gil_resets_the_request,
        )
        // It freezes a thread with a signal, which only one trial at a
        // time may do.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL, or never got it \
             once the holder dropped its guard; or, after a thread that \
             found the GIL free had taken it, its check() did not return \
             at once though nobody had asked it",
        ),
        Trial::new(
            "ch06::new_gil::check_ends_the_request_as_it_lets_go",
            1,
            check_ends_the_request_as_it_lets_go,
        )
        // It freezes a thread with a signal, and counts another's wake-ups.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL (after a 1 s \
             interval), or the thread in check() was never told that \
             another thread had taken the GIL (one that found it free, \
             without waiting, must notify it too), or never took the GIL \
             back once that thread let go",
        ),
        Trial::new(
            "ch06::new_gil::a_waiter_sleeps_between_its_intervals",
            1,
            a_waiter_sleeps_between_its_intervals,
        )
        // It measures CPU time, which other trials running alongside would
        // only spread out; and a second of it may take many more on a
        // loaded machine.
        .exclusive()
        .timeout(Duration::from_secs(60))
        .on_timeout(
            "the waiting thread never asked for the GIL, or the holder's \
             second of CPU time never came",
        ),
        Trial::new(
            "ch06::new_gil::check_waits_to_take_it_back_like_any_waiter",
            1,
            check_waits_to_take_it_back_like_any_waiter,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "after another thread took the GIL, the thread in check() never \
             went back to waiting for it (waiting() never counted it): was \
             it told of the switch? With one Condvar for \"free\" and \
             \"taken\" and notify_one, the wake-up can go to another \
             waiter instead; use two Condvars, or notify_all",
        ),
        Trial::new(
            "ch06::new_gil::check_counts_as_waiting_only_after_the_switch",
            1,
            check_counts_as_waiting_only_after_the_switch,
        )
        // A hundred hand-overs, each of which may wait for a time slice on
        // a loaded machine.
        .timeout(CONVOY_TIMEOUT)
        .on_timeout(
            "a round never ended: the waiter never asked for the GIL, or \
             check() never returned once it had had it",
        ),
        Trial::new(
            "ch06::new_gil::check_waits_for_the_switch_however_long",
            1,
            check_waits_for_the_switch_however_long,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "with a zero interval, the waiting thread never asked for the \
             GIL, or check() never returned",
        ),
        Trial::new(
            "ch06::new_gil::check_without_a_request_keeps_the_gil",
            1,
            check_without_a_request_keeps_the_gil,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "waiting() never showed the waiting thread, or dropping the \
             guard did not let it in",
        ),
        Trial::new(
            "ch06::new_gil::cpu_threads_take_turns",
            2,
            cpu_threads_take_turns,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "two threads that only call check() did not take turns ten \
             times: the waiting one asks after every interval, and the \
             holder's check() must then hand the GIL over. The thread that \
             gave the GIL up in check() waits to take it back like any \
             waiter, asking for it too, or the new holder keeps it forever",
        ),
        Trial::new(
            "ch06::new_gil::a_waiter_that_lost_asks_again",
            1,
            a_waiter_that_lost_asks_again,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "two waiters had asked for the GIL, one of them took it, and the \
             other never asked the new holder: a waiter asks after every \
             interval in which nobody else got the GIL, not only once",
        ),
        Trial::new(
            "ch06::heartbeat::returns_the_result",
            1,
            returns_the_result,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "with_heartbeat never returned: does it stop beating once the \
             work has finished?",
        ),
        Trial::new(
            "ch06::heartbeat::beats_while_the_work_runs",
            3,
            beats_while_the_work_runs,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the heartbeat stopped while the work ran: the work spins until \
             the third beat, and on a current-thread runtime, work that runs \
             on the runtime's thread (called inline, or in tokio::spawn) \
             leaves no time for the beats; on a multi-thread runtime, \
             tokio::task::block_in_place runs the work where with_heartbeat \
             itself runs, which then cannot beat until the work is over. \
             Run it with tokio::task::spawn_blocking, on every runtime",
        ),
        Trial::new(
            "ch06::heartbeat::does_not_burst_after_a_stall",
            1,
            does_not_burst_after_a_stall,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "with_heartbeat never returned on the paused clock, though the \
             work ended once the test had advanced the clock 50 ms past a \
             stall; or no beat came after the clock jumped past a beat's \
             time at once (35 ms with a period of 10 ms, 28 ms with one of \
             20 ms): a missed tick must come late, as soon as the loop runs \
             again",
        ),
        Trial::new(
            "ch06::heartbeat::sleeps_between_beats",
            1,
            sleeps_between_beats,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "with_heartbeat never returned on the paused clock after the \
             work ended, or the test's task never ran again: does the loop \
             let the other tasks of the runtime run?",
        ),
        Trial::new("ch06::heartbeat::passes_a_panic_on", 1, passes_a_panic_on)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "with_heartbeat never returned after the work panicked (the \
                 JoinHandle completes with an error then, which ends the \
                 wait just as a result would), or after beat panicked: the \
                 work there ends only once the caller has the beat's panic, \
                 so resume it at once, without waiting for the work",
            ),
        Trial::new(
            "ch06::fair_rwlock::readers_share_the_lock",
            1,
            readers_share_the_lock,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "3 readers never held the lock at the same time: each waits at \
             a barrier while it holds a read guard, so read() must let \
             readers in together",
        ),
        Trial::new(
            "ch06::fair_rwlock::writers_exclude_everyone",
            2,
            writers_exclude_everyone,
        )
        // It freezes a thread with a signal, which only one trial at a
        // time may do.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a reader or a writer never got in: is the lock released when \
             each guard drops, and is a waiting thread woken then? Or a \
             reader, woken as a writer left and finding another writer \
             inside, neither went in nor back to an untimed wait \
             (Condvar::wait)? Or writers_waiting() never said 2 while two \
             writers waited behind a reader (a flag, not a count)",
        ),
        Trial::new(
            "ch06::fair_rwlock::a_waiting_writer_blocks_new_readers",
            2,
            a_waiting_writer_blocks_new_readers,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "writers_waiting() never counted the writer blocked in write(), \
             or a thread never got in once the read guard was dropped; or, \
             with a reader and then a writer queued behind a writer, the \
             waiting writer was never woken when that writer left (with one \
             Condvar for readers and writers, notify_one may wake the reader, \
             which only waits again: give writers a Condvar of their own)",
        ),
        Trial::new(
            "ch06::fair_rwlock::try_read_does_not_defer_to_queued_readers",
            1,
            try_read_does_not_defer_to_queued_readers,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a reader blocked in read() behind a writer never got in once \
             the writer had dropped its guard",
        ),
        Trial::new(
            "ch06::fair_rwlock::a_writer_is_not_starved_by_readers",
            3,
            a_writer_is_not_starved_by_readers,
        )
        // It freezes a thread with a signal, which only one trial at a
        // time may do.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the writer starved: one thread always holds a read guard and \
             takes a new one with try_read before it drops the old one, \
             stopping only when try_read returns None. While a writer \
             waits, try_read (and read) must refuse new readers",
        ),
        Trial::new(
            "ch06::fair_rwlock::is_sync_only_for_sync_values",
            1,
            is_sync_only_for_sync_values,
        ),
    ]
}

/// Starts `run` on a thread of its own, and returns it with its id.
fn start<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    run: impl FnOnce() -> T + Send + 'scope,
) -> (
    std::thread::ScopedJoinHandle<'scope, T>,
    course::grader::task::Me,
) {
    let (tell, told) = std::sync::mpsc::channel();
    let handle = scope.spawn(move || {
        tell.send(course::grader::task::me()).unwrap();
        run()
    });
    (handle, told.recv().unwrap())
}

/// The address of the futex thread `tid` sleeps on, in a wait with no
/// time limit (a `Mutex` or a `Condvar` of std, say); `None` if it does
/// not sleep so.
fn futex_of(tid: course::grader::task::Tid) -> Option<String> {
    match course::grader::task::wait(tid)? {
        (course::grader::task::Wait::UntilWoken, line) => {
            line.split_whitespace().nth(1).map(str::to_string)
        }
        _ => None,
    }
}
