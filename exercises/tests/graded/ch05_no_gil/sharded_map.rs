//! The trials of `ShardedMap`: counts from many threads, shards held at
//! once, a `get` that waits only on its own shard, and the map's keys
//! and memory.

use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Barrier, mpsc};
use std::thread;
use std::time::Duration;

use course::grader::{alloc, task};
use exercises::ch05_no_gil::ShardedMap;

use super::os;

pub(super) fn counts_from_many_threads() {
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
    first_updates_of_a_new_key_are_all_counted();
    // A map that moves (into a Box, here) still finds its keys: the shard
    // of a key depends on the key alone, not on where the map lies in
    // memory.
    let before: Vec<usize> = keys.iter().map(|k| map.shard_of(k)).collect();
    let map = Box::new(map);
    let after: Vec<usize> = keys.iter().map(|k| map.shard_of(k)).collect();
    let counts: Vec<Option<u64>> = keys.iter().map(|k| map.get(k)).collect();
    assert!(
        before == after && counts.iter().all(|&count| count == Some(400)),
        "once the map was moved into a Box, shard_of gave the keys {keys:?} \
         the shards {after:?} instead of {before:?}, and get gave \
         {counts:?} instead of 400 each: a key's shard must be the same \
         wherever the map is (a map moves when it is returned, boxed or put \
         in an Arc), so do not hash the map's address; hash the key alone, \
         or keep a seed made in new inside the map"
    );
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
        // Two keys of 100,000 bytes that differ only in their last byte: a
        // map that stores or hashes only a key's first 16 KiB (or 64 KiB)
        // gives them one counter.
        "x".repeat(100_000),
        format!("{}y", "x".repeat(99_999)),
        // Keys that differ only in case are two keys too, and so are keys
        // that differ only in a trailing '/'.
        "https://Example.com/Tab/9".to_string(),
        "https://example.com/tab/9".to_string(),
        "https://example.com/tab/9/".to_string(),
        "/tab/3".to_string(),
        "/tab/3/".to_string(),
        // So are keys that differ only in a fragment ('#...'), and keys
        // that differ only in spaces or a line end around them.
        "/tab/3#top".to_string(),
        "/tab/3#".to_string(),
        " /tab/3".to_string(),
        "/tab/3\n".to_string(),
        // So are keys that differ only in a query string ('?...'), and the
        // empty key is a key like any other.
        "/tab/3?ref=mail".to_string(),
        "/tab/3?".to_string(),
        String::new(),
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
        "keys {long_keys:?}, each updated once with +3, read back as \
         {counts:?}: two keys that differ only in their last byte (of \
         1,000, or of 100,000: keep and hash the whole key, however long, \
         not its first kilobytes), only in case, only in a trailing '/', only in a \
         fragment ('#top'), only in a query string ('?ref=mail'), or only \
         in spaces or a line end around them (' /tab/3', '/tab/3\\n'), are \
         two keys, and the empty key '' is a key like any other; hash and \
         store the whole key, as it is (not trimmed)"
    );
    assert!(
        shards.iter().all(|&s| s < 8),
        "a shard number is out of range for a long key: {shards:?}"
    );
    // Keys spread over every shard asked for, also when they all end in
    // the same byte: 10,000 keys ending in '/' reach at least half of 1,000
    // shards (a hash of the whole key reaches nearly all), not one shard (a
    // shard chosen by the last byte), nor only the first 16 (a map that
    // makes fewer shards than asked for), nor only the first 256 (a hash of
    // 8 bits).
    // So for shard counts that are multiples of 31, 33 or 37 (992, 999,
    // 1,023): a hash kept modulo the count at every step, `h * 31 + byte`,
    // leaves `h % 31` equal to the last byte's, and reaches one shard in 31.
    for count in [992, 999, 1_023, 1_000] {
        let map = ShardedMap::new(count);
        let reached: std::collections::BTreeSet<usize> = (0..10_000)
            .map(|i| map.shard_of(&format!("/tab/{i}/")))
            .collect();
        assert!(
            reached.len() >= count / 2 && reached.iter().all(|&s| s < count),
            "ShardedMap::new({count}) has {count} shards, yet 10,000 keys \
             that all end in '/' (/tab/0/, /tab/1/, ...) reached only {} \
             shards, from {:?} to {:?}: make as many shards as asked for (no \
             cap), hash the whole key, not its last byte (keys that share an \
             ending must still spread), into a hash wide enough for every \
             shard (a u8 hash never reaches shard 256), and take it modulo \
             the count only at the end (a hash kept modulo the count at each \
             step, h * 31 + byte, remembers only the last byte modulo 31 \
             when the count is a multiple of 31)",
            reached.len(),
            reached.first(),
            reached.last(),
        );
    }
    let map = ShardedMap::new(1_000);
    // No cap on the shards, however many are asked for: in a map of
    // 2,200,000 shards (each an empty lock and table, some 120 MB in all),
    // about half of 10,000 keys land in its upper half, at shard 1,100,000
    // or above, which a map that makes at most 1,024 (or 65,536, or 2^20)
    // shards never reaches.
    {
        let many = ShardedMap::new(2_200_000);
        let upper = (0..10_000)
            .map(|i| many.shard_of(&format!("/tab/{i}/")))
            .filter(|&shard| (1_100_000..2_200_000).contains(&shard))
            .count();
        assert!(
            upper >= 4_000,
            "ShardedMap::new(2_200_000) has 2,200,000 shards, yet only {upper} \
             of 10,000 keys landed in shards 1,100,000 and above (about half \
             should): make as many shards as asked for, with no cap (not even \
             a ceiling of a million or so), however large the number"
        );
    }
    // Long keys that differ only in their middle spread too: 10,000 URLs
    // of one length, whose first and last 16 bytes are all the same,
    // reach at least half of the 1,000 shards (a hash of the length and
    // both ends only puts them all in one).
    let reached: std::collections::BTreeSet<usize> = (0..10_000)
        .map(|i| {
            map.shard_of(&format!(
                "https://example.com/articles/{i:06}/comments/recent"
            ))
        })
        .collect();
    assert!(
        reached.len() >= 500,
        "10,000 keys of one length that differ only in their middle \
         (https://example.com/articles/000000/comments/recent, ...000001/..., \
         ...) reached only {} of 1,000 shards: hash every byte of the key, \
         not only its length and its ends (keys that share their ends, as \
         URLs of one site and one page do, must still spread)",
        reached.len(),
    );
    // So do keys of 970 bytes that differ only in their middle, more than
    // 480 bytes from either end: a hash of the length and a fixed number
    // of bytes at each end (32, 64, 256) puts them all in one shard; and
    // so do longer keys, of 4,000 and 20,000 bytes (a hash that reads a
    // long key's ends only, 512 bytes of each above 1,024, say), and of
    // 150,000 bytes, which differ only 75,000 bytes from either end (a
    // hash of a long key's first 16 KiB, or 64 KiB, puts them all in one).
    for (length, keys, shards) in [
        (970, 10_000, 1_000),
        (4_000, 10_000, 1_000),
        (20_000, 500, 50),
        (150_000, 200, 50),
    ] {
        let map = ShardedMap::new(shards);
        let side = (length - 10) / 2;
        let (head, tail) = ("a".repeat(side), "z".repeat(length - 10 - side));
        let reached: std::collections::BTreeSet<usize> = (0..keys)
            .map(|i| map.shard_of(&format!("/{head}/{i:06}/{tail}/")))
            .collect();
        assert!(
            reached.len() >= shards / 2,
            "{keys} keys of {length} bytes that differ only in their middle \
             (more than {side} bytes from either end) reached only {} of \
             {shards} shards: hash every byte of the key, however long, not \
             a number of bytes at each end, nor only its first kilobytes",
            reached.len(),
        );
    }
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

