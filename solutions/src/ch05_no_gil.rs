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

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::thread;

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

/// The row counts of `bands` bands of `rows` rows: whole rows, the first
/// bands one row longer when the rows do not divide evenly.
fn band_heights(rows: usize, bands: usize) -> impl Iterator<Item = usize> {
    (0..bands).map(move |band| rows / bands + usize::from(band < rows % bands))
}

/// Splits the image into `bands` horizontal bands of whole rows (their
/// heights differ by at most one row), and runs `kernel` on each band on a
/// thread of its own, all at once: a new thread for every band, while the
/// calling thread only waits. `kernel(band_pixels, band_output)` fills one
/// output byte per input pixel. Returns the whole output. With more bands
/// than rows, the extra bands are empty: their kernels get empty slices;
/// so are all the bands of an image with no pixels. The image has `height`
/// rows of `width` pixels, either of which may be 0. One band, or many
/// more bands than cores, is no exception: exactly `bands` new threads.
///
/// Every band's writes happen before the caller reads the output: joining
/// a band's thread (or the end of the scope, which joins them) orders them
/// so. Not graded, because no trial can see it: a caller that instead
/// counts finished bands with a `Relaxed` counter and reads the output as
/// soon as the count is full has a data race (a CPU with weak memory
/// ordering may show it stale bytes), but the trials run on x86, which
/// shows every write in order, and the course's loom models see only code
/// written with loom's own types. It breaks this contract all the same.
///
/// # Panics
///
/// If `bands` is 0: an image cannot be split into no bands. If a band's kernel
/// panics, or its thread cannot start (no memory or threads left), `in_bands`
/// panics too, rather than return an output with that band never filled (or run
/// the band on the calling thread instead). Check `bands` with `assert!`: only
/// a debug build is graded, because the trials run in the debug profile, so a
/// `debug_assert!(bands > 0)` passes them, yet it breaks this promise in a
/// release build, which leaves the check out (and returns zeros when every
/// division by `bands` sits inside the loop over the bands).
///
/// # Graded promises
///
/// - With a kernel that works pixel by pixel, the output equals one sequential
///   pass over the whole image, for any number of bands from `1` up, even more
///   than the number of rows; an image with no pixels (no rows, or rows of
///   width `0`) gives an empty output. The output returned is the buffer the
///   bands filled: each band's output slice is the part of it at that band's
///   rows (not a `Vec` of the band's own that the caller then copies into the
///   output, nor an output the caller copies before returning it). And nothing
///   else is kept: once it is dropped and the bands' threads have ended, no
///   byte `in_bands` allocated is left (not an output leaked with `Box::leak`
///   and returned as a copy); nor when one band's kernel (of 2) panics: once
///   `in_bands` has panicked and the bands' threads have ended, no byte is left
///   either (the output is freed as the panic unwinds, not handed to the bands
///   as a raw pointer, `Box::into_raw`, and taken back only after every band
///   returned). Trial: `ch05::in_bands::matches_the_sequential_result`.
/// - `in_bands` panics when `bands` is `0`, also for an image with no pixels.
///   Trial: `ch05::in_bands::zero_bands_panic`.
/// - `in_bands` panics when one band's kernel panics, instead of returning, and
///   each band's kernel runs once, on its own thread, that one included (a band
///   whose kernel panicked is not run again, on the caller or elsewhere); and
///   when no band's thread can start (on Linux, the trial leaves the process
///   too little memory for a thread's stack, with `RLIMIT_DATA`), it panics as
///   `Scope::spawn` does, with no kernel run on the calling thread (threads
///   with a smaller stack may still start, which is no leave to ask for one:
///   then every band must run on one, with room for a kernel's 512 KiB buffer
///   on its stack, which the trial's kernels use here too: a band's thread
///   started again with a 128 KiB stack when the default one cannot start
///   overflows it, and aborts the process). When only some bands' threads can
///   start (the trial leaves room for 2 new threads, and asks for 4 bands), the
///   bands that started do not wait for the others (no start barrier for every
///   band, which would hang): `in_bands` panics, or returns the whole output if
///   a band that ended gave its thread's stack to a later one, and runs no
///   kernel on the calling thread. Only that it panics is graded, not the
///   panic's message: std does not promise the text of `Scope::spawn`'s, and a
///   message of your own (`Builder::spawn_scoped(..).expect(..)`) is as good.
///   Trial: `ch05::in_bands::a_panicking_kernel_panics_the_caller`.
/// - The bands' kernels all run at the same time: a kernel may wait until every
///   band has started, also with more bands than rows (3 rows in 8 bands: the
///   empty bands' kernels run at the same time as the others, not after them),
///   and with 2,000 bands (no cap on the threads at once: waves of 128 or 1,024
///   bands, each joined before the next starts, hang; a cap above 2,000 is not
///   graded: a trial's 4 GiB maps no more stacks), each band's thread with as
///   large a stack as with 4 bands (leave the stack size alone, however many
///   bands there are: a stack budget shared among 2,000 bands, which leaves
///   each 1.5 MiB, fails). Trial:
///   `ch05::in_bands::processes_the_bands_at_once`.
/// - Each band is made of whole rows and comes with an output slice of the same
///   length, all zeros when its kernel starts (the output starts as `vec![0;
///   n]`: memory never written is not a valid `&mut [u8]`), also after a call
///   whose kernels wrote other bytes (no buffer kept from one call for the
///   next: `resize` keeps the bytes it has); band heights differ by at most one
///   row, the longer bands first (10 rows in 4 bands are 3, 3, 2 and 2 rows).
///   Trial: `ch05::in_bands::bands_are_balanced_whole_rows`.
/// - Each band runs on a new thread of its own: `bands` kernel calls on
///   `bands` different threads, none of them the caller's, also with one band,
///   with more bands than rows (3 rows in 8 bands, and in 100 bands: the
///   number of bands is never capped), and for an image with no pixels (its
///   bands are all empty, and their kernels still run). A kernel may use 512
///   KiB of its thread's stack (a thread Rust starts has 2 MiB unless told
///   otherwise: give a band's thread no smaller stack, or a kernel's buffer
///   overflows it and aborts the process). Meanwhile the calling thread only
///   waits, asleep until a band's end wakes it (in `join`, or at the end of
///   the scope): while two bands' kernels wait, it must not use a fifth of a
///   second of CPU time (spinning on `is_finished`), nor spin a moment before
///   it sleeps (2 ms of CPU time at most), also when cores are spare (the
///   trial makes `available_parallelism` say 64); it is seen in a wait with no
///   deadline, never in a sleep or a wait with a timeout (polling
///   `is_finished` with `thread::sleep` between looks). Trial:
///   `ch05::in_bands::runs_each_band_on_its_own_thread`.
pub fn in_bands<K>(image: &Image, bands: usize, kernel: K) -> Vec<u8>
where
    K: Fn(&[Rgb], &mut [u8]) + Sync,
{
    assert!(bands >= 1, "at least one band");
    let mut output = vec![0; image.width * image.height];
    thread::scope(|scope| {
        let (mut pixels, mut out) = (&image.pixels[..], &mut output[..]);
        for rows in band_heights(image.height, bands) {
            // Each band borrows its own input rows and, mutably, its own
            // output rows: disjoint slices, so no lock is needed.
            let (band_in, rest_in) = pixels.split_at(rows * image.width);
            let (band_out, rest_out) = out.split_at_mut(rows * image.width);
            (pixels, out) = (rest_in, rest_out);
            let kernel = &kernel;
            scope.spawn(move || kernel(band_in, band_out));
        }
    });
    output
}

