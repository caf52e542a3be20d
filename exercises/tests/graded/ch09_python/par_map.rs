//! `par_map`: converted once, computed by every worker at once, with the
//! GIL released.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread::{self, ThreadId};

use exercises::ch09_python::par_map;
use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::embed::{function, run_python};

/// Set once the kernel has computed the last value of [`maps_in_order`]'s
/// forced case.
static LAST_DONE: AtomicBool = AtomicBool::new(false);

/// `ch09::par_map::maps_in_order`
pub fn maps_in_order() {
    run_python(
        r#"
# Any number of workers, however large: 2**62 workers for 3 values are 3.
for values, workers in (([], 3), ([7], 1), ([5, -2, 0, 9, 2**40, -(2**40), 3], 3),
                        (list(range(100)), 16), (list(range(10)), 4), ([1, 2], 0),
                        ([1, 2, 3], 2**62), ([], 2**62)):
    result = triple_less_one(values, workers)
    expected = [x * 3 - 1 for x in values]
    assert result == expected, f"par_map({values}, {workers}) gave {result}"
    assert result is not values, "par_map returns a new list"
# The first value is computed last: the result is still in the list's order.
values = list(range(100, 108))
result = first_computed_last(values)
assert result == [x * 3 - 1 for x in values], f"par_map({values}, 4) gave {result}"
"#,
        |py, globals| {
            function(py, globals, c"triple_less_one", |args| {
                let values = args.get_item(0)?;
                let workers: usize = args.get_item(1)?.extract()?;
                par_map(values.cast::<PyList>()?, workers, |x| x * 3 - 1)?
                    .into_py_any(args.py())
            })?;
            function(py, globals, c"first_computed_last", |args| {
                let values = args.get_item(0)?;
                let mapped = par_map(values.cast::<PyList>()?, 4, |x| {
                    if x == 100 {
                        while !LAST_DONE.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                    }
                    if x == 107 {
                        LAST_DONE.store(true, Ordering::SeqCst);
                    }
                    x * 3 - 1
                })?;
                mapped.into_py_any(args.py())
            })
        },
    );
}

/// Calls of the kernel in [`converts_before_it_computes`].
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// `ch09::par_map::converts_before_it_computes`
pub fn converts_before_it_computes() {
    run_python(
        r#"
for values, error in (([1, 2, "three", 4], TypeError), ([1, 2**70], OverflowError),
                      ([1.5, 2], TypeError)):
    try:
        counted(values)
    except error:
        pass
    else:
        raise AssertionError(f"par_map({values}) raised no {error.__name__}")
assert kernel_calls() == 0, f"the kernel ran {kernel_calls()} times before the bad value was found"
"#,
        |py, globals| {
            function(py, globals, c"counted", |args| {
                let values = args.get_item(0)?;
                let mapped = par_map(values.cast::<PyList>()?, 2, |x| {
                    CALLS.fetch_add(1, Ordering::SeqCst);
                    x
                })?;
                mapped.into_py_any(args.py())
            })?;
            function(py, globals, c"kernel_calls", |args| {
                CALLS.load(Ordering::SeqCst).into_py_any(args.py())
            })
        },
    );
}

/// What the kernel of [`uses_every_worker`] saw: the values each thread
/// computed, and the calls.
#[derive(Default)]
struct Seen {
    threads: HashMap<ThreadId, Vec<i64>>,
    calls: usize,
}

