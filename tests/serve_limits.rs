//! What `course serve` does with clients that hold on to it (issue 21's
//! fourth weakness): a connection that sends nothing, or a request's head
//! a byte at a time, is closed after `course::book::HEADER_TIMEOUT`; more
//! connections than [`connection_cap`] wait in the kernel's queue while
//! the book goes on answering; a run request is checked on its headers
//! before its body is read, and its body has `course::book::BODY_TIMEOUT`
//! to arrive and at most [`BODY_LIMIT`] bytes; a header sent twice is refused; past
//! [`MAX_WAITING`] waiting runs, a run is refused as busy, and a waiting
//! run whose page went away gives its place back.
//!
//! Timeouts in these tests only detect hangs.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use course::book::{BODY_LIMIT, connection_cap};
use course::runner::{Launch, MAX_WAITING, Runner};

mod support;

/// How many descriptors this test process may open: few, as in the
/// review that found a book stopped by ~300 idle connections.
const DESCRIPTORS: u64 = 256;

/// One server for the whole file, in a process that may open only
/// [`DESCRIPTORS`] files; a snippet may run for 30 s, so a run that never
/// ends holds the runner for as long as a test needs it.
fn server() -> &'static (Launch, Arc<Runner>) {
    static SERVER: OnceLock<(Launch, Arc<Runner>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        setrlimit(Resource::RLIMIT_NOFILE, DESCRIPTORS.min(hard), hard)
            .unwrap();
        let site = tempfile::tempdir().unwrap().keep();
        std::fs::write(site.join("index.html"), "<p>book</p>").unwrap();
        support::serve_with_runner_in_background(site, Duration::from_secs(30))
    })
}

