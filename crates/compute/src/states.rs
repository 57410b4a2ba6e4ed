//! A server's state as Nova keeps it: `vm_state` (what the server is), `task_state` (what is
//! being done to it, or none) and `power_state` (what the hypervisor last reported), and the
//! `status` the API derives from the first two. Pure code: the tables here decide which
//! actions a state allows, and the services compare-and-swap on these columns.

/// Nova's vm_states.
pub mod vm {
    pub const ACTIVE: &str = "active";
    pub const BUILDING: &str = "building";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const STOPPED: &str = "stopped";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const SOFT_DELETED: &str = "soft-delete";
    pub const DELETED: &str = "deleted";
    pub const ERROR: &str = "error";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
}

/// Nova's task_states (the ones we use).
pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const BLOCK_DEVICE_MAPPING: &str = "block_device_mapping";
    pub const NETWORKING: &str = "networking";
    pub const SPAWNING: &str = "spawning";
    pub const IMAGE_SNAPSHOT: &str = "image_snapshot";
    pub const IMAGE_UPLOADING: &str = "image_uploading";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const REBUILDING: &str = "rebuilding";
    pub const PAUSING: &str = "pausing";
    pub const UNPAUSING: &str = "unpausing";
    pub const SUSPENDING: &str = "suspending";
    pub const RESUMING: &str = "resuming";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const DELETING: &str = "deleting";
    pub const RESIZE_PREP: &str = "resize_prep";
    pub const RESIZE_MIGRATING: &str = "resize_migrating";
    pub const RESIZE_FINISH: &str = "resize_finish";
    pub const RESIZE_REVERTING: &str = "resize_reverting";
    pub const RESIZE_CONFIRMING: &str = "resize_confirming";
    pub const SHELVING: &str = "shelving";
    pub const SHELVING_IMAGE_UPLOADING: &str = "shelving_image_uploading";
    pub const SHELVING_OFFLOADING: &str = "shelving_offloading";
    pub const UNSHELVING: &str = "unshelving";
    pub const RESCUING: &str = "rescuing";
    pub const UNRESCUING: &str = "unrescuing";
    /// While a NIC is hot-plugged or unplugged (Nova has no task state for it and answers
    /// the attachment at once; here a workflow runs, and the task state keeps other
    /// actions off the server meanwhile). The API status is unchanged.
    pub const INTERFACE_ATTACHING: &str = "interface_attaching";
    pub const INTERFACE_DETACHING: &str = "interface_detaching";
}

/// Nova's power_state codes as the API shows them (`OS-EXT-STS:power_state`).
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
    pub const SUSPENDED: i64 = 7;
}

/// The API `status` of a server (nova/api/openstack/common.py's state map).
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    use task::*;
    match vm_state {
        vm::ACTIVE => match task_state {
            Some(REBOOTING) => "REBOOT",
            Some(REBOOTING_HARD) => "HARD_REBOOT",
            Some(REBUILDING) => "REBUILD",
            Some(RESIZE_PREP | RESIZE_MIGRATING | RESIZE_FINISH) => "RESIZE",
            _ => "ACTIVE",
        },
        vm::BUILDING => "BUILD",
        vm::STOPPED => match task_state {
            Some(REBUILDING) => "REBUILD",
            Some(RESIZE_PREP | RESIZE_MIGRATING | RESIZE_FINISH) => "RESIZE",
            _ => "SHUTOFF",
        },
        vm::RESIZED => match task_state {
            Some(RESIZE_REVERTING) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        vm::PAUSED => "PAUSED",
        vm::SUSPENDED => "SUSPENDED",
        vm::RESCUED => "RESCUE",
        vm::ERROR => match task_state {
            Some(REBUILDING) => "REBUILD",
            _ => "ERROR",
        },
        vm::DELETED => "DELETED",
        vm::SOFT_DELETED => "SOFT_DELETED",
        vm::SHELVED => "SHELVED",
        vm::SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
        _ => "UNKNOWN",
    }
}

/// The vm_states a `status=` filter means (its inverse, as Nova's list filter uses it).
pub fn vm_states_of_status(status: &str) -> Option<&'static [&'static str]> {
    Some(match status.to_ascii_uppercase().as_str() {
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" => &[vm::ACTIVE],
        "BUILD" => &[vm::BUILDING],
        "SHUTOFF" => &[vm::STOPPED],
        "PAUSED" => &[vm::PAUSED],
        "SUSPENDED" => &[vm::SUSPENDED],
        "RESCUE" => &[vm::RESCUED],
        "VERIFY_RESIZE" => &[vm::RESIZED],
        "ERROR" => &[vm::ERROR],
        "DELETED" => &[vm::DELETED],
        "SOFT_DELETED" => &[vm::SOFT_DELETED],
        "SHELVED" => &[vm::SHELVED],
        "SHELVED_OFFLOADED" => &[vm::SHELVED_OFFLOADED],
        _ => return None,
    })
}

