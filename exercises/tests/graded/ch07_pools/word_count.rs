//! The word count: the mappers' counts equal the sequential count, the
//! mappers run, and count, at the same time, every mapper runs, text or
//! not, the texts, blank ones too, are shared out evenly among mapper
//! threads, and each mapper calls `on_map` before it counts. `WORDS_WATCH`
//! tells these trials which thread counts which text, and when.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, LazyLock, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::alloc;
use course::grader::task::{self, Tid, Watched};
use exercises::ch07_pools::{WORDS_WATCH, word_count, words};

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
/// unevenly, the counts equal the sequential count; and so they do for
/// [`MANY_TEXTS`] copies of the texts, whose words are far more than a
/// channel with a buffer (of a thousand words, say) holds. And the calling
/// thread adds up the counts that mappers have sent while another mapper
/// still runs (see [`adds_up_the_counts_that_arrived`]).
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
    let many: Vec<&str> =
        TEXTS.iter().copied().cycle().take(MANY_TEXTS).collect();
    assert_eq!(
        word_count(&many, 4, |_| {}),
        sequential_count(&many),
        "{MANY_TEXTS} texts, 4 mappers: the counts should equal those of one \
         thread counting every text"
    );
    adds_up_the_counts_that_arrived();
    counts_a_word_more_than_a_u16_holds();
}

/// How often the one word of [`counts_a_word_more_than_a_u16_holds`]'s
/// text occurs: more than a `u16` holds (65 535).
const REPEATS: usize = 70_000;

/// One text of one word, [`REPEATS`] times over, on one mapper of two (the
/// other has no text): its count is [`REPEATS`], however it travels from
/// the mapper to the calling thread.
fn counts_a_word_more_than_a_u16_holds() {
    let text = "spam ".repeat(REPEATS);
    let counts = std::panic::catch_unwind(|| word_count(&[&text], 2, |_| {}));
    let spam = counts.as_ref().map(|counts| counts.get("spam").copied());
    assert!(
        matches!(spam, Ok(Some(REPEATS))),
        "a text that holds the one word `spam` {REPEATS} times, counted by \
         one of two mappers, gave {}: count with a type that holds any \
         count (usize), in the mappers too (a u16 holds no more than 65 \
         535, and a debug build panics when it overflows)",
        match spam {
            Ok(Some(count)) => format!("the count {count}"),
            Ok(None) => "no count".to_string(),
            Err(_) => "a panic".to_string(),
        }
    );
}

/// Two mappers, one of which counts a text of [`DISTINCT_WORDS`] different
/// words (no word in two places, so each counts once) and then a short
/// text, and the other another short text: a mapper that sends its counts
/// in parts as its map grows (after a word, or after a text) must have
/// every part added up, so the calling thread receives until the channel
/// closes, not one message per mapper. (A trial of its own, with
/// the default deadline: counting that many words takes a debug build a
/// second or more on a busy machine.)
pub(super) fn adds_up_every_part_of_a_mapper_s_counts() {
    let distinct: String = (0..DISTINCT_WORDS)
        .map(|word| format!("w{word} "))
        .collect();
    // `split(3, 2)` is `[2, 1]`: the first mapper counts the first two.
    let texts = [distinct.as_str(), "one fish", "two fish"];
    let counted = word_count(&texts, 2, |_| {});
    let once = counted.values().filter(|&&count| count == 1).count();
    let fish = counted.get("fish").copied().unwrap_or(0);
    assert!(
        counted.len() == DISTINCT_WORDS + 3
            && once == counted.len() - 1
            && fish == 2,
        "2 mappers, one with a text of {DISTINCT_WORDS} different words and \
         `one fish`, the other with `two fish`: {} different words were \
         counted, {once} of them once (of {} words, all but `fish` once), \
         and `fish` {fish} times (a mapper that sends its counts in several \
         parts needs every part added up: the calling thread receives until \
         the channel closes, not one message per mapper)",
        counted.len(),
        DISTINCT_WORDS + 3
    );
}

/// How many different words the text of one mapper holds in
/// [`adds_up_every_part_of_a_mapper_s_counts`]: more than a map of 2^17
/// (131 072) or of a hundred thousand words holds before a mapper that
/// sends its counts in parts sends one. (A mapper that sends one only
/// past more words than that is just as wrong, but counting more words
/// would cost every grading of this trial seconds.)
const DISTINCT_WORDS: usize = (1 << 17) + 1;

