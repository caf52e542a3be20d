//! Reading a chapter module the way `course grade` and `course reset`
//! need: its top-level items (functions, types, impl blocks) and the
//! bodies of the functions they hold, found with a small lexer that knows
//! comments, strings and character literals, enough to match braces.

use std::ops::Range;

/// One top-level item with braces: its name, and the ranges of the
/// function bodies it holds (between their braces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The function's or type's name (`spawn_all`, `VisitCounter`).
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Each function body: the function's name and the range between
    /// its braces.
    pub(crate) bodies: Vec<(String, Range<usize>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A free function.
    Function,
    /// An `impl` block, named after its type.
    Impl,
    /// A type or anything else with braces.
    Other,
}

/// `spawn_all` and `spawn_all`, `visit_counter` and `VisitCounter`.
pub(crate) fn same_name(exercise: &str, item: &str) -> bool {
    let squash = |s: &str| s.replace('_', "").to_lowercase();
    squash(exercise) == squash(item)
}

/// The byte offset where line `line` (1-based) starts.
pub(crate) fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 1 {
        return Some(0);
    }
    text.match_indices('\n')
        .nth(line.checked_sub(2)?)
        .map(|(at, _)| at + 1)
}

/// The top-level items of a file that have braces.
pub(crate) fn items(text: &str) -> Vec<Item> {
    let braces = braces(text);
    let mut found = Vec::new();
    let mut header_start = 0;
    let mut depth = 0usize;
    let mut open = 0;
    let mut inner: Vec<(usize, usize)> = Vec::new();
    for (at, brace) in braces {
        match brace {
            b'{' => {
                if depth == 0 {
                    open = at;
                    inner.clear();
                } else if depth == 1 {
                    inner.push((at, 0));
                }
                depth += 1;
            }
            _ => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some(last) = inner.last_mut()
                {
                    last.1 = at;
                }
                if depth == 0 {
                    let header = header_of(text, header_start, open);
                    found.push(item(text, header, open, at, &inner));
                    header_start = at + 1;
                }
            }
        }
    }
    found
}

/// The header of the item whose brace opens at `open`: from the end of
/// the previous item or `;` to the brace.
fn header_of(text: &str, from: usize, open: usize) -> &str {
    let before = &text[from..open];
    let start = before.rfind(';').map_or(0, |at| at + 1);
    &before[start..]
}

fn item(
    text: &str,
    header: &str,
    open: usize,
    close: usize,
    inner: &[(usize, usize)],
) -> Item {
    let code = strip_comments(header);
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| *w == keyword)
            .and_then(|at| words.get(at + 1))
            .map(|w| w.to_string())
    };
    let (kind, name) = if let Some(name) = after("fn") {
        (Kind::Function, name)
    } else if words.contains(&"impl") {
        (Kind::Impl, impl_self_type(&code))
    } else {
        let name = ["struct", "enum", "trait", "mod", "union"]
            .iter()
            .find_map(|k| after(k))
            .unwrap_or_default();
        (Kind::Other, name)
    };
    let bodies = match kind {
        Kind::Function => vec![(name.clone(), open + 1..close)],
        // The bodies of the impl's functions: braces one level in whose
        // header says `fn`.
        Kind::Impl => inner
            .iter()
            .filter(|(start, end)| *end > *start)
            .filter_map(|(start, end)| {
                let method = method_name(text, open, *start)?;
                Some((method, start + 1..*end))
            })
            .collect(),
        Kind::Other => Vec::new(),
    };
    Item { name, kind, bodies }
}

/// The name of the function whose body the brace at `start` opens,
/// inside the impl that opens at `open` (its header, back to the previous
/// `;` or `}`, says `fn name`); `None` for any other brace.
fn method_name(text: &str, open: usize, start: usize) -> Option<String> {
    let before = &text[open + 1..start];
    let from = before.rfind([';', '}']).map_or(0, |at| at + 1);
    let header = strip_comments(&before[from..]);
    let mut words = header
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    words.find(|w| *w == "fn")?;
    words.next().map(str::to_string)
}

