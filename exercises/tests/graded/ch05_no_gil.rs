//! Graded trials of chapter 5, Removing the GIL.
//!
//! The "how" checks: image bands and blur bands wait at a barrier for every
//! band, requests wait for every request to have started, and two keys in
//! different shards are held at the same moment, so a sequential version
//! or one global lock times out and is told why. At the edges: more bands
//! than rows leave the extra bands empty, and no bands at all panic.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch05")]

use std::collections::HashSet;
use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

mod os;

use course::grader::{Trial, alloc};
use exercises::ch05_no_gil::{
    Image, Rgb, ShardedMap, blur, fetch_all, gray, in_bands,
};

/// Deadline for trials whose only way to hang is missing concurrency.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch05::in_bands::matches_the_sequential_result",
            1,
            matches_the_sequential_result,
        ),
        Trial::new(
            "ch05::in_bands::processes_the_bands_at_once",
            2,
            processes_the_bands_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not process the bands at the same time: each band waits \
             at a barrier until every band has started",
        ),
        Trial::new(
            "ch05::in_bands::bands_are_balanced_whole_rows",
            1,
            bands_are_balanced_whole_rows,
        )
        .timeout(BARRIER_TIMEOUT),
        Trial::new(
            "ch05::in_bands::runs_each_band_on_its_own_thread",
            1,
            runs_each_band_on_its_own_thread,
        ),
        Trial::new("ch05::in_bands::zero_bands_panic", 1, in_zero_bands_panics),
        Trial::new(
            "ch05::in_bands::a_panicking_kernel_panics_the_caller",
            1,
            a_panicking_kernel_panics_the_caller,
        )
        .on_timeout(
            "hung while only 2 of 4 bands' threads could start: the bands \
             that started must not wait for the others (a start barrier \
             for every band waits forever, and the scope waits for it \
             before it panics)",
        ),
        Trial::new(
            "ch05::blur::matches_the_sequential_blur",
            2,
            matches_the_sequential_blur,
        ),
        Trial::new(
            "ch05::blur::blurs_the_bands_at_once",
            2,
            blurs_the_bands_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not blur the bands at the same time: each band's thread \
             calls on_band, which waits until every band has started (3 \
             bands, then 40: start every band's thread, not a batch at a \
             time)",
        ),
        Trial::new(
            "ch05::blur::calls_on_band_for_every_band",
            1,
            calls_on_band_for_every_band,
        ),
        Trial::new("ch05::blur::zero_bands_panic", 1, blur_zero_bands_panics),
        Trial::new(
            "ch05::sharded_map::counts_from_many_threads",
            1,
            counts_from_many_threads,
        ),
        Trial::new(
            "ch05::sharded_map::holds_two_shards_at_once",
            3,
            holds_two_shards_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "keys in different shards (by shard_of) could not all be held \
             at the same time: is there one lock for the whole map, or does \
             update lock a shard other than the one shard_of names (a \
             hash masked with shards - 1, with 3 or 5 shards)?",
        ),
        Trial::new(
            "ch05::sharded_map::get_waits_only_on_its_shard",
            1,
            get_waits_only_on_its_shard,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "get waited for a shard other than its key's: while another \
             thread is inside update on a key of one shard, get of keys \
             in the other shards (present or absent) must not wait; lock \
             only the shard that shard_of(key) names (a get of a key in \
             the busy shard must wait, asleep on the shard's lock, not \
             spin)",
        ),
        Trial::new(
            "ch05::sharded_map::zero_shards_make_one",
            1,
            zero_shards_make_one,
        ),
        Trial::new(
            "ch05::sharded_map::frees_its_keys",
            1,
            sharded_map_frees_its_keys,
        ),
        Trial::new(
            "ch05::sharded_map::survives_a_panicking_f",
            1,
            survives_a_panicking_f,
        ),
        Trial::new(
            "ch05::fetch_all::returns_responses_in_order",
            1,
            returns_responses_in_order,
        ),
        Trial::new(
            "ch05::fetch_all::starts_every_request_at_once",
            2,
            starts_every_request_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not start every request before waiting for one: each \
             request waits until all have started",
        ),
        Trial::new(
            "ch05::fetch_all::fetches_every_url_on_its_own_thread",
            1,
            fetches_every_url_on_its_own_thread,
        ),
        Trial::new(
            "ch05::fetch_all::a_failed_request_panics_the_caller",
            1,
            a_failed_request_panics_the_caller,
        )
        .on_timeout(
            "hung while only 2 of 4 requests' threads could start: the \
             requests that started must not wait for the others (a start \
             barrier for every request waits forever, and the scope waits \
             for it before it panics)",
        ),
    ]
}

/// A deterministic test image: every pixel a different colour.
fn test_image(width: usize, height: usize) -> Image {
    let pixels = (0..width * height)
        .map(|i| {
            let i = i as u32;
            [
                (i * 7 % 256) as u8,
                (i * 13 % 256) as u8,
                (i * 31 % 256) as u8,
            ]
        })
        .collect();
    Image {
        width,
        height,
        pixels,
    }
}

fn grayscale(band: &[Rgb], out: &mut [u8]) {
    for (pixel, grey) in band.iter().zip(out) {
        *grey = gray(*pixel);
    }
}

fn matches_the_sequential_result() {
    let image = test_image(17, 23);
    let sequential: Vec<u8> = image.pixels.iter().copied().map(gray).collect();
    // 30 bands for 23 rows: the extra bands are empty.
    for bands in [1, 2, 3, 5, 23, 30] {
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            in_bands(&image, bands, grayscale)
        }));
        let Ok(result) = result else {
            panic!(
                "in_bands with {bands} bands for 23 rows panicked; any \
                 number of bands from 1 up is allowed, and with more bands \
                 than rows the extra bands are empty"
            );
        };
        assert_eq!(
            result, sequential,
            "{bands} bands: the result must equal the sequential grayscale"
        );
    }
    // Images with no pixels: no rows, or rows of no pixels. The height is
    // the image's `height`, not a number worked out from the pixels.
    for (width, height) in [(5, 0), (0, 4)] {
        let image = test_image(width, height);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            in_bands(&image, 2, grayscale)
        }));
        assert!(
            result.as_ref().is_ok_and(Vec::is_empty),
            "in_bands of a {width}x{height} image (no pixels) in 2 bands \
             must return an empty output, not {result:?}; the image has \
             `height` rows of `width` pixels (dividing the number of \
             pixels by the width fails for a width of 0)"
        );
    }
}

