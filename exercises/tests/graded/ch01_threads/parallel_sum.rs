//! `parallel_sum`: every element is added once, the chunks are borrowed,
//! balanced and summed at once, each on a new thread, and a chunk's panic
//! is passed on.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::{spawn_limit, task};
use exercises::ch01_threads::parallel_sum;

use super::spawn_all::{AT_THREAD_END, AtThreadEnd};
use super::{
    STACK_SLACK, my_tid, raise_the_default_stack, stack_size_of_this_thread,
};

/// Every chunk, empty or not, gets its own call of `sum_chunk`, each on a
/// new thread and none on the caller's: 64 threads on 10 elements leave 54
/// chunks empty, and 1100 threads are more than a "safe" cap of 1024.
/// Thread ids are never reused, so the calls need not overlap to show up as
/// distinct threads. Each call also reports its thread's stack, which must
/// be at least what `thread::spawn` gives.
pub(super) fn gives_every_chunk_a_new_thread() {
    // First thing: no thread has been started yet.
    let default = raise_the_default_stack();
    // Then, while the C library's cache holds no stacks of this process's
    // threads: with many cached, the limit's probe must start as many
    // threads to take them, and their start-up could use up the memory the
    // limit leaves (the reference solution crashed in some runs).
    no_chunk_on_the_caller_when_no_thread_starts();
    let data: Vec<u64> = (1..=10).collect();
    let caller = thread::current().id();
    for (data, threads) in [
        (&data[..], 1),
        (&data, 3),
        (&data, 64),
        (&[], 4),
        (&data, 1100),
    ] {
        let calls = Mutex::new(Vec::new());
        let smallest_stack = AtomicUsize::new(usize::MAX);
        let total = parallel_sum(data, threads, |chunk| {
            calls.lock().unwrap().push(thread::current().id());
            smallest_stack
                .fetch_min(stack_size_of_this_thread(), Ordering::SeqCst);
            chunk.iter().sum()
        });
        let expected: u64 = data.iter().sum();
        assert_eq!(
            total,
            expected,
            "{} elements on {threads} threads",
            data.len()
        );
        let calls = calls.into_inner().unwrap();
        assert_eq!(
            calls.len(),
            threads,
            "{} elements on {threads} threads: expected {threads} calls of \
             sum_chunk, one per chunk, got {}; an empty chunk still gets its \
             own thread and its own call",
            data.len(),
            calls.len()
        );
        assert!(
            !calls.contains(&caller),
            "{} elements on {threads} threads: a chunk was summed on the \
             thread that called parallel_sum; every chunk gets a new thread, \
             and the caller only waits for them",
            data.len()
        );
        let distinct: HashSet<_> = calls.iter().collect();
        assert_eq!(
            distinct.len(),
            threads,
            "{} elements on {threads} threads: sum_chunk ran on only {} \
             distinct threads; each chunk needs a thread of its own",
            data.len(),
            distinct.len()
        );
        let smallest = smallest_stack.into_inner();
        assert!(
            smallest + STACK_SLACK >= default,
            "{} elements on {threads} threads: a chunk's thread had a stack \
             of {smallest} bytes, less than the {default} that \
             thread::spawn gives: sum_chunk may need all of it, and \
             overflowing a stack aborts the whole process (leave the stack \
             size alone: thread::spawn gives RUST_MIN_STACK bytes when it \
             is set)",
            data.len()
        );
    }
}

/// A trial of its own, in a fresh process, for the reason
/// [`gives_every_chunk_a_new_thread`] checks the refusal first: no stacks
/// of earlier threads in the C library's cache.
///
/// While only two new threads can start, `parallel_sum` of three chunks
/// starts two and panics at the third, as `Scope::spawn` does; the two
/// chunks whose threads started are still summed, on those threads. A
/// version that holds every chunk at a start line until all their threads
/// exist leaves the two waiting there forever, and the scope waits for
/// them: the trial then hangs until its deadline.
pub(super) fn sums_the_started_chunks_when_a_thread_is_refused() {
    let data: Vec<u64> = (1..=9).collect();
    let summed = AtomicUsize::new(0);
    let outcome = spawn_limit::while_only_threads_can_start(2, || {
        parallel_sum(&data, 3, |chunk| {
            summed.fetch_add(1, Ordering::SeqCst);
            chunk.iter().sum()
        })
    });
    match outcome {
        None => eprintln!(
            "note: the number of threads that can start cannot be limited \
             here, so a thread refused part-way is not checked"
        ),
        Some(Ok(total)) => panic!(
            "only two new threads could start, and parallel_sum of 3 chunks \
             returned {total}: a chunk whose thread the operating system \
             refuses is not left out of the total; parallel_sum panics, as \
             Scope::spawn does"
        ),
        Some(Err(_)) => {
            let summed = summed.into_inner();
            assert_eq!(
                summed, 2,
                "only two new threads could start, and parallel_sum panicked \
                 (as it should) after summing {summed} chunks: the two chunks \
                 whose threads started are summed, each once, on those \
                 threads, and the refused one on none"
            );
        }
    }
}