/// Two threads' first updates of one new key are both counted. The first
/// is paused just before it allocates the key's copy (its first
/// allocation of the key's length or more); meanwhile a second thread
/// updates the same key, and runs to its end, or is seen waiting for the
/// shard's lock, 100 looks in a row, before the first goes on. An `update`
/// that holds the lock throughout makes the second wait, and counts both;
/// one that copies the key with the lock let go, then locks again and
/// inserts it at 0 (`insert(key, 0)`), overwrites the second's count.
fn first_updates_of_a_new_key_are_all_counted() {
    enum First {
        Paused,
        Done,
    }
    let map = ShardedMap::new(4);
    let key = format!("first-{}", "k".repeat(1_000));
    let (first_tx, first_rx) = mpsc::channel();
    let go_on = Barrier::new(2);
    let (map, key, go_on) = (&map, key.as_str(), &go_on);
    thread::scope(|s| {
        let paused = first_tx.clone();
        s.spawn(move || {
            let pause = || {
                paused.send(First::Paused).unwrap();
                go_on.wait(); // Until the second update is done, or waits.
            };
            alloc::before_this_thread_allocates(key.len(), &pause, || {
                map.update(key, |count| *count += 1);
            });
            first_tx.send(First::Done).unwrap();
        });
        let paused = matches!(first_rx.recv().unwrap(), First::Paused);
        let (tid_tx, tid_rx) = mpsc::channel();
        let second = s.spawn(move || {
            tid_tx.send(os::current_tid()).unwrap();
            map.update(key, |count| *count += 1);
        });
        if paused {
            let tid = tid_rx.recv().unwrap();
            let mut waiting_in_a_row = 0;
            while !second.is_finished() && waiting_in_a_row < 100 {
                waiting_in_a_row = match task::wait(tid) {
                    Some((task::Wait::UntilWoken, _)) => waiting_in_a_row + 1,
                    _ => 0,
                };
                thread::sleep(Duration::from_millis(1));
            }
            go_on.wait();
        }
    });
    assert_eq!(
        map.get(key),
        Some(2),
        "two threads each updated a new key once, the second while the \
         first was about to copy the key (its first allocation of the \
         key's length), yet its counter is not 2: hold the shard's lock \
         from the lookup to the end of f (entry(key.to_string())), or, if \
         you copy the key with the lock let go, insert it with \
         entry(..).or_insert(0), not insert(key, 0), which overwrites a \
         counter another thread added meanwhile"
    );
}

