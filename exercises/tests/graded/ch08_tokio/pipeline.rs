//! The pipeline, on the paused clock: every item once and in order, the
//! producer waits when the channel is full, and runs ahead of a slow
//! consumer until it is; dropping `pipeline` stops both tasks, and so
//! does a panic in `consume`.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use course::grader::alloc;
use exercises::ch08_tokio::pipeline;
use tokio::sync::Semaphore;

use super::paused_runtime;

mod dropped;
mod payloads;
mod slow_consumer;

/// Waits until every other task waits too. On the paused clock a sleep
/// ends only when nothing else can run: by then the tasks under test have
/// gone as far as they can.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Counts a `consume` future as under way until it is dropped, finished
/// or not.
struct UnderWay(Arc<AtomicUsize>);

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A future that answers `Err`, with the payload, when a poll of the one
/// it wraps panics, and `Ok` with its output otherwise.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// What a gated run of `pipeline` saw.
#[derive(Debug)]
struct Observed {
    results: Vec<u64>,
    /// The most items taken from the source but not yet given to
    /// `consume`, at any moment the producer took one.
    most_ahead: usize,
    /// The fewest such items whenever both tasks were stuck (the consumer
    /// waiting for its gate) with items left in the source.
    least_ahead_when_stuck: usize,
}

/// How long [`gated_pipeline`] holds the consumer up at each item: a
/// thousand years of virtual time, longer than any timeout a producer
/// might give up after, a century's too (on the paused clock it costs
/// nothing), in [`HELD_UP_SLEEPS`] sleeps of this length each (tokio cuts a
/// single sleep short at about 30 years).
const HELD_UP: Duration = Duration::from_secs(25 * 365 * 24 * 60 * 60);

/// How many sleeps of [`HELD_UP`] hold the consumer up a thousand years.
const HELD_UP_SLEEPS: usize = 40;

/// Runs `pipeline` on the paused clock over `count` items, with a
/// consumer that waits for a permit before each item; the test holds it
/// up for [`HELD_UP`], then gives one permit, and again, item after item.
fn gated_pipeline(count: u64, capacity: usize) -> Observed {
    let taken = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let most_ahead = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let items = {
        let (taken, started) = (Arc::clone(&taken), Arc::clone(&started));
        let most_ahead = Arc::clone(&most_ahead);
        (0..count).inspect(move |_| {
            let taken = taken.fetch_add(1, Ordering::SeqCst) + 1;
            let ahead = taken - started.load(Ordering::SeqCst);
            most_ahead.fetch_max(ahead, Ordering::SeqCst);
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
                item + 1000
            }
        }
    };
    let mut least_ahead_when_stuck = usize::MAX;
    let results = paused_runtime().block_on(async {
        let opener = async {
            for _ in 0..count {
                // Also lets the tasks settle: a sleep on the paused clock
                // ends only when nothing else can run.
                for _ in 0..HELD_UP_SLEEPS {
                    tokio::time::sleep(HELD_UP).await;
                }
                let taken = taken.load(Ordering::SeqCst);
                if taken < count as usize {
                    let ahead = taken - started.load(Ordering::SeqCst);
                    least_ahead_when_stuck = least_ahead_when_stuck.min(ahead);
                }
                gate.add_permits(1);
            }
        };
        tokio::join!(pipeline(items, capacity, consume), opener).0
    });
    Observed {
        results,
        most_ahead: most_ahead.load(Ordering::SeqCst),
        least_ahead_when_stuck,
    }
}

