//! `pipeline`'s future dropped at the worst moment for a producer left
//! running: just after the consumer has freed a slot of a full channel,
//! which went at once to the producer's waiting `send`, and before the
//! producer has run.

use std::future::{self, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use exercises::ch08_tokio::pipeline;
use tokio::sync::Notify;

use super::super::paused_runtime;

/// `pipeline`'s future, where another task can reach it to drop it.
type Slot = Arc<Mutex<Option<Pin<Box<dyn Future<Output = Vec<u64>> + Send>>>>>;

/// The item whose `consume` future, as it ends, wakes the task that drops
/// `pipeline`'s future.
const ARM_AT: u64 = 4;

/// `pipeline` over an endless source with a channel of 1 and a `consume`
/// of 1 ms an item, so that the channel is full and the producer waits in
/// `send` with the next item whenever the consumer takes one. As the
/// `consume` future of item 4 ends, it wakes a task of the test's; then
/// the consumer takes item 5 from the channel, and the slot it frees goes
/// to the producer's waiting `send`, which wakes the producer. On tokio's
/// one-thread runtime tasks run in the order they were woken: the test's
/// task runs first, and drops `pipeline`'s future before the producer has
/// run. Then a second of virtual time passes: no item may be taken from
/// the source after the drop. A producer that is not aborted with the
/// future (a detached `tokio::spawn`) finishes that send and takes one
/// more item.
pub(super) fn dropped_as_a_slot_frees() {
    let taken = Arc::new(AtomicUsize::new(0));
    let at_drop = Arc::new(AtomicUsize::new(usize::MAX));
    let armed = Arc::new(Notify::new());
    let slot: Slot = Arc::new(Mutex::new(None));
    let items = {
        let taken = Arc::clone(&taken);
        (0..u64::MAX).inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let armed = Arc::clone(&armed);
        move |item: u64| {
            let armed = Arc::clone(&armed);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if item == ARM_AT {
                    armed.notify_one();
                }
                item
            }
        }
    };
    *slot.lock().expect("a trial thread panicked") =
        Some(Box::pin(pipeline(items, 1, consume)));
    paused_runtime().block_on(async {
        let dropper = tokio::spawn({
            let (taken, at_drop) = (Arc::clone(&taken), Arc::clone(&at_drop));
            let slot = Arc::clone(&slot);
            async move {
                armed.notified().await;
                // Taken out under the lock, dropped after it.
                let run = slot.lock().expect("a trial thread panicked").take();
                drop(run);
                at_drop.store(taken.load(Ordering::SeqCst), Ordering::SeqCst);
            }
        });
        let polled = future::poll_fn(|cx| {
            match slot.lock().expect("a trial thread panicked").as_mut() {
                Some(run) => run.as_mut().poll(cx).map(Some),
                None => Poll::Ready(None),
            }
        });
        // The dropper's end wakes this task: the dropped future cannot.
        tokio::select! {
            biased;
            dropped = dropper => {
                dropped.expect("the task that drops pipeline panicked");
            }
            finished = polled => panic!(
                "pipeline over an endless source returned {finished:?}"
            ),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let (before, after) =
        (at_drop.load(Ordering::SeqCst), taken.load(Ordering::SeqCst));
    assert_eq!(
        after, before,
        "pipeline's future was dropped just after the consumer took an item \
         from a full channel, when {before} items had been taken from the \
         source, and {after} had been taken a second later: its producer \
         went on without it. A producer waiting in send gets the slot the \
         consumer freed, and sends and takes one more item, unless it is \
         aborted with the future: a task behind a plain tokio::spawn is \
         detached when its JoinHandle is dropped; keep each task in a \
         JoinSet, whose drop aborts it"
    );
}
