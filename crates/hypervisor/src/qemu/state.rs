//! What a VM's power state is, read from what is on the host: its QEMU process (and the run
//! status QMP reports), and the saved-memory files of suspend. Also what an operation that
//! was interrupted (the agent crashed, or was restarted) left to finish, so that the next
//! operation starts from a settled VM. Pure functions of [`Seen`], so every crash point is
//! a unit test.
//!
//! Suspend migrates the guest's memory to `memory.state.tmp` while the guest runs, and
//! renames it to `memory.state` once QEMU reports the migration complete; resume loads
//! `memory.state` into a new QEMU and deletes it only after the guest runs again. Hence at
//! any crash point there is a running guest, or a complete `memory.state`, or a save QEMU
//! is still carrying out on its own (which settles into the second).

use crate::PowerState;

/// The saved memory of a suspended VM.
pub const SAVED: &str = "memory.state";
/// The saved memory while it is being written.
pub const SAVING: &str = "memory.state.tmp";

/// What the driver sees of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its QEMU process, if one lives.
    pub pid: Option<u32>,
    /// QMP's `query-status` (`running`, `paused`, `postmigrate`, ...); `None` when QEMU
    /// did not answer.
    pub run: Option<String>,
    /// `memory.state` exists.
    pub saved: bool,
    /// `memory.state.tmp` exists.
    pub saving: bool,
}

/// The power state Nova is told.
pub fn power_state(seen: &Seen) -> PowerState {
    if seen.pid.is_none() {
        return if seen.saved {
            PowerState::Suspended
        } else {
            PowerState::Shutdown
        };
    }
    match seen.run.as_deref() {
        Some("running") => PowerState::Running,
        // A resume that has not let the guest run yet: the file is still the guest.
        _ if seen.saved => PowerState::Suspended,
        // The save completed; only its rename is left.
        Some("postmigrate") if seen.saving => PowerState::Suspended,
        Some(
            "paused" | "prelaunch" | "suspended" | "restore-vm" | "save-vm" | "debug"
            | "finish-migrate" | "postmigrate",
        ) => PowerState::Paused,
        Some("shutdown") => PowerState::Shutdown,
        Some("guest-panicked" | "internal-error" | "io-error") => PowerState::Crashed,
        // `inmigrate` without a file to load, or no answer at all.
        _ => PowerState::NoState,
    }
}

/// What an interrupted operation left to do, one thing at a time (the driver applies it,
/// looks again, and repeats until there is nothing left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// A save whose QEMU is gone: the file may be incomplete, so it is dropped.
    DropPartialSave,
    /// A save QEMU has not reported done yet: wait for it (then rename, or drop).
    AwaitSave,
    /// A save QEMU finished: rename the file into place.
    FinishSave,
    /// The memory is saved and the guest does not run: its process has no more use.
    EndSavedProcess,
    /// A resume that let the guest run but did not get to delete the file.
    DropStaleSave,
}

pub fn repair(seen: &Seen) -> Option<Repair> {
    if seen.pid.is_none() {
        return seen.saving.then_some(Repair::DropPartialSave);
    }
    match (seen.saving, seen.saved, seen.run.as_deref()) {
        (true, _, Some("postmigrate")) => Some(Repair::FinishSave),
        (true, _, Some(_)) => Some(Repair::AwaitSave),
        (_, true, Some("running")) => Some(Repair::DropStaleSave),
        (_, true, _) => Some(Repair::EndSavedProcess),
        // A save in a QEMU that does not answer cannot be waited for; it reads as NoState,
        // which a stop or a boot ends, and the partial file goes after that.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerState::*;

    fn seen(pid: bool, run: Option<&str>, saved: bool, saving: bool) -> Seen {
        Seen {
            pid: pid.then_some(42),
            run: run.map(str::to_string),
            saved,
            saving,
        }
    }

    /// Applies what the driver would do for a repair whose outcome does not depend on QEMU.
    fn after(mut s: Seen, r: Repair) -> Seen {
        match r {
            Repair::DropPartialSave => s.saving = false,
            Repair::FinishSave => (s.saving, s.saved) = (false, true),
            Repair::EndSavedProcess => (s.pid, s.run) = (None, None),
            Repair::DropStaleSave => s.saved = false,
            Repair::AwaitSave => unreachable!("depends on QEMU"),
        }
        s
    }

    fn settle(mut s: Seen) -> Seen {
        while let Some(r) = repair(&s) {
            s = after(s, r);
        }
        s
    }

    #[test]
    fn every_crash_point_of_suspend_ends_running_or_saved() {
        // Before `migrate`: the guest runs.
        assert_eq!(
            power_state(&seen(true, Some("running"), false, false)),
            Running
        );
        // Migrating while the guest runs (or after the driver stopped it to converge):
        // QEMU carries on alone, and the driver waits for it.
        let migrating = seen(true, Some("running"), false, true);
        assert_eq!(power_state(&migrating), Running);
        assert_eq!(repair(&migrating), Some(Repair::AwaitSave));
        assert_eq!(
            repair(&seen(true, Some("paused"), false, true)),
            Some(Repair::AwaitSave)
        );
        // Migration done, not renamed: Suspended at once, and settled into the saved file.
        let done = seen(true, Some("postmigrate"), false, true);
        assert_eq!(power_state(&done), Suspended);
        assert_eq!(settle(done), seen(false, None, true, false));
        // Renamed, process not ended yet.
        let renamed = seen(true, Some("postmigrate"), true, false);
        assert_eq!(power_state(&renamed), Suspended);
        assert_eq!(settle(renamed), seen(false, None, true, false));
        // A QEMU that stopped answering mid-save: nothing to wait for; a stop ends it.
        let hung = seen(true, None, false, true);
        assert_eq!(repair(&hung), None);
        assert_eq!(power_state(&hung), NoState);
        assert!(crate::rules::rule(crate::rules::Op::PowerOff, NoState).is_some());
        // QEMU died (or was stopped) mid-save: the partial file is not a saved guest.
        let died = seen(false, None, false, true);
        assert_eq!(settle(died.clone()), seen(false, None, false, false));
        assert_eq!(power_state(&settle(died)), Shutdown);
    }

    #[test]
    fn every_crash_point_of_resume_ends_running_or_saved() {
        for run in [None, Some("inmigrate"), Some("paused"), Some("prelaunch")] {
            // Started, loading or loaded but not continued: still suspended, and the
            // half-resumed process is ended so that resume starts over from the file.
            let s = seen(true, run, true, false);
            assert_eq!(power_state(&s), Suspended, "{run:?}");
            assert_eq!(settle(s), seen(false, None, true, false), "{run:?}");
        }
        // Continued, file not deleted yet: running, and the stale file goes, so that a
        // later stop does not read as suspended.
        let s = seen(true, Some("running"), true, false);
        assert_eq!(power_state(&s), Running);
        assert_eq!(settle(s), seen(true, Some("running"), false, false));
    }

    #[test]
    fn run_statuses() {
        let st = |run| power_state(&seen(true, run, false, false));
        assert_eq!(st(Some("paused")), Paused);
        assert_eq!(st(Some("prelaunch")), Paused);
        assert_eq!(st(Some("guest-panicked")), Crashed);
        assert_eq!(st(Some("inmigrate")), NoState);
        assert_eq!(st(None), NoState);
        assert_eq!(power_state(&seen(false, None, false, false)), Shutdown);
        assert_eq!(repair(&seen(true, Some("paused"), false, false)), None);
    }
}