/// A consumer slower than the producer: when the source runs dry the
/// channel is still full, and those items are consumed too, each once,
/// in order; then `pipeline` returns. Also for a source that cannot tell
/// its length in advance (a `filter`, whose `size_hint` says "0 or more").
pub(super) fn keeps_every_item_in_order() {
    const ITEMS: u64 = 40;
    for capacity in [4, 1] {
        // How many `consume` futures are under way, from the call of
        // `consume` until the future has finished (or is dropped), and the
        // most at any moment.
        let under_way = Arc::new(AtomicUsize::new(0));
        let most_under_way = Arc::new(AtomicUsize::new(0));
        let consume = {
            let (under_way, most) =
                (Arc::clone(&under_way), Arc::clone(&most_under_way));
            move |item: u64| {
                let now = under_way.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let guard = UnderWay(Arc::clone(&under_way));
                async move {
                    let _guard = guard;
                    // The consumer is the slow one.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    item * 10
                }
            }
        };
        let results =
            paused_runtime().block_on(pipeline(0..ITEMS, capacity, consume));
        let expected: Vec<u64> = (0..ITEMS).map(|item| item * 10).collect();
        assert_eq!(
            results, expected,
            "{ITEMS} items through a channel of {capacity}: consume each \
             once, in order, and when the producer is done, drain what is \
             left in the channel (recv() until it returns None) before \
             the consumer ends"
        );
        let most = most_under_way.load(Ordering::SeqCst);
        assert_eq!(
            most, 1,
            "{ITEMS} items through a channel of {capacity}: {most} consume \
             futures were under way at once. The consumer consumes one item \
             at a time, in order: await each consume(item) to its end \
             before you call consume for the next item"
        );
    }
    let kept = |item: &u64| !item.is_multiple_of(3);
    let filtered = (0..ITEMS).filter(kept);
    let results =
        paused_runtime()
            .block_on(pipeline(filtered, 2, |item| async move { item * 10 }));
    let expected: Vec<u64> =
        (0..ITEMS).filter(kept).map(|item| item * 10).collect();
    assert_eq!(
        results, expected,
        "the items of (0..{ITEMS}).filter(..) through a channel of 2: a \
         filter's size_hint() is (0, Some({ITEMS})), a lower bound and no \
         count, so do not stop after size_hint().0 results; the consumer \
         ends when recv() returns None, once every Sender is gone"
    );
    let none =
        paused_runtime()
            .block_on(pipeline(Vec::new(), 2, |item| async move { item }));
    assert!(none.is_empty(), "no items, no results");
    // The largest capacity a channel takes (`Semaphore::MAX_PERMITS`):
    // the channel reserves nothing for it, and nor may the consumer (room
    // for that many results is more bytes than a `Vec` can hold, and room
    // for a part of them, a clamp of the capacity, is memory reserved for
    // items that may never come). The runtime has one thread, this one,
    // so the tasks' allocations are this thread's: for each size from 256
    // bytes to 32 KiB, 3 items through a channel of that capacity make an
    // allocation of that size or more only if 3 items through a channel
    // of 3 do too (the runtime's own allocations, its tasks and the
    // channel's blocks, are the same for both; they reach 512 bytes, so
    // the sizes that tell are those from 1 KiB up). And the results come
    // back in no more room than those of 3 items through a channel of 3:
    // a reservation of a few places from the capacity shows there.
    let largest = tokio::sync::Semaphore::MAX_PERMITS;
    let runtime = paused_runtime();
    // The runtime's first pipeline, not watched: what it sets up once (its
    // thread's context) is not the pipeline's.
    runtime.block_on(pipeline(0..3, 3, |item| async move { item * 10 }));
    let allocates = |capacity: usize, least: usize| {
        let seen = AtomicBool::new(false);
        let hook = || seen.store(true, Ordering::SeqCst);
        let results = alloc::before_this_thread_allocates(least, &hook, || {
            runtime.block_on(pipeline(0..3, capacity, |item| async move {
                item * 10
            }))
        });
        assert_eq!(
            results,
            [0, 10, 20],
            "3 items through a channel of {capacity}: reserve nothing from \
             the capacity; the results grow as they come"
        );
        (seen.load(Ordering::SeqCst), results)
    };
    for least in (8..=15).map(|power| 1usize << power) {
        let (with_largest, results) = allocates(largest, least);
        let (with_three, three) = allocates(3, least);
        assert!(
            with_three || !with_largest,
            "3 items through a channel of {largest} (Semaphore::MAX_PERMITS, \
             the largest a tokio channel takes): pipeline allocated {least} \
             bytes or more at once, and nothing that large with a channel of \
             3. Reserve nothing from the capacity, not even a part of it \
             (Vec::with_capacity(capacity.min(..)), shrunk at the end or \
             not): a channel that may hold that many items need not ever \
             get them. Start with Vec::new() and let the results grow as \
             they come"
        );
        // Nor room for fewer results, below the sizes watched: the results
        // come back in the room they grew to, the same few places whatever
        // the capacity.
        assert!(
            results.capacity() <= three.capacity(),
            "3 items through a channel of {largest} \
             (Semaphore::MAX_PERMITS) came back in room for {} results, \
             and through a channel of 3 in room for {}: pipeline reserved \
             room from the capacity, or a part of it \
             (Vec::with_capacity(capacity.min(..)), even a small one). \
             Start with Vec::new() and let the results grow as they come",
            results.capacity(),
            three.capacity()
        );
    }
    // Items in no order, some repeated, and the largest `u64` in the
    // middle: any value may be an item, and each is a result of its own.
    let items = vec![7, 3, 7, u64::MAX, 0, u64::MAX, 5, 3];
    let results = paused_runtime().block_on(pipeline(
        items.clone(),
        2,
        |item| async move { u64::MAX - item },
    ));
    let expected: Vec<u64> = items.iter().map(|item| u64::MAX - item).collect();
    assert_eq!(
        results, expected,
        "the items {items:?} through a channel of 2, each consumed once in \
         the order given: results come in the order of the items (not \
         sorted, nor one per distinct value), and no value ends the stream \
         (u64::MAX is an item like any other: the stream ends when the \
         producer drops its Sender)"
    );
}

