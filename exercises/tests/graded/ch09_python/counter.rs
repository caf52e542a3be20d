//! `Counter`: counts, and loses no update, with or without the GIL.

use std::ptr;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags, race};
use course::grader::task;
use exercises::ch09_python::Counter;
use pyo3::prelude::*;

use super::embed::{run_python, start_python};

/// `ch09::counter::counts`
pub fn counts() {
    run_python(
        r#"
from ch09 import Counter
counter = Counter()
assert counter.value == 0, f"Counter() starts at {counter.value}"
assert counter.add(5) == 5 and counter.add(0) == 5 and counter.value == 5
other = Counter(10)
assert other.add(1) == 11 and other.value == 11 and counter.value == 5
assert Counter(start=3).value == 3
assert Counter().add(2**40) == 2**40, "add takes any n up to 2**64 - 1"
top = Counter(2**64 - 1)
assert top.add(2) == 1 and top.value == 1, "adding past 2**64 - 1 wraps around"
# Past 2**63 too, where an i64 would overflow, and past 2**64 again.
for start, n in ((2**63 - 1, 1), (2**63, 2**63), (2**64 - 1, 5), (5, 2**64 - 1)):
    counter = Counter(start)
    try:
        got = counter.add(n)
    except BaseException as error:
        raise AssertionError(
            f"Counter({start}).add({n}) failed ({error!r}): the counter holds "
            "a u64 and adds modulo 2**64 (fetch_add wraps, and so must the "
            "value returned; a plain + or an i64 overflows)") from None
    expected = (start + n) % 2**64
    assert got == expected and counter.value == expected, (
        f"Counter({start}).add({n}) returned {got}, value {counter.value}, not {expected}")
"#,
        |_, _| Ok(()),
    );
}

/// `ch09::counter::python_threads_lose_nothing`
pub fn python_threads_lose_nothing() {
    run_python(
        r#"
import sys, threading
from ch09 import Counter
sys.setswitchinterval(1e-6)
counter = Counter()
seen = [[] for _ in range(8)]
def add_many(mine):
    for _ in range(5000):
        mine.append(counter.add(1))
threads = [threading.Thread(target=add_many, args=(mine,)) for mine in seen]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert counter.value == 40000, f"8 threads added 1 5000 times each: value is {counter.value}"
returned = sorted(value for mine in seen for value in mine)
assert returned == list(range(1, 40001)), "two adds returned the same value"
"#,
        |_, _| Ok(()),
    );
}

/// Threads and additions in [`no_lost_update_without_the_gil`].
const THREADS: usize = 8;
const ADDS: u64 = 50_000;

/// `ch09::counter::no_lost_update_without_the_gil`
pub fn no_lost_update_without_the_gil() {
    start_python();
    let counter: Py<Counter> =
        Python::attach(|py| Py::new(py, Counter::new(0)))
            .expect("cannot make a Counter");
    let start = Barrier::new(THREADS);
    let mut returned: Vec<u64> = Python::attach(|py| {
        py.detach(|| {
            thread::scope(|scope| {
                let workers: Vec<_> = (0..THREADS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            (0..ADDS)
                                .map(|_| counter.get().add(1))
                                .collect::<Vec<u64>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|worker| {
                        worker.join().expect("a thread that adds panicked")
                    })
                    .collect()
            })
        })
    });
    let total = THREADS as u64 * ADDS;
    assert_eq!(
        counter.get().value(),
        total,
        "{THREADS} threads added 1 {ADDS} times each"
    );
    returned.sort_unstable();
    returned.dedup();
    assert_eq!(
        returned.len() as u64,
        total,
        "two adds returned the same value"
    );
}

/// Racing adds on the counter placed on some pages: what each got.
type Adds = dyn Fn(&Pages) -> Vec<u64>;

