//! `crunch`: the sum, with the GIL released while the kernel runs.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};

use exercises::ch09_python::crunch;
use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;

use super::embed::{function, run_python};

/// `ch09::crunch::sums_the_kernel`
pub fn sums_the_kernel() {
    run_python(
        r#"
for n in (0, 1, 1000):
    total, calls = sum_of(n)
    assert calls == n, f"crunch(n={n}) called the kernel {calls} times"
    expected = sum(i * i * 7 + 3 for i in range(n))
    assert total == expected, f"crunch(n={n}) returned {total}, not {expected}"
big = wrapping_sum_of(3)
expected = sum(2**63 + i for i in range(3)) % 2**64
assert big == expected, f"a sum past u64::MAX wraps to {expected}, not {big}"
# Bigger sums, of n that no number of threads divides evenly (10007 and
# 100003 are prime), twice each with other kernels: each call sums its own.
for n in (10_007, 100_003):
    for factor in (1, 2, 3):
        total, calls, beyond = times_of(n, factor)
        assert beyond == 0, (
            f"crunch(n={n}) called the kernel with i >= n {beyond} times: "
            "the sum is over 0..n, and no further, however the work is split")
        assert calls == n, f"crunch(n={n}) called the kernel {calls} times, not once for each i"
        expected = factor * n * (n - 1) // 2
        assert total == expected, (
            f"crunch(n={n}) with the kernel i * {factor} returned {total}, not {expected}: "
            "each call sums the kernel it is given, computed afresh")
    try:
        big = wrapping_sum_of_max(n)
    except BaseException as error:
        raise AssertionError(
            f"crunch(n={n}) of a kernel that returns 2**64 - 1 failed ({error!r}): "
            "every addition of the sum wraps, the ones that add up threads' "
            "partial sums too") from None
    expected = -n % 2**64
    assert big == expected, f"a sum past u64::MAX wraps to {expected}, not {big}"
"#,
        |py, globals| {
            function(py, globals, c"sum_of", |args| {
                let n: u64 = args.get_item(0)?.extract()?;
                let calls = AtomicU64::new(0);
                let total = crunch(args.py(), n, |i| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    i * i * 7 + 3
                });
                (total, calls.into_inner()).into_py_any(args.py())
            })?;
            function(py, globals, c"wrapping_sum_of", |args| {
                let n: u64 = args.get_item(0)?.extract()?;
                crunch(args.py(), n, |i| (1 << 63) + i).into_py_any(args.py())
            })?;
            function(py, globals, c"wrapping_sum_of_max", |args| {
                let n: u64 = args.get_item(0)?.extract()?;
                crunch(args.py(), n, |_| u64::MAX).into_py_any(args.py())
            })?;
            function(py, globals, c"times_of", |args| {
                let n: u64 = args.get_item(0)?.extract()?;
                let factor: u64 = args.get_item(1)?.extract()?;
                let (calls, beyond) = (AtomicU64::new(0), AtomicU64::new(0));
                let total = crunch(args.py(), n, |i| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        beyond.fetch_add(1, Ordering::Relaxed);
                    }
                    i.wrapping_mul(factor)
                });
                (total, calls.into_inner(), beyond.into_inner())
                    .into_py_any(args.py())
            })
        },
    );
}

/// Both Python threads must be inside the kernel at once: a `crunch` that
/// holds the GIL keeps the second thread from ever calling it.
static MEETING: Barrier = Barrier::new(2);

/// `ch09::crunch::releases_the_gil`
pub fn releases_the_gil() {
    run_python(
        r#"
import threading
results = []
# However short the work: a sum of one term is released too.
threads = [threading.Thread(target=lambda: results.append((meet(1), meet(100))))
           for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert results == [(0, 4950), (0, 4950)], results
"#,
        |py, globals| {
            function(py, globals, c"meet", |args| {
                let n: u64 = args.get_item(0)?.extract()?;
                let total = crunch(args.py(), n, |i| {
                    if i == 0 {
                        MEETING.wait();
                    }
                    i
                });
                total.into_py_any(args.py())
            })
        },
    );
}

/// `ch09::crunch::counts_primes_from_python_threads`
pub fn counts_primes_from_python_threads() {
    run_python(
        r#"
import threading, ch09
assert ch09.count_primes(0) == 0 and ch09.count_primes(3) == 1
results = []
threads = [threading.Thread(target=lambda: results.append(ch09.count_primes(10_000)))
           for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert results == [1229] * 4, f"four threads counted {results} primes below 10000, not 1229 each"
"#,
        |_, _| Ok(()),
    );
}