/// Whether `f` panics. The panic's message still goes to the trial's
/// output, where it does no harm.
fn panics<T>(f: impl FnOnce() -> T) -> bool {
    panic::catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// No bands at all is a mistake the caller made: `in_bands` panics rather
/// than return something.
fn in_zero_bands_panics() {
    let image = test_image(4, 3);
    // One band first, so that a `todo!()` ends the trial here as TODO.
    assert_eq!(in_bands(&image, 1, grayscale).len(), 12);
    assert!(
        panics(|| in_bands(&image, 0, grayscale)),
        "in_bands with 0 bands returned: an image cannot be split into no \
         bands; panic (assert!(bands >= 1)) rather than pick a number of \
         bands the caller did not ask for"
    );
    let empty = test_image(0, 0);
    assert!(
        panics(|| in_bands(&empty, 0, grayscale)),
        "in_bands of an image with no pixels in 0 bands returned: 0 bands \
         panic whatever the image (check bands before any early return)"
    );
}

/// Where a kernel ran: how many times on the thread that made this, and
/// how many times on other threads.
struct WhereRan {
    caller: ThreadId,
    on_caller: AtomicUsize,
    elsewhere: AtomicUsize,
}

impl WhereRan {
    fn new() -> Self {
        WhereRan {
            caller: thread::current().id(),
            on_caller: AtomicUsize::new(0),
            elsewhere: AtomicUsize::new(0),
        }
    }

    /// Counts one run, on the thread that calls this.
    fn note(&self) {
        if thread::current().id() == self.caller {
            self.on_caller.fetch_add(1, Ordering::SeqCst);
        } else {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A band whose kernel panics never fills its part of the output, so
/// `in_bands` must not return one: it panics too, as `thread::scope` does
/// when a thread it joins for you panicked. So does a band whose thread
/// cannot start (the machine is out of memory or threads), as
/// `Scope::spawn` does: that band is never filled either, and running it
/// on the caller instead is no way out (each band has a thread of its own).
fn a_panicking_kernel_panics_the_caller() {
    let image = test_image(4, 6);
    // First, before any thread of this process has ended (see the helper).
    let caller = thread::current().id();
    let ran = WhereRan::new();
    let outcome = os::while_no_thread_can_start(|| {
        in_bands(&image, 3, |band, out| {
            ran.note();
            grayscale(band, out);
        })
    });
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a band \
             whose thread cannot start is not checked"
        ),
        // Threads with a stack smaller than the default may still start:
        // then every band ran on one, and the output is whole.
        Some(Ok(_)) if ran.elsewhere.load(Ordering::SeqCst) == 3 => {}
        Some(Ok(output)) => panic!(
            "no thread with the default stack could start, yet in_bands \
             returned {output:?}, with {} of 3 kernels run on threads of \
             their own and {} on the calling thread: a band whose thread \
             cannot start is never filled; let the failure panic, as \
             Scope::spawn does (do not log it and carry on, nor run the \
             band on the caller)",
            ran.elsewhere.load(Ordering::SeqCst),
            ran.on_caller.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        ran.on_caller.load(Ordering::SeqCst),
        0,
        "no thread could start, and a band's kernel ran on the calling \
         thread instead: each band runs on a thread of its own, or \
         in_bands panics"
    );
    // Two bands' threads start, and the third cannot: the two that started
    // must not wait for the others (a start barrier for every band hangs,
    // as the scope waits for them before it panics).
    let ran = WhereRan::new();
    let outcome = os::while_only_threads_can_start(2, || {
        in_bands(&image, 4, |band, out| {
            ran.note();
            grayscale(band, out);
        })
    });
    match outcome {
        None => eprintln!(
            "note: RLIMIT_DATA or the C library's stack cache works \
             otherwise here, so bands whose threads start while a later \
             one cannot are not checked"
        ),
        // A band's thread that ended gave its stack to the next band's.
        Some(Ok(_)) if ran.elsewhere.load(Ordering::SeqCst) == 4 => {}
        Some(Ok(output)) => panic!(
            "only 2 threads could start, yet in_bands of 4 bands returned \
             {output:?}, with {} kernels run on threads of their own: a \
             band whose thread cannot start is never filled; let the \
             failure panic",
            ran.elsewhere.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        ran.on_caller.load(Ordering::SeqCst),
        0,
        "only 2 threads could start, and a band's kernel ran on the \
         calling thread instead: each band runs on a thread of its own, \
         or in_bands panics"
    );
    // A working call first, so that a `todo!()` ends the trial here as TODO.
    assert_eq!(in_bands(&image, 3, grayscale).len(), 24);
    let start = image.pixels.as_ptr() as usize;
    let (calls, calls_on_caller) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        in_bands(&image, 3, |band, out| {
            calls.fetch_add(1, Ordering::SeqCst);
            if thread::current().id() == caller {
                calls_on_caller.fetch_add(1, Ordering::SeqCst);
            }
            // The middle band (rows 2 and 3) fails on purpose.
            let offset = (band.as_ptr() as usize - start) / size_of::<Rgb>();
            assert_ne!(offset, 8, "this band fails on purpose");
            grayscale(band, out);
        })
    }));
    assert!(
        outcome.is_err(),
        "the kernel of one band panicked, yet in_bands returned {:?}, with \
         that band's output never filled; let the panic come back up (a \
         scope re-raises it if you leave the joining to it, or pass on \
         the join's Err with resume_unwind)",
        outcome.unwrap()
    );
    assert_eq!(
        (calls.into_inner(), calls_on_caller.into_inner()),
        (3, 0),
        "(kernel calls, calls on the calling thread) for 3 bands, one of \
         which panics: each band's kernel runs once, on its own thread; a \
         band whose kernel panicked is not run again (on the caller or \
         anywhere else): in_bands panics instead"
    );
}

fn processes_the_bands_at_once() {
    const BANDS: usize = 4;
    let image = test_image(10, 20);
    let barrier = Barrier::new(BANDS);
    let result = in_bands(&image, BANDS, |band, out| {
        barrier.wait(); // Every band has started.
        grayscale(band, out);
    });
    let sequential: Vec<u8> = image.pixels.iter().copied().map(gray).collect();
    assert_eq!(result, sequential);
}

fn bands_are_balanced_whole_rows() {
    const WIDTH: usize = 10;
    let image = test_image(WIDTH, 10);
    let start = image.pixels.as_ptr() as usize;
    let seen = Mutex::new(Vec::new());
    let unzeroed = AtomicUsize::new(0);
    // The memory the output would get from a fresh allocation of its size
    // held bytes other than 0 before: an output never zeroed shows them.
    dirty_freed_memory(WIDTH * 10);
    in_bands(&image, 4, |band, out| {
        assert_eq!(band.len(), out.len(), "one output byte per pixel");
        let nonzero = out.iter().filter(|&&byte| byte != 0).count();
        unzeroed.fetch_add(nonzero, Ordering::SeqCst);
        let offset = (band.as_ptr() as usize - start) / size_of::<Rgb>();
        seen.lock().unwrap().push((offset, band.len()));
        grayscale(band, out);
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    let rows: Vec<usize> = seen.iter().map(|&(_, len)| len / WIDTH).collect();
    assert!(
        seen.iter()
            .all(|&(offset, len)| offset % WIDTH == 0 && len % WIDTH == 0),
        "a band is not made of whole rows: {seen:?}"
    );
    assert_eq!(
        rows,
        [3, 3, 2, 2],
        "10 rows in 4 bands should be 3, 3, 2 and 2 rows"
    );
    let unzeroed = unzeroed.into_inner();
    assert_eq!(
        unzeroed, 0,
        "{unzeroed} bytes of the output slices the kernels got were not 0 \
         when the kernels started: the output starts as zeros (vec![0; n]); \
         memory never written (Vec::with_capacity and set_len) is not a \
         valid &mut [u8], and shows whatever it held before"
    );
}

/// Fills blocks of `len` bytes with a byte other than 0 and frees them, on
/// this thread: the C library's allocator hands the last block freed to
/// the next allocation of that size on this thread, as it was (bar its
/// first few bytes, where the allocator keeps its own notes).
fn dirty_freed_memory(len: usize) {
    let blocks: Vec<Vec<u8>> = (0..8).map(|_| vec![0xAA; len]).collect();
    for block in blocks {
        hint::black_box(&block);
        drop(block);
    }
}

/// Eight bands, each reporting the thread its kernel ran on: eight threads,
/// none of them the caller's.
/// The same with 3 rows in 8 bands: the five extra bands are empty, and
/// still each run on a thread of their own; with one band, which is no
/// reason to run on the caller's thread; with 100 bands, more than any cap
/// on threads; and for images with no pixels, whose bands are all empty.
fn runs_each_band_on_its_own_thread() {
    for (width, height, bands) in [
        (6, 20, 8),
        (6, 3, 8),
        (6, 20, 1),
        (6, 3, 100),
        (5, 0, 3),
        (0, 4, 2),
    ] {
        let image = test_image(width, height);
        let threads = Mutex::new(Vec::new());
        let result = in_bands(&image, bands, |band, out| {
            threads.lock().unwrap().push(thread::current().id());
            grayscale(band, out);
        });
        let sequential: Vec<u8> =
            image.pixels.iter().copied().map(gray).collect();
        assert_eq!(result, sequential);
        let threads = threads.into_inner().unwrap();
        assert!(
            threads.len() == bands,
            "{height} rows of {width} pixels in {bands} bands: the kernel \
             ran {} times, not once for each of the {bands} bands (with \
             more bands than rows, the extra bands are empty, and their \
             kernels still run, each on a thread of its own; so do those \
             of an image with no pixels: do not return early, and do not \
             cap the number of bands)",
            threads.len()
        );
        assert_one_thread_each(threads, bands, "band");
    }
    the_caller_only_waits("band", |wait| {
        let image = test_image(6, 4);
        let result = in_bands(&image, 2, |band, out| {
            wait();
            grayscale(band, out);
        });
        let sequential: Vec<u8> =
            image.pixels.iter().copied().map(gray).collect();
        assert_eq!(result, sequential);
    });
}

/// CPU time, in clock ticks of `/proc` (a hundredth of a second), after
/// which a calling thread counts as busy while its bands wait: a fifth of
/// a second of its own CPU time, which a thread that starts two threads
/// and then sleeps in `join` never comes near, however loaded the machine
/// (time a thread waits for a CPU is not counted).
const BUSY_TICKS: u64 = 20;

/// The calling thread starts the bands (or requests) and then only waits,
/// asleep (in `join`, or at the end of `thread::scope`), rather than spin
/// on `is_finished`, which takes a core from them. `run` starts two, each
/// calling the `wait` it is given: both are held there until the caller
/// has been seen asleep 100 times in a row (it stays asleep: they wait),
/// or it has used `BUSY_TICKS` of CPU time.
fn the_caller_only_waits(what: &str, run: impl FnOnce(&(dyn Fn() + Sync))) {
    let caller = os::current_tid();
    let started = Barrier::new(2);
    let watcher = AtomicUsize::new(0);
    let done = Barrier::new(2);
    let busy = AtomicUsize::new(0);
    run(&|| {
        started.wait(); // Both threads are running.
        if watcher.fetch_add(1, Ordering::SeqCst) == 0 {
            let spent = os::cpu_ticks(caller);
            let mut asleep_in_a_row = 0;
            while asleep_in_a_row < 100 {
                if os::cpu_ticks(caller) - spent > BUSY_TICKS {
                    busy.store(1, Ordering::SeqCst);
                    break;
                }
                if os::asleep(caller) {
                    asleep_in_a_row += 1;
                } else {
                    asleep_in_a_row = 0;
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        done.wait(); // The other thread waits for the watcher.
    });
    assert_eq!(
        busy.into_inner(),
        0,
        "while both {what}s waited, the calling thread used a fifth of a \
         second of CPU time without going to sleep: it only waits for the \
         {what}s (join each handle, or let the scope join them), rather \
         than spin on is_finished"
    );
}

/// `ids` holds `expected` threads, all different, none of them this one
/// (a thread's id is never reused, even after the thread has ended).
fn assert_one_thread_each(ids: Vec<ThreadId>, expected: usize, what: &str) {
    assert_eq!(
        ids.len(),
        expected,
        "expected {expected} calls, one per {what}"
    );
    assert!(
        !ids.contains(&thread::current().id()),
        "a {what} ran on the calling thread; each {what} needs a thread of \
         its own"
    );
    let distinct: HashSet<ThreadId> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        expected,
        "{expected} of them ran on only {} threads; each {what} needs a \
         thread of its own",
        distinct.len()
    );
}

/// The reference: the same blur, computed sequentially. An image of width
/// 0 has no pixels, and no rows either.
fn sequential_blur(gray: &[u8], width: usize) -> Vec<u8> {
    let height = gray.len().checked_div(width).unwrap_or(0);
    let mut out = vec![0; gray.len()];
    for y in 0..height {
        for x in 0..width {
            let (mut sum, mut count) = (0u32, 0u32);
            for ny in y.saturating_sub(1)..(y + 2).min(height) {
                for nx in x.saturating_sub(1)..(x + 2).min(width) {
                    sum += u32::from(gray[ny * width + nx]);
                    count += 1;
                }
            }
            out[y * width + x] = (sum / count) as u8;
        }
    }
    out
}

fn test_gray(width: usize, height: usize) -> Vec<u8> {
    (0..width * height).map(|i| (i * 37 % 251) as u8).collect()
}

fn matches_the_sequential_blur() {
    for (width, height, bands) in [
        (9, 7, 1),
        (9, 7, 2),
        (16, 16, 3),
        (5, 4, 4),
        (9, 2, 5),
        (1, 5, 2),
        (6, 1, 1),
        (1, 1, 1),
        (5_000, 3, 2),
    ] {
        let image = test_gray(width, height);
        assert_eq!(
            blur(&image, width, bands, |_| {}),
            sequential_blur(&image, width),
            "{width}x{height} in {bands} bands: pixels on a band's edge \
             need the neighbouring band's rows (read the whole input); \
             count the neighbours that lie inside the image (an image one \
             pixel wide or one row high has fewer than the edge formula \
             gives); rows may be of any width (5,000 pixels: no buffer of \
             a fixed size)"
        );
    }
}

/// 3 bands, then 40, more than any batch of threads started together:
/// every band's `on_band` waits until all have been called.
fn blurs_the_bands_at_once() {
    for (width, height, bands) in [(12, 12, 3), (3, 40, 40)] {
        let image = test_gray(width, height);
        let barrier = Barrier::new(bands);
        let called = Mutex::new(Vec::new());
        let result = blur(&image, width, bands, |band| {
            called.lock().unwrap().push(band);
            barrier.wait();
        });
        assert_eq!(result, sequential_blur(&image, width));
        let mut called = called.into_inner().unwrap();
        called.sort();
        assert_eq!(
            called,
            (0..bands).collect::<Vec<_>>(),
            "on_band is called once per band"
        );
    }
}

/// One band, which still runs on a thread of its own, not the caller's.
/// Heights the bands do not divide evenly: `height.div_ceil(bands)` rows a
/// band makes fewer bands than asked (9 rows in bands of 3 are 3 bands, not
/// 4), and `on_band` must still be called for every band, each on a thread
/// of its own; so must it with more bands than rows (3 rows in 5 bands),
/// where the extra bands are empty, and with an empty image, whose bands
/// are all empty (no rows, or rows of width 0).
fn calls_on_band_for_every_band() {
    // First, before any thread of this process has ended (see the helper):
    // when no band's thread can start, `blur` panics, as `Scope::spawn`
    // does, rather than blur a band on the calling thread.
    let image = test_gray(4, 6);
    let (on_caller, elsewhere) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let caller = thread::current().id();
    let outcome = os::while_no_thread_can_start(|| {
        blur(&image, 4, 3, |_| {
            if thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::SeqCst);
            } else {
                elsewhere.fetch_add(1, Ordering::SeqCst);
            }
        })
    });
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a band \
             whose thread cannot start is not checked"
        ),
        // Threads with a stack smaller than the default may still start:
        // then every band ran on one.
        Some(Ok(_)) if elsewhere.load(Ordering::SeqCst) == 3 => {}
        Some(Ok(output)) => panic!(
            "no thread with the default stack could start, yet blur \
             returned {output:?}, with on_band called on {} of 3 bands' \
             own threads and {} times on the calling thread: a band whose \
             thread cannot start must panic, as Scope::spawn does, not be \
             blurred by the caller",
            elsewhere.load(Ordering::SeqCst),
            on_caller.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        on_caller.into_inner(),
        0,
        "no thread could start, and on_band was called on the calling \
         thread instead: each band runs on a new thread of its own, or \
         blur panics"
    );
    for (width, height, bands) in [
        (9, 7, 1),
        (12, 9, 4),
        (8, 5, 4),
        (5, 4, 4),
        (7, 10, 3),
        (6, 3, 5),
        (4, 0, 3),
        (0, 0, 2),
    ] {
        let image = test_gray(width, height);
        let called = Mutex::new(Vec::new());
        let result = blur(&image, width, bands, |band| {
            called.lock().unwrap().push((band, thread::current().id()));
        });
        assert_eq!(result, sequential_blur(&image, width));
        let mut called = called.into_inner().unwrap();
        called.sort_by_key(|&(band, _)| band);
        let numbers: Vec<usize> =
            called.iter().map(|&(band, _)| band).collect();
        assert_eq!(
            numbers,
            (0..bands).collect::<Vec<_>>(),
            "{height} rows of {width} pixels in {bands} bands: on_band must \
             be called once for each band 0..{bands}, even when the rows do \
             not divide evenly or are fewer than the bands, and even for an \
             empty image (do not return early)"
        );
        let threads = called.into_iter().map(|(_, id)| id).collect();
        assert_one_thread_each(threads, bands, "band");
    }
}

/// No bands at all is a mistake the caller made: `blur` panics rather than
/// return something.
fn blur_zero_bands_panics() {
    let image = test_gray(4, 3);
    // One band first, so that a `todo!()` ends the trial here as TODO.
    assert_eq!(blur(&image, 4, 1, |_| {}), sequential_blur(&image, 4));
    assert!(
        panics(|| blur(&image, 4, 0, |_| {})),
        "blur with 0 bands returned: an image cannot be split into no \
         bands, and on_band would be called for none of them; panic \
         (assert!(bands >= 1))"
    );
    // An empty image is no exception: 0 bands are still a mistake.
    for width in [4, 0] {
        assert!(
            panics(|| blur(&[], width, 0, |_| {})),
            "blur of an empty image (width {width}) with 0 bands returned: \
             0 bands panic whatever the image (check bands before any \
             early return)"
        );
    }
}

fn counts_from_many_threads() {
    let map = ShardedMap::new(8);
    let keys: Vec<String> = (0..20).map(|i| format!("tab-{i}")).collect();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for key in &keys {
                    for _ in 0..50 {
                        map.update(key, |count| *count += 1);
                    }
                }
            });
        }
    });
    for key in &keys {
        assert_eq!(map.get(key), Some(400), "{key}: 8 threads × 50 updates");
    }
    assert_eq!(map.get("never-seen"), None);
    let shards: std::collections::HashSet<usize> =
        keys.iter().map(|k| map.shard_of(k)).collect();
    assert!(shards.len() > 1, "20 keys all landed in one shard");
    assert!(
        shards.iter().all(|&s| s < 8),
        "a shard number is out of range"
    );
    assert_eq!(map.shard_of("tab-3"), map.shard_of("tab-3"), "stable");
    // Keys of any length: URLs, and one of 1,000 bytes. A hash that
    // overflows (`h * 31 + byte` on a plain integer) panics in a debug
    // build once a key has a dozen bytes or so.
    let long_keys = [
        "https://example.com/tabs/7?session=abcdef".to_string(),
        "https://example.com/tabs/8?session=abcdef".to_string(),
        "x".repeat(1_000),
        format!("{}y", "x".repeat(999)),
        // Keys that differ only in case are two keys too.
        "https://Example.com/Tab/9".to_string(),
        "https://example.com/tab/9".to_string(),
    ];
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        for key in &long_keys {
            map.update(key, |count| *count += 3);
        }
        let counts: Vec<_> = long_keys.iter().map(|k| map.get(k)).collect();
        let shards: Vec<_> =
            long_keys.iter().map(|k| map.shard_of(k)).collect();
        (counts, shards)
    }));
    let Ok((counts, shards)) = outcome else {
        panic!(
            "update, get or shard_of panicked for a long key (a URL, or \
             1,000 bytes): does the hash overflow? (use wrapping arithmetic, \
             or std's DefaultHasher)"
        );
    };
    assert!(
        counts.iter().all(|&count| count == Some(3)),
        "long keys, each updated once with +3, read back as {counts:?}: \
         two keys that differ only in their last byte (of 1,000), or only \
         in case, are two keys; hash and store the whole key, as it is"
    );
    assert!(
        shards.iter().all(|&s| s < 8),
        "a shard number is out of range for a long key: {shards:?}"
    );
    // Shard counts that are not powers of two: a shard number is always
    // below the count, whatever the key.
    for count in [3, 5] {
        let map = ShardedMap::new(count);
        let outside: Vec<usize> = (0..100)
            .map(|i| map.shard_of(&format!("tab-{i}")))
            .filter(|&shard| shard >= count)
            .collect();
        assert!(
            outside.is_empty(),
            "ShardedMap::new({count}) has {count} shards, numbered \
             0..{count}, yet shard_of gave {outside:?}: take the hash modulo \
             the number of shards asked for (masking the hash needs a power \
             of two, and rounding up makes shards nobody asked for)"
        );
    }
}

