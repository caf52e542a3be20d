//! The trials of `run_isolated`.

use super::*;

/// The secret is set in this trial's own environment, so a child inherits
/// it unless its environment is cleared.
pub(super) fn set_secret() {
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, before anything has started another thread.
    unsafe { std::env::set_var("COURSE_SECRET_TOKEN", "hunter2") };
}

pub(super) fn child_environment() -> String {
    set_secret();
    let captured = run_isolated(&mut worker(&["env"]), Path::new("/"))
        .expect("run_isolated failed");
    assert!(captured.status.success());
    String::from_utf8_lossy(&captured.stdout).into_owned()
}

/// The names of the variables in `env`'s output, one `NAME=value` a line.
fn variable_names(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        .filter_map(|line| line.split('=').next())
        .map(str::to_string)
        .collect()
}

pub(super) fn hides_the_parents_secret() {
    // Variables whose names are `PATH` in another case are not `PATH`:
    // Linux tells names apart by case, so they stay behind too.
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, before anything has started another thread.
    unsafe {
        std::env::set_var("path", "/course-lowercase-path");
        std::env::set_var("Path", "/course-capitalised-path");
    }
    let env = child_environment();
    assert!(
        !env.contains("hunter2"),
        "the child saw COURSE_SECRET_TOKEN: a child inherits the parent's \
         whole environment unless you clear it"
    );
    let names = variable_names(env.as_bytes());
    assert_eq!(
        names,
        ["PATH"],
        "the child's environment should hold PATH only (the parent also \
         has `path` and `Path`, which are other variables: names differ by \
         case on Linux, and only `PATH` itself is kept)"
    );
    // A variable set on the command itself, not in the parent.
    let mut command = worker(&["env"]);
    command.env("COURSE_COMMANDS_OWN_SECRET", "swordfish");
    let captured = run_isolated(&mut command, Path::new("/"))
        .expect("run_isolated failed");
    let names = variable_names(&captured.stdout);
    assert_eq!(
        names,
        ["PATH"],
        "the command had a variable of its own (Command::env), and the \
         child saw it: its environment should hold PATH only, whatever the \
         parent's or the command's (Command::env_clear empties both; \
         removing the parent's variables one by one misses the command's)"
    );
    a_variable_set_meanwhile();
}

/// Another thread of the parent sets a variable while `run_isolated` runs,
/// after it has looked at the parent's variables and before the child
/// starts; std reads the parent's environment again as it starts a child,
/// unless `Command::env_clear` emptied the child's.
///
/// The trial puts two variables of its own into the environment with
/// `putenv`, which keeps the trial's own string rather than a copy:
/// `COURSE_LATE_A`, then one 100,000 bytes long. Just before the thread
/// that calls `run_isolated` copies that long value (its first allocation
/// that large: by then it has copied `COURSE_LATE_A`), the trial renames
/// `COURSE_LATE_A` to `COURSE_LATE_B` in place, as another thread could
/// right after that copy.
fn a_variable_set_meanwhile() {
    unsafe extern "C" {
        fn putenv(string: *mut std::ffi::c_char) -> i32;
    }
    const LONG: usize = 100_000;
    let late: &'static mut [u8] =
        Box::leak(Box::from(&b"COURSE_LATE_A=x\0"[..]));
    let mut long = b"COURSE_LONG=".to_vec();
    long.resize(long.len() + LONG, b'x');
    long.push(0);
    let long: &'static mut [u8] = Box::leak(long.into_boxed_slice());
    // Where the `A` of the name is; an address, so that the hook is `Sync`.
    let letter = late.as_mut_ptr() as usize + "COURSE_LATE_".len();
    // SAFETY: both strings end in a NUL and live as long as this process
    // (leaked); no other thread runs now.
    unsafe {
        putenv(late.as_mut_ptr().cast());
        putenv(long.as_mut_ptr().cast());
    }
    // SAFETY: the letter lies in a leaked string of the trial's own, which
    // nothing reads while the hook runs on the thread that would.
    let rename = move || unsafe { *(letter as *mut u8) = b'B' };
    let captured = course::grader::alloc::before_this_thread_allocates(
        LONG,
        &rename,
        || run_isolated(&mut worker(&["env"]), Path::new("/")),
    );
    // SAFETY: no other thread runs now.
    unsafe {
        for name in ["COURSE_LATE_A", "COURSE_LATE_B", "COURSE_LONG"] {
            std::env::remove_var(name);
        }
    }
    let captured = captured.expect("run_isolated failed");
    let names = variable_names(&captured.stdout);
    assert_eq!(
        names,
        ["PATH"],
        "the parent set COURSE_LATE_B while run_isolated ran (after it had \
         listed the parent's variables, before the child started), and the \
         child saw it: std reads the parent's environment again as it \
         starts the child, so removing the variables you listed one by one \
         misses one set meanwhile; empty the child's environment with \
         Command::env_clear, then give it PATH"
    );
}

