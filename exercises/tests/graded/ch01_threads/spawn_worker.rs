//! `spawn_worker`: the thread gets its name and the stack it asks for, and
//! a stack too big to create comes back as the operating system's error.

use std::hint::black_box;
use std::panic;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags, protect};
use course::grader::task::{self, cpu_ticks};
use exercises::ch01_threads::spawn_worker;

use super::held_visit::settle;
use super::{STACK_SLACK, count_panics_where, stack_size_of_this_thread};

/// A short name, one longer than the 15 bytes Linux keeps, one with
/// letters outside ASCII, one with spaces around it, one with a tab and a
/// newline in it (which the operating system keeps too), one that ends in
/// a line ending (`"\r\n"`) and an empty one:
/// inside the job,
/// `thread::current().name()` must still give the whole name, as it was
/// given, and the operating system's own name of the thread (`/proc`'s
/// `comm`, what `top` and `ps` show) its first 15 bytes.
pub(super) fn names_the_thread() {
    // Every name twice: a second worker of the same name is named the same.
    for name in [
        "pixel-worker-7",
        "pixel-worker-for-the-second-monitor-7",
        // Longer than the 63 or 64 bytes some systems keep: still whole.
        "pixel-worker-for-the-second-monitor-of-the-third-desk-on-the-\
         fourth-floor-of-the-west-wing-7",
        "café-wörker",
        "  spaced out ",
        "\tcontrol\nchars",
        // A line ending at its end is part of the name too.
        "line end\r\n",
        "",
    ]
    .into_iter()
    .flat_map(|name| [name, name])
    {
        let handle = spawn_worker(name, 1 << 20, || {
            let comm = std::fs::read_to_string("/proc/thread-self/comm")
                .expect("cannot read /proc/thread-self/comm");
            (thread::current().name().map(str::to_owned), comm)
        })
        .expect("spawn_worker failed");
        let (seen_inside, comm) = handle.join().unwrap();
        assert_eq!(
            seen_inside.as_deref(),
            Some(name),
            "inside the job, thread::current().name() must be the name given \
             to spawn_worker, whole and unchanged, also when it is empty, \
             not ASCII, has spaces around it or a tab and a newline in it \
             or a line ending at its end (kept as they are, not replaced nor \
             trimmed), and also for a second \
             worker of the same name (see thread::Builder::name, which \
             keeps it whole even where the OS shows only its first 15 \
             bytes, and does not make names unique)"
        );
        let shown = &name[..name.len().min(15)];
        // The file ends in one newline of its own, after the name.
        assert_eq!(
            comm.strip_suffix('\n').unwrap_or(&comm),
            shown,
            "the operating system's name of the thread (/proc's comm, what \
             top and ps show) should be the name's first 15 bytes"
        );
    }
}

/// Recursion that needs about 16 MiB of stack: far more than the 2 MiB a
/// spawned thread gets by default, far less than the 64 MiB requested.
/// Then the size of the stack itself, for 64 MiB, for 48 MiB (not a power
/// of two), for 42 MiB and 4 KiB (no whole number of MiB, nor of 2 MiB)
/// and for 512 KiB: the C
/// library may hand a thread a stack it kept from an ended thread, up to
/// four times the size asked for (glibc does), but never more, and never
/// less than asked for (give or take a few pages of its own).
pub(super) fn gives_the_requested_stack() {
    fn descend(depth: u32) -> u64 {
        let frame = black_box([depth as u8; 16 * 1024]);
        if depth == 0 {
            return u64::from(frame[0]);
        }
        u64::from(frame[100]) + descend(black_box(depth - 1))
    }
    let handle = spawn_worker("deep-recursion", 64 << 20, || descend(1000))
        .expect("spawn_worker failed");
    assert!(handle.join().is_ok());
    for asked in [64 << 20, 48 << 20, (42 << 20) + (4 << 10), 512 << 10] {
        let handle =
            spawn_worker("stack-size", asked, stack_size_of_this_thread)
                .expect("spawn_worker failed");
        let size = handle.join().unwrap();
        // glibc keeps the stacks of ended threads for reuse, up to 40 MiB in
        // all, and may hand a kept one over if it is at most four times as
        // large; a stack over 40 MiB is never kept, so that one is new, of
        // the size asked for (give or take what the C library keeps).
        let most = if asked > 40 << 20 {
            asked + STACK_SLACK
        } else {
            4 * asked + STACK_SLACK
        };
        assert!(
            size + STACK_SLACK >= asked && size <= most,
            "spawn_worker was asked for a stack of {asked} bytes, and the \
             thread got {size}: give the thread the size it asks for \
             (thread::Builder::stack_size(stack_bytes)), no fixed size, no \
             minimum and no rounding up of your own"
        );
    }
    for asked in [0, 4 << 10] {
        gives_the_smallest_stack_for(asked);
    }
    gives_every_byte_of_a_size_between_pages();
    two_calls_at_once_get_their_own_stacks();
}

