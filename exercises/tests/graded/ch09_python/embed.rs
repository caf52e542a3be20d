//! A fresh CPython inside the trial's process: the learner's module `ch09`
//! is importable, and the trial hands the script its own Rust functions.
//!
//! Each trial runs in a process of its own, so each gets an interpreter of
//! its own, initialised once.

use std::ffi::{CStr, CString};

use exercises::ch09_python::ch09;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

/// Runs `script` as the main module of a new interpreter in which
/// `import ch09` finds the learner's module, after `setup` has put the
/// trial's own names in its globals. A Python exception fails the trial
/// with its traceback.
pub fn run_python(
    script: &str,
    setup: impl FnOnce(Python<'_>, &Bound<'_, PyDict>) -> PyResult<()>,
) {
    start_python();
    let code = CString::new(script).expect("a trial's script has no NUL byte");
    Python::attach(|py| {
        let globals = PyDict::new(py);
        let ran = globals
            .set_item("__name__", "__main__")
            .and_then(|()| setup(py, &globals))
            .and_then(|()| py.run(&code, Some(&globals), None));
        if let Err(error) = ran {
            panic!("{}", described(py, &error));
        }
    });
}

/// Starts the interpreter, with the learner's module importable as
/// `ch09`. Once per trial.
pub fn start_python() {
    pyo3::append_to_inittab!(ch09);
    Python::initialize();
}

/// Puts a Rust closure in `globals` under `name`, for the script to call
/// with positional arguments.
pub fn function(
    py: Python<'_>,
    globals: &Bound<'_, PyDict>,
    name: &'static CStr,
    body: impl Fn(&Bound<'_, PyTuple>) -> PyResult<Py<PyAny>>
    + Send
    + Sync
    + 'static,
) -> PyResult<()> {
    let function =
        PyCFunction::new_closure(py, Some(name), None, move |args, _| {
            body(args)
        })?;
    globals.set_item(name.to_str().expect("names are ASCII"), function)
}

/// A Python exception as Python prints it: the traceback, then the error.
fn described(py: Python<'_>, error: &PyErr) -> String {
    let traceback = error
        .traceback(py)
        .and_then(|traceback| traceback.format().ok())
        .unwrap_or_default();
    format!("Python raised an exception:\n{traceback}{error}")
}
