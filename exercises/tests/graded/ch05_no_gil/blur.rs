//! The trials of `blur`: the sequential blur's result, bands blurred at
//! once, `on_band` called for every band on its own thread, and no bands
//! at all refused.

use std::cell::RefCell;
use std::ffi::c_int;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use course::grader::alloc;
use exercises::ch05_no_gil::blur;

use super::{
    assert_one_thread_each, panics, spawn_failure, spawn_hold,
    the_caller_sleeps_until_woken,
};

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

pub(super) fn matches_the_sequential_blur() {
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
        (WIDE, 2, 2),
    ] {
        let image = test_gray(width, height);
        let result = panic::catch_unwind(|| blur(&image, width, bands, |_| {}));
        let Ok(result) = result else {
            panic!(
                "blur of {height} rows of {width} pixels in {bands} bands \
                 panicked: rows may be of any width, so keep no buffer of a \
                 fixed size (an array of 8,192 column sums on the stack), \
                 which a wider row overflows; size what you need by the \
                 width, or read the input as it is"
            );
        };
        assert_eq!(
            result,
            sequential_blur(&image, width),
            "{width}x{height} in {bands} bands: pixels on a band's edge \
             need the neighbouring band's rows (read the whole input); \
             count the neighbours that lie inside the image (an image one \
             pixel wide or one row high has fewer than the edge formula \
             gives); rows may be of any width ({WIDE} pixels: no buffer \
             of a fixed size, which a wider row overflows)"
        );
    }
}

/// The widest rows [`matches_the_sequential_blur`] blurs: wider than any
/// buffer of a fixed size can hold on a thread's stack (2 MiB: 1,100,000
/// column sums of even 2 bytes each take 2,200,000 bytes).
const WIDE: usize = 1_100_000;

/// 3 bands, then 40, then 2,000, more than any batch of threads started
/// together (waves of 64, or 1,024, each joined before the next starts):
/// every band's `on_band` waits until all have been called. 2,000 threads
/// of 2 MiB stacks are about as many as a trial's 4 GiB can map at once.
pub(super) fn blurs_the_bands_at_once() {
    for (width, height, bands) in [(12, 12, 3), (3, 40, 40), (1, 2_000, 2_000)]
    {
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
pub(super) fn calls_on_band_for_every_band() {
    // First, before any thread of this process has ended (see the helper):
    // when no band's thread can start, `blur` panics, as `Scope::spawn`
    // does, rather than blur a band on the calling thread.
    let image = test_gray(4, 6);
    spawn_failure::no_thread_can_start("blur", "band", 3, |ran| {
        blur(&image, 4, 3, |_| ran.note())
    });
    spawn_failure::only_two_threads_can_start("blur", "band", |ran| {
        blur(&image, 4, 4, |_| ran.note())
    });
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
    a_panicking_on_band_panics_the_caller();
    the_caller_sleeps_until_woken("band", |wait| {
        let image = test_gray(6, 4);
        let result = blur(&image, 6, 2, |_| wait());
        assert_eq!(result, sequential_blur(&image, 6));
    });
    the_bands_threads_do_the_blurring();
}

/// `on_band` of the middle band of three panics: `blur` panics too, as a
/// scope does when a thread it joins panicked, rather than catch the panic
/// and throw it away; and `on_band` is still called once for each band.
fn a_panicking_on_band_panics_the_caller() {
    let image = test_gray(6, 9);
    let called = Mutex::new(Vec::new());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        blur(&image, 6, 3, |band| {
            called.lock().unwrap().push(band);
            assert_ne!(band, 1, "this band's on_band fails on purpose");
        })
    }));
    assert!(
        outcome.is_err(),
        "on_band panicked for band 1 of 3, yet blur returned: let the \
         panic come back up (a scope re-raises it if you leave the joining \
         to it), rather than catch it (catch_unwind) and carry on"
    );
    let mut called = called.into_inner().unwrap_or_else(|e| e.into_inner());
    called.sort();
    assert_eq!(
        called,
        [0, 1, 2],
        "on_band must still be called once for each band when one of the \
         calls panics"
    );
    a_band_started_after_a_panic_still_calls_on_band();
}

