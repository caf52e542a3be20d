//! The thread pool survives a job whose panic carries a value whose own
//! `Drop` panics, again and again, and drops every such value.

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam::channel;
use exercises::ch07_pools::ThreadPool;

/// What a job's panic carries in [`survives_a_payload_whose_drop_panics`]:
/// a value whose own `Drop` counts its drop and panics, with another such
/// value of one less depth, until the last, of depth 0, panics with a
/// message.
struct PanicsAsItIsDropped(u32, Arc<AtomicUsize>);

impl Drop for PanicsAsItIsDropped {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        if self.0 > 0 {
            panic::panic_any(PanicsAsItIsDropped(
                self.0 - 1,
                Arc::clone(&self.1),
            ));
        }
        panic!("what a panic carries panics as it is dropped (expected)");
    }
}

/// A pool of one thread runs a job that panics with a
/// [`PanicsAsItIsDropped`] of depth 2, queued with a job in front of it and
/// one behind it: the worker that caught the panic drops what it carries,
/// which panics in turn, with a value whose drop panics too, and so on
/// three deep, and the job behind still runs, on that same thread.
pub(crate) fn survives_a_payload_whose_drop_panics() {
    let pool = ThreadPool::new(1);
    let (open, gate) = channel::bounded::<()>(0);
    let (report, ran) = channel::unbounded();
    let first = report.clone();
    pool.execute(move || {
        let _ = gate.recv(); // Until the other two jobs are queued.
        first.send(thread::current().id()).unwrap();
    });
    let drops = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&drops);
    pool.execute(move || panic::panic_any(PanicsAsItIsDropped(2, counted)));
    pool.execute(move || report.send(thread::current().id()).unwrap());
    drop(open);
    // Until both jobs that report have run, or have been dropped unrun.
    let ran: Vec<thread::ThreadId> = ran.iter().collect();
    drop(pool);
    assert_eq!(
        ran.len(),
        2,
        "a job panicked with a value whose own Drop panics, and the job \
         queued behind it never ran on the pool of one thread: the worker \
         that caught the first panic dropped what it carried, and a panic \
         of that drop ended the worker (drop what a caught panic carries \
         under catch_unwind too, and what that panic carries the same way, \
         again and again: here each drop's panic carries a value whose drop \
         panics, three deep)"
    );
    let drops = drops.load(Ordering::SeqCst);
    assert_eq!(
        drops, 3,
        "a job panicked with a value whose drop panics with another such \
         value, three deep, but {drops} of the three were dropped: drop what \
         a caught panic carries, on the worker (a value forgotten or leaked \
         is never dropped, and its memory is never freed)"
    );
    assert_eq!(
        ran[0], ran[1],
        "a pool of one thread ran the job behind a panicking job on another \
         thread than the job in front of it: keep the worker thread alive \
         through every panic, one in dropping what a panic carries too"
    );
}
