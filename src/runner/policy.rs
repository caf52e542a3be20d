//! Who may talk to `course serve`, in one place: the launch's own address
//! ([`Launch`]), every response's headers and Host check ([`guard`]), the
//! rules a request to the Run button's runner must pass before anything
//! runs ([`check`]), and whose program is on the other end of a connection
//! ([`same_user`], checked by `course::book` as soon as it accepts one).

use std::fs;
use std::net::SocketAddr;

/// Where one launch of `course serve` answers. Its host,
/// `<label>.localhost:<port>`, holds 128 fresh random bits: an origin no
/// page can have visited before this launch, so nothing an earlier page
/// left in the browser (a service worker, a cached script) applies to it.
/// Browsers resolve every `*.localhost` name to the loopback addresses
/// themselves (RFC 6761, section 6.3). Only this origin may use the Run
/// button; `127.0.0.1:<port>` and `localhost:<port>` still show the pages,
/// for a browser that does not resolve the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The port, the same on 127.0.0.1 and ::1.
    pub port: u16,
    /// `<label>.localhost:<port>`, the `Host` of the book's own pages.
    pub host: String,
}

impl Launch {
    /// A launch on `port` with a fresh label.
    pub fn fresh(port: u16) -> std::io::Result<Launch> {
        Ok(Launch {
            port,
            host: format!("{}.localhost:{port}", super::fresh_token()?),
        })
    }

    /// The book's address for this launch.
    pub fn url(&self) -> String {
        format!("http://{}/", self.host)
    }

    /// The plain loopback address: the pages, without the Run button.
    pub fn fallback_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The IPv4 socket address the book listens on.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether `host` is a name the pages are shown under.
    fn shows_pages_to(&self, host: &str) -> bool {
        let port = self.port;
        host == self.host
            || host == format!("127.0.0.1:{port}")
            || host == format!("localhost:{port}")
            || host == format!("[::1]:{port}")
    }
}

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-course-token";

/// Why a request was refused (the HTTP status and the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub u16, pub &'static str);

/// The header a same-origin script adds to ask for the token: a
/// cross-origin page cannot send it without a CORS preflight, which fails.
pub const TOKEN_REQUEST_HEADER: &str = "x-course-token-request";

/// What a runner request must carry besides the common checks.
#[derive(Debug, Clone, Copy)]
pub enum Needs<'a> {
    /// Nothing more (the crate list).
    Nothing,
    /// The token-request header (asking for the token).
    TokenRequest,
    /// The token, and a JSON body (running code).
    TokenAndJson(&'a str),
}

/// The checks every runner request passes before anything runs.
pub fn check(
    headers: &axum::http::HeaderMap,
    launch: &Launch,
    needs: Needs<'_>,
) -> Result<(), Refused> {
    // A header that is there more than once, or not text, is refused
    // rather than read as absent.
    let one = |name: &str| -> Result<Option<&str>, Refused> {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(Refused(400, "a header was sent twice"));
        }
        first
            .map(|v| {
                v.to_str().map_err(|_| Refused(400, "a header is not text"))
            })
            .transpose()
    };
    // Only this launch's own origin: a page that an earlier program served
    // on 127.0.0.1 or localhost may still live in the browser there.
    let host = launch.host.as_str();
    if one("host")? != Some(host) {
        return Err(Refused(
            403,
            "Run works only at the book's own address for this launch: the \
             http://….localhost link that `cargo run --release` printed",
        ));
    }
    if let Some(origin) = one("origin")?
        && origin != format!("http://{host}")
    {
        return Err(Refused(403, "a request from another site"));
    }
    if let Some(site) = one("sec-fetch-site")?
        && site != "same-origin"
    {
        return Err(Refused(403, "a request from another site"));
    }
    if let Some(dest) = one("sec-fetch-dest")?
        && dest != "empty"
    {
        return Err(Refused(403, "not a script's request"));
    }
    match needs {
        Needs::Nothing => {}
        Needs::TokenRequest => {
            if one(TOKEN_REQUEST_HEADER)? != Some("1") {
                return Err(Refused(403, "the token is for the book's pages"));
            }
        }
        Needs::TokenAndJson(token) => {
            let sent = one(TOKEN_HEADER)?.unwrap_or("");
            if !same(sent.as_bytes(), token.as_bytes()) {
                return Err(Refused(403, "no valid token: reload the page"));
            }
            let json = one("content-type")?.is_some_and(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|t| t.trim() == "application/json")
            });
            if !json {
                return Err(Refused(415, "the body must be application/json"));
            }
        }
    }
    Ok(())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the program on the other end of a connection from `peer` to
/// `server` (both loopback) runs as this user: the kernel's socket tables
/// (`/proc/net/tcp` and `/proc/net/tcp6`) name the owner of the client's
/// socket. Another user on the same machine can reach loopback too, but
/// must not run code as us. A client's IPv6 socket that connects to
/// 127.0.0.1 is listed in `tcp6` under the IPv4-mapped address
/// (`::ffff:127.0.0.1`). Where there are no such tables, only the other
/// checks apply.
pub fn same_user(peer: SocketAddr, server: SocketAddr) -> bool {
    let tables = ["/proc/net/tcp", "/proc/net/tcp6"].map(fs::read_to_string);
    if tables.iter().all(Result::is_err) {
        return !cfg!(target_os = "linux");
    }
    let me = nix::unistd::geteuid().as_raw().to_string();
    let (local, remote) = (in_table(peer), in_table(server));
    tables.iter().flatten().any(|table| {
        table.lines().skip(1).any(|row| {
            let columns: Vec<&str> = row.split_whitespace().collect();
            columns.len() > 7
                && local.contains(&columns[1].to_string())
                && remote.contains(&columns[2].to_string())
                && columns[7] == me
        })
    })
}

/// How the socket tables write `address`: `ADDR:PORT` in hex, the address
/// as 32-bit words in the machine's byte order; an IPv4 address also as
/// the IPv4-mapped IPv6 address it has on an IPv6 socket.
fn in_table(address: SocketAddr) -> Vec<String> {
    let words = |octets: &[u8]| -> String {
        octets
            .chunks(4)
            .map(|word| {
                let word: [u8; 4] = word.try_into().unwrap_or_default();
                format!("{:08X}", u32::from_ne_bytes(word))
            })
            .collect()
    };
    let port = address.port();
    match address {
        SocketAddr::V4(v4) => vec![
            format!("{}:{port:04X}", words(&v4.ip().octets())),
            format!("{}:{port:04X}", words(&v4.ip().to_ipv6_mapped().octets())),
        ],
        SocketAddr::V6(v6) => {
            vec![format!("{}:{port:04X}", words(&v6.ip().octets()))]
        }
    }
}

/// Every response: pages only under a loopback name (a DNS-rebinding page
/// cannot read the book), never inside another site's frame (clickjacking),
/// never read by another origin's `<script>` or `<img>`.
pub(crate) async fn guard(
    launch: Launch,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !launch.shows_pages_to(host) {
        return (axum::http::StatusCode::FORBIDDEN, "not this book's address")
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "SAMEORIGIN"),
        ("content-security-policy", "frame-ancestors 'self'"),
        ("x-content-type-options", "nosniff"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}