/// With a channel of 3 and a consumer that is held up a thousand years of
/// virtual time at each item, the producer never takes more than 3 + 1 items
/// ahead of the consumer (3 in the channel, 1 in hand waiting for room),
/// and never gives up waiting: every item comes back.
pub(super) fn producer_waits_when_the_channel_is_full() {
    const CAPACITY: usize = 3;
    let observed = gated_pipeline(12, CAPACITY);
    let most = observed.most_ahead;
    assert!(
        most <= CAPACITY + 1,
        "the producer took {most} items ahead of the consumer, with a \
         channel of {CAPACITY}: use tokio::sync::mpsc::channel(capacity), \
         await each send, and take items from the iterator one at a time \
         (collecting them first takes them all at once)"
    );
    let expected: Vec<u64> = (0..12).map(|item| item + 1000).collect();
    assert_eq!(
        observed.results, expected,
        "every item once, in order, with the consumer held up a thousand \
         years of virtual time at each: the producer waits for room however \
         long it takes (send, not send_timeout; no timeout of its own, not \
         even one of a century)"
    );
}

/// With a channel of 3 and a consumer that is held up, the producer
/// fills the channel and takes one more item to hold: whenever both wait,
/// it is 3 + 1 items ahead. So it is with a channel of 1,310,720: the
/// capacity given, however large, is the channel's. And the producer and
/// the consumer are tasks of their own, which run on while the caller
/// does not poll `pipeline`.
pub(super) fn producer_runs_ahead_of_a_slow_consumer() {
    slow_consumer::both_run_while_it_is_not_polled();
    slow_consumer::runs_ahead_with_a_large_capacity();
    const CAPACITY: usize = 3;
    let observed = gated_pipeline(12, CAPACITY);
    let least = observed.least_ahead_when_stuck;
    assert!(
        least > CAPACITY,
        "while the consumer was held up, the producer was only {least} \
         items ahead, with a channel of {CAPACITY}: run the producer and \
         the consumer as two tasks, through a channel of the capacity \
         given (mpsc::channel(capacity), which holds {CAPACITY} items, not \
         one less), so the producer keeps going while the consumer works, \
         until the channel is full and it waits with the next item in hand"
    );
    let expected: Vec<u64> = (0..12).map(|item| item + 1000).collect();
    assert_eq!(observed.results, expected, "every item once, in order");
}

