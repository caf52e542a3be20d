//! Your exercises, one module per chapter. Replace each `todo!()` marked
//! `TODO(chNN)` with working code, then grade yourself:
//!
//! ```text
//! cargo course grade               # every chapter
//! cargo course grade ch01          # chapter 1 only
//! cargo course hint ch01::spawn_all
//! cargo test -p exercises          # the same trials, as plain cargo
//! ```

// Every file of src/ is a module: a chapter's file (`ch01_threads.rs`),
// compiled while its chapter is on (the `#![cfg(chapter = ...)]` at its
// top), and `sync.rs`. A new chapter needs no line here.
automod::dir!(pub "src");
