//! The trial of a `ShardedMap` whose `f` panics: `update` passes the
//! panic on, and the map works as before, `get` first.

use std::thread;

use exercises::ch05_no_gil::ShardedMap;

/// An `f` that panics makes `update` panic, and nothing more: later calls
/// on the same shard, for that key and for others, work as before.
pub(super) fn survives_a_panicking_f() {
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
    // get first: no update has touched the shard since the panics, so
    // its lock is still poisoned when get takes it.
    let after = thread::scope(|s| {
        s.spawn(|| {
            let first = (map.get("tab-1"), map.get("tab-3"));
            map.update("tab-2", |count| *count += 1);
            (
                first,
                (map.get("tab-1"), map.get("tab-2"), map.get("tab-3")),
            )
        })
        .join()
    });
    let Ok((first, after)) = after else {
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
        first,
        (Some(6), Some(4)),
        "right after an f panicked inside update on tab-1 and tab-3, get \
         of tab-1 gave {:?} and get of tab-3 gave {:?}, before any other \
         update: the counters are still in the shard, whose lock the panic \
         poisoned, so get must take the poisoned lock's guard too \
         (PoisonError::into_inner), not read the shard as empty (lock().ok() \
         gives None), and not wait for an update to clear the poison",
        first.0,
        first.1,
    );
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
