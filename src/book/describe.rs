//! A description per page: each built page's `<meta name="description">`
//! says what that page is about (its first paragraph), not what the whole
//! book is about (book.toml's `description`, which mdBook puts on every
//! page). Search engines show it under the page's title, and Lighthouse's
//! SEO audit asks for one.

use std::io;
use std::path::Path;

/// The longest description, in characters; search engines cut longer ones.
const LONGEST: usize = 160;

/// The description tag as mdBook's page template writes it, up to the text.
const TAG: &str = r#"<meta name="description" content=""#;

/// Gives every HTML page under `site` that has a description tag and a
/// paragraph in its `<main>` that paragraph as its description. Pages
/// without a paragraph keep the book's description; the print page, which
/// holds every chapter, keeps it too.
pub(super) fn describe_pages(site: &Path) -> io::Result<()> {
    super::rewrite_pages(site, &mut |path, html| {
        let print = path.file_name().is_some_and(|n| n == "print.html");
        if print { None } else { with_description(html) }
    })
}

/// `html` with its description replaced by its first paragraph; `None`
/// when it has no description tag or no paragraph.
fn with_description(html: &str) -> Option<String> {
    let start = html.find(TAG)? + TAG.len();
    let end = start + html[start..].find('"')?;
    let description = escape(&shortened(&first_paragraph(html)?));
    Some(format!("{}{description}{}", &html[..start], &html[end..]))
}

/// The plain text of the first non-empty `<p>` in the page's `<main>`.
fn first_paragraph(html: &str) -> Option<String> {
    let main = html.split_once("<main>")?.1;
    let main = main.split("</main>").next()?;
    main.split("<p>").skip(1).find_map(|rest| {
        let inner = rest.split("</p>").next()?;
        let text = plain_text(inner);
        (!text.is_empty()).then_some(text)
    })
}

/// `html` without its tags, its character references decoded and its
/// runs of white space made single spaces.
fn plain_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = decode(&text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes the character references pulldown-cmark writes (`&amp;`,
/// `&lt;`, `&gt;`, `&quot;`) and numeric ones; leaves others as they are.
fn decode(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                name => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` if it is short enough, or its words that fit with an ellipsis.
fn shortened(text: &str) -> String {
    if text.chars().count() <= LONGEST {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        if out.chars().count() + 1 + word.chars().count() + 1 > LONGEST {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    let out = out.trim_end_matches([',', ';', ':', '.', '(']);
    format!("{out}…")
}

/// `text` escaped for an attribute value between double quotes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<head><meta name="description" content="The book."></head>
<main><h1>Title</h1><p></p>
<p>The <code>GIL</code> &amp; you:
   <a href="x.html">threads</a> &lt;3 &quot;fast&quot; &#39;ok&#x27;</p>
<p>Second.</p></main>"#;

    #[test]
    fn the_first_paragraph_becomes_the_description() {
        let html = with_description(PAGE).unwrap();
        assert!(
            html.contains(
                r#"content="The GIL &amp; you: threads &lt;3 &quot;fast&quot; 'ok'">"#
            ),
            "{html}"
        );
        assert!(html.ends_with("<p>Second.</p></main>"));
    }

    #[test]
    fn a_page_without_a_paragraph_keeps_the_book_description() {
        let page =
            r#"<meta name="description" content="The book."><main></main>"#;
        assert_eq!(with_description(page), None);
    }

    #[test]
    fn long_paragraphs_are_cut_at_a_word() {
        let long = "word, ".repeat(60);
        let short = shortened(long.trim());
        assert!(short.chars().count() <= LONGEST, "{short}");
        assert!(short.ends_with("word…"), "{short}");
    }

    #[test]
    fn unknown_references_are_kept() {
        assert_eq!(
            decode("a &nbsp b & c &bogus; d"),
            "a &nbsp b & c &bogus; d"
        );
    }
}