/// What each of [`both_read_first`]'s threads got back.
static RETURNED: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// `ch09::counter::racing_adds_are_counted`
///
/// Two threads add 1 to one counter at the same moment, in the orders that
/// lose an update, or return one value twice, when adding is more than one
/// step: both read the value before either writes it; and one adds whole
/// between the other's first, second, third or fourth write (a lock taken,
/// the value stored, the lock let go, a lock taken again to read) and the
/// end of its `add`; and, with three threads, a second adds whole after
/// the first's read and a third after the first's next write (see
/// [`two_between`]). The orders are forced, not hoped for: the counter
/// lies on pages of the trial's own, protected so that a write holds its
/// thread (see `course::grader::fault_hold`). Holding a thread is only a
/// delay, so a correct `add` counts every add and returns each thread a
/// value of its own, from 1 up. Each order runs twice: on a counter at 0,
/// and on one at `2**64 - 1`, whose adds wrap past the top.
pub fn racing_adds_are_counted() {
    // A `todo!()` ends the trial here as TODO, not on a racing thread.
    let _ = Counter::new(0).add(1);
    let orders: [(&str, &Adds); 6] = [
        (
            "each reading the value before either wrote it",
            &both_read_first,
        ),
        ("one adding whole after the other's first write", &|p| {
            one_between(p, 1)
        }),
        ("one adding whole after the other's second write", &|p| {
            one_between(p, 2)
        }),
        ("one adding whole after the other's third write", &|p| {
            one_between(p, 3)
        }),
        ("one adding whole after the other's fourth write", &|p| {
            one_between(p, 4)
        }),
        (
            "a second adding whole after the first's read and a third \
             after the first's next write",
            &two_between,
        ),
    ];
    // From 0, and from 2**64 - 1, where each add wraps past the top.
    for (start, (order, adds)) in [0, u64::MAX]
        .into_iter()
        .flat_map(|start| orders.map(|o| (start, o)))
    {
        let pages = Pages::new(1);
        let place = pages.start() as *mut Counter;
        // SAFETY: the pages are fresh, writable, page-aligned and a page
        // long, which is room and alignment enough for a `Counter` (a few
        // words); nothing else uses them.
        // `as _`: a solution whose `new` takes another integer type still
        // compiles, and its mistake is then the `counts` trial's to show.
        unsafe { ptr::write(place, Counter::new(start as _)) };
        let mut returned = adds(&pages);
        // SAFETY: written above; the threads that used it are joined.
        let value = unsafe { &*place }.value();
        // SAFETY: dropped once, here, before its pages are unmapped.
        unsafe { ptr::drop_in_place(place) };
        returned.sort_unstable();
        let threads = returned.len() as u64;
        let mut expected: Vec<u64> =
            (1..=threads).map(|k| start.wrapping_add(k)).collect();
        expected.sort_unstable();
        let last = start.wrapping_add(threads);
        assert_eq!(
            value, last,
            "{threads} threads added 1 at the same moment to a counter at \
             {start}, {order}, and the counter came out {value}, not {last}: \
             an update was lost. Reading and then writing is two steps \
             another thread can come between (and so is a compare-exchange \
             tried once, or a wrap past 2**64 - 1 handled apart, then a plain \
             store); fetch_add, which wraps, is one, and so is a lock held \
             across both"
        );
        assert_eq!(
            returned, expected,
            "{threads} threads added 1 at the same moment to a counter at \
             {start}, {order}, and got {returned:?} back: each add returns the \
             value just after its own addition (what fetch_add returned, plus \
             n, wrapping), so each gets a value of its own"
        );
    }
}

/// Both threads read the counter at `pages` before either writes it.
fn both_read_first(pages: &Pages) -> Vec<u64> {
    // SAFETY: `racing_adds_are_counted` placed a counter there.
    let counter = unsafe { &*(pages.start() as *const Counter) };
    race(
        (pages.start(), pages.start() + pages.bytes()),
        [0, 1].map(|i| {
            move || RETURNED[i].store(counter.add(1), Ordering::SeqCst)
        }),
    );
    RETURNED.iter().map(|r| r.load(Ordering::SeqCst)).collect()
}

