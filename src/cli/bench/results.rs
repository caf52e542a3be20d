//! What `course bench` measured: the value the measuring half returns and
//! the writing half (the printed tables, `--write`) consumes.

use std::fmt;
use std::time::Duration;

use crate::gil::SwitchInterval;

/// How hard to measure: `course bench`, `--quick` or `--smoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// The reference run, under a minute.
    Full,
    /// `--quick`: the shape in well under a minute.
    Quick,
    /// `--smoke`, for the tests: every code path, no meaningful figure.
    Smoke,
}

/// What an [`Effort`] amounts to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Each countdown variant runs at least this long.
    pub(crate) run: Duration,
    /// Pairs per comparison.
    pub(crate) pairs: usize,
    /// Round trips per convoy variant.
    pub(crate) trips: usize,
    /// Threads per creation round and per memory sample, a tenth as many
    /// processes (at least ten) and a hundred times as many tasks.
    pub(crate) creations: usize,
    /// Increments per kind in chapter 4's cost of counting.
    pub(crate) increments: u64,
}

impl Effort {
    /// The durations and counts this effort measures with.
    pub(crate) fn budget(self) -> Budget {
        match self {
            Effort::Full => Budget {
                run: Duration::from_millis(500),
                pairs: 5,
                trips: 200,
                creations: 1000,
                increments: 20_000_000,
            },
            Effort::Quick => Budget {
                run: Duration::from_millis(60),
                pairs: 3,
                trips: 40,
                creations: 200,
                increments: 2_000_000,
            },
            Effort::Smoke => Budget {
                run: Duration::from_millis(5),
                pairs: 1,
                trips: 4,
                creations: 20,
                increments: 20_000,
            },
        }
    }

    /// The option that asks for this effort, with its leading space, as
    /// the report quotes the command: nothing for the full run.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Effort::Full => "",
            Effort::Quick => " --quick",
            Effort::Smoke => " --smoke",
        }
    }
}

/// The machine a run measured.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// Logical CPUs available to us.
    pub(crate) cores: usize,
    /// `/proc/cpuinfo`'s model name.
    pub(crate) cpu: String,
    /// `Python 3.11.2`, or why there is none.
    pub(crate) python: Result<String, String>,
    /// The kernel (`uname -sr`).
    pub(crate) os: String,
}

impl Machine {
    /// One line: cores, CPU, kernel, Python.
    pub(crate) fn describe(&self) -> String {
        let python = match &self.python {
            Ok(version) => version.clone(),
            Err(why) => format!("no Python ({why})"),
        };
        format!("{} CPUs, {}, {}, {python}", self.cores, self.cpu, self.os)
    }

    /// How many threads or processes the Rust countdowns split the work
    /// among: every core, and at least two.
    pub(crate) fn workers(&self) -> usize {
        self.cores.max(2)
    }
}

/// One interleaved comparison: B took `ratio` times as long as A.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ratio {
    /// Median of the paired ratios B/A.
    pub(crate) ratio: f64,
    /// Median seconds of A.
    pub(crate) a: f64,
    /// Median seconds of B.
    pub(crate) b: f64,
}

/// The countdown comparisons.
#[derive(Debug, Clone)]
pub(crate) struct Countdown {
    /// Python: (2 threads / sequential, 2 processes / sequential), or why
    /// there is no Python.
    pub(crate) python: Result<(Ratio, Ratio), String>,
    /// Python's steps per run (0 when Python was not measured).
    pub(crate) python_count: u64,
    /// Rust: N threads / 1 thread.
    pub(crate) rust_threads: Ratio,
    /// Rust: N processes / 1 thread.
    pub(crate) rust_processes: Ratio,
    /// Rust steps per run.
    pub(crate) rust_count: u64,
    /// Toy GIL (new style, 5 ms): 2 threads / 1 thread.
    pub(crate) gil_threads: Ratio,
    /// Toy GIL steps (ticks) per run: a tick costs more than a plain
    /// step, so the toy counts less far in the same time.
    pub(crate) gil_count: u64,
    /// Nanoseconds per step: Python, Rust.
    pub(crate) per_step: (Option<f64>, f64),
}

