//! The Run button's runner (`course serve`, `src/runner.rs`): it runs what
//! the reader's own page asks, and refuses everything else before anything
//! runs. Each refusal sends a snippet that would leave a marker file, and
//! checks the file is absent; the last request, a proper one, shows that
//! the same snippet does leave it.
//!
//! The scratch package lives in `target/runner-test`; its first build
//! compiles tokio and takes a minute or two, later runs reuse it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use std::os::unix::process::CommandExt as _;

use course::runner::{Launch, Runner};

mod support;

/// One server for the whole file, with a short run deadline.
fn server() -> &'static (Launch, Arc<Runner>) {
    static SERVER: OnceLock<(Launch, Arc<Runner>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let site = tempfile::tempdir().unwrap().keep();
        std::fs::write(site.join("index.html"), "<p>book</p>").unwrap();
        support::serve_with_runner_in_background(site, Duration::from_secs(3))
    })
}

/// A reply: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends one HTTP/1.1 request with exactly these headers.
fn send(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(server().0.address()).unwrap();
    // Only detects a hang: a snippet build may take a while the first time.
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    Reply {
        status,
        head: head.to_lowercase(),
        body: body.to_string(),
    }
}

/// The launch's own host, `<label>.localhost:<port>`.
fn host() -> String {
    server().0.host.clone()
}

/// The plain loopback address, which shows pages but may not run code.
fn plain_host() -> String {
    format!("127.0.0.1:{}", server().0.port)
}

/// The headers a same-origin `fetch` from the book sends.
fn proper(host: &str, token: &str) -> Vec<(String, String)> {
    vec![
        ("Host".into(), host.into()),
        ("Origin".into(), format!("http://{host}")),
        ("Sec-Fetch-Site".into(), "same-origin".into()),
        ("Content-Type".into(), "application/json".into()),
        ("X-Course-Token".into(), token.into()),
    ]
}

fn evaluate(headers: &[(String, String)], code: &str) -> Reply {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body =
        serde_json::json!({ "code": code, "edition": "2021" }).to_string();
    send("POST", "/__course/evaluate.json", &headers, &body)
}

fn result_of(reply: &Reply) -> String {
    let json: serde_json::Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|_| panic!("not JSON: {}", reply.body));
    json["result"].as_str().unwrap_or("").to_string()
}

fn marker_snippet(marker: &Path) -> String {
    format!(
        "fn main() {{ std::fs::write({:?}, \"ran\").unwrap(); println!(\"wrote it\"); }}",
        marker.display().to_string()
    )
}

/// The kernel's tables of listening sockets (state `0A`) name exactly
/// 127.0.0.1 and ::1 on the book's port: nothing another machine can
/// reach, and no loopback address left for another user to take.
#[test]
fn the_server_listens_on_both_loopback_addresses_only() {
    let port = format!(":{:04X}", server().0.port);
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(rows) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in rows.lines().skip(1) {
            let columns: Vec<&str> = row.split_whitespace().collect();
            if columns[1].ends_with(&port) && columns[3] == "0A" {
                listening.push(columns[1].to_string());
            }
        }
    }
    listening.sort();
    let loopback = [
        format!("00000000000000000000000001000000{port}"),
        format!("0100007F{port}"),
    ];
    assert_eq!(listening, loopback, "listening on {listening:?}");
}

#[test]
fn every_refusal_runs_nothing_and_a_proper_request_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let code = marker_snippet(&marker);
    let token = server().1.token().to_string();
    let host = host();
    for (what, headers, status) in &refusals(&host, &token) {
        let reply = evaluate(headers, &code);
        assert_eq!(reply.status, *status, "{what}: {}", reply.body);
        assert!(!marker.exists(), "{what}: the snippet ran");
        assert!(
            !reply.head.contains("access-control-allow-origin"),
            "{what}: a CORS header"
        );
    }
    let reply = evaluate(&proper(&host, &token), &code);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(result_of(&reply).contains("wrote it"), "{}", reply.body);
    assert!(
        marker.exists(),
        "the proper request did not run the snippet"
    );
    assert!(!reply.head.contains("access-control-allow-origin"));
}

