//! The notes' claims about processes and threads (chapter 2, P2 and P3),
//! proved rather than said. Each test re-runs this test binary as a child
//! process in a "scenario" mode and looks at how that child ended:
//!
//! - a child process that crashes leaves its parent running;
//! - a thread that aborts takes its whole process down, main thread too;
//! - a thread that panics ends alone, and the process carries on.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

const SCENARIO: &str = "COURSE_PROCESSES_SCENARIO";

/// Runs `test` of this binary again, as a child process in `scenario` mode.
fn run_scenario(test: &str, scenario: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .output()
        .unwrap()
}

fn scenario() -> Option<String> {
    std::env::var(SCENARIO).ok()
}

#[test]
fn a_thread_that_aborts_takes_the_whole_process() {
    if scenario().as_deref() == Some("abort") {
        println!("main: started");
        let worker = thread::spawn(|| std::process::abort());
        // Main has nothing to do with the abort, yet never gets further.
        thread::sleep(Duration::from_secs(5));
        let _ = worker.join();
        println!("main: finished");
        return;
    }
    let child =
        run_scenario("a_thread_that_aborts_takes_the_whole_process", "abort");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert_eq!(child.status.signal(), Some(6), "SIGABRT ends the process");
    assert!(stdout.contains("main: started"), "{stdout}");
    assert!(
        !stdout.contains("main: finished"),
        "main survived: {stdout}"
    );
}

#[test]
fn a_thread_that_panics_ends_alone() {
    if scenario().as_deref() == Some("panic") {
        let worker = thread::spawn(|| panic!("worker gave up"));
        assert!(worker.join().is_err(), "join reports the panic");
        println!("main: finished");
        return;
    }
    let child = run_scenario("a_thread_that_panics_ends_alone", "panic");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stderr}");
    assert!(stderr.contains("worker gave up"), "{stderr}");
    assert!(stdout.contains("main: finished"), "{stdout}");
}

#[test]
fn a_child_that_crashes_leaves_its_parent_running() {
    for (signal, program) in [(11, "kill -SEGV $$"), (6, "kill -ABRT $$")] {
        let status = Command::new("sh").args(["-c", program]).status().unwrap();
        assert_eq!(status.signal(), Some(signal));
    }
    // Still here to check: this very line runs in the parent.
    let status = Command::new("sh").args(["-c", "exit 0"]).status().unwrap();
    assert!(status.success());
}
