//! Errors from `accept`: one that leaves no descriptor (`EMFILE`) and a
//! transient one (`ECONNABORTED`, provoked with a seccomp filter) both end
//! `serve` with that error, its connections closed.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use exercises::ch08_tokio::serve;
use tokio::net::TcpListener;

use super::super::{paused_runtime, runtime};
use super::{Client, RLimit, duplicate_of, getrlimit, prctl, setrlimit};

/// `RLIMIT_NOFILE` on Linux: the number of file descriptors a process
/// may hold (more exactly, one more than the highest it may open).
const RLIMIT_NOFILE: std::ffi::c_int = 7;

/// While it lives, this process can open no new file descriptor: the
/// next `accept` fails with `EMFILE`. Its drop restores the limit.
#[derive(Debug)]
struct NoNewFiles {
    before: RLimit,
}

impl NoNewFiles {
    fn now() -> NoNewFiles {
        let mut before = RLimit {
            current: 0,
            maximum: 0,
        };
        // SAFETY: `before` is a valid, writable `struct rlimit`.
        let got = unsafe { getrlimit(RLIMIT_NOFILE, &mut before) };
        assert_eq!(got, 0, "getrlimit failed");
        // The kernel gives the lowest free descriptor: this one's number.
        let next = {
            let probe = std::fs::File::open("/dev/null")
                .expect("cannot open /dev/null");
            std::os::fd::AsRawFd::as_raw_fd(&probe)
        };
        let lowered = RLimit {
            current: std::ffi::c_ulong::try_from(next)
                .expect("a descriptor is not negative"),
            maximum: before.maximum,
        };
        // SAFETY: `lowered` is a valid `struct rlimit`; lowering the soft
        // limit of this trial's own process is always allowed.
        let set = unsafe { setrlimit(RLIMIT_NOFILE, &lowered) };
        assert_eq!(set, 0, "setrlimit failed");
        NoNewFiles { before }
    }
}

impl Drop for NoNewFiles {
    fn drop(&mut self) {
        // SAFETY: `before` is the valid `struct rlimit` getrlimit gave;
        // raising the soft limit back up to it, below the hard limit, is
        // always allowed.
        unsafe { setrlimit(RLIMIT_NOFILE, &self.before) };
    }
}

/// A client is served; then the process may open no more files, and the
/// next client's connection makes `accept` fail (`EMFILE`). `serve` ends
/// with that error, and by then it has closed the first client's
/// connection too: the test reads it with a blocking read, as in
/// `closes_open_connections_on_shutdown`.
pub(crate) fn an_accept_error_ends_serve() {
    paused_runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot listen on 127.0.0.1");
        let address = listener.local_addr().expect("no local address");
        let mut server =
            std::pin::pin!(serve(listener, std::future::pending::<()>()));
        let first = tokio::select! {
            early = &mut server => panic!(
                "serve returned {early:?}, with no accept error and no \
                 shutdown"
            ),
            first = async {
                let mut client = Client::connect(address).await;
                client.echo("served before the error").await;
                client
            } => first,
        };
        // The second client's socket first: connecting it needs no new
        // descriptor, but accepting it on the server's side does.
        let second =
            tokio::net::TcpSocket::new_v4().expect("cannot create a socket");
        let no_new_files = NoNewFiles::now();
        let failing = tokio::time::Instant::now();
        let ended = tokio::select! {
            ended = &mut server => ended,
            () = async {
                let _connected = second.connect(address).await;
                std::future::pending::<()>().await;
            } => unreachable!("the client waits forever"),
        };
        let waited = failing.elapsed();
        drop(no_new_files);
        assert_eq!(
            waited,
            Duration::ZERO,
            "serve waited {waited:?} (on tokio's paused clock) after accept \
             failed before it returned: an error from accept ends serve at \
             once, with no pause and no retry (meanwhile the shutdown goes \
             unwatched, and the caller does not hear of the error)"
        );
        let error = ended.expect_err(
            "accept failed (EMFILE: no descriptor left), and serve \
             returned Ok: an error from accept ends serve with that error",
        );
        assert_eq!(
            error.raw_os_error(),
            Some(24),
            "serve's error should be accept's own, EMFILE (24): got {error}"
        );
        // No `.await` from here on: it would let the runtime finish what
        // `serve` only started.
        let mut stream = first.into_blocking();
        let mut byte = [0; 1];
        let after = stream.read(&mut byte);
        assert!(
            matches!(after, Ok(0) | Err(_)),
            "serve returned accept's error, but the connection it served \
             before sent {after:?} instead of closing: close every \
             connection on this way out too (JoinSet::shutdown().await)"
        );
    });
    // ECONNABORTED (103), then EINTR (4), which std's own blocking
    // `accept` would retry, and `serve` must not.
    for (errno, kind) in [
        (103, io::ErrorKind::ConnectionAborted),
        (4, io::ErrorKind::Interrupted),
    ] {
        a_transient_accept_error_ends_serve(errno, kind);
    }
}