pub(super) fn keeps_path() {
    let env = child_environment();
    let path = std::env::var("PATH").unwrap();
    assert!(
        env.lines().any(|line| line == format!("PATH={path}")),
        "the child should get the parent's PATH, to find programs"
    );
    // A PATH set on the command does not win over the parent's.
    let mut command = worker(&["env"]);
    command.env("PATH", "/course-commands-own-path");
    let captured = run_isolated(&mut command, Path::new("/"))
        .expect("run_isolated failed");
    let env = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        env.lines().collect::<Vec<_>>(),
        [format!("PATH={path}")],
        "the command set a PATH of its own (Command::env); the child's PATH \
         is still the parent's, like every other variable of the command's \
         is dropped"
    );
    // A PATH with empty and relative entries, and an empty PATH, reach the
    // child as they are: neither is cleaned up, nor dropped.
    for parents in [format!("{path}::bin:.:"), String::new()] {
        let env = with_parents_path(Some(&parents), &mut worker(&["env"]));
        assert_eq!(
            env,
            format!("PATH={parents}\n"),
            "the parent's PATH was {parents:?}: the child's PATH is the \
             parent's as it is, empty and relative entries and all, and an \
             empty PATH is still a PATH (set, to nothing)"
        );
    }
    // A parent without PATH: the child gets none either, not a made-up one,
    // nor the one set on the command.
    let env = with_parents_path(None, &mut worker(&["env"]));
    assert!(
        env.is_empty(),
        "the parent has no PATH, so the child's environment should be \
         empty; it was {env:?} (keep the parent's PATH, do not invent one)"
    );
    let mut command = worker(&["env"]);
    command.env("PATH", "/course-commands-own-path");
    let env = with_parents_path(None, &mut command);
    assert!(
        env.is_empty(),
        "the parent has no PATH, and the command set one of its own \
         (Command::env): the child's environment should still be empty, \
         like every variable of the command's is dropped; it was {env:?}"
    );
}

/// What the worker `command` printed (its environment), run by
/// `run_isolated` while the parent's PATH is `parents` (`None`: unset). The
/// parent's PATH is set back afterwards.
fn with_parents_path(parents: Option<&str>, command: &mut Command) -> String {
    let path = std::env::var_os("PATH");
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, and no other thread runs at this point.
    unsafe {
        match parents {
            Some(parents) => std::env::set_var("PATH", parents),
            None => std::env::remove_var("PATH"),
        }
    }
    let captured = run_isolated(command, Path::new("/"));
    // SAFETY: as above.
    unsafe {
        match path {
            Some(path) => std::env::set_var("PATH", path),
            None => std::env::remove_var("PATH"),
        }
    }
    let captured = captured.expect("run_isolated failed");
    String::from_utf8_lossy(&captured.stdout).into_owned()
}