/// `pipeline` over an endless source (`0..u64::MAX`, whose `size_hint`
/// is exact), with a consumer that takes 1 ms an item, is dropped after 10 ms (by a `timeout`); then a whole second of
/// virtual time passes, in which tasks left running would take and
/// consume a thousand more items. None may be taken or consumed. So it is
/// when the future is dropped just as the consumer frees a slot of a full
/// channel, which the producer's waiting send gets.
pub(super) fn dropping_it_stops_both_tasks() {
    let taken = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let items = {
        let taken = Arc::clone(&taken);
        // Endless in practice, with an exact `size_hint` of u64::MAX
        // items: no memory can hold their results in advance.
        (0..u64::MAX).inspect(move |_| {
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
                item
            }
        }
    };
    let counts = || {
        (
            taken.load(Ordering::SeqCst),
            consumed.load(Ordering::SeqCst),
        )
    };
    paused_runtime().block_on(async {
        let run = pipeline(items, 2, consume);
        let run = CatchUnwind(Box::pin(run));
        let cut = tokio::time::timeout(Duration::from_millis(10), run).await;
        if let Ok(Err(payload)) = &cut {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!(
                "pipeline over 0..u64::MAX panicked ({message:?}): its \
                 size_hint is exact, and u64::MAX results are more than any \
                 memory holds; stream the items, and do not reserve room \
                 for their results from size_hint (let the Vec grow)"
            );
        }
        assert!(cut.is_err(), "pipeline of an endless source returned");
        // Read with no `.await` since the drop: tasks that are aborted
        // have had no chance to run.
        let at_drop = counts();
        assert!(
            at_drop.1 > 0,
            "pipeline consumed nothing in 10 ms, at 1 ms an item"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let later = counts();
        assert_eq!(
            later, at_drop,
            "(taken, consumed) when pipeline's future was dropped, and a \
             second later: its tasks went on without it. A dropped \
             JoinHandle detaches its task; keep each task in a JoinSet, \
             whose drop aborts it"
        );
    });
    dropped::dropped_as_a_slot_frees();
}

/// `consume` panics at the fourth item, with a channel of 2 and a source
/// of ten thousand items: `pipeline` panics with that payload, and the
/// producer stops once the consumer is gone. It may have taken up to 2 + 1
/// items beyond those given to `consume` (2 in the channel, 1 in hand),
/// but no more: a producer that goes on past a closed channel takes item
/// after item that nobody will consume, and with an endless source, never
/// stops. Then a source that panics: `pipeline` panics with its payload,
/// and does not return the results of the items before.
pub(super) fn a_consume_panic_stops_the_producer() {
    const CAPACITY: usize = 2;
    let taken = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let items = {
        let taken = Arc::clone(&taken);
        (0..10_000).inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let started = Arc::clone(&started);
        move |item: u64| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(item != 3, "consume failed: disk full");
                item
            }
        }
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            paused_runtime().block_on(pipeline(items, CAPACITY, consume))
        }));
    let payload = match outcome {
        Ok(results) => panic!(
            "consume panicked at item 3, yet pipeline returned {results:?}: \
             a panic in the consumer's task must not be skipped \
             (resume_unwind(error.into_panic()))"
        ),
        Err(payload) => payload,
    };
    // `assert!` with a message and no arguments panics with a
    // `&'static str`, which must come back as it is, its type included.
    let kept = payload.downcast_ref::<&'static str>().copied();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| kept.map(str::to_string))
        .unwrap_or_default();
    assert!(
        message == "consume failed: disk full",
        "pipeline panicked with {message:?}, not with consume's own \
         payload, \"consume failed: disk full\", as it is \
         (resume_unwind(error.into_panic()) passes it on)"
    );
    assert!(
        kept.is_some(),
        "pipeline panicked with consume's message, but as a String: \
         consume panicked with a &'static str, and the payload must come \
         back as it is, its type included (a new panic!(\"{{message}}\") \
         makes a new payload; resume_unwind(error.into_panic()) passes \
         consume's on)"
    );
    let (taken, started) =
        (taken.load(Ordering::SeqCst), started.load(Ordering::SeqCst));
    assert!(
        taken <= started + CAPACITY + 1,
        "consume panicked at the last of the {started} items given to it, \
         and the consumer was gone; yet the producer took {taken} items \
         from the source, with a channel of {CAPACITY}: it went on after \
         the channel closed. An error from send (or reserve) means nobody will \
         receive again: stop the producer then, do not skip the item"
    );
    // The source itself panics, in the producer, at its sixth item: the
    // results of the five before it are no answer. `pipeline` panics with
    // the source's own payload.
    let source = (0..10_u64).inspect(|&item| {
        assert!(item != 5, "the source failed: no such file");
    });
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            paused_runtime().block_on(pipeline(
                source,
                CAPACITY,
                |item| async move { item },
            ))
        }));
    let payload = match outcome {
        Ok(results) => panic!(
            "the items' iterator panicked at its sixth item, in the \
             producer, yet pipeline returned {results:?}: a panic in the \
             producer's task must not be skipped either (join it, and \
             resume_unwind(error.into_panic()))"
        ),
        Err(payload) => payload,
    };
    let kept = payload.downcast_ref::<&'static str>().copied();
    assert!(
        kept == Some("the source failed: no such file"),
        "the items' iterator panicked with the &'static str \"the source \
         failed: no such file\", and pipeline panicked with another \
         payload: pass the producer's on as it is \
         (resume_unwind(error.into_panic()))"
    );
    // Payloads of other types, and a producer that stops quietly.
    payloads::passes_any_payload_on();
    payloads::stops_without_a_panic();
}

