//! Chapter 5, Removing the GIL: four exercises.
//!
//! Without a global lock, parallel code is shaped by its data: process an
//! image in bands, each thread writing only its own rows; blur it, reading
//! the neighbours' rows but writing only its own; keep a map in shards so
//! that threads touching different keys do not wait for each other; and
//! fan out I/O-bound requests.
//!
//! - Book: chapter 5, "Removing the GIL", section "Exercises".
//! - Graded by `exercises/tests/graded/ch05_no_gil.rs`:
//!   `cargo course grade ch05`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: bands, blurs and requests wait
//! at barriers for each other, and two keys in different shards are held
//! at the same moment.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch05_no_gil")]

/// One pixel: red, green, blue.
pub type Rgb = [u8; 3];

/// An image, row by row: pixel `(x, y)` is `pixels[y * width + x]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` pixels.
    pub pixels: Vec<Rgb>,
}

/// The grey level of a pixel (ITU-R BT.601 weights, in integers).
pub fn gray([r, g, b]: Rgb) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000)
        as u8
}

/// Splits the image into `bands` horizontal bands of whole rows (their
/// heights differ by at most one row), and runs `kernel` on each band on a
/// thread of its own, all at once: a new thread for every band, while the
/// calling thread only waits. `kernel(band_pixels, band_output)` fills one
/// output byte per input pixel. Returns the whole output.
pub fn in_bands<K>(image: &Image, bands: usize, kernel: K) -> Vec<u8>
where
    K: Fn(&[Rgb], &mut [u8]) + Sync,
{
    // TODO(ch05): split input and output into bands (split_at_mut), one
    // scoped thread per band.
    let _ = (image, bands, kernel);
    todo!("ch05: in_bands")
}

/// A 3×3 box blur of a grey image: each output pixel is the average
/// (rounded down) of the input pixels around it, itself included, that lie
/// inside the image. Identical to a sequential blur.
///
/// Computed in exactly `bands` bands of whole rows, even when `bands` does
/// not divide the height, each on a new thread of its own (not the
/// caller's), all at once. Each band's thread calls `on_band(band)` once,
/// for every `band` in `0..bands`, before or after blurring its rows: the
/// tests make it wait there until every band's thread has called it.
pub fn blur<B>(gray: &[u8], width: usize, bands: usize, on_band: B) -> Vec<u8>
where
    B: Fn(usize) + Sync,
{
    // TODO(ch05): each band reads the whole input, writes its own rows.
    let _ = (gray, width, bands, on_band);
    todo!("ch05: blur")
}

/// A map from names to counters, split into shards with a lock each, so
/// that threads working on keys in different shards never wait for each
/// other.
#[derive(Debug)]
pub struct ShardedMap {
    // TODO(ch05): the shards.
}

impl ShardedMap {
    /// An empty map with `shards` shards; a map needs at least one, so
    /// `new(0)` makes a map of one shard.
    pub fn new(shards: usize) -> Self {
        // TODO(ch05): create the shards.
        let _ = shards;
        todo!("ch05: ShardedMap::new")
    }

    /// The shard that holds `key`: always the same for the same key.
    pub fn shard_of(&self, key: &str) -> usize {
        // TODO(ch05): hash the key.
        let _ = key;
        todo!("ch05: ShardedMap::shard_of")
    }

    /// Runs `f` on the counter of `key` (0 if it was absent), holding the
    /// lock of `key`'s shard only, and returns what `f` returns.
    pub fn update<R>(&self, key: &str, f: impl FnOnce(&mut u64) -> R) -> R {
        // TODO(ch05): lock one shard.
        let _ = (key, f);
        todo!("ch05: ShardedMap::update")
    }

    /// The counter of `key`, if it was ever updated.
    pub fn get(&self, key: &str) -> Option<u64> {
        // TODO(ch05): read one shard.
        let _ = key;
        todo!("ch05: ShardedMap::get")
    }
}

/// Fetches every URL with `fetch`, each on a thread of its own, all at once
/// (I/O-bound work: the threads mostly wait), and returns the responses in
/// the order of `urls`. Every entry of `urls` is one request on a new
/// thread, however many there are: a URL listed twice is fetched twice, and
/// the calling thread only waits. If a `fetch` panics, `fetch_all` panics
/// too, once every request has ended.
pub fn fetch_all<F>(urls: &[&str], fetch: F) -> Vec<String>
where
    F: Fn(&str) -> String + Sync,
{
    // TODO(ch05): one scoped thread per request.
    let _ = (urls, fetch);
    todo!("ch05: fetch_all")
}
