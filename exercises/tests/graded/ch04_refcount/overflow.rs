//! What happens at the edge of a count: a clone that would wrap a count to
//! zero must abort the process, and one that would not must not; a latency
//! that would overflow the total must change nothing, and one that fits
//! must be recorded; balances whose total does not fit in a `u64` are
//! refused in every build.
//!
//! A trial that passes only if the process aborts cannot abort its own
//! process, so it forks: the copy makes the clone, the trial waits for the
//! copy and reads how it ended. The trial's process is single-threaded when
//! it forks (the grader runs each trial alone in a fresh process, and these
//! trials start no thread before), so the copy can run Rust code normally.
//! The copy ends with `_exit`, which runs no destructor and flushes no
//! buffer the trial's process would also write.

use std::ffi::c_int;
use std::io;
use std::mem;
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitStatus;
use std::thread;

use exercises::ch04_refcount::{Bank, MyArc, MyRc, Stats};

/// `pid_t`, a 32-bit signed integer on every Unix Rust supports.
type Pid = i32;

// The C library's, which every Rust program on Unix links.
unsafe extern "C" {
    fn fork() -> Pid;
    fn waitpid(pid: Pid, status: *mut c_int, options: c_int) -> Pid;
    fn _exit(status: c_int) -> !;
}

/// `SIGABRT`, what `std::process::abort` raises: 6 on Linux and macOS.
const SIGABRT: i32 = 6;

/// The copy's exit status when `body` returned: 100 plus its answer.
const RETURNED: c_int = 100;
/// The copy's exit status when `body` panicked.
const PANICKED: c_int = 99;

/// How the copy of the process that ran `body` ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// `std::process::abort`, or anything else that raises `SIGABRT`.
    Aborted,
    /// `body` returned this answer.
    Returned(u8),
    /// `body` panicked.
    Panicked,
    /// Anything else: another signal, another exit status.
    Otherwise(ExitStatus),
}

/// Runs `body` in a copy of this process (`fork`) and tells how the copy
/// ended. `body` answers with a number below 100.
///
/// # Panics
///
/// If `fork` or `waitpid` fails.
pub(super) fn in_a_copy(body: impl FnOnce() -> u8) -> Ended {
    // SAFETY: this process has one thread (see the module's comment), so
    // the copy holds no lock another thread had taken, and may run any
    // code; it leaves through `_exit` only, never back into the trial.
    let pid = unsafe { fork() };
    if pid == 0 {
        let status = match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(answer) => RETURNED + c_int::from(answer.min(99)),
            Err(_) => PANICKED,
        };
        // SAFETY: ends the copy at once, as `fork`'s documentation asks of
        // a child that does not exec.
        unsafe { _exit(status) }
    }
    assert!(pid > 0, "fork failed: {}", io::Error::last_os_error());
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a valid place for the status, and `pid` is
        // the copy, this process's own child.
        if unsafe { waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let error = io::Error::last_os_error();
        assert!(
            error.kind() == io::ErrorKind::Interrupted,
            "waitpid failed: {error}"
        );
    }
    let status = ExitStatus::from_raw(status);
    match (status.signal(), status.code()) {
        (Some(SIGABRT), _) => Ended::Aborted,
        (_, Some(PANICKED)) => Ended::Panicked,
        (_, Some(code)) if (RETURNED..RETURNED + 100).contains(&code) => {
            Ended::Returned((code - RETURNED) as u8)
        }
        _ => Ended::Otherwise(status),
    }
}

/// In the copy: from now on, a panic ends the copy at once, as
/// [`Ended::Panicked`], from the panic hook, before anything can catch it.
/// A clone that must abort may not panic first, not even a panic it then
/// catches and turns into the abort: the panic of an overflowing `+ 1` is
/// one that only debug builds raise.
fn end_the_copy_on_any_panic() {
    panic::set_hook(Box::new(|_| {
        // SAFETY: ends the copy at once, as `in_a_copy` does.
        unsafe { _exit(PANICKED) }
    }));
}

