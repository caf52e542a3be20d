//! Chapter 9's payoff in the book: the chart of Python threads calling
//! Rust and the sentences the chapter quotes.

use std::path::Path;

use plotters::prelude::*;

use super::{Anchors, Bar, bars};
use crate::cli::bench::results::{PythonCallsRust, Results};

/// The chart, relative to the figures file (and so to any chapter page
/// that includes its anchors).
pub(super) const CHART: &str = "python-calls-rust.svg";

/// What the chart shows, as its title and as the image's alternative
/// text.
const TITLE: &str = "Python calling Rust: 2 threads, half the work each, \
                     relative to 1 (line: 1×)";

/// The three comparisons, labelled as the chart and the sentence name
/// them.
fn rows(m: &PythonCallsRust) -> [Bar; 3] {
    [
        ("pure Python".into(), m.python.ratio, None),
        ("Rust, holding the GIL".into(), m.holding.ratio, None),
        ("Rust, inside py.detach".into(), m.detached.ratio, None),
    ]
}

/// Draws the chart; without a measurement, a chart that says why.
pub(super) fn chart(file: &Path, results: &Results) -> Result<(), String> {
    let area = SVGBackend::new(file, (720, 150)).into_drawing_area();
    match &results.python_calls_rust {
        Ok(measured) => bars(&area, TITLE, &rows(measured), 1.0, "×")?,
        Err(why) => {
            let not = |label: &str| (label.to_string(), f64::NAN, None);
            let title = format!("Python calling Rust was not measured: {why}");
            let rows = [not("pure Python"), not("Rust"), not("Rust, detached")];
            bars(&area, &title, &rows, 1.0, "×")?;
        }
    }
    area.present().map_err(|e| e.to_string())
}

/// `python_calls_rust`: the chart and the sentence under it;
/// `python_detach`: the two Rust ratios, to quote inside a sentence.
pub(super) fn anchors(anchors: &mut Anchors, results: &Results) {
    let m = match &results.python_calls_rust {
        Ok(measured) => measured,
        Err(why) => {
            let not = format!("Python calling Rust was not measured ({why})");
            anchors.put("python_calls_rust", format!("*{not}.*"));
            anchors.put("python_detach", not);
            return;
        }
    };
    let cores = results.machine.cores;
    anchors.put(
        "python_calls_rust",
        format!(
            "![{TITLE}](../appendix/measurements/{CHART})\n\n\
             *Two Python threads, each counting down half as far as one \
             thread alone, took {:.2}× as long as that one thread in pure \
             Python, {:.2}× when each called a Rust function that counts \
             down holding the GIL, and {:.2}× when the Rust function \
             counted inside `py.detach` (CPython {} embedded, {cores} \
             CPUs; {} steps in Python, {} in Rust).*",
            m.python.ratio,
            m.holding.ratio,
            m.detached.ratio,
            m.version,
            super::grouped(m.python_count),
            super::grouped(m.rust_count),
        ),
    );
    anchors.put(
        "python_detach",
        format!(
            "two Python threads calling Rust took {:.2}× as long as one \
             while Rust held the GIL, and {:.2}× when it released it with \
             `py.detach`",
            m.holding.ratio, m.detached.ratio
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::super::figures;
    use crate::cli::bench::results::sample;

    #[test]
    fn the_chapter_quotes_the_chart_and_the_three_ratios() {
        let written = figures(&sample(true));
        assert!(written.contains(
            "<!-- ANCHOR: python_calls_rust -->\n![Python calling Rust: 2 \
             threads, half the work each, relative to 1 (line: \
             1×)](../appendix/measurements/python-calls-rust.svg)\n\n*Two \
             Python threads"
        ));
        assert!(written.contains(
            "took 1.03× as long as that one thread in pure Python, 1.00× \
             when each called a Rust function that counts down holding the \
             GIL, and 0.51× when the Rust function counted inside \
             `py.detach` (CPython 3.11.7 embedded, 4 CPUs; 24 000 000 steps \
             in Python, 2 400 000 000 in Rust).*\n"
        ));
        assert!(written.contains(
            "<!-- ANCHOR: python_detach -->\ntwo Python threads calling \
             Rust took 1.00× as long as one while Rust held the GIL, and \
             0.51× when it released it with `py.detach`\n"
        ));
    }

    #[test]
    fn without_python_both_anchors_say_why_and_show_no_chart() {
        let written = figures(&sample(false));
        let why = "Python calling Rust was not measured (no Python found \
                   (python3: no such file))";
        assert!(written.contains(&format!(
            "<!-- ANCHOR: python_calls_rust -->\n*{why}.*\n"
        )));
        assert!(
            written
                .contains(&format!("<!-- ANCHOR: python_detach -->\n{why}\n"))
        );
        assert!(!written.contains("python-calls-rust.svg"));
    }

    #[test]
    fn the_chart_is_drawn_with_and_without_python() {
        let dir = tempfile::tempdir().unwrap();
        for python in [true, false] {
            let file = dir.path().join(format!("{python}.svg"));
            super::chart(&file, &sample(python)).unwrap();
            let svg = std::fs::read_to_string(&file).unwrap();
            assert!(svg.starts_with("<svg"), "{svg}");
            // The bars' colour: only a measurement has bars.
            assert_eq!(svg.contains("#466EB4"), python, "{svg}");
            assert_eq!(svg.contains("not measured"), !python, "{svg}");
        }
    }
}
