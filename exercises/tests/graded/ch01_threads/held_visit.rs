//! One visit held halfway through `record` while another is recorded: a
//! ticket handed out is never ahead of `total()`, and once both visits are
//! done, their tickets are 1 and 2 and `total()` is 2.
//!
//! The order is forced, not hoped for. First the counter lies wholly on a
//! page of the trial's own that is made read-only, so the first visit is
//! held at its first write (a single count's one `fetch_add` too): a
//! ticket read from the count in one step, before the write that raises
//! it, is then the same as the second visit's. Then the counter lies
//! across the boundary of two pages of the trial's own, at every offset its
//! alignment allows, and one page or the other is made read-only: a load
//! still reads it, but a write faults, and the `SIGSEGV` handler holds the
//! writing thread at that very write until the trial lets it go (in every
//! round: the page is made writable again once it holds a thread, and the
//! held thread goes on only when the trial lets it). A counter whose `record`
//! writes two fields, one on each page, is then held between its two
//! writes. The page is made writable again (the first visit is still held),
//! a second visit is recorded, and its ticket is compared with `total()`
//! read right after: with a single count, updated in one step, the held
//! visit has not counted yet and the second gets ticket 1 (or, when the
//! first took a lock, the second sleeps on it until the first goes on);
//! with tickets from one field and `total()` from another, updated after,
//! the second visit gets ticket 2 while `total()` still says 1. And while
//! the first visit is held, nothing but the second changes the counter, so
//! the second's ticket is one more than `total()` read right before it:
//! with a second count that `record` raises to its ticket (`fetch_max`)
//! after taking the ticket from the first, the held visit has taken ticket
//! 1 while `total()` still says 0, and the second gets ticket 2. Holding a
//! thread before a write is only a delay, one of the orders the threads
//! could have run in, so a correct counter passes whatever is held.

use std::mem;
use std::panic;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags, protect};
use course::grader::task::{self, Tid, Wait, asleep, cpu_ticks};
use exercises::ch01_threads::VisitCounter;

/// CPU time, in the clock ticks of `/proc` (100 a second), after which a
/// thread that neither finishes nor sleeps counts as spinning (on a spin
/// lock the held thread holds, say): a fifth of a second of its own CPU
/// time, which one `record` never comes near. It only ends the forcing
/// (the held thread is let go), never the trial.
const SPIN_TICKS: u64 = 20;

/// Waits until `done()`, or until thread `tid` waits for good (asleep 100
/// times in a row, a millisecond apart, as on a lock a held thread holds),
/// sleeps or waits with a deadline, has ended, or has used `SPIN_TICKS` of
/// CPU time since `since`. One sight of it asleep is not enough: that may
/// be a short wait (for the memory allocator's lock, say) that ends by
/// itself.
pub(super) fn settle(tid: Tid, since: u64, mut done: impl FnMut() -> bool) {
    let mut asleep_in_a_row = 0;
    while !done()
        && asleep_in_a_row < 100
        && task::state(tid).is_some()
        && cpu_ticks(tid).saturating_sub(since) <= SPIN_TICKS
    {
        match task::wait(tid) {
            Some((Wait::UntilADeadline, _)) => return,
            Some(_) if asleep(tid) => {
                asleep_in_a_row += 1;
                thread::sleep(Duration::from_millis(1));
            }
            _ => {
                asleep_in_a_row = 0;
                thread::yield_now();
            }
        }
    }
}

/// What one round saw: the second visit's ticket and `total()` read right
/// after it; `total()` read right before the second visit, its ticket and
/// `total()` read right after it, if all three were read while the first
/// visit was held in the `SIGSEGV` handler; both visits' tickets, and
/// `total()` once both were done.
struct Round {
    second: (u64, u64),
    while_held: Option<(u64, u64, u64)>,
    tickets: [u64; 2],
    total: u64,
}

/// One round: a new counter at `counter`, with the page at `protected`
/// read-only while the first visit starts.
fn one_round(
    hold: &FaultHold,
    counter: *mut VisitCounter,
    protected: usize,
    page: usize,
) -> Round {
    // SAFETY: `counter` is aligned for a `VisitCounter` and lies inside
    // the trial's two pages, both writable now.
    unsafe { ptr::write(counter, VisitCounter::new()) };
    // SAFETY: as above; the counter is used only by reference until it is
    // dropped in place below, after every thread using it has ended.
    let shared: &VisitCounter = unsafe { &*counter };
    hold.hold_again();
    protect(protected, protected + page, ProtFlags::PROT_READ);
    let go = AtomicBool::new(false);
    let first_done = AtomicBool::new(false);
    let round = thread::scope(|s| {
        let (tell, first) = mpsc::channel();
        let (go, first_done) = (&go, &first_done);
        let first_visit = s.spawn(move || {
            tell.send(task::me().tid).unwrap();
            // A spin rather than a sleep: from here on, the only sleep
            // this thread may take is one inside `record`.
            while !go.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            let ticket = shared.record();
            first_done.store(true, Ordering::SeqCst);
            ticket
        });
        let first = first.recv().expect("the first visitor ended at once");
        let since = cpu_ticks(first);
        go.store(true, Ordering::SeqCst);
        settle(first, since, || {
            hold.held() > 0 || first_done.load(Ordering::SeqCst)
        });
        // Whether the first visit is held in the handler: then it stays
        // there, changing nothing, until it is let go.
        let held = hold.held() > 0;
        // The first visit is held (or done): the page may be written again,
        // by the second visit.
        protect(
            protected,
            protected + page,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        );
        let (tell, second) = mpsc::channel();
        let (answer, answers) = mpsc::channel();
        let second_visit = s.spawn(move || {
            tell.send(task::me().tid).unwrap();
            let before = shared.total();
            let ticket = shared.record();
            answer.send((before, ticket, shared.total())).unwrap();
            ticket
        });
        let second = second.recv().expect("the second visitor ended at once");
        let since = cpu_ticks(second);
        let mut seen = None;
        settle(second, since, || {
            seen = seen.or_else(|| answers.try_recv().ok());
            seen.is_some()
        });
        hold.let_go_all();
        // A panic in `record` is passed on, now that no thread is held.
        let [a, b] = [first_visit.join(), second_visit.join()]
            .map(|ticket| ticket.unwrap_or_else(|p| panic::resume_unwind(p)));
        let while_held = seen.filter(|_| held);
        let (_, ticket, after) =
            seen.unwrap_or_else(|| answers.recv().unwrap());
        Round {
            second: (ticket, after),
            while_held,
            tickets: [a, b],
            total: shared.total(),
        }
    });
    // SAFETY: every thread that used the counter has ended; the memory is
    // writable.
    unsafe { ptr::drop_in_place(counter) };
    round
}