/// While no new thread can start, `sum_chunk` still never runs on the
/// calling thread: `parallel_sum` panics, as `Scope::spawn` does, rather
/// than sum a chunk itself when its thread is refused.
fn no_chunk_on_the_caller_when_no_thread_starts() {
    let data: Vec<u64> = (1..=10).collect();
    let caller = thread::current().id();
    let calls = Mutex::new(Vec::new());
    let outcome = spawn_limit::while_no_thread_can_start(|| {
        parallel_sum(&data, 2, |chunk| {
            calls.lock().unwrap().push(thread::current().id());
            chunk.iter().sum()
        })
    });
    let calls = calls.into_inner().unwrap();
    let on_caller = calls.iter().filter(|&&id| id == caller).count();
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a chunk \
             whose thread cannot start is not checked"
        ),
        Some(outcome) => {
            assert!(
                on_caller == 0,
                "no new thread could start, and parallel_sum {} after \
                 summing {on_caller} of its 2 chunks on the thread that \
                 called it: every chunk gets a new thread, and when the \
                 operating system refuses one, parallel_sum panics (as \
                 Scope::spawn does) rather than sum the chunk itself",
                if outcome.is_ok() {
                    "returned"
                } else {
                    "panicked"
                }
            );
            if let Ok(total) = outcome {
                panic!(
                    "no new thread could start, and parallel_sum returned \
                     {total} for 1..=10: a chunk whose thread the operating \
                     system refuses is not left out of the total; \
                     parallel_sum panics, as Scope::spawn does"
                );
            }
        }
    }
}

pub(super) fn adds_every_element_once() {
    let data: Vec<u64> = (1..=1000).collect();
    for threads in [1, 2, 3, 7, 16] {
        let total = parallel_sum(&data, threads, |chunk| chunk.iter().sum());
        assert_eq!(
            total, 500_500,
            "sum of 1..=1000 with {threads} threads: expected 500500"
        );
    }
    let short = [5, 6];
    let total = parallel_sum(&short, 4, |chunk| chunk.iter().sum());
    assert_eq!(total, 11, "2 elements on 4 threads: two chunks are empty");
    assert_eq!(parallel_sum(&[], 3, |chunk| chunk.iter().sum()), 0);
}

/// Every chunk waits at a barrier until all chunks have started: of 4
/// chunks, and of 1100, more than a batch of a few dozen threads at a time
/// or a "safe" cap of 1024 ever has running at once.
pub(super) fn sums_the_chunks_at_once() {
    for threads in [4, 1100] {
        sums_the_chunks_at_once_on(threads);
    }
}

/// 400 elements on `threads` threads, which meet at a barrier.
fn sums_the_chunks_at_once_on(threads: usize) {
    let data: Vec<u64> = (0..400).collect();
    let barrier = Barrier::new(threads);
    let callers = Mutex::new(HashSet::new());
    let total = parallel_sum(&data, threads, |chunk| {
        callers.lock().unwrap().insert(thread::current().id());
        barrier.wait();
        chunk.iter().sum()
    });
    assert_eq!(total, (0..400).sum::<u64>(), "on {threads} threads");
    let callers = callers.into_inner().unwrap();
    assert_eq!(
        callers.len(),
        threads,
        "expected {threads} distinct threads, saw {}",
        callers.len()
    );
}

