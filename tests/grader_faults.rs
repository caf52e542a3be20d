//! The grader's own proof: a corpus of trials that misbehave the way learner
//! code does, each run through `course::grader::run_trial` exactly as the
//! graded suites are, and the verdict it must get.
//!
//! This binary is its own trial child: when the grader re-executes it with
//! a trial id, `run_child_if_requested` runs that one faulty trial.
//!
//! It is also a whole graded suite: started with `SUITE_DIR` set, it runs
//! `grader::main` over `suite()`, and the `suite::` tests check what an
//! instructor sees: the score table after `test result:`, the exit status,
//! `--list`, filters, and exclusive trials running alone.

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::{self, Outcome, Trial};
use libtest_mimic::{Arguments, Failed};

/// Short deadlines: these trials hang on purpose.
const HANG: Duration = Duration::from_secs(2);

fn corpus() -> Vec<Trial> {
    vec![
        Trial::new("faults::passes", 1, passes),
        Trial::new("faults::fails_an_assertion", 1, fails_an_assertion),
        Trial::new("faults::deadlocks", 1, deadlocks)
            .timeout(HANG)
            .on_timeout("did not run concurrently"),
        Trial::new("faults::loops_forever", 1, loops_forever).timeout(HANG),
        Trial::new("faults::panics_in_a_thread", 1, panics_in_a_thread),
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

fn fails_an_assertion() {
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

/// Set in the environment of the suite run; names a folder the suite's
/// trials share, to see which of them run at the same time.
const SUITE_DIR: &str = "FAULTS_SUITE_DIR";

/// A graded suite in miniature: two chapters, one failing trial, and an
/// exclusive trial among ordinary ones.
fn suite() -> Vec<Trial> {
    if std::env::var_os(HANGING_SUITE).is_some() {
        return vec![
            Trial::new("ch92::hang::a", 1, hangs_and_tells).timeout(HANG * 30),
            Trial::new("ch92::hang::b", 1, hangs_and_tells).timeout(HANG * 30),
        ];
    }
    let mut trials = vec![
        Trial::new("ch90::alone::runs_alone", 3, runs_alone).exclusive(),
        Trial::new("ch91::broken::fails", 2, fails_an_assertion),
    ];
    for name in ["a", "b", "c", "d", "e", "f"] {
        trials.push(Trial::new(
            format!("ch90::crowd::member_{name}"),
            1,
            crowd_member,
        ));
    }
    trials
}

fn suite_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(SUITE_DIR).expect("no suite folder"))
}

/// Set with `SUITE_DIR`: the suite is two trials that hang.
const HANGING_SUITE: &str = "FAULTS_HANGING_SUITE";

/// Starts a child, writes both pids to the suite folder, and hangs.
#[allow(clippy::zombie_processes, reason = "the grader must kill it")]
fn hangs_and_tells() {
    let child = Command::new("sleep").arg("300").spawn().unwrap();
    let pids = format!("{} {}\n", std::process::id(), child.id());
    let file = suite_dir().join(format!("pids-{}", std::process::id()));
    fs::write(file.with_extension("tmp"), pids).unwrap();
    fs::rename(file.with_extension("tmp"), file).unwrap();
    loop {
        thread::park();
    }
}

/// Whether a process is still alive (a zombie is not).
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Marks itself running, and fails if it ever sees the exclusive trial.
fn crowd_member() {
    let me = suite_dir().join(format!("running-{}", std::process::id()));
    fs::write(&me, "").unwrap();
    for _ in 0..20 {
        let alone = suite_dir().join("running-alone");
        assert!(!alone.exists(), "ran beside an exclusive trial");
        thread::sleep(Duration::from_millis(5));
    }
    fs::remove_file(&me).unwrap();
}

/// Fails if any other trial runs while it does. The sleeps give overlaps
/// time to show; without them the check is weaker, never wrong.
fn runs_alone() {
    let me = suite_dir().join("running-alone");
    fs::write(&me, "").unwrap();
    for _ in 0..20 {
        let others = fs::read_dir(suite_dir())
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path() != me)
            .count();
        assert_eq!(others, 0, "another trial ran beside an exclusive one");
        thread::sleep(Duration::from_millis(5));
    }
    fs::remove_file(&me).unwrap();
}

/// Runs this binary as the suite with `args`; returns (exit code, stdout).
fn run_suite(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env(SUITE_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout)
}

