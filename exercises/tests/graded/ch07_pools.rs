//! Graded trials of chapter 7, Processes instead of threads.
//!
//! The process pool's workers are this crate's `worker` binary in its `pool`
//! mode (see `course::worker`). The "how" checks: countdown shares, thread
//! pool jobs and mappers wait at a barrier for each other, and the process
//! pool's workers wait, through files, until every worker has announced a
//! job of the same round, so a version that does one piece at a time, or
//! has one worker, times out and is told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch07")]

// The trials' bodies, one module per exercise, in `ch07_pools/`.
mod countdown;
mod process_pool;
mod thread_pool;
mod word_count;

use std::time::Duration;

use countdown::{
    counts_every_share_once, counts_the_shares_at_once, split_is_balanced,
};
use course::grader::Trial;
use process_pool::{
    keeps_every_worker_busy_at_once, leaves_no_worker_behind,
    reports_a_worker_that_died, returns_answers_in_job_order,
    starts_size_long_lived_workers, stops_a_worker_blocked_on_a_full_pipe,
};
use thread_pool::{
    never_runs_more_than_size_jobs, runs_every_job_before_drop_returns,
    runs_size_jobs_at_once, survives_a_panicking_job,
};
use word_count::{
    handles_more_mappers_than_texts, maps_the_texts_at_once,
    matches_the_sequential_count,
};

