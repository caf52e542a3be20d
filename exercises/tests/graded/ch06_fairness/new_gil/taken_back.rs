//! The thread in `check` takes the GIL back: that taking ends a drop
//! request too, its own included.

use std::thread;
use std::time::Duration;

use exercises::ch06_fairness::NewGil;

/// A waiter asks the holder, which hands the GIL over in `check`. While it
/// waits there to take the GIL back, its own interval runs out and it asks
/// the new holder, which then lets go by dropping its guard (that leaves
/// the request for the next taking to end). The thread in `check` takes the
/// GIL back, and its taking ends the request it made itself: once `check`
/// has returned, with nobody else waiting, `drop_requested()` is false.
pub(super) fn taking_it_back_in_check_ends_the_request() {
    let gil = NewGil::new(Duration::from_millis(1));
    let mut held = gil.acquire();
    thread::scope(|s| {
        let gil = &gil;
        s.spawn(move || {
            let _held = gil.acquire();
            // Holds the GIL until the thread in `check` has asked for it.
            while !gil.drop_requested() {
                thread::yield_now();
            }
        });
        while !gil.drop_requested() {
            thread::yield_now();
        }
        held.check();
        let asked = gil.drop_requested();
        drop(held);
        assert!(
            !asked,
            "a thread handed the GIL over in check(), asked for it back \
             while it waited there, and took it back: yet once check() \
             returned, with nobody else waiting, drop_requested() was still \
             true, and its next check() would hand the GIL over though \
             nobody asked. The thread in check() takes the GIL back as \
             acquire takes it, ending the request (share acquire's code)"
        );
    });
}
