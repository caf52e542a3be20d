//! The corpus: trials that misbehave the way learner code does, from a
//! failed assertion to a fork bomb of threads and a daemon.

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::Trial;

use crate::suite::SUITE_DIR;

/// Short deadlines: these trials hang on purpose.
pub(crate) const HANG: Duration = Duration::from_secs(2);

pub(crate) fn corpus() -> Vec<Trial> {
    vec![
        Trial::new("faults::passes", 1, passes),
        Trial::new("faults::fails_an_assertion", 1, fails_an_assertion),
        Trial::new("faults::deadlocks", 1, deadlocks)
            .timeout(HANG)
            .on_timeout("did not run concurrently"),
        Trial::new("faults::loops_forever", 1, loops_forever).timeout(HANG),
        Trial::new("faults::panics_in_a_thread", 1, panics_in_a_thread),
        Trial::new("faults::panics_then_hangs", 1, panics_then_hangs)
            .timeout(HANG),
        Trial::new("faults::frees_what_it_allocates", 1, frees_everything),
        Trial::new("faults::leaks_memory", 1, leaks_memory),
        Trial::new("faults::aborts", 1, aborts),
        Trial::new("faults::overflows_a_thread_stack", 1, overflows_stack),
        Trial::new("faults::exits_zero_early", 1, exits_zero_early),
        Trial::new("faults::exits_from_a_thread", 1, exits_from_a_thread),
        Trial::new("faults::prints_ten_mib", 1, prints_ten_mib),
        Trial::new("faults::prints_forever", 1, prints_forever).timeout(HANG),
        Trial::new("faults::fakes_a_test_result", 1, fakes_a_test_result),
        Trial::new("faults::leaves_a_child", 1, leaves_a_child),
        Trial::new("faults::hangs_with_a_child", 1, hangs_with_a_child)
            .timeout(HANG),
        Trial::new("faults::livelocks", 1, livelocks).timeout(HANG),
        Trial::new("faults::exits_one", 1, exits_one),
        Trial::new("faults::loses_a_worker", 1, loses_a_worker),
        Trial::new("faults::println_200_mib", 1, println_200_mib),
        Trial::new("faults::writes_200_mib_to_fd_1", 1, writes_200_mib),
        Trial::new("faults::leaves_a_thread_spinning", 1, leaves_a_spinner),
        Trial::new("faults::starts_100_000_threads", 1, thread_bomb),
        Trial::new("faults::daemonizes", 1, daemonizes),
        Trial::new("faults::allocates_8_gib", 1, allocates_8_gib),
        Trial::new("faults::reads_stdin", 1, reads_stdin),
        Trial::new("faults::reruns_the_suite", 1, reruns_the_suite),
    ]
}

/// What a leak check in a graded suite looks like: the live bytes before
/// and after the code under test.
fn check_no_leak(code: impl FnOnce()) {
    assert!(
        course::grader::alloc::counting(),
        "this binary does not count"
    );
    let before = course::grader::alloc::live_bytes();
    code();
    let leaked = course::grader::alloc::live_bytes() - before;
    assert_eq!(leaked, 0, "{leaked} bytes were never freed");
}

fn frees_everything() {
    check_no_leak(|| {
        let shared = Arc::new(vec![1u8; 4096]);
        let other = Arc::clone(&shared);
        drop((shared, other));
    });
}

