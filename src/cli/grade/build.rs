//! Building the graded suite through cargo, leaving out the chapters
//! whose files do not compile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use indicatif::ProgressBar;
use serde_json::Value;

use super::isolate::Shadows;
use super::{BuildError, Fatal, Package, Suite, cargo};

/// Builds the suite with `chapters` on. When an exercise's code does not
/// compile, stubs that exercise out again (see `isolate`) and tries again;
/// when code outside any exercise does not, leaves its chapter out. The
/// test binary (none if no chapter compiles) and what did not compile.
pub(super) fn build_leaving_out_broken(
    root: &Path,
    (package, suite): (Package, Suite),
    chapters: &[&str],
    spinner: Option<&ProgressBar>,
) -> Result<(Option<PathBuf>, Vec<BuildError>, Warnings), Fatal> {
    let mut on: Vec<&str> = chapters.to_vec();
    let mut broken: Vec<BuildError> = Vec::new();
    let mut shadows = Shadows::new(root, package);
    while !on.is_empty() {
        if let Some(spinner) = spinner {
            spinner.set_message(format!(
                "building the {} ({})",
                package.name(),
                on.join(" ")
            ));
        }
        let errors = match build(root, (package, suite), &on, &shadows.env()?)?
        {
            Built::Binary(binary, warnings) => {
                broken.sort_by(|a, b| a.chapter.cmp(&b.chapter));
                return Ok((Some(binary), broken, warnings));
            }
            Built::Errors(errors) => errors,
        };
        let mut progress = false;
        for (chapter, errors) in errors {
            match shadows.stub_out(&chapter, &errors) {
                Some(stubbed) => broken.extend(stubbed),
                None => {
                    // Not (only) inside exercises: the chapter goes.
                    shadows.forget(&chapter);
                    broken.retain(|b| b.chapter != chapter);
                    on.retain(|c| *c != chapter);
                    let message = errors.first().map(|e| e.message.clone());
                    broken.push(BuildError {
                        chapter,
                        exercise: None,
                        message: message.unwrap_or_default(),
                    });
                }
            }
            progress = true;
        }
        if !progress {
            return Err(Fatal(
                "the build fails in a chapter that is already off".to_string(),
            ));
        }
    }
    broken.sort_by(|a, b| a.chapter.cmp(&b.chapter));
    Ok((None, broken, Warnings::new()))
}

/// A chapter's compiler warnings: how many, and the first's headline.
pub type Warnings = BTreeMap<String, (usize, String)>;

enum Built {
    Binary(PathBuf, Warnings),
    /// The errors of each chapter that did not compile.
    Errors(BTreeMap<String, Vec<Located>>),
}

/// One compiler error and where it is.
#[derive(Debug, Clone)]
pub(super) struct Located {
    /// The file, as rustc names it (relative to the workspace, or absolute
    /// for a copy `isolate` wrote).
    pub(super) file: String,
    /// Its 1-based line.
    pub(super) line: usize,
    /// The error as rustc renders it.
    pub(super) message: String,
}

fn build(
    root: &Path,
    (package, suite): (Package, Suite),
    chapters: &[&str],
    shadows: &str,
) -> Result<Built, Fatal> {
    let mut command = cargo();
    if suite == Suite::Loom {
        // As .ci/loom: every dependency built with `--cfg loom`, in release
        // (loom explores thousands of interleavings), apart from the
        // ordinary build so that neither rebuilds the other.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from);
        command
            .arg("test")
            .arg("--release")
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", target.join("loom"));
    } else {
        command.arg("test");
    }
    let output = command
        .current_dir(root)
        .args(["--quiet", "--package", package.name()])
        .args([
            "--test",
            suite.target(),
            "--no-run",
            "--message-format=json",
        ])
        // The chapters to compile, and the modules to compile from a copy
        // with exercises stubbed out (see src/registry/build.rs).
        .env("COURSE_CHAPTERS", chapters.join(","))
        .env("COURSE_SHADOW", shadows)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Fatal(format!("cannot run cargo: {error}")))?;
    let mut seen = Messages {
        target: suite.target(),
        ..Messages::default()
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Ok(message) = serde_json::from_str::<Value>(line) {
            seen.read(&message);
        }
    }
    if output.status.success() {
        return seen
            .binary
            .map(|b| Built::Binary(b, seen.warnings))
            .ok_or_else(|| {
                Fatal("cargo built the suite but named no test binary".into())
            });
    }
    if let Some(message) = seen.elsewhere {
        return Err(Fatal(format!(
            "the {} crate does not compile outside a chapter's files:\n\
             {message}",
            package.name()
        )));
    }
    if seen.errors.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Fatal(format!("cargo failed:\n{}", stderr.trim_end())));
    }
    Ok(Built::Errors(seen.errors))
}