/// Python threads calling Rust (chapter 9): each comparison is two
/// threads, each counting down half the steps, against one thread counting
/// down all of them, all timed in one embedded CPython.
#[derive(Debug, Clone)]
pub(crate) struct PythonCallsRust {
    /// The embedded interpreter's version: `3.11.7`.
    pub(crate) version: String,
    /// The countdown in pure Python.
    pub(crate) python: Ratio,
    /// Python's steps per run.
    pub(crate) python_count: u64,
    /// A Rust `#[pyfunction]` that counts down holding the GIL.
    pub(crate) holding: Ratio,
    /// A Rust `#[pyfunction]` that counts down inside `py.detach`.
    pub(crate) detached: Ratio,
    /// Rust's steps per run (both Rust comparisons).
    pub(crate) rust_count: u64,
}

/// Round trips of an I/O thread in milliseconds: p10, p50, p90 and the
/// slowest (the tail is where an unfair lock shows).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    /// 10th percentile.
    pub(crate) p10: f64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile: nine trips in ten were faster.
    pub(crate) p90: f64,
    /// The slowest trip.
    pub(crate) max: f64,
}

/// The lock that Rust threads share in a convoy row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// No lock at all.
    None,
    /// The old-style toy GIL: the holder lets go every this many ticks.
    OldStyle {
        /// Ticks between switches.
        every: u64,
    },
    /// The new-style toy GIL: a waiting thread asks the holder to let go
    /// after this interval.
    NewStyle {
        /// The switch interval.
        interval: Duration,
    },
}

impl Lock {
    /// The old-style toy GIL of the convoy table.
    pub(crate) const OLD: Lock = Lock::OldStyle { every: 100 };
    /// The new-style toy GIL at CPython's default interval.
    pub(crate) const NEW_5MS: Lock = Lock::NewStyle {
        interval: SwitchInterval::PYTHON_DEFAULT.0,
    };
    /// The new-style toy GIL at a shorter interval.
    pub(crate) const NEW_1MS: Lock = Lock::NewStyle {
        interval: Duration::from_millis(1),
    };
    /// The new-style toy GIL at a much shorter interval.
    pub(crate) const NEW_02MS: Lock = Lock::NewStyle {
        interval: Duration::from_micros(200),
    };
    /// The toy rows of the convoy table, in order.
    pub(crate) const ROWS: [Lock; 5] = [
        Lock::None,
        Lock::OLD,
        Lock::NEW_5MS,
        Lock::NEW_1MS,
        Lock::NEW_02MS,
    ];
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lock::None => write!(f, "Rust, no lock"),
            Lock::OldStyle { every } => {
                write!(f, "toy GIL, old style (every {every} ticks)")
            }
            Lock::NewStyle { interval } => {
                // In microseconds first, so that 200 µs prints as 0.2.
                let ms = interval.as_micros() as f64 / 1e3;
                write!(f, "toy GIL, new style, {ms} ms")
            }
        }
    }
}

/// What ran in a row of the convoy table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Convoy {
    /// Rust threads under a toy lock (or none).
    Rust(Lock),
    /// CPython and its real GIL.
    Python {
        /// `Python 3.11.2`, or nothing when there is no Python.
        version: Option<String>,
    },
}

impl fmt::Display for Convoy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Convoy::Rust(lock) => lock.fmt(f),
            Convoy::Python {
                version: Some(version),
            } => write!(f, "{version}, real GIL"),
            Convoy::Python { version: None } => write!(f, "Python"),
        }
    }
}

/// One row of the convoy table.
#[derive(Debug, Clone)]
pub(crate) struct ConvoyRow {
    /// What ran.
    pub(crate) variant: Convoy,
    /// Round trips alone.
    pub(crate) alone: Result<Latency, String>,
    /// Round trips beside a CPU-bound thread.
    pub(crate) busy: Result<Latency, String>,
}

/// Microseconds to create and finish one of each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creation {
    /// A thread: spawn and join (many started, then all joined).
    pub(crate) thread_us: f64,
    /// A process (this binary, doing nothing): spawn and wait.
    pub(crate) process_us: f64,
    /// A tokio task: spawn and await, on a multi-thread runtime.
    pub(crate) task_us: f64,
}