/// The chunks must be pieces of the caller's slice (not copies), tile it
/// without gaps or overlaps, and differ in length by at most one: on 4
/// threads, and on 3 and 7, which are not powers of two (halving the slice
/// and the threads again and again cuts 10 elements on 3 threads into 5, 2
/// and 3).
pub(super) fn borrows_balanced_chunks() {
    // 12 threads on 10 elements: two chunks are empty, and even those are
    // pieces of `data` (`&data[10..10]`), not a `&[]` from elsewhere.
    for threads in [4, 3, 7, 12] {
        borrows_balanced_chunks_on(10, threads);
    }
    // Big chunks too: 1000 elements on 3 threads are chunks of 334, 333
    // and 333, not chunks whose starts are moved to a cache line's edge.
    borrows_balanced_chunks_on(1000, 3);
    an_empty_data_is_lent_as_it_is();
}

/// An empty `data` that lies inside a longer slice (`&v[3..3]`, whose
/// address is that of `v`'s fourth element): every chunk is that empty
/// piece itself, at its address. An empty slice of the chunker's own
/// (`&[]`) lies elsewhere, although it looks the same as the empty slice
/// of an empty `Vec` (both at the same dangling address).
fn an_empty_data_is_lent_as_it_is() {
    let whole: Vec<u64> = (0..10).collect();
    let data = &whole[3..3];
    let start = data.as_ptr() as usize;
    let seen = Mutex::new(Vec::new());
    let total = parallel_sum(data, 4, |chunk| {
        seen.lock()
            .unwrap()
            .push((chunk.as_ptr() as usize, chunk.len()));
        0
    });
    assert_eq!(total, 0, "an empty data on 4 threads");
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen.len(),
        4,
        "an empty data on 4 threads: one call per chunk"
    );
    assert!(
        seen.iter()
            .all(|&(address, len)| address == start && len == 0),
        "parallel_sum was given an empty data, &v[3..3] of a longer v, and \
         a chunk was not that empty slice itself (not at its address): each \
         chunk is a piece of data, also when data is empty; split data \
         itself, rather than make an empty slice of your own (such as &[])"
    );
}

/// `len` elements on `threads` threads, which meet at a barrier.
fn borrows_balanced_chunks_on(len: u64, threads: usize) {
    let data: Vec<u64> = (0..len).collect();
    let start = data.as_ptr() as usize;
    let size = std::mem::size_of::<u64>();
    let seen = Mutex::new(Vec::new());
    let barrier = Barrier::new(threads);
    parallel_sum(&data, threads, |chunk| {
        let address = chunk.as_ptr() as usize;
        seen.lock().unwrap().push((address, chunk.len()));
        barrier.wait();
        0
    });
    let mut seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), threads, "expected one call per thread");
    seen.sort();
    let mut expected_offset = 0;
    for &(address, len) in &seen {
        let borrowed = address >= start
            && address <= start + data.len() * size
            && (address - start).is_multiple_of(size);
        assert!(
            borrowed,
            "a chunk is not part of the caller's slice: it was copied \
             (scoped threads can borrow the slice itself)"
        );
        if len == 0 {
            assert_eq!(
                address,
                start + data.len() * size,
                "{len} elements on {threads} threads: an empty chunk starts \
                 at element {} of data, not at its end (&data[{len}..{len}]), \
                 where the chunks before it stop",
                (address - start) / size
            );
            continue;
        }
        assert_eq!(
            (address - start) / size,
            expected_offset,
            "the chunks leave a gap or overlap"
        );
        expected_offset += len;
    }
    assert_eq!(expected_offset, data.len(), "the chunks miss elements");
    // In the order they lie in `data`, the longer chunks come first.
    let lengths: Vec<usize> = seen
        .iter()
        .map(|&(_, len)| len)
        .filter(|&len| len > 0)
        .collect();
    let expected: Vec<usize> = (0..threads)
        .map(|index| {
            data.len() / threads + usize::from(index < data.len() % threads)
        })
        .filter(|&len| len > 0)
        .collect();
    assert_eq!(
        lengths,
        expected,
        "{len} elements on {threads} threads should give chunks of {}, in \
         that order along the data (the longer chunks first, and no two \
         differing by more than one, however big: no chunk starts moved to \
         a cache line's edge); got the non-empty lengths {lengths:?} in data \
         order",
        match (len, threads) {
            (10, 4) => "3, 3, 2 and 2",
            (10, 3) => "4, 3 and 3",
            (10, 7) => "2, 2, 2, 1, 1, 1 and 1",
            (10, _) => "ten of 1 and two empty ones",
            _ => "334, 333 and 333",
        }
    );
}

/// The payload of a panicking `sum_chunk`: a type of the trial's own, so
/// that a panic `parallel_sum` raises itself cannot pass for the chunk's.
#[derive(Debug)]
struct TheChunksOwnPanic;

