//! `/v3/domains/{id}/config[/{group}[/{option}]]` (create with PUT, show, update, delete a
//! domain's specific configuration) and `/v3/domains/config[/{group}[/{option}]]/default`
//! (the defaults it overrides). The `security_compliance` group of the default domain is
//! readable by anyone, as in Keystone.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::{json, Value};

use super::{json, no_content, Caller, HttpResult, JsonBody, State};
use crate::error::{IdentityError, Result};
use crate::service::domain_configs::{config_in, SECURITY_COMPLIANCE};
use crate::service::Identity;

const ONE: &str = "/v3/domains/{id}/config";
const GROUP: &str = "/v3/domains/{id}/config/{group}";
const OPTION: &str = "/v3/domains/{id}/config/{group}/{option}";

pub fn routes() -> Api<State> {
    Api::new()
        .put(
            ONE,
            op(
                "create_domain_config",
                "Create (replace) a domain's configuration",
            )
            .status(201),
            create_config,
        )
        .get(
            ONE,
            op("get_domain_config", "Show a domain's configuration"),
            get_config,
        )
        .patch(
            ONE,
            op("update_domain_config", "Update a domain's configuration"),
            update_config,
        )
        .delete(
            ONE,
            op("delete_domain_config", "Delete a domain's configuration").status(204),
            delete_config,
        )
        .get(
            GROUP,
            op(
                "get_domain_config_group",
                "Show a group of a domain's configuration",
            ),
            get_group,
        )
        .patch(
            GROUP,
            op(
                "update_domain_config_group",
                "Update a group of a domain's configuration",
            ),
            update_group,
        )
        .delete(
            GROUP,
            op(
                "delete_domain_config_group",
                "Delete a group of a domain's configuration",
            )
            .status(204),
            delete_group,
        )
        .get(
            OPTION,
            op(
                "get_domain_config_option",
                "Show an option of a domain's configuration",
            ),
            get_option,
        )
        .patch(
            OPTION,
            op(
                "update_domain_config_option",
                "Update an option of a domain's configuration",
            ),
            update_option,
        )
        .delete(
            OPTION,
            op(
                "delete_domain_config_option",
                "Delete an option of a domain's configuration",
            )
            .status(204),
            delete_option,
        )
        .get(
            "/v3/domains/config/default",
            op(
                "get_domain_config_default",
                "Show the default domain configuration",
            ),
            default_config,
        )
        .get(
            "/v3/domains/config/{group}/default",
            op(
                "get_domain_config_group_default",
                "Show the defaults of a configuration group",
            ),
            default_group,
        )
        .get(
            "/v3/domains/config/{group}/{option}/default",
            op(
                "get_domain_config_option_default",
                "Show the default of a configuration option",
            ),
            default_option,
        )
}

fn config(c: impl Into<Value>) -> Value {
    json!({ "config": c.into() })
}

/// Authorizes, then checks the domain exists (so callers without the right learn nothing).
async fn authorize_on_domain(s: &Identity, caller: &Caller, rule: &str, id: &str) -> Result<()> {
    s.authorize(
        caller.ctx(),
        rule,
        &json!({"target": {"domain": {"id": id}}}),
    )?;
    s.store
        .domain(id)
        .await?
        .map(drop)
        .ok_or_else(|| IdentityError::not_found("domain", id))
}

async fn show(
    s: &Identity,
    caller: &Caller,
    id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> HttpResult {
    if group == Some(SECURITY_COMPLIANCE) {
        authorize_on_domain(
            s,
            caller,
            "identity:get_security_compliance_domain_config",
            id,
        )
        .await?;
        return json(
            StatusCode::OK,
            config(s.security_compliance_config(id, option)?),
        );
    }
    authorize_on_domain(s, caller, "identity:get_domain_config", id).await?;
    json(
        StatusCode::OK,
        config(s.domain_config(id, group, option).await?),
    )
}

async fn update(
    s: &Identity,
    caller: &Caller,
    id: &str,
    body: &Value,
    group: Option<&str>,
    option: Option<&str>,
) -> HttpResult {
    authorize_on_domain(s, caller, "identity:update_domain_config", id).await?;
    let c = s
        .update_domain_config(id, config_in(body)?, group, option)
        .await?;
    json(StatusCode::OK, config(c))
}

async fn delete(
    s: &Identity,
    caller: &Caller,
    id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> HttpResult {
    authorize_on_domain(s, caller, "identity:delete_domain_config", id).await?;
    s.delete_domain_config(id, group, option).await?;
    no_content()
}

async fn create_config(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    authorize_on_domain(&s, &caller, "identity:create_domain_config", &id).await?;
    let (c, existed) = s.create_domain_config(&id, &config_in(&body)?).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    json(status, config(c))
}

async fn get_config(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    show(&s, &caller, &id, None, None).await
}

async fn update_config(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    update(&s, &caller, &id, &body, None, None).await
}

async fn delete_config(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    delete(&s, &caller, &id, None, None).await
}

async fn get_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group)): Path<(String, String)>,
) -> HttpResult {
    show(&s, &caller, &id, Some(&group), None).await
}

async fn update_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    update(&s, &caller, &id, &body, Some(&group), None).await
}

async fn delete_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group)): Path<(String, String)>,
) -> HttpResult {
    delete(&s, &caller, &id, Some(&group), None).await
}

async fn get_option(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group, option)): Path<(String, String, String)>,
) -> HttpResult {
    show(&s, &caller, &id, Some(&group), Some(&option)).await
}

async fn update_option(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group, option)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    update(&s, &caller, &id, &body, Some(&group), Some(&option)).await
}

async fn delete_option(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((id, group, option)): Path<(String, String, String)>,
) -> HttpResult {
    delete(&s, &caller, &id, Some(&group), Some(&option)).await
}

async fn default_config(AxState(s): AxState<State>, caller: Caller) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:get_domain_config_default",
        &json!({}),
    )?;
    json(StatusCode::OK, config(s.domain_config_default(None, None)?))
}

async fn default_group(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(group): Path<String>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:get_domain_config_default",
        &json!({}),
    )?;
    json(
        StatusCode::OK,
        config(s.domain_config_default(Some(&group), None)?),
    )
}

async fn default_option(
    AxState(s): AxState<State>,
    caller: Caller,
    Path((group, option)): Path<(String, String)>,
) -> HttpResult {
    s.authorize(
        caller.ctx(),
        "identity:get_domain_config_default",
        &json!({}),
    )?;
    json(
        StatusCode::OK,
        config(s.domain_config_default(Some(&group), Some(&option))?),
    )
}