/// A server action and the states it may start from (Nova's `check_instance_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    RebootSoft,
    RebootHard,
    Pause,
    Unpause,
    Suspend,
    Resume,
    Snapshot,
    Rebuild,
    Resize,
    ConfirmResize,
    RevertResize,
    Shelve,
    ShelveOffload,
    Unshelve,
    Rescue,
    Unrescue,
    AttachInterface,
    DetachInterface,
    Delete,
}

impl Action {
    /// The name Nova's conflict message and instance actions use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::RebootSoft | Action::RebootHard => "reboot",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Snapshot => "createImage",
            Action::Rebuild => "rebuild",
            Action::Resize => "resize",
            Action::ConfirmResize => "confirmResize",
            Action::RevertResize => "revertResize",
            Action::Shelve => "shelve",
            Action::ShelveOffload => "shelveOffload",
            Action::Unshelve => "unshelve",
            Action::Rescue => "rescue",
            Action::Unrescue => "unrescue",
            Action::AttachInterface => "attach_interface",
            Action::DetachInterface => "detach_interface",
            Action::Delete => "delete",
        }
    }

    /// The vm_states the action may start from.
    pub fn allowed_vm_states(self) -> &'static [&'static str] {
        match self {
            Action::Start => &[vm::STOPPED],
            Action::Stop => &[vm::ACTIVE, vm::RESCUED, vm::ERROR],
            Action::RebootSoft => &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED],
            Action::RebootHard => &[
                vm::ACTIVE,
                vm::STOPPED,
                vm::PAUSED,
                vm::SUSPENDED,
                vm::ERROR,
            ],
            Action::Pause => &[vm::ACTIVE, vm::RESCUED],
            Action::Unpause => &[vm::PAUSED],
            Action::Suspend => &[vm::ACTIVE],
            Action::Resume => &[vm::SUSPENDED],
            Action::Snapshot => &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED],
            Action::Rebuild => &[vm::ACTIVE, vm::STOPPED, vm::ERROR],
            Action::Resize => &[vm::ACTIVE, vm::STOPPED],
            Action::ConfirmResize | Action::RevertResize => &[vm::RESIZED],
            Action::Shelve => &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED],
            Action::ShelveOffload => &[vm::SHELVED],
            Action::Unshelve => &[vm::SHELVED, vm::SHELVED_OFFLOADED],
            Action::Rescue => &[vm::ACTIVE, vm::STOPPED, vm::ERROR],
            Action::Unrescue => &[vm::RESCUED],
            Action::AttachInterface | Action::DetachInterface => {
                &[vm::ACTIVE, vm::PAUSED, vm::STOPPED]
            }
            Action::Delete => &[],
        }
    }

    /// The task_states the action may start from (`None` = no task running).
    pub fn allowed_task_states(self) -> &'static [Option<&'static str>] {
        match self {
            Action::RebootSoft => &[None],
            Action::RebootHard => &[None, Some(task::REBOOTING), Some(task::REBOOTING_HARD)],
            Action::Delete => &[],
            _ => &[None],
        }
    }

    /// The task_state set while the action runs.
    pub fn task_state(self) -> &'static str {
        match self {
            Action::Start => task::POWERING_ON,
            Action::Stop => task::POWERING_OFF,
            Action::RebootSoft => task::REBOOTING,
            Action::RebootHard => task::REBOOTING_HARD,
            Action::Pause => task::PAUSING,
            Action::Unpause => task::UNPAUSING,
            Action::Suspend => task::SUSPENDING,
            Action::Resume => task::RESUMING,
            Action::Snapshot => task::IMAGE_SNAPSHOT,
            Action::Rebuild => task::REBUILDING,
            Action::Resize => task::RESIZE_PREP,
            Action::ConfirmResize => task::RESIZE_CONFIRMING,
            Action::RevertResize => task::RESIZE_REVERTING,
            Action::Shelve => task::SHELVING,
            Action::ShelveOffload => task::SHELVING_OFFLOADING,
            Action::Unshelve => task::UNSHELVING,
            Action::Rescue => task::RESCUING,
            Action::Unrescue => task::UNRESCUING,
            Action::AttachInterface => task::INTERFACE_ATTACHING,
            Action::DetachInterface => task::INTERFACE_DETACHING,
            Action::Delete => task::DELETING,
        }
    }

    /// The vm_state and power state the server has once the action succeeded.
    pub fn outcome(self, before: &str) -> (&'static str, i64) {
        match self {
            Action::Start | Action::RebootSoft | Action::RebootHard | Action::Unpause => {
                (vm::ACTIVE, power::RUNNING)
            }
            Action::Resume => (vm::ACTIVE, power::RUNNING),
            Action::Stop => (vm::STOPPED, power::SHUTDOWN),
            Action::Pause => (vm::PAUSED, power::PAUSED),
            Action::Suspend => (vm::SUSPENDED, power::SUSPENDED),
            Action::Snapshot => (vm_state_named(before).unwrap_or(vm::ACTIVE), power::NOSTATE),
            Action::Rebuild | Action::RevertResize | Action::ConfirmResize => {
                if before == vm::STOPPED {
                    (vm::STOPPED, power::SHUTDOWN)
                } else {
                    (vm::ACTIVE, power::RUNNING)
                }
            }
            Action::Resize => (vm::RESIZED, power::RUNNING),
            Action::Shelve | Action::ShelveOffload => (vm::SHELVED_OFFLOADED, power::SHUTDOWN),
            Action::Unshelve | Action::Unrescue => (vm::ACTIVE, power::RUNNING),
            Action::Rescue => (vm::RESCUED, power::RUNNING),
            Action::AttachInterface | Action::DetachInterface => {
                (vm_state_named(before).unwrap_or(vm::ACTIVE), power::NOSTATE)
            }
            Action::Delete => (vm::DELETED, power::NOSTATE),
        }
    }

    /// Nil when the action may run on a server in `vm_state`/`task_state`, else which
    /// attribute blocks it (for Nova's conflict message).
    pub fn check(
        self,
        vm_state: &str,
        task_state: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        if self == Action::Delete {
            return Ok(());
        }
        if !self.allowed_vm_states().contains(&vm_state) {
            return Err(("vm_state", vm_state.to_string()));
        }
        if !self.allowed_task_states().contains(&task_state) {
            return Err(("task_state", task_state.unwrap_or("None").to_string()));
        }
        Ok(())
    }
}