/// One chunk of four panics: `parallel_sum` must panic too, with that
/// chunk's own payload, rather than return a total that misses the chunk
/// or raise a panic of its own. The first chunk panics at once; the second
/// is still running then, and ends only once the first chunk's thread is
/// gone and the caller sleeps, waiting for it. A `parallel_sum` that raises
/// the panic as soon as it has joined the first chunk's thread never sleeps
/// before it does, so the second chunk would still be reading `data` after
/// `parallel_sum` has given it back (no scope would have stopped it). The
/// second chunk returns last of the other three, and its thread, once the
/// chunk has returned, ends only when the caller sleeps again: a
/// `parallel_sum` that raises the panic inside the scope, leaving the later
/// handles unjoined, lets the scope wait for that chunk only until it
/// returns (the scope wakes then, before the thread's thread-local values
/// are dropped), and panics while the thread still runs. The first chunk
/// panics on its first call only (a flaky chunk): a `parallel_sum` that
/// catches the panic and sums the chunk again gets a total from the second
/// call, and calls `sum_chunk` more than once on that chunk.
pub(super) fn passes_a_chunk_panic_on() {
    // The first chunk panics, then the last: a `parallel_sum` that joins
    // from the last chunk back (`pop`) and passes the panic on as soon as
    // it gets it leaves the chunks before the panicking one to the scope.
    for failing in [1, 7] {
        a_chunk_panic_is_passed_on(failing);
    }
    an_empty_chunk_s_panic_is_passed_on();
    a_literal_message_is_passed_on_as_it_is();
}

/// A chunk that panics with a message written out (`panic!("...")`, whose
/// payload is a `&'static str`): `parallel_sum` passes that very payload
/// on, still a `&'static str`, not a `String` made of it.
fn a_literal_message_is_passed_on_as_it_is() {
    let outcome = panic::catch_unwind(|| {
        parallel_sum(&[5, 6, 7], 3, |chunk| {
            if chunk.contains(&6) {
                panic!("the chunk's own message");
            }
            chunk.iter().sum()
        })
    });
    let payload = outcome
        .expect_err("a chunk panicked, yet parallel_sum returned a total");
    assert_eq!(
        payload.downcast_ref::<&'static str>(),
        Some(&"the chunk's own message"),
        "a chunk panicked with panic!(\"the chunk's own message\"), whose \
         payload is a &'static str, and parallel_sum panicked with another \
         payload (a String of the same text, say): pass the chunk's payload \
         on as it is, with panic::resume_unwind, whatever its type; a \
         caller may downcast it to the type the chunk panicked with"
    );
}