/// Nanoseconds per increment of a count (chapter 4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Increments {
    /// Increments per kind and round.
    pub(crate) count: u64,
    /// A plain `u64` on one thread.
    pub(crate) plain_ns: f64,
    /// `fetch_add` on one thread.
    pub(crate) atomic_ns: f64,
    /// A `Mutex<u64>` locked for each, on one thread.
    pub(crate) mutex_ns: f64,
    /// `fetch_add` on one count from two threads at once.
    pub(crate) shared_ns: f64,
}

/// Chapter 4's count split into a load and a store, run several times.
#[derive(Debug, Clone)]
pub(crate) struct LostUpdates {
    /// Threads counting at once.
    pub(crate) threads: u64,
    /// Increments each thread makes.
    pub(crate) steps: u64,
    /// The updates each run lost.
    pub(crate) lost: Vec<u64>,
}

/// Summing a million numbers on a thread, and in a child process that
/// gets them as text over a pipe (chapter 7's serialisation cost).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    /// Milliseconds on a scoped thread that borrows the numbers.
    pub(crate) thread_ms: f64,
    /// Milliseconds through a child: format, write, parse, sum, answer.
    pub(crate) process_ms: f64,
}

/// Memory per thread and per task, in KiB, from fresh processes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Resident memory each parked thread adds (its stack's touched pages,
    /// its bookkeeping).
    pub(crate) thread_rss_kib: f64,
    /// Kernel memory for each thread's kernel stack (`KernelStack` in
    /// /proc/meminfo; system-wide, so other programs add noise).
    pub(crate) thread_kernel_kib: f64,
    /// Resident memory each pending tokio task adds.
    pub(crate) task_rss_kib: f64,
    /// How many threads were parked.
    pub(crate) threads: usize,
    /// How many tasks were pending.
    pub(crate) tasks: usize,
}

/// What tracing costs the toy GIL: one thread's countdown, untraced (A)
/// against traced (B).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tracing {
    /// Ticks per run.
    pub(crate) count: u64,
    /// Under the new GIL (5 ms), where a lone thread only ticks.
    pub(crate) ticks: Ratio,
    /// Under the old GIL (every 100 ticks), where the traced GIL records
    /// every release and retake.
    pub(crate) switches: Ratio,
    /// Untraced against untraced, old GIL: the noise floor.
    pub(crate) floor: Ratio,
}

/// Everything one `course bench` measured.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    /// Where.
    pub(crate) machine: Machine,
    /// How hard it measured.
    pub(crate) effort: Effort,
    /// Countdown ratios.
    pub(crate) countdown: Countdown,
    /// Python threads calling Rust, or why they were not measured.
    pub(crate) python_calls_rust: Result<PythonCallsRust, String>,
    /// How long the convoy's peer took to answer each request.
    pub(crate) peer_delay: Duration,
    /// Convoy latencies, one row per variant.
    pub(crate) convoy: Vec<ConvoyRow>,
    /// What an increment costs, by kind.
    pub(crate) increments: Increments,
    /// What a split count loses.
    pub(crate) lost_updates: LostUpdates,
    /// Creation costs.
    pub(crate) creation: Creation,
    /// Moving data to a thread and to a process.
    pub(crate) transfer: Transfer,
    /// Memory per thread and task, when the helper processes could tell.
    pub(crate) memory: Option<Memory>,
    /// What tracing the toy GIL costs.
    pub(crate) tracing: Tracing,
}

impl Results {
    /// The convoy row of `variant`, if it was measured.
    pub(crate) fn convoy_row(&self, variant: &Convoy) -> Option<&ConvoyRow> {
        self.convoy.iter().find(|row| row.variant == *variant)
    }

    /// The convoy row of CPython, if there is one.
    pub(crate) fn python_convoy(&self) -> Option<&ConvoyRow> {
        self.convoy
            .iter()
            .find(|row| matches!(row.variant, Convoy::Python { .. }))
    }
}