/// A transient error from `accept` ends `serve` as well: a client that
/// gave up while it waited in the queue (`ECONNABORTED`), or a signal
/// that came during the call (`EINTR`), is an error like any other, not
/// one to skip. Linux gives a trial no way to provoke them at will, so a
/// seccomp filter on the trial's own thread makes `accept4` on the
/// listener fail with `errno`, an error of `kind`. A client waits in the queue before `serve`
/// starts; the shutdown future waits until a duplicate of the listener's
/// descriptor is readable (the runtime learns it in the same turn as the
/// listener's readiness), then yields once: in that turn `serve` calls
/// `accept`, whichever branch it polls first, and must return its error.
/// A `serve` that skips it goes round its loop and finds the shutdown
/// complete.
fn a_transient_accept_error_ends_serve(errno: u32, kind: io::ErrorKind) {
    let trial = std::thread::spawn(move || {
        runtime().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("cannot listen on 127.0.0.1");
            let address = listener.local_addr().expect("no local address");
            let duplicate = duplicate_of(&listener);
            let _client = std::net::TcpStream::connect(address)
                .expect("cannot connect to the server");
            if !fail_accepts_on_this_thread(listener.as_raw_fd(), errno) {
                // No seccomp here (another architecture, or a sandbox
                // that forbids it): nothing to check.
                return;
            }
            let shutdown = async move {
                let _ready = duplicate.readable().await;
                tokio::task::yield_now().await;
            };
            let ended = serve(listener, shutdown).await;
            assert!(
                matches!(
                    &ended,
                    Err(error) if error.kind() == kind
                ),
                "accept failed with an error of kind {kind:?} (a client \
                 gave up while it waited to be accepted, or a signal came \
                 during the call), and serve returned {ended:?}, after its \
                 shutdown: an error from accept, any error, ends serve with \
                 that error (do not skip ConnectionAborted, ConnectionReset \
                 or Interrupted, nor retry them: a retry is the caller's \
                 choice)"
            );
        });
    });
    if let Err(panic) = trial.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A classic BPF instruction, `struct sock_filter`.
#[repr(C)]
struct SockFilter {
    code: u16,
    jump_if_true: u8,
    jump_if_false: u8,
    operand: u32,
}

/// A BPF program, `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    length: u16,
    filter: *const SockFilter,
}

/// This architecture's `AUDIT_ARCH_*` and `accept4`'s system call number.
#[cfg(target_arch = "x86_64")]
const ACCEPT4: Option<(u32, u32)> = Some((0xC000_003E, 288));
#[cfg(target_arch = "aarch64")]
const ACCEPT4: Option<(u32, u32)> = Some((0xC000_00B7, 242));
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ACCEPT4: Option<(u32, u32)> = None;

/// From now on, on this thread only (a seccomp filter applies to the
/// thread that installs it, and to those it starts later), `accept4` on
/// `listener` fails with `errno`; every other call runs as ever. False if
/// the filter cannot be installed.
fn fail_accepts_on_this_thread(listener: RawFd, errno: u32) -> bool {
    const LOAD_WORD: u16 = 0x20;
    const JUMP_IF_EQUAL: u16 = 0x15;
    const RETURN: u16 = 0x06;
    const ERRNO: u32 = 0x0005_0000;
    const ALLOW: u32 = 0x7FFF_0000;
    let Some((arch, accept4)) = ACCEPT4 else {
        return false;
    };
    let fd = u32::try_from(listener).expect("a descriptor is not negative");
    let step = |code, jump_if_false, operand| SockFilter {
        code,
        jump_if_true: 0,
        jump_if_false,
        operand,
    };
    // `struct seccomp_data`: the call's number at byte 0, the
    // architecture at 4, and its first argument at 16 (its low half, on
    // these little-endian machines).
    let program = [
        step(LOAD_WORD, 0, 4),
        step(JUMP_IF_EQUAL, 5, arch),
        step(LOAD_WORD, 0, 0),
        step(JUMP_IF_EQUAL, 3, accept4),
        step(LOAD_WORD, 0, 16),
        step(JUMP_IF_EQUAL, 1, fd),
        step(RETURN, 0, ERRNO | errno),
        step(RETURN, 0, ALLOW),
    ];
    let program = SockFprog {
        length: u16::try_from(program.len()).expect("a short program"),
        filter: program.as_ptr(),
    };
    const PR_SET_SECCOMP: std::ffi::c_int = 22;
    const PR_SET_NO_NEW_PRIVS: std::ffi::c_int = 38;
    const SECCOMP_MODE_FILTER: std::ffi::c_ulong = 2;
    // `PR_SET_NO_NEW_PRIVS` fails unless its last three arguments are 0.
    const ONE: std::ffi::c_ulong = 1;
    const ZERO: std::ffi::c_ulong = 0;
    // SAFETY: `PR_SET_NO_NEW_PRIVS` takes four `unsigned long`s and
    // changes this thread's attribute only; `PR_SET_SECCOMP` takes the mode and a
    // pointer to a valid `struct sock_fprog`, whose instructions outlive
    // the call (the kernel copies them).
    unsafe {
        prctl(PR_SET_NO_NEW_PRIVS, ONE, ZERO, ZERO, ZERO) == 0
            && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &raw const program)
                == 0
    }
}
