//! The tables of a run, as Markdown (also readable as plain text): what
//! `course bench` prints and what the Measurements appendix shows.

use std::fmt::Write as _;

use super::results::{Latency, Results};

/// All the tables, headed by the command and the machine.
pub(crate) fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `cargo course bench{}` on {}.\n",
        results.effort.flag(),
        results.machine.describe()
    );
    countdown(&mut out, results);
    python_calls_rust(&mut out, results);
    convoy(&mut out, results);
    counting(&mut out, results);
    creation(&mut out, results);
    transfer(&mut out, results);
    memory(&mut out, results);
    tracing(&mut out, results);
    out
}

/// 29479929 → `29 479 929`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// A ratio as a factor: `1.04×`.
fn x(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

/// A convoy cell: p10 / p50 / p90 / slowest, or a dash.
fn ms(latency: &Result<Latency, String>) -> String {
    match latency {
        Ok(l) => {
            format!("{:.2} / {:.2} / {:.2} / {:.2}", l.p10, l.p50, l.p90, l.max)
        }
        Err(_) => "—".to_string(),
    }
}

/// The countdown table and the cost of a Python step in Rust steps.
fn countdown(out: &mut String, results: &Results) {
    let c = &results.countdown;
    let _ = writeln!(out, "### Countdown: time relative to one thread\n");
    let _ = writeln!(out, "| program | time | per step |\n|---|---|---|");
    match &c.python {
        Ok((threads, processes)) => {
            let _ = writeln!(
                out,
                "| Python, 1 thread ({} steps) | {:.2} s | {:.1} ns |",
                grouped(c.python_count),
                threads.a,
                c.per_step.0.unwrap_or(f64::NAN)
            );
            let _ = writeln!(
                out,
                "| Python, 2 threads | {} ({:.2} s) |  |",
                x(threads.ratio),
                threads.b
            );
            let _ = writeln!(
                out,
                "| Python, 2 processes (fork) | {} ({:.2} s) |  |",
                x(processes.ratio),
                processes.b
            );
        }
        Err(why) => {
            let _ = writeln!(out, "| Python | not measured: {why} |  |");
        }
    }
    let n = results.machine.workers();
    let _ = writeln!(
        out,
        "| Rust, 1 thread ({} steps) | {:.2} s | {:.2} ns |",
        grouped(c.rust_count),
        c.rust_threads.a,
        c.per_step.1
    );
    let _ = writeln!(
        out,
        "| Rust, {n} threads | {} ({:.2} s) |  |",
        x(c.rust_threads.ratio),
        c.rust_threads.b
    );
    let _ = writeln!(
        out,
        "| Rust, {n} processes | {} ({:.2} s) |  |",
        x(c.rust_processes.ratio),
        c.rust_processes.b
    );
    let _ = writeln!(
        out,
        "| toy GIL (5 ms switch interval), 1 thread ({} steps) | {:.2} s | \
         {:.2} ns |\n\
         | toy GIL, 2 threads | {} ({:.2} s) |  |",
        grouped(c.gil_count),
        c.gil_threads.a,
        c.gil_threads.a / c.gil_count as f64 * 1e9,
        x(c.gil_threads.ratio),
        c.gil_threads.b
    );
    if let Some(python) = c.per_step.0 {
        let _ = writeln!(
            out,
            "\nOne Python step (8 bytecodes in CPython 3.11) costs as \
             much as {:.0} Rust steps.",
            python / c.per_step.1
        );
    }
}

/// Python threads calling Rust: two threads, each with half the steps,
/// against one thread.
fn python_calls_rust(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "\n### Python threads calling Rust: two threads relative to one\n"
    );
    let m = match &results.python_calls_rust {
        Ok(measured) => measured,
        Err(why) => {
            let _ = writeln!(out, "Not measured: {why}");
            return;
        }
    };
    let _ = writeln!(
        out,
        "One embedded CPython {} times both: one Python thread counting \
         down N steps, and two threads counting down N/2 each. N is {} \
         for the countdown in Python and {} for the Rust functions.\n\n\
         | the threads call | 1 thread | 2 threads |\n|---|---|---|",
        m.version,
        grouped(m.python_count),
        grouped(m.rust_count)
    );
    for (what, ratio) in [
        ("nothing: the countdown in Python", &m.python),
        ("Rust, holding the GIL", &m.holding),
        ("Rust, inside `py.detach`", &m.detached),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {:.2} s | {} ({:.2} s) |",
            ratio.a,
            x(ratio.ratio),
            ratio.b
        );
    }
}