/// A request the runner must refuse: what it stands for, its headers, and
/// the status it must get.
type Refusal = (&'static str, Vec<(String, String)>, u16);

/// The requests the runner must refuse, each a proper request with one
/// header changed or left out (an empty value).
fn refusals(host: &str, token: &str) -> Vec<Refusal> {
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        let mut headers = proper(host, token);
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name.to_string(), value.to_string()));
        }
        headers
    };
    vec![
        (
            "DNS rebinding: a foreign Host",
            with("Host", "evil.example:80"),
            403,
        ),
        (
            "another site's Origin",
            with("Origin", "http://evil.example"),
            403,
        ),
        (
            "a cross-site fetch",
            with("Sec-Fetch-Site", "cross-site"),
            403,
        ),
        ("no token", with("X-Course-Token", ""), 403),
        (
            "a wrong token",
            with("X-Course-Token", "0123456789abcdef"),
            403,
        ),
        (
            "a form post (text/plain)",
            with("Content-Type", "text/plain"),
            415,
        ),
        ("no content type", with("Content-Type", ""), 415),
        (
            "the plain loopback address, where an earlier program's page \
             may live on in the browser",
            with("Host", &plain_host()),
            403,
        ),
        (
            "localhost, the same",
            with("Host", &plain_host().replace("127.0.0.1", "localhost")),
            403,
        ),
        (
            "another launch's label",
            with(
                "Host",
                &format!("{}.localhost:{}", "0".repeat(32), server().0.port),
            ),
            403,
        ),
        (
            "a sandboxed frame or a file (Origin: null)",
            with("Origin", "null"),
            403,
        ),
        (
            "another port of this machine (same-site)",
            with("Sec-Fetch-Site", "same-site"),
            403,
        ),
        (
            "typed into the address bar (none)",
            with("Sec-Fetch-Site", "none"),
            403,
        ),
        ("loaded as a script", with("Sec-Fetch-Dest", "script"), 403),
        (
            "a page of the plain address (its own Host and Origin)",
            proper(&plain_host(), token),
            403,
        ),
    ]
}

