//! Elsewhere than on Linux: only a run's process group can be seen and
//! killed; no memory or task counts, no subreaping, no parent-death signal.

use nix::sys::signal;
use nix::unistd::Pid;

use super::{Family, Usage};

/// The live processes of `family`: only its group can be seen here.
pub(super) fn members(family: &Family, _live: &[Pid]) -> Vec<Pid> {
    if signal::killpg(family.group, None).is_ok() {
        vec![family.group]
    } else {
        Vec::new()
    }
}

/// Nothing was adopted, so nothing to reap.
pub(super) fn reap_orphans(_family: &Family, _live: &[Pid]) {}

/// Nothing can be measured here.
pub(super) fn usage(_pids: &[Pid]) -> Usage {
    Usage::default()
}

/// Not counted here: the limit then applies to the run's tasks alone.
pub(crate) fn user_tasks() -> u64 {
    0
}

/// Nothing to adopt without subreaping.
pub fn adopt_orphans() {}

/// Nothing was adopted.
pub fn kill_orphans() {}

/// No parent-death signal here.
pub fn die_with_parent(_parent: Option<&str>) -> bool {
    true
}