/// A capacity of 0 panics, as `tokio::sync::mpsc::channel(0)` does,
/// before any item is taken or consumed; with no items at all too. So
/// does one above `Semaphore::MAX_PERMITS`, the largest a channel takes:
/// `MAX_PERMITS + 1` and `usize::MAX`.
pub(super) fn panics_on_a_capacity_the_channel_refuses() {
    let touched = Arc::new(AtomicUsize::new(0));
    let items = {
        let touched = Arc::clone(&touched);
        (0..4).inspect(move |_| {
            touched.fetch_add(1, Ordering::SeqCst);
        })
    };
    let consume = {
        let touched = Arc::clone(&touched);
        move |item: u64| {
            touched.fetch_add(1, Ordering::SeqCst);
            async move { item }
        }
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            paused_runtime().block_on(pipeline(items, 0, consume))
        }));
    assert!(
        outcome.is_err(),
        "pipeline with a capacity of 0 returned {outcome:?}: it must panic, \
         as the doc says (clamping 0 to 1 hides the caller's mistake)"
    );
    assert_eq!(
        touched.load(Ordering::SeqCst),
        0,
        "a capacity of 0 panics before any item is taken or consumed"
    );
    // No items at all: the capacity is still checked, and 0 still panics.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            paused_runtime().block_on(pipeline(
                Vec::new(),
                0,
                |item| async move { item },
            ))
        }));
    assert!(
        outcome.is_err(),
        "pipeline with a capacity of 0 and no items returned {outcome:?}: \
         a capacity of 0 is the caller's mistake whatever the items, so \
         check it (assert!, or make the channel) before you look at them"
    );
    // Above the largest capacity a channel takes: the caller's mistake
    // too, and `mpsc::channel` panics on it; no clamp hides it.
    for capacity in [Semaphore::MAX_PERMITS + 1, usize::MAX] {
        let touched = Arc::new(AtomicUsize::new(0));
        let items = {
            let touched = Arc::clone(&touched);
            (0..4).inspect(move |_| {
                touched.fetch_add(1, Ordering::SeqCst);
            })
        };
        let consume = {
            let touched = Arc::clone(&touched);
            move |item: u64| {
                touched.fetch_add(1, Ordering::SeqCst);
                async move { item }
            }
        };
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                paused_runtime().block_on(pipeline(items, capacity, consume))
            }));
        assert!(
            outcome.is_err(),
            "pipeline with a capacity of {capacity}, above \
             Semaphore::MAX_PERMITS ({}), returned {outcome:?}: it must \
             panic, as mpsc::channel({capacity}) does (clamping it to \
             MAX_PERMITS hides the caller's mistake; fetch_all's limit is \
             another matter: there usize::MAX means no limit)",
            Semaphore::MAX_PERMITS
        );
        assert_eq!(
            touched.load(Ordering::SeqCst),
            0,
            "a capacity of {capacity} panics before any item is taken or \
             consumed"
        );
    }
}
