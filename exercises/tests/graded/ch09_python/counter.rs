//! `Counter`: counts, and loses no update, with or without the GIL.

use std::sync::Barrier;
use std::thread;

use exercises::ch09_python::Counter;
use pyo3::prelude::*;

use super::embed::{run_python, start_python};

/// `ch09::counter::counts`
pub fn counts() {
    run_python(
        r#"
from ch09 import Counter
counter = Counter()
assert counter.value == 0, f"Counter() starts at {counter.value}"
assert counter.add(5) == 5 and counter.add(0) == 5 and counter.value == 5
other = Counter(10)
assert other.add(1) == 11 and other.value == 11 and counter.value == 5
assert Counter(start=3).value == 3
"#,
        |_, _| Ok(()),
    );
}

/// `ch09::counter::python_threads_lose_nothing`
pub fn python_threads_lose_nothing() {
    run_python(
        r#"
import sys, threading
from ch09 import Counter
sys.setswitchinterval(1e-6)
counter = Counter()
seen = [[] for _ in range(8)]
def add_many(mine):
    for _ in range(5000):
        mine.append(counter.add(1))
threads = [threading.Thread(target=add_many, args=(mine,)) for mine in seen]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert counter.value == 40000, f"8 threads added 1 5000 times each: value is {counter.value}"
returned = sorted(value for mine in seen for value in mine)
assert returned == list(range(1, 40001)), "two adds returned the same value"
"#,
        |_, _| Ok(()),
    );
}

/// Threads and additions in [`no_lost_update_without_the_gil`].
const THREADS: usize = 8;
const ADDS: u64 = 50_000;

/// `ch09::counter::no_lost_update_without_the_gil`
pub fn no_lost_update_without_the_gil() {
    start_python();
    let counter: Py<Counter> = Python::attach(|py| Py::new(py, Counter::new(0)))
        .expect("cannot make a Counter");
    let start = Barrier::new(THREADS);
    let mut returned: Vec<u64> = Python::attach(|py| {
        py.detach(|| {
            thread::scope(|scope| {
                let workers: Vec<_> = (0..THREADS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            (0..ADDS).map(|_| counter.get().add(1)).collect::<Vec<u64>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|worker| worker.join().expect("a thread that adds panicked"))
                    .collect()
            })
        })
    });
    let total = THREADS as u64 * ADDS;
    assert_eq!(counter.get().value(), total, "{THREADS} threads added 1 {ADDS} times each");
    returned.sort_unstable();
    returned.dedup();
    assert_eq!(returned.len() as u64, total, "two adds returned the same value");
}