/// Two `spawn_worker` calls at once, one for 64 MiB and one for 48 MiB
/// (both more than the C library keeps, so each stack is new): their names
/// lie on two pages of the trial's own that it makes unreadable, so each
/// call is held at its first read of its name (by a [`FaultHold`]) until both are held, or one has ended or sleeps;
/// then the first call goes on and ends, and only then the second. Each
/// thread must get its own call's size: a process-wide setting that each
/// call sets, uses and puts back (as Python's `threading.stack_size(n)`
/// is) hands the first thread the second call's size. Holding a call is only a delay, so a correct
/// `spawn_worker` passes whatever is held.
fn two_calls_at_once_get_their_own_stacks() {
    let mapped = Pages::new(2);
    let page = mapped.bytes() / 2;
    let start = mapped.start();
    let names: [&'static str; 2] = ["stack-sixty-four", "stack-forty-eight"];
    let offsets = [0, page];
    for (name, offset) in names.iter().zip(offsets) {
        // SAFETY: the page is writable, the trial's alone, and the name
        // fits at this offset.
        unsafe {
            ptr::copy_nonoverlapping(
                name.as_ptr(),
                (start + offset) as *mut u8,
                name.len(),
            );
        }
    }
    // SAFETY: the page stays mapped, and these bytes unchanged, until the
    // names are no longer used (after the scope below), and they are the
    // UTF-8 bytes of `names`.
    let on_page: [&str; 2] = [0, 1].map(|i| unsafe {
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(
            (start + offsets[i]) as *const u8,
            names[i].len(),
        ))
    });
    let hold = FaultHold::new(start, start + 2 * page);
    hold.protect(ProtFlags::PROT_NONE);
    let asked = [64 << 20, 48 << 20];
    let sizes = thread::scope(|s| {
        let calls: Vec<_> = (0..2)
            .map(|i| {
                let (tell, told) = mpsc::channel();
                let done = Arc::new(AtomicBool::new(false));
                let finished = Arc::clone(&done);
                let name = on_page[i];
                let call = s.spawn(move || {
                    tell.send(task::me().tid).unwrap();
                    let worker =
                        spawn_worker(name, asked[i], stack_size_of_this_thread);
                    finished.store(true, Ordering::SeqCst);
                    worker
                });
                let tid = told.recv().expect("the call ended at once");
                let since = cpu_ticks(tid);
                settle(tid, since, || {
                    hold.held() > i || done.load(Ordering::SeqCst)
                });
                call
            })
            .collect();
        let mut calls = calls.into_iter().map(|call| {
            let worker = call
                .join()
                .unwrap_or_else(|p| panic::resume_unwind(p))
                .expect("spawn_worker failed");
            worker.join().unwrap()
        });
        // The first call goes on, and ends, while the second is still held.
        let writable = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        protect(start, start + page, writable);
        hold.let_go_below(start + page);
        // A panic of the first call is passed on once the second goes on.
        let first = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            calls.next().unwrap()
        }));
        protect(start + page, start + 2 * page, writable);
        hold.let_go_all();
        let first = first.unwrap_or_else(|p| panic::resume_unwind(p));
        [first, calls.next().unwrap()]
    });
    // The handler is put back before the pages, and the names on them,
    // are unmapped.
    drop(hold);
    drop(mapped);
    for (size, asked) in sizes.into_iter().zip(asked) {
        assert!(
            size + STACK_SLACK >= asked && size <= asked + STACK_SLACK,
            "two spawn_worker calls ran at once, for stacks of 64 MiB and \
             48 MiB, and the thread asked for {asked} bytes got {size}: \
             each call gives its own thread the size it was asked for \
             (thread::Builder::stack_size), with no setting shared by all \
             calls that another call can change meanwhile (Python's \
             threading.stack_size is process-wide; Rust's is per thread)"
        );
    }
}

