//! `pipeline` with a slow consumer: its producer and consumer are tasks
//! of their own, which run while the caller's task does something else,
//! and the producer fills a channel of the capacity given, however large.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use exercises::ch08_tokio::pipeline;
use tokio::sync::Semaphore;

use super::super::paused_runtime;
use super::settle;

/// `pipeline(0..5, 2, ..)`, with a `consume` of 1 ms an item, is polled
/// once and then left unpolled for a second of virtual time, while the
/// caller's task sleeps: two tasks of its own take and consume all five
/// items meanwhile. A consumer loop (or a producer loop) that runs in
/// `pipeline`'s own future, on the caller's task, runs only while that
/// future is polled, and has done nothing.
pub(super) fn both_run_while_it_is_not_polled() {
    const COUNT: usize = 5;
    let taken = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let items = {
        let taken = Arc::clone(&taken);
        (0..COUNT as u64).inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let consumed = Arc::clone(&consumed);
        move |item: u64| {
            let consumed = Arc::clone(&consumed);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                consumed.fetch_add(1, Ordering::SeqCst);
                item + 1000
            }
        }
    };
    let (meanwhile, results) = paused_runtime().block_on(async {
        let mut run = pin!(pipeline(items, 2, consume));
        // One poll, which starts the tasks; then none for a second.
        let first =
            std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await;
        assert!(
            first.is_pending(),
            "pipeline returned at its first poll, before a consume of 1 ms \
             could finish"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let meanwhile = (
            taken.load(Ordering::SeqCst),
            consumed.load(Ordering::SeqCst),
        );
        (meanwhile, run.await)
    });
    assert_eq!(
        meanwhile,
        (COUNT, COUNT),
        "(taken, consumed) out of {COUNT} items, a second after pipeline's \
         first poll, with the caller busy elsewhere (not polling pipeline): \
         the producer and the consumer must be tasks of their own (spawned \
         in a JoinSet), which run whether or not the caller polls \
         pipeline's future; a loop in pipeline's own future runs only while \
         it is polled"
    );
    let expected: Vec<u64> =
        (0..COUNT as u64).map(|item| item + 1000).collect();
    assert_eq!(results, expected, "every item once, in order");
}

/// A channel of 2^20 + 2^18 items (1,310,720), more than a cap of the
/// capacity at a million or at 2^20 lets through, and a consumer held up
/// at its first item until everything waits: the producer has filled the
/// channel, all 1,310,720 items, and holds one more. Then the consumer
/// goes on, and every item comes back, in order.
pub(super) fn runs_ahead_with_a_large_capacity() {
    const CAPACITY: usize = (1 << 20) + (1 << 18);
    const COUNT: u64 = CAPACITY as u64 + 10;
    let taken = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let items = {
        let taken = Arc::clone(&taken);
        (0..COUNT).inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let (started, gate) = (Arc::clone(&started), Arc::clone(&gate));
        move |item: u64| {
            started.fetch_add(1, Ordering::SeqCst);
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire()
                    .await
                    .expect("the gate is never closed")
                    .forget();
                item
            }
        }
    };
    let (results, ahead) = paused_runtime().block_on(async {
        let opener = async {
            settle().await;
            let ahead =
                taken.load(Ordering::SeqCst) - started.load(Ordering::SeqCst);
            gate.add_permits(COUNT as usize);
            ahead
        };
        tokio::join!(pipeline(items, CAPACITY, consume), opener)
    });
    assert_eq!(
        ahead,
        CAPACITY + 1,
        "with a channel of {CAPACITY} and a consumer held up, the producer \
         was {ahead} items ahead of it when both waited, not {CAPACITY} + \
         1: make the channel of the capacity given, however large \
         (mpsc::channel(capacity), not capped at a length of your own)"
    );
    assert!(
        results.iter().copied().eq(0..COUNT),
        "{COUNT} items through a channel of {CAPACITY}: every item once, \
         in order"
    );
}
