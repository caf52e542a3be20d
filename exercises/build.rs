// The chapters are the files `src/chNN_topic.rs`; see the included file.
include!("../src/registry/build.rs");