/// Runs the rounds: the counter wholly on the first page, read-only; then
/// every offset at which a `VisitCounter` straddles the boundary of the
/// trial's two pages, with the first page read-only, then the second (none,
/// for a counter too small to straddle it).
pub(super) fn ticket_never_ahead_of_total() {
    // Before any page is protected: the stub panics here.
    let _: VisitCounter = VisitCounter::new();
    for (offset, round) in held_rounds(true) {
        if let Some((before, ticket, after)) = round.while_held {
            assert_eq!(
                (ticket, after),
                (before + 1, before + 1),
                "one visit was held halfway through record (at a write to \
                 memory the trial made read-only), changing nothing, while \
                 a second visit was recorded: total() said {before} right \
                 before it, the visit got ticket {ticket}, and total() said \
                 {after} right after it; both should be {}. total() is the \
                 count itself, the number of tickets taken: is the ticket \
                 taken from one field, and total() read from a second one \
                 that record raises to its ticket (fetch_max) in a separate \
                 step after? The held visit had taken its ticket, and \
                 total() did not count it (offset {offset})",
                before + 1
            );
        }
        let (ticket, total) = round.second;
        assert!(
            total >= ticket,
            "one visit was held halfway through record (at a write to \
             memory the trial made read-only) while a second visit was \
             recorded: that visit got ticket {ticket}, and total() read \
             right after it said {total}. A ticket is the number of visits \
             counted so far, this one included, and total() is that count \
             itself: is the ticket taken from one field and the total \
             from another, updated in a separate step? (offset {offset})"
        );
        let mut tickets = round.tickets;
        tickets.sort_unstable();
        assert_eq!(
            (tickets, round.total),
            ([1, 2], 2),
            "one visit was held halfway through record while a second was \
             recorded; once both were done, their tickets (sorted) and \
             total() should be [1, 2] and 2 (offset {offset}): is total() \
             a copy that each record overwrites with its own ticket, and \
             that the held visit set back? Or is the ticket read from the \
             count (a load) in one step, and the count raised (fetch_add) \
             in another, so that two visits read the same count?"
        );
    }
}

/// One visit held at its first write, the counter wholly on a read-only
/// page, while a second visit is recorded: the two tickets differ, 1 and 2.
/// A ticket read from the count in one step, and a count raised in
/// another, gives both visits the same ticket.
pub(super) fn held_visits_get_tickets_1_and_2() {
    // Before any page is protected: the stub panics here.
    let _: VisitCounter = VisitCounter::new();
    for (_, round) in held_rounds(false) {
        let mut tickets = round.tickets;
        tickets.sort_unstable();
        assert_eq!(
            tickets,
            [1, 2],
            "one visit was held at its first write (to memory the trial \
             made read-only) while a second visit was recorded: their \
             tickets should be 1 and 2, each handed out once. Is the ticket \
             read from the count (a load) in one step, and the count \
             written (a store, or a fetch_add) in another, so that two \
             visits read the same count?"
        );
    }
}

/// The rounds of [`one_round`], each with the counter's offset: the
/// counter wholly on the first of two pages of the trial's own, that page
/// read-only; then, if `straddling`, every offset at which the counter
/// straddles the boundary of the two pages, with the first page read-only,
/// then the second (none, for a counter too small to straddle it).
fn held_rounds(straddling: bool) -> Vec<(usize, Round)> {
    let size = mem::size_of::<VisitCounter>();
    let align = mem::align_of::<VisitCounter>();
    let pages = Pages::new(2);
    let page = pages.bytes() / 2;
    if size > page {
        return Vec::new();
    }
    let start = pages.start();
    let hold = FaultHold::new(start, start + 2 * page);
    let mut rounds =
        vec![(0, one_round(&hold, start as *mut VisitCounter, start, page))];
    let offsets = (page + 1 - size..page)
        .filter(|offset| straddling && offset % align == 0);
    for offset in offsets {
        for protected in [start, start + page] {
            let counter = (start + offset) as *mut VisitCounter;
            rounds.push((offset, one_round(&hold, counter, protected, page)));
        }
    }
    // The handler is put back before the pages are unmapped.
    drop(hold);
    drop(pages);
    rounds
}