/// The convoy table: one row per lock, alone and beside a busy thread.
fn convoy(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "\n### The convoy effect: an I/O thread's round trips (ms, p10 / p50 / p90 / slowest)\n\n\
         A round trip: ask a peer that answers after {} ms, wait for \
         the answer with the GIL released, take the GIL back. In the \
         toy rows the peer holds no lock; in the Python row the peer \
         is a Python thread, whose reply needs the GIL too, so beside a \
         busy thread a trip typically waits for the GIL twice (the peer, \
         then the I/O thread), about two switch intervals.\n\n\
         | lock | alone | beside a CPU-bound thread |\n|---|---|---|",
        results.peer_delay.as_secs_f64() * 1e3
    );
    for row in &results.convoy {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            row.variant,
            ms(&row.alone),
            ms(&row.busy)
        );
    }
}

/// Chapter 4's counting table: what an increment costs, and what a
/// count split into a load and a store loses.
fn counting(out: &mut String, results: &Results) {
    let i = &results.increments;
    let _ = writeln!(
        out,
        "\n### Incrementing a count (median of three rounds of {} each)\n\n\
         | increment | time | relative to plain |\n|---|---|---|\n\
         | plain `u64` | {:.2} ns | 1× |\n\
         | atomic (`fetch_add`) | {:.1} ns | {:.0}× |\n\
         | under a `Mutex` | {:.1} ns | {:.0}× |\n\
         | atomic, two threads on one count (clock time per increment, both together) | {:.1} ns | {:.0}× |",
        grouped(i.count),
        i.plain_ns,
        i.atomic_ns,
        i.atomic_ns / i.plain_ns,
        i.mutex_ns,
        i.mutex_ns / i.plain_ns,
        i.shared_ns,
        i.shared_ns / i.plain_ns
    );
    let l = &results.lost_updates;
    let lost: Vec<String> = l.lost.iter().map(|&n| grouped(n)).collect();
    let _ = writeln!(
        out,
        "\n{} threads, each adding {} to one count as a load and then a \
         store, lost {} updates in {} runs.",
        l.threads,
        grouped(l.steps),
        lost.join(", "),
        l.lost.len()
    );
}

/// The creation table: a task, a thread, a process.
fn creation(out: &mut String, results: &Results) {
    let k = &results.creation;
    let _ = writeln!(
        out,
        "\n### Starting and finishing a task, a thread or a process \
         (average over many started at once, then all awaited; a process \
         is this program started again to do nothing)\n\n| what | time | relative to a task |\n|---|---|---|\n\
         | tokio task | {:.2} µs | 1× |\n| thread | {:.1} µs | {:.0}× |\n| process | {:.0} µs | {:.0}× |",
        k.task_us,
        k.thread_us,
        k.thread_us / k.task_us,
        k.process_us,
        k.process_us / k.task_us
    );
}

/// The transfer table: a thread that borrows, a process over a pipe.
fn transfer(out: &mut String, results: &Results) {
    let t = &results.transfer;
    let _ = writeln!(
        out,
        "\n### Summing a million numbers\n\n| where | time |\n|---|---|\n\
         | a thread that borrows them | {:.1} ms |\n\
         | a child process, sent as text over a pipe | {:.0} ms ({:.0}×) |",
        t.thread_ms,
        t.process_ms,
        t.process_ms / t.thread_ms
    );
}

