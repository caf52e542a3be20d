//! How `course serve` sends the book's files (issue 23, "pages that open
//! instantly"): compressed with gzip or brotli for a browser that accepts
//! them, as they are otherwise; the files mdBook names by their content
//! kept by the browser for a year without asking again, everything else
//! revalidated on each use; the runner's replies never stored.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use course::runner::{Launch, Runner};

mod support;

/// What a hash-named file must carry.
const IMMUTABLE: &str = "cache-control: public, max-age=31536000, immutable";

/// What every other file must carry.
const NO_CACHE: &str = "cache-control: no-cache";

/// Files added to the built book whose names look hashed but are not
/// named the way mdBook names what it hashes: upper-case hex, seven or
/// nine digits, no name before the `-`, no extension.
const NOT_HASHED: [&str; 5] = [
    "look-0123ABCD.js",
    "look-0123abc.js",
    "look-0123abcde.js",
    "-0123abcd.js",
    "look-0123abcd",
];

/// The built book (with the [`NOT_HASHED`] files added), served with a
/// runner for the whole file.
fn server() -> &'static Served {
    static SERVER: OnceLock<Served> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (out, site) = support::build_book();
        for name in NOT_HASHED {
            fs::write(site.join(name), "let x = 1;\n".repeat(100)).unwrap();
        }
        let (launch, runner) = support::serve_with_runner_in_background(
            site.clone(),
            Duration::from_secs(3),
        );
        Served {
            _out: out,
            site,
            launch,
            runner,
        }
    })
}

/// The served book and what serves it.
struct Served {
    /// The folder the book was built in (kept as long as the tests run).
    _out: tempfile::TempDir,
    site: PathBuf,
    launch: Launch,
    runner: Arc<Runner>,
}

fn site() -> &'static Path {
    &server().site
}

/// A reply: its head (lower-case, and as sent) and its body, de-chunked.
struct Reply {
    head: String,
    sent_head: String,
    body: Vec<u8>,
}

impl Reply {
    fn status(&self) -> &str {
        self.head.split_whitespace().nth(1).unwrap_or("")
    }

    fn has(&self, header: &str) -> bool {
        self.head.lines().any(|line| line.trim_end() == header)
    }

    /// The value of the header `name` (lower-case), as sent.
    fn value(&self, name: &str) -> Option<&str> {
        self.sent_head.lines().find_map(|line| {
            let (header, value) = line.split_once(':')?;
            header.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `method path` with the launch's Host and `headers`; the reply.
fn send(method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let launch = &server().launch;
    let mut stream = TcpStream::connect(launch.address()).unwrap();
    // Only detects a hang.
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        launch.host
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end to the reply's head");
    let sent_head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let head = sent_head.to_lowercase();
    let mut body = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply {
        head,
        sent_head,
        body,
    }
}

fn get(path: &str, headers: &[(&str, &str)]) -> Reply {
    send("GET", path, headers)
}

/// The data of a chunked body.
fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let line = chunked.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&chunked[..line]).unwrap();
        let size = size.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size, 16).unwrap();
        chunked = &chunked[line + 2..];
        if size == 0 {
            return data;
        }
        data.extend_from_slice(&chunked[..size]);
        chunked = &chunked[size + 2..];
    }
}