/// One thread per shard, each holding a key of its own shard inside
/// `update` and waiting there for all the others: with 4 shards, and with
/// 3 and 5, which are not powers of two (a map that locks a shard other
/// than the one `shard_of` names, such as the hash masked with
/// `shards - 1`, puts two of these keys under one lock, and hangs).
fn holds_two_shards_at_once() {
    const TRIED: usize = 1_000;
    for shards in [4, 3, 5] {
        let map = ShardedMap::new(shards);
        let mut keys: Vec<Option<String>> = vec![None; shards];
        for i in 0..TRIED {
            let key = format!("tab-{i}");
            let shard = map.shard_of(&key);
            assert!(
                shard < shards,
                "shard_of({key:?}) is {shard}, but the map has {shards} shards"
            );
            keys[shard].get_or_insert(key);
        }
        let keys: Vec<String> = keys.into_iter().flatten().collect();
        assert!(
            keys.len() >= 2,
            "shard_of put {TRIED} different keys (tab-0, tab-1, ...) all in \
             one shard of {shards}: hash the key, and take the hash modulo \
             the number of shards"
        );
        let all_inside = Barrier::new(keys.len());
        std::thread::scope(|s| {
            for key in &keys {
                let (map, all_inside) = (&map, &all_inside);
                s.spawn(move || {
                    map.update(key, |count| {
                        all_inside.wait(); // Every other key is held too.
                        *count += 1;
                    });
                });
            }
        });
        for key in &keys {
            assert_eq!(map.get(key), Some(1), "{key} was updated once");
        }
    }
}

