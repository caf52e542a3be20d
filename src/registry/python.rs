// Finds the CPython that chapter 9's trials embed, the way PyO3 finds one
// (`PYO3_PYTHON`, a virtualenv or conda environment, `python`, `python3`),
// and says what to install when there is none.
//
// Plain std, no inner attributes: the build scripts include this file
// (`registry/build.rs` for the exercises and solutions, the root
// `build.rs` for the course's own measurements), so they all find the
// same Python.
//
// PyO3 is built with `PYO3_BUILD_EXTENSION_MODULE` (.cargo/config.toml),
// which keeps it from linking libpython itself: a machine without a
// shared libpython must still build and grade chapters 1 to 8. The build
// script links it instead, through `link_python`, only when it exists.

/// A CPython whose shared library a program can link and embed.
#[allow(dead_code, reason = "each build script uses its own part")]
#[derive(Debug)]
pub struct EmbeddablePython {
    /// The interpreter asked (see `interpreter`).
    pub executable: String,
    /// `3.11`.
    pub version: String,
    /// The folder of `libpython3.11.so`.
    pub libdir: String,
    /// `python3.11`: the name to link.
    pub library: String,
}

/// The interpreter PyO3's build would ask, in its order (pyo3-build-config's
/// `find_interpreter`): `PYO3_PYTHON`; then the active virtualenv's or
/// conda environment's (not both); then `python`, then `python3`, the
/// first on PATH that says it is Python 3.
fn interpreter() -> String {
    if let Ok(python) = std::env::var("PYO3_PYTHON") {
        return python;
    }
    match (std::env::var("VIRTUAL_ENV"), std::env::var("CONDA_PREFIX")) {
        (Ok(env), Err(_)) | (Err(_), Ok(env)) => {
            return format!("{env}/bin/python");
        }
        _ => {}
    }
    let python3 = |name: &str| {
        std::process::Command::new(name)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|out| {
                out.stdout.starts_with(b"Python 3")
                    || out.stderr.starts_with(b"Python 3")
            })
    };
    ["python", "python3"]
        .into_iter()
        .find(|name| python3(name))
        .unwrap_or("python3")
        .to_string()
}

/// The Python to embed, or why there is none, in words that say what to
/// install.
pub fn embeddable_python() -> Result<EmbeddablePython, String> {
    let executable = interpreter();
    let script = "import sys, sysconfig as s\n\
                  v = s.get_config_var\n\
                  print('%d.%d' % sys.version_info[:2])\n\
                  print(v('LIBDIR') or '')\n\
                  print(v('LDLIBRARY') or '')\n\
                  print(v('Py_GIL_DISABLED') or 0)\n";
    let output = std::process::Command::new(&executable)
        .args(["-c", script])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| {
            format!(
                "no Python found ({executable}: {error}); install Python 3.9 or \
                 later with its shared library (Debian and Ubuntu: `apt install \
                 python3 libpython3-dev`), or set PYO3_PYTHON to one"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{executable} could not describe itself ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines().map(str::trim);
    let mut next = || lines.next().unwrap_or_default().to_string();
    let (version, libdir, ldlibrary, gil_disabled) =
        (next(), next(), next(), next());
    let minor: u32 = version
        .strip_prefix("3.")
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0);
    if minor < 9 {
        return Err(format!(
            "{executable} is Python {version}; chapter 9 needs 3.9 or later \
             (set PYO3_PYTHON to a newer one)"
        ));
    }
    if gil_disabled == "1" {
        // On purpose: the trials prove that a solution releases the GIL by
        // meetings that a solution holding it can never reach; without a
        // GIL, one that never releases it would pass them.
        return Err(format!(
            "{executable} is a free-threaded build ({version}t), which has no \
             GIL for chapter 9's trials to see released: set PYO3_PYTHON to \
             a default (GIL) build of the same Python"
        ));
    }
    let library = ldlibrary
        .strip_prefix("lib")
        .and_then(|name| name.strip_suffix(".so"))
        .map(str::to_string);
    let found = library.as_ref().is_some_and(|_| {
        std::path::Path::new(&libdir).join(&ldlibrary).is_file()
    });
    match library {
        Some(library) if found => Ok(EmbeddablePython {
            executable,
            version,
            libdir,
            library,
        }),
        _ => Err(format!(
            "{executable} (Python {version}) has no shared library to embed \
             (no libpython{version}.so in {libdir:?}); install it (Debian and \
             Ubuntu: `apt install libpython{version}-dev`; Fedora: \
             `dnf install python3-devel`), or set PYO3_PYTHON to a Python \
             built with --enable-shared (pyenv: \
             PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install {version})"
        )),
    }
}

/// Links the package's programs with the embeddable Python and turns on
/// `cfg(python)`; without one, leaves it off and puts the reason in
/// `COURSE_NO_PYTHON` for the programs to report.
pub fn link_python() {
    for variable in ["PYO3_PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX", "PATH"] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    println!("cargo::rustc-check-cfg=cfg(python)");
    match embeddable_python() {
        Ok(python) => {
            println!("cargo::rustc-link-search=native={}", python.libdir);
            println!("cargo::rustc-link-lib=dylib={}", python.library);
            // The library need not be where the loader looks (pyenv's is not).
            println!("cargo::rustc-link-arg=-Wl,-rpath,{}", python.libdir);
            println!("cargo::rustc-cfg=python");
            println!("cargo::rustc-env=COURSE_NO_PYTHON=");
        }
        Err(why) => println!("cargo::rustc-env=COURSE_NO_PYTHON={why}"),
    }
}
