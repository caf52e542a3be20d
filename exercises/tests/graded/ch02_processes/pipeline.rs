//! The trials of `pipeline`.

use super::*;

pub(super) fn runs_the_stages_at_once() {
    let scratch = scratch();
    let flag = scratch.path().join("first-line-arrived");
    let flag = flag.to_str().unwrap();
    let (output, exits) = pipeline(vec![
        worker(&["emit-then-wait", flag]),
        worker(&["upper"]),
        worker(&["flag-on-first-line", flag]),
    ])
    .expect("pipeline failed");
    assert_eq!(String::from_utf8_lossy(&output), "PING\n");
    assert_eq!(exits, vec![Exit::Code(0); 3]);
}

pub(super) fn streams_more_than_a_pipe_holds() {
    // A pipeline of one stage streams too: its stage writes 1 MiB, far
    // more than a pipe holds, which is read while it runs.
    let (output, exits) =
        pipeline(vec![shell("head -c 1048576 /dev/zero; printf o")])
            .expect("pipeline failed");
    assert_eq!(
        (output.len(), output.last(), exits),
        ((1 << 20) + 1, Some(&b'o'), vec![Exit::Code(0)]),
        "the only stage of a pipeline wrote 1 MiB and then `o`, and \
         succeeded; all of it should come out of pipeline"
    );
    const LINES: usize = 100_000;
    let (output, exits) = pipeline(vec![
        worker(&["lines", "100000"]),
        worker(&["upper"]),
        worker(&["upper"]),
    ])
    .expect("pipeline failed");
    let text = String::from_utf8(output).expect("the output is text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), LINES, "expected {LINES} lines out");
    assert_eq!(lines[0], "LINE 1");
    assert_eq!(lines[LINES - 1], format!("LINE {LINES}"));
    assert_eq!(exits, vec![Exit::Code(0); 3]);
    an_interrupted_read();
    // However much it is: 64 MiB and a byte more through `cat`, the last
    // byte a letter, all come out.
    const BIG: usize = 64 << 20;
    let (output, exits) = pipeline(vec![
        shell("head -c 67108864 /dev/zero; printf o"),
        shell("exec cat"),
    ])
    .expect("pipeline failed");
    assert_eq!(
        (output.len(), output.last()),
        (BIG + 1, Some(&b'o')),
        "64 MiB and then `o` flowed through the last stage; all of it \
         should come out of pipeline, with no cap on how much"
    );
    assert_eq!(exits, vec![Exit::Code(0); 2]);
}

/// A signal that arrives while `pipeline` waits for the last stage's output
/// interrupts the read (EINTR): that is no failure, the read is tried
/// again, and what was read before it is kept. The last stage copies the
/// first stage's line, then waits; the trial interrupts the reads only
/// after that line has come out (`with_interrupted_reads`), then lets the
/// last stage write another.
fn an_interrupted_read() {
    let scratch = scratch();
    let written = scratch.path().join("written");
    let go = scratch.path().join("go");
    let mut last = shell(
        r#"IFS= read -r line; printf '%s\n' "$line"; : >"$1"
        while [ ! -e "$2" ]; do sleep 0.01; done
        printf 'OUT\n'"#,
    );
    last.arg("sh").arg(&written).arg(&go);
    let stages = vec![shell(r"printf 'out\n'"), last];
    match with_interrupted_reads(&written, &go, move || pipeline(stages)) {
        Ok((output, exits)) => {
            assert_eq!(
                String::from_utf8_lossy(&output),
                "out\nOUT\n",
                "a read of the last stage's output that a signal interrupted \
                 is tried again, and all the output comes out, what was read \
                 before the signal included (`out`, then after the signals, \
                 `OUT`): keep the bytes read so far when you retry"
            );
            assert_eq!(exits, vec![Exit::Code(0); 2]);
        }
        Err(error) => panic!(
            "a signal interrupted the read of the last stage's output \
             (EINTR), and pipeline returned {error:?}: an interrupted read \
             has not failed, try it again (ErrorKind::Interrupted; \
             read_to_end does)"
        ),
    }
}

pub(super) fn reports_every_stage() {
    let (output, exits) = pipeline(vec![
        worker(&["lines", "3"]),
        worker(&["upper"]),
        worker(&["drain-then-exit", "5"]),
    ])
    .expect("pipeline failed");
    assert!(output.is_empty(), "the last stage prints nothing");
    assert_eq!(
        exits,
        vec![Exit::Code(0), Exit::Code(0), Exit::Code(5)],
        "one exit per stage, in stage order"
    );
    // A stage that SIGPIPE kills is reported as killed by it, as any other
    // signal: a shell without `pipefail` hides it, but it is no success.
    let (output, exits) =
        pipeline(vec![shell_killed_by(13, "PIPE"), shell("cat")])
            .expect("pipeline failed");
    assert!(output.is_empty(), "the last stage read nothing to copy");
    assert_eq!(
        exits,
        vec![Exit::Signal(13), Exit::Code(0)],
        "the first stage killed itself with SIGPIPE: its exit is \
         Exit::Signal(13), as exit_of gives, not a success"
    );
    // Output that is not text: bytes that are not UTF-8, and a `\r\n`.
    let bytes = b"\xff\xfe not text \xc3\x28\r\n";
    let (output, exits) = pipeline(vec![
        shell(r"printf '\377\376 not text \303\050\r\n'"),
        shell("cat"),
    ])
    .expect("pipeline failed on output that is not UTF-8");
    assert_eq!(
        output, bytes,
        "the last stage wrote bytes that are not UTF-8; the output is those \
         bytes as they are (read them with read_to_end, not read_to_string)"
    );
    assert_eq!(exits, vec![Exit::Code(0); 2]);
}

/// The parent's stdin holds a line; the first stage must not see it, nor
/// the only stage of a pipeline of one, which is the first stage too.
pub(super) fn the_first_stage_reads_nothing() {
    give_the_parent_a_stdin(b"the parent's input\n");
    let (output, exits) =
        pipeline(vec![worker(&["upper"])]).expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "",
        "the only stage of a pipeline of one stage read the parent's own \
         stdin: it is the first stage, and its stdin is empty too (a child \
         inherits the parent's stdin unless you give it another, \
         Stdio::null())"
    );
    assert_eq!(exits, vec![Exit::Code(0)]);
    give_the_parent_a_stdin(b"the parent's input\n");
    let (output, exits) =
        pipeline(vec![worker(&["upper"]), worker(&["upper"])])
            .expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "",
        "the first stage read the parent's own stdin: a child inherits it \
         unless you give it another (Stdio::null())"
    );
    assert_eq!(exits, vec![Exit::Code(0); 2]);
    // A stdin open for writing only is no empty stdin: `cat` fails to read
    // it (EBADF, "Bad file descriptor") where it sees its end in an empty
    // one. (The worker's Rust stdin reads EBADF as an end.)
    for count in [1, 2] {
        let stages = (0..count).map(|_| shell("cat")).collect();
        let (_, exits) = pipeline(stages).expect("pipeline failed");
        assert_eq!(
            exits,
            vec![Exit::Code(0); count],
            "`cat` as the first stage could not read its stdin (exit 1, \
             \"Bad file descriptor\"): the first stage's stdin must be open \
             for reading and at its end, as Stdio::null() gives it; \
             /dev/null opened for writing (File::create) cannot be read"
        );
    }
}