/// A thread holds one shard inside `update` until `get` has been called for
/// keys of every other shard, present and absent: those calls lock only
/// their own key's shard, so they do not wait for it. Then a `get` of a key
/// in the held shard, on a thread of its own, must wait for it: the holder
/// lets go only once that thread is asleep (waiting for the lock) or has
/// returned, so a `get` that gives up on a busy shard (`try_lock`) is
/// caught every time, and one that waits then reads the key's counter.
fn get_waits_only_on_its_shard() {
    const SHARDS: usize = 4;
    let map = ShardedMap::new(SHARDS);
    let held = "tab-0";
    let shard = map.shard_of(held);
    // One present and one absent key in each of the other shards, and a
    // present key in the held shard.
    let mut present: Vec<Option<String>> = vec![None; SHARDS];
    let mut absent: Vec<Option<String>> = vec![None; SHARDS];
    let mut neighbour = None;
    for i in 1..10_000 {
        let key = format!("tab-{i}");
        let at = map.shard_of(&key);
        if at == shard {
            neighbour.get_or_insert(key);
            continue;
        }
        if present[at].is_none() {
            present[at] = Some(key);
        } else if absent[at].is_none() {
            absent[at] = Some(key);
        }
    }
    let present: Vec<String> = present.into_iter().flatten().collect();
    let absent: Vec<String> = absent.into_iter().flatten().collect();
    assert!(
        !present.is_empty() && !absent.is_empty(),
        "10,000 keys all landed in shard {shard} of {SHARDS}"
    );
    let Some(neighbour) = neighbour else {
        panic!("10,000 keys all missed shard {shard} of {SHARDS}");
    };
    for key in present.iter().chain([&neighbour]) {
        map.update(key, |count| *count += 1);
    }
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let map = &map;
    let (got, got_neighbour) = thread::scope(|s| {
        s.spawn(move || {
            map.update(held, |count| {
                inside_tx.send(()).unwrap();
                // Held until the gets below are done, or waiting.
                let _ = release_rx.recv();
                *count += 1;
            });
        });
        inside_rx.recv().unwrap();
        // A get that panics still lets the holder go (release_tx dropped).
        let got = panic::catch_unwind(AssertUnwindSafe(|| {
            let present: Vec<_> = present.iter().map(|k| map.get(k)).collect();
            let absent: Vec<_> = absent.iter().map(|k| map.get(k)).collect();
            (present, absent)
        }));
        // The held shard's own key: its get waits until the holder is done.
        let (tid_tx, tid_rx) = mpsc::channel();
        let neighbour = neighbour.as_str();
        let waiting = s.spawn(move || {
            tid_tx.send(os::current_tid()).unwrap();
            map.get(neighbour)
        });
        let tid = tid_rx.recv().unwrap();
        while !waiting.is_finished() && !os::asleep(tid) {
            thread::yield_now();
        }
        drop(release_tx);
        (got, waiting.join())
    });
    let Ok((got_present, got_absent)) = got else {
        panic!("get panicked");
    };
    assert!(
        got_present.iter().all(|&count| count == Some(1)),
        "keys {present:?} were each updated once, yet get gave \
         {got_present:?}"
    );
    assert!(
        got_absent.iter().all(Option::is_none),
        "keys {absent:?} were never updated, yet get gave {got_absent:?}"
    );
    let Ok(got_neighbour) = got_neighbour else {
        panic!("get of a key in a busy shard panicked");
    };
    assert_eq!(
        got_neighbour,
        Some(1),
        "{neighbour} was updated once, and get({neighbour:?}) was called \
         while another thread was inside update on {held:?}, in the same \
         shard: get must wait for the shard's lock (lock, not try_lock) \
         and then give the counter; a busy shard is no reason to answer \
         None for a key that is there"
    );
    assert_eq!(map.get(held), Some(1));
}