/// A stack of 0 bytes, or of 4 KiB, is less than the platform allows: the
/// standard library raises it to the platform's minimum (some 16 KiB on
/// Linux, a few times that with what the C library keeps for itself) and
/// starts the thread. The thread gets that small stack, far less than the
/// default 2 MiB (0 does not mean "the default", as it does in Python's
/// `threading.stack_size`), and no error of `spawn_worker`'s own. It gets
/// exactly the stack a thread that `thread::Builder` starts with the same
/// size gets, no floor of `spawn_worker`'s own (64 KiB, say): that thread
/// starts and ends just before, so the C library keeps its stack and hands
/// it over again to a request of the same size (it prefers an exact fit),
/// while a request of another size gets another stack. A trial runs in a
/// process of its own, so no other thread takes the kept stack meanwhile.
fn gives_the_smallest_stack_for(asked: usize) {
    let least = thread::Builder::new()
        .name("tiny-stack".to_string())
        .stack_size(asked)
        .spawn(stack_size_of_this_thread)
        .expect("thread::Builder::spawn refused a tiny stack")
        .join()
        .unwrap();
    let handle = spawn_worker("tiny-stack", asked, stack_size_of_this_thread)
        .unwrap_or_else(|error| {
            panic!(
                "spawn_worker was asked for a stack of {asked} bytes and \
                 returned {error:?}, but thread::Builder::spawn creates that \
                 thread (it raises the size to the platform's minimum): pass \
                 stack_bytes on as it is, and refuse nothing of your own"
            )
        });
    let size = handle.join().unwrap();
    assert!(
        size < 1 << 20,
        "spawn_worker was asked for a stack of {asked} bytes, and the thread \
         got {size}: the smallest stack the platform allows is far less \
         than 1 MiB; 0 is a size like any other, not \"the default\" \
         (pass stack_bytes to thread::Builder::stack_size as it is)"
    );
    assert_eq!(
        size, least,
        "spawn_worker was asked for a stack of {asked} bytes, and the thread \
         got {size}, but thread::Builder::stack_size({asked}) gives a thread \
         {least} bytes, the platform's minimum: pass stack_bytes on as it \
         is, with no minimum of your own (the standard library already \
         raises it to what the platform needs)"
    );
}

/// A stack of 42 MiB and 10,000 bytes, no whole number of pages: the
/// thread gets at least what a thread that `thread::Builder` starts with the
/// same size gets (glibc keeps no stack over 40 MiB for reuse, so both are
/// new), not a size rounded down to whole pages (4 KiB less, or nearly),
/// which is less than asked.
fn gives_every_byte_of_a_size_between_pages() {
    let asked = (42 << 20) + 10_000;
    let least = thread::Builder::new()
        .name("odd-stack".to_string())
        .stack_size(asked)
        .spawn(stack_size_of_this_thread)
        .expect("thread::Builder::spawn refused a stack of 42 MiB")
        .join()
        .unwrap();
    let size = spawn_worker("odd-stack", asked, stack_size_of_this_thread)
        .expect("spawn_worker failed")
        .join()
        .unwrap();
    assert!(
        size >= least && size <= asked + STACK_SLACK,
        "spawn_worker was asked for a stack of {asked} bytes (no whole \
         number of pages), and the thread got {size}, but \
         thread::Builder::stack_size({asked}) gives a thread {least}: the \
         job gets at least the size it asked for, never less (no rounding \
         down to whole pages: the standard library rounds a size the \
         platform does not take up, itself)"
    );
}

/// Runs `body` and counts the panics raised on this thread meanwhile, even
/// ones caught before they reach `body`'s caller.
fn count_panics_on_this_thread<R>(body: impl FnOnce() -> R) -> (R, usize) {
    let this_thread = thread::current().id();
    count_panics_where(move |_| thread::current().id() == this_thread, body)
}

/// The payload of a panicking worker's job: a type of the trial's own, so
/// that a panic `spawn_worker` raises itself cannot pass for the job's.
#[derive(Debug)]
struct TheWorkersOwnPanic;

