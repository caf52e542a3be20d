//! Who may talk to `course serve`, in one place: every response's headers
//! and Host check ([`guard`]), and the rules a request to the Run button's
//! runner must pass before anything runs ([`allowed`]: [`check`] and
//! [`same_user`]). `course::book` wires them to the routes.

use std::fs;
use std::net::SocketAddr;

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

/// The checks every runner request passes before anything runs. `port` is
/// the port the server listens on.
pub fn check(
    headers: &axum::http::HeaderMap,
    port: u16,
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
    // Only the address `course serve` prints: no `localhost`, whose other
    // address (::1) another user could listen on.
    let host = format!("127.0.0.1:{port}");
    if one("host")? != Some(host.as_str()) {
        return Err(Refused(403, "the Host is not the book's address"));
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
/// `server` (both 127.0.0.1) runs as this user: the kernel's socket table
/// (`/proc/net/tcp`) names the owner of the client's socket. Another user
/// on the same machine can reach 127.0.0.1 too, but must not run code as
/// us. Where there is no such table, only the other checks apply.
pub fn same_user(
    peer: std::net::SocketAddr,
    server: std::net::SocketAddr,
) -> bool {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return !cfg!(target_os = "linux");
    };
    let hex = |address: std::net::SocketAddr| match address {
        std::net::SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        ),
        std::net::SocketAddr::V6(_) => String::new(),
    };
    let (local, remote) = (hex(peer), hex(server));
    let me = nix::unistd::geteuid().as_raw().to_string();
    table.lines().skip(1).any(|row| {
        let columns: Vec<&str> = row.split_whitespace().collect();
        columns.len() > 7
            && columns[1] == local
            && columns[2] == remote
            && columns[7] == me
    })
}

/// Every response: pages only under a loopback name (a DNS-rebinding page
/// cannot read the book), never inside another site's frame (clickjacking),
/// never read by another origin's `<script>` or `<img>`.
pub(crate) async fn guard(
    port: u16,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if host != format!("127.0.0.1:{port}")
        && host != format!("localhost:{port}")
    {
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

/// The checks of [`check`], and that the client runs as this user.
pub(crate) fn allowed(
    port: u16,
    address: SocketAddr,
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    needs: Needs<'_>,
) -> Result<(), Refused> {
    check(headers, port, needs)?;
    if !same_user(peer, address) {
        return Err(Refused(403, "a program of another user"));
    }
    Ok(())
}
