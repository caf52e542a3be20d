// The chapters of the course, derived from one place: the files
// `exercises/src/chNN_topic.rs`. Each such file is a module of chapter
// `chNN`; a chapter may have several (`ch08_futures`, `ch08_tokio`).
//
// Plain std, no inner attributes: `build.rs` beside this file includes it
// into the exercises' and solutions' build scripts, and `course::registry`
// makes it a module, so both read the chapters the same way.

/// The chapter a module name belongs to: `ch03_gil` → `ch03`.
pub fn chapter_of_module(module: &str) -> Option<&str> {
    let (chapter, topic) = module.split_once('_')?;
    let digits = chapter.strip_prefix("ch")?;
    let well_formed = digits.len() == 2
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !topic.is_empty()
        && topic
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    well_formed.then_some(chapter)
}

/// The chapter modules in a crate's `src` folder, sorted: (chapter, module),
/// such as (`ch03`, `ch03_gil`).
pub fn chapter_modules(src: &std::path::Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(src) else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let module = name.strip_suffix(".rs")?;
            let chapter = chapter_of_module(module)?;
            Some((chapter.to_string(), module.to_string()))
        })
        .collect();
    found.sort();
    found
}