/// One thread is held right after its `writes`-th write to the counter at
/// `pages` (a lock taken, a value stored, a lock let go, ...); the other
/// adds meanwhile, until it returns, sleeps (waiting for a lock the first
/// holds) or spins; then the first goes on. An `add` that makes fewer
/// writes just runs. Only on x86-64, where a write can be single-stepped;
/// elsewhere the adds just run.
fn one_between(pages: &Pages, writes: usize) -> Vec<u64> {
    // SAFETY: `racing_adds_are_counted` placed a counter there.
    let counter = unsafe { &*(pages.start() as *const Counter) };
    let hold = FaultHold::after_the_first_write(
        pages.start(),
        pages.start() + pages.bytes(),
    );
    let first_returned = AtomicBool::new(false);
    let (first_tid, second_tid) = (AtomicI32::new(0), AtomicI32::new(0));
    let second_returned = AtomicBool::new(false);
    hold.protect(ProtFlags::PROT_READ);
    let returned = thread::scope(|s| {
        let first = s.spawn(|| {
            first_tid.store(task::me().tid, Ordering::SeqCst);
            let got = counter.add(1);
            first_returned.store(true, Ordering::SeqCst);
            got
        });
        for write in 1..=writes {
            // Until the first thread is held after this write, or returned.
            while hold.holds() < write && !first_returned.load(Ordering::SeqCst)
            {
                thread::yield_now();
            }
            if write < writes && !first_returned.load(Ordering::SeqCst) {
                // Held after an earlier write: on to the next one.
                hold.protect(ProtFlags::PROT_READ);
                hold.step_again();
                hold.let_go(first_tid.load(Ordering::SeqCst));
            }
        }
        let second = s.spawn(|| {
            second_tid.store(task::me().tid, Ordering::SeqCst);
            let got = counter.add(1);
            second_returned.store(true, Ordering::SeqCst);
            got
        });
        while second_tid.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let tid = second_tid.load(Ordering::SeqCst);
        // No deadline: a second thread that spins is told by its CPU time.
        task::watch_until(tid, || {
            second_returned.load(Ordering::SeqCst) || task::asleep(tid)
        });
        hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
        hold.let_go_all();
        [first, second]
            .map(|adder| adder.join().expect("a thread that adds panicked"))
    });
    drop(hold);
    returned.to_vec()
}

/// The first thread is held right after its first access to the counter
/// at `pages` (its read, or its whole `add` when that is one write); a
/// second adds meanwhile, until it returns or sleeps (waiting for a lock
/// the first holds); the first is let go and held right after its next
/// write; a third adds meanwhile; then all go on. An `add` that reads,
/// tries one compare-exchange, and when that fails stores the value it saw
/// plus `n` writes over the third's addition. Only on x86-64, where an
/// access can be single-stepped; elsewhere the adds just run.
fn two_between(pages: &Pages) -> Vec<u64> {
    // SAFETY: `racing_adds_are_counted` placed a counter there.
    let counter = unsafe { &*(pages.start() as *const Counter) };
    let hold = FaultHold::after_the_first_write(
        pages.start(),
        pages.start() + pages.bytes(),
    );
    let returned: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];
    let tids: [AtomicI32; 3] = [const { AtomicI32::new(0) }; 3];
    let (returned, tids) = (&returned, &tids);
    let add = |i: usize| {
        move || {
            // Set just before the add: a thread asleep after this waits for
            // a lock, not for its own start.
            tids[i].store(task::me().tid, Ordering::SeqCst);
            let got = counter.add(1);
            returned[i].store(true, Ordering::SeqCst);
            got
        }
    };
    let tid = |i: usize| loop {
        match tids[i].load(Ordering::SeqCst) {
            0 => thread::yield_now(),
            tid => break tid,
        }
    };
    // Until thread `i` has returned, or sleeps (for a lock).
    let adds_whole = |i: usize| {
        let tid = tid(i);
        task::watch_until(tid, || {
            returned[i].load(Ordering::SeqCst) || task::asleep(tid)
        });
    };
    // Reads fault too, so the first's first access is held after it.
    hold.protect(ProtFlags::PROT_NONE);
    let got = thread::scope(|s| {
        let first = s.spawn(add(0));
        while hold.holds() < 1 && !returned[0].load(Ordering::SeqCst) {
            thread::yield_now();
        }
        hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
        let second = s.spawn(add(1));
        adds_whole(1);
        if !returned[0].load(Ordering::SeqCst) {
            // The first's next write is held right after it.
            hold.protect(ProtFlags::PROT_READ);
            hold.step_again();
            hold.let_go(tid(0));
            // Not "asleep": a held thread sleeps in the hold until it
            // wakes to being let go, and nothing else the first could wait
            // for is held by another thread now.
            task::watch_until(tid(0), || {
                hold.holds() >= 2 || returned[0].load(Ordering::SeqCst)
            });
            hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
        }
        // The pages are open again on either path: the third just adds.
        let third = s.spawn(add(2));
        adds_whole(2);
        hold.let_go_all();
        [first, second, third]
            .map(|adder| adder.join().expect("a thread that adds panicked"))
    });
    drop(hold);
    got.to_vec()
}
