//! Graded trials of chapter 5, Removing the GIL.
//!
//! The "how" checks: image bands and blur bands wait at a barrier for every
//! band, requests wait for every request to have started, and two keys in
//! different shards are held at the same moment, so a sequential version
//! or one global lock times out and is told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch05")]

use std::sync::{Barrier, Mutex};
use std::time::Duration;

use course::grader::Trial;
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
             calls on_band, which waits until every band has started",
        ),
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
            "two keys in different shards could not be held at the same \
             time: is there one lock for the whole map?",
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
    for bands in [1, 2, 3, 5, 23] {
        assert_eq!(
            in_bands(&image, bands, grayscale),
            sequential,
            "{bands} bands: the result must equal the sequential grayscale"
        );
    }
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
    in_bands(&image, 4, |band, out| {
        assert_eq!(band.len(), out.len(), "one output byte per pixel");
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
}

/// The reference: the same blur, computed sequentially.
fn sequential_blur(gray: &[u8], width: usize) -> Vec<u8> {
    let height = gray.len() / width;
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
    for (width, height, bands) in [(9, 7, 1), (9, 7, 2), (16, 16, 3), (5, 4, 4)]
    {
        let image = test_gray(width, height);
        assert_eq!(
            blur(&image, width, bands, |_| {}),
            sequential_blur(&image, width),
            "{width}x{height} in {bands} bands: pixels on a band's edge \
             need the neighbouring band's rows (read the whole input)"
        );
    }
}

fn blurs_the_bands_at_once() {
    const BANDS: usize = 3;
    let image = test_gray(12, 12);
    let barrier = Barrier::new(BANDS);
    let called = Mutex::new(Vec::new());
    let result = blur(&image, 12, BANDS, |band| {
        called.lock().unwrap().push(band);
        barrier.wait();
    });
    assert_eq!(result, sequential_blur(&image, 12));
    let mut called = called.into_inner().unwrap();
    called.sort();
    assert_eq!(called, [0, 1, 2], "on_band is called once per band");
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
}

/// Two threads each hold a key of a different shard inside `update` and
/// wait there for each other.
fn holds_two_shards_at_once() {
    let map = ShardedMap::new(4);
    let first = "tab-0".to_string();
    let second = (1..)
        .map(|i| format!("tab-{i}"))
        .find(|key| map.shard_of(key) != map.shard_of(&first))
        .unwrap();
    let both_inside = Barrier::new(2);
    std::thread::scope(|s| {
        for key in [&first, &second] {
            let (map, both_inside) = (&map, &both_inside);
            s.spawn(move || {
                map.update(key, |count| {
                    both_inside.wait(); // The other key is held too.
                    *count += 1;
                });
            });
        }
    });
    assert_eq!(map.get(&first), Some(1));
    assert_eq!(map.get(&second), Some(1));
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

fn starts_every_request_at_once() {
    let urls = ["/a", "/b", "/c", "/d", "/e"];
    let barrier = Barrier::new(urls.len());
    let responses = fetch_all(&urls, |url| {
        barrier.wait(); // Every request is in flight.
        url.to_uppercase()
    });
    assert_eq!(responses, ["/A", "/B", "/C", "/D", "/E"]);
}