/// An `Rc` cycle: each keeps the other alive, so neither is freed.
fn leaks_memory() {
    use std::cell::RefCell;
    use std::rc::Rc;
    struct Node(RefCell<Option<Rc<Node>>>, #[allow(dead_code)] Vec<u8>);
    check_no_leak(|| {
        let a = Rc::new(Node(RefCell::new(None), vec![0; 4096]));
        let b = Rc::new(Node(RefCell::new(Some(Rc::clone(&a))), vec![0; 4096]));
        *a.0.borrow_mut() = Some(b);
    });
}

/// A worker panics while it holds the lock (an overflow, say), so it never
/// reaches the barrier the trial waits at: the hang follows from the panic.
fn panics_then_hangs() {
    let total = Arc::new(Mutex::new(u8::MAX));
    let done = Arc::new(std::sync::Barrier::new(2));
    let worker = {
        let (total, done) = (Arc::clone(&total), Arc::clone(&done));
        thread::spawn(move || {
            let mut total = total.lock().unwrap();
            *total = total
                .checked_add(black_box(1))
                .expect("the total overflowed");
            done.wait();
        })
    };
    done.wait();
    let _ = worker.join();
}

/// Two threads that each hold one lock and politely retry the other:
/// neither ever gets both.
fn livelocks() {
    let locks = Arc::new([Mutex::new(()), Mutex::new(())]);
    let both_held = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = [0, 1]
        .map(|first| {
            let (locks, both_held) =
                (Arc::clone(&locks), Arc::clone(&both_held));
            thread::spawn(move || {
                let _mine = locks[first].lock().unwrap();
                both_held.wait();
                while locks[1 - first].try_lock().is_err() {
                    thread::yield_now();
                }
            })
        })
        .into();
    for handle in handles {
        handle.join().unwrap();
    }
}

fn exits_one() {
    std::process::exit(1);
}

/// A worker panics before it sends its result, and nobody joins it: the
/// trial's own check on the results fails.
fn loses_a_worker() {
    let (results, received) = std::sync::mpsc::channel();
    for worker in 0..4 {
        let results = results.clone();
        thread::spawn(move || {
            assert_ne!(worker, 2, "worker 2 divided by zero");
            results.send(worker * 10).unwrap();
        });
    }
    drop(results);
    let sum: i32 = received.iter().sum();
    assert_eq!(sum, 60, "the workers' results do not add up");
}

fn println_200_mib() {
    let line = "y".repeat(1023);
    for _ in 0..200 * 1024 {
        println!("{line}");
    }
}

/// Writes to file descriptor 1 directly, past `println!` and its lock.
fn writes_200_mib() {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;
    // SAFETY: fd 1 is open for the whole process; `ManuallyDrop` keeps
    // this `File` from closing it.
    let out = unsafe { std::fs::File::from_raw_fd(1) };
    let mut out = std::mem::ManuallyDrop::new(out);
    let block = vec![b'z'; 1 << 20];
    for _ in 0..200 {
        out.write_all(&block).unwrap();
    }
}

/// Starts a thread that never stops, then passes: the verdict comes from
/// the checks, and the spinner dies with the trial's process.
fn leaves_a_spinner() {
    thread::spawn(|| {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    });
    let answer = black_box(6) * 7;
    assert_eq!(answer, 42);
}

/// A thread per item, for a hundred thousand items.
fn thread_bomb() {
    let handles: Vec<_> =
        (0..100_000).map(|_| thread::spawn(thread::park)).collect();
    for handle in &handles {
        handle.thread().unpark();
    }
    for handle in handles {
        handle.join().unwrap();
    }
}

/// The classic daemon: a subshell starts `setsid sleep` with closed stdio
/// in the background and exits, so the sleeper has a new session and
/// process group, and no parent in the trial. Prints its pid.
fn daemonizes() {
    let pid_file = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "(setsid sh -c 'echo $$ > {}; exec sleep 300' \
         </dev/null >/dev/null 2>&1 &)",
        pid_file.path().display()
    );
    let status = Command::new("sh").args(["-c", &script]).status().unwrap();
    assert!(status.success());
    let pid = loop {
        let text = fs::read_to_string(pid_file.path()).unwrap();
        if text.ends_with('\n') {
            break text;
        }
        thread::sleep(Duration::from_millis(5));
    };
    println!("leftover pid {}", pid.trim());
}

fn allocates_8_gib() {
    let memory: Vec<u8> = black_box(Vec::with_capacity(8 << 30));
    assert!(memory.capacity() >= 8 << 30);
}

/// Runs the graded suite again from inside a trial, as code that copies
/// Python's `sys.executable` habit might: the grader refuses.
fn reruns_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .env(SUITE_DIR, dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("started from inside a trial"), "{stderr}");
}

/// Waits for input that never comes: stdin is at its end at once.
fn reads_stdin() {
    let stdin = fs::read_link("/proc/self/fd/0").unwrap();
    assert_eq!(stdin, PathBuf::from("/dev/null"));
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(read, 0, "stdin should be empty");
}

fn passes() {
    let answer = thread::spawn(|| 6 * 7).join().unwrap();
    assert_eq!(answer, 42);
}

pub(crate) fn fails_an_assertion() {
    assert_eq!(2 + 2, 5, "expected 5 workers, saw 4");
}

fn deadlocks() {
    let lock = Mutex::new(0);
    let _held = lock.lock().unwrap();
    let _again = lock.lock(); // Same thread, same lock: never returns.
}

fn loops_forever() {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn panics_in_a_thread() {
    thread::spawn(|| panic!("worker 3 gave up"))
        .join()
        .expect("a worker thread panicked");
}

fn aborts() {
    std::process::abort();
}

fn overflows_stack() {
    fn depth(n: u64) -> u64 {
        if n == u64::MAX {
            return n;
        }
        let frame = black_box([n; 64]);
        frame[0] + depth(black_box(n + 1))
    }
    thread::Builder::new()
        .name("deep".into())
        .stack_size(64 * 1024)
        .spawn(|| depth(0))
        .unwrap()
        .join()
        .unwrap();
}

fn exits_zero_early() {
    std::process::exit(0);
}

fn exits_from_a_thread() {
    thread::spawn(|| std::process::exit(0)).join().unwrap();
}

fn prints_ten_mib() {
    let line = "x".repeat(1023);
    for _ in 0..10 * 1024 {
        println!("{line}");
    }
}

fn prints_forever() {
    loop {
        eprintln!("still going");
    }
}

fn fakes_a_test_result() {
    println!("test result: ok. 99 passed; 0 failed; 0 ignored");
    panic!("the real check failed");
}

/// Starts `sleep` and does not wait for it; prints its pid.
#[allow(clippy::zombie_processes, reason = "leaving it behind is the fault")]
fn leaves_a_child() {
    let child = Command::new("sleep").arg("300").spawn().unwrap();
    println!("leftover pid {}", child.id());
}

/// Starts `sleep`, prints its pid, then hangs.
fn hangs_with_a_child() {
    leaves_a_child();
    loop {
        thread::park();
    }
}
