//! The power-state rules every driver obeys: for each operation and each power state a VM
//! can be in, whether the operation is refused, and if not, what the driver must do and the
//! state the VM ends in. The fake driver only moves its record to the target state; the
//! QEMU driver carries out the [`Action`]. One table for both means a workflow test on the
//! fake driver refuses and accepts exactly what a real host would.

use crate::{HvError, PowerState};

/// An operation of the [`crate::Hypervisor`] trait that moves a VM between power states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `create` of a VM whose files exist (the files are made first when they do not).
    Create,
    PowerOn,
    PowerOff,
    RebootSoft,
    RebootHard,
    Pause,
    Unpause,
    Suspend,
    Resume,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Create,
        Op::PowerOn,
        Op::PowerOff,
        Op::RebootSoft,
        Op::RebootHard,
        Op::Pause,
        Op::Unpause,
        Op::Suspend,
        Op::Resume,
    ];

    fn verb(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::PowerOn => "start",
            Op::PowerOff => "stop",
            Op::RebootSoft | Op::RebootHard => "reboot",
            Op::Pause => "pause",
            Op::Unpause => "unpause",
            Op::Suspend => "suspend",
            Op::Resume => "resume",
        }
    }
}

/// What a driver does to carry out an allowed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The VM is already where the operation leads.
    Nothing,
    /// Boot from the disk, ending whatever process is left first (a crashed guest, a
    /// discarded saved memory).
    Boot,
    /// Load the saved memory and let the guest run on.
    Restore,
    /// Let a paused guest run on.
    Continue,
    /// Stop the guest's vCPUs; the process stays.
    Pause,
    /// Reset a live guest (the hard reboot of a machine) and let it run.
    Reset,
    /// The guest's own shutdown (ACPI power button), then a hard stop after the timeout.
    AcpiShutdown,
    /// The guest's own shutdown, then a boot.
    AcpiReboot,
    /// End the process at once (a guest that cannot see the power button).
    HardStop,
    /// Save the guest's memory to a file and end the process.
    Save,
}

/// An allowed operation: what to do and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub to: PowerState,
}

const fn go(action: Action, to: PowerState) -> Option<Step> {
    Some(Step { action, to })
}

/// The table. `None`: refused in that state.
pub fn rule(op: Op, from: PowerState) -> Option<Step> {
    use Action::*;
    use PowerState::*;
    match (op, from) {
        // `create` makes sure the VM runs: whatever it finds is brought to Running, a
        // suspended VM by loading its memory (a cold boot would lose it).
        (Op::Create, Running) => go(Nothing, Running),
        (Op::Create, Paused) => go(Continue, Running),
        (Op::Create, Suspended) => go(Restore, Running),
        (Op::Create, Shutdown | Crashed | NoState) => go(Boot, Running),

        // Starting a paused or suspended VM would lose (or hide) its state: Nova's
        // unpause and resume are the ways out of those. A VM in no known state (its QEMU
        // does not answer) is started afresh.
        (Op::PowerOn, Running) => go(Nothing, Running),
        (Op::PowerOn, Shutdown | Crashed | NoState) => go(Boot, Running),
        (Op::PowerOn, Paused | Suspended) => None,

        (Op::PowerOff, Running) => go(AcpiShutdown, Shutdown),
        (Op::PowerOff, Paused | Crashed | NoState) => go(HardStop, Shutdown),
        (Op::PowerOff, Shutdown) => go(Nothing, Shutdown),
        (Op::PowerOff, Suspended) => None,

        // A paused guest cannot see the power button: waiting for it to shut down would
        // only run out the timeout, so a soft reboot resets it as a hard one does.
        (Op::RebootSoft, Running) => go(AcpiReboot, Running),
        (Op::RebootSoft | Op::RebootHard, Paused) => go(Reset, Running),
        (Op::RebootHard, Running) => go(Reset, Running),
        // Nova's hard reboot of a suspended server discards the saved memory.
        (Op::RebootSoft | Op::RebootHard, Shutdown | Crashed | Suspended | NoState) => {
            go(Boot, Running)
        }

        (Op::Pause, Running) => go(Pause, Paused),
        (Op::Pause, Paused) => go(Nothing, Paused),
        (Op::Pause, Shutdown | Crashed | Suspended | NoState) => None,

        (Op::Unpause, Paused) => go(Continue, Running),
        (Op::Unpause, Running) => go(Nothing, Running),
        (Op::Unpause, Shutdown | Crashed | Suspended | NoState) => None,

        (Op::Suspend, Running | Paused) => go(Save, Suspended),
        (Op::Suspend, Suspended) => go(Nothing, Suspended),
        (Op::Suspend, Shutdown | Crashed | NoState) => None,

        (Op::Resume, Suspended) => go(Restore, Running),
        (Op::Resume, Running) => go(Nothing, Running),
        (Op::Resume, Paused | Shutdown | Crashed | NoState) => None,
    }
}

/// The step for `op` on a VM in `from`, or Nova's kind of refusal.
pub fn plan(op: Op, from: PowerState) -> Result<Step, HvError> {
    rule(op, from)
        .ok_or_else(|| HvError::InvalidState(format!("cannot {} a VM that is {from:?}", op.verb())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerState::*;

    const STATES: [PowerState; 6] = [NoState, Running, Paused, Shutdown, Crashed, Suspended];

    #[test]
    fn the_rules_the_compute_api_relies_on() {
        let refused = |op, from| rule(op, from).is_none();
        assert!(refused(Op::PowerOn, Paused));
        assert!(refused(Op::PowerOn, Suspended));
        assert_eq!(rule(Op::Unpause, Running).unwrap().action, Action::Nothing);
        assert_eq!(rule(Op::Resume, Running).unwrap().action, Action::Nothing);
        assert_eq!(rule(Op::Create, Suspended).unwrap().action, Action::Restore);
        assert_eq!(rule(Op::RebootSoft, Paused).unwrap().action, Action::Reset);
        assert!(matches!(
            plan(Op::Resume, Paused),
            Err(HvError::InvalidState(m)) if m == "cannot resume a VM that is Paused"
        ));
    }

    #[test]
    fn every_allowed_step_is_consistent() {
        for op in Op::ALL {
            for from in STATES {
                let Some(step) = rule(op, from) else { continue };
                // Doing nothing cannot change the state, and no operation leads to a state
                // the driver could not tell apart from a broken VM.
                if step.action == Action::Nothing {
                    assert_eq!(step.to, from, "{op:?} from {from:?}");
                }
                assert!(
                    !matches!(step.to, NoState | Crashed),
                    "{op:?} from {from:?}"
                );
                // Whatever an operation leads to, repeating it there is allowed and does
                // nothing, except the reboots, which boot again.
                if !matches!(op, Op::RebootSoft | Op::RebootHard) {
                    let again = rule(op, step.to).expect("repeatable");
                    assert_eq!(again.action, Action::Nothing, "{op:?} twice from {from:?}");
                }
            }
        }
    }
}