/// How many texts the last check of [`matches_the_sequential_count`]
/// counts: some fifty thousand words.
const MANY_TEXTS: usize = 2_100;

/// The length of the one word of the big text that
/// [`adds_up_the_counts_that_arrived`] counts twice: far more bytes than
/// anything else that trial allocates.
const BIG_WORD: usize = 4 << 20;

/// Three mappers: mappers 0 and 2 each count the same big text of one
/// word, send their counts and end, while mapper 1 is held in `on_map`
/// until the calling thread has added up what they sent. It shows in the
/// memory this process uses: each of the two mappers' counts holds its own
/// copy of the big word, and adding the second to the first keeps one copy
/// and frees the other. A calling thread that reads no counts until every
/// mapper has ended never frees it, and holds mapper 1 back for good.
fn adds_up_the_counts_that_arrived() {
    assert!(alloc::counting(), "the graded binary counts live bytes");
    let big = "b".repeat(BIG_WORD);
    let texts = [big.as_str(), "one fish", big.as_str()];
    let expected = sequential_count(&texts);
    // Mappers 0 and 2, once they have called `on_map`.
    let senders = Mutex::new(Vec::new());
    let before = alloc::live_bytes();
    let counts = word_count(&texts, 3, |mapper| {
        if mapper != 1 {
            senders.lock().unwrap().push(task::me().tid);
            return;
        }
        // A mapper's thread ends after it has sent its counts.
        loop {
            let senders = senders.lock().unwrap().clone();
            let running = thread_ids();
            if senders.len() == 2
                && senders.iter().all(|tid| !running.contains(tid))
            {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        // Both copies of the big word were made; until one is freed, the
        // calling thread has not added the two counts up.
        while alloc::live_bytes() - before > (BIG_WORD + BIG_WORD / 2) as isize
        {
            thread::sleep(Duration::from_millis(1));
        }
    });
    assert!(
        counts == expected,
        "3 texts, 3 mappers, the first and last text the same one word of \
         {BIG_WORD} letters: the counts should equal those of one thread \
         counting every text"
    );
}

/// Every mapper waits at a barrier in `on_map` until all have started.
/// Then again, with one text each, and also in `words` until all are
/// counting: a mapper that holds a lock which the others need while it
/// counts makes them wait at that lock, and the barrier never opens.
pub(super) fn maps_the_texts_at_once() {
    const MAPPERS: usize = 5;
    let barrier = Barrier::new(MAPPERS);
    let counts = word_count(&TEXTS, MAPPERS, |_| {
        barrier.wait(); // Every mapper has started.
    });
    assert_eq!(counts, sequential_count(&TEXTS));

    static COUNTING: LazyLock<Barrier> =
        LazyLock::new(|| Barrier::new(MAPPERS));
    let texts = &TEXTS[..MAPPERS];
    // Before the watch is set: the sequential count calls `words` too.
    let expected = sequential_count(texts);
    let _ = WORDS_WATCH.set(|_| {
        COUNTING.wait(); // Every mapper is counting its text.
    });
    let counts = word_count(texts, MAPPERS, |_| {
        barrier.wait(); // Every mapper has started.
    });
    assert_eq!(counts, expected);
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
    passes_a_mapper_s_panic_on();
}

/// A mapper that panics (here in `on_map`) makes `word_count` panic too,
/// rather than return counts that silently lack that mapper's texts.
fn passes_a_mapper_s_panic_on() {
    let counted = std::panic::catch_unwind(|| {
        word_count(&TEXTS[..4], 4, |mapper| {
            assert_ne!(mapper, 1, "mapper 1 panics on purpose (expected)");
        })
    });
    assert!(
        counted.is_err(),
        "mapper 1 panicked, and word_count returned counts without its \
         texts: a mapper's panic must make word_count panic too (a scope \
         passes on the panic of a thread nobody joined; a thread you join \
         yourself hands it back as an Err, which must not be ignored)"
    );
}

/// What a thread did, as the trials' `on_map` and `WORDS_WATCH` see it.
#[derive(Debug)]
enum Event {
    /// The thread called `on_map` with this mapper number.
    OnMap(usize),
    /// The thread called `words` on this text.
    Words(String),
}

/// Every thread's events, in the one order in which they happened.
static EVENTS: Mutex<Vec<(ThreadId, Event)>> = Mutex::new(Vec::new());

fn record(event: Event) {
    EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((thread::current().id(), event));
}

/// Runs `word_count` with an `on_map` and a `words` watch that record
/// what each thread does; checks the counts, and that the calling thread
/// neither mapped nor counted, and returns the events.
fn watched_word_count(
    texts: &[&str],
    mappers: usize,
) -> Vec<(ThreadId, Event)> {
    let expected = sequential_count(texts);
    let _ = WORDS_WATCH.set(|text| record(Event::Words(text.to_string())));
    EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    let counts =
        word_count(texts, mappers, |mapper| record(Event::OnMap(mapper)));
    let events = std::mem::take(
        &mut *EVENTS.lock().unwrap_or_else(PoisonError::into_inner),
    );
    assert_eq!(
        counts,
        expected,
        "{} texts, {mappers} mappers: the counts should equal the \
         sequential count",
        texts.len()
    );
    let caller = thread::current().id();
    assert!(
        events.iter().all(|(thread, _)| *thread != caller),
        "{} texts, {mappers} mappers: the calling thread called on_map or \
         words itself; every text is counted on a mapper thread, even when \
         there is only one mapper, and the calling thread only adds up",
        texts.len()
    );
    events
}

/// How many texts each mapper counted, by mapper number; panics if a text
/// was counted on a thread that did not call `on_map`, or not once.
fn texts_per_mapper(
    texts: &[&str],
    mappers: usize,
    events: &[(ThreadId, Event)],
) -> HashMap<usize, usize> {
    let mut mapper_of = HashMap::new();
    let mut per_mapper = HashMap::new();
    for (thread, event) in events {
        if let Event::OnMap(mapper) = event {
            mapper_of.insert(*thread, *mapper);
            per_mapper.insert(*mapper, 0);
        }
    }
    // A text that occurs more than once is counted as often as it occurs,
    // all at the index of its first copy.
    let mut times_counted = vec![0; texts.len()];
    let copies: Vec<usize> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            if texts[..index].contains(text) {
                0
            } else {
                texts.iter().filter(|other| *other == text).count()
            }
        })
        .collect();
    for (thread, event) in events {
        let Event::Words(text) = event else { continue };
        let Some(index) = texts.iter().position(|t| t == text) else {
            continue;
        };
        times_counted[index] += 1;
        let mapper = mapper_of.get(thread).unwrap_or_else(|| {
            panic!(
                "{} texts, {mappers} mappers: text {index} was counted on a \
                 thread that never called on_map; each mapper counts its \
                 own texts, on its own thread, with one call of \
                 words(text) per text",
                texts.len()
            )
        });
        *per_mapper.get_mut(mapper).unwrap() += 1;
    }
    assert_eq!(
        times_counted,
        copies,
        "{} texts, {mappers} mappers: how often words(text) was called on \
         each text (on the first of equal texts, for all of them), by the \
         mappers; each mapper calls it once on each of its texts, on a text \
         equal to another too (counting equal texts once and weighing their \
         words is not what was asked)",
        texts.len()
    );
    per_mapper
}

