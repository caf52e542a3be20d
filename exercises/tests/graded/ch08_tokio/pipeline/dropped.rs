//! `pipeline`'s future dropped at the worst moment for a producer left
//! running: just as the consumer frees a slot of a full channel, which
//! goes at once to the producer's waiting `send`.

use std::future::{self, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use exercises::ch08_tokio::pipeline;
use tokio::sync::Notify;

use super::super::paused_runtime;

/// `pipeline`'s future, where `consume` can reach it to drop it.
type Slot = Arc<Mutex<Option<Pin<Box<dyn Future<Output = Vec<u64>> + Send>>>>>;

/// The item whose call of `consume` drops `pipeline`'s future.
const DROP_AT: u64 = 5;

/// `pipeline` over an endless source with a channel of 1 and a `consume`
/// of 1 ms an item, so that the channel is full and the producer waits in
/// `send` with the next item whenever the consumer takes one. The call of
/// `consume` for item 5 drops `pipeline`'s future: the consumer has just
/// taken that item, and the slot it freed has gone to the producer's
/// waiting `send`, which is ready to run. Then a second of virtual time
/// passes: no item may be taken from the source after the drop. A
/// producer that is not aborted with the future (a detached
/// `tokio::spawn`) finishes that send and takes one more.
pub(super) fn dropped_as_a_slot_frees() {
    let taken = Arc::new(AtomicUsize::new(0));
    let at_drop = Arc::new(AtomicUsize::new(usize::MAX));
    let dropped = Arc::new(Notify::new());
    let slot: Slot = Arc::new(Mutex::new(None));
    let items = {
        let taken = Arc::clone(&taken);
        (0..u64::MAX).inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let (taken, at_drop) = (Arc::clone(&taken), Arc::clone(&at_drop));
        let (dropped, slot) = (Arc::clone(&dropped), Arc::clone(&slot));
        move |item: u64| {
            if item == DROP_AT {
                // Taken out under the lock, dropped after it.
                let run = slot.lock().expect("a trial thread panicked").take();
                drop(run);
                at_drop.store(taken.load(Ordering::SeqCst), Ordering::SeqCst);
                dropped.notify_one();
            }
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                item
            }
        }
    };
    *slot.lock().expect("a trial thread panicked") =
        Some(Box::pin(pipeline(items, 1, consume)));
    paused_runtime().block_on(async {
        let polled = future::poll_fn(|cx| {
            match slot.lock().expect("a trial thread panicked").as_mut() {
                Some(run) => run.as_mut().poll(cx).map(Some),
                None => Poll::Ready(None),
            }
        });
        tokio::select! {
            biased;
            () = dropped.notified() => {}
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
        "pipeline's future was dropped just as the consumer took an item \
         from a full channel, when {before} items had been taken from the \
         source, and {after} had been taken a second later: its producer \
         went on without it. A producer waiting in send gets the slot the \
         consumer freed, and sends and takes one more item, unless it is \
         aborted with the future: a task behind a plain tokio::spawn is \
         detached when its JoinHandle is dropped; keep each task in a \
         JoinSet, whose drop aborts it"
    );
}
