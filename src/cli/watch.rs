//! `course watch`: grade again whenever an exercise file is saved.
//!
//! File-change notifications (inotify and the like, through `notify`) are
//! debounced, so an editor's burst of writes grades once. Where the system
//! cannot notify (some network and container file systems), the watcher
//! falls back to polling; and pressing Enter grades at once, whatever the
//! watcher saw.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{Config, DebouncedEvent, new_debouncer_opt};

use super::grade::{self, Options, Package};

/// Why the loop wakes up.
#[derive(Debug)]
enum Wake {
    /// Files changed.
    Changed(Vec<PathBuf>),
    /// Enter was pressed.
    Regrade,
    /// `q`.
    Quit,
}

/// Waits quietly this long after the last write before grading.
const SETTLE: Duration = Duration::from_millis(300);

/// Grades `selection` (or everything), then the chapter of each file that
/// changes, until `q` or Ctrl-C. With `poll`, checks files every second
/// instead of waiting for notifications.
pub fn watch(
    root: &Path,
    selection: Option<&str>,
    poll: bool,
) -> Result<(), String> {
    let (wake, woken) = mpsc::channel();
    let sources = root.join("exercises/src");
    // Keep whichever watcher started alive for as long as we watch.
    let _watcher = start_watcher(&sources, poll, wake.clone())?;
    read_keys(wake);
    let mut current: Option<String> = selection.map(str::to_string);
    // Notifications also come when a file is only read (by our own build,
    // or an editor): a file counts as changed when its time or size does.
    let mut stamps = Stamps::default();
    stamps.changed(&rust_files(&sources));
    run(root, current.as_deref());
    while let Ok(event) = woken.recv() {
        // Gather what else arrives while the last writes land, so that
        // saves in two chapters grade both.
        let mut events = vec![event];
        while let Ok(more) = woken.recv_timeout(Duration::from_millis(50)) {
            events.push(more);
        }
        match next_grade(&events, &mut stamps) {
            Next::Quit => return Ok(()),
            Next::Nothing => continue,
            Next::Again => {}
            Next::Chapter(chapter) => current = Some(chapter),
            Next::Everything => current = None,
        }
        run(root, current.as_deref());
    }
    Ok(())
}

/// What a batch of wake-ups asks for.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// `q`, or the end of stdin.
    Quit,
    /// Only files that were read, not changed.
    Nothing,
    /// Enter: the same selection again.
    Again,
    /// Files of one chapter changed.
    Chapter(String),
    /// Files of several chapters, or shared ones (lib.rs, sync.rs).
    Everything,
}

fn next_grade(events: &[Wake], stamps: &mut Stamps) -> Next {
    let mut changed: Vec<String> = Vec::new();
    let mut regrade = false;
    let mut outside = false;
    for event in events {
        let paths = match event {
            Wake::Quit => return Next::Quit,
            Wake::Regrade => {
                regrade = true;
                continue;
            }
            Wake::Changed(paths) => paths,
        };
        let paths: Vec<PathBuf> = paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .cloned()
            .collect();
        for path in stamps.changed(&paths) {
            match chapter_of(&path) {
                Some(chapter) if !changed.contains(&chapter) => {
                    changed.push(chapter);
                }
                Some(_) => {}
                // lib.rs, sync.rs: any chapter may use them.
                None => outside = true,
            }
        }
    }
    match changed.as_slice() {
        _ if outside || changed.len() > 1 => Next::Everything,
        [chapter] => Next::Chapter(chapter.clone()),
        _ if regrade => Next::Again,
        _ => Next::Nothing,
    }
}

/// Starts a debounced watcher of `sources` that sends [`Wake::Changed`]:
/// notifications where the system gives them, else polling every second.
fn start_watcher(
    sources: &Path,
    poll: bool,
    wake: mpsc::Sender<Wake>,
) -> Result<Box<dyn std::any::Any>, String> {
    let on_change =
        move |events: Result<Vec<DebouncedEvent>, notify::Error>| {
            if let Ok(events) = events {
                let paths = events.into_iter().map(|e| e.path).collect();
                let _ = wake.send(Wake::Changed(paths));
            }
        };
    let config = Config::default().with_timeout(SETTLE);
    let notified = if poll {
        Err("--poll was given".to_string())
    } else {
        new_debouncer_opt::<_, RecommendedWatcher>(
            config.clone(),
            on_change.clone(),
        )
        .map_err(|e| e.to_string())
        .and_then(|mut debouncer| {
            debouncer
                .watcher()
                .watch(sources, RecursiveMode::Recursive)
                .map_err(|e| e.to_string())?;
            Ok(debouncer)
        })
    };
    let why = match notified {
        Ok(debouncer) => return Ok(Box::new(debouncer)),
        Err(why) => why,
    };
    // Out of inotify watches, or told to: poll instead. (Some network file
    // systems accept a watch and never notify; use --poll there.)
    eprintln!("checking for changes every second ({why})");
    let polling = config.with_notify_config(
        notify::Config::default().with_poll_interval(Duration::from_secs(1)),
    );
    let mut debouncer = new_debouncer_opt::<_, PollWatcher>(polling, on_change)
        .map_err(|e| format!("cannot watch files: {e}"))?;
    debouncer
        .watcher()
        .watch(sources, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", sources.display()))?;
    Ok(Box::new(debouncer))
}

/// Enter grades again; `q` quits. Without a standard input (a background
/// job, an IDE's task runner, `< /dev/null`), the keys are off and
/// watching goes on until Ctrl-C.
fn read_keys(wake: mpsc::Sender<Wake>) {
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else {
                break;
            };
            let quit = line.trim() == "q";
            let _ = wake.send(if quit { Wake::Quit } else { Wake::Regrade });
            if quit {
                return;
            }
        }
        eprintln!(
            "(standard input is closed: Enter and q are off; still watching, \
             Ctrl-C stops)"
        );
    });
}

/// The modification time and size last seen of each file.
#[derive(Debug, Default)]
struct Stamps(HashMap<PathBuf, Option<(SystemTime, u64)>>);

impl Stamps {
    /// The paths among `paths` whose stamp differs from the last seen (a
    /// file created or removed counts too); remembers the new stamps.
    fn changed(&mut self, paths: &[PathBuf]) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        for path in paths {
            let stamp = fs::metadata(path)
                .ok()
                .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
            if self.0.insert(path.clone(), stamp) != Some(stamp) {
                changed.push(path.clone());
            }
        }
        changed
    }
}

/// The `.rs` files under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

fn chapter_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let module = name.strip_suffix(".rs").unwrap_or(name);
    crate::registry::chapter_of_module(module).map(str::to_string)
}

fn run(root: &Path, selection: Option<&str>) {
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        // Clear the screen, as after each save only the latest grade counts.
        let _ = write!(stdout, "\x1b[2J\x1b[H");
    }
    let what = selection.unwrap_or("every chapter");
    println!(
        "grading {what} (save a file to grade again; Enter: now; q: quit)\n"
    );
    let options = Options {
        interactive: true,
        loom: false,
    };
    match grade::grade(root, Package::Exercises, selection, options) {
        Ok(report) => print!("{}", report.render(root)),
        Err(fatal) => println!("error: {fatal}"),
    }
    let _ = stdout.flush();
}
