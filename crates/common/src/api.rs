//! Declaring an API once: [`Api`] adds each operation to the axum router and records it
//! (method, path, operation id, summary, success status, whether it needs a token), and
//! [`Api::openapi`] turns the record into an OpenAPI 3.1 document. Because the document is
//! generated from the same calls that build the router, a route cannot exist without being
//! documented; each service checks its generated document into the repo and a test fails
//! when code and file drift.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde_json::{json, Map, Value};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: &'static str,
    pub path: String,
    pub id: String,
    pub summary: String,
    pub status: u16,
    pub authenticated: bool,
}

/// A router under construction plus the record of its operations.
pub struct Api<S> {
    router: Router<S>,
    ops: Vec<Operation>,
}

/// What to call an operation: `op("list_users", "List users")`.
pub struct Op {
    id: String,
    summary: String,
    status: u16,
    authenticated: bool,
}

pub fn op(id: &str, summary: &str) -> Op {
    Op {
        id: id.to_string(),
        summary: summary.to_string(),
        status: 200,
        authenticated: true,
    }
}

impl Op {
    /// The success status, when not 200.
    pub fn status(mut self, status: u16) -> Op {
        self.status = status;
        self
    }

    /// The operation needs no `X-Auth-Token` (version discovery, issuing tokens).
    pub fn public(mut self) -> Op {
        self.authenticated = false;
        self
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Api<S> {
    fn default() -> Self {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    pub fn new() -> Self {
        Self::default()
    }

    fn add<H, T>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &str,
        op: Op,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.ops.push(Operation {
            method,
            path: path.to_string(),
            id: op.id,
            summary: op.summary,
            status: op.status,
            authenticated: op.authenticated,
        });
        self
    }

    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("get", MethodFilter::GET, path, op, h)
    }

    /// HEAD with its own policy (GET routes also answer HEAD without a body).
    pub fn head<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("head", MethodFilter::HEAD, path, op, h)
    }

    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("post", MethodFilter::POST, path, op, h)
    }

    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("put", MethodFilter::PUT, path, op, h)
    }

    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("patch", MethodFilter::PATCH, path, op, h)
    }

    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &str, op: Op, h: H) -> Self {
        self.add("delete", MethodFilter::DELETE, path, op, h)
    }

    pub fn merge(mut self, other: Api<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }

    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    pub fn into_parts(self) -> (Router<S>, Vec<Operation>) {
        (self.router, self.ops)
    }

    pub fn openapi(&self, title: &str, version: &str, server_prefix: &str) -> Value {
        openapi(&self.ops, title, version, server_prefix)
    }
}

/// The OpenAPI 3.1 document of `ops`, with paths relative to `server_prefix`.
pub fn openapi(ops: &[Operation], title: &str, version: &str, server_prefix: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut sorted: Vec<&Operation> = ops.iter().collect();
    sorted.sort_by(|a, b| (a.path.as_str(), a.method).cmp(&(b.path.as_str(), b.method)));
    for o in sorted {
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "operationId": o.id,
            "summary": o.summary,
            "responses": {
                o.status.to_string(): {"description": "Success"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        });
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if !o.authenticated {
            operation["security"] = json!([]);
        }
        if matches!(o.method, "post" | "put" | "patch") {
            operation["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(o.path.clone()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": server_prefix}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "responses": {"Error": {"description": "An error in the service's OpenStack error format", "content": {"application/json": {"schema": {"type": "object"}}}}},
        },
    })
}

/// Compares a generated document with the checked-in file; with `FERROSTACK_UPDATE_OPENAPI=1`
/// rewrites the file instead. Returns an explanation when they differ.
pub fn check_document(generated: &Value, file: &std::path::Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(generated).map_err(|e| e.to_string())? + "\n";
    if std::env::var("FERROSTACK_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(file, &text).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let current = std::fs::read_to_string(file).unwrap_or_default();
    if current == text {
        Ok(())
    } else {
        Err(format!(
            "{} is out of date with the routes in the code; regenerate it with FERROSTACK_UPDATE_OPENAPI=1 cargo test",
            file.display()
        ))
    }
}
