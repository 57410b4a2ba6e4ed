//! Glance's default policy (secure RBAC personas) in oslo.policy syntax. Targets carry the
//! image's `project_id` (owner), `visibility` and, for shared images, `member_id`.

const OWNER_MEMBER: &str = "role:admin or (role:member and project_id:%(project_id)s)";
const READER_CAN_SEE: &str = "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))";

pub const RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("default", "role:admin"),
    ("add_image", OWNER_MEMBER),
    ("delete_image", OWNER_MEMBER),
    ("get_image", READER_CAN_SEE),
    (
        "get_images",
        "role:admin or (role:reader and project_id:%(project_id)s)",
    ),
    ("modify_image", OWNER_MEMBER),
    ("publicize_image", "role:admin"),
    ("communitize_image", OWNER_MEMBER),
    ("upload_image", OWNER_MEMBER),
    ("download_image", READER_CAN_SEE),
    ("deactivate", OWNER_MEMBER),
    ("reactivate", OWNER_MEMBER),
    ("add_member", OWNER_MEMBER),
    ("delete_member", OWNER_MEMBER),
    (
        "get_member",
        "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))",
    ),
    (
        "get_members",
        "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))",
    ),
    // The tasks API is for administrators only (Glance's defaults since Wallaby).
    ("tasks_api_access", "role:admin"),
    ("get_task", "role:admin"),
    ("get_tasks", "role:admin"),
    ("add_task", "role:admin"),
    ("modify_task", "role:admin"),
    (
        "modify_member",
        "role:admin or (role:member and project_id:%(member_id)s)",
    ),
];