/// One thread per shard, each holding a key of its own shard inside
/// `update` and waiting there for all the others: with 4 shards, and with
/// 3 and 5, which are not powers of two (a map that locks a shard other
/// than the one `shard_of` names, such as the hash masked with
/// `shards - 1`, puts two of these keys under one lock, and hangs).
pub(super) fn holds_two_shards_at_once() {
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
/// caught every time, and one that waits then reads the key's counter. The
/// held key is in the map before the holder's `update` starts, and that
/// `get` must not return while the holder is inside: an `update` that takes
/// only a shared lock of its shard for a key already there (`RwLock::read`)
/// is caught every time too.
pub(super) fn get_waits_only_on_its_shard() {
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
    // The held key is there already too, so that the holder's `update`
    // finds it: one that then takes a shared lock of its shard (and a lock
    // of that key's counter alone) would let the `get` below run past it.
    for key in present.iter().chain([&neighbour]).map(String::as_str) {
        map.update(key, |count| *count += 1);
    }
    map.update(held, |count| *count += 1);
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let map = &map;
    let (got, returned_early, got_neighbour) = thread::scope(|s| {
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
        // The holder is still inside update: a get that waits for the
        // shard's lock cannot have returned yet.
        let returned_early = waiting.is_finished();
        drop(release_tx);
        (got, returned_early, waiting.join())
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
    assert!(
        !returned_early,
        "get({neighbour:?}) returned {got_neighbour:?} while another thread \
         was still inside update on {held:?}, a key already in the same \
         shard: get must wait for the shard's lock; an update that holds \
         only a shared lock of its shard (RwLock::read, with a lock of the \
         key's counter alone) lets gets and updates of that shard's other \
         keys run past it, and each shard has one lock, held by update"
    );
    assert_eq!(
        got_neighbour,
        Some(1),
        "{neighbour} was updated once, and get({neighbour:?}) was called \
         while another thread was inside update on {held:?}, in the same \
         shard: get must wait for the shard's lock (lock, not try_lock) \
         and then give the counter; a busy shard is no reason to answer \
         None for a key that is there"
    );
    assert_eq!(map.get(held), Some(2), "{held} was updated twice");
}

/// `new(0)` still makes a map that works: one shard holds every key.
pub(super) fn zero_shards_make_one() {
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
pub(super) fn sharded_map_frees_its_keys() {
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
