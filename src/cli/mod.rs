//! The learner's and the instructor's commands: `grade`, `watch`, `hint`,
//! `verify`, `soak`, and the reader's `bench` and `trace`. `serve` and `build` are in `course::book`.

pub mod bench;
pub mod grade;
pub mod hint;
pub(crate) mod items;
pub mod reset;
pub mod soak;
pub mod sums;
pub mod verify;
pub mod watch;

pub use verify::{CLASSROOM, verify};