fn suite_checks() -> Vec<libtest_mimic::Trial> {
    let check = |name: &str, body: fn() -> Result<(), String>| {
        libtest_mimic::Trial::test(name, move || body().map_err(Failed::from))
    };
    vec![
        check("suite::score_table_follows_the_test_result", || {
            let (code, out) = run_suite(&["--test-threads", "4"]);
            if code == Some(0) {
                return Err(format!("a failing suite exited 0:\n{out}"));
            }
            let result = out
                .find("test result: FAILED. 7 passed; 1 failed")
                .ok_or(format!("no libtest summary:\n{out}"))?;
            let table = out
                .find("score by chapter and exercise")
                .ok_or(format!("no score table:\n{out}"))?;
            if table < result {
                return Err(format!("the table comes first:\n{out}"));
            }
            mentions(&out, "score: 9/11 points (81 %)")?;
            mentions(&out, "ch91")
        }),
        check("suite::exclusive_trials_run_alone", || {
            for _ in 0..3 {
                let (_, out) = run_suite(&["--test-threads", "4", "ch90"]);
                mentions(&out, "score: 9/9 points (100 %)")?;
            }
            Ok(())
        }),
        check("suite::list_shows_trials_and_no_score", || {
            let (code, out) = run_suite(&["--list"]);
            if code != Some(0) {
                return Err(format!("--list failed:\n{out}"));
            }
            mentions(&out, "ch90::alone::runs_alone: test")?;
            if out.contains("score") {
                return Err(format!("--list printed a score:\n{out}"));
            }
            Ok(())
        }),
        check("suite::ctrl_c_kills_the_running_trials", || {
            let dir = tempfile::tempdir().unwrap();
            let mut suite = Command::new(std::env::current_exe().unwrap())
                .args(["--test-threads", "2"])
                .env(SUITE_DIR, dir.path())
                .env(HANGING_SUITE, "1")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Both trials have started their children (no timing: a hang
            // here is caught by the trials' own long deadline).
            let pids: Vec<String> = loop {
                let told: Vec<String> = fs::read_dir(dir.path())
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name().to_string_lossy().starts_with("pids-")
                    })
                    .filter(|e| e.path().extension().is_none())
                    .map(|e| fs::read_to_string(e.path()).unwrap())
                    .collect();
                if told.len() == 2 {
                    break told
                        .iter()
                        .flat_map(|t| t.split_whitespace())
                        .map(str::to_string)
                        .collect();
                }
                thread::sleep(Duration::from_millis(10));
            };
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(suite.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .unwrap();
            let status = suite.wait().unwrap();
            if status.success() {
                return Err("the interrupted suite exited 0".into());
            }
            // The suite waits for its trials' processes to die before it
            // exits: none may be alive now.
            let left: Vec<&String> =
                pids.iter().filter(|pid| alive(pid)).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still running after Ctrl-C: {left:?}"))
            }
        }),
        check("suite::a_filter_grades_only_what_it_names", || {
            let (code, out) = run_suite(&["ch91"]);
            if code == Some(0) {
                return Err(format!("the failing trial passed:\n{out}"));
            }
            mentions(&out, "7 filtered out")?;
            mentions(&out, "score: 0/2 points (0 %)")
        }),
    ]
}

type Check = fn(&Outcome) -> Result<(), String>;