/// A connection to the book that gives up (fails the test) only on a hang.
fn connect() -> TcpStream {
    let stream = TcpStream::connect(server().0.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    stream
}

/// Everything the server sends until it closes the connection (a reset
/// counts as a close); fails the test if it never does.
fn read_all(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    if let Err(error) = stream.read_to_end(&mut answer) {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        assert!(
            !matches!(error.kind(), TimedOut | WouldBlock),
            "the server neither answered nor closed the connection"
        );
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request` on a fresh connection; everything the server answers.
fn exchange(request: &str) -> String {
    let mut stream = connect();
    stream.write_all(request.as_bytes()).unwrap();
    read_all(stream)
}

/// The head of a run request with the book's own headers, `extra` lines
/// (each ending in `\r\n`), and no body yet.
fn run_head(extra: &str) -> String {
    let (launch, runner) = server();
    format!(
        "POST /__course/evaluate.json HTTP/1.1\r\nHost: {host}\r\n\
         Origin: http://{host}\r\nSec-Fetch-Site: same-origin\r\n\
         Content-Type: application/json\r\nX-Course-Token: {token}\r\n\
         Connection: close\r\n{extra}",
        host = launch.host,
        token = runner.token(),
    )
}

/// A whole run request for `code`.
fn run_request(code: &str) -> String {
    let body = serde_json::json!({ "code": code }).to_string();
    format!(
        "{}Content-Length: {}\r\n\r\n{body}",
        run_head(""),
        body.len()
    )
}

/// Asks for the book's first page on a fresh connection; its answer.
fn get_page() -> String {
    let mut stream = connect();
    write!(
        stream,
        "GET /index.html HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server().0.host
    )
    .unwrap();
    read_all(stream)
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    let answer = read_all(connect());
    // Closed without a word, or with hyper's 408 for a head that never
    // came; either way, after HEADER_TIMEOUT rather than never.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// More connections than this process has descriptors, from another
/// process: half of them send nothing, half a header line now and then
/// and never the end of their head. The book still answers.
#[test]
fn slow_clients_past_the_descriptor_limit_do_not_stop_the_book() {
    let clients = DESCRIPTORS as usize + 44;
    assert!(clients > connection_cap());
    let script = format!(
        "import resource, select, socket, sys, time\n\
         soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n\
         held = []\n\
         for _ in range({clients}):\n    \
             s = socket.create_connection(('127.0.0.1', {port}))\n    \
             if len(held) % 2:\n        \
                 s.sendall(b'GET /index.html HTTP/1.1\\r\\n')\n    \
             held.append(s)\n\
         print('holding', flush=True)\n\
         while True:\n    \
             for s in held[1::2]:\n        \
                 try:\n            s.sendall(b'X-Drip: 1\\r\\n')\n        \
                 except OSError:\n            pass\n    \
             if select.select([sys.stdin], [], [], 0)[0]:\n        \
                 break\n    \
             time.sleep(0.5)\n",
        port = server().0.port,
    );
    let mut slow = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    let mut holding = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(slow.stdout.take().unwrap()),
        &mut holding,
    )
    .unwrap();
    assert_eq!(holding.trim(), "holding");
    let answer = get_page();
    // Tells the slow client to stop (its stdin becomes readable); it also
    // stops if this test dies.
    drop(slow.stdin.take());
    let _ = slow.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
    assert!(answer.contains("<p>book</p>"), "{answer:.300}");
}

/// A run whose headers fail a check is refused at once, while its
/// announced body has not been sent: the checks come before the body.
#[test]
fn a_refused_run_is_answered_before_its_body() {
    let head = run_head("Content-Length: 100\r\n\r\n")
        .replace("X-Course-Token: ", "X-Course-Token: wrong");
    let answer = exchange(&head);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

/// A proper run whose body never arrives gets 408 after BODY_TIMEOUT.
#[test]
fn a_run_whose_body_never_comes_is_answered_408() {
    let head = run_head("Content-Length: 100\r\n\r\n{\"co");
    let answer = exchange(&head);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive"), "{answer}");
}

#[test]
fn a_body_over_the_limit_is_refused_unread() {
    // Announced: refused before a byte of it is read.
    let head = run_head(&format!("Content-Length: {}\r\n\r\n", BODY_LIMIT + 1));
    let answer = exchange(&head);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, so not announced: refused once it passes the limit.
    let mut stream = connect();
    stream
        .write_all(run_head("Transfer-Encoding: chunked\r\n\r\n").as_bytes())
        .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..=BODY_LIMIT / chunk.len() {
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let answer = read_all(stream);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[test]
fn a_header_sent_twice_is_refused() {
    let (_, runner) = server();
    let twice = run_request("fn main() {}").replacen(
        "Connection: close\r\n",
        &format!(
            "Connection: close\r\nX-Course-Token: {}\r\n",
            runner.token()
        ),
        1,
    );
    let answer = exchange(&twice);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("sent twice"), "{answer}");
}

/// One run holds the runner; MAX_WAITING more wait; the next is refused
/// as busy. A waiting run whose connection closes gives its place back,
/// so a new one may wait again.
#[test]
fn past_the_queue_a_run_is_busy_and_a_dropped_one_frees_its_place() {
    let (_, runner) = server();
    let send = |code: &str| {
        let mut stream = connect();
        stream.write_all(run_request(code).as_bytes()).unwrap();
        stream
    };
    // Until the run ends (30 s) or the test ends, whichever comes first.
    let holder = send("fn main() { loop { std::thread::park(); } }");
    wait_until(|| runner.waiting() == 0 && runner.running());
    let mut waiting: Vec<TcpStream> =
        (0..MAX_WAITING).map(|_| send("fn main() {}")).collect();
    wait_until(|| runner.waiting() == MAX_WAITING);
    let busy = read_all(send("fn main() {}"));
    assert!(busy.contains("busy"), "{busy}");
    // A page closed: its request goes, and its place with it.
    waiting
        .pop()
        .unwrap()
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
    wait_until(|| runner.waiting() == MAX_WAITING - 1);
    let again = send("fn main() {}");
    wait_until(|| runner.waiting() == MAX_WAITING);
    drop((holder, waiting, again));
}

/// Waits until `done` holds; fails the test on a hang only.
fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..60_000 {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("what the test waited for never happened");
}
