//! A waiter whose interval runs out just as the holder lets go: it finds
//! the GIL free once it has the state, takes it, and nobody has asked the
//! new holder to drop it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use exercises::ch06_fairness::NewGil;

use course::grader::task;

use super::super::{futex_of, start};

/// The waiter's interval: it runs out while the waiter is frozen, or soon
/// after it is thawed, and the trial waits for that (no upper bound).
const INTERVAL: Duration = Duration::from_millis(300);

/// Attempts of [`a_waiter_whose_interval_ends_at_the_release_is_not_asked`]:
/// one is void only if the waiter's interval ran out in the instant between
/// the trial's look at it and its freezing.
const ATTEMPTS: usize = 3;

/// Watches thread `tid` until it sleeps on futex `address` (then `true`),
/// or `done` is set, or it has used [`task::BUSY_TICKS`] of CPU time.
fn until_on_futex(tid: task::Tid, address: &str, done: &AtomicBool) -> bool {
    let mut on_it = false;
    task::watch_until(tid, || {
        on_it = futex_of(tid).as_deref() == Some(address);
        on_it || done.load(Ordering::SeqCst)
    });
    on_it
}

/// A sink for `{:?}` that finds the moment the GIL's `Debug` holds the
/// GIL's state (std's `Mutex` does around its data, as it writes it), and
/// then lines up, for the state, first the holder, which drops its guard,
/// and then the frozen waiter, thawed: its interval runs out, and it waits
/// for the state to look at it. A mutex hands itself to its sleepers in the
/// order they came (Linux wakes a futex's waiters first in, first out), so
/// once the state is free the holder lets go first, and the waiter then
/// finds its interval over, the count of switches unchanged, and the GIL
/// free.
struct Release<'scope, 'env> {
    scope: &'scope thread::Scope<'scope, 'env>,
    gil: &'env NewGil,
    holder: task::Me,
    holder_done: &'env AtomicBool,
    let_go: Option<mpsc::Sender<()>>,
    waiter: task::Me,
    waiter_done: &'env AtomicBool,
    done: bool,
    forced: bool,
}

impl fmt::Write for Release<'_, '_> {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        let gil = self.gil;
        let (asker, me) = start(self.scope, move || gil.waiting());
        let mut state = None;
        task::watch_until(me.tid, || {
            state = futex_of(me.tid);
            state.is_some()
                || asker.is_finished()
                || matches!(
                    task::wait(me.tid),
                    Some((task::Wait::UntilADeadline, _))
                )
        });
        let Some(state) = state else {
            // Free at this write: try the next. (Or a state that is not
            // waited for by sleeping: no forcing with this GIL.)
            if !asker.is_finished() {
                self.done = true;
                task::thaw();
            }
            return Ok(());
        };
        self.done = true;
        drop(self.let_go.take());
        if until_on_futex(self.holder.tid, &state, self.holder_done) {
            task::thaw();
            self.forced =
                until_on_futex(self.waiter.tid, &state, self.waiter_done);
        } else {
            task::thaw();
        }
        Ok(())
    }
}

/// One attempt: a waiter sleeps in its first interval, and is frozen there;
/// the GIL's state is then held (see [`Release`]) while the holder drops its
/// guard and the thawed waiter's interval runs out. Returns whether that
/// order was forced, and whether the waiter found a drop request once it
/// had taken the GIL.
fn attempt() -> (bool, bool) {
    let gil = NewGil::new(INTERVAL);
    let (holder_done, waiter_done) =
        (AtomicBool::new(false), AtomicBool::new(false));
    thread::scope(|s| {
        let (gil, holder_done, waiter_done) =
            (&gil, &holder_done, &waiter_done);
        let (let_go, go) = mpsc::channel::<()>();
        let (took, taken) = mpsc::channel();
        let (_, holder) = start(s, move || {
            let held = gil.acquire();
            took.send(()).unwrap();
            let _ = go.recv();
            drop(held);
            holder_done.store(true, Ordering::SeqCst);
        });
        taken.recv().unwrap();
        let (asked, waiter) = start(s, move || {
            let held = gil.acquire();
            let asked = gil.drop_requested();
            drop(held);
            waiter_done.store(true, Ordering::SeqCst);
            asked
        });
        // Asleep in its interval's wait, which holds no lock: frozen there.
        let waits = task::watch_until(waiter.tid, || {
            matches!(
                task::wait(waiter.tid),
                Some((task::Wait::UntilADeadline, _))
            ) || waiter_done.load(Ordering::SeqCst)
        });
        let forced = if waits && !waiter_done.load(Ordering::SeqCst) {
            task::freeze(waiter);
            let mut release = Release {
                scope: s,
                gil,
                holder,
                holder_done,
                let_go: Some(let_go),
                waiter,
                waiter_done,
                done: false,
                forced: false,
            };
            write!(release, "{gil:?}").expect("the probe never fails");
            if !release.done {
                // The state was never found busy: nothing was thawed yet.
                task::thaw();
            }
            release.forced
        } else {
            drop(let_go);
            false
        };
        (forced, asked.join().unwrap())
    })
}

/// A waiter's interval runs out just as the holder drops its guard: the
/// waiter finds, once it has the state, no switch and a free GIL. It takes
/// the GIL, and no request may then be pending: a waiter asks only while
/// the GIL is held, or taking the GIL ends the request it set. One that
/// asks without looking (the holder is gone) and counts on the holder to
/// reset the request as it lets go keeps a request nobody can honour: its
/// first `check` hands the GIL over to nobody, and waits for a switch that
/// never comes.
pub(super) fn a_waiter_whose_interval_ends_at_the_release_is_not_asked() {
    for _ in 0..ATTEMPTS {
        let (forced, asked) = attempt();
        assert!(
            !asked,
            "a waiter's interval ran out just as the holder dropped its \
             guard; the waiter then found the GIL free and took it, and \
             drop_requested() was true: its first check() would hand the \
             GIL over to nobody. Ask only while the GIL is held, and let \
             taking the GIL end the request (not only the holder as it \
             lets go)"
        );
        if forced {
            return;
        }
    }
}
