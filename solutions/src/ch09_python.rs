//! Chapter 9, Rust inside Python: leaving the GIL behind with PyO3: five
//! exercises.
//!
//! Your Python program keeps its GIL, but a function it calls can be Rust,
//! and Rust can let go of the GIL while it works. Write a CPU-bound
//! function that lets go of it; a parallel map over a Python list; a
//! counter that Python threads share without a GIL; a pool of Rust threads
//! that calls back into Python; and a read that waits with the GIL
//! released.
//!
//! - Book: chapter 9, "Rust inside Python", section "Exercises".
//! - Graded by `exercises/tests/graded/ch09_python.rs`:
//!   `cargo course grade ch09`. The trials start a real CPython inside the
//!   trial process, import the module [`ch09`] below, and call your
//!   functions from Python threads.
//! - Try it yourself at a Python prompt where `import ch09` is this module:
//!   `cargo run -p exercises --bin python`.
//!
//! The tests check behaviour, and that the GIL really is released: two
//! Python threads must both be inside your function at the same time, a
//! Python thread must run while your workers work, and a Python heartbeat
//! must tick while your read waits. A version that keeps the GIL times out
//! and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch09_python")]

use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::ops::Range;
use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use pyo3::exceptions::{PyEOFError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// The module Python imports as `ch09`: [`count_primes`] (built on
/// [`crunch`]), [`squares`] (built on [`par_map`]), [`Counter`],
/// [`call_each`] and [`read_exact`].
///
/// PyO3 declares a module safe without the GIL unless told otherwise
/// (`gil_used = false` has been its default since 0.28): a free-threaded
/// CPython then imports it without turning the GIL back on. This one may
/// say so because its only shared state, `Counter`'s, is atomic.
#[pymodule]
pub mod ch09 {
    #[pymodule_export]
    use super::{Counter, call_each, count_primes, read_exact, squares};
}

/// How many primes are below `n`, counted by [`crunch`] with the GIL
/// released: `ch09.count_primes(100_000)` from two Python threads runs on
/// two cores. Given; nothing to do here: the trials grade [`crunch`], and
/// check only this function's results.
#[pyfunction]
pub fn count_primes(py: Python<'_>, n: u64) -> u64 {
    crunch(py, n, |i| u64::from(is_prime(i)))
}

/// Whether `n` is prime, by trial division: slow on purpose.
fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Each int of `values`, squared, by [`par_map`] on `workers` threads.
/// Given; nothing to do here: the trials grade [`par_map`].
#[pyfunction]
#[pyo3(signature = (values, workers = 4))]
pub fn squares<'py>(
    values: &Bound<'py, PyList>,
    workers: usize,
) -> PyResult<Bound<'py, PyList>> {
    par_map(values, workers, |x| x.wrapping_mul(x))
}