/// Waits until `running` has started its child process (which then waits
/// for a flag the trial creates), or has ended without one: its result
/// then says why.
fn until_its_child_runs<T>(running: &std::thread::JoinHandle<T>) {
    while unwaited_children().is_empty() && !running.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Another thread looks at the parent's directory while the child runs: the
/// child waits for a flag that the trial creates only after looking.
pub(super) fn keeps_the_parents_directory_meanwhile() {
    let scratch = scratch();
    let dir = scratch.path().join("child");
    fs::create_dir(&dir).unwrap();
    let flag = scratch.path().join("looked");
    let before = std::env::current_dir().unwrap();
    let running = {
        let (dir, flag) = (dir.clone(), flag.clone());
        std::thread::spawn(move || {
            run_isolated(
                &mut worker(&["emit-then-wait", flag.to_str().unwrap()]),
                &dir,
            )
        })
    };
    // The child cannot end before the flag exists.
    until_its_child_runs(&running);
    let meanwhile = std::env::current_dir().unwrap();
    fs::write(&flag, "").expect("cannot create the flag");
    let captured = running.join().unwrap().expect("run_isolated failed");
    assert_eq!(String::from_utf8_lossy(&captured.stdout), "ping\n");
    assert_eq!(
        meanwhile, before,
        "while the child ran, the parent's own working directory was the \
         child's: every thread of the parent saw it; set the child's with \
         Command::current_dir instead"
    );
    let missing = scratch.path().join("no-such-program");
    let result = run_isolated(&mut Command::new(missing), &dir);
    assert!(result.is_err(), "the program does not exist: {result:?}");
    assert_eq!(
        std::env::current_dir().unwrap(),
        before,
        "a failed start changed the parent's working directory"
    );
    never_in_dir_for_a_moment();
}

/// A `dir` whose absolute name is over 2 KiB long, given while the
/// parent's own directory is `/`. The thread that calls `run_isolated` is
/// held at its first allocation of 4 KiB or more, and the parent's working
/// directory is looked at then: a `run_isolated` that changes to `dir` and
/// asks for its absolute name (`env::current_dir`, whose buffer grows to
/// 4 KiB to hold that name), then changes back, is seen in `dir`. Holding a
/// thread is only a delay, so another thread could see the same.
fn never_in_dir_for_a_moment() {
    let scratch = scratch();
    let mut dir = scratch.path().to_path_buf();
    while dir.as_os_str().len() < 2200 {
        dir.push("d".repeat(200));
    }
    fs::create_dir_all(&dir).expect("cannot create a folder");
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir("/").expect("cannot go to /");
    let seen = std::sync::Mutex::new(None);
    let look = || *seen.lock().unwrap() = Some(std::env::current_dir());
    let mut command = worker(&["pwd"]);
    let result = course::grader::alloc::before_this_thread_allocates(
        4096,
        &look,
        || run_isolated(&mut command, &dir),
    );
    std::env::set_current_dir(&before).expect("cannot go back");
    let captured = result.expect("run_isolated failed");
    let real = dir.canonicalize().expect("the folder is gone");
    assert_eq!(
        String::from_utf8_lossy(&captured.stdout),
        format!("{}\n", real.display()),
        "the child did not start in the directory it was given"
    );
    if let Some(Ok(meanwhile)) = seen.into_inner().unwrap() {
        assert!(
            meanwhile == Path::new("/"),
            "run_isolated changed the parent's own working directory to \
             dir, if only for a moment (to find its absolute name, say, as \
             `cd \"$dir\" && pwd` does): meanwhile every thread of the parent \
             was there, and one that opened a relative path then opened the \
             wrong file; never change the parent's directory \
             (env::set_current_dir), give the child its own with \
             Command::current_dir(dir), which takes a relative dir from the \
             parent's directory by itself"
        );
    }
}

/// The parent's environment, every variable, sorted.
fn parent_environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut variables: Vec<_> = std::env::vars_os().collect();
    variables.sort();
    variables
}

/// The parent holds a secret. Another thread reads the parent's whole
/// environment while the child runs (the child waits for a flag that the
/// trial creates only after reading), and again afterwards: both times it
/// must be exactly what it was, secret included.
pub(super) fn keeps_the_parents_environment() {
    set_secret();
    let before = parent_environment();
    let scratch = scratch();
    let flag = scratch.path().join("looked");
    let running = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            run_isolated(
                &mut worker(&["emit-then-wait", flag.to_str().unwrap()]),
                Path::new("/"),
            )
        })
    };
    // The child cannot end before the flag exists.
    until_its_child_runs(&running);
    let meanwhile = parent_environment();
    fs::write(&flag, "").expect("cannot create the flag");
    let captured = running.join().unwrap().expect("run_isolated failed");
    assert_eq!(String::from_utf8_lossy(&captured.stdout), "ping\n");
    assert!(
        meanwhile == before,
        "while the child ran, the parent's own environment was not what it \
         was before (every thread of the parent saw the change): empty the \
         child's environment with Command::env_clear, not the parent's"
    );
    assert!(
        parent_environment() == before,
        "after run_isolated, the parent's own environment is not what it \
         was before: empty the child's environment with Command::env_clear, \
         not the parent's"
    );
}

/// A `PATH` is bytes, like any variable: one that is not UTF-8 reaches the
/// child unchanged (the worker prints it with U+FFFD for the bad byte).
pub(super) fn keeps_a_path_that_is_not_text() {
    use std::os::unix::ffi::OsStringExt;
    let mut path = b"/not-text-\xff:".to_vec();
    path.extend(std::env::var_os("PATH").unwrap().into_vec());
    let path = std::ffi::OsString::from_vec(path);
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, before anything has started another thread.
    unsafe { std::env::set_var("PATH", &path) };
    let captured = run_isolated(&mut worker(&["env"]), Path::new("/"))
        .expect("run_isolated failed");
    let env = String::from_utf8_lossy(&captured.stdout);
    let expected = format!("PATH={}", path.to_string_lossy());
    assert!(
        env.lines().any(|line| line == expected),
        "the parent's PATH is not UTF-8; the child should get it all the \
         same (std::env::var_os, not var), but its environment was {env:?}"
    );
}

