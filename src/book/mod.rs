//! Building and serving the book, with no tool installed but cargo.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use mdbook_driver::MDBook;

mod describe;
mod inline;
mod listen;
mod serve;

pub use crate::runner::Launch;
pub use listen::{HEADER_TIMEOUT, connection_cap};
pub use serve::{BODY_LIMIT, BODY_TIMEOUT, serve, serve_with_runner};

/// Why the book could not be built or served, in words for the reader.
#[derive(Debug)]
pub enum BookError {
    /// mdBook rejected the book (a broken SUMMARY.md, a missing chapter, ...).
    Build(String),
    /// The port is taken by another program.
    PortInUse(u16),
    /// Any other I/O failure, with what we were doing.
    Io(String, io::Error),
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookError::Build(why) => write!(f, "cannot build the book: {why}"),
            BookError::PortInUse(port) => write!(
                f,
                "port {port} of 127.0.0.1 or ::1 is already in use (is \
                 another `course serve` running?); leave out --port to \
                 use a free one"
            ),
            BookError::Io(what, error) => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for BookError {}

/// Builds the book whose `book.toml` is in `root` into `out` (by default
/// the `build-dir` of book.toml, `book/`); returns the folder of the HTML.
/// The mermaid preprocessor runs in-process: registering it under its own
/// name replaces the `mdbook-mermaid` command that book.toml names for
/// stock mdbook, so no external program is looked for. After mdBook, each
/// page's description becomes the page's first paragraph (a stock build
/// keeps book.toml's one description on every page).
pub fn build(root: &Path, out: Option<&Path>) -> Result<PathBuf, BookError> {
    if !root.join("book.toml").is_file() {
        return Err(BookError::Build(format!(
            "there is no book.toml in {} (pass --root <folder with book.toml>)",
            root.display()
        )));
    }
    let mut book = MDBook::load(root).map_err(build_error)?;
    if let Some(out) = out {
        book.config.build.build_dir = out.to_path_buf();
    }
    book.with_preprocessor(mdbook_mermaid::Mermaid);
    book.build().map_err(build_error)?;
    let site = book.build_dir_for("html");
    describe::describe_pages(&site).map_err(|error| {
        BookError::Io(
            format!("cannot describe the pages in {}", site.display()),
            error,
        )
    })?;
    inline::inline_stylesheets(&site).map_err(|error| {
        BookError::Io(
            format!("cannot inline the stylesheets in {}", site.display()),
            error,
        )
    })?;
    Ok(site)
}

/// Runs `rewrite` on every HTML page under `dir` (its path and text) and
/// writes back what it returns, where that differs: the one walk of the
/// built pages that the post-processing steps share.
fn rewrite_pages(
    dir: &Path,
    rewrite: &mut impl FnMut(&Path, &str) -> Option<String>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rewrite_pages(&path, rewrite)?;
        } else if path.extension().is_some_and(|e| e == "html") {
            let html = std::fs::read_to_string(&path)?;
            if let Some(new) = rewrite(&path, &html)
                && new != html
            {
                std::fs::write(&path, new)?;
            }
        }
    }
    Ok(())
}

fn build_error(error: impl Into<Box<dyn std::error::Error>>) -> BookError {
    let error = error.into();
    let mut why = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    BookError::Build(why)
}
