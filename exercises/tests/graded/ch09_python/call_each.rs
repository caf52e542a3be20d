//! `call_each`: Python callbacks from Rust workers, without a deadlock.

use super::embed::run_python;

/// `ch09::call_each::returns_results_in_order`
pub fn returns_results_in_order() {
    run_python(
        r#"
import threading
from ch09 import call_each
assert call_each(lambda x: x * 10, list(range(20)), 3) == [x * 10 for x in range(20)]
# The first item's callback ends last: the results are still in the items' order.
last_done = threading.Event()
def first_ends_last(item):
    if item == 0:
        last_done.wait()
    if item == 19:
        last_done.set()
    return -item
result = call_each(first_ends_last, list(range(20)), 3)
assert result == [-x for x in range(20)], f"results out of order: {result}"
assert call_each(str, [1, -2, 3]) == ["1", "-2", "3"]
assert call_each(str, [], 4) == []
assert call_each(str, [1, 2], 0) == ["1", "2"], "workers=0 counts as 1"
assert call_each(lambda x: [x], [5], 16) == [[5]]
# Any number of workers, however large: 2**62 workers for 3 items are 3.
assert call_each(str, [1, 2, 3], 2**62) == ["1", "2", "3"]
assert call_each(str, [], 2**62) == []
"#,
        |_, _| Ok(()),
    );
}

/// `ch09::call_each::calls_from_its_workers`
pub fn calls_from_its_workers() {
    run_python(
        r#"
import threading
from ch09 import call_each
caller = threading.get_ident()
# 65 workers: more than any cap a solution might pick (16, 32, 64, or the
# machine's cores), all of them at once.
for count, workers in ((6, 6), (10, 4), (6, 4), (3, 1), (1, 5), (130, 65)):
    expected = min(count, workers)
    all_there = threading.Barrier(expected)
    callers = {}
    def callback(item):
        me = threading.get_ident()
        callers.setdefault(me, []).append(item)
        if len(callers[me]) == 1:
            # Each worker's first call waits for every worker's.
            all_there.wait()
        return item
    assert call_each(callback, list(range(count)), workers) == list(range(count))
    assert caller not in callers, "a callback ran on the thread that called call_each"
    assert len(callers) == expected, (
        f"{count} items on {workers} workers ran on {len(callers)} threads, not {expected}")
    # The shares are as in par_map: runs of consecutive items whose
    # lengths differ by at most one.
    sizes = sorted(len(mine) for mine in callers.values())
    assert sizes[-1] - sizes[0] <= 1, (
        f"{count} items on {workers} workers were shared out as {sizes}: the shares' "
        "lengths must differ by at most one (10 items on 4 workers: 3, 3, 2, 2), so "
        "spread the remainder over some shares, one each, rather than giving it all to one")
    for mine in callers.values():
        assert sorted(mine) == list(range(min(mine), max(mine) + 1)), (
            f"{count} items on {workers} workers: one worker called the items "
            f"{sorted(mine)}, not a run of consecutive items: each worker's share is "
            "a slice of the items, not every k-th item nor the next free one")
        assert mine == sorted(mine), (
            f"{count} items on {workers} workers: one worker called its items in the "
            f"order {mine}: each worker calls its run from its first item to its "
            "last, in the items' order, not from its end")
"#,
        |_, _| Ok(()),
    );
}

/// `ch09::call_each::callbacks_overlap`
pub fn callbacks_overlap() {
    run_python(
        r#"
import threading
from ch09 import call_each
pair = threading.Barrier(2)
def callback(item):
    pair.wait()
    return -item
assert call_each(callback, [1, 2, 3, 4], 2) == [-1, -2, -3, -4]
"#,
        |_, _| Ok(()),
    );
}

/// `ch09::call_each::raises_the_first_error`: 8 items on 2 workers, so
/// items 4 to 7 are the second worker's, called in order. Item 5 raises;
/// item 3 raises only once item 6's callback has begun, that is once the
/// second worker is done with item 5, its error kept: item 5's error is
/// first in time whatever the machine's load, and item 3's first by
/// position. Then two errors in one worker's run: the first of them by
/// position is raised, not the later one.
pub fn raises_the_first_error() {
    run_python(
        r#"
import threading
from ch09 import call_each
called = []
sixth_called = threading.Event()
def callback(item):
    called.append(item)
    if item == 3:
        # Item 5's error comes first in time; item 3's is first by position.
        sixth_called.wait()
        raise ValueError("bad 3")
    if item == 5:
        raise ValueError("bad 5")
    if item == 6:
        sixth_called.set()
    return item
try:
    call_each(callback, list(range(8)), 2)
except ValueError as error:
    assert str(error) == "bad 3", f"call_each raised {error!r}, not the first item's"
else:
    raise AssertionError("call_each raised nothing")
assert sorted(called) == list(range(8)), f"called for {sorted(called)}, not every item"
# Items 0 to 3 are the first worker's run: items 1 and 2 both raise there.
called = []
def two_in_a_run(item):
    called.append(item)
    if item in (1, 2):
        raise ValueError(f"bad {item}")
    return item
try:
    call_each(two_in_a_run, list(range(8)), 2)
except ValueError as error:
    assert str(error) == "bad 1", (
        f"call_each raised {error!r} when items 1 and 2 (one worker's) both raised: "
        "a worker must keep the first error of its run, not the last")
else:
    raise AssertionError("call_each raised nothing")
assert sorted(called) == list(range(8)), f"called for {sorted(called)}, not every item"
"#,
        |_, _| Ok(()),
    );
}