/// A clone of a `MyRc` whose count is `usize::MAX` aborts: one more would
/// wrap the count to 0 and let the next drop free a value still in use. It
/// aborts without panicking first (the copy ends at the first panic, even
/// one the clone would catch): an abort that only follows the panic of an
/// overflowing `+ 1` is one that only debug builds make.
pub fn rc_aborts_before_the_count_wraps() {
    let rc = MyRc::new(String::from("tab"));
    // A plain clone first, so that a `todo!()` in `clone` ends the trial
    // here as TODO rather than in the copy.
    drop(rc.clone());
    // SAFETY: the count stays at least the one `MyRc` there is; it is put
    // back to exactly one before that `MyRc` is dropped.
    unsafe { MyRc::set_strong_count_for_tests(&rc, usize::MAX) };
    assert_eq!(
        MyRc::strong_count(&rc),
        usize::MAX,
        "set_strong_count_for_tests must set the count strong_count reads"
    );
    let ended = in_a_copy(|| {
        end_the_copy_on_any_panic();
        mem::forget(rc.clone());
        u8::from(MyRc::strong_count(&rc) == 0)
    });
    // SAFETY: one `MyRc` points to the value: this one.
    unsafe { MyRc::set_strong_count_for_tests(&rc, 1) };
    match ended {
        Ended::Aborted => {}
        Ended::Returned(1) => panic!(
            "cloning a MyRc whose count is usize::MAX wrapped the count to \
             0, and the next drop would free the value while clones still \
             use it (mem::forget on clones in a loop gets there in safe \
             code); abort instead (std::process::abort), as std's Rc does"
        ),
        Ended::Returned(_) => panic!(
            "cloning a MyRc whose count is usize::MAX returned without \
             aborting: a count that stops at usize::MAX counts fewer owners \
             than there are, and their drops reach 0 too early; abort \
             (std::process::abort), as std's Rc does"
        ),
        Ended::Panicked => panic!(
            "cloning a MyRc whose count is usize::MAX panicked, whether or \
             not the panic was then caught and turned into an abort (an \
             overflowing `+ 1`? That check exists only in debug builds: a \
             release build wraps the count to 0 silently, and nothing \
             panics or aborts); check the count yourself (checked_add) and \
             abort (std::process::abort), as std's Rc does"
        ),
        Ended::Otherwise(status) => panic!(
            "cloning a MyRc whose count is usize::MAX ended the process \
             with {status}, not with an abort (std::process::abort)"
        ),
    }
}

/// A clone of a `MyRc` whose count is large but below `usize::MAX` just
/// counts one more owner: `isize::MAX` is `MyArc`'s limit, not `MyRc`'s,
/// whose increment cannot race with another thread's.
pub fn rc_counts_up_to_usize_max() {
    let rc = MyRc::new(String::from("tab"));
    drop(rc.clone());
    for count in [isize::MAX as usize, isize::MAX as usize + 1, usize::MAX - 1]
    {
        // SAFETY: the count stays at least the one `MyRc` there is; it is
        // put back to exactly one before that `MyRc` is dropped.
        unsafe { MyRc::set_strong_count_for_tests(&rc, count) };
        let ended = in_a_copy(|| {
            mem::forget(rc.clone());
            u8::from(MyRc::strong_count(&rc) == count + 1)
        });
        // SAFETY: one `MyRc` points to the value: this one.
        unsafe { MyRc::set_strong_count_for_tests(&rc, 1) };
        match ended {
            Ended::Returned(1) => {}
            Ended::Returned(_) => panic!(
                "cloning a MyRc whose count is {count} must make it \
                 {count} + 1"
            ),
            Ended::Aborted => panic!(
                "cloning a MyRc whose count is {count} aborted, yet the \
                 count can still go up by one: a MyRc counts on one thread, \
                 so only a count of usize::MAX must abort (std's Rc does \
                 the same; the isize::MAX limit is for MyArc, whose \
                 threads may all increment before any of them checks)"
            ),
            Ended::Panicked => panic!(
                "cloning a MyRc whose count is {count} panicked; it must \
                 count one more owner"
            ),
            Ended::Otherwise(status) => panic!(
                "cloning a MyRc whose count is {count} ended the process \
                 with {status}; it must count one more owner"
            ),
        }
    }
}

/// A clone of a `MyArc` whose count is already above `isize::MAX` aborts.
/// Checking only at `usize::MAX` is too late: the increment happens before
/// the check, so threads cloning at the same moment wrap the count
/// together.
pub fn arc_aborts_before_the_count_wraps() {
    const PAST_THE_LIMIT: usize = isize::MAX as usize + 1;
    let arc = MyArc::new(String::from("tab"));
    // A plain clone first, so that a `todo!()` in `clone` ends the trial
    // here as TODO rather than in the copy.
    drop(arc.clone());
    // SAFETY: the count stays at least the one `MyArc` there is, no other
    // thread exists, and it is put back to exactly one before that `MyArc`
    // is dropped.
    unsafe { MyArc::set_strong_count_for_tests(&arc, PAST_THE_LIMIT) };
    assert_eq!(
        MyArc::strong_count(&arc),
        PAST_THE_LIMIT,
        "set_strong_count_for_tests must set the count strong_count reads"
    );
    // SAFETY: one `MyArc` points to the value: this one.
    unsafe { MyArc::set_strong_count_for_tests(&arc, 1) };
    // Every count above the limit, not only the first: a count that others
    // pushed further (or `mem::forget` on clones in a loop) must abort too.
    for count in [PAST_THE_LIMIT, PAST_THE_LIMIT + 1, usize::MAX] {
        arc_aborts_at(&arc, count);
    }
}

