//! Writers stopped in the middle of an update: the trial keeps all its
//! threads on one CPU, so that while a reader runs, every writer is frozen
//! wherever the scheduler last interrupted it, many of them halfway
//! through `record`. A `Stats` whose writers do not keep each other out
//! (a sequence counter without a writers' lock, two atomics) then shows
//! the readers a count and a total from different moments, in nearly
//! every stretch a reader runs; a lock around both numbers never does.

use std::io;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use exercises::ch04_refcount::Stats;

/// Linux's `cpu_set_t`: one bit per CPU, 1024 of them.
type CpuSet = [u64; 16];

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn sched_getaffinity(pid: i32, size: usize, mask: *mut CpuSet) -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const CpuSet) -> i32;
}

/// Keeps this thread, and every thread it starts from now on, on one of
/// the CPUs it may run on. The trial runs in a process of its own, so no
/// other trial is slowed down.
///
/// # Panics
///
/// If the kernel refuses.
fn stay_on_one_cpu() {
    let mut allowed: CpuSet = [0; 16];
    let size = size_of::<CpuSet>();
    // SAFETY: `allowed` is a writable set of `size` bytes; pid 0 is this
    // thread.
    let got = unsafe { sched_getaffinity(0, size, &mut allowed) };
    assert!(
        got == 0,
        "sched_getaffinity: {}",
        io::Error::last_os_error()
    );
    let cpu = (0..1024)
        .find(|&cpu| allowed[cpu / 64] >> (cpu % 64) & 1 == 1)
        .expect("this thread may run on no CPU");
    let mut one: CpuSet = [0; 16];
    one[cpu / 64] = 1 << (cpu % 64);
    // SAFETY: `one` is a set of `size` bytes holding an allowed CPU.
    let set = unsafe { sched_setaffinity(0, size, &one) };
    assert!(
        set == 0,
        "sched_setaffinity: {}",
        io::Error::last_os_error()
    );
}

/// 64 writers record requests of 1 ms each, so every consistent snapshot
/// has total == count. Once every writer has recorded (so each is
/// somewhere in its loop), readers take snapshots in stretches, and sleep
/// between stretches: the writers run meanwhile, and the readers' waking
/// interrupts them again, each at a new place.
pub fn snapshots_while_writers_are_interrupted() {
    const WRITERS: usize = 64;
    const READERS: usize = 2;
    const STRETCHES: usize = 16;
    const SNAPSHOTS: usize = 1_000;
    // First a reader stopped between its last look and its sleep, in
    // copies of this process while it has no thread but its own; then one
    // writer, frozen by a signal wherever it is.
    super::wakeup::a_reader_stopped_before_its_wait_is_woken();
    super::freeze::snapshots_while_a_writer_is_frozen();
    super::freeze::sleeping_readers_are_all_woken();
    stay_on_one_cpu();
    let stats = Stats::new();
    let start = Barrier::new(WRITERS + READERS);
    let recorded = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let torn = AtomicUsize::new(0);
    let example = std::sync::Mutex::new(None);
    thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| {
                start.wait();
                stats.record(1);
                recorded.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    stats.record(1);
                }
            });
        }
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    // A pause, not a deadline: until every writer ran.
                    while recorded.load(Ordering::Relaxed) < WRITERS {
                        thread::sleep(Duration::from_millis(1));
                    }
                    for _ in 0..STRETCHES {
                        for _ in 0..SNAPSHOTS {
                            let (count, total) = stats.snapshot();
                            if count != total {
                                torn.fetch_add(1, Ordering::Relaxed);
                                *example.lock().unwrap() = Some((count, total));
                            }
                        }
                        // The writers run, and are interrupted again.
                        thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for reader in readers {
            if let Err(payload) = reader.join() {
                // Stop the writers, then pass the reader's panic on.
                stop.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(payload);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let torn = torn.load(Ordering::Relaxed);
    let example = example.into_inner().unwrap();
    assert_eq!(
        torn, 0,
        "{torn} snapshots had a count and a total from different moments \
         (for example {example:?}, while 64 writers were interrupted \
         halfway through record): writers must keep each other out, not \
         only readers; guard both numbers with one lock"
    );
    let (count, total) = stats.snapshot();
    assert_eq!(count, total, "no update lost");
}
