//! The trials of `blur`: the sequential blur's result, bands blurred at
//! once, `on_band` called for every band on its own thread, and no bands
//! at all refused.

use std::sync::atomic::Ordering;
use std::sync::{Barrier, Mutex};
use std::thread;

use exercises::ch05_no_gil::blur;

use super::{WhereRan, assert_one_thread_each, os, panics};

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
pub(super) fn blurs_the_bands_at_once() {
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
pub(super) fn calls_on_band_for_every_band() {
    // First, before any thread of this process has ended (see the helper):
    // when no band's thread can start, `blur` panics, as `Scope::spawn`
    // does, rather than blur a band on the calling thread.
    let image = test_gray(4, 6);
    let ran = WhereRan::new();
    let outcome =
        os::while_no_thread_can_start(|| blur(&image, 4, 3, |_| ran.note()));
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a band \
             whose thread cannot start is not checked"
        ),
        // Threads with a stack smaller than the default may still start:
        // then every band ran on one.
        Some(Ok(_)) if ran.elsewhere.load(Ordering::SeqCst) == 3 => {}
        Some(Ok(output)) => panic!(
            "no thread with the default stack could start, yet blur \
             returned {output:?}, with on_band called on {} of 3 bands' \
             own threads and {} times on the calling thread: a band whose \
             thread cannot start must panic, as Scope::spawn does, not be \
             blurred by the caller",
            ran.elsewhere.load(Ordering::SeqCst),
            ran.on_caller.load(Ordering::SeqCst)
        ),
        Some(Err(_)) => {}
    }
    assert_eq!(
        ran.on_caller.load(Ordering::SeqCst),
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