/// The memory table, when memory was measured.
fn memory(out: &mut String, results: &Results) {
    let Some(mem) = &results.memory else {
        return;
    };
    let _ = writeln!(
        out,
        "\n### Memory per waiting thread or task\n\n\
         Resident: the program's VmRSS with {} parked threads (or {} \
         pending tasks) minus with none, divided by the count. Kernel \
         stack: the system-wide `KernelStack` of /proc/meminfo, before \
         and after, so other programs add noise.\n\n\
         | what | resident | kernel stack |\n|---|---|---|\n\
         | parked thread | {:.1} KiB | {:.1} KiB |\n| pending tokio task | {:.2} KiB | none |",
        mem.threads,
        mem.tasks,
        mem.thread_rss_kib,
        mem.thread_kernel_kib,
        mem.task_rss_kib
    );
}

/// The cost of tracing the toy GIL.
fn tracing(out: &mut String, results: &Results) {
    let t = &results.tracing;
    let _ = writeln!(
        out,
        "\n### Tracing the toy GIL: traced time relative to untraced\n\n\
         One thread counts down {} steps, one tick each, on an untraced and \
         on a traced GIL (`Gil::traced`, what `course trace` records).\n\n\
         | countdown | untraced | traced |\n|---|---|---|\n\
         | new GIL, 5 ms (only ticks) | {:.3} s | {} ({:.3} s) |\n\
         | old GIL, every 100 ticks (records each release) | {:.3} s | {} ({:.3} s) |\n\
         | old GIL, untraced twice (noise floor) | {:.3} s | {} ({:.3} s) |",
        grouped(t.count),
        t.ticks.a,
        x(t.ticks.ratio),
        t.ticks.b,
        t.switches.a,
        x(t.switches.ratio),
        t.switches.b,
        t.floor.a,
        x(t.floor.ratio),
        t.floor.b,
    );
}

#[cfg(test)]
mod tests {
    use super::super::results::{Effort, sample};
    use super::*;

    #[test]
    fn the_tables_name_the_command_that_measured_them() {
        let mut results = sample(true);
        let first = |results: &Results| {
            markdown(results).lines().next().unwrap().to_string()
        };
        assert_eq!(
            first(&results),
            "Measured by `cargo course bench` on 4 CPUs, Test CPU, \
             Linux 6.1, Python 3.11.7."
        );
        results.effort = Effort::Smoke;
        assert!(
            first(&results)
                .starts_with("Measured by `cargo course bench --smoke` on")
        );
    }

    #[test]
    fn convoy_rows_keep_their_labels() {
        let table = markdown(&sample(false));
        assert!(table.contains(
            "| toy GIL, new style, 0.2 ms | 0.94 / 1.04 / 2.08 / 4.16 | \
             4.95 / 5.50 / 11.00 / 22.00 |\n"
        ));
        assert!(table.contains("| Python | — | — |\n"));
    }

    #[test]
    fn the_tracing_rows_say_what_was_traced() {
        let table = markdown(&sample(true));
        assert!(table.contains("### Tracing the toy GIL"));
        assert!(table.contains(
            "| old GIL, every 100 ticks (records each release) | 0.300 s | \
             1.30× (0.390 s) |\n"
        ));
    }

    #[test]
    fn python_calling_rust_has_a_row_per_function() {
        let table = markdown(&sample(true));
        assert!(table.contains(
            "| Rust, holding the GIL | 0.60 s | 1.00× (0.60 s) |\n\
             | Rust, inside `py.detach` | 0.60 s | 0.51× (0.31 s) |\n"
        ));
        assert!(table.contains("N is 24 000 000 for the countdown in Python"));
        let without = markdown(&sample(false));
        assert!(without.contains(
            "two threads relative to one\n\nNot measured: no Python found"
        ));
    }

    #[test]
    fn digits_are_grouped_by_three() {
        assert_eq!(grouped(7), "7");
        assert_eq!(grouped(1000), "1 000");
        assert_eq!(grouped(29_479_929), "29 479 929");
    }
}
