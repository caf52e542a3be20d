//! The commands' stdout pipes: each is drained while `run_all` waits,
//! and read to its end, past the exit of the command.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exercises::ch08_tokio::{Outcome, run_all};

use super::super::runtime;
use super::{
    GiveUpOnDrop, NEVER, is_running, scratch, shell, wait_until, worker,
};

/// Two children: the first waits until a file appears; the second
/// writes 1 MiB, far more than a pipe holds, and only then creates the
/// file. The second finishes only if its pipe is read while `run_all`
/// waits for the first, and the first only once the second has finished.
/// What it writes is valid UTF-8, `aé` (three bytes) over and over, in
/// writes whose sizes are no multiple of 3, so that some pipe reads end in
/// the middle of an `é`: it must come back intact (decode the whole
/// output, not each read on its own). A fourth writes 80 MiB, all of
/// which must come back.
pub(crate) fn drains_every_pipe_while_it_waits() {
    const BYTES: usize = 1 << 20;
    // More than any "safety cap" a reader might pick (16 MiB, 64 MiB):
    // 80 MiB.
    const LARGE: usize = 80 << 20;
    // `aé`s, three bytes each, to make up (almost) `BYTES` bytes.
    const PAIRS: usize = BYTES / 3;
    let scratch = scratch();
    let flag = scratch.path().join("written");
    let flag = flag.to_str().expect("a UTF-8 temporary path");
    let bytes = (3 * PAIRS).to_string();
    // A third writes as much to its stderr, which the caller sends
    // nowhere: no pipe for `run_all` to drain, unless it makes one.
    let mut noisy = shell(
        r#"head -c "$1" /dev/zero >&2 && echo quiet"#,
        &[&BYTES.to_string()],
    );
    noisy.stderr(Stdio::null());
    // A fourth writes 80 MiB of zeros, then a line: all of it is kept,
    // with no cap of the reader's own.
    let flood = shell(
        r#"head -c "$1" /dev/zero && echo end"#,
        &[&LARGE.to_string()],
    );
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["emit-then-wait", flag]),
            shell(
                r#"yes "$3" | tr -d '\n' | head -c "$1" && : > "$2""#,
                &[&bytes, flag, "a\u{e9}"],
            ),
            noisy,
            flood,
        ],
        NEVER,
    ));
    assert!(
        matches!(
            &outcomes[3],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout.len() == LARGE + 4
                    && stdout.ends_with("\0end\n")
                    && stdout.as_bytes()[..LARGE] == vec![0; LARGE][..]
        ),
        "the fourth command writes {LARGE} zero bytes and then end, and \
         exits with 0: got {} (stdout is everything the command wrote, \
         however much: no cap)",
        match &outcomes[3] {
            Ok(Outcome::Finished { code, stdout }) => format!(
                "code {code:?} and {} bytes of stdout, ending in {:?}",
                stdout.len(),
                &stdout[stdout.len().saturating_sub(4)..]
            ),
            other => format!("{other:?}"),
        }
    );
    assert!(
        matches!(
            &outcomes[2],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "quiet\n"
        ),
        "the third command writes 1 MiB to its stderr, which the caller \
         set to Stdio::null(), then prints quiet: got {:?} (pipe stdout \
         only, and leave stderr as the caller set it)",
        outcomes[2]
    );
    assert!(
        matches!(
            &outcomes[0],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "ping\n"
        ),
        "the first command prints ping and exits once the file appears: \
         got {:?}",
        outcomes[0]
    );
    assert!(
        matches!(
            &outcomes[1],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if *stdout == "a\u{e9}".repeat(PAIRS)
        ),
        "the second command writes `a\u{e9}` {PAIRS} times ({} bytes of \
         valid UTF-8) and exits with 0: got {}",
        3 * PAIRS,
        match &outcomes[1] {
            Ok(Outcome::Finished { code, stdout }) => format!(
                "code {code:?} and {} bytes of stdout, with {} replacement \
                 characters (U+FFFD: each is an `\u{e9}` cut in two by a \
                 read, and decoded in halves)",
                stdout.len(),
                stdout.chars().filter(|&c| c == '\u{fffd}').count()
            ),
            other => format!("{other:?}"),
        }
    );
}

/// A command whose output comes after it exited: the shell starts a
/// background process that holds its stdout, writes its pid to a file,
/// and exits at once. Its output is read to the end of the pipe, which
/// comes when the background process is done too: a `run_all` that stops
/// reading when the command exits loses what comes after.
///
/// The background process writes only once `run_all` has had its chance
/// to see the shell exit, and then 40 000 bytes, more than one read
/// takes. The test watches from a thread of its own: it waits until the
/// shell is a zombie (or reaped already), and then until the runtime has
/// gone to sleep twice: before the first sleep the runtime looks for
/// events anew, the shell's exit among them, and before the second it
/// has run every task that exit woke. The test keeps waking the runtime
/// meanwhile (a task that takes pings), so those sleeps come. Then it
/// lets the background process write. No pause decides it.
pub(crate) fn reads_stdout_to_its_end() {
    const BYTES: usize = 40_000;
    let scratch = scratch();
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    let (pid_file, go) = (path("pid"), path("go"));
    let script = r#"(while [ ! -e "$2" ]; do sleep 0.01; done; head -c "$3" /dev/zero) &
echo $$ > "$1.new" && mv "$1.new" "$1""#;
    let command = shell(script, &[&pid_file, &go, &BYTES.to_string()]);
    let parks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park({
            let parks = Arc::clone(&parks);
            move || {
                parks.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .expect("cannot build a tokio runtime");
    let given_up = Arc::new(AtomicBool::new(false));
    let (ping, mut pinged) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = std::thread::spawn({
        let (parks, given_up) = (Arc::clone(&parks), Arc::clone(&given_up));
        move || {
            wait_until(&given_up, || Path::new(&pid_file).exists());
            let Ok(pid) = fs::read_to_string(&pid_file) else {
                return;
            };
            let pid: u32 = pid.trim().parse().expect("a pid");
            wait_until(&given_up, || !is_running(pid));
            let seen = parks.load(Ordering::SeqCst);
            wait_until(&given_up, || {
                // An error: the runtime is gone, and so is the trial.
                let _ = ping.send(());
                parks.load(Ordering::SeqCst) >= seen + 2
            });
            let _ = fs::write(&go, "");
        }
    });
    let outcomes = runtime.block_on(async {
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let pings =
            tokio::spawn(async move { while pinged.recv().await.is_some() {} });
        let outcomes = run_all(vec![command], NEVER).await;
        pings.abort();
        outcomes
    });
    given_up.store(true, Ordering::SeqCst);
    watcher.join().expect("the watcher panicked");
    assert!(
        matches!(
            outcomes.as_slice(),
            [Ok(Outcome::Finished { code: Some(0), stdout })]
                if stdout.len() == BYTES
        ),
        "a command's background process wrote {BYTES} bytes to its stdout \
         after the command itself had exited: expected Finished with code \
         0 and all {BYTES} bytes, got {} (read stdout to its end, until \
         the read gives 0, and only then wait: the pipe is the command's \
         output, and its exit is not the end of it)",
        match outcomes.as_slice() {
            [Ok(Outcome::Finished { code, stdout })] =>
                format!("code {code:?} and {} bytes", stdout.len()),
            other => format!("{other:?}"),
        }
    );
}
