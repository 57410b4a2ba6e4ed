//! Keystone's default policy, in oslo.policy syntax, for the personas admin, manager, member,
//! reader and service. As in Keystone's current defaults, the `admin` role is the cloud
//! administrator whatever the token's scope; a reader with system scope may read everything;
//! a domain-scoped manager administers users, groups, projects and grants inside that domain;
//! users may read themselves and manage their own application credentials. Any rule can be
//! overridden by the operator's `policy.yaml`.

const ADMIN: &str = "rule:admin_required";
const SYSTEM_READER: &str = "(role:reader and system_scope:all)";

macro_rules! rules {
    ($($name:literal => $rule:expr),* $(,)?) => {
        pub static RULES: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
            std::sync::LazyLock::new(|| vec![$(($name, Box::leak(String::from($rule).into_boxed_str()) as &'static str)),*]);
    };
}

fn or(parts: &[&str]) -> String {
    parts.join(" or ")
}

fn admin_or_reader() -> String {
    or(&[ADMIN, SYSTEM_READER])
}

fn domain_reader(attr: &str) -> String {
    format!("(role:reader and token.domain.id:%({attr})s)")
}

fn domain_manager(attr: &str) -> String {
    format!("(role:manager and token.domain.id:%({attr})s)")
}

fn read_in_domain(attr: &str) -> String {
    or(&[ADMIN, SYSTEM_READER, &domain_reader(attr)])
}

fn manage_in_domain(attr: &str) -> String {
    or(&[ADMIN, &domain_manager(attr)])
}

rules! {
    "admin_required" => "role:admin or is_admin:1",
    "service_role" => "role:service",
    "service_or_admin" => "rule:admin_required or rule:service_role",
    "owner" => "user_id:%(user_id)s",
    "admin_or_owner" => "rule:admin_required or rule:owner",
    "token_subject" => "user_id:%(target.token.user_id)s",
    "admin_or_token_subject" => "rule:admin_required or rule:token_subject",
    "service_admin_or_token_subject" => "rule:service_or_admin or rule:token_subject",
    "domain_managed_target_role" => "'reader':%(target.role.name)s or 'member':%(target.role.name)s or 'manager':%(target.role.name)s",

    "identity:validate_token" => or(&[ADMIN, SYSTEM_READER, "rule:service_role", "rule:token_subject"]),
    "identity:check_token" => or(&[ADMIN, SYSTEM_READER, "rule:token_subject"]),
    "identity:revoke_token" => or(&[ADMIN, "rule:token_subject"]),
    "identity:get_auth_catalog" => "",
    "identity:get_auth_projects" => "",
    "identity:get_auth_domains" => "",
    "identity:get_auth_system" => "",

    "identity:get_domain" => or(&[ADMIN, SYSTEM_READER, "token.domain.id:%(target.domain.id)s", "token.project.domain.id:%(target.domain.id)s"]),
    "identity:list_domains" => admin_or_reader(),
    "identity:create_domain" => ADMIN,
    "identity:update_domain" => ADMIN,
    "identity:delete_domain" => ADMIN,
    "identity:create_domain_config" => ADMIN,
    "identity:get_domain_config" => admin_or_reader(),
    "identity:update_domain_config" => ADMIN,
    "identity:delete_domain_config" => ADMIN,
    "identity:get_domain_config_default" => admin_or_reader(),
    "identity:get_security_compliance_domain_config" => "",

    "identity:get_project" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.project.domain_id"), "project_id:%(target.project.id)s"]),
    "identity:list_projects" => read_in_domain("target.domain_id"),
    "identity:list_user_projects" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.user.domain_id"), "user_id:%(target.user.id)s"]),
    "identity:create_project" => manage_in_domain("target.project.domain_id"),
    "identity:update_project" => manage_in_domain("target.project.domain_id"),
    "identity:delete_project" => manage_in_domain("target.project.domain_id"),
    "identity:list_project_tags" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.project.domain_id"), "project_id:%(target.project.id)s"]),
    "identity:get_project_tag" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.project.domain_id"), "project_id:%(target.project.id)s"]),
    "identity:update_project_tags" => or(&[ADMIN, &domain_manager("target.project.domain_id"), "(role:member and project_id:%(target.project.id)s)"]),
    "identity:create_project_tag" => or(&[ADMIN, &domain_manager("target.project.domain_id"), "(role:member and project_id:%(target.project.id)s)"]),
    "identity:delete_project_tags" => or(&[ADMIN, &domain_manager("target.project.domain_id"), "(role:member and project_id:%(target.project.id)s)"]),
    "identity:delete_project_tag" => or(&[ADMIN, &domain_manager("target.project.domain_id"), "(role:member and project_id:%(target.project.id)s)"]),

    "identity:get_user" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.user.domain_id"), "user_id:%(target.user.id)s"]),
    "identity:list_users" => read_in_domain("target.domain_id"),
    "identity:create_user" => manage_in_domain("target.user.domain_id"),
    "identity:update_user" => manage_in_domain("target.user.domain_id"),
    "identity:delete_user" => manage_in_domain("target.user.domain_id"),
    "identity:list_groups_for_user" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.user.domain_id"), "user_id:%(user_id)s"]),

    "identity:get_group" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.group.domain_id")]),
    "identity:list_groups" => read_in_domain("target.domain_id"),
    "identity:create_group" => manage_in_domain("target.group.domain_id"),
    "identity:update_group" => manage_in_domain("target.group.domain_id"),
    "identity:delete_group" => manage_in_domain("target.group.domain_id"),
    "identity:list_users_in_group" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.group.domain_id")]),
    "identity:check_user_in_group" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.group.domain_id")]),
    "identity:add_user_to_group" => manage_in_domain("target.group.domain_id"),
    "identity:remove_user_from_group" => manage_in_domain("target.group.domain_id"),

    "identity:get_role" => or(&[ADMIN, SYSTEM_READER, "(role:manager and rule:domain_managed_target_role)"]),
    "identity:list_roles" => or(&[ADMIN, SYSTEM_READER, "role:manager"]),
    "identity:create_role" => ADMIN,
    "identity:update_role" => ADMIN,
    "identity:delete_role" => ADMIN,
    "identity:get_implied_role" => admin_or_reader(),
    "identity:list_implied_roles" => admin_or_reader(),
    "identity:check_implied_role" => admin_or_reader(),
    "identity:list_role_inference_rules" => admin_or_reader(),
    "identity:create_implied_role" => ADMIN,
    "identity:delete_implied_role" => ADMIN,

    "identity:check_grant" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.domain.id"), &domain_reader("target.project.domain_id")]),
    "identity:list_grants" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.domain.id"), &domain_reader("target.project.domain_id")]),
    "identity:create_grant" => or(&[ADMIN, &format!("({} and rule:domain_managed_target_role)", domain_manager("target.project.domain_id"))]),
    "identity:revoke_grant" => or(&[ADMIN, &format!("({} and rule:domain_managed_target_role)", domain_manager("target.project.domain_id"))]),
    "identity:list_role_assignments" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.domain_id")]),
    "identity:list_role_assignments_for_tree" => or(&[ADMIN, SYSTEM_READER, &domain_reader("target.project.domain_id")]),
    "identity:check_system_grant_for_user" => admin_or_reader(),
    "identity:list_system_grants_for_user" => admin_or_reader(),
    "identity:create_system_grant_for_user" => ADMIN,
    "identity:revoke_system_grant_for_user" => ADMIN,
    "identity:check_system_grant_for_group" => admin_or_reader(),
    "identity:list_system_grants_for_group" => admin_or_reader(),
    "identity:create_system_grant_for_group" => ADMIN,
    "identity:revoke_system_grant_for_group" => ADMIN,

    "identity:get_region" => "",
    "identity:list_regions" => "",
    "identity:create_region" => ADMIN,
    "identity:update_region" => ADMIN,
    "identity:delete_region" => ADMIN,
    "identity:get_service" => admin_or_reader(),
    "identity:list_services" => admin_or_reader(),
    "identity:create_service" => ADMIN,
    "identity:update_service" => ADMIN,
    "identity:delete_service" => ADMIN,
    "identity:get_endpoint" => admin_or_reader(),
    "identity:list_endpoints" => admin_or_reader(),
    "identity:create_endpoint" => ADMIN,
    "identity:update_endpoint" => ADMIN,
    "identity:delete_endpoint" => ADMIN,

    "identity:get_endpoint_group" => admin_or_reader(),
    "identity:list_endpoint_groups" => admin_or_reader(),
    "identity:create_endpoint_group" => ADMIN,
    "identity:update_endpoint_group" => ADMIN,
    "identity:delete_endpoint_group" => ADMIN,
    "identity:add_endpoint_to_project" => ADMIN,
    "identity:check_endpoint_in_project" => admin_or_reader(),
    "identity:list_endpoints_for_project" => admin_or_reader(),
    "identity:list_projects_for_endpoint" => admin_or_reader(),
    "identity:remove_endpoint_from_project" => ADMIN,
    "identity:add_endpoint_group_to_project" => ADMIN,
    "identity:get_endpoint_group_in_project" => admin_or_reader(),
    "identity:list_endpoint_groups_for_project" => admin_or_reader(),
    "identity:list_projects_associated_with_endpoint_group" => admin_or_reader(),
    "identity:list_endpoints_associated_with_endpoint_group" => admin_or_reader(),
    "identity:remove_endpoint_group_from_project" => ADMIN,

    "identity:get_policy" => admin_or_reader(),
    "identity:list_policies" => admin_or_reader(),
    "identity:create_policy" => ADMIN,
    "identity:update_policy" => ADMIN,
    "identity:delete_policy" => ADMIN,

    "identity:get_consumer" => admin_or_reader(),
    "identity:list_consumers" => admin_or_reader(),
    "identity:create_consumer" => ADMIN,
    "identity:update_consumer" => ADMIN,
    "identity:delete_consumer" => ADMIN,

    "identity:get_application_credential" => or(&[ADMIN, SYSTEM_READER, "rule:owner"]),
    "identity:list_application_credentials" => or(&[ADMIN, SYSTEM_READER, "rule:owner"]),
    "identity:create_application_credential" => "user_id:%(user_id)s",
    "identity:delete_application_credential" => or(&[ADMIN, "rule:owner"]),

    "identity:get_access_rule" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.user.id)s"]),
    "identity:list_access_rules" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.user.id)s"]),
    "identity:delete_access_rule" => or(&[ADMIN, "user_id:%(target.user.id)s"]),

    "identity:get_credential" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.credential.user_id)s"]),
    "identity:list_credentials" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.credential.user_id)s"]),
    "identity:create_credential" => or(&[ADMIN, "user_id:%(target.credential.user_id)s"]),
    "identity:update_credential" => or(&[ADMIN, "user_id:%(target.credential.user_id)s"]),
    "identity:delete_credential" => or(&[ADMIN, "user_id:%(target.credential.user_id)s"]),

    "identity:ec2_get_credential" => or(&[ADMIN, SYSTEM_READER, "(rule:owner and user_id:%(target.credential.user_id)s)"]),
    "identity:ec2_list_credentials" => or(&[ADMIN, SYSTEM_READER, "rule:owner"]),
    "identity:ec2_create_credential" => or(&[ADMIN, "rule:owner"]),
    "identity:ec2_delete_credential" => or(&[ADMIN, "(rule:owner and user_id:%(target.credential.user_id)s)"]),

    "identity:create_trust" => "user_id:%(trust.trustor_user_id)s",
    "identity:list_trusts" => admin_or_reader(),
    "identity:list_trusts_for_trustor" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.trust.trustor_user_id)s"]),
    "identity:list_trusts_for_trustee" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.trust.trustee_user_id)s"]),
    "identity:get_trust" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.trust.trustor_user_id)s", "user_id:%(target.trust.trustee_user_id)s"]),
    "identity:delete_trust" => or(&[ADMIN, "user_id:%(target.trust.trustor_user_id)s"]),
    "identity:list_roles_for_trust" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.trust.trustor_user_id)s", "user_id:%(target.trust.trustee_user_id)s"]),
    "identity:get_role_for_trust" => or(&[ADMIN, SYSTEM_READER, "user_id:%(target.trust.trustor_user_id)s", "user_id:%(target.trust.trustee_user_id)s"]),

    "identity:get_registered_limit" => "",
    "identity:list_registered_limits" => "",
    "identity:create_registered_limits" => ADMIN,
    "identity:update_registered_limit" => ADMIN,
    "identity:delete_registered_limit" => ADMIN,
    "identity:get_limit_model" => "",
    "identity:get_limit" => or(&[ADMIN, SYSTEM_READER, "project_id:%(target.limit.project_id)s", "domain_id:%(target.limit.domain_id)s"]),
    "identity:list_limits" => "",
    "identity:create_limits" => ADMIN,
    "identity:update_limit" => ADMIN,
    "identity:delete_limit" => ADMIN,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_parses() {
        let p = ferrostack_policy::Policy::new(super::RULES.iter().copied()).unwrap();
        assert!(p.contains("identity:get_user"));
    }
}
