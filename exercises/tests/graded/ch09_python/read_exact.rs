//! `read_exact`: bytes from a descriptor, with the GIL released while it
//! waits.

use course::grader::task;
use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;

use super::embed::{function, run_python};

/// The number of `read` on this machine.
#[cfg(target_arch = "x86_64")]
const READ: i64 = 0;
#[cfg(target_arch = "aarch64")]
const READ: i64 = 63;

/// Puts `wait_until_reading(tid)` in the script's globals: it returns once
/// thread `tid` is blocked in `read`, waiting with the GIL released.
fn with_wait_until_reading(
    py: pyo3::Python<'_>,
    globals: &pyo3::Bound<'_, pyo3::types::PyDict>,
) -> pyo3::PyResult<()> {
    function(py, globals, c"wait_until_reading", |args| {
        let tid: i32 = args.get_item(0)?.extract()?;
        args.py().detach(|| {
            while task::syscall(tid) != Some(READ) {
                std::thread::yield_now();
            }
        });
        args.py().None().into_py_any(args.py())
    })
}

/// `ch09::read_exact::reads_across_writes`
pub fn reads_across_writes() {
    run_python(
        r#"
import os, threading
from ch09 import read_exact
reader, writer = os.pipe()
me = threading.get_native_id()
assert read_exact(reader, 0) == b""
os.write(writer, b"\xff\x00a")
def write_the_rest():
    wait_until_reading(me)
    os.write(writer, b"b\xfe\n")
threading.Thread(target=write_the_rest, daemon=True).start()
got = read_exact(reader, 6)
assert got == b"\xff\x00ab\xfe\n", f"read_exact(6) gave {got!r}"
"#,
        with_wait_until_reading,
    );
}

/// `ch09::read_exact::heartbeat_keeps_ticking`
pub fn heartbeat_keeps_ticking() {
    run_python(
        r#"
import os, threading
from ch09 import read_exact
reader, writer = os.pipe()
me = threading.get_native_id()
ticks = []
def heartbeat():
    wait_until_reading(me)
    for tick in range(3):
        ticks.append(tick)
    os.write(writer, b"done")
threading.Thread(target=heartbeat, daemon=True).start()
assert read_exact(reader, 4) == b"done"
assert ticks == [0, 1, 2], ticks
"#,
        with_wait_until_reading,
    );
}

/// `ch09::read_exact::leaves_the_fd_open`
pub fn leaves_the_fd_open() {
    run_python(
        r#"
import os, threading
from ch09 import read_exact
reader, writer = os.pipe()
os.write(writer, b"abcdef")
assert read_exact(reader, 2) == b"ab"
os.fstat(reader)
assert read_exact(reader, 4) == b"cdef", "the second read_exact did not read what follows"
# And it leaves no descriptor of its own open.
before = len(os.listdir("/proc/self/fd"))
for _ in range(20):
    os.write(writer, b"x")
    read_exact(reader, 1)
after = len(os.listdir("/proc/self/fd"))
assert after == before, f"20 reads left {after - before} descriptors open"
# While it waits, its own copy is close-on-exec, as Python's descriptors
# are: a program that another thread starts meanwhile does not inherit it.
def open_fds():
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
            fds.add(int(name))
        except OSError:
            pass  # The listing's own descriptor, closed since.
    return fds
me = threading.get_native_id()
open_before = open_fds()
inherited = []
def look_while_it_waits():
    wait_until_reading(me)
    inherited.extend(fd for fd in open_fds() - open_before if os.get_inheritable(fd))
    os.write(writer, b"y")
looker = threading.Thread(target=look_while_it_waits, daemon=True)
looker.start()
assert read_exact(reader, 1) == b"y"
looker.join()
assert not inherited, (
    f"while read_exact waited, its descriptor {inherited[0]} was not close-on-exec: "
    "a program started meanwhile inherits it; duplicate with F_DUPFD_CLOEXEC")
os.close(reader)
os.close(writer)
"#,
        with_wait_until_reading,
    );
}

/// `ch09::read_exact::errors_are_exceptions`: each error leaves as many
/// descriptors open as before it; descriptor 0, a pipe put there, is read
/// byte for byte (what follows stays in the pipe), and once closed raises
/// as any closed descriptor does.
pub fn errors_are_exceptions() {
    run_python(
        r#"
import os
from ch09 import read_exact
def open_count():
    return len(os.listdir("/proc/self/fd"))
def raises(error, fd, n):
    before = open_count()
    try:
        read_exact(fd, n)
    except error:
        left = open_count() - before
        assert left == 0, (
            f"read_exact({fd}, {n}) raised {error.__name__} but left {left} descriptor(s) "
            "of its own open: close the copy on every way out, errors too (an OwnedFd "
            "or a File closes it when dropped, whichever way the function returns)")
        return
    except BaseException as other:
        raise AssertionError(
            f"read_exact({fd}, {n}) raised {other!r}, not {error.__name__}") from None
    raise AssertionError(f"read_exact({fd}, {n}) raised no {error.__name__}")
reader, writer = os.pipe()
os.write(writer, b"ab")
raises(OSError, writer, 1)  # a write end cannot be read: not an end of file
raises(OSError, writer, 0)  # n = 0 too: os.read(writer, 0) raises as well
os.close(writer)
raises(EOFError, reader, 5)
os.fstat(reader)  # still open after the error
for fd, n in ((-1, 1), (-2, 1), (-1, 0)):
    raises(ValueError, fd, n)
closed, other = os.pipe()
os.close(closed)
raises(OSError, closed, 1)
raises(OSError, closed, 0)
# Whatever n is, even one no memory could hold: a buffer that grows as the
# bytes come allocates only what is read (`vec![0; n]` up front panics or
# aborts the process).
for huge in (2**64 - 1, 2**62):
    raises(OSError, closed, huge)
    raises(OSError, other, huge)
    raises(EOFError, reader, huge)
# Descriptor 0 is a descriptor like any other.
zero_reader, zero_writer = os.pipe()
os.dup2(zero_reader, 0)
os.write(zero_writer, b"z")
assert read_exact(0, 1) == b"z", "read_exact(0, 1) did not read descriptor 0"
# It takes no more than n bytes from descriptor 0 either: what follows is
# still there, for any reader.
os.write(zero_writer, b"zy")
assert read_exact(0, 1) == b"z", "read_exact(0, 1) did not read descriptor 0"
os.close(zero_writer)
rest = os.read(0, 10)
assert rest == b"y", (
    f"after read_exact(0, 1) took b'z' of b'zy', descriptor 0 held {rest!r}, not b'y': "
    "read_exact took more than its byte from it (std::io::stdin() reads ahead into "
    "a buffer of its own); read descriptor 0 like any other, through a copy")
# And descriptor 0 closed is an OSError, as any other closed one.
os.close(0)
raises(OSError, 0, 1)
raises(OSError, 0, 0)
"#,
        |_, _| Ok(()),
    );
}
