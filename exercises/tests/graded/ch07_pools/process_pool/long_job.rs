//! The process pool sends a long job whole, even when a signal cuts its
//! write short, and when a signal interrupts a write before it wrote a byte.

use std::fs;
use std::panic;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use course::grader::task;
use exercises::ch07_pools::ProcessPool;

use super::{WORKER, parse, scratch};

/// How many zeros pad the long job: 8 MiB, far more than a pipe holds
/// (64 KiB by default, 1 MiB on a machine of 64 KiB pages).
const PADDING: usize = 8 << 20;

/// What a late reader runs (`sh -c SCRIPT sh DIR WORKER`): it reads
/// nothing until `DIR/go` exists, so a long job fills its stdin pipe and
/// blocks the pool's write, then it becomes the pool worker. It gives up
/// once `DIR` is gone (the trial is over).
const LATE_READER_SCRIPT: &str = "\
    while [ ! -e \"$1/go\" ]; do [ -d \"$1\" ] || exit 1; sleep 0.001; done; \
    exec \"$2\" pool";

/// A late reader (see [`LATE_READER_SCRIPT`]) that waits for `dir/go`.
fn late_reader(dir: &Path) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(LATE_READER_SCRIPT)
        .arg("sh")
        .arg(dir)
        .arg(WORKER);
    command
}

/// A job of 8 MiB, `countdown 000…07`, goes to a worker that reads nothing
/// yet: the pool's write fills the pipe and blocks. Then a signal reaches
/// the thread blocked in that write, so that the write returns how many
/// bytes it had written (a short write, which a signal, a non-Linux pipe or
/// a socket may give at any time); only then does the worker begin to
/// read. Before that, the write of the rest blocks on the full pipe, and a
/// signal whose handler does not restart calls interrupts it before it has
/// written a byte: it fails with `EINTR`. A pool that writes the rest of
/// the line (`write_all`, which writes again after `EINTR`) gets the
/// answer `counted 7`; one that sends the line with a single `write` and
/// ignores its count leaves the worker waiting forever for the rest of the
/// line, and `map` never returns; one whose own loop passes `EINTR` on
/// fails.
pub(in super::super) fn sends_a_long_job_whole() {
    let scratch = scratch();
    let dir = scratch.path().to_path_buf();
    let mut pool = ProcessPool::new(|| late_reader(&dir), 1)
        .expect("cannot start the pool");
    let pid = pool.pids()[0];
    let stdin = fs::read_link(format!("/proc/{pid}/fd/0"))
        .expect("cannot look at the worker's stdin");
    let job = format!("countdown {}7", "0".repeat(PADDING));
    let mapper = thread::spawn(move || {
        let answers = pool.map(&[job]);
        (pool, answers)
    });
    // No deadline: the trial's own ends a `map` that never writes.
    let writer = loop {
        if let Some(writer) = task::asleep_writing_to(&stdin) {
            break Some(writer);
        }
        if mapper.is_finished() {
            break None;
        }
        thread::sleep(Duration::from_millis(1));
    };
    let mut interrupted = false;
    if let Some(writer) = writer {
        // The handler runs once the write has returned its short count.
        task::freeze(writer);
        task::thaw();
        // The pipe is still full: the next `write` of the rest blocks
        // before it writes a byte, and a signal then makes it fail with
        // `EINTR`, which only means "try again".
        let again = loop {
            if let Some(writer) = task::asleep_writing_to(&stdin) {
                break Some(writer);
            }
            if mapper.is_finished() {
                break None;
            }
            thread::sleep(Duration::from_millis(1));
        };
        if let Some(writer) = again {
            task::interrupt(writer);
            interrupted = true;
        }
    }
    fs::write(dir.join("go"), "").expect("cannot create go");
    let (pool, answers) = mapper
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload));
    drop(pool);
    let answers = answers.unwrap_or_else(|error| {
        panic!(
            "map failed on a long job, whose write a signal cut short, and \
             whose next write a signal interrupted before it wrote a byte \
             (an error of kind Interrupted, EINTR, means write again, as \
             write_all does): {error}"
        )
    });
    assert!(
        writer.is_some() && interrupted,
        "map returned before any thread was seen blocked writing the job to \
         the worker's stdin, which the worker does not read yet, and then \
         blocked writing the rest"
    );
    let answers: Vec<&str> =
        answers.iter().map(|reply| parse(reply).1).collect();
    assert_eq!(
        answers,
        ["counted 7"],
        "the answer to the long job `countdown 000…07`"
    );
}