/// The first band's `on_band` panics, and the calling thread starts the
/// other bands only once that band's thread has ended (it is held just
/// after it started the first, until then): the bands started after the
/// panic still call `on_band`, and blur their rows, rather than skip them
/// because `blur` will panic anyway. Their threads' CPU time shows it: the
/// image is blurred once in 3 bands without a panic first, and the two
/// later bands' threads, which have two thirds of the rows, then use at
/// least a quarter of the CPU time all 3 bands' threads used for the whole
/// image (CPU time as the kernel counts it for each thread, not a clock).
fn a_band_started_after_a_panic_still_calls_on_band() {
    let image = test_gray(PANIC_SIDE, PANIC_SIDE);
    let whole_nanos = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    blur(&image, PANIC_SIDE, 3, |_| {
        count_cpu_at_thread_end(&whole_nanos, &ended);
    });
    until_ended(&ended, 3);
    let later_nanos = Arc::new(AtomicU64::new(0));
    let later_ended = Arc::new(AtomicUsize::new(0));
    let called = Mutex::new(Vec::new());
    // The first band's thread keeps the only sender until it ends, so that
    // `recv` returns (with an error) once it has.
    let (sender, ended) = mpsc::channel::<()>();
    let sender = Mutex::new(Some(sender));
    let ended = Mutex::new(ended);
    let wait_for_the_first_band = || {
        let _ = ended.lock().unwrap().recv();
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        spawn_hold::after_this_thread_starts_one(
            &wait_for_the_first_band,
            || {
                blur(&image, 6, 3, |band| {
                    let mut called = called.lock().unwrap();
                    called.push(band);
                    if called.len() > 1 {
                        count_cpu_at_thread_end(&later_nanos, &later_ended);
                        return;
                    }
                    drop(called);
                    let sender = sender.lock().unwrap().take();
                    SENDER_UNTIL_THREAD_END
                        .with(|slot| *slot.borrow_mut() = sender);
                    panic!("this band's on_band fails on purpose");
                })
            },
        )
    }));
    assert!(
        outcome.is_err(),
        "on_band panicked for the first band of 3, yet blur returned: let \
         the panic come back up, rather than catch it and carry on"
    );
    let mut called = called.into_inner().unwrap_or_else(|e| e.into_inner());
    called.sort();
    assert_eq!(
        called,
        [0, 1, 2],
        "on_band panicked for the first band of 3, and the bands whose \
         threads started after that did not call on_band: every band's \
         thread calls on_band and blurs its rows, even once another band \
         has failed (do not skip the work because blur will panic anyway)"
    );
    until_ended(&later_ended, 2);
    let (whole, later) = (
        whole_nanos.load(Ordering::SeqCst),
        later_nanos.load(Ordering::SeqCst),
    );
    assert!(
        later * 4 >= whole,
        "blurring a {PANIC_SIDE}x{PANIC_SIDE} image in 3 bands took the \
         bands' threads {whole} ns of CPU time; when the first band's \
         on_band panicked, the two bands started after it, with two thirds \
         of the rows, used only {later} ns: they skipped their blur; every \
         band's thread blurs its rows, even once another band has failed \
         (do not skip the work because blur will panic anyway)"
    );
}

/// The side of the image [`a_band_started_after_a_panic_still_calls_on_band`]
/// blurs: large enough that blurring a third of it takes far more CPU time
/// than starting a thread.
const PANIC_SIDE: usize = 400;

/// Has the calling thread, a band's, add the CPU time it has used to
/// `total` as it ends, and count itself in `ended`.
fn count_cpu_at_thread_end(total: &Arc<AtomicU64>, ended: &Arc<AtomicUsize>) {
    let at_end = CpuAtThreadEnd {
        total: Arc::clone(total),
        ended: Arc::clone(ended),
    };
    CPU_AT_THREAD_END.with(|slot| *slot.borrow_mut() = Some(at_end));
}

/// Until `threads` bands' threads have ended, and counted their CPU time:
/// a thread's thread-local values are dropped as it ends, which may be
/// after the scope has returned. No deadline: they end once on_band and
/// their rows are done.
fn until_ended(ended: &AtomicUsize, threads: usize) {
    while ended.load(Ordering::SeqCst) < threads {
        thread::sleep(Duration::from_millis(1));
    }
}

thread_local! {
    /// The sender the first band's thread holds until it ends (a thread's
    /// thread-local values are dropped as it ends).
    static SENDER_UNTIL_THREAD_END: RefCell<Option<mpsc::Sender<()>>> =
        const { RefCell::new(None) };
}

/// The images blurred in [`the_bands_threads_do_the_blurring`], as
/// (width, height, share): the calling thread may use a `share`th of the
/// bands' threads' CPU time at most. 800x800 is enough work that blurring
/// it takes far more CPU time than starting a thread; starting 4 threads
/// and joining them takes a few hundredths of a fortieth of it, even on a
/// loaded machine, while a pass over every pixel on the calling thread
/// (dividing sums the bands' threads made, say) takes a tenth or more. An
/// image 2 pixels wide has the same number of pixels, all on its border:
/// threads that blur only the inside of the image, and leave the border
/// to the calling thread, leave it everything. A 256x256 image is a tenth
/// of the work, so its caller may use a quarter: a caller that blurs a
/// small image itself, because a thread costs more than its blur, uses
/// many times the threads' time.
const SHAPES: [(usize, usize, u64); 3] =
    [(800, 800, 40), (2, 320_000, 40), (256, 256, 4)];