/// Deadline for trials whose only way to hang is missing concurrency (or a
/// drop that never returns).
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for the trials whose work alone takes seconds on a busy
/// machine (tens of thousands of words to count, a million jobs to queue,
/// 1100 threads to start, 8 MiB to send through a pipe):
/// it only detects a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new("ch07::countdown::split_is_balanced", 1, split_is_balanced),
        Trial::new(
            "ch07::countdown::split_is_exact_for_huge_counts",
            1,
            countdown::split_is_exact_for_huge_counts,
        ),
        Trial::new(
            "ch07::countdown::zero_parts_count_as_one",
            1,
            countdown::zero_parts_count_as_one,
        ),
        Trial::new(
            "ch07::countdown::counts_every_share_once",
            1,
            counts_every_share_once,
        ),
        Trial::new(
            "ch07::countdown::counts_each_share_on_a_thread_of_its_own",
            1,
            countdown::counts_each_share_on_a_thread_of_its_own,
        ),
        Trial::new(
            "ch07::countdown::passes_a_panic_on",
            1,
            countdown::passes_a_panic_on,
        ),
        Trial::new(
            "ch07::countdown::counts_the_shares_at_once",
            2,
            counts_the_shares_at_once,
        )
        // Starting 1100 threads takes a busy machine seconds.
        .timeout(BUSY_TIMEOUT)
        .on_timeout(
            "the shares were not counted at the same time: each share's \
             countdown waits at a barrier until every share has started, \
             with 4 shares, and with 1100 (a thread for every share, with \
             no cap on the threads, not even one by the number of cores)",
        ),
        Trial::new(
            "ch07::process_pool::starts_size_long_lived_workers",
            1,
            starts_size_long_lived_workers,
        )
        .on_timeout(
            "map or dropping the pool never returned (if \
             leaves_no_worker_behind timed out too, it is the drop)",
        ),
        Trial::new(
            "ch07::process_pool::returns_answers_in_job_order",
            1,
            returns_answers_in_job_order,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the first job waits for a file that the third job creates: \
             with two workers, the third job must go to whichever worker \
             is free (a queue the workers take jobs from), not wait behind \
             the first (if leaves_no_worker_behind timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::sends_a_long_job_whole",
            1,
            process_pool::sends_a_long_job_whole,
        )
        // Sending 8 MiB through a pipe takes a busy machine seconds.
        .timeout(BUSY_TIMEOUT)
        .on_timeout(
            "map never returned on a job of 8 MiB: a pipe takes a few KiB \
             at a time, and a write that a signal interrupts returns how \
             many bytes it wrote, so a single write can send part of a \
             line and leave the worker waiting for the rest; send each \
             line with write_all (if leaves_no_worker_behind timed out \
             too, dropping the pool is what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::keeps_every_worker_busy_at_once",
            2,
            keeps_every_worker_busy_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the workers were not all busy at once: no job of a round can \
             finish until every worker has taken a job of that round, so \
             send every worker a job before waiting for any answer (if \
             leaves_no_worker_behind timed out too, dropping the pool is \
             what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::feeds_the_workers_without_a_thread_per_job",
            1,
            process_pool::feeds_the_workers_without_a_thread_per_job,
        )
        // It counts this process's threads.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "map on a pool of 3 workers never returned: its first 3 jobs \
             each wait until every worker has taken one, so feed every \
             worker at once (if keeps_every_worker_busy_at_once timed out \
             too, that is what is missing; if leaves_no_worker_behind timed \
             out too, dropping the pool is what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::leaves_no_worker_behind",
            1,
            leaves_no_worker_behind,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "dropping the pool never returned: a worker stops at the end \
             of its input, so close every worker's stdin before waiting \
             for it",
        ),
        Trial::new(
            "ch07::process_pool::lets_every_worker_finish",
            1,
            process_pool::lets_every_worker_finish,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "dropping the pool never returned: each worker here, once its \
             stdin has ended, still has work to do, and is let finish it \
             only once a thread of the pool waits for a worker \
             (Child::wait): close every worker's stdin, then wait for each \
             (not try_wait in a loop)",
        ),
        Trial::new(
            "ch07::process_pool::stops_a_worker_blocked_on_a_full_pipe",
            1,
            stops_a_worker_blocked_on_a_full_pipe,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "dropping the pool, or a new that failed to start its third \
             worker, never returned: its workers write without end and \
             never read their stdin, so closing their stdin does not stop \
             them, each blocks on its full stdout pipe, and reading that \
             pipe to its end never ends; close the pool's end of each \
             worker's stdout too (its next write then fails) before \
             waiting for the worker, in new as in the drop",
        ),
        Trial::new(
            "ch07::process_pool::reports_a_worker_that_died",
            1,
            reports_a_worker_that_died,
        )
        .on_timeout(
            "map or dropping the pool never returned after a worker died: \
             a worker whose stdout has ended (read_line returns 0) will \
             never answer (if leaves_no_worker_behind timed out too, it is \
             the drop)",
        ),
        Trial::new(
            "ch07::process_pool::leaves_no_worker_behind_when_a_spawn_fails",
            1,
            process_pool::leaves_no_worker_behind_when_a_spawn_fails,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "new never returned after a worker failed to start: the \
             workers already started, once their stdins have ended, still \
             have work to do, and are let finish it only once a thread \
             waits for a worker (Child::wait): close their stdins, then \
             wait for each (not try_wait in a loop), then return the error",
        ),
        Trial::new(
            "ch07::process_pool::rejects_a_job_with_a_newline",
            1,
            process_pool::rejects_a_job_with_a_newline,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "map never returned on a job that holds a newline: check every \
             job before sending any",
        ),
        Trial::new(
            "ch07::process_pool::rejects_a_size_of_zero",
            1,
            process_pool::rejects_a_size_of_zero,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "ProcessPool::new(command, 0) never returned: it must panic",
        ),
        Trial::new(
            "ch07::thread_pool::runs_every_job_before_drop_returns",
            1,
            runs_every_job_before_drop_returns,
        )
        // One job runs for SLOW_JOB after the drop began, and a worker
        // takes WORKER_END to end, by design; a million jobs and twelve
        // countdowns of ten million steps take a busy machine seconds.
        .timeout(BUSY_TIMEOUT + thread_pool::SLOW_JOB + thread_pool::WORKER_END)
        .on_timeout(
            "dropping the pool never returned, or execute never returned \
             on one of a million jobs sent while every thread was busy: \
             close the job channel (drop its Sender) before joining the \
             workers, or they wait for another job forever; and queue the \
             jobs without a bound (a bounded channel's send waits while the \
             queue is full)",
        ),
        Trial::new(
            "ch07::thread_pool::survives_a_panicking_job",
            1,
            survives_a_panicking_job,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the jobs after a panicking job never ran: a panic in a job \
             must not end its worker thread (run each job under \
             std::panic::catch_unwind; if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::keeps_its_threads_while_idle",
            1,
            thread_pool::keeps_its_threads_while_idle,
        )
        // The pool has nothing to do for IDLE, by design.
        .timeout(HANG_TIMEOUT + thread_pool::IDLE)
        .on_timeout(
            "a pool that had had nothing to do for 3 seconds did not run 2 \
             jobs at once on its 2 threads: the workers must wait for the \
             next job however long it takes (recv, not recv_timeout), \
             until the pool is dropped (if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::idle_threads_sleep_until_the_pool_is_dropped",
            1,
            thread_pool::idle_threads_sleep_until_the_pool_is_dropped,
        )
        // It freezes a thread, and reads which threads there are.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a pool of 2 threads did not run its jobs, or never had both \
             its threads asleep once they were idle (if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::runs_size_jobs_at_once",
            2,
            runs_size_jobs_at_once,
        )
        // Starting 1100 threads takes a busy machine seconds.
        .timeout(BUSY_TIMEOUT)
        .on_timeout(
            "the pool did not run its 4 jobs at once, or a pool of 1100 \
             threads its 1100 jobs: each waits at a barrier until all have \
             started (are there `size` worker threads, with no cap on them, \
             not even one by the number of cores, and does a worker hold a \
             lock while it runs a job? If runs_every_job_before_drop_returns \
             timed out too, dropping the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::never_runs_more_than_size_jobs",
            1,
            never_runs_more_than_size_jobs,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "3 jobs of a pool of 3 threads never all started: the pool \
             must run as many jobs at once as it has threads (if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::takes_the_jobs_in_order_on_a_free_thread",
            1,
            thread_pool::takes_the_jobs_in_order_on_a_free_thread,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "on a pool of 2 threads, the first job waits until the third \
             has run: the third job must go to whichever thread is free \
             (one queue that every worker takes from), not wait behind the \
             first on a thread it was dealt to (if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::rejects_a_size_of_zero",
            1,
            thread_pool::rejects_a_size_of_zero,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout("ThreadPool::new(0) never returned: it must panic"),
        Trial::new(
            "ch07::word_count::matches_the_sequential_count",
            1,
            matches_the_sequential_count,
        )
        // It counts some fifty thousand words, twice, and a word of 4 MiB
        // four times: a debug build on a busy machine takes seconds.
        .timeout(BUSY_TIMEOUT)
        .on_timeout(
            "word_count never returned, on some fifty thousand words, or \
             with one mapper held until the calling thread had added up the \
             counts that the two others had sent: the calling thread adds \
             the counts up as they arrive, while the mappers run, not once \
             the mappers have ended (do the mappers send on a bounded \
             channel that nobody reads until then, or does the calling \
             thread read the channel only after the scope?)",
        ),
        Trial::new(
            "ch07::word_count::adds_up_every_part_of_a_mapper_s_counts",
            1,
            word_count::adds_up_every_part_of_a_mapper_s_counts,
        )
        // Counting 131 073 different words takes a busy machine seconds.
        .timeout(BUSY_TIMEOUT)
        .on_timeout(
            "word_count never returned on two mappers, one of which counts \
             a text of 131 073 different words",
        ),
        Trial::new(
            "ch07::word_count::maps_the_texts_at_once",
            2,
            maps_the_texts_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the mappers did not run at the same time: each calls on_map, \
             which waits at a barrier until every mapper has started, then \
             calls words on its one text, which waits at a barrier until \
             every mapper is counting (does a mapper hold a lock that the \
             others need while it counts?)",
        ),
        Trial::new(
            "ch07::word_count::adds_the_counts_up_on_the_calling_thread",
            1,
            word_count::adds_the_counts_up_on_the_calling_thread,
        )
        // It reads which threads there are, and the caller's CPU time.
        .exclusive()
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "word_count never returned, or the calling thread was never \
             seen asleep while its two mappers waited: it waits for their \
             counts (recv) and adds them up",
        ),
        Trial::new(
            "ch07::word_count::handles_more_mappers_than_texts",
            1,
            handles_more_mappers_than_texts,
        ),
        Trial::new(
            "ch07::word_count::shares_the_texts_out_evenly",
            1,
            word_count::shares_the_texts_out_evenly,
        ),
        Trial::new(
            "ch07::word_count::calls_on_map_before_counting",
            1,
            word_count::calls_on_map_before_counting,
        ),
    ]
}