/// The mappers get balanced shares of the texts, blank ones included, as
/// `split` shares a count out: mapper `i`, the one that calls `on_map(i)`,
/// counts as many texts as `split`'s share `i`, so their numbers of texts
/// differ by at most one, the larger shares first, and `0` mappers count as
/// one. One mapper, or `0`, still counts on
/// a thread of its own.
pub(super) fn shares_the_texts_out_evenly() {
    // Blank texts have no words, but are texts all the same; each differs
    // from the others, so that a text's events tell which one it is.
    let with_blanks = [TEXTS[0], "", TEXTS[1], "  \n", TEXTS[2], "\t"];
    // Equal texts are texts all the same, each counted with a call of its
    // own, wherever they are.
    let with_copies = [TEXTS[0], TEXTS[1], TEXTS[0], "", TEXTS[0], ""];
    for (texts, mappers) in [
        (&TEXTS[..], 4),
        (&TEXTS[..2], 5),
        (&TEXTS[..], 3),
        (&TEXTS[..], 0),
        (&TEXTS[..], 1),
        (&with_blanks[..], 4),
        (&with_copies[..], 2),
    ] {
        let events = watched_word_count(texts, mappers);
        let per_mapper = texts_per_mapper(texts, mappers, &events);
        let mut got: Vec<(usize, usize)> = per_mapper.into_iter().collect();
        got.sort_unstable();
        let got: Vec<usize> = got.into_iter().map(|(_, n)| n).collect();
        // Computed here, not with the learner's `split`, which is another
        // exercise's.
        let parts = mappers.max(1);
        let (base, extra) = (texts.len() / parts, texts.len() % parts);
        let expected: Vec<usize> = (0..parts)
            .map(|part| base + usize::from(part < extra))
            .collect();
        assert_eq!(
            got,
            expected,
            "{} texts, {mappers} mappers: the numbers of texts that mappers \
             0, 1, 2... counted (mapper i being the one that called \
             on_map(i)) should be split's shares, in split's order: \
             differing by at most one, the larger shares first",
            texts.len()
        );
    }
}

