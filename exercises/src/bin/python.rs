//! A Python prompt in which `import ch09` is your chapter 9 module:
//! `cargo run -p exercises --bin python`. With a file,
//! `cargo run -p exercises --bin python -- script.py [args]` runs it as
//! `python3 script.py [args]` would.
//!
//! The interpreter is the CPython the course links (found as PyO3 finds
//! one: `src/registry/python.rs` of the course crate), started inside this
//! program with your module added to its built-in modules. Where there is
//! none, this says what to install.

use std::process::ExitCode;

#[cfg(all(python, chapter = "ch09"))]
use exercises::ch09_python::ch09;
#[cfg(all(python, chapter = "ch09"))]
use pyo3::prelude::*;

/// The prompt, or the script named by the first argument.
#[cfg(all(python, chapter = "ch09"))]
pub fn main() -> ExitCode {
    pyo3::append_to_inittab!(ch09);
    Python::initialize();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A panic in your code reaches a script as `PanicException`; one the
    // script does not catch comes back here as the panic (already printed).
    let ended = std::panic::catch_unwind(|| {
        Python::attach(|py| ended(py, run(py, &args)))
    });
    ended.unwrap_or(ExitCode::from(101))
}

/// The exit status for how the script or the prompt ended.
#[cfg(all(python, chapter = "ch09"))]
fn ended(py: Python<'_>, result: PyResult<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error)
            if error.is_instance_of::<pyo3::exceptions::PySystemExit>(py) =>
        {
            // `sys.exit(n)`: Python's own exit status rules.
            let code = error.value(py).getattr("code").ok();
            match code.and_then(|code| code.extract::<u8>().ok()) {
                Some(status) => ExitCode::from(status),
                None if code_is_none(py, &error) => ExitCode::SUCCESS,
                None => {
                    error.print(py);
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            // The traceback, as python3 prints it.
            error.print(py);
            ExitCode::FAILURE
        }
    }
}

/// Runs `args[0]` as `__main__` with `sys.argv = args`, or the prompt.
#[cfg(all(python, chapter = "ch09"))]
fn run(py: Python<'_>, args: &[String]) -> PyResult<()> {
    // `Python::initialize` leaves Python's signal handlers off; put
    // Ctrl-C's back, so that it raises KeyboardInterrupt as in python3.
    let signal = py.import("signal")?;
    signal.call_method1(
        "signal",
        (
            signal.getattr("SIGINT")?,
            signal.getattr("default_int_handler")?,
        ),
    )?;
    let sys = py.import("sys")?;
    match args.first() {
        Some(script) => {
            sys.setattr("argv", args.to_vec())?;
            py.import("runpy")?.call_method1(
                "run_path",
                (script.as_str(), py.None(), "__main__"),
            )?;
        }
        None => {
            sys.setattr("argv", vec![""])?;
            let banner = format!(
                "Python {} with your chapter 9 module: try `import ch09`. \
                 Ctrl-D leaves.",
                sys.getattr("version")?.extract::<String>()?
            );
            py.import("code")?.call_method1("interact", (banner,))?;
        }
    }
    Ok(())
}

/// Whether `sys.exit()` was called with no status (or `None`): success.
#[cfg(all(python, chapter = "ch09"))]
fn code_is_none(py: Python<'_>, error: &PyErr) -> bool {
    error
        .value(py)
        .getattr("code")
        .is_ok_and(|code| code.is_none())
}

/// Without a CPython to embed, or with chapter 9 left out: why.
#[cfg(not(all(python, chapter = "ch09")))]
pub fn main() -> ExitCode {
    let why = env!("COURSE_NO_PYTHON");
    if why.is_empty() {
        eprintln!("chapter 9 is left out of this build (it does not compile?)");
    } else {
        eprintln!("no Python prompt: {why}");
    }
    ExitCode::from(2)
}
