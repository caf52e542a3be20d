//! What the trials of chapter 5 ask Linux: whether a thread is asleep, how
//! much CPU time it has used (from `course::grader::task`), and a process
//! in which no new thread can start, or only a few (from
//! `course::grader::spawn_limit`).

pub use course::grader::spawn_limit::{
    while_no_thread_can_start, while_only_threads_can_start,
};
pub use course::grader::task::{Tid, asleep};

/// The id of the calling thread.
pub fn current_tid() -> Tid {
    course::grader::task::me().tid
}
