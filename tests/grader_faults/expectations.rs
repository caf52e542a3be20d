//! The verdict each trial of the corpus must get, and the further checks
//! of its outcome.

use course::grader::{self, Outcome};

type Check = fn(&Outcome) -> Result<(), String>;

/// The verdict each trial must get, and any further check of the outcome.
pub(crate) fn expectations() -> Vec<(&'static str, &'static str, Check)> {
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
        ("faults::panics_then_hangs", "FAIL", |o| {
            // The panic first, then the hang it caused.
            let said = o.verdict.to_string();
            mentions(&said, "the total overflowed")?;
            mentions(&said, "hung")
        }),
        ("faults::frees_what_it_allocates", "PASS", no_check),
        ("faults::leaks_memory", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "bytes were never freed")
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

pub(crate) fn mentions(text: &str, needle: &str) -> Result<(), String> {
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