pub(super) fn takes_no_stages() {
    let (output, exits) = pipeline(Vec::new()).expect("pipeline failed");
    assert!(output.is_empty(), "no stages print nothing");
    assert!(exits.is_empty(), "no stages have no exits");
}

/// A stage whose stderr goes to a file writes 1 MiB there: the pipeline
/// must not take that stderr over (a pipe nobody reads fills up).
pub(super) fn leaves_stderr_to_the_stage() {
    const MIB: usize = 1 << 20;
    let scratch = scratch();
    let path = scratch.path().join("stderr");
    let file = fs::File::create(&path).expect("cannot create a file");
    let mut flood = worker(&["flood", "1048576"]);
    flood.stderr(file);
    let (output, exits) = pipeline(vec![flood]).expect("pipeline failed");
    assert_eq!(exits, vec![Exit::Code(0)]);
    assert_eq!(output.len(), MIB, "the output should be 1 MiB");
    let written = fs::read(&path).expect("cannot read the file");
    assert_eq!(
        written.len(),
        MIB,
        "the first stage's stderr should have gone to its file, as its \
         Command said"
    );
    // Stages whose Command leaves stderr alone: each prints what its own
    // stderr is (`/proc/self/fd/2`), and the last stage's lines come out
    // after the lines of the stages before it. A single stage first: it is
    // the first stage and the last, and no different from any other.
    let parents = fs::read_link("/proc/self/fd/2")
        .expect("cannot read /proc/self/fd/2")
        .to_string_lossy()
        .into_owned();
    let (output, exits) = pipeline(vec![shell("readlink /proc/self/fd/2")])
        .expect("pipeline failed");
    assert_eq!(exits, vec![Exit::Code(0)]);
    assert_eq!(
        String::from_utf8_lossy(&output).trim_end(),
        parents,
        "a pipeline of one stage whose Command leaves stderr alone: that \
         stage's stderr should be the parent's own, not a pipe (a shortcut \
         through Command::output pipes it, and throws what it collects \
         away)"
    );
    let (output, exits) = pipeline(vec![
        shell("readlink /proc/self/fd/2"),
        shell("cat; readlink /proc/self/fd/2"),
        shell("cat; readlink /proc/self/fd/2"),
    ])
    .expect("pipeline failed");
    assert_eq!(exits, vec![Exit::Code(0); 3]);
    let text = String::from_utf8_lossy(&output);
    let seen: Vec<&str> = text.lines().collect();
    assert_eq!(
        seen,
        [parents.as_str(); 3],
        "each stage printed where its stderr goes ({}), and every stage \
         whose Command does not set stderr should write to the parent's own \
         ({parents}): leave stderr alone, as the stage's Command has it \
         (Command::output pipes the stderr of the stage it runs, and throws \
         what it collects away)",
        ["first", "second", "last"]
            .iter()
            .zip(&seen)
            .map(|(stage, goes)| format!("{stage}: {goes}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    leaves_the_process_group_to_the_stage();
}

/// Each stage prints its pid and its process group (the middle one after
/// what the first printed, the last one after both): stages whose Command
/// sets no group stay in the parent's, and a stage whose Command asks for
/// a group of its own leads one. `pipeline` changes a stage's stdin and
/// stdout, nothing else.
fn leaves_the_process_group_to_the_stage() {
    use std::os::unix::process::CommandExt;
    let parents = own_process_group();
    let mut own = shell(&format!("cat; {PRINTS_ITS_GROUP}"));
    own.process_group(0);
    let (output, exits) = pipeline(vec![
        shell(PRINTS_ITS_GROUP),
        own,
        shell(&format!("cat; {PRINTS_ITS_GROUP}")),
    ])
    .expect("pipeline failed");
    assert_eq!(exits, vec![Exit::Code(0); 3]);
    let text = String::from_utf8_lossy(&output);
    let seen: Vec<(&str, &str)> = text.lines().map(pid_and_group).collect();
    assert_eq!(seen.len(), 3, "each stage prints a line: {text:?}");
    for (stage, (pid, group)) in [0, 2].map(|stage| (stage, seen[stage])) {
        assert_eq!(
            group, parents,
            "stage {stage} (process {pid}) was in process group {group}, \
             not in the parent's ({parents}), though its Command set no \
             group: a signal for the parent's job (Ctrl-C) no longer \
             reaches it; pipeline changes a stage's stdin and stdout, not \
             its process group (a shell's job control is not asked for)"
        );
    }
    let (pid, group) = seen[1];
    assert_eq!(
        group, pid,
        "the middle stage's Command asked for a process group of its own \
         (CommandExt::process_group(0)), yet the stage (process {pid}) was \
         in group {group}: leave the rest of each Command as it is"
    );
}

/// A stage whose stderr goes nowhere: a stage stopped by a broken pipe
/// reports it there, and the grader's output would only repeat it.
pub(super) fn quiet(mut command: Command) -> Command {
    command.stderr(Stdio::null());
    command
}

/// `yes | head -n 1`: the first stage writes lines forever, the middle one
/// copies them and flags the first, and the last stage exits once that
/// first line has passed. Each earlier stage must then fail to write and
/// end, as in a shell.
pub(super) fn an_early_exit_stops_the_stages_before() {
    let scratch = scratch();
    let flag = scratch.path().join("first-line-arrived");
    let flag = flag.to_str().unwrap();
    let forever = u64::MAX.to_string();
    let (output, exits) = pipeline(vec![
        quiet(worker(&["lines", &forever])),
        quiet(worker(&["flag-on-first-line", flag])),
        quiet(worker(&["emit-then-wait", flag])),
    ])
    .expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "ping\n",
        "the output is what the last stage wrote"
    );
    assert_eq!(exits.len(), 3, "one exit per stage, got {exits:?}");
    assert_eq!(exits[2], Exit::Code(0), "the last stage succeeds");
    for (stage, exit) in exits[..2].iter().enumerate() {
        assert!(
            matches!(exit, Exit::Code(70) | Exit::Signal(13)),
            "stage {stage} should end on its broken pipe: the worker exits \
             with 70 when a write fails (a program that does not handle \
             SIGPIPE, like yes, dies of signal 13); got {exits:?}"
        );
    }
    pipeline_ends::a_write_after_the_reader_left();
    pipeline_ends::a_slow_start_after_the_reader_left();
}

/// The processes this one started that nobody has waited for yet: still
/// running, or zombies. The trial runs in a process of its own, so they
/// are the trial's.
pub(super) fn unwaited_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default();
            // After the parenthesised command name: state, then the
            // parent's pid.
            let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
            after_name.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

/// A stage whose program does not exist, after the stages `before` (which
/// wait for a file that never comes) and before a last one: `pipeline`
/// must return the error and leave none of the stages it started behind,
/// neither running nor unwaited for.
fn a_failed_start(before: usize, stages: usize) {
    let scratch = scratch();
    let flag = scratch.path().join("never");
    let waiting = || worker(&["emit-then-wait", flag.to_str().unwrap()]);
    let mut commands: Vec<Command> = (0..before).map(|_| waiting()).collect();
    commands.push(Command::new(scratch.path().join("no-such-program")));
    commands.extend((before + 1..stages).map(|_| waiting()));
    let result = pipeline(commands);
    let left = unwaited_children();
    if let Err(error) = &result {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::NotFound,
            "stage {before} of {stages} does not exist: pipeline should \
             return the error of its start as it is (its kind NotFound), \
             not a new one, but it returned {error:?}"
        );
        // ENOENT, "No such file or directory": the error's own code,
        // which a new error of the same kind does not keep.
        const ENOENT: i32 = 2;
        assert_eq!(
            error.raw_os_error(),
            Some(ENOENT),
            "stage {before} of {stages} does not exist: pipeline should \
             return the error of its start as it is (the system's own error, \
             ENOENT, \"No such file or directory (os error 2)\"), not a new \
             one, not even one of the same kind with a message of your own, \
             but it returned {error:?}"
        );
    }
    // Let a stage left behind end, now that it has been counted.
    fs::write(&flag, "").expect("cannot create the flag");
    assert!(
        result.is_err(),
        "stage {before} of {stages} cannot start, yet pipeline returned \
         {result:?}"
    );
    assert!(
        left.is_empty(),
        "stage {before} of {stages} could not start, and pipeline failed, \
         but left {} stage(s) it had started behind (processes {left:?}, \
         running or never waited for): kill and wait for every stage \
         already started before returning the error",
        left.len()
    );
}

/// The first stage cannot start (none has started yet), then the second
/// (one has), then the third (two have: stopping only the stage just before
/// the failed one leaves the first behind).
pub(super) fn stops_the_started_stages_on_a_failed_start() {
    a_failed_start(0, 2);
    a_failed_start(1, 2);
    a_failed_start(2, 3);
}

/// Reading the last stage's output fails: the trial makes its own end of
/// that pipe non-blocking once the stages run, so the first read that finds
/// it empty fails with `WouldBlock`. The first stage has ended by then,
/// and the last one writes a byte a while until its pipe breaks, so it ends
/// once the parent drops its end. Neither may be left a zombie.
pub(super) fn waits_even_when_the_read_fails() {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let first = scratch.path().join("first-ended");
    let commands = vec![
        shell(&format!("touch '{}'", first.display())),
        writes_after(&go, 1),
    ];
    let running = std::thread::spawn(move || pipeline(commands));
    let (last, pipe) = child_running(&go, 1);
    make_reads_fail(&pipe);
    // Both stages were started before the read; the first one has ended.
    while !first.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::write(&go, "").expect("cannot create the flag");
    let result = running.join().unwrap();
    let error = result.as_ref().err().unwrap_or_else(|| {
        panic!(
            "reading the last stage's output failed, yet pipeline returned \
             {result:?}"
        )
    });
    // The read fails with `EAGAIN` (`WouldBlock`), and no wait fails.
    assert!(
        error.kind() == std::io::ErrorKind::WouldBlock
            && error.raw_os_error() == Some(libc::EAGAIN),
        "reading the last stage's output failed with \"{}\", and pipeline \
         returned another error: {error:?}; return the read's error as it \
         is (its kind and OS error code kept), not a new one (not even \
         with context added)",
        std::io::Error::from_raw_os_error(libc::EAGAIN)
    );
    // Let a stage left behind end: its stdout is closed by now.
    until_ended_or_zombie(last);
    let left = unwaited_children();
    assert!(
        left.is_empty(),
        "reading the last stage's output failed, and pipeline returned the \
         error, but left {} stage(s) behind unwaited for (processes \
         {left:?}, zombies): wait for every stage first, then return the \
         error",
        left.len()
    );
    // The last stage can end only once the trial lets it, which it does
    // once `pipeline` waits or has returned.
    let (result, ended) =
        returns_once_reaped(|last| pipeline(vec![shell(":"), last]));
    assert!(
        result.is_err(),
        "reading the last stage's output failed, yet pipeline returned \
         {result:?}"
    );
    assert!(
        ended,
        "pipeline returned when reading the last stage's output failed \
         while that stage was still running (it could not end yet): wait \
         for every stage before returning, not in the background, so that \
         they are gone when pipeline returns"
    );
    a_failed_wait();
    pipeline_ends::a_failed_wait_in_the_middle();
}

/// Waiting for a stage fails: the trial reaps the first stage itself once
/// it has ended, while `pipeline` still reads the last stage's output (the
/// last stage ends only once the trial lets it), so `pipeline`'s own wait
/// for the first stage fails (`ECHILD`). It returns an error, but waits
/// for the last stage first: none is left a zombie.
fn a_failed_wait() {
    unsafe extern "C" {
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
    let scratch = scratch();
    let go = scratch.path().join("go");
    let last = worker(&["emit-then-wait", go.to_str().unwrap()]);
    let running = std::thread::spawn(move || pipeline(vec![shell(":"), last]));
    let runs_last = |pid: &u32| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .windows(go.as_os_str().len())
            .any(|w| w == go.as_os_str().as_encoded_bytes())
    };
    // The first stage, once it has ended and before anyone has waited for
    // it: `None` if `pipeline` waited for it first (nothing to check then).
    let first = loop {
        let children = unwaited_children();
        let (last, others): (Vec<u32>, Vec<u32>) =
            children.into_iter().partition(runs_last);
        if running.is_finished() || (!last.is_empty() && others.is_empty()) {
            break None;
        }
        if let Some(&zombie) =
            others.iter().find(|&&pid| state_of(pid) == Some('Z'))
        {
            break Some(zombie);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let reaped = first.is_some_and(|pid| {
        let mut status = 0;
        // SAFETY: `waitpid` only writes the status through a pointer to a
        // local; it reaps a child of this process that has ended.
        unsafe { waitpid(pid as i32, &raw mut status, 0) == pid as i32 }
    });
    fs::write(&go, "").expect("cannot create the flag");
    let result = running.join().unwrap();
    if !reaped {
        return;
    }
    let left = unwaited_children();
    assert!(
        result.is_err(),
        "the first stage had been reaped by someone else, so waiting for it \
         failed, yet pipeline returned {result:?}"
    );
    assert!(
        left.is_empty(),
        "waiting for the first stage failed (someone else had reaped it), \
         and pipeline returned the error, but left {} stage(s) after it \
         behind unwaited for (processes {left:?}, zombies): wait for every \
         stage, then return the first error (collecting into \
         io::Result<Vec<_>> stops at the first one)",
        left.len()
    );
}