/// What cargo's JSON messages of one build said.
#[derive(Default)]
struct Messages {
    /// The test target built (`graded`, `loom`).
    target: &'static str,
    /// The graded test binary, once built.
    binary: Option<PathBuf>,
    /// The errors of each chapter.
    errors: BTreeMap<String, Vec<Located>>,
    /// The first error outside any chapter's files.
    elsewhere: Option<String>,
    warnings: Warnings,
}

impl Messages {
    fn read(&mut self, message: &Value) {
        let diagnostic = &message["message"];
        match message["reason"].as_str() {
            Some("compiler-artifact")
                if message["target"]["name"] == self.target =>
            {
                self.binary = message["executable"].as_str().map(PathBuf::from);
            }
            Some("compiler-message") if diagnostic["level"] == "error" => {
                self.error(diagnostic);
            }
            Some("compiler-message") if diagnostic["level"] == "warning" => {
                self.warning(diagnostic);
            }
            _ => {}
        }
    }

    fn error(&mut self, diagnostic: &Value) {
        let rendered = diagnostic["rendered"].as_str().unwrap_or("").trim_end();
        match place_of(diagnostic) {
            Some((chapter, file, line)) => {
                self.errors.entry(chapter).or_default().push(Located {
                    file,
                    line,
                    message: rendered.to_string(),
                });
            }
            None if has_span(diagnostic) => {
                self.elsewhere.get_or_insert(rendered.to_string());
            }
            // "aborting due to 2 previous errors" and the like.
            None => {}
        }
    }

    /// A warning in a chapter's own code (not in its trials) counts.
    fn warning(&mut self, diagnostic: &Value) {
        let in_src = diagnostic["spans"].as_array().is_some_and(|spans| {
            spans.iter().any(|span| {
                span["file_name"]
                    .as_str()
                    .is_some_and(|f| f.contains("/src/"))
            })
        });
        if let Some((chapter, ..)) = place_of(diagnostic).filter(|_| in_src) {
            let rendered = diagnostic["rendered"].as_str().unwrap_or("");
            let entry = self
                .warnings
                .entry(chapter)
                .or_insert((0, error_headline(rendered)));
            entry.0 += 1;
        }
    }
}

fn has_span(diagnostic: &Value) -> bool {
    diagnostic["spans"]
        .as_array()
        .is_some_and(|spans| !spans.is_empty())
}

/// The chapter, file and line of the diagnostic's primary span, if its
/// file is a chapter's: a part of
/// the file's path starts with `chNN` (`src/ch05_no_gil.rs`, or a
/// learner's `src/ch05_no_gil/helpers.rs`). An error inside a macro of a
/// dependency is placed where the macro was called.
fn place_of(diagnostic: &Value) -> Option<(String, String, usize)> {
    let spans = diagnostic["spans"].as_array()?;
    let mut span = spans
        .iter()
        .find(|span| span["is_primary"] == true)
        .or(spans.first())?;
    loop {
        let name = span["file_name"].as_str()?;
        let found = Path::new(name).components().find_map(|part| {
            let part = part.as_os_str().to_str()?;
            let stem = part.strip_suffix(".rs").unwrap_or(part);
            crate::registry::chapter_of_module(stem)
        });
        if let Some(chapter) = found {
            let line = span["line_start"].as_u64().unwrap_or(0) as usize;
            return Some((chapter.to_string(), name.to_string(), line));
        }
        span = span["expansion"]["span"]
            .as_object()
            .map(|_| &span["expansion"]["span"])?;
    }
}

/// The first line and place of a rendered error:
/// `error[E0308]: mismatched types --> exercises/src/ch03_gil.rs:40:5`.
pub(super) fn error_headline(message: &str) -> String {
    let headline = first_line(message);
    let place = message
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("--> "))
        .unwrap_or("");
    format!("{headline} at {place}")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_names_the_error_and_its_place() {
        let message = "error[E0308]: mismatched types\n  --> \
                       exercises/src/ch03_gil.rs:40:5\n   |";
        assert_eq!(
            error_headline(message),
            "error[E0308]: mismatched types at exercises/src/ch03_gil.rs:40:5"
        );
    }
}