/// A 3×3 box blur of a grey image: each output pixel is the average
/// (rounded down) of the input pixels around it, itself included, that lie
/// inside the image. Identical to a sequential blur.
///
/// Computed in exactly `bands` bands of whole rows, even when `bands` does not
/// divide the height, each on a new thread of its own (not the caller's), all
/// at once. Each band's thread calls `on_band(band)` once, for every `band` in
/// `0..bands`, before or after blurring its rows: the tests make it wait there
/// until every band's thread has called it. With more bands than rows, the
/// extra bands are empty, and their threads still call `on_band`; so do those
/// of an empty image, whose bands are all empty.
///
/// Each band's thread blurs its own rows, and only those, reading its
/// neighbours' rows as it needs them; the calling thread only waits, asleep
/// until a band's end wakes it (in `join`, or at the end of the scope). Graded:
/// that the calling thread does not do the blurring, nor any part of it pixel
/// by pixel, such as dividing sums the bands' threads made (its CPU time during
/// a large blur must stay under a fortieth of that of the bands' threads), and
/// that it waits with no deadline. Not graded, because no trial can see it:
/// exactly which thread computes which pixel, and how the work is shared among
/// the bands' threads. The output is the only result, and the input is only
/// read, so a thread that blurs the whole image and keeps its own rows, threads
/// that take rows one by one from a shared counter, or a caller that blurs each
/// band's edge rows again after the threads have blurred them too (a small
/// share of the work; a caller that blurs the image's border instead of the
/// threads is graded, below), give the same output and call `on_band` the same
/// way; only timing the work (a wall-clock bound) could tell them apart; so do
/// bands cut at any pixel rather than at whole rows (each pixel working out its
/// row and column from its index), bands that are not one block of rows (row
/// `y` dealt to band `y % bands`), bands of columns rather than rows (strips
/// written through a shared raw pointer), and threads that take turns at one
/// lock around the whole output while they blur (so the bands are blurred one
/// at a time, as under a GIL, once every `on_band` has been called). They break
/// this contract all the same; so does a caller that counts finished bands with
/// a `Relaxed` counter and copies the output as soon as the count is full,
/// rather than join: no band's writes are then ordered before its read (a data
/// race, which a CPU with weak memory ordering may show as stale bytes), but
/// the trials run on x86, which shows every write in order, and the course's
/// loom models see only code written with loom's own types.
///
/// Nor is it graded that the output starts as `vec![0; n]`: an output made
/// with `Vec::with_capacity(n)` and `set_len(n)` hands the bands `&mut
/// [u8]` slices over memory never written, which is undefined behaviour
/// (memory never written is not a valid `&mut [u8]`, as `in_bands` says)
/// even though every byte is written before `blur` returns. In `in_bands`
/// each kernel is given its slice, and a trial checks it is all zeros; but
/// `blur` shows a trial nothing of its output before it returns it, by
/// which time every byte has been written, so only a tool such as Miri
/// could see it. It breaks this contract all the same.
/// Nor are `i32` coordinates graded (use `usize`): they overflow above 2^31
/// pixels, but such an image and its output fill a trial's 4 GiB, and take
/// minutes to blur.
///
/// Nor is it graded that the number a band's thread passes to `on_band` is
/// that band's own, the band whose rows the thread blurs. Threads that
/// instead pass the next number from a shared counter (a ticket, in the
/// order they start) still call `on_band` once for every number in
/// `0..bands`, and they pass another band's number only when a later
/// band's thread starts before an earlier one; no trial can force that
/// order, since nothing of the trial runs on a band's thread before it
/// calls `on_band`, so catching it would take luck. It breaks this
/// contract all the same.
///
/// # Panics
///
/// If `bands` is 0: an image cannot be split into no bands. If `on_band`
/// panics, `blur` panics too, as `thread::scope` does when a thread it
/// joins panicked, rather than catch the panic and carry on. Check `bands`
/// with `assert!`: only a debug build is graded, because the trials run
/// in the debug profile, so a `debug_assert!(bands > 0)` passes them, yet
/// it breaks this promise in a release build, which leaves the check out.
///
/// # Graded promises
///
/// - The result equals the sequential blur, for any image and any number of
///   bands from `1` up, even more than the number of rows; images one pixel
///   wide or one row high included (count the neighbours inside the image, not
///   by a formula for the edges), and rows of any width (1,100,000 pixels: no
///   buffer of a fixed size). Trial:
///   `ch05::blur::matches_the_sequential_blur`.
/// - `blur` panics when `bands` is `0`, also for an empty image (no pixels, of
///   any width, `0` included). Trial: `ch05::blur::zero_bands_panic`.
/// - The bands are blurred at the same time: `on_band` may wait until every
///   band's thread has called it, with 3 bands, 40 and 2,000 (every band's
///   thread starts at once, not a batch of them at a time; a cap above 2,000
///   is not graded: a trial's 4 GiB maps no more stacks). Trial:
///   `ch05::blur::blurs_the_bands_at_once`.
/// - `on_band(band)` is called exactly once for each `band` in `0..bands`, each
///   time on a different new thread (never the caller's), also with one band,
///   when `bands` does not divide the height (9 rows in 4 bands), when there
///   are more bands than rows (3 rows in 5 bands), and for an empty image (no
///   rows, or a width of `0`); and when no band's thread can start (on Linux,
///   the trial leaves the process too little memory for a thread's stack, with
///   `RLIMIT_DATA`), `blur` panics as `Scope::spawn` does, with no band blurred
///   and no `on_band` called on the calling thread (threads with a smaller
///   stack may still start, which is no leave to ask for one: then every band
///   must run on one). When only some bands' threads can start (the trial
///   leaves room for 2 new threads, and asks for 4 bands), the bands that
///   started do not wait for the others (no start barrier for every band, which
///   would hang): `blur` panics, or returns the whole blur if a band that ended
///   gave its thread's stack to a later one, and calls no `on_band` on the
///   calling thread. If `on_band` panics for one band (of 3), `blur` panics
///   instead of returning, and `on_band` is still called once for each band,
///   also by bands that start after the panic (no band skips its work: the
///   bands started after the panic still blur their rows, though `blur` is
///   bound to panic and no one sees them; their threads' CPU time shows it).
///   Meanwhile the calling thread only waits, asleep until a band's end wakes
///   it: while two bands' `on_band` wait, it must not use a fifth of a second
///   of CPU time (spinning on `is_finished`), nor spin a moment before it
///   sleeps (2 ms of CPU time at most), also when cores are spare (the trial
///   makes `available_parallelism` say 64); it is seen in a wait with no
///   deadline, never in a sleep or a wait with a timeout (polling `is_finished`
///   with `thread::sleep` between looks). And the bands' threads do the
///   blurring, every pixel of their rows finished: blurring an 800x800 image in
///   4 bands, the calling thread uses less than a fortieth of the CPU time the
///   bands' threads use together, in the best of 3 runs (CPU time as the kernel
///   counts it for each thread, not a clock; the blur is hundreds of times the
///   work of starting a thread), and so for an image 2 pixels wide and 320,000
///   rows high, every pixel of it on the border (the threads blur the image's
///   border rows and columns too, not the caller), and less than a quarter for
///   a 256x256 image (there is no size below which the caller blurs the image
///   itself); so threads that only call `on_band`, and a caller that then blurs
///   the whole image, fail; so does a caller that makes a pass over every pixel
///   after the threads, dividing the sums and counts they made (a tenth of
///   their time or more). The bands' threads blur into the output itself:
///   during that blur, `blur` never holds more than the output and 64 KiB
///   besides (a `Vec` per band that the calling thread then copies into the
///   output holds the image twice, and has the caller do work). Trials:
///   `ch05::blur::calls_on_band_for_every_band`,
///   `ch05::blur::blurs_the_bands_at_once`.
pub fn blur<B>(gray: &[u8], width: usize, bands: usize, on_band: B) -> Vec<u8>
where
    B: Fn(usize) + Sync,
{
    assert!(bands >= 1, "at least one band");
    let height = gray.len().checked_div(width).unwrap_or(0);
    let mut output = vec![0; gray.len()];
    thread::scope(|scope| {
        let mut out = &mut output[..];
        let mut first_row = 0;
        for (band, rows) in band_heights(height, bands).enumerate() {
            let (band_out, rest) = out.split_at_mut(rows * width);
            out = rest;
            let on_band = &on_band;
            // Every band reads the whole input (its edge rows need the
            // neighbours' rows), which is shared read-only: no lock.
            scope.spawn(move || {
                // First, so that a test can hold every band at its start.
                on_band(band);
                for (i, pixel) in band_out.iter_mut().enumerate() {
                    let (x, y) = (i % width, first_row + i / width);
                    *pixel = average_around(gray, width, height, x, y);
                }
            });
            first_row += rows;
        }
    });
    output
}