/// `new(0)` still makes a map that works: one shard holds every key.
fn zero_shards_make_one() {
    let map = ShardedMap::new(0);
    assert_eq!(map.shard_of("tab-1"), 0, "the only shard is shard 0");
    assert_eq!(map.update("tab-1", |count| *count + 2), 2, "f's result");
    map.update("tab-1", |count| *count += 2);
    map.update("tab-2", |count| *count += 1);
    assert_eq!(map.get("tab-1"), Some(2));
    assert_eq!(map.get("tab-2"), Some(1));
    assert_eq!(map.get("tab-3"), None);
    map.update("tab-4", |count| *count);
    map.update("tab-2", |count| *count -= 1);
    assert_eq!(
        (map.get("tab-4"), map.get("tab-2")),
        (Some(0), Some(0)),
        "tab-4 was updated (left at 0), and tab-2 was counted down to 0: \
         both were updated, so get gives Some(0), not None (a counter at \
         0 is still there)"
    );
}

/// The map owns its keys: once it is dropped, nothing it allocated is
/// left, however many keys it held (the graded binary counts live bytes).
fn sharded_map_frees_its_keys() {
    let keys: Vec<String> = (0..200).map(|i| format!("tab-{i}")).collect();
    let leaked = alloc::left_allocated_by(|| {
        let map = ShardedMap::new(4);
        for key in &keys {
            map.update(key, |count| *count += 1);
        }
        assert_eq!(map.get("tab-7"), Some(1));
        // The map is dropped here.
    });
    assert_eq!(
        leaked, 0,
        "after a map of 200 keys was dropped, {leaked} bytes were still \
         allocated: the map must own its keys (String), so that dropping \
         it frees them; a key leaked to make it &'static (Box::leak) stays \
         allocated for the rest of the process"
    );
    // The map holds a copy of each key: 20 keys of 1,000 bytes take 20,000
    // bytes at least (a map that keeps only each key's hash cannot tell
    // two keys with the same hash apart).
    let long_keys: Vec<String> = (0..20)
        .map(|i| format!("{i:04}{}", "k".repeat(996)))
        .collect();
    let map = ShardedMap::new(4);
    let before = alloc::live_bytes();
    for key in &long_keys {
        map.update(key, |count| *count += 1);
    }
    let held = alloc::live_bytes() - before;
    assert!(
        held >= 20_000,
        "a map of 20 keys of 1,000 bytes holds only {held} bytes: the map \
         owns its keys, a copy of each (String); a hash in place of the key \
         gives two keys with the same hash one counter"
    );
    // Reading changes nothing: `get` and `shard_of` of keys never updated
    // (and of keys present) leave no byte allocated.
    let grown = alloc::left_allocated_by(|| {
        for i in 0..1_000 {
            let key = format!("absent-{i}");
            assert_eq!(map.get(&key), None, "{key} was never updated");
            hint::black_box(map.shard_of(&key));
        }
        for key in &long_keys {
            assert_eq!(map.get(key), Some(1));
        }
    });
    assert_eq!(
        grown, 0,
        "get and shard_of of 1,000 keys never updated (and of 20 present) \
         left {grown} bytes allocated: reading a key stores nothing (a \
         memo of shard_of's answers grows with every key ever asked about, \
         and puts every get and update of every shard behind its one lock)"
    );
}