/// The verdict each trial must get, and any further check of the outcome.
fn expectations() -> Vec<(&'static str, &'static str, Check)> {
    vec![
        ("faults::passes", "PASS", no_check),
        ("faults::fails_an_assertion", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "expected 5 workers, saw 4")
        }),
        ("faults::deadlocks", "TIMEOUT", |o| {
            mentions(&o.verdict.to_string(), "did not run concurrently")
        }),
        ("faults::loops_forever", "TIMEOUT", no_check),
        ("faults::panics_in_a_thread", "FAIL", |o| {
            mentions(&o.stderr, "worker 3 gave up")?;
            // The verdict itself says why the thread panicked.
            mentions(&o.verdict.to_string(), "worker 3 gave up")
        }),
        ("faults::aborts", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "SIGABRT")
        }),
        ("faults::overflows_a_thread_stack", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "stack overflow")
        }),
        ("faults::exits_zero_early", "EXITED-EARLY", no_check),
        ("faults::exits_from_a_thread", "EXITED-EARLY", no_check),
        ("faults::prints_ten_mib", "OUTPUT-LIMIT", kept_within_limit),
        ("faults::prints_forever", "OUTPUT-LIMIT", no_check),
        ("faults::fakes_a_test_result", "FAIL", |o| {
            let report = o.report();
            match report.lines().find(|l| l.starts_with("test result")) {
                Some(line) => Err(format!("unprefixed fake line: {line}")),
                None => mentions(&report, "| test result: ok. 99 passed"),
            }
        }),
        ("faults::leaves_a_child", "LEFT-RUNNING", |o| {
            mentions(&o.verdict.to_string(), "still running")?;
            leftover_is_gone(o)
        }),
        ("faults::hangs_with_a_child", "TIMEOUT", leftover_is_gone),
        ("faults::livelocks", "TIMEOUT", no_check),
        ("faults::exits_one", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "status 1")
        }),
        ("faults::loses_a_worker", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "do not add up")?;
            mentions(&o.stderr, "worker 2 divided by zero")
        }),
        ("faults::println_200_mib", "OUTPUT-LIMIT", kept_within_limit),
        (
            "faults::writes_200_mib_to_fd_1",
            "OUTPUT-LIMIT",
            kept_within_limit,
        ),
        ("faults::leaves_a_thread_spinning", "PASS", no_check),
        ("faults::starts_100_000_threads", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "failed to spawn thread")?;
            if o.verdict.to_string().contains("/rustc/") {
                return Err(format!("a std path in: {}", o.verdict));
            }
            mentions(&o.verdict.to_string(), "about 2048 threads")
        }),
        ("faults::daemonizes", "LEFT-RUNNING", |o| {
            mentions(&o.verdict.to_string(), "still running")?;
            leftover_is_gone(o)
        }),
        ("faults::allocates_8_gib", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "out of memory")
        }),
        ("faults::reads_stdin", "PASS", no_check),
        ("faults::reruns_the_suite", "PASS", no_check),
    ]
}

fn no_check(_: &Outcome) -> Result<(), String> {
    Ok(())
}

/// The grader kept no more output than its limit.
fn kept_within_limit(outcome: &Outcome) -> Result<(), String> {
    let kept = outcome.stdout.len() + outcome.stderr.len();
    if kept <= grader::OUTPUT_LIMIT {
        Ok(())
    } else {
        Err(format!("kept {kept} bytes of output"))
    }
}

fn mentions(text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("expected {needle:?} in:\n{text}"))
    }
}

/// The trial's grandchild must have been killed with its process group.
fn leftover_is_gone(outcome: &Outcome) -> Result<(), String> {
    let pid: u32 = outcome
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("leftover pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| format!("no pid printed:\n{}", outcome.report()))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    match stat {
        // A killed process may linger as a zombie until it is reaped.
        Ok(stat)
            if !stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z')) =>
        {
            Err(format!("process {pid} survived the trial: {stat}"))
        }
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    if std::env::var_os(SUITE_DIR).is_some() {
        return grader::main(suite());
    }
    let trials = corpus();
    if let Some(code) = grader::run_child_if_requested(&trials) {
        return code;
    }
    let expected = expectations();
    assert_eq!(
        expected.len(),
        trials.len(),
        "every trial of the corpus needs an expected verdict"
    );
    let trials = Arc::new(trials);
    let tests: Vec<_> = expected
        .into_iter()
        .map(|(id, label, check)| {
            let trials = Arc::clone(&trials);
            libtest_mimic::Trial::test(id, move || {
                let trial = trials
                    .iter()
                    .find(|t| t.id() == id)
                    .ok_or_else(|| Failed::from("no such trial"))?;
                let started = std::time::Instant::now();
                let outcome = grader::run_trial(trial);
                if std::env::var_os("FAULTS_TABLE").is_some() {
                    // One row of the fault table for the report.
                    let reason = outcome.verdict.to_string();
                    let reason = reason.lines().next().unwrap_or("");
                    eprintln!(
                        "| {id} | {:.1} s | {reason} |",
                        started.elapsed().as_secs_f32()
                    );
                }
                if outcome.verdict.label() != label {
                    return Err(format!(
                        "expected {label}, got {}",
                        outcome.report()
                    )
                    .into());
                }
                check(&outcome).map_err(Failed::from)
            })
        })
        .chain(suite_checks())
        .collect();
    let conclusion = libtest_mimic::run(&Arguments::from_args(), tests);
    // The grader's own memory stays bounded whatever the trials write:
    // 400 MiB of floods above must not have been buffered.
    let peak = peak_memory_kib();
    if std::env::var_os("FAULTS_TABLE").is_some() {
        eprintln!("the grader's peak memory: {peak} KiB");
    }
    if peak > GRADER_MEMORY_KIB {
        eprintln!("the grader's peak memory was {peak} KiB");
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

/// The most memory this process may have used while judging the corpus.
const GRADER_MEMORY_KIB: u64 = 128 * 1024;

/// This process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