/// `run_isolated` in `/`, as a `Runner` for `capture`'s checks.
fn isolated(command: &mut Command) -> std::io::Result<Captured> {
    run_isolated(command, Path::new("/"))
}

/// Captures as `capture` does: both pipes at once, and the child's stdin
/// empty although the parent's own holds input; then `capture`'s own checks
/// (1 MiB on each stream, reads interrupted by a signal, 64 MiB and a byte
/// on each stream, and a child that closes its output and goes on running
/// is waited for, not killed).
pub(super) fn run_isolated_drains_both_pipes() {
    give_the_parent_a_stdin(b"the parent's input\n");
    let captured = run_isolated(&mut worker(&["upper"]), Path::new("/"))
        .expect("run_isolated failed");
    assert!(captured.status.success(), "the worker should succeed");
    assert_eq!(
        String::from_utf8_lossy(&captured.stdout),
        "",
        "the child read the parent's own stdin: a child inherits it unless \
         you give it another (Stdio::null()), as capture does"
    );
    const MIB: usize = 1 << 20;
    let captured =
        run_isolated(&mut worker(&["flood", "1048576"]), Path::new("/"))
            .expect("run_isolated failed");
    assert!(captured.status.success(), "the worker should succeed");
    assert_eq!(captured.stdout.len(), MIB, "stdout should be 1 MiB");
    assert_eq!(captured.stderr.len(), MIB, "stderr should be 1 MiB");
    captures_everything(isolated, "run_isolated");
    super::late_stderr::waits_for_a_child_that_closed_its_output(
        isolated,
        "run_isolated",
    );
}

/// Waits for the child when a read fails, or when no thread can start to
/// read a pipe, as `capture` does: `capture`'s own checks, run through
/// `run_isolated`.
pub(super) fn run_isolated_waits_when_a_read_fails() {
    failed_capture::waits_when_no_reader_can_start(isolated, "run_isolated");
    waits_after_a_failed_read(isolated, "run_isolated");
    failed_capture::reads_the_other_pipe_after_a_failed_read(
        isolated,
        "run_isolated",
    );
}

pub(super) fn starts_in_the_given_directory() {
    let scratch = scratch();
    let dir = scratch.path();
    let before = std::env::current_dir().unwrap();
    let captured =
        run_isolated(&mut worker(&["pwd"]), dir).expect("run_isolated failed");
    let printed = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        dir.canonicalize().unwrap(),
        "the child should start in the given directory"
    );
    assert_eq!(
        std::env::current_dir().unwrap(),
        before,
        "the parent's own working directory changed: set the child's with \
         Command::current_dir instead"
    );
    // A command with a working directory of its own still runs in `dir`:
    // `dir` is where run_isolated runs it, whatever the command said.
    let elsewhere = dir.join("elsewhere");
    fs::create_dir(&elsewhere).expect("cannot create a folder");
    let mut command = worker(&["pwd"]);
    command.current_dir(&elsewhere);
    let captured =
        run_isolated(&mut command, dir).expect("run_isolated failed");
    let printed = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        dir.canonicalize().unwrap(),
        "the command had a working directory of its own ({}), but \
         run_isolated runs it in the directory it is given ({}): set it on \
         the command whatever it was",
        elsewhere.display(),
        dir.display()
    );
    // A relative `dir` is relative to the parent's working directory, as
    // any path it opens is, not to the command's own: with both `sub` and
    // `elsewhere/sub` there, the child starts in the first.
    fs::create_dir(dir.join("sub")).expect("cannot create a folder");
    fs::create_dir(elsewhere.join("sub")).expect("cannot create a folder");
    std::env::set_current_dir(dir).expect("cannot change directory");
    let mut command = worker(&["pwd"]);
    command.current_dir(&elsewhere);
    let captured = run_isolated(&mut command, Path::new("sub"));
    std::env::set_current_dir(&before).expect("cannot change directory");
    let captured = captured.expect("run_isolated failed");
    let printed = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        dir.join("sub").canonicalize().unwrap(),
        "run_isolated was given the relative directory `sub` while the \
         parent's working directory was {}, and the command had one of its \
         own ({}): `dir` replaces the command's, so the child starts in \
         `sub` of the parent's directory, not in `sub` of the command's",
        dir.display(),
        elsewhere.display()
    );
    // A relative `dir` whose name is not UTF-8 is a name all the same: the
    // child starts in it, its bytes as they are.
    use std::os::unix::ffi::OsStrExt;
    let not_text = Path::new(std::ffi::OsStr::from_bytes(b"sub-\xff"));
    fs::create_dir(dir.join(not_text)).expect("cannot create a folder");
    std::env::set_current_dir(dir).expect("cannot change directory");
    let result = run_isolated(&mut shell(": >here"), not_text);
    std::env::set_current_dir(&before).expect("cannot change directory");
    assert!(
        result.is_ok() && dir.join(not_text).join("here").exists(),
        "run_isolated was given the relative directory {not_text:?}, whose \
         name is not UTF-8, while the parent's working directory was {}: the \
         child should start there (it creates `here` in it), but {}: a path \
         is bytes, so join paths with Path::join, not format! and display(), \
         which turns a byte that is not UTF-8 into U+FFFD",
        dir.display(),
        match &result {
            Ok(_) => "it started elsewhere".to_owned(),
            Err(error) => format!("run_isolated returned {error:?}"),
        }
    );
    // A directory that does not exist: the command must not run elsewhere,
    // not even in a working directory of its own.
    let missing = dir.join("no-such-directory");
    let flag = dir.join("ran");
    let mut command = shell(&format!("touch '{}'", flag.display()));
    command.current_dir(&elsewhere);
    let result = run_isolated(&mut command, &missing);
    assert!(
        result.is_err() && !flag.exists(),
        "the directory {} does not exist, so the command cannot run in it; \
         run_isolated must return the error (spawn's, of kind NotFound), \
         but it {}",
        missing.display(),
        if flag.exists() {
            "ran the command somewhere else"
        } else {
            "returned Ok"
        }
    );
    // ENOENT, "No such file or directory": the start's own error.
    const ENOENT: i32 = 2;
    let error = result.unwrap_err();
    assert_eq!(
        error.raw_os_error(),
        Some(ENOENT),
        "the directory {} does not exist: run_isolated should return the \
         error of the child's start as it is (ENOENT, \"No such file or \
         directory (os error 2)\"), not a new one of its own, but it \
         returned {error:?}",
        missing.display()
    );
}

