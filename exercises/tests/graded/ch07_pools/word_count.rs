//! The word count: the mappers' counts equal the sequential count, the
//! mappers run at the same time, and every mapper runs, text or not.

use std::collections::HashMap;
use std::sync::{Barrier, Mutex};

use exercises::ch07_pools::{word_count, words};

/// Some real-looking text, in paragraphs.
const TEXTS: [&str; 7] = [
    "The GIL lets one thread run Python bytecode at a time. Threads still \
     help when they wait: for the disk, for the network, for a child.",
    "A process has an interpreter of its own, and so a GIL of its own. \
     That is why multiprocessing can use every core, at the price of \
     pickling every argument and every result.",
    "multiprocessing.Pool starts its workers once and keeps them: starting \
     a process costs far more than sending it a job.",
    "Pool.map hands the jobs out to the workers and gives the results back \
     in the order of the jobs, whatever order they finish in.",
    "In Rust, threads run at once without a GIL; a pool of threads saves \
     only the cost of starting them, and bounds how many run at once.",
    "The countdown, once more: while n > 0, n -= 1. Split it in two, \
     count each half in a process of its own, and it takes half the time.",
    "Don't share what you can send; don't send what you can share. \
     Channels carry the jobs in, and the results out.",
];

fn sequential_count(texts: &[&str]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in texts.iter().flat_map(|text| words(text)) {
        *counts.entry(word).or_insert(0) += 1;
    }
    counts
}

/// For several numbers of mappers, most of which share the texts out
/// unevenly, the counts equal the sequential count.
pub(super) fn matches_the_sequential_count() {
    let expected = sequential_count(&TEXTS);
    for mappers in [1, 2, 3, 4, 7] {
        assert_eq!(
            word_count(&TEXTS, mappers, |_| {}),
            expected,
            "{} texts, {mappers} mappers: the counts should equal those of \
             one thread counting every text (every text counted once, and \
             the mappers' counts added, not overwritten)",
            TEXTS.len()
        );
    }
}

/// Every mapper waits at a barrier in `on_map` until all have started.
pub(super) fn maps_the_texts_at_once() {
    const MAPPERS: usize = 5;
    let barrier = Barrier::new(MAPPERS);
    let counts = word_count(&TEXTS, MAPPERS, |_| {
        barrier.wait(); // Every mapper has started.
    });
    assert_eq!(counts, sequential_count(&TEXTS));
}

/// With more mappers than texts, every mapper still runs (some count
/// nothing), and no texts at all count no words.
pub(super) fn handles_more_mappers_than_texts() {
    for (texts, mappers) in [(&TEXTS[..2], 5), (&TEXTS[..0], 3)] {
        let called = Mutex::new(Vec::new());
        let counts = word_count(texts, mappers, |mapper| {
            called.lock().unwrap().push(mapper);
        });
        assert_eq!(
            counts,
            sequential_count(texts),
            "{} texts, {mappers} mappers",
            texts.len()
        );
        let mut called = called.into_inner().unwrap();
        called.sort();
        assert_eq!(
            called,
            (0..mappers).collect::<Vec<_>>(),
            "{} texts, {mappers} mappers: on_map should be called once by \
             each mapper, 0 to {}, even by those with no text",
            texts.len(),
            mappers - 1
        );
    }
}
