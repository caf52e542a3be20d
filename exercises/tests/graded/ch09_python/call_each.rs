//! `call_each`: Python callbacks from Rust workers, without a deadlock.

use super::embed::run_python;

/// `ch09::call_each::returns_results_in_order`
pub fn returns_results_in_order() {
    run_python(
        r#"
from ch09 import call_each
assert call_each(lambda x: x * 10, list(range(20)), 3) == [x * 10 for x in range(20)]
assert call_each(str, [1, -2, 3]) == ["1", "-2", "3"]
assert call_each(str, [], 4) == []
assert call_each(lambda x: [x], [5], 16) == [[5]]
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
all_there = threading.Barrier(6)
callers = set()
def callback(item):
    callers.add(threading.get_ident())
    all_there.wait()
    return item
assert call_each(callback, list(range(6)), 6) == list(range(6))
assert caller not in callers, "a callback ran on the thread that called call_each"
assert len(callers) == 6, f"the callbacks ran on {len(callers)} threads, not 6"
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

/// `ch09::call_each::raises_the_first_error`
pub fn raises_the_first_error() {
    run_python(
        r#"
from ch09 import call_each
called = []
def callback(item):
    called.append(item)
    if item in (3, 5):
        raise ValueError(f"bad {item}")
    return item
try:
    call_each(callback, list(range(8)), 2)
except ValueError as error:
    assert str(error) == "bad 3", f"call_each raised {error!r}, not the first item's"
else:
    raise AssertionError("call_each raised nothing")
assert sorted(called) == list(range(8)), f"called for {sorted(called)}, not every item"
"#,
        |_, _| Ok(()),
    );
}