/// A run with fixed, made-up figures, for the writing half's tests;
/// `python` says whether it found a `python3`.
#[cfg(test)]
pub(crate) fn sample(python: bool) -> Results {
    let ratio = |ratio, a, b| Ratio { ratio, a, b };
    let latency = |p50: f64| Latency {
        p10: p50 * 0.9,
        p50,
        p90: p50 * 2.0,
        max: p50 * 4.0,
    };
    let none = "python3 not found: no such file".to_string();
    let mut convoy: Vec<ConvoyRow> = (Lock::ROWS.iter().enumerate())
        .map(|(i, lock)| ConvoyRow {
            variant: Convoy::Rust(*lock),
            alone: Ok(latency(1.0 + i as f64 * 0.01)),
            busy: Ok(latency(1.5 + i as f64)),
        })
        .collect();
    let version = python.then(|| "Python 3.11.7".to_string());
    convoy.push(ConvoyRow {
        variant: Convoy::Python {
            version: version.clone(),
        },
        alone: if python {
            Ok(latency(1.1))
        } else {
            Err(none.clone())
        },
        busy: if python {
            Ok(latency(6.0))
        } else {
            Err(none.clone())
        },
    });
    let (threads, processes) = (ratio(1.04, 0.5, 0.52), ratio(0.6, 0.5, 0.3));
    Results {
        machine: Machine {
            cores: 4,
            cpu: "Test CPU".into(),
            python: version.ok_or_else(|| none.clone()),
            os: "Linux 6.1".into(),
        },
        effort: Effort::Full,
        countdown: Countdown {
            python: if python {
                Ok((threads, processes))
            } else {
                Err(none)
            },
            python_count: if python { 25_120_900 } else { 0 },
            rust_threads: ratio(0.26, 0.5, 0.13),
            rust_processes: ratio(0.3, 0.5, 0.15),
            rust_count: 463_116_600,
            gil_threads: ratio(1.01, 0.6, 0.61),
            gil_count: 200_000_000,
            per_step: (python.then_some(19.9), 1.08),
        },
        python_calls_rust: if python {
            Ok(PythonCallsRust {
                version: "3.11.7".into(),
                python: ratio(1.03, 0.5, 0.515),
                python_count: 24_000_000,
                holding: ratio(1.0, 0.6, 0.6),
                detached: ratio(0.51, 0.6, 0.306),
                rust_count: 2_400_000_000,
            })
        } else {
            Err("no Python found (python3: no such file)".into())
        },
        peer_delay: Duration::from_millis(1),
        convoy,
        increments: Increments {
            count: 20_000_000,
            plain_ns: 0.3,
            atomic_ns: 5.0,
            mutex_ns: 11.0,
            shared_ns: 20.0,
        },
        lost_updates: LostUpdates {
            threads: 4,
            steps: 100_000,
            lost: vec![150_000, 0, 120_500, 98_000, 201_000],
        },
        creation: Creation {
            thread_us: 46.03,
            process_us: 1205.4,
            task_us: 1.483,
        },
        transfer: Transfer {
            thread_ms: 5.62,
            process_ms: 246.3,
        },
        memory: python.then_some(Memory {
            thread_rss_kib: 12.2,
            thread_kernel_kib: 16.0,
            task_rss_kib: 0.713,
            threads: 1000,
            tasks: 100_000,
        }),
        tracing: Tracing {
            count: 50_000_000,
            ticks: ratio(1.01, 0.2, 0.202),
            switches: ratio(1.3, 0.3, 0.39),
            floor: ratio(1.0, 0.3, 0.3),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convoy_variants_keep_their_labels() {
        let labels: Vec<String> =
            Lock::ROWS.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            [
                "Rust, no lock",
                "toy GIL, old style (every 100 ticks)",
                "toy GIL, new style, 5 ms",
                "toy GIL, new style, 1 ms",
                "toy GIL, new style, 0.2 ms",
            ]
        );
        let python = Convoy::Python {
            version: Some("Python 3.11.2".into()),
        };
        assert_eq!(python.to_string(), "Python 3.11.2, real GIL");
        assert_eq!(Convoy::Python { version: None }.to_string(), "Python");
    }

    #[test]
    fn each_effort_names_its_own_flag() {
        assert_eq!(Effort::Full.flag(), "");
        assert_eq!(Effort::Quick.flag(), " --quick");
        assert_eq!(Effort::Smoke.flag(), " --smoke");
    }
}
