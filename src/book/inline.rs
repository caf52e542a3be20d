//! The stylesheets inside each page: mdBook links eight small stylesheets
//! from every page, and a browser paints nothing until it has fetched them
//! all (Lighthouse's "render-blocking requests"; on a slow connection that
//! is most of the time to first paint). After the build, each page gets
//! their text in `<style>` elements instead, keeping each link's `id` (the
//! theme switcher in mdBook's `book.js` turns the highlight stylesheets on
//! and off by id). The print stylesheet stays a link: `media="print"`
//! blocks nothing. A stylesheet that refers to other files (`url(`) stays
//! a link too, since its relative paths would change meaning.
//!
//! A stock `mdbook build` keeps the links; only the course's own build
//! inlines.

use std::fs;
use std::io;
use std::path::Path;

/// Inlines the stylesheets of every HTML page under `site` (see the
/// module's comment).
pub(super) fn inline_stylesheets(site: &Path) -> io::Result<()> {
    let root = site.canonicalize()?;
    super::rewrite_pages(site, &mut |path, html| {
        let folder = path.parent().unwrap_or(site);
        Some(with_styles(html, |href| {
            // Only files of this book: no scheme, no way out of it.
            if href.contains(':') || href.starts_with('/') {
                return None;
            }
            let file = folder.join(href.split(['?', '#']).next()?);
            let file = file.canonicalize().ok()?;
            if !file.starts_with(&root) {
                return None;
            }
            fs::read_to_string(file).ok()
        }))
    })
}

/// `html` with each `<link rel="stylesheet" ...>` whose text `read` gives
/// replaced by a `<style>` with that text (and the link's `id`), except
/// print-only ones and ones whose text refers to other files.
fn with_styles(html: &str, read: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find("<link rel=\"stylesheet\"") {
        out.push_str(&rest[..at]);
        let Some(length) = rest[at..].find('>') else {
            break;
        };
        let tag = &rest[at..=at + length];
        rest = &rest[at + length + 1..];
        let attribute = |name: &str| -> Option<&str> {
            let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            Some(&tag[start..start + tag[start..].find('"')?])
        };
        let text = attribute("href")
            .filter(|_| attribute("media").is_none_or(|m| m != "print"))
            .and_then(&read)
            .filter(|text| !refers_to_files(text) && !text.contains("</style"));
        match text {
            Some(text) => {
                out.push_str("<style");
                if let Some(id) = attribute("id") {
                    out.push_str(&format!(" id=\"{id}\""));
                }
                out.push('>');
                out.push_str(&text);
                out.push_str("</style>");
            }
            None => out.push_str(tag),
        }
    }
    out.push_str(rest);
    out
}

/// Whether a stylesheet's text names another file (`url(...)` other than a
/// `data:` URL, which means the same wherever it is written).
fn refers_to_files(text: &str) -> bool {
    text.split("url(").skip(1).any(|after| {
        !after
            .trim_start()
            .trim_start_matches(['\'', '"'])
            .starts_with("data:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(href: &str) -> Option<String> {
        match href {
            "css/a.css" => Some("a { color: red }".into()),
            "hl.css" => Some(".hljs { }".into()),
            "css/print.css" => Some("p { }".into()),
            "fonts.css" => Some("@font-face { src: url(x.woff2) }".into()),
            "icon.css" => {
                Some("a { content: url('data:image/svg+xml,<svg/>') }".into())
            }
            _ => None,
        }
    }

    #[test]
    fn stylesheets_become_styles_with_their_ids() {
        let html = "<head><link rel=\"stylesheet\" href=\"css/a.css\">\n\
                    <link rel=\"stylesheet\" id=\"mdbook-highlight-css\" href=\"hl.css\">\n\
                    </head>";
        assert_eq!(
            with_styles(html, read),
            "<head><style>a { color: red }</style>\n\
             <style id=\"mdbook-highlight-css\">.hljs { }</style>\n</head>"
        );
    }

    #[test]
    fn a_data_url_is_no_other_file() {
        let html = "<link rel=\"stylesheet\" href=\"icon.css\">";
        assert_eq!(
            with_styles(html, read),
            "<style>a { content: url('data:image/svg+xml,<svg/>') }</style>"
        );
    }

    #[test]
    fn print_only_unknown_and_url_using_stylesheets_stay_links() {
        let html = "<link rel=\"stylesheet\" href=\"css/print.css\" media=\"print\">\
                    <link rel=\"stylesheet\" href=\"missing.css\">\
                    <link rel=\"stylesheet\" href=\"fonts.css\">";
        assert_eq!(with_styles(html, read), html);
    }
}
