//! Two clones of `block_on`'s waker dropped on two threads at once, in the
//! one order that shows a reference count that is not atomic (an `Rc`
//! under a hand-made `RawWaker`, say): both threads read the count before
//! either writes it back, and one decrement is lost. The signal is then
//! never freed, which `returns_the_output`'s count of live bytes shows.
//!
//! The order is forced as chapter 4's `race.rs` forces it, with
//! `course::grader::fault_hold::race`: the pages that hold the count
//! (which `Waker::from(Arc)`, like `Rc`, keeps just before the data the
//! waker points to) are made read-only while the threads drop their
//! clones. A load still reads them, but a write faults, and the `SIGSEGV`
//! handler holds the thread there until both threads are held, asleep or
//! done; then the pages are made writable again and the threads let go,
//! and each redoes the write that faulted. A thread held before a write is
//! only delayed, so a correct waker (whose `fetch_sub`, one locked
//! instruction, faults before it reads anything) counts right whatever is
//! held. A thread that is neither held, asleep nor done once it has used a
//! fifth of a second of its own CPU time (it spins) ends the forcing, not
//! the trial.
//!
//! Each trial runs in a process of its own, so the handler is this
//! process's for the while; while the pages are read-only, the polling
//! thread touches nothing but its stack and static memory, as does the
//! handler.

use std::task::{Poll, Waker};

use course::grader::fault_hold::race;

/// Polled by `block_on`, once: clones the waker twice, and drops the two
/// clones on two threads at once with the count's pages read-only (see the
/// module's doc); then answers `Ready`. By then the waker's count is back
/// to what it was before the clones, if its decrements are atomic.
pub(super) fn drop_two_clones_at_once(waker: &Waker) -> Poll<()> {
    let clones: [Waker; 2] = [waker.clone(), waker.clone()];
    // The count, for `Waker::from(Arc)` as for `Rc`, is in the two words
    // before the data; the data's first word is protected too.
    let data = waker.data() as usize;
    let pages = (data.saturating_sub(16), data + 8);
    // `race` joins each thread, so what a thread keeps for itself is freed
    // before the trial counts live bytes.
    race(pages, clones.map(|clone| move || drop(clone)));
    Poll::Ready(())
}