/// Each band's thread blurs its own rows: blurring an 800x800 image in 4
/// bands, the calling thread uses less than a fortieth of the CPU time the
/// bands' threads use together (and so for a 2x320,000 one, and less than
/// a quarter for a 256x256 one: see [`SHAPES`]); and it blurs them into
/// the output itself: at its peak, `blur` holds the output and at most 64
/// KiB more, not a `Vec` per band that the caller then copies into the
/// output (the image twice, and a copy that is memcpy-fast, well within
/// the CPU time allowed). A `blur` whose threads only call `on_band`, and
/// whose caller then blurs the whole image, does the reverse; one whose
/// caller finishes every pixel after the threads (its threads only sum the
/// neighbours, say, and the caller divides) uses a tenth or more. CPU time
/// is what the kernel counts for each thread while it runs (not a clock:
/// time spent waiting, for a CPU or anything else, is not counted), so a
/// loaded machine changes neither side much; and the margin is wide. Each
/// image is blurred 3 times, and the calling thread's share is judged by
/// its best time: a thread that only starts and joins may now and then
/// spin briefly on a lock the kernel holds for the bands' page faults, but
/// not in every run, while a pass over every pixel costs the same each
/// time.
fn the_bands_threads_do_the_blurring() {
    for (width, height, share) in SHAPES {
        blurred_by_the_bands_threads(width, height, share);
    }
}

/// One image of [`the_bands_threads_do_the_blurring`].
fn blurred_by_the_bands_threads(width: usize, height: usize, share: u64) {
    const BANDS: usize = 4;
    const RUNS: usize = 3;
    let image = test_gray(width, height);
    let expected = sequential_blur(&image, width);
    let mut runs = Vec::with_capacity(RUNS);
    let mut least_peak = isize::MAX;
    for _ in 0..RUNS {
        let bands_nanos = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let before = thread_cpu_nanos();
        let (result, peak) = alloc::peak_during(|| {
            blur(&image, width, BANDS, |_| {
                count_cpu_at_thread_end(&bands_nanos, &ended);
            })
        });
        let caller_nanos = thread_cpu_nanos() - before;
        least_peak = least_peak.min(peak);
        assert!(
            result == expected,
            "the blur of a {width}x{height} image differs from the \
             sequential one"
        );
        until_ended(&ended, BANDS);
        runs.push((caller_nanos, bands_nanos.load(Ordering::SeqCst)));
    }
    let output = (width * height) as isize;
    assert!(
        least_peak < output + HELD_BEYOND_THE_OUTPUT,
        "blurring a {width}x{height} image ({output} pixels), blur had \
         {least_peak} bytes allocated at once at its peak, in the best of \
         {RUNS} runs: the output and at most {HELD_BEYOND_THE_OUTPUT} bytes \
         more; the bands' threads blur straight into their own rows of the \
         one output (split it with split_at_mut), not into a Vec of their \
         own that the calling thread then copies into the output, which \
         holds the image twice and makes the caller do work"
    );
    assert!(
        runs.iter().any(|&(caller, bands)| caller * share < bands),
        "blurring a {width}x{height} image in {BANDS} bands, {RUNS} times, \
         the calling thread used this much CPU time, and the bands' threads \
         this much together, in ns: {runs:?}; the calling thread may use a \
         {share}th of the bands' time at most: the bands' threads blur \
         their rows (each its own, every pixel of them finished, those on \
         the image's border too), while the calling thread only waits, \
         whatever the image's size or shape; it neither blurs the image (or \
         its border, or a small image) once they have called on_band, nor \
         makes a pass over every pixel after them (dividing sums they made, \
         say)"
    );
}

/// The bytes `blur` may hold at once beyond its output, in
/// [`the_bands_threads_do_the_blurring`]: room for the threads' own
/// records and a row buffer or two per band, far less than a quarter of
/// the 640,000 bytes of the largest images (one band's rows).
const HELD_BEYOND_THE_OUTPUT: isize = 64 * 1024;

/// What a band's thread-local value does as the thread ends: adds the CPU
/// time the thread has used to `total`, and counts the thread in `ended`.
struct CpuAtThreadEnd {
    total: Arc<AtomicU64>,
    ended: Arc<AtomicUsize>,
}

impl Drop for CpuAtThreadEnd {
    fn drop(&mut self) {
        self.total.fetch_add(thread_cpu_nanos(), Ordering::SeqCst);
        self.ended.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static CPU_AT_THREAD_END: RefCell<Option<CpuAtThreadEnd>> =
        const { RefCell::new(None) };
}

/// `struct timespec` of a 64-bit Linux: seconds, then nanoseconds.
#[repr(C)]
struct Timespec {
    seconds: i64,
    nanos: i64,
}

/// `CLOCK_THREAD_CPUTIME_ID`: the CPU time the calling thread has used.
const CLOCK_THREAD_CPUTIME_ID: c_int = 3;

unsafe extern "C" {
    fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
}

/// The CPU time the calling thread has used since it started, user and
/// system, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    let mut time = Timespec {
        seconds: 0,
        nanos: 0,
    };
    // SAFETY: `time` is a valid `struct timespec` to write to.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    time.seconds as u64 * 1_000_000_000 + time.nanos as u64
}

/// No bands at all is a mistake the caller made: `blur` panics rather than
/// return something.
pub(super) fn blur_zero_bands_panics() {
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
