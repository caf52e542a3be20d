//! The trials of `in_bands`: a kernel run on bands of whole rows, each band
//! on a thread of its own, all at once, and a panic passed on.

use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::{alloc, task};
use exercises::ch05_no_gil::{Image, Rgb, gray, in_bands};

use super::{
    assert_one_thread_each, os, panics, spawn_failure,
    the_caller_sleeps_until_woken,
};

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

pub(super) fn matches_the_sequential_result() {
    let image = test_image(17, 23);
    let sequential: Vec<u8> = image.pixels.iter().copied().map(gray).collect();
    // 30 bands for 23 rows: the extra bands are empty.
    let start = image.pixels.as_ptr() as usize;
    for bands in [1, 2, 3, 5, 23, 30] {
        // Where each band's output slice was, as (its first pixel's index,
        // its address): the bands' slices are parts of the output returned.
        let slices = Mutex::new(Vec::new());
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            in_bands(&image, bands, |band, out| {
                if !band.is_empty() {
                    let first =
                        (band.as_ptr() as usize - start) / size_of::<Rgb>();
                    slices.lock().unwrap().push((first, out.as_ptr() as usize));
                }
                grayscale(band, out);
            })
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
        let output = result.as_ptr() as usize;
        let elsewhere = slices
            .into_inner()
            .unwrap()
            .into_iter()
            .filter(|&(first, address)| address != output + first)
            .count();
        assert_eq!(
            elsewhere, 0,
            "{bands} bands: the output slices of {elsewhere} bands' kernels \
             were not parts of the output in_bands returned: return the \
             buffer the bands filled (one vec![0; n], split with \
             split_at_mut), not a copy of it, nor the bands' own buffers \
             put together by the calling thread, which only waits"
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
    leaves_nothing_allocated();
}

/// Once the output is dropped and the bands' threads have ended, nothing
/// `in_bands` allocated is left: not the output (leaked with `Box::leak`
/// and returned as a copy, say), nor anything else. The same when a band's
/// kernel panics: `in_bands` panics too, and the output it made is freed
/// as the panic unwinds (not leaked, as a buffer handed to the bands by a
/// raw pointer and taken back only after every band returned is).
fn leaves_nothing_allocated() {
    const BANDS: usize = 2;
    let image = test_image(300, 200);
    let start = image.pixels.as_ptr() as usize;
    // Room for every band's thread id, made before counting.
    let threads = Mutex::new(Vec::with_capacity(BANDS));
    // Until every band's thread is gone: std frees a thread's own records
    // (its handle, its closure) as it ends, which may be after the scope
    // has returned. No deadline: the threads end once their kernels have.
    let until_the_bands_end = || {
        for tid in threads.lock().unwrap().drain(..) {
            while task::state(tid)
                .is_some_and(|state| !matches!(state, 'Z' | 'X'))
            {
                thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let kernel = |band: &[Rgb], out: &mut [u8]| {
        threads.lock().unwrap().push(os::current_tid());
        grayscale(band, out);
    };
    // The first band's kernel panics; the second's works.
    let failing = |band: &[Rgb], out: &mut [u8]| {
        threads.lock().unwrap().push(os::current_tid());
        assert_ne!(band.as_ptr() as usize, start, "this band fails on purpose");
        grayscale(band, out);
    };
    // A first call of each, so that what std sets up once (the calling
    // thread's `Thread` handle, which a scope uses to wait, and what a
    // first panic sets up) is not counted.
    drop(in_bands(&image, BANDS, kernel));
    until_the_bands_end();
    assert!(
        panics(|| in_bands(&image, BANDS, failing)),
        "a band's kernel panicked, yet in_bands returned"
    );
    until_the_bands_end();
    let left = alloc::left_allocated_by(|| {
        let output = in_bands(&image, BANDS, kernel);
        assert_eq!(output.len(), 300 * 200, "one output byte per pixel");
        drop(output);
        until_the_bands_end();
    });
    assert!(
        left <= 0,
        "in_bands of a 300x200 image left {left} bytes allocated once its \
         output was dropped and its threads had ended: return the output \
         buffer itself (split it with split_at_mut inside a scope), rather \
         than leak it (Box::leak) and return a copy"
    );
    let left = alloc::left_allocated_by(|| {
        assert!(
            panics(|| in_bands(&image, BANDS, failing)),
            "a band's kernel panicked, yet in_bands returned"
        );
        until_the_bands_end();
    });
    assert!(
        left <= 0,
        "in_bands of a 300x200 image in 2 bands, one of whose kernels \
         panicked, left {left} bytes allocated once it had panicked and its \
         threads had ended: the output must be freed as the panic unwinds \
         (a Vec owned by in_bands, split with split_at_mut, is), not handed \
         to the bands as a raw pointer (Box::into_raw) and taken back only \
         after every band returned"
    );
}

/// No bands at all is a mistake the caller made: `in_bands` panics rather
/// than return something.
pub(super) fn in_zero_bands_panics() {
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

/// A band whose kernel panics never fills its part of the output, so
/// `in_bands` must not return one: it panics too, as `thread::scope` does
/// when a thread it joins for you panicked. So does a band whose thread
/// cannot start (the machine is out of memory or threads), as
/// `Scope::spawn` does: that band is never filled either, and running it
/// on the caller instead is no way out (each band has a thread of its own).
pub(super) fn a_panicking_kernel_panics_the_caller() {
    let image = test_image(4, 6);
    let caller = thread::current().id();
    // First, before any thread of this process has ended (see the helper).
    // Each kernel uses 512 KiB of its thread's stack, as in
    // `runs_each_band_on_its_own_thread`: a band whose thread is started
    // again with a small stack when the default one cannot start
    // overflows it, which aborts the process.
    spawn_failure::no_thread_can_start("in_bands", "band", 3, |ran| {
        in_bands(&image, 3, |band, out| {
            ran.note();
            grayscale_with_a_large_buffer(band, out);
        })
    });
    spawn_failure::only_two_threads_can_start("in_bands", "band", |ran| {
        in_bands(&image, 4, |band, out| {
            ran.note();
            grayscale_with_a_large_buffer(band, out);
        })
    });
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

/// 4 bands of 20 rows, then 8 bands of 3 rows: every band's kernel, the
/// five empty ones included, waits until all have started (the empty
/// bands run at the same time as the others, not after them). And every
/// band's thread has a stack as large as the smallest of the 4 bands'
/// threads had: a large fan-out is no reason for smaller stacks (a stack
/// budget shared among 2,000 bands gives each 1.5 MiB).
pub(super) fn processes_the_bands_at_once() {
    // 2,000 bands of one pixel each, more than any cap on the threads at
    // once (waves of 128 or 1,024 bands, each joined before the next
    // starts, hang); 2,000 threads of 2 MiB stacks are about as many as a
    // trial's 4 GiB can map at once.
    let smallest = AtomicUsize::new(usize::MAX);
    let mut small = usize::MAX;
    for (width, height, bands) in [(10, 20, 4), (6, 3, 8), (1, 2_000, 2_000)] {
        let image = test_image(width, height);
        let barrier = Barrier::new(bands);
        let result = in_bands(&image, bands, |band, out| {
            smallest.fetch_min(os::stack_size(), Ordering::SeqCst);
            barrier.wait(); // Every band has started.
            grayscale(band, out);
        });
        let sequential: Vec<u8> =
            image.pixels.iter().copied().map(gray).collect();
        assert_eq!(result, sequential);
        if bands == 4 {
            small = smallest.swap(usize::MAX, Ordering::SeqCst);
        }
    }
    let smallest = smallest.into_inner();
    assert!(
        smallest >= small,
        "with 4 bands, each band's thread had a stack of {} KiB; with 8 or \
         2,000 bands, one had only {} KiB: a large fan-out gets the same \
         stacks as a small one (leave the stack size alone, however many \
         bands there are: a kernel may need its room)",
        small / 1024,
        smallest / 1024
    );
}

pub(super) fn bands_are_balanced_whole_rows() {
    const WIDTH: usize = 10;
    let image = test_image(WIDTH, 10);
    let start = image.pixels.as_ptr() as usize;
    let seen = Mutex::new(Vec::new());
    let unzeroed = AtomicUsize::new(0);
    // A previous call whose kernels filled their slices with bytes other
    // than 0: a buffer kept from it for the next call shows them.
    drop(in_bands(&image, 4, |_, out| out.fill(0xAA)));
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
         valid &mut [u8], and shows whatever it held before, as does a \
         buffer kept from the previous call (resize keeps the bytes it \
         has)"
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
pub(super) fn runs_each_band_on_its_own_thread() {
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
    // Each kernel uses 512 KiB of its thread's stack, as a kernel with a
    // large buffer of its own may: a thread started with Rust's default
    // stack (2 MiB) has room for it, one with a small stack overflows it,
    // which aborts the whole process.
    let image = test_image(6, 20);
    let result = in_bands(&image, 4, grayscale_with_a_large_buffer);
    let sequential: Vec<u8> = image.pixels.iter().copied().map(gray).collect();
    assert_eq!(result, sequential);
    the_caller_sleeps_until_woken("band", |wait| {
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

/// The stack a kernel uses in [`grayscale_with_a_large_buffer`]: a
/// quarter of the default stack of a thread Rust starts (2 MiB).
const STACK_USED_BY_KERNEL: usize = 512 * 1024;

/// [`grayscale`], by a kernel with a buffer of [`STACK_USED_BY_KERNEL`]
/// bytes on its thread's stack.
fn grayscale_with_a_large_buffer(band: &[Rgb], out: &mut [u8]) {
    let mut buffer = [0_u8; STACK_USED_BY_KERNEL];
    hint::black_box(&mut buffer);
    grayscale(band, out);
}