/// The path (from the site's root, with a leading `/`) of the one file in
/// `dir` whose name starts with `prefix` and ends with `suffix`.
fn built(dir: &str, prefix: &str, suffix: &str) -> String {
    let names: Vec<String> = fs::read_dir(site().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
        .collect();
    assert_eq!(names.len(), 1, "{dir}/{prefix}…{suffix}: {names:?}");
    format!("/{dir}/{}", names[0]).replace("//", "/")
}

/// mermaid.min.js, the book's largest file (2.6 MB). The pages load it
/// themselves, only where there is a diagram (chapters/mermaid/
/// mermaid-lazy.js), from the copy mdBook makes without a hash in its
/// name.
const MERMAID: &str = "/mermaid/mermaid.min.js";

fn file(path: &str) -> Vec<u8> {
    fs::read(site().join(path.trim_start_matches('/'))).unwrap()
}

#[test]
fn large_assets_are_compressed_for_browsers_that_accept_them() {
    let path = MERMAID.to_string();
    let plain = file(&path);

    let reply = get(&path, &[]);
    assert_eq!(reply.status(), "200", "{}", reply.head);
    assert!(!reply.head.contains("content-encoding"), "{}", reply.head);
    assert!(reply.body == plain, "without Accept-Encoding, not the file");

    let gzip = get(&path, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gzip.status(), "200", "{}", gzip.head);
    assert!(gzip.has("content-encoding: gzip"), "{}", gzip.head);
    assert!(gzip.has("vary: accept-encoding"), "{}", gzip.head);
    assert!(gzip.body.starts_with(&[0x1f, 0x8b]), "not a gzip stream");
    // A gzip stream ends with the length of what it holds (RFC 1952).
    let tail: [u8; 4] = gzip.body[gzip.body.len() - 4..].try_into().unwrap();
    assert_eq!(u32::from_le_bytes(tail) as usize, plain.len());
    assert!(gzip.body.len() < plain.len() / 3, "{}", gzip.body.len());

    let br = get(&path, &[("Accept-Encoding", "gzip, deflate, br, zstd")]);
    assert_eq!(br.status(), "200", "{}", br.head);
    assert!(br.has("content-encoding: br"), "{}", br.head);
    assert!(br.body.len() < gzip.body.len(), "{}", br.body.len());
    eprintln!(
        "{path}: {} bytes, {} with gzip, {} with br",
        plain.len(),
        gzip.body.len(),
        br.body.len()
    );

    // A page is compressed too.
    let page = get("/01-threads/threads.html", &[("Accept-Encoding", "br")]);
    assert!(page.has("content-encoding: br"), "{}", page.head);
    assert!(page.body.len() < file("/01-threads/threads.html").len());
}

#[test]
fn hash_named_assets_are_kept_and_the_rest_revalidated() {
    // The book uses the reader's own fonts (theme/fonts/fonts.css), so a
    // hash-named WOFF2 font is planted for the rule that concerns fonts.
    let font = "/fonts/planted-0123abcd.woff2";
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::create_dir_all(site().join("fonts")).unwrap();
    fs::write(site().join(font.trim_start_matches('/')), &noise).unwrap();
    let kept = [
        built("chapters/mermaid", "mermaid-lazy-", ".js"),
        built("", "book-", ".js"),
        built("", "searchindex-", ".js"),
        built("css", "chrome-", ".css"),
        font.to_string(),
    ];
    for path in &kept {
        let reply = get(path, &[("Accept-Encoding", "gzip, br")]);
        assert_eq!(reply.status(), "200", "{path}: {}", reply.head);
        assert!(reply.has(IMMUTABLE), "{path}: {}", reply.head);
    }
    // A WOFF2 font is compressed already: it is sent as it is.
    let sent = get(font, &[("Accept-Encoding", "gzip, br")]);
    assert!(!sent.head.contains("content-encoding"), "{}", sent.head);
    assert!(sent.body == noise);

    let mut revalidated = vec![
        "/".to_string(),
        "/index.html".to_string(),
        "/01-threads/threads.html".to_string(),
        "/appendix/measurements/convoy.svg".to_string(),
        // The copy without a hash, which the pages load.
        MERMAID.to_string(),
    ];
    revalidated.extend(NOT_HASHED.map(|name| format!("/{name}")));
    for path in &revalidated {
        let reply = get(path, &[("Accept-Encoding", "gzip, br")]);
        assert_eq!(reply.status(), "200", "{path}: {}", reply.head);
        assert!(reply.has(NO_CACHE), "{path}: {}", reply.head);
    }
    // Revalidating an unchanged page costs a reply with no body.
    let page = get("/01-threads/threads.html", &[]);
    let modified = page.value("last-modified").expect("no Last-Modified");
    let again = get(
        "/01-threads/threads.html",
        &[("If-Modified-Since", modified)],
    );
    assert_eq!(again.status(), "304", "{}", again.head);
    assert!(again.body.is_empty());
    assert!(again.has(NO_CACHE), "{}", again.head);

    // A missing file may exist after the next build, whatever its name.
    let missing = get("/book-0123abcd.js", &[]);
    assert_eq!(missing.status(), "404", "{}", missing.head);
    assert!(missing.has(NO_CACHE), "{}", missing.head);
}

/// The runner's replies are small JSON answers about this moment: never
/// stored, and sent as they are.
#[test]
fn the_runners_replies_are_never_stored() {
    let token = get(
        "/__course/token",
        &[
            ("Sec-Fetch-Site", "same-origin"),
            ("X-Course-Token-Request", "1"),
            ("Accept-Encoding", "gzip, br"),
        ],
    );
    assert_eq!(token.status(), "200", "{}", token.head);
    assert!(token.has("cache-control: no-store"), "{}", token.head);
    assert!(!token.head.contains("content-encoding"), "{}", token.head);
    let body = String::from_utf8(token.body).unwrap();
    assert!(body.contains(server().runner.token()), "{body}");

    // Refused for want of a token: nothing runs, and nothing is stored.
    let evaluate = send(
        "POST",
        "/__course/evaluate.json",
        &[
            ("Origin", &format!("http://{}", server().launch.host)),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/json"),
            ("Accept-Encoding", "gzip, br"),
        ],
    );
    assert_eq!(evaluate.status(), "403", "{}", evaluate.head);
    assert!(evaluate.has("cache-control: no-store"), "{}", evaluate.head);
    assert!(
        !evaluate.head.contains("content-encoding"),
        "{}",
        evaluate.head
    );
}