/// A clone of `arc` whose count is `count`, above `isize::MAX`, aborts.
fn arc_aborts_at(arc: &MyArc<String>, count: usize) {
    // SAFETY: the count stays at least the one `MyArc` there is, no other
    // thread exists, and it is put back to exactly one before that `MyArc`
    // is dropped.
    unsafe { MyArc::set_strong_count_for_tests(arc, count) };
    let ended = in_a_copy(|| {
        mem::forget(arc.clone());
        0
    });
    // SAFETY: one `MyArc` points to the value: this one.
    unsafe { MyArc::set_strong_count_for_tests(arc, 1) };
    match ended {
        Ended::Aborted => {}
        Ended::Returned(_) => panic!(
            "cloning a MyArc whose count is {count}, already above \
             isize::MAX, returned without aborting; abort \
             (std::process::abort) whenever fetch_add returns more than \
             isize::MAX, as std's Arc does: waiting for usize::MAX is too \
             late, since threads that clone at the same moment all add \
             before any of them checks, and wrap the count to 0 together; \
             and aborting only at isize::MAX + 1 exactly lets a count \
             found further up wrap"
        ),
        Ended::Panicked => panic!(
            "cloning a MyArc whose count is above isize::MAX panicked \
             instead of aborting: a panic unwinds only this thread, and can \
             be caught, while the others go on cloning; abort the process \
             (std::process::abort), as std's Arc does"
        ),
        Ended::Otherwise(status) => panic!(
            "cloning a MyArc whose count is above isize::MAX ended the \
             process with {status}, not with an abort (std::process::abort)"
        ),
    }
}

/// A clone of a `MyArc` whose count is large but at most `isize::MAX`
/// just counts one more owner: only a count found above `isize::MAX`
/// aborts, as with std's `Arc`.
pub fn arc_counts_up_to_isize_max() {
    const LIMIT: usize = isize::MAX as usize;
    let arc = MyArc::new(String::from("tab"));
    drop(arc.clone());
    for count in [u32::MAX as usize + 1, LIMIT - 1, LIMIT] {
        // SAFETY: the count stays at least the one `MyArc` there is, no
        // other thread exists, and it is put back to exactly one before
        // that `MyArc` is dropped.
        unsafe { MyArc::set_strong_count_for_tests(&arc, count) };
        let ended = in_a_copy(|| {
            mem::forget(arc.clone());
            u8::from(MyArc::strong_count(&arc) == count + 1)
        });
        // SAFETY: one `MyArc` points to the value: this one.
        unsafe { MyArc::set_strong_count_for_tests(&arc, 1) };
        match ended {
            Ended::Returned(1) => {}
            Ended::Returned(_) => panic!(
                "cloning a MyArc whose count is {count} must make it \
                 {count} + 1"
            ),
            Ended::Aborted => panic!(
                "cloning a MyArc whose count is {count} aborted, yet that \
                 count is not above isize::MAX ({LIMIT}): abort only when \
                 fetch_add returns more than isize::MAX, as std's Arc does \
                 (`old > isize::MAX`, not `>=`, nor a smaller limit)"
            ),
            Ended::Panicked => panic!(
                "cloning a MyArc whose count is {count} panicked; it must \
                 count one more owner"
            ),
            Ended::Otherwise(status) => panic!(
                "cloning a MyArc whose count is {count} ended the process \
                 with {status}; it must count one more owner"
            ),
        }
    }
}

