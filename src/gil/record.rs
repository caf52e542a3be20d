//! The toy GIL's opt-in recorder: who held the GIL when, who waited for
//! it, who asked for it, as a [`Timeline`]. It lives in the GIL's state,
//! so every event is recorded under the state lock that the GIL already
//! holds at that moment: the recording is exact, not sampled. An untraced
//! GIL checks one `Option` on its slow paths (taking and releasing) and
//! nothing in [`super::GilGuard::tick`].

use std::thread::ThreadId;
use std::time::Instant;

use crate::trace::{Activity, Mark, Moment, Span, Timeline};

/// What a traced GIL has seen so far.
#[derive(Debug)]
pub(super) struct Recorder {
    /// Time zero of the recording: when the GIL was traced.
    start: Instant,
    /// Each lane's name, top to bottom.
    names: Vec<String>,
    /// Which thread draws on which lane.
    threads: Vec<(ThreadId, usize)>,
    /// Per lane: since when it has held the GIL, if it does.
    running: Vec<Option<u64>>,
    /// Per lane: since when it has been blocked waiting for the GIL, if
    /// it is.
    waiting: Vec<Option<u64>>,
    /// Per lane: how often it woke up to find the GIL released and taken
    /// again by another thread (a lost race).
    lost: Vec<u64>,
    /// The finished spans.
    spans: Vec<Span>,
    /// The marks.
    marks: Vec<Mark>,
}

impl Recorder {
    /// A recording that starts now.
    pub(super) fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            names: vec![],
            threads: vec![],
            running: vec![],
            waiting: vec![],
            lost: vec![],
            spans: vec![],
            marks: vec![],
        }
    }

    /// Nanoseconds since the recording started.
    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Makes sure that lane `lane` exists.
    fn grow(&mut self, lane: usize) {
        while self.names.len() <= lane {
            self.names.push(format!("thread {}", self.names.len() + 1));
            self.running.push(None);
            self.waiting.push(None);
            self.lost.push(0);
        }
    }

    /// Puts `thread` on lane `lane`, called `name`.
    pub(super) fn name(&mut self, thread: ThreadId, lane: usize, name: &str) {
        self.grow(lane);
        self.names[lane] = name.to_string();
        self.threads.retain(|(t, _)| *t != thread);
        self.threads.push((thread, lane));
    }

    /// The lane of `thread`: if it has none, the first lane that no
    /// thread has taken, or a new one below the others.
    fn lane(&mut self, thread: ThreadId) -> usize {
        if let Some((_, lane)) = self.threads.iter().find(|(t, _)| *t == thread)
        {
            return *lane;
        }
        let taken = |lane: usize| self.threads.iter().any(|(_, l)| *l == lane);
        let lane = (0..self.names.len())
            .find(|lane| !taken(*lane))
            .unwrap_or(self.names.len());
        self.grow(lane);
        self.threads.push((thread, lane));
        lane
    }

    /// `thread` is about to block, waiting for the GIL (a second call
    /// before it gets the GIL changes nothing).
    pub(super) fn blocked(&mut self, thread: ThreadId) {
        let at = self.now();
        let lane = self.lane(thread);
        self.waiting[lane].get_or_insert(at);
    }

    /// `thread` took the GIL after `last` held it.
    pub(super) fn acquired(
        &mut self,
        thread: ThreadId,
        last: Option<ThreadId>,
    ) {
        let at = self.now();
        let lane = self.lane(thread);
        if let Some(start) = self.waiting[lane].take() {
            self.spans.push(Span {
                lane,
                start,
                end: at,
                activity: Activity::Waiting,
            });
        }
        if last.is_some_and(|last| last != thread) {
            self.marks.push(Mark {
                lane,
                at,
                moment: Moment::Handover,
            });
        }
        self.running[lane] = Some(at);
    }

    /// `thread` released the GIL.
    pub(super) fn released(&mut self, thread: ThreadId) {
        let at = self.now();
        let lane = self.lane(thread);
        if let Some(start) = self.running[lane].take() {
            self.spans.push(Span {
                lane,
                start,
                end: at,
                activity: Activity::Running,
            });
        }
    }

    /// `thread` asked the holder to drop the GIL.
    pub(super) fn requested(&mut self, thread: ThreadId) {
        let at = self.now();
        let lane = self.lane(thread);
        self.marks.push(Mark {
            lane,
            at,
            moment: Moment::Request,
        });
    }

    /// `thread` woke up to a released GIL that another thread had already
    /// taken again.
    pub(super) fn lost_race(&mut self, thread: ThreadId) {
        let lane = self.lane(thread);
        self.lost[lane] += 1;
    }

    /// Per lane, the races lost so far.
    pub(super) fn lost(&self) -> Vec<u64> {
        self.lost.clone()
    }

    /// The recording so far, as a timeline titled `title` with no
    /// summary; a lane still holding the GIL, or still blocked, has its
    /// span closed now.
    pub(super) fn timeline(&self, title: &str) -> Timeline {
        let length = self.now();
        let mut spans = self.spans.clone();
        let open = [
            (&self.running, Activity::Running),
            (&self.waiting, Activity::Waiting),
        ];
        for (since, activity) in open {
            for (lane, start) in since.iter().enumerate() {
                if let Some(start) = *start {
                    spans.push(Span {
                        lane,
                        start,
                        end: length,
                        activity,
                    });
                }
            }
        }
        Timeline {
            title: title.to_string(),
            lanes: self.names.clone(),
            length,
            spans,
            marks: self.marks.clone(),
            summary: String::new(),
        }
    }
}
