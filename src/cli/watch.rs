//! `course watch`: grade again whenever an exercise file is saved.
//!
//! File-change notifications (inotify and the like, through `notify`) are
//! debounced, so an editor's burst of writes grades once. Where the system
//! cannot notify (some network and container file systems), the watcher
//! falls back to polling; and pressing Enter grades at once, whatever the
//! watcher saw.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{Config, DebouncedEvent, new_debouncer_opt};

use super::grade::{self, CHAPTERS, Options, Package};

/// Why the loop wakes up.
enum Wake {
    /// Files changed.
    Changed(Vec<PathBuf>),
    /// Enter was pressed.
    Regrade,
    /// `q`, or the end of stdin.
    Quit,
}

/// Waits quietly this long after the last write before grading.
const SETTLE: Duration = Duration::from_millis(300);

/// Grades `selection` (or everything), then the chapter of each file that
/// changes, until `q` or Ctrl-C.
pub fn watch(root: &Path, selection: Option<&str>) -> Result<(), String> {
    let (wake, woken) = mpsc::channel();
    let sources = root.join("exercises/src");
    let on_change = {
        let wake = wake.clone();
        move |events: Result<Vec<DebouncedEvent>, notify::Error>| {
            if let Ok(events) = events {
                let paths = events.into_iter().map(|e| e.path).collect();
                let _ = wake.send(Wake::Changed(paths));
            }
        }
    };
    let config = Config::default().with_timeout(SETTLE);
    // Keep whichever watcher started alive for as long as we watch.
    let _watcher: Box<dyn std::any::Any> =
        match new_debouncer_opt::<_, RecommendedWatcher>(
            config.clone(),
            on_change.clone(),
        ) {
            Ok(mut debouncer) => {
                debouncer
                    .watcher()
                    .watch(&sources, RecursiveMode::Recursive)
                    .map_err(|e| {
                        format!("cannot watch {}: {e}", sources.display())
                    })?;
                Box::new(debouncer)
            }
            Err(error) => {
                eprintln!(
                    "file-change notification is unavailable ({error}); \
                     checking for changes every second instead"
                );
                let polling = config.with_notify_config(
                    notify::Config::default()
                        .with_poll_interval(Duration::from_secs(1)),
                );
                let mut debouncer =
                    new_debouncer_opt::<_, PollWatcher>(polling, on_change)
                        .map_err(|e| format!("cannot watch files: {e}"))?;
                debouncer
                    .watcher()
                    .watch(&sources, RecursiveMode::Recursive)
                    .map_err(|e| {
                        format!("cannot watch {}: {e}", sources.display())
                    })?;
                Box::new(debouncer)
            }
        };
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let quit = line.as_deref().map(str::trim).is_ok_and(|l| l == "q");
            let _ = wake.send(if quit { Wake::Quit } else { Wake::Regrade });
            if quit {
                return;
            }
        }
        let _ = wake.send(Wake::Quit);
    });

    let mut current: Option<String> = selection.map(str::to_string);
    run(root, current.as_deref());
    while let Ok(event) = woken.recv() {
        match event {
            Wake::Quit => break,
            Wake::Regrade => {}
            Wake::Changed(paths) => {
                let chapters: Vec<&str> = paths
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                    .filter_map(|p| chapter_of(p))
                    .collect();
                match chapters.as_slice() {
                    [] => continue,
                    [chapter] => current = Some(chapter.to_string()),
                    [first, rest @ ..] if rest.iter().all(|c| c == first) => {
                        current = Some(first.to_string());
                    }
                    _ => current = None,
                }
            }
        }
        // Let the last of a burst of writes land before building.
        while let Ok(more) = woken.recv_timeout(Duration::from_millis(50)) {
            if matches!(more, Wake::Quit) {
                return Ok(());
            }
        }
        run(root, current.as_deref());
    }
    Ok(())
}

fn chapter_of(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    CHAPTERS.iter().copied().find(|c| name.starts_with(c))
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
    let options = Options { interactive: true };
    match grade::grade(root, Package::Exercises, selection, options) {
        Ok(report) => print!("{}", report.render(root)),
        Err(fatal) => println!("error: {fatal}"),
    }
    let _ = stdout.flush();
}
