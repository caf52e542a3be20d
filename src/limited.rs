//! Running a command with limits: a deadline, a cap on the output kept, and
//! its whole process group killed at the end. The Run button's runner and
//! `course soak` use it.

use std::io::Read as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt as _;

/// Runs `command` in a process group of its own with a deadline, keeping at
/// most `limit` bytes of each output; kills the whole group at the end.
/// The status (`None` on timeout), stdout and stderr.
pub fn run(
    mut command: Command,
    timeout: Duration,
    limit: usize,
) -> Result<(Option<ExitStatus>, String, String), String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child =
        command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(pipe) = pipe {
                let mut pipe = pipe;
                let _ = (&mut pipe).take(limit as u64).read_to_end(&mut kept);
                // Past the cap, drain to nowhere, so a program that prints
                // a lot and ends is not blocked on a full pipe.
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = child.wait_timeout(timeout).map_err(|e| e.to_string())?;
    // Whatever happened, nothing the command started outlives it; this also
    // closes the pipes of a flood that passed the limit.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    if status.is_none() {
        let _ = child.wait();
    }
    // A process that left the group may still hold the pipes open: wait a
    // moment for the output, then go on without the rest.
    let (stdout, stderr) = (finish(stdout), finish(stderr));
    Ok((status, stdout, stderr))
}

/// The text a reader thread collected, if it ends within a second of the
/// kill; otherwise what is known: nothing.
fn finish(reader: std::thread::JoinHandle<String>) -> String {
    for _ in 0..100 {
        if reader.is_finished() {
            return reader.join().unwrap_or_default();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "(the output was still held open by a process the command started)"
        .to_string()
}
