//! Regions, services and endpoints: the catalog every token carries.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use ferrostack_common::api::{op, Api};
use serde_json::json;

use super::views::filter_list;
use super::{json, no_content, Caller, HttpResult, JsonBody, QueryMap, State};
use crate::error::IdentityError;

pub fn routes() -> Api<State> {
    Api::new()
        .get(
            "/v3/regions",
            op("list_regions", "List regions"),
            list_regions,
        )
        .post(
            "/v3/regions",
            op("create_region", "Create a region").status(201),
            create_region,
        )
        .get(
            "/v3/regions/{id}",
            op("get_region", "Show a region"),
            get_region,
        )
        .put(
            "/v3/regions/{id}",
            op("create_region_with_id", "Create a region with a given id").status(201),
            put_region,
        )
        .patch(
            "/v3/regions/{id}",
            op("update_region", "Update a region"),
            update_region,
        )
        .delete(
            "/v3/regions/{id}",
            op("delete_region", "Delete a region").status(204),
            delete_region,
        )
        .get(
            "/v3/services",
            op("list_services", "List services"),
            list_services,
        )
        .post(
            "/v3/services",
            op("create_service", "Create a service").status(201),
            create_service,
        )
        .get(
            "/v3/services/{id}",
            op("get_service", "Show a service"),
            get_service,
        )
        .patch(
            "/v3/services/{id}",
            op("update_service", "Update a service"),
            update_service,
        )
        .delete(
            "/v3/services/{id}",
            op("delete_service", "Delete a service").status(204),
            delete_service,
        )
        .get(
            "/v3/endpoints",
            op("list_endpoints", "List endpoints"),
            list_endpoints,
        )
        .post(
            "/v3/endpoints",
            op("create_endpoint", "Create an endpoint").status(201),
            create_endpoint,
        )
        .get(
            "/v3/endpoints/{id}",
            op("get_endpoint", "Show an endpoint"),
            get_endpoint,
        )
        .patch(
            "/v3/endpoints/{id}",
            op("update_endpoint", "Update an endpoint"),
            update_endpoint,
        )
        .delete(
            "/v3/endpoints/{id}",
            op("delete_endpoint", "Delete an endpoint").status(204),
            delete_endpoint,
        )
}

async fn list_regions(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_regions", &json!({}))?;
    let items = s
        .store
        .regions()
        .await?
        .iter()
        .map(|r| s.region_view(r))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "regions",
            "/regions",
            filter_list(items, &q.0, &["parent_region_id"]),
        ),
    )
}

async fn create_region(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_region", &json!({}))?;
    let r = s.prepare_region(&body, None)?;
    s.create_region(&r).await?;
    json(StatusCode::CREATED, json!({"region": s.region_view(&r)}))
}

async fn put_region(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_region", &json!({}))?;
    let r = s.prepare_region(&body, Some(id))?;
    s.create_region(&r).await?;
    json(StatusCode::CREATED, json!({"region": s.region_view(&r)}))
}

async fn get_region(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_region", &json!({}))?;
    let r = s
        .store
        .region(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("region", &id))?;
    json(StatusCode::OK, json!({"region": s.region_view(&r)}))
}

async fn update_region(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_region", &json!({}))?;
    let r = s.update_region(&id, &body).await?;
    json(StatusCode::OK, json!({"region": s.region_view(&r)}))
}

async fn delete_region(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_region", &json!({}))?;
    if s.store
        .regions()
        .await?
        .iter()
        .any(|r| r.parent_region_id.as_deref() == Some(&id))
    {
        return Err(IdentityError::ForbiddenMessage(
            "Unable to delete region because it or its child regions have associated endpoints."
                .into(),
        ));
    }
    if !s.store.delete_region(&id).await? {
        return Err(IdentityError::not_found("region", id));
    }
    s.changed().await?;
    no_content()
}

async fn list_services(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_services", &json!({}))?;
    let items = s
        .store
        .services()
        .await?
        .iter()
        .map(|x| s.service_view(x))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "services",
            "/services",
            filter_list(items, &q.0, &["type", "name", "enabled"]),
        ),
    )
}

async fn create_service(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_service", &json!({}))?;
    let svc = s.prepare_service(&body)?;
    s.store.insert_service(&svc).await?;
    s.changed().await?;
    json(
        StatusCode::CREATED,
        json!({"service": s.service_view(&svc)}),
    )
}

async fn get_service(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_service", &json!({}))?;
    let svc = s
        .store
        .service(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("service", &id))?;
    json(StatusCode::OK, json!({"service": s.service_view(&svc)}))
}

async fn update_service(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_service", &json!({}))?;
    let svc = s.update_service(&id, &body).await?;
    json(StatusCode::OK, json!({"service": s.service_view(&svc)}))
}

async fn delete_service(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_service", &json!({}))?;
    if !s.store.delete_service(&id).await? {
        return Err(IdentityError::not_found("service", id));
    }
    s.changed().await?;
    no_content()
}

async fn list_endpoints(AxState(s): AxState<State>, caller: Caller, q: QueryMap) -> HttpResult {
    s.authorize(caller.ctx(), "identity:list_endpoints", &json!({}))?;
    let items = s
        .store
        .endpoints()
        .await?
        .iter()
        .map(|e| s.endpoint_view(e))
        .collect();
    json(
        StatusCode::OK,
        s.collection(
            "endpoints",
            "/endpoints",
            filter_list(
                items,
                &q.0,
                &["interface", "service_id", "region_id", "enabled"],
            ),
        ),
    )
}

async fn create_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:create_endpoint", &json!({}))?;
    let e = s.prepare_endpoint(&body, None).await?;
    s.store.insert_endpoint(&e).await?;
    s.changed().await?;
    json(
        StatusCode::CREATED,
        json!({"endpoint": s.endpoint_view(&e)}),
    )
}

async fn get_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:get_endpoint", &json!({}))?;
    let e = s
        .store
        .endpoint(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("endpoint", &id))?;
    json(StatusCode::OK, json!({"endpoint": s.endpoint_view(&e)}))
}

async fn update_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:update_endpoint", &json!({}))?;
    let current = s
        .store
        .endpoint(&id)
        .await?
        .ok_or_else(|| IdentityError::not_found("endpoint", &id))?;
    let e = s.prepare_endpoint(&body, Some(current)).await?;
    s.store.update_endpoint(&e).await?;
    s.changed().await?;
    json(StatusCode::OK, json!({"endpoint": s.endpoint_view(&e)}))
}

async fn delete_endpoint(
    AxState(s): AxState<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> HttpResult {
    s.authorize(caller.ctx(), "identity:delete_endpoint", &json!({}))?;
    if !s.store.delete_endpoint(&id).await? {
        return Err(IdentityError::not_found("endpoint", id));
    }
    s.changed().await?;
    no_content()
}