/// An `f` that panics makes `update` panic, and nothing more: later calls
/// on the same shard, for that key and for others, work as before.
fn survives_a_panicking_f() {
    let map = ShardedMap::new(1);
    map.update("tab-1", |count| *count += 5);
    let failed = thread::scope(|s| {
        s.spawn(|| {
            map.update("tab-1", |count| {
                *count += 1;
                panic!("this update fails on purpose");
            })
        })
        .join()
    });
    assert!(failed.is_err(), "update must pass on the panic of its f");
    // The same with a key never updated before: f works on the counter in
    // the map from the start, so the key is there, with what f wrote.
    let failed_new = thread::scope(|s| {
        s.spawn(|| {
            map.update("tab-3", |count| {
                *count += 4;
                panic!("this first update fails on purpose");
            })
        })
        .join()
    });
    assert!(
        failed_new.is_err(),
        "update must pass on the panic of its f"
    );
    let after = thread::scope(|s| {
        s.spawn(|| {
            map.update("tab-2", |count| *count += 1);
            (map.get("tab-1"), map.get("tab-2"), map.get("tab-3"))
        })
        .join()
    });
    let Ok(after) = after else {
        panic!(
            "after an f panicked inside update, later calls on its shard \
             panicked too: the panic poisoned the shard's lock, and \
             lock().unwrap() (or expect) then panics for every key of that \
             shard, for good; a counter is a plain number that f may leave \
             changed but never broken, so take the poisoned lock's guard \
             (PoisonError::into_inner)"
        );
    };
    assert_eq!(
        after,
        (Some(6), Some(1), Some(4)),
        "tab-1 was 5 when an f added 1 to it and then panicked; f works on \
         the counter in the map, so the map keeps the 6 it wrote (and \
         tab-2 was updated once); tab-3 was new when an f added 4 to it and \
         panicked: the key is in the map from the moment update starts \
         (insert it before calling f, not after f returns), with the 4 f \
         wrote"
    );
}