fn average_around(
    gray: &[u8],
    width: usize,
    height: usize,
    x: usize,
    y: usize,
) -> u8 {
    let (mut sum, mut count) = (0u32, 0u32);
    for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
        for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
            sum += u32::from(gray[ny * width + nx]);
            count += 1;
        }
    }
    (sum / count) as u8
}

/// A map from names to counters, split into shards with a lock each, so
/// that threads working on keys in different shards never wait for each
/// other. The map owns its keys: dropping it frees them.
///
/// # Graded promises
///
/// - Updates from many threads at once are all counted: 8 threads each adding
///   one 50 times to each of the same 20 keys leave every counter at `400`;
///   and two threads' first updates of one new key both count, also when the
///   second runs while the first is about to copy the key (the trial pauses
///   the first at its first allocation of the key's length or more: a key
///   copied with the shard's lock let go, then inserted with
///   `insert(key, 0)`, overwrites the second's count).
///   Trial: `ch05::sharded_map::counts_from_many_threads`.
/// - Threads can each be inside `update` at the same time, for keys in
///   different shards: one thread for a key of each shard (as `shard_of`
///   names it), all at once, with 4 shards and with 3 and 5 (`update` and
///   `get` lock the shard `shard_of` gives, not another). Trial:
///   `ch05::sharded_map::holds_two_shards_at_once`.
/// - Dropping a map frees everything it allocated, its keys included: after a
///   map of 200 keys is dropped, no byte it allocated is left. While it
///   lives, it holds a copy of each key: 20 keys of 1,000 bytes take 20,000
///   bytes at least (a map that keeps only each key's hash would give two
///   keys with the same hash one counter). Reading stores nothing: `get` and
///   `shard_of` of 1,000 keys never updated, and of keys present, leave no
///   byte allocated (no memo of `shard_of`'s answers, which would grow with
///   every key ever asked about, and put every shard behind its lock).
///   Trial: `ch05::sharded_map::frees_its_keys`.
#[derive(Debug)]
pub struct ShardedMap {
    shards: Vec<Mutex<HashMap<String, u64>>>,
}

