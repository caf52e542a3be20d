//! Reference solutions: the same modules, types and signatures as the
//! `exercises` crate, solved and explained. Graded by the very same trials
//! (`cargo test -p solutions`), which must all pass.

// Every file of src/ is a module: a chapter's file (`ch01_threads.rs`),
// compiled while its chapter is on (the `#![cfg(chapter = ...)]` at its
// top), and `sync.rs`. A new chapter needs no line here.
automod::dir!(pub "src");