/// The type an `impl` is for: `impl<T> Drop for MyArc<T>` → `MyArc`.
fn impl_self_type(header: &str) -> String {
    let mut plain = String::new();
    let mut angle = 0usize;
    for c in header.chars() {
        match c {
            '<' => angle += 1,
            '>' if angle > 0 => angle -= 1,
            _ if angle == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.split(" where ").next().unwrap_or(&plain);
    let target = match plain.split_once(" for ") {
        Some((_, target)) => target,
        None => plain.split_once("impl").map_or(plain, |(_, rest)| rest),
    };
    target
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .find(|w| !w.is_empty())
        .and_then(|path| path.rsplit("::").next())
        .unwrap_or_default()
        .to_string()
}

fn strip_comments(code: &str) -> String {
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every brace of the code, outside comments, strings and character
/// literals, with its byte offset.
fn braces(text: &str) -> Vec<(usize, u8)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        at = match bytes[at] {
            b'/' if bytes.get(at + 1) == Some(&b'/') => skip_line(bytes, at),
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                skip_block_comment(bytes, at)
            }
            b'"' => skip_string(bytes, at + 1),
            b'r' if raw_string_start(bytes, at).is_some() => skip_raw_string(
                bytes,
                at,
                raw_string_start(bytes, at).unwrap_or(0),
            ),
            b'\'' => skip_char(bytes, at),
            brace @ (b'{' | b'}') => {
                found.push((at, brace));
                at + 1
            }
            _ => at + 1,
        };
    }
    found
}

fn skip_line(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| at + n + 1)
}

fn skip_block_comment(bytes: &[u8], mut at: usize) -> usize {
    let mut depth = 0;
    while at + 1 < bytes.len() {
        match (bytes[at], bytes[at + 1]) {
            (b'/', b'*') => {
                depth += 1;
                at += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                at += 2;
                if depth == 0 {
                    return at;
                }
            }
            _ => at += 1,
        }
    }
    bytes.len()
}

/// From just after an opening `"` to just after its closing one.
fn skip_string(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The number of `#` of a raw string starting at `at` (`r"`, `r#"`), if
/// one does; not an identifier ending in `r`.
fn raw_string_start(bytes: &[u8], at: usize) -> Option<usize> {
    let previous = at.checked_sub(1).map(|p| bytes[p]);
    if previous.is_some_and(|p| p.is_ascii_alphanumeric() || p == b'_') {
        return None;
    }
    let hashes = bytes[at + 1..].iter().take_while(|&&b| b == b'#').count();
    (bytes.get(at + 1 + hashes) == Some(&b'"')).then_some(hashes)
}

fn skip_raw_string(bytes: &[u8], at: usize, hashes: usize) -> usize {
    let body = at + 2 + hashes;
    let mut closing = vec![b'"'];
    closing.extend(std::iter::repeat_n(b'#', hashes));
    bytes[body.min(bytes.len())..]
        .windows(closing.len())
        .position(|w| w == closing.as_slice())
        .map_or(bytes.len(), |n| body + n + closing.len())
}

/// A character literal (`'{'`, `'\''`, `'\u{7b}'`) is skipped; a
/// lifetime (`'a`, `'static`) is one quote.
fn skip_char(bytes: &[u8], at: usize) -> usize {
    match (bytes.get(at + 1), bytes.get(at + 2)) {
        (Some(b'\\'), _) => bytes[at + 2..]
            .iter()
            .position(|&b| b == b'\'')
            .map_or(bytes.len(), |n| at + 2 + n + 1),
        (Some(_), Some(b'\'')) => at + 3,
        _ => {
            // A multi-byte character: its closing quote within 5 bytes.
            let end = (at + 6).min(bytes.len());
            match bytes[at + 1..end].iter().position(|&b| b == b'\'') {
                Some(n) if !bytes[at + 1].is_ascii() => at + 1 + n + 1,
                _ => at + 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impl_blocks_belong_to_their_type() {
        assert_eq!(impl_self_type("impl<T: Send> Drop for MyArc<T> "), "MyArc");
        assert_eq!(impl_self_type("impl<T> MyArc<T> where T: Sync "), "MyArc");
        assert_eq!(
            impl_self_type("impl std::ops::Deref for crate::x::Pool "),
            "Pool"
        );
    }

    #[test]
    fn bodies_are_named_after_their_functions() {
        let text = "pub fn one() -> u8 { 1 }\n\
                    impl Two {\n    pub fn new() -> Self { Two }\n    \
                    fn helper(&self) { let _ = '{'; }\n}\n";
        let names: Vec<(String, Vec<String>)> = items(text)
            .into_iter()
            .map(|i| (i.name, i.bodies.into_iter().map(|b| b.0).collect()))
            .collect();
        assert_eq!(
            names,
            [
                ("one".to_string(), vec!["one".to_string()]),
                (
                    "Two".to_string(),
                    vec!["new".to_string(), "helper".to_string()]
                ),
            ]
        );
    }
}