fn returns_responses_in_order() {
    let urls = ["/tab/3", "/tab/1", "/tab/2"];
    let responses = fetch_all(&urls, |url| format!("200 {url}"));
    assert_eq!(
        responses,
        ["200 /tab/3", "200 /tab/1", "200 /tab/2"],
        "responses must come back in the order of the URLs"
    );
    assert!(fetch_all(&[], |url| url.to_string()).is_empty());
}

/// 64 requests, more than any pool the size of a machine's cores, each
/// waiting at a barrier until all have started.
fn starts_every_request_at_once() {
    let urls: Vec<String> = (0..64).map(|i| format!("/tab/{i}")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let barrier = Barrier::new(urls.len());
    let responses = fetch_all(&urls, |url| {
        barrier.wait(); // Every request is in flight.
        url.to_uppercase()
    });
    let expected: Vec<String> = urls.iter().map(|u| u.to_uppercase()).collect();
    assert_eq!(responses, expected);
}

/// The stack a `fetch` uses in `fetches_every_url_on_its_own_thread`: a
/// quarter of the default stack of a thread Rust starts (2 MiB).
const STACK_USED_BY_FETCH: usize = 512 * 1024;

/// 1,000 requests for 100 URLs, each listed 10 times: 1,000 calls of
/// `fetch`, each on a thread of its own, none on the caller's. Every call
/// answers with a number of its own, so each entry must get the response
/// of its own request, not another request for the same URL.
fn fetches_every_url_on_its_own_thread() {
    const ENTRIES: usize = 1_000;
    let urls: Vec<String> =
        (0..ENTRIES).map(|i| format!("/tab/{}", i % 100)).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let threads = Mutex::new(Vec::new());
    let calls = AtomicUsize::new(0);
    let responses = fetch_all(&urls, |url| {
        threads.lock().unwrap().push(thread::current().id());
        let call = calls.fetch_add(1, Ordering::SeqCst);
        format!("200 {url} #{call}")
    });
    assert_eq!(responses.len(), ENTRIES, "one response per entry of urls");
    for (url, response) in urls.iter().zip(&responses) {
        assert!(
            response.starts_with(&format!("200 {url} #")),
            "the response to {url} was {response:?}: responses must come \
             back in the order of the URLs"
        );
    }
    let distinct: HashSet<&String> = responses.iter().collect();
    assert_eq!(
        distinct.len(),
        ENTRIES,
        "{ENTRIES} requests answered with {ENTRIES} different responses, \
         yet fetch_all returned only {} different ones: an entry got the \
         response of another request for the same URL (results keyed by \
         URL?); keep each response with its entry's position",
        distinct.len()
    );
    assert_one_thread_each(
        threads.into_inner().unwrap(),
        urls.len(),
        "request",
    );
    // One URL is still a request on a thread of its own, and a blank entry
    // is still an entry: fetched like any other, never skipped; so is one
    // with a NUL character in it (`fetch_all` does not judge URLs, nor use
    // them for anything but `fetch`, such as a thread's name), and each
    // response, which starts with a space and ends with "\r\n", comes back
    // as it is, not trimmed. Each `fetch`
    // here uses 512 KiB of its stack, as a real HTTP or TLS client may: a
    // thread started with Rust's default stack (2 MiB) has room for it.
    for urls in [&["/tab/1"][..], &["", "/tab/2", "  ", "\t", "/a\0b"][..]] {
        let threads = Mutex::new(Vec::new());
        let responses = fetch_all(urls, |url| {
            threads.lock().unwrap().push(thread::current().id());
            let mut buffer = [0_u8; STACK_USED_BY_FETCH];
            hint::black_box(&mut buffer);
            format!(" 200 [{url}]\r\n")
        });
        let expected: Vec<String> =
            urls.iter().map(|url| format!(" 200 [{url}]\r\n")).collect();
        assert_eq!(
            responses, expected,
            "every entry of {urls:?} must be fetched, blank ones included \
             (fetch_all does not judge URLs), each response in its place, \
             exactly as fetch returned it (its spaces and line ends \
             included: fetch_all does not tidy responses either)"
        );
        assert_one_thread_each(
            threads.into_inner().unwrap(),
            urls.len(),
            "request",
        );
    }
    the_caller_only_waits("request", |wait| {
        let responses = fetch_all(&["/a", "/b"], |url| {
            wait();
            format!("200 {url}")
        });
        assert_eq!(responses, ["200 /a", "200 /b"]);
    });
}

/// A request whose `fetch` panics makes `fetch_all` panic, rather than
/// come back with a response nobody sent. So does a request whose thread
/// cannot start (the machine is out of memory or threads), as
/// `Scope::spawn` does: fetching it on the calling thread instead would run
/// requests one after another, and deadlock any that waits for the others.
fn a_failed_request_panics_the_caller() {
    let urls = ["/ok", "/broken", "/ok-too"];
    // First, before any thread of this process has ended (see the helper).
    let (on_caller, elsewhere) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let caller = thread::current().id();
    let outcome = os::while_no_thread_can_start(|| {
        fetch_all(&urls, |url| {
            if thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::SeqCst);
            } else {
                elsewhere.fetch_add(1, Ordering::SeqCst);
            }
            format!("200 {url}")
        })
    });
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a request \
             whose thread cannot start is not checked"
        ),
        // Threads with a stack smaller than the default may still start:
        // then every request ran on one.
        Some(Ok(_)) if elsewhere.load(Ordering::SeqCst) == urls.len() => {}
        Some(Ok(responses)) => panic!(
            "no thread with the default stack could start, yet fetch_all \
             returned {responses:?}, with {} of {} requests fetched on \
             threads of their own and {} on the calling thread: a request whose \
             thread cannot start must panic, as Scope::spawn does, not be \
             fetched by the caller",
            elsewhere.load(Ordering::SeqCst),
            urls.len(),
            on_caller.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        on_caller.into_inner(),
        0,
        "no thread could start, and a request was fetched on the calling \
         thread instead: each request runs on a thread of its own, or \
         fetch_all panics"
    );
    // Two requests' threads start, and the third cannot: the two that
    // started must not wait for the others (a start barrier for every
    // request hangs, as the scope waits for them before it panics).
    let four = ["/1", "/2", "/3", "/4"];
    let (on_caller, elsewhere) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let outcome = os::while_only_threads_can_start(2, || {
        fetch_all(&four, |url| {
            if thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::SeqCst);
            } else {
                elsewhere.fetch_add(1, Ordering::SeqCst);
            }
            format!("200 {url}")
        })
    });
    match outcome {
        None => eprintln!(
            "note: RLIMIT_DATA or the C library's stack cache works \
             otherwise here, so requests whose threads start while a later \
             one cannot are not checked"
        ),
        // A request's thread that ended gave its stack to the next one's.
        Some(Ok(_)) if elsewhere.load(Ordering::SeqCst) == four.len() => {}
        Some(Ok(responses)) => panic!(
            "only 2 threads could start, yet fetch_all of 4 requests \
             returned {responses:?}, with {} fetched on threads of their \
             own: a request whose thread cannot start must panic",
            elsewhere.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        on_caller.into_inner(),
        0,
        "only 2 threads could start, and a request was fetched on the \
         calling thread instead: each request runs on a thread of its own, \
         or fetch_all panics"
    );
    let fetched = Mutex::new(Vec::new());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        fetch_all(&urls, |url| {
            fetched.lock().unwrap().push(url.to_string());
            assert_ne!(url, "/broken", "this request fails on purpose");
            format!("200 {url}")
        })
    }));
    assert!(
        outcome.is_err(),
        "fetch of /broken panicked, but fetch_all returned {:?}; join each \
         thread and let its panic come back up",
        outcome.unwrap()
    );
    let mut fetched = fetched.into_inner().unwrap_or_else(|e| e.into_inner());
    fetched.sort();
    assert_eq!(
        fetched,
        ["/broken", "/ok", "/ok-too"],
        "each entry is fetched once, the one whose fetch panics included: \
         do not try a failed request again (its panic is the caller's to \
         see, and a request sent twice may do its work twice)"
    );
}