/// The vm_state constant spelled `s`, when it is one (for `&'static str` columns read back).
pub fn vm_state_named(s: &str) -> Option<&'static str> {
    [
        vm::ACTIVE,
        vm::STOPPED,
        vm::PAUSED,
        vm::SUSPENDED,
        vm::ERROR,
        vm::BUILDING,
        vm::RESCUED,
        vm::RESIZED,
        vm::SHELVED,
        vm::SHELVED_OFFLOADED,
        vm::SOFT_DELETED,
        vm::DELETED,
    ]
    .into_iter()
    .find(|v| *v == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_nova_map() {
        assert_eq!(status(vm::BUILDING, Some(task::SCHEDULING)), "BUILD");
        assert_eq!(status(vm::ACTIVE, None), "ACTIVE");
        assert_eq!(
            status(vm::ACTIVE, Some(task::REBOOTING_HARD)),
            "HARD_REBOOT"
        );
        assert_eq!(status(vm::ACTIVE, Some(task::POWERING_OFF)), "ACTIVE");
        assert_eq!(status(vm::STOPPED, None), "SHUTOFF");
        assert_eq!(status(vm::ERROR, None), "ERROR");
    }

    #[test]
    fn every_status_filter_maps_back_to_its_status() {
        for s in [
            "ACTIVE",
            "BUILD",
            "SHUTOFF",
            "PAUSED",
            "SUSPENDED",
            "ERROR",
            "SHELVED",
        ] {
            let states = vm_states_of_status(s).unwrap();
            assert!(states.iter().any(|v| status(v, None) == s), "{s}");
        }
        assert!(vm_states_of_status("BOGUS").is_none());
    }

    #[test]
    fn actions_check_states() {
        assert!(Action::Stop.check(vm::ACTIVE, None).is_ok());
        assert_eq!(
            Action::Start.check(vm::ACTIVE, None).unwrap_err(),
            ("vm_state", "active".to_string())
        );
        assert_eq!(
            Action::Stop
                .check(vm::ACTIVE, Some(task::REBOOTING))
                .unwrap_err()
                .0,
            "task_state"
        );
        assert!(Action::RebootHard
            .check(vm::ACTIVE, Some(task::REBOOTING))
            .is_ok());
        assert!(Action::Delete
            .check(vm::BUILDING, Some(task::SPAWNING))
            .is_ok());
        // Every action's outcome is a state some action may start from, or deleted.
        for a in [
            Action::Start,
            Action::Stop,
            Action::RebootSoft,
            Action::RebootHard,
            Action::Pause,
            Action::Unpause,
            Action::Suspend,
            Action::Resume,
        ] {
            let (v, _) = a.outcome(vm::ACTIVE);
            assert_ne!(status(v, None), "UNKNOWN");
        }
    }
}
