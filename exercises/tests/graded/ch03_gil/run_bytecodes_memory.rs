//! `run_bytecodes` keeps no memory that grows with the bytecodes or the
//! turns: no plan of the turns, no turn's bytecodes gathered, and no stack
//! frame per turn.

use std::panic::{self, AssertUnwindSafe};
use std::thread;

use course::gil::Gil;
use course::grader::alloc;
use exercises::ch03_gil::run_bytecodes;

use super::ThePythonCodeRaised;

/// How many bytecodes `no_plan_of_the_turns` runs, with `check_interval`
/// 1: a plan of that many turns (a `Vec` of ranges, say) takes 16 MiB.
const MANY_TURNS: u64 = 1 << 20;

/// The most bytes `run_bytecodes` may have allocated at once for a call of
/// [`MANY_TURNS`] bytecodes that stops at the first: nothing it keeps may
/// grow with the number of bytecodes or turns.
const LITTLE_MEMORY: isize = 64 << 10;

/// `MANY_TURNS` bytecodes with `check_interval` 1, the first of which
/// panics: `run_bytecodes` takes the GIL and runs bytecode 0 without first
/// planning every turn in memory (with `u64::MAX` bytecodes, a plan would
/// never be done, and bytecode 0 never run). Then the same with
/// `check_interval` `u64::MAX`, a single turn of them all: nor does it
/// gather a turn's bytecodes before running them (a `Vec` of them, as
/// Python's `itertools.batched` hands out, takes 8 MiB here). Then
/// [`DEEP_TURNS`] turns that all run: the stack does not grow with them.
pub(super) fn no_plan_of_the_turns() {
    no_plan_of_the_turns_with(1);
    no_plan_of_the_turns_with(u64::MAX);
    no_stack_frame_per_turn();
}

fn no_plan_of_the_turns_with(check_interval: u64) {
    let gil = Gil::new();
    let (ran, peak) = alloc::peak_during(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            run_bytecodes(&gil, MANY_TURNS, check_interval, |_| {
                panic::panic_any(ThePythonCodeRaised)
            });
        }))
    });
    assert!(
        ran.is_err_and(|payload| payload.is::<ThePythonCodeRaised>()),
        "bytecode 0 of {MANY_TURNS} panicked, and run_bytecodes did not pass \
         its panic on to the caller"
    );
    assert!(
        peak <= LITTLE_MEMORY,
        "run_bytecodes of {MANY_TURNS} bytecodes with check_interval \
         {check_interval}, the first of which panicked, had {peak} bytes \
         allocated at once (more than {LITTLE_MEMORY}): it planned its turns \
         in memory (a Vec of ranges, say, or of a turn's bytecodes, as \
         itertools.batched hands them out) before running bytecode 0, \
         memory that grows with the number of bytecodes; with u64::MAX of \
         them, it never gets to run one. Count the bytecodes as they run \
         instead"
    );
}

/// How many turns `no_stack_frame_per_turn` runs, with `check_interval` 1:
/// a stack frame per turn, of 16 bytes at the very least, takes 320 KiB.
const DEEP_TURNS: u64 = 20_000;

/// How much deeper the stack may be at one bytecode than at bytecode 0:
/// room for a bytecode's call to be made from a frame or two more, none
/// for a frame per turn.
const LITTLE_STACK: usize = 64 << 10;

/// The stack [`no_stack_frame_per_turn`] runs on: room for a frame per
/// turn, so that a `run_bytecodes` that recurses is caught rather than
/// ending the process.
const ROOMY_STACK: usize = 64 << 20;

/// [`DEEP_TURNS`] bytecodes with `check_interval` 1, on a thread of the
/// trial's own: each bytecode notes how deep the stack is, and none may be
/// much deeper than bytecode 0. A `run_bytecodes` that runs a turn and then
/// calls itself for the rest (Rust promises no tail calls) keeps a stack
/// frame per turn, memory that grows with the turns, and a long run
/// overflows its thread's stack, which ends the process.
fn no_stack_frame_per_turn() {
    let gil = Gil::new();
    let deepest = thread::Builder::new()
        .stack_size(ROOMY_STACK)
        .spawn(move || {
            let (mut top, mut deepest) = (0, 0);
            run_bytecodes(&gil, DEEP_TURNS, 1, |bytecode| {
                let here = 0_u8;
                let at =
                    std::ptr::from_ref(std::hint::black_box(&here)) as usize;
                if bytecode == 0 {
                    top = at;
                }
                // The stack grows down: a deeper frame is at a lower address.
                deepest = deepest.max(top.saturating_sub(at));
            });
            deepest
        })
        .expect("the trial could not start a thread")
        .join()
        .expect("run_bytecodes panicked with no bytecode panicking");
    assert!(
        deepest <= LITTLE_STACK,
        "run_bytecodes of {DEEP_TURNS} bytecodes with check_interval 1 ran \
         its last bytecodes on a stack {deepest} bytes deeper than its first: \
         it keeps a stack frame per turn (a function that runs a turn and \
         then calls itself for the rest?), memory that grows with the turns; \
         a long run overflows the thread's stack, which ends the process \
         (Rust does not promise to turn such calls into a loop). Run the \
         turns in a loop"
    );
}