/// A shell script that prints its own pid and its process group.
pub(super) const PRINTS_ITS_GROUP: &str = r#"read -r pid name state parent group rest </proc/$$/stat
    echo "$pid $group""#;

/// The process group of this process (the trial's).
pub(super) fn own_process_group() -> String {
    let stat = fs::read_to_string("/proc/self/stat").expect("no /proc");
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
    after_name
        .split_whitespace()
        .nth(2)
        .expect("no group")
        .to_owned()
}

/// The pid and the process group that a `PRINTS_ITS_GROUP` line gives.
pub(super) fn pid_and_group(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

/// Only the environment and the working directory change: the child stays
/// in the parent's process group unless the command puts it in another,
/// and a process group and an `argv[0]` set on the command are the
/// child's.
pub(super) fn leaves_the_rest_of_the_command() {
    use std::os::unix::process::CommandExt;
    let parents = own_process_group();
    let group = |command: &mut Command| {
        let captured =
            run_isolated(command, Path::new("/")).expect("run_isolated failed");
        let printed = String::from_utf8_lossy(&captured.stdout);
        let (pid, group) = pid_and_group(printed.trim_end());
        (pid.to_owned(), group.to_owned())
    };
    let (pid, child) = group(&mut shell(PRINTS_ITS_GROUP));
    assert_eq!(
        child, parents,
        "the command set no process group, yet the child (process {pid}) \
         was in group {child}, not in the parent's ({parents}): a signal \
         for the parent's job (Ctrl-C) no longer reaches it; run_isolated \
         changes the environment and the directory, nothing else"
    );
    let mut command = shell(PRINTS_ITS_GROUP);
    command.process_group(0);
    let (pid, child) = group(&mut command);
    assert_eq!(
        child, pid,
        "the command asked for a process group of its own \
         (CommandExt::process_group(0)), yet the child (process {pid}) was \
         in group {child}: run the command as it was set up, changing only \
         its environment and directory, not a copy rebuilt from its \
         program and arguments"
    );
    let mut command = shell(r"tr '\0' '\n' </proc/$$/cmdline | head -n 1");
    command.arg0("course-own-name");
    let captured = run_isolated(&mut command, Path::new("/"))
        .expect("run_isolated failed");
    assert_eq!(
        String::from_utf8_lossy(&captured.stdout),
        "course-own-name\n",
        "the command set its argv[0] (CommandExt::arg0), and the child's \
         argv[0] was not that: run the command as it was set up, not a copy \
         rebuilt from its program and arguments"
    );
}