/// The handle joins to the job's result, or to the job's own panic. 256 TiB
/// of stack cannot be mapped, nor `usize::MAX` bytes: the operating
/// system's error must come back as `Err`, with no panic on the way, not
/// even a caught one.
pub(super) fn reports_a_stack_too_big_to_create() {
    let handle = spawn_worker("small", 1 << 20, || 7).expect("a 1 MiB stack");
    assert_eq!(handle.join().unwrap(), 7, "the job's result");
    let handle = spawn_worker("failing", 1 << 20, || -> u32 {
        panic::panic_any(TheWorkersOwnPanic)
    })
    .expect("a 1 MiB stack");
    match handle.join() {
        Ok(result) => panic!("the job panicked, yet join returned {result}"),
        Err(payload) => assert!(
            payload.is::<TheWorkersOwnPanic>(),
            "the job panicked, and joining its handle gave a panic, but not \
             the job's own: a panic of spawn_worker's own (a catch_unwind \
             and a new panic! with a message) hides the job's payload; \
             start the job itself on the thread"
        ),
    }
    for asked in [1 << 48, usize::MAX] {
        refuses_a_stack_of(asked);
    }
    starts_as_many_workers_as_the_system_allows();
}

/// 1100 workers alive at once, each with a small stack and asleep until the
/// trial lets it go: the operating system creates them all, so
/// `spawn_worker` starts them all (no cap of its own on live workers, not
/// even a generous one, and no error of its own).
fn starts_as_many_workers_as_the_system_allows() {
    const WORKERS: usize = 1100;
    let mut alive = Vec::with_capacity(WORKERS);
    let mut refused = None;
    for index in 0..WORKERS {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        match spawn_worker(&format!("alive-{index}"), 64 << 10, move || {
            let _ = wait.recv();
        }) {
            Ok(handle) => alive.push((release, handle)),
            Err(error) => {
                refused = Some((index, error));
                break;
            }
        }
    }
    for (release, handle) in alive {
        drop(release);
        handle.join().expect("a worker that only waited panicked");
    }
    if let Some((index, error)) = refused {
        panic!(
            "with {index} workers alive, spawn_worker refused another with \
             {error:?}, although the operating system creates it \
             (thread::Builder::spawn does): fail only when the operating \
             system cannot create the thread, with no limit of your own"
        );
    }
}

/// `spawn_worker` asked for a stack of `asked` bytes, too many to map, must
/// return the operating system's error, as `thread::Builder::spawn` does.
fn refuses_a_stack_of(asked: usize) {
    let (outcome, panics) = count_panics_on_this_thread(|| {
        panic::catch_unwind(|| spawn_worker("huge", asked, || ()))
    });
    let error = match outcome {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!(
            "spawn_worker was asked for a stack of {asked} bytes, too many \
             to map, and started a thread anyway: did it change the size \
             (an addition or a rounding that wrapped around)? Pass \
             stack_bytes on as it is"
        ),
        Err(_) => panic!(
            "spawn_worker was asked for a stack of {asked} bytes and \
             panicked; it must return the io::Error instead \
             (thread::Builder::spawn returns a Result, and an arithmetic \
             overflow on the size is a panic of spawn_worker's own)"
        ),
    };
    assert_eq!(
        panics, 0,
        "spawn_worker returned an error, but it panicked on the way and \
         caught its own panic: the panic hook ran, and under panic = \
         \"abort\" the process would have died (thread::Builder::spawn \
         returns a Result; there is nothing to unwrap)"
    );
    assert!(
        error.raw_os_error().is_some(),
        "spawn_worker returned {error:?} for a stack of {asked} bytes, not \
         the operating system's error: \
         return the io::Error that thread::Builder::spawn gives, as it is"
    );
    // The error the operating system gives for the same request.
    let refused = thread::Builder::new()
        .name("huge".to_string())
        .stack_size(asked)
        .spawn(|| ())
        .expect_err("a thread with so large a stack cannot exist");
    assert_eq!(
        error.raw_os_error(),
        refused.raw_os_error(),
        "spawn_worker returned {error:?}, but creating that thread fails \
         with {refused:?}: return the io::Error that thread::Builder::spawn \
         gives, as it is (errno, io::Error::last_os_error, is not how \
         pthread_create reports its error, and may be left over from \
         another call)"
    );
}