/// As [`passes_a_chunk_panic_on`] says, with the chunk that holds
/// `failing` (`[1, 2]` or `[7, 8]`) as the one that panics; the chunk
/// `[3, 4]` is the slow one.
fn a_chunk_panic_is_passed_on(failing: u64) {
    let data: Vec<u64> = (1..=8).collect();
    let name = format!("[{failing}, {}]", failing + 1);
    let caller = my_tid();
    let failed = AtomicI32::new(0);
    let calls_of_the_failing_chunk = AtomicUsize::new(0);
    let slow_chunk_done = AtomicBool::new(false);
    // The second chunk's thread-local value: its drop, as the thread ends,
    // waits until the caller sleeps (in `join`, as it must).
    let (at_end, ended, returned) = AtThreadEnd::new(caller);
    let at_end = Mutex::new(Some(at_end));
    // The threads of the two chunks that neither panic nor wait.
    let others = Mutex::new(Vec::new());
    // Whether the trial has gone on without this chunk.
    let gave_up = || returned.load(Ordering::SeqCst);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        parallel_sum(&data, 4, |chunk| {
            if chunk.contains(&failing) {
                let before =
                    calls_of_the_failing_chunk.fetch_add(1, Ordering::SeqCst);
                if before > 0 {
                    // A second call of the same chunk succeeds.
                    return chunk.iter().sum();
                }
                failed.store(my_tid(), Ordering::SeqCst);
                panic::panic_any(TheChunksOwnPanic);
            }
            if chunk.contains(&3) {
                let at_end = at_end.lock().unwrap().take();
                AT_THREAD_END.with(|slot| *slot.borrow_mut() = at_end);
                while failed.load(Ordering::SeqCst) == 0 && !gave_up() {
                    thread::sleep(Duration::from_millis(1));
                }
                // Until the failed chunk's thread is gone, and the other
                // two chunks' threads too (so that this chunk is the last
                // one a scope would wait for), then until the caller
                // sleeps: waiting for this chunk, as it must.
                let failed = failed.load(Ordering::SeqCst);
                let gone = |tid| {
                    task::state(tid)
                        .is_none_or(|state| matches!(state, 'Z' | 'X'))
                };
                while !gave_up() && !gone(failed) {
                    thread::sleep(Duration::from_millis(1));
                }
                while !gave_up() && {
                    let others = others.lock().unwrap();
                    others.len() < 2 || !others.iter().all(|&tid| gone(tid))
                } {
                    thread::sleep(Duration::from_millis(1));
                }
                while !gave_up()
                    && task::state(caller).is_some_and(|state| state != 'S')
                {
                    thread::sleep(Duration::from_millis(1));
                }
                slow_chunk_done.store(true, Ordering::SeqCst);
            } else if !chunk.contains(&failing) {
                others.lock().unwrap().push(my_tid());
            }
            chunk.iter().sum()
        })
    }));
    // Read before anything that could let the second chunk go on.
    let slow_chunk_was_done = slow_chunk_done.load(Ordering::SeqCst);
    let slow_chunk_ended = ended.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    let calls = calls_of_the_failing_chunk.load(Ordering::SeqCst);
    assert_eq!(
        calls, 1,
        "sum_chunk panicked on the chunk {name}, and parallel_sum called it \
         {calls} times on that chunk: call sum_chunk once per chunk, and \
         pass its panic on, with its own payload, rather than retry it (a \
         retry that succeeds hides the panic; one that fails too passes on \
         the second panic's payload, not the first's)"
    );
    let payload = match outcome {
        Ok(total) => panic!(
            "the chunk {name} panicked, yet parallel_sum returned {total}: a \
             total that misses a chunk is wrong, and nothing says so \
             (ScopedJoinHandle::join returns the panic as an Err; \
             panic::resume_unwind raises it again)"
        ),
        Err(payload) => payload,
    };
    assert!(
        slow_chunk_was_done,
        "the chunk {name} panicked, and parallel_sum panicked while the \
         chunk [3, 4] was still being summed: its thread could go on \
         reading data after parallel_sum gave it back; the threads must all \
         be joined first, those before the panicking chunk too \
         (thread::scope joins them, also when a panic leaves the scope)"
    );
    assert!(
        slow_chunk_ended,
        "the chunk {name} panicked, and parallel_sum panicked once the \
         chunk [3, 4] had been summed, but while its thread was still \
         ending (its thread-local values not yet dropped): join every \
         chunk's thread, those before the panicking chunk too, before \
         passing the panic on; a \
         scope that joins the rest implicitly, as the panic leaves it, waits \
         only for the chunks to return, not for their threads to end"
    );
    assert!(
        payload.is::<TheChunksOwnPanic>(),
        "parallel_sum panicked, but not with the chunk's own panic: it \
         raised one of its own (an unwrap or an expect on the join, or the \
         scope's \"a scoped thread panicked\") instead of passing the \
         chunk's payload on with panic::resume_unwind"
    );
}

/// 2 elements on 4 threads: the two empty chunks' calls of `sum_chunk`
/// panic, and `parallel_sum` passes one of their payloads on too. A version
/// that joins only the non-empty chunks leaves the empty ones to the scope,
/// which then panics with its own "a scoped thread panicked".
fn an_empty_chunk_s_panic_is_passed_on() {
    let outcome = panic::catch_unwind(|| {
        parallel_sum(&[5, 6], 4, |chunk| {
            if chunk.is_empty() {
                panic::panic_any(TheChunksOwnPanic);
            }
            chunk.iter().sum()
        })
    });
    match outcome {
        Ok(total) => panic!(
            "2 elements on 4 threads: sum_chunk panicked on the two empty \
             chunks, yet parallel_sum returned {total}"
        ),
        Err(payload) => assert!(
            payload.is::<TheChunksOwnPanic>(),
            "2 elements on 4 threads: sum_chunk panicked on the two empty \
             chunks, and parallel_sum panicked, but not with their own \
             panic: an empty chunk's thread is joined like any other (the \
             scope's \"a scoped thread panicked\" means some thread was \
             left for the scope to join)"
        ),
    }
}