/// A latency that would overflow the total is refused as a whole: `record`
/// panics, both numbers stay as they were, and the `Stats` stays usable
/// on every thread.
pub fn an_overflow_changes_nothing() {
    let stats = Stats::new();
    stats.record(5);
    let recorded = thread::scope(|s| s.spawn(|| stats.record(u64::MAX)).join());
    let Ok(snapshot) = thread::scope(|s| s.spawn(|| stats.snapshot()).join())
    else {
        panic!(
            "after record panicked on another thread, snapshot panicked \
             too (a poisoned lock?): record must leave the Stats usable; \
             let go of the lock before panicking, or recover a poisoned \
             one (PoisonError::into_inner) where nothing can be \
             half-written"
        );
    };
    assert_eq!(
        snapshot,
        (1, 5),
        "after record(u64::MAX) on a total of 5, a snapshot must still be \
         (1, 5): the total cannot hold the new latency, so record must \
         change neither number (work both out with checked_add before \
         writing either)"
    );
    let message = match &recorded {
        Ok(()) => panic!(
            "record(u64::MAX) on a total of 5 returned, yet the total \
             cannot hold it; it must panic and change nothing"
        ),
        Err(payload) => payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or(""),
    };
    assert!(
        !message.contains(DEBUG_ONLY_OVERFLOW),
        "record(u64::MAX) on a total of 5 panicked with \"{message}\": that \
         check exists only in debug builds, and a release build would wrap \
         the total silently and count the request; check it yourself \
         (checked_add) before changing either number"
    );
    let again = thread::scope(|s| {
        s.spawn(|| {
            stats.record(1);
            stats.snapshot()
        })
        .join()
    });
    assert!(
        again.as_ref().is_ok_and(|&now| now == (2, 6)),
        "after the refused latency, record(1) and snapshot must work as \
         before and give (2, 6), not {again:?}"
    );
    // Then on threads that wait for the lock while records overflow.
    super::poison::a_waiting_snapshot_survives_overflows();
}

/// Any total that fits in a `u64` is recorded, up to `u64::MAX` itself:
/// the two numbers may not be squeezed into fewer bits. A latency of 0
/// fits even then.
pub fn totals_reach_u64_max() {
    let stats = Stats::new();
    stats.record(5_000_000_000);
    assert_eq!(
        stats.snapshot(),
        (1, 5_000_000_000),
        "a latency of 5,000,000,000 ms fits in a u64 total (it does not fit \
         in 32 bits: are the two numbers packed into one u64?)"
    );
    stats.record(u64::MAX - 5_000_000_000);
    assert_eq!(
        stats.snapshot(),
        (2, u64::MAX),
        "a total of exactly u64::MAX fits, and must be recorded"
    );
    // A request of 0 ms adds nothing, so it fits even on a full total.
    let recorded = thread::scope(|s| {
        s.spawn(|| {
            stats.record(0);
            stats.snapshot()
        })
        .join()
    });
    assert!(
        recorded.as_ref().is_ok_and(|&now| now == (3, u64::MAX)),
        "record(0) on a total of u64::MAX must count the request and leave \
         the total at u64::MAX, (3, u64::MAX), not {recorded:?}: a latency \
         of 0 never overflows (a wrapped sum is smaller than where it \
         started, `<`; an equal one is a latency of 0)"
    );
}

/// The message of the panic that `+` and `sum` raise where a build checks
/// for overflow, that is in debug builds only.
const DEBUG_ONLY_OVERFLOW: &str = "attempt to add with overflow";

/// `Bank::new` refuses balances whose total does not fit in a `u64`, with
/// a check of its own: the panic of an overflowing `+` or `sum` is not
/// one, since a release build wraps silently instead.
pub fn bank_refuses_a_total_over_u64_max() {
    let fits = Bank::new(&[u64::MAX - 1, 1]);
    assert_eq!(
        fits.balance(0),
        Some(u64::MAX - 1),
        "a total of u64::MAX fits"
    );
    // The second total wraps past u64::MAX and lands above every balance
    // in it, so comparing the wrapped sum with the balances misses it.
    const HALF: u64 = 1 << 63;
    for balances in [[u64::MAX - 1, 1, 1], [HALF, HALF, HALF + 1]] {
        bank_refuses(&balances);
    }
}

/// `Bank::new(balances)`, whose total does not fit in a `u64`, panics
/// with a check of its own.
fn bank_refuses(balances: &[u64]) {
    let refused = thread::scope(|s| s.spawn(|| Bank::new(balances)).join());
    let payload = match refused {
        Ok(_) => panic!(
            "Bank::new(&{balances:?}) made a bank, yet its total does not \
             fit in a u64, so a credit could overflow; panic instead (a \
             total that wrapped can land above every balance: check each \
             addition, checked_add, or add in a u128)"
        ),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(
        !message.contains(DEBUG_ONLY_OVERFLOW),
        "Bank::new panicked with \"{message}\": that check exists only in \
         debug builds, and a release build would wrap the total silently \
         and make the bank; check it yourself (checked_add, or a u128 sum)"
    );
}
