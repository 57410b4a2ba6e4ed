//! How identity records look on the wire. One function per resource; collections get
//! Keystone's `links` block. Passwords, secrets and hashes never appear here except the
//! application credential secret in its create response (as Keystone shows it once).

use ferrostack_common::time::{iso_micros, iso_naive_micros};
use ferrostack_common::Scope;
use serde_json::{json, Map, Value};

use crate::model::*;
use crate::service::{Identity, ValidatedToken};

fn with_extra(mut base: Map<String, Value>, extra: &Extra) -> Value {
    for (k, v) in extra {
        base.entry(k.clone()).or_insert(v.clone());
    }
    Value::Object(base)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Identity {
    pub fn link(&self, path: &str) -> Value {
        json!({"self": format!("{}{}", self.v3_url(), path)})
    }

    /// A list response. With `list_limit` configured, longer lists are cut and say
    /// `"truncated": true`, as Keystone's do (Keystone has no marker paging on v3 lists).
    pub fn collection(&self, key: &str, path: &str, mut items: Vec<Value>) -> Value {
        let mut body = json!({"links": {"self": format!("{}{}", self.v3_url(), path), "previous": null, "next": null}});
        if let Some(limit) = self.config.list_limit {
            if items.len() > limit {
                items.truncate(limit);
                body["truncated"] = json!(true);
            }
        }
        body[key] = Value::Array(items);
        body
    }

    pub fn domain_view(&self, d: &Domain) -> Value {
        with_extra(
            obj(
                json!({"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled, "tags": d.tags, "options": d.options, "links": self.link(&format!("/domains/{}", d.id))}),
            ),
            &d.extra,
        )
    }

    pub fn project_view(&self, p: &Project) -> Value {
        with_extra(
            obj(json!({
                "id": p.id, "name": p.name, "domain_id": p.domain_id,
                "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone()),
                "description": p.description, "enabled": p.enabled, "is_domain": false,
                "tags": p.tags, "options": p.options, "links": self.link(&format!("/projects/{}", p.id)),
            })),
            &p.extra,
        )
    }

    /// A domain seen as the project that acts as it (`is_domain: true`).
    pub fn domain_project_view(&self, d: &Domain) -> Value {
        with_extra(
            obj(json!({
                "id": d.id, "name": d.name, "domain_id": null, "parent_id": null,
                "description": d.description, "enabled": d.enabled, "is_domain": true,
                "tags": d.tags, "options": d.options, "links": self.link(&format!("/projects/{}", d.id)),
            })),
            &d.extra,
        )
    }

    pub fn user_view(&self, u: &User) -> Value {
        let mut m = obj(json!({
            "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
            "password_expires_at": u.password_expires_at.map(iso_naive_micros),
            "options": u.options, "links": self.link(&format!("/users/{}", u.id)),
        }));
        if let Some(p) = &u.default_project_id {
            m.insert("default_project_id".into(), json!(p));
        }
        with_extra(m, &u.extra)
    }

    pub fn group_view(&self, g: &Group) -> Value {
        with_extra(
            obj(
                json!({"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description, "links": self.link(&format!("/groups/{}", g.id))}),
            ),
            &g.extra,
        )
    }

    pub fn role_view(&self, r: &Role) -> Value {
        with_extra(
            obj(
                json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description, "options": r.options, "links": self.link(&format!("/roles/{}", r.id))}),
            ),
            &r.extra,
        )
    }

    pub fn region_view(&self, r: &Region) -> Value {
        with_extra(
            obj(
                json!({"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id, "links": self.link(&format!("/regions/{}", r.id))}),
            ),
            &r.extra,
        )
    }

    pub fn service_view(&self, s: &Service) -> Value {
        with_extra(
            obj(
                json!({"id": s.id, "type": s.service_type, "name": s.name, "description": s.description, "enabled": s.enabled, "links": self.link(&format!("/services/{}", s.id))}),
            ),
            &s.extra,
        )
    }

    pub fn endpoint_view(&self, e: &Endpoint) -> Value {
        with_extra(
            obj(json!({
                "id": e.id, "service_id": e.service_id, "interface": e.interface, "region_id": e.region_id,
                "region": e.region_id, "url": e.url, "enabled": e.enabled, "links": self.link(&format!("/endpoints/{}", e.id)),
            })),
            &e.extra,
        )
    }

    pub async fn app_cred_view(&self, c: &AppCred) -> Value {
        let mut roles = Vec::new();
        for id in &c.roles {
            if let Ok(Some(r)) = self.store.role(id).await {
                roles.push(json!({"id": r.id, "name": r.name, "domain_id": r.domain_id}));
            }
        }
        json!({
            "id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
            "project_id": c.project_id, "expires_at": c.expires_at.map(iso_naive_micros),
            "unrestricted": c.unrestricted, "roles": roles, "access_rules": c.access_rules,
            "links": self.link(&format!("/users/{}/application_credentials/{}", c.user_id, c.id)),
        })
    }

    pub fn credential_view(&self, c: &Credential) -> Value {
        with_extra(
            obj(json!({
                "id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.credential_type,
                "blob": c.blob, "links": self.link(&format!("/credentials/{}", c.id)),
            })),
            &c.extra,
        )
    }

    /// An ec2 credential as the OS-EC2 API shows it: the blob's keys at the top level.
    pub fn ec2_view(&self, c: &Credential) -> Value {
        let blob: Value = serde_json::from_str(&c.blob).unwrap_or(Value::Null);
        let access = blob.get("access").cloned().unwrap_or(Value::Null);
        json!({
            "user_id": c.user_id, "tenant_id": c.project_id,
            "access": access, "secret": blob.get("secret"),
            "trust_id": blob.get("trust_id"),
            "links": {"self": format!("{}/users/{}/credentials/OS-EC2/{}", self.v3_url(), c.user_id, access.as_str().unwrap_or_default())},
        })
    }

    /// The catalog as tokens show it, with `$(project_id)s`-style URL templates filled in.
    pub async fn catalog_view(&self, project_id: Option<&str>) -> crate::error::Result<Value> {
        let catalog = self.catalog().await?;
        let (services, endpoints) = (&catalog.services, &catalog.endpoints);
        // A project with OS-EP-FILTER associations sees those endpoints only.
        let only = project_id.and_then(|p| catalog.project_endpoints.get(p));
        let mut out = Vec::new();
        for s in services.iter().filter(|s| s.enabled) {
            let eps: Vec<Value> = endpoints
                .iter()
                .filter(|e| e.service_id == s.id && e.enabled)
                .filter(|e| only.is_none_or(|ids| ids.contains(&e.id)))
                .filter_map(|e| {
                    let mut url = e.url.clone();
                    for pat in ["$(project_id)s", "%(project_id)s", "$(tenant_id)s", "%(tenant_id)s"] {
                        if url.contains(pat) {
                            url = url.replace(pat, project_id?);
                        }
                    }
                    Some(json!({"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id, "url": url}))
                })
                .collect();
            if only.is_some() && eps.is_empty() {
                continue;
            }
            out.push(json!({"id": s.id, "type": s.service_type, "name": s.name, "endpoints": eps}));
        }
        Ok(Value::Array(out))
    }

    /// The `token` object of `POST`/`GET /v3/auth/tokens`.
    pub async fn token_view(
        &self,
        t: &ValidatedToken,
        include_catalog: bool,
    ) -> crate::error::Result<Value> {
        let ctx = &t.ctx;
        let mut token = obj(json!({
            "methods": ctx.methods,
            "user": {
                "id": ctx.user_id, "name": ctx.user_name,
                "domain": {"id": ctx.user_domain_id, "name": ctx.user_domain_name},
                "password_expires_at": t.password_expires_at.map(iso_naive_micros),
            },
            "audit_ids": ctx.audit_ids,
            "expires_at": iso_micros(t.payload.expires_at * 1_000_000),
            "issued_at": iso_micros(t.payload.issued_at / 1_000_000 * 1_000_000),
        }));
        let scoped = match &ctx.scope {
            Scope::Unscoped => false,
            Scope::Project {
                id,
                name,
                domain_id,
                domain_name,
            } => {
                token.insert("project".into(), json!({"id": id, "name": name, "domain": {"id": domain_id, "name": domain_name}}));
                token.insert("is_domain".into(), json!(false));
                true
            }
            Scope::Domain { id, name } => {
                token.insert("domain".into(), json!({"id": id, "name": name}));
                true
            }
            Scope::System => {
                token.insert("system".into(), json!({"all": true}));
                true
            }
        };
        if scoped {
            token.insert(
                "roles".into(),
                Value::Array(
                    t.roles
                        .iter()
                        .map(|r| json!({"id": r.id, "name": r.name}))
                        .collect(),
                ),
            );
            if include_catalog {
                token.insert("catalog".into(), self.catalog_view(ctx.project_id()).await?);
            }
        }
        if let Some(tr) = &t.trust {
            token.insert(
                "OS-TRUST:trust".into(),
                json!({
                    "id": tr.id, "impersonation": tr.impersonation,
                    "trustor_user": {"id": tr.trustor_user_id},
                    "trustee_user": {"id": tr.trustee_user_id},
                }),
            );
        }
        if let Some(c) = &t.app_cred {
            let mut ac = obj(json!({"id": c.id, "name": c.name, "restricted": !c.unrestricted}));
            if !c.access_rules.is_empty() {
                ac.insert("access_rules".into(), json!(c.access_rules));
            }
            token.insert("application_credential".into(), Value::Object(ac));
        }
        Ok(json!({ "token": token }))
    }
}

/// Keystone's list filters: exact matches on the named attributes (booleans accept
/// true/false/1/0) and the `__contains`/`__startswith`/`__endswith` forms (`i` prefix for
/// case-insensitive) on strings. Unknown parameters are ignored, as Keystone ignores them.
pub fn filter_list(
    items: Vec<Value>,
    query: &std::collections::HashMap<String, String>,
    attrs: &[&str],
) -> Vec<Value> {
    items
        .into_iter()
        .filter(|item| {
            query.iter().all(|(k, want)| {
                let (attr, op) = match k.split_once("__") {
                    Some((a, op)) => (a, Some(op)),
                    None => (k.as_str(), None),
                };
                if !attrs.contains(&attr) {
                    return true;
                }
                let got = item.get(attr);
                match op {
                    None => match got {
                        Some(Value::Bool(b)) => {
                            let w = want.to_ascii_lowercase();
                            *b == !matches!(w.as_str(), "0" | "false" | "no" | "off")
                        }
                        Some(Value::String(s)) => s == want,
                        Some(Value::Null) | None => {
                            want.is_empty() || want == "null" || want == "None"
                        }
                        Some(Value::Number(n)) => n.to_string() == *want,
                        Some(_) => false,
                    },
                    Some(op) => {
                        let Some(s) = got.and_then(Value::as_str) else {
                            return false;
                        };
                        let (s, w) = if op.starts_with('i') {
                            (s.to_lowercase(), want.to_lowercase())
                        } else {
                            (s.to_string(), want.clone())
                        };
                        match op.trim_start_matches('i') {
                            "contains" => s.contains(&w),
                            "startswith" => s.starts_with(&w),
                            "endswith" => s.ends_with(&w),
                            _ => true,
                        }
                    }
                }
            })
        })
        .collect()
}