impl ShardedMap {
    /// An empty map with `shards` shards; a map needs at least one, so
    /// `new(0)` makes a map of one shard.
    ///
    /// # Graded promises
    ///
    /// - `new(0)` makes a working map of one shard: `shard_of` gives `0`, and
    ///   `update` and `get` work as with more shards. Trial:
    ///   `ch05::sharded_map::zero_shards_make_one`.
    pub fn new(shards: usize) -> Self {
        ShardedMap {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard that holds `key`: always the same for the same key, from
    /// the first call on, on every thread. Not graded: a `shard_of` that
    /// depends on a hash seed made lazily on first use, shared by all maps
    /// (a load, then a store), may give one key two shards when threads
    /// call it first at the same moment, and lose their updates; but that
    /// window is a few instructions in the process's first call, which no
    /// trial can force from outside `shard_of`. Hash the key alone
    /// (`DefaultHasher::new()` has fixed keys), or seed each map in `new`.
    /// Nor is a hash scaled in `f64` (`int(h / MAX * n)`), which gives `n`
    /// for one key in 2^54: no trial can find one. Take it modulo `n`.
    ///
    /// # Graded promises
    ///
    /// - `shard_of(key)` is in `0..shards` and the same every time for the same
    ///   key, also once the map has moved (into a `Box`: a key's shard does not
    ///   depend on the map's address, and `get` still finds every counter), and
    ///   keys spread over the shards (20 different keys do not all land in one
    ///   of 8 shards), over every shard asked for, also when they all end in
    ///   the same byte: 10,000 keys ending in `'/'` reach at least 500 of 1,000
    ///   shards, and half of 992, 999 and 1,023 shards too (hash the whole key,
    ///   not its last byte, into a hash of more than 8 bits, taken modulo `n`
    ///   once, at the end: a hash kept modulo `n` at every step, `h * 31 +
    ///   byte`, keeps only the last byte's remainder when `n` is a multiple of
    ///   31; and make as many shards as asked for, with no cap: 1,100,000 and
    ///   above of 2,200,000 too), and so do keys of one length that differ only
    ///   in their middle (URLs, keys of 970, 4,000, 20,000 and 150,000 bytes:
    ///   hash every byte, not a key's length and some bytes at each end, nor
    ///   only its first 16 or 64 KiB, however long the key). It stays in
    ///   `0..shards` for shard counts that are not powers of two (3 and 5).
    ///   Keys may be of any length: `shard_of`, `update` and `get` work for
    ///   URLs and for a key of 1,000 bytes (a hash must not overflow), and two
    ///   keys of 1,000 bytes, or of 100,000, that differ only in their last
    ///   byte are two keys, each with its own counter (the map keeps and hashes
    ///   every key whole, however long); so are two URLs that differ only in
    ///   case, only in a trailing `'/'`, only in a fragment (`#top`), only in a
    ///   query string (`"/tab/3?ref=mail"` and `"/tab/3"`), or only in spaces
    ///   or a line end around them (`" /tab/3"`, `"/tab/3\n"`): keys are taken
    ///   as they are, not trimmed; and the empty key `""` is a key like any
    ///   other, stored and counted (not skipped as nameless). Trial:
    ///   `ch05::sharded_map::counts_from_many_threads`.
    pub fn shard_of(&self, key: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % self.shards.len() as u64) as usize
    }

    /// Runs `f` on the counter of `key` (0 if it was absent), holding the
    /// lock of `key`'s shard only, and returns what `f` returns. The key
    /// stays in the map from then on, whatever its counter, 0 included.
    ///
    /// # Panics
    ///
    /// If `f` panics. The map stays usable: later calls, on any key, that
    /// one included, work as before, and its counter keeps whatever `f` had
    /// written to it.
    ///
    /// # Graded promises
    ///
    /// - `update` returns what `f` returns; the counter of a key never updated
    ///   starts at `0`. Trial: `ch05::sharded_map::zero_shards_make_one`.
    /// - When `f` panics, `update` panics, and afterwards `update` and `get` on
    ///   the same shard, for that key and for others, work as before, on any
    ///   thread, also when the first call after the panic is a `get` (the
    ///   shard's lock is then still poisoned: `get` takes the poisoned lock's
    ///   guard too, as `update` does, rather than read the shard as empty); the
    ///   counter keeps what `f` wrote before it panicked, also when the key was
    ///   new (it is in the map from then on, with what `f` wrote). Trial:
    ///   `ch05::sharded_map::survives_a_panicking_f`.
    pub fn update<R>(&self, key: &str, f: impl FnOnce(&mut u64) -> R) -> R {
        let mut shard = self.shards[self.shard_of(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // `entry` wants an owned key, so this allocates a `String` on every
        // call, under the lock, even for a key already there. Kept simple
        // here; a hot path would try `shard.get_mut(key)` first and
        // allocate only for a new key.
        f(shard.entry(key.to_string()).or_insert(0))
    }

    /// The counter of `key`, if it was ever updated. Holds the lock of
    /// `key`'s shard only: it never waits for another shard, but it does
    /// wait for its own, as `update` does.
    ///
    /// # Graded promises
    ///
    /// - While another thread is inside `update` on a key of one shard, `get`
    ///   of keys in the other shards, present or absent, returns without
    ///   waiting for it; `get` of a key in that same shard waits for the
    ///   shard's lock (asleep, as `Mutex::lock` waits), returning only once
    ///   that `update` has, also when the updated key was already in the map
    ///   (an `update` that then takes only a shared lock of its shard, as
    ///   `RwLock::read` with a lock per counter, lets it run past), and then
    ///   gives the key's counter: a busy shard does not make a key read as
    ///   `None`.
    ///   Trial: `ch05::sharded_map::get_waits_only_on_its_shard`.
    /// - `get` gives `None` for a key never updated, else its counter, also
    ///   when that counter is `0` (a key updated to `0` is still there).
    ///   Trials:
    ///   `ch05::sharded_map::counts_from_many_threads`,
    ///   `ch05::sharded_map::zero_shards_make_one`.
    pub fn get(&self, key: &str) -> Option<u64> {
        let shard = self.shards[self.shard_of(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.get(key).copied()
    }
}

/// Fetches every URL with `fetch`, each on a thread of its own, all at once
/// (I/O-bound work: the threads mostly wait), and returns the responses in
/// the order of `urls`. Every entry of `urls` is one request on a new
/// thread, however many there are, one included: a URL listed twice is
/// fetched twice, a blank or empty entry is fetched like any other, and the
/// calling thread only waits. If a `fetch` panics, `fetch_all` panics
/// too; so it does if a request's thread cannot start (no memory or threads
/// left), rather than fetch that request on the calling thread. (It
/// panics only once every request has ended, but that needs no trial:
/// `fetch` and `urls` are borrowed, so the threads must be scoped, and a
/// scope cannot end, by return or by panic, before its threads.)
///
/// Every request starts at once, with no pause between them (to be
/// "polite" to a server). Not graded, because a pause only delays the
/// requests, each still starting before any waits for another: only a
/// wall-clock bound could see it. Nor is it graded that `fetch_all` waits
/// for every request however long it takes: a deadline after which the
/// requests still running are given up (answered with `""`, say) breaks
/// this contract, but a trial would have to wait longer than the deadline,
/// whatever it is, to see it. Nor is it graded how each response reaches
/// the caller, as long as its writing happens-before the caller reads it
/// (`join` gives that, as a channel or a `Release` store read with
/// `Acquire` would): requests that write their responses through a shared
/// pointer and count themselves done on a `Relaxed` counter, which the
/// caller waits on before it reads them, break this contract (a data race:
/// undefined behaviour), but x86 orders those writes anyway, so only a
/// weak-memory CPU or a race detector (Miri, ThreadSanitizer) could show
/// it, and no trial here can.
///
/// There is no cap on the requests, and a large fan-out gets the same stacks
/// as a small one; but three ways to break that are not graded, because each
/// trial may map 4 GiB (`RLIMIT_DATA`), about 2,000 stacks of 2 MiB, so no
/// trial can start many more requests at once: a cap above 2,000 requests in
/// flight (a window of 2,048, say; but a cap that grows with the cores is
/// graded: the trial makes `available_parallelism` say one core, so 1,024
/// a core hangs), a `fetch_all` that panics above 4,096
/// requests, and one that shares a stack budget among the requests (4 GiB in
/// all, which leaves a request less than the 512 KiB a `fetch` may use only
/// above 8,192 requests). They break this contract all the same.
///
/// # Graded promises
///
/// - `fetch_all` returns one response per entry of `urls`, in the order of
///   `urls`; an empty `urls` gives an empty `Vec`. Trials:
///   `ch05::fetch_all::returns_responses_in_order`,
///   `ch05::fetch_all::fetches_every_url_on_its_own_thread`.
/// - Every request runs at the same time as all the others, however many there
///   are (2,000: more than the cores, and more than any cap on the requests in
///   flight, such as a window of 128 that joins the oldest before it starts
///   the next, or a window that grows with the cores, 1,024 a core: the trial
///   makes `available_parallelism` say one): a `fetch` may wait until every
///   request has started. A `fetch`
///   may use 512 KiB of its thread's stack there too (one in every 100 does):
///   a large fan-out is no reason to give the requests' threads smaller stacks
///   (each is as large as with 4 requests: 1 MiB above 1,024 fails, and 64
///   KiB aborts). Trial: `ch05::fetch_all::starts_every_request_at_once`.
/// - Each entry is fetched once, on a new thread of its own, never the
///   caller's, however many entries there are (1,000, or just one); a URL
///   listed twice is fetched twice, blank entries (`""`, `"  "`) are fetched
///   too, and so is an entry with a NUL character in it (`"/a\0b"`: it is only
///   passed to `fetch`, not made a thread's name), each passed to `fetch`
///   exactly as it is (`"/Tab/2"` is not lowercased: a URL's path is
///   case-sensitive, and `"/tab/2"` is another page); each entry gets the
///   response of its own request, exactly as `fetch` returned it (not trimmed:
///   a response may start with spaces and end with `"\r\n"`; and an empty
///   response is returned empty, not fetched again); and a `fetch` may use 512
///   KiB of its thread's stack (a thread Rust starts has 2 MiB unless told
///   otherwise). Meanwhile the calling thread only waits, asleep until a
///   request's end wakes it (in `join`, or at the end of the scope): while two
///   requests wait, it must not use a fifth of a second of CPU time (spinning
///   on `is_finished`), nor spin a moment before it sleeps (2 ms of CPU time
///   at most, also when the trial makes `available_parallelism` say 64 cores),
///   and it is seen blocked in a wait with no deadline, never in a sleep or a
///   wait with a timeout (polling `is_finished` with `thread::sleep` between
///   looks). Trial: `ch05::fetch_all::fetches_every_url_on_its_own_thread`.
/// - If a `fetch` panics, `fetch_all` panics instead of returning, and each
///   entry is still fetched once, that one included (a failed request is not
///   tried again); and when no request's thread can start (on Linux, the trial
///   leaves the process too little memory for a thread's stack, with
///   `RLIMIT_DATA`), it panics as `Scope::spawn` does, with no request fetched
///   on the calling thread (threads with a smaller stack may still start, which
///   is no leave to ask for one: then every request must run on one). When only
///   some requests' threads can start (the trial leaves room for 2 new threads,
///   and asks for 4 requests), the requests that started do not wait for the
///   others (no start barrier for every request, which would hang): `fetch_all`
///   panics, or returns every response if a request that ended gave its
///   thread's stack to a later one, and fetches nothing on the calling thread.
///   Only that it panics is graded, not the panic's message: std does not
///   promise the text of `Scope::spawn`'s, and a message of your own
///   (`Builder::spawn_scoped(..).expect(..)`) is as good. Trial:
///   `ch05::fetch_all::a_failed_request_panics_the_caller`.
pub fn fetch_all<F>(urls: &[&str], fetch: F) -> Vec<String>
where
    F: Fn(&str) -> String + Sync,
{
    thread::scope(|scope| {
        let fetch = &fetch;
        let handles: Vec<_> = urls
            .iter()
            .map(|&url| scope.spawn(move || fetch(url)))
            .collect();
        // A request that panicked panics the caller here, as the failure it
        // is; the scope still waits for the other requests before it ends.
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a request panicked"))
            .collect()
    })
}