/// On each mapper's thread, `on_map` comes before the first text is
/// counted.
pub(super) fn calls_on_map_before_counting() {
    let events = watched_word_count(&TEXTS, 3);
    texts_per_mapper(&TEXTS, 3, &events);
    for (at, (thread, event)) in events.iter().enumerate() {
        let Event::Words(text) = event else { continue };
        let called_on_map = events[..at].iter().any(|(earlier, event)| {
            earlier == thread && matches!(event, Event::OnMap(_))
        });
        assert!(
            called_on_map,
            "a mapper counted a text ({:?}...) before it called on_map; \
             each mapper calls on_map(mapper) first, then counts its texts",
            &text[..20]
        );
    }
}

/// The ids of this process's threads, from Linux's `/proc`.
fn thread_ids() -> HashSet<Tid> {
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The calling thread adds the counts up itself, and until they arrive it
/// only waits for them. Two mappers are held in `on_map` until one of them
/// has seen the calling thread asleep in a wait with no deadline 100 times
/// in a row (it waits for counts, as `recv` does), not in a sleep or a wait
/// with a deadline, and not busy (polling the channel, with `try_recv` or
/// `try_iter`, or the mappers with `is_finished`, in a loop, which burns a
/// core and can stop looking just after a mapper sent its counts, before
/// they are read). By then the calling thread has started every thread it
/// starts, and no thread but the two mappers has been started: a reducer
/// thread of its own is not the calling thread.
pub(super) fn adds_the_counts_up_on_the_calling_thread() {
    const MAPPERS: usize = 2;
    let texts = ["one fish two fish", "red fish blue fish"];
    let caller = task::me().tid;
    let before = thread_ids();
    let mappers = Mutex::new(HashSet::new());
    let arrived = Barrier::new(MAPPERS);
    let watcher = AtomicUsize::new(0);
    let seen = Mutex::new(None);
    let done = Barrier::new(MAPPERS);
    let counts = word_count(&texts, MAPPERS, |_| {
        mappers.lock().unwrap().insert(task::me().tid);
        arrived.wait(); // Both mappers are running.
        if watcher.fetch_add(1, Ordering::SeqCst) == 0 {
            let how = task::watch_until_asleep(caller);
            let mappers = mappers.lock().unwrap();
            let others: Vec<Tid> = thread_ids()
                .into_iter()
                .filter(|tid| !before.contains(tid) && !mappers.contains(tid))
                .collect();
            *seen.lock().unwrap() = Some((how, others));
        }
        done.wait(); // The other mapper waits for the watcher.
    });
    assert_eq!(
        counts,
        sequential_count(&texts),
        "the counts should equal those of one thread counting every text"
    );
    let (how, others) = seen.into_inner().unwrap().expect(
        "on_map was never called, so the calling thread could not be watched",
    );
    match how {
        Watched::AsleepUntilWoken => {}
        Watched::Busy => panic!(
            "while both mappers waited, the calling thread used a fifth of a \
             second of CPU time without going to sleep: it waits for the \
             mappers' counts (recv, or a for loop over the receiver), \
             rather than poll the channel (try_recv, try_iter) or the \
             mappers (is_finished) in a loop, which burns a core and can \
             stop looking just after a mapper sent its counts"
        ),
        Watched::Polling(line) => panic!(
            "while both mappers waited, the calling thread was seen in a \
             sleep or a wait with a deadline (/proc: {line}): it waits for \
             the mappers' counts until they arrive (recv), rather than \
             poll with a sleep or recv_timeout between looks"
        ),
    }
    assert!(
        others.is_empty(),
        "while both mappers waited and the calling thread slept, {} \
         thread(s) other than the {MAPPERS} mappers had been started: the \
         calling thread adds the counts up itself, as they arrive, not a \
         reducer thread of its own",
        others.len()
    );
}