/// `ch09::par_map::uses_every_worker`
pub fn uses_every_worker() {
    run_python(
        r#"
# 65 workers: more than any cap a solution might pick (16, 32, 64, or the
# machine's cores), all of them at once.
for values, workers in ((list(range(64)), 8), (list(range(10)), 4), (list(range(6)), 4),
                        ([1, 2, 3], 8), ([5], 1), ([1, 2, 3], 1), ([7, 7, 7, 7], 2),
                        (list(range(130)), 65)):
    result = on_workers(values, workers)
    assert result == [x + 1 for x in values], f"par_map({values}, {workers}) gave {result}"
"#,
        |py, globals| {
            function(py, globals, c"on_workers", |args| {
                let values = args.get_item(0)?;
                let values = values.cast::<PyList>()?;
                let workers: usize = args.get_item(1)?.extract()?;
                let expected = workers.min(values.len());
                let caller = thread::current().id();
                let all_there = Barrier::new(expected);
                let seen = Mutex::new(Seen::default());
                let mapped = par_map(values, workers, |x| {
                    let me = thread::current().id();
                    assert_ne!(
                        me, caller,
                        "the kernel ran on the thread that called par_map"
                    );
                    let first = {
                        let mut seen =
                            seen.lock().unwrap_or_else(|e| e.into_inner());
                        seen.calls += 1;
                        let mine = seen.threads.entry(me).or_default();
                        mine.push(x);
                        mine.len() == 1
                    };
                    if first {
                        // Every worker's first call waits for all of them.
                        all_there.wait();
                    }
                    x + 1
                })?;
                let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
                assert_eq!(
                    seen.threads.len(),
                    expected,
                    "the kernel ran on this many threads"
                );
                assert_eq!(
                    seen.calls,
                    values.len(),
                    "the kernel was called this many times"
                );
                check_runs(&values.extract::<Vec<i64>>()?, workers, &seen);
                mapped.into_py_any(args.py())
            })
        },
    );
}

/// Fails unless the workers' shares of `values` were runs of consecutive
/// positions (checked where the values are distinct, so that a value tells
/// its position) whose lengths differ by at most one.
fn check_runs(values: &[i64], workers: usize, seen: &Seen) {
    let mut sizes: Vec<usize> = seen.threads.values().map(Vec::len).collect();
    sizes.sort_unstable();
    assert!(
        sizes.last().unwrap_or(&0) - sizes.first().unwrap_or(&0) <= 1,
        "{} values on {workers} workers were shared out as {sizes:?}: the \
         shares' lengths must differ by at most one (10 values on 4 \
         workers: 3, 3, 2, 2), so spread the remainder over the first \
         (or last) shares, one each, rather than giving it all to one",
        values.len()
    );
    let position: HashMap<i64, usize> =
        values.iter().enumerate().map(|(i, &x)| (x, i)).collect();
    if position.len() < values.len() {
        return;
    }
    for mine in seen.threads.values() {
        let mut positions: Vec<usize> =
            mine.iter().map(|x| position[x]).collect();
        positions.sort_unstable();
        assert!(
            positions.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "{} values on {workers} workers: one worker computed the values \
             at positions {positions:?}, which is not a run of consecutive \
             positions: each worker's share is a slice of the list, not \
             every k-th value nor the next free one",
            values.len()
        );
    }
}

/// Whether the kernel of [`releases_the_gil`] waits for a Python thread.
static WAITING: AtomicBool = AtomicBool::new(false);
/// Set by that Python thread.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// `ch09::par_map::releases_the_gil`
pub fn releases_the_gil() {
    run_python(
        r#"
import threading, time
def let_go():
    while not kernel_waits():
        time.sleep(0.001)
    let_the_kernel_go()
helper = threading.Thread(target=let_go, daemon=True)
helper.start()
assert held_until_python_runs([1, 2, 3, 4]) == [1, 2, 3, 4]
helper.join()
"#,
        |py, globals| {
            function(py, globals, c"kernel_waits", |args| {
                WAITING.load(Ordering::SeqCst).into_py_any(args.py())
            })?;
            function(py, globals, c"let_the_kernel_go", |args| {
                RELEASED.store(true, Ordering::SeqCst);
                args.py().None().into_py_any(args.py())
            })?;
            function(py, globals, c"held_until_python_runs", |args| {
                let values = args.get_item(0)?;
                let mapped = par_map(values.cast::<PyList>()?, 2, |x| {
                    WAITING.store(true, Ordering::SeqCst);
                    while !RELEASED.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    x
                })?;
                mapped.into_py_any(args.py())
            })
        },
    );
}