#[test]
fn the_token_is_refused_to_other_sites() {
    let host = host();
    let reply = send(
        "GET",
        "/__course/token",
        &[("Host", &host), ("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    // Without the header only a same-origin script can add (a cross-origin
    // page would need a CORS preflight, which fails).
    let reply = send(
        "GET",
        "/__course/token",
        &[("Host", &host), ("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = send(
        "GET",
        "/__course/token",
        &[("Host", "attacker.example")],
        "",
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = send(
        "GET",
        "/__course/token",
        &[
            ("Host", &host),
            ("Sec-Fetch-Site", "same-origin"),
            ("X-Course-Token-Request", "1"),
        ],
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains(server().1.token()));
    assert!(!reply.head.contains("access-control-allow-origin"));
}

#[test]
fn a_deadlock_comes_back_as_timed_out() {
    let code = "use std::sync::Mutex;\n\
                fn main() {\n    let m = Mutex::new(0);\n    let _a = m.lock().unwrap();\n    \
                println!(\"locking again\");\n    let _b = m.lock();\n}\n";
    let reply = evaluate(&proper(&host(), server().1.token()), code);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let result = result_of(&reply);
    assert!(result.contains("locking again"), "{result}");
    assert!(result.contains("timed out"), "{result}");
}

#[test]
fn a_compile_error_is_shown_as_the_result() {
    let code = "fn main() { let x: u32 = \"text\"; }";
    let reply = evaluate(&proper(&host(), server().1.token()), code);
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The whole diagnostic, as the playground shows it: the error code,
    // the place, the line of code with its labels, how to learn more.
    let result = result_of(&reply);
    for part in [
        "error[E0308]: mismatched types",
        "--> src/main.rs:1:26",
        "fn main() { let x: u32 = \"text\"; }",
        "expected `u32`, found `&str`",
        "rustc --explain E0308",
    ] {
        assert!(result.contains(part), "{part:?} not in:\n{result}");
    }
}

#[test]
fn snippets_can_use_the_books_crates() {
    let code = "fn main() {\n    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();\n    \
                let (tx, rx) = crossbeam::channel::bounded(1);\n    tx.send(rt.block_on(async { 6 * 7 })).unwrap();\n    \
                let gil = course::gil::Gil::new();\n    drop(gil.acquire());\n    println!(\"{}\", rx.recv().unwrap());\n}\n";
    let reply = evaluate(&proper(&host(), server().1.token()), code);
    assert!(
        result_of(&reply).trim_end().ends_with("42"),
        "{}",
        reply.body
    );
}

#[test]
fn a_flood_of_output_is_capped_and_the_program_still_finishes() {
    let code = "fn main() {\n    for i in 0..100_000 {\n        println!(\"line {i} of a flood\");\n    }\n    \
                eprintln!(\"finished\");\n}\n";
    let reply = evaluate(&proper(&host(), server().1.token()), code);
    let result = result_of(&reply);
    assert!(
        result.len() <= 2 * course::runner::OUTPUT_LIMIT + 200,
        "{} bytes",
        result.len()
    );
    assert!(
        result.contains("finished"),
        "the program was blocked: {}",
        &result[result.len() - 200..]
    );
    assert!(
        !result.contains("timed out"),
        "{}",
        &result[result.len() - 200..]
    );
}

#[test]
fn a_huge_allocation_fails_inside_the_snippet() {
    let code = "fn main() {\n    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(8 << 30));\n    \
                println!(\"got {}\", v.capacity());\n}\n";
    let reply = evaluate(&proper(&host(), server().1.token()), code);
    let result = result_of(&reply);
    assert!(result.contains("memory allocation of"), "{result}");
    assert!(!result.contains("got 8"), "{result}");
}

#[test]
fn a_preflight_gets_no_cors_headers_and_pages_cannot_be_framed_elsewhere() {
    let host = host();
    let reply = send(
        "OPTIONS",
        "/__course/evaluate.json",
        &[
            ("Host", &host),
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert!(!reply.head.contains("access-control-"), "{}", reply.head);
    let page = send("GET", "/index.html", &[("Host", &host)], "");
    assert_eq!(page.status, 200);
    assert!(
        page.head.contains("x-frame-options: sameorigin"),
        "{}",
        page.head
    );
    assert!(
        page.head.contains("frame-ancestors 'self'"),
        "{}",
        page.head
    );
    let rebound = send("GET", "/index.html", &[("Host", "evil.example")], "");
    assert_eq!(rebound.status, 403, "a rebinding page read the book");
}

/// A Python client that asks for the token over `family` to `address` and
/// prints the answer, or `closed` if the server closed the connection
/// without one.
fn token_client(family: &str, address: &str) -> std::process::Command {
    let (launch, _) = server();
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.{family}, socket.SOCK_STREAM)\n\
         s.connect(('{address}', {port}))\n\
         s.sendall(b'GET /__course/token HTTP/1.1\\r\\nHost: {host}\\r\\n\
         Sec-Fetch-Site: same-origin\\r\\nX-Course-Token-Request: 1\\r\\n\
         Connection: close\\r\\n\\r\\n')\n\
         try:\n    answer = s.makefile('rb').read().decode()\n\
         except OSError:\n    answer = ''\n\
         print(answer or 'closed')\n",
        port = launch.port,
        host = launch.host,
    );
    let mut command = std::process::Command::new("python3");
    command.args(["-c", &script]);
    command
}

/// The three ways a client reaches the book: IPv4, IPv6, and an IPv6
/// socket connecting to 127.0.0.1 (the kernel lists it under the
/// IPv4-mapped address).
const CLIENTS: [(&str, &str); 3] = [
    ("AF_INET", "127.0.0.1"),
    ("AF_INET6", "::1"),
    ("AF_INET6", "::ffff:127.0.0.1"),
];

fn answer_of(mut command: std::process::Command) -> String {
    let output = command.output().expect("python3 is needed for this test");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The reader's own programs get an answer however they connect. A client
/// on an IPv6 socket that connects to 127.0.0.1 was once refused as
/// "another user".
#[test]
fn the_reader_is_answered_over_ipv4_ipv6_and_mapped_ipv4() {
    for (family, address) in CLIENTS {
        let answer = answer_of(token_client(family, address));
        assert!(
            answer.starts_with("HTTP/1.1 200")
                && answer.contains(server().1.token()),
            "{family} {address}: {answer}"
        );
    }
}

/// Another user of the machine reaches loopback too, but must not run code
/// as the reader: the server checks who owns the connecting socket as soon
/// as it accepts it, and closes it without an answer. Needs root to connect
/// as another user; skipped (with a message) otherwise.
#[test]
fn another_user_is_closed_before_anything_is_read() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can connect as another user here");
        return;
    }
    for (family, address) in CLIENTS {
        let mut client = token_client(family, address);
        client.uid(65534).gid(65534);
        let answer = answer_of(client);
        assert_eq!(answer.trim(), "closed", "{family} {address}: {answer}");
    }
}
