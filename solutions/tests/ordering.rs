//! The loom model of chapter 4's page on memory ordering: one thread
//! publishes a message and raises a flag, the other reads the message once
//! it sees the flag. With `Release` and `Acquire` on the flag, every
//! interleaving loom explores sees the message; with `Relaxed`, loom finds
//! one that sees the flag and not the message. The page includes
//! `message_passing` between its anchors. Run by `.ci/loom`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use loom::thread;

// ANCHOR: model
/// A writer stores 42, then raises the flag with `publish`; the reader, if
/// it sees the flag (a load with `observe`), must see 42. Every
/// interleaving, and every value the memory model lets a load return, is
/// tried.
fn message_passing(publish: Ordering, observe: Ordering) {
    loom::model(move || {
        let message = Arc::new(AtomicU64::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let writer = {
            let (message, ready) = (Arc::clone(&message), Arc::clone(&ready));
            thread::spawn(move || {
                message.store(42, Ordering::Relaxed);
                ready.store(true, publish);
            })
        };
        if ready.load(observe) {
            let seen = message.load(Ordering::Relaxed);
            assert_eq!(seen, 42, "the flag was up, the message was not");
        }
        writer.join().unwrap();
    });
}
// ANCHOR_END: model

#[test]
fn release_and_acquire_publish_the_message() {
    message_passing(Ordering::Release, Ordering::Acquire);
}

#[test]
fn a_relaxed_flag_can_come_before_the_message() {
    let found = std::panic::catch_unwind(|| {
        message_passing(Ordering::Relaxed, Ordering::Relaxed);
    });
    assert!(
        found.is_err(),
        "loom found no interleaving in which a relaxed flag is seen before \
         the message it should publish"
    );
}