/// The sum of `kernel(i)` for every `i` in `0..n`, computed with the GIL
/// released, so that other Python threads run meanwhile, on other cores.
///
/// `py` is PyO3's proof that this thread holds the GIL; `py.detach` lets
/// go of it for the length of a closure and takes it back afterwards.
///
/// # Graded promises
///
/// - It returns the sum of `kernel(i)` for `i` in `0..n` (modulo `2**64`:
///   every addition wraps, also where threads of its own, if it starts
///   any, add up their parts), calling this call's kernel once for each
///   `i` and for no other `i`, however `n` divides among threads (whether
///   to start any, and how many, is yours; the sum is the same whatever
///   the machine's cores; no sum is kept from an earlier call); `n = 0`
///   gives `0` without a call. The
///   trials are built in debug mode, where a plain `+` that overflows
///   panics. Trial: `ch09::crunch::sums_the_kernel`.
/// - The kernel runs while the GIL is released, however small `n` is: two
///   Python threads that call `crunch` at the same time are both inside the
///   kernel at once. Trial: `ch09::crunch::releases_the_gil`.
/// - Through the module, `ch09.count_primes(n)` called from several Python
///   threads at once gives each the count of primes below `n`. Trial:
///   `ch09::crunch::counts_primes_from_python_threads`.
pub fn crunch<K>(py: Python<'_>, n: u64, kernel: K) -> u64
where
    K: Fn(u64) -> u64 + Send + Sync,
{
    py.detach(|| (0..n).map(&kernel).fold(0, u64::wrapping_add))
}

/// A new list of `kernel(x)` for each int `x` of `values`, in order,
/// computed on `workers` threads with the GIL released.
///
/// Python objects may be touched only while attached, so convert the list
/// to a `Vec<i64>` first, compute while detached, and build the new list
/// once attached again.
///
/// Not graded: what counts as an int beyond `int` itself. PyO3's
/// `extract::<i64>` takes what Python's `operator.index` takes (`True` as
/// 1, an object with `__index__`); the trials pass only ints, strings and
/// floats.
///
/// # Graded promises
///
/// - The result has `kernel(x)` at the position of each `x`, in whatever
///   order the workers finish; an empty list gives an empty list,
///   `workers = 0` counts as 1, and any larger `workers` than values
///   (`2**62` too) counts as `len(values)`, with no loop over every
///   worker. Trial: `ch09::par_map::maps_in_order`.
/// - Every value is converted before any computing: a value that is not an
///   int raises `TypeError` (one too large for an `i64`, `OverflowError`)
///   and the kernel is never called. Trial:
///   `ch09::par_map::converts_before_it_computes`.
/// - The kernel runs on `min(workers, len(values))` threads that
///   `par_map` starts, all at once (with a single worker too), and never
///   on the calling thread. Each thread computes one run of consecutive
///   values (a slice of the list: not every k-th value, nor whichever is
///   free next), the runs' lengths differing by at most one (10 values on
///   4 workers: 3, 3, 2, 2; which runs are the longer ones is yours to
///   choose). The kernel is called once for each position of the list (a
///   value that appears twice is computed twice). Trial:
///   `ch09::par_map::uses_every_worker`.
/// - The GIL is released while the workers run: a Python thread started
///   before the call runs while they work. Trial:
///   `ch09::par_map::releases_the_gil`.
pub fn par_map<'py, K>(
    values: &Bound<'py, PyList>,
    workers: usize,
    kernel: K,
) -> PyResult<Bound<'py, PyList>>
where
    K: Fn(i64) -> i64 + Send + Sync,
{
    let py = values.py();
    let input: Vec<i64> = values.extract()?;
    let output: Vec<i64> = py.detach(|| {
        thread::scope(|scope| {
            let workers: Vec<_> = shares(input.len(), workers)
                .map(|share| {
                    let share = &input[share];
                    scope.spawn(|| {
                        share.iter().map(|&x| kernel(x)).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(joined).collect()
        })
    });
    PyList::new(py, output)
}

/// A counter that Python threads share, with no lost update, whether or not
/// a GIL serialises them: its state is an atomic, so `&self` is enough to
/// add to it (`frozen`: Python never needs a mutable borrow).
///
/// # Graded promises
///
/// - `Counter()` starts at 0 and `Counter(start)` at `start`; `add(n)` adds
///   any `n` from 0 to `2**64 - 1`, modulo `2**64` (`2**64 - 1` plus 5
///   gives 4; past `2**63 - 1` is no overflow: the trials are built in
///   debug mode, where a plain `+` that overflows panics), and returns the
///   value just after this very addition; the `value` property reads it.
///   Trial: `ch09::counter::counts`.
/// - Python threads that add at the same time lose no update, and each
///   `add` returns a value no other `add` returned. Trial:
///   `ch09::counter::python_threads_lose_nothing`.
/// - Rust threads that share it with no GIL held (through `Py::get`, as a
///   free-threaded Python would run the methods) lose no update either.
///   Trial: `ch09::counter::no_lost_update_without_the_gil`.
/// - Not even when two threads add at the same moment in the orders that
///   expose a two-step add (both read the value before either writes it; one adds
///   whole between the other's write and its return), which the trial
///   forces: the value counts both, and one `add` returns 1, the other 2.
///   Nor when, after one thread has read the value, a second adds whole,
///   and a third adds whole right after the first's next write (the order
///   that defeats a compare-exchange tried once, then a plain store): the
///   value counts all three, and the adds return 1, 2 and 3. Each order
///   is forced on a counter at 0 and again on one at `2**64 - 1`, whose
///   adds wrap past the top: a wrap is no excuse for two steps either.
///   The trial forces these orders by holding a thread at its writes to
///   the `Counter`'s own memory: a value kept in the struct (an atomic or
///   a `Mutex` field) goes through them, one behind an `Arc` or a `Box`
///   does not, and is left to the other trials. Trial:
///   `ch09::counter::racing_adds_are_counted`.
#[pyclass(frozen)]
#[derive(Debug)]
pub struct Counter {
    value: AtomicU64,
}

#[pymethods]
impl Counter {
    /// A counter at `start`.
    #[new]
    #[pyo3(signature = (start = 0))]
    pub fn new(start: u64) -> Self {
        Counter {
            value: AtomicU64::new(start),
        }
    }

    /// Adds `n` (wrapping) and returns the value after this addition.
    pub fn add(&self, n: u64) -> u64 {
        // Relaxed is enough: the counter publishes no other memory.
        self.value.fetch_add(n, Ordering::Relaxed).wrapping_add(n)
    }

    /// The value now.
    #[getter]
    pub fn value(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// `callback(item)` for each item, called from `workers` Rust threads that
/// each attach to the interpreter for each call; the results in the order
/// of `items`.
///
/// Two ways to deadlock, both to avoid: waiting for the workers while this
/// thread still holds the GIL (their `Python::attach` waits for it
/// forever), and holding a Rust lock while a callback runs (the callback
/// lets the GIL go now and then, another worker takes it and waits for the
/// lock, and the first can never take the GIL back).
///
/// Not graded: that a worker attaches for each call, not once for all of
/// its calls. A worker that stays attached between its calls holds the GIL
/// only while its own Rust code runs between them (the callbacks let it go
/// as any Python code does), which a trial could only see with a clock.
///
/// Not graded: that `call_each` waits for every call before it raises.
/// A version that raises as soon as the first error by position is known,
/// while threads of its own still call the remaining items, passes when
/// those calls end first, and a trial could only see it with a clock.
///
/// # Graded promises
///
/// - It returns `[callback(item) for item in items]`, in the items' order
///   whatever order the calls end in; no items gives an empty list,
///   `workers = 0` counts as 1, and any larger `workers` than items
///   (`2**62` too) counts as `len(items)`, with no loop over every worker.
///   Trial: `ch09::call_each::returns_results_in_order`.
/// - The calls run on `min(workers, len(items))` threads that `call_each`
///   starts, all at once (with a single worker too), never on the calling
///   thread, and the calling thread releases the GIL while it waits for
///   them. The shares are as in `par_map`: each thread calls one run of
///   consecutive items, from its first item to its last, the runs' lengths
///   differing by at most one (not every k-th item, nor whichever is free
///   next). Trial:
///   `ch09::call_each::calls_from_its_workers`.
/// - No lock is held while a callback runs: callbacks on different workers
///   run at the same time (each waits for the others at a Python
///   `threading.Barrier`). Trial: `ch09::call_each::callbacks_overlap`.
/// - When callbacks raise, `call_each` raises the exception of the first
///   item, by position (not the first to happen), whose callback raised
///   (of two in one thread's run, the earlier), and only after every
///   item's callback has been called: none is skipped because another
///   raised (that the calls have also ended is the note above: not
///   graded). Trial:
///   `ch09::call_each::raises_the_first_error`.
#[pyfunction]
#[pyo3(signature = (callback, items, workers = 4))]
pub fn call_each(
    py: Python<'_>,
    callback: Py<PyAny>,
    items: Vec<i64>,
    workers: usize,
) -> PyResult<Vec<Py<PyAny>>> {
    // Each worker returns its results; no lock is held while a callback
    // runs (there is none at all).
    let results: Vec<PyResult<Py<PyAny>>> = py.detach(|| {
        thread::scope(|scope| {
            let workers: Vec<_> = shares(items.len(), workers)
                .map(|share| {
                    let (share, callback) = (&items[share], &callback);
                    scope.spawn(move || {
                        share
                            .iter()
                            .map(|&item| {
                                Python::attach(|py| callback.call1(py, (item,)))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(joined).collect()
        })
    });
    // Every callback has been called; the first error by position wins.
    results.into_iter().collect()
}

/// `len` positions cut into `min(workers, len)` runs of consecutive ones
/// whose lengths differ by at most one (none when `len` is 0), one per
/// worker.
fn shares(len: usize, workers: usize) -> impl Iterator<Item = Range<usize>> {
    let parts = workers.max(1).min(len);
    let (size, longer) = (len / parts.max(1), len % parts.max(1));
    (0..parts).scan(0, move |start, part| {
        let end = *start + size + usize::from(part < longer);
        let share = *start..end;
        *start = end;
        Some(share)
    })
}

/// What a worker returned; its panic, passed on to the caller.
fn joined<T>(worker: thread::ScopedJoinHandle<'_, T>) -> T {
    worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Exactly `n` bytes read from the file descriptor `fd`, waiting with the
/// GIL released, so that Python threads run while it blocks. The
/// descriptor is the caller's: it stays open. The book's "second hint" is
/// the second that `cargo course hint ch09::read_exact` shows (run it
/// twice): how to duplicate the descriptor.
///
/// # Graded promises
///
/// - It returns the next `n` bytes, any bytes (not only UTF-8), however many
///   writes they arrive in; `n = 0` returns `b""`. Trial:
///   `ch09::read_exact::reads_across_writes`.
/// - The GIL is released while it waits: a Python heartbeat thread ticks,
///   and only then writes what it waits for. Trial:
///   `ch09::read_exact::heartbeat_keeps_ticking`.
/// - The descriptor stays open: the next `read_exact` on it reads the bytes
///   that follow; and `read_exact` leaves no descriptor of its own open.
///   While it waits, its own copy is close-on-exec (as Python's own
///   descriptors are), so that a program another thread starts meanwhile
///   does not inherit it. Trial: `ch09::read_exact::leaves_the_fd_open`.
/// - End of file before `n` bytes raises `EOFError`; any negative `fd`
///   raises `ValueError`, and a descriptor that is not open, or cannot be
///   read, raises `OSError`, whatever `n` is (`0` too: a read into no
///   bytes, `read(&mut [])`, still asks the OS, and fails on such a
///   descriptor, where `take(0)` or std's `read_exact` into an empty
///   buffer asks nothing; and `2**64 - 1`: allocate as the bytes come, not
///   `n` bytes up front). None of them is a panic, or leaves a copy of the
///   descriptor open; the caller's descriptor is still open after them;
///   and descriptor 0 is read like any other (not through
///   `std::io::stdin()`, whose buffer takes the bytes that follow). Trial:
///   `ch09::read_exact::errors_are_exceptions`.
#[pyfunction]
pub fn read_exact(
    py: Python<'_>,
    fd: RawFd,
    n: usize,
) -> PyResult<Py<PyBytes>> {
    if fd < 0 {
        return Err(PyValueError::new_err(format!(
            "negative file descriptor {fd}"
        )));
    }
    // SAFETY: `fcntl` with `F_DUPFD_CLOEXEC` touches no memory of ours
    // whatever the int: it fails with EBADF when `fd` is not open. That the
    // descriptor is the caller's to read from is the caller's promise (the
    // contract above); the caller's own descriptor stays theirs.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `copy` is a descriptor this call just made and nothing else
    // owns: the `File` closes it when dropped.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(copy) });
    let bytes = py.detach(|| -> std::io::Result<Vec<u8>> {
        if n == 0 {
            // `read_to_end` asks nothing of the OS for no bytes; a read of
            // none does, and fails on a descriptor that cannot be read, as
            // Python's `os.read(fd, 0)` does.
            let read = file.read(&mut [])?;
            debug_assert_eq!(read, 0, "a read into no bytes reads none");
        }
        // The buffer grows as the bytes come: `vec![0; n]` up front would
        // panic, or abort the process, for an `n` no memory holds.
        let mut buffer = Vec::new();
        (&mut file).take(n as u64).read_to_end(&mut buffer)?;
        if buffer.len() < n {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(buffer)
    });
    match bytes {
        Ok(bytes) => Ok(PyBytes::new(py, &bytes).unbind()),
        Err(error) if error.kind() == ErrorKind::UnexpectedEof => {
            Err(PyEOFError::new_err(format!("end of file before {n} bytes")))
        }
        Err(error) => Err(PyOSError::new_err(error.to_string())),
    }
}
