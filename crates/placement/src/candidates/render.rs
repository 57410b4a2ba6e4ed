//! The `GET /allocation_candidates` body for each microversion:
//!
//! * `allocation_requests`: before 1.12 a list per candidate of
//!   `{"resource_provider": {"uuid"}, "resources"}`; from 1.12 a dict keyed by provider
//!   uuid (the body of `PUT /allocations/{consumer}`); from 1.34 with `mappings`
//!   (group suffix → provider uuids).
//! * `provider_summaries`: `resources` with `capacity` and `used` (only the requested
//!   classes before 1.27, all of the provider's from it), `traits` from 1.17,
//!   `parent_provider_uuid` and `root_provider_uuid` from 1.29.

use serde_json::{json, Map, Value};

use super::{CandidateRequest, Candidates};
use crate::microversion::Microversion;
use crate::model::{Provider, Snapshot};

/// Writes the response body for `c` at `mv`.
pub fn render(snap: &Snapshot, c: &Candidates, req: &CandidateRequest, mv: Microversion) -> Value {
    let uuid_of = |id: i64| snap.get(id).map_or("", |p| p.uuid.as_str());
    let mut requests = Vec::with_capacity(c.requests.len());
    for r in &c.requests {
        // Resources grouped per provider; `r.resources` is sorted by provider.
        let mut per_provider: Vec<(i64, Map<String, Value>)> = Vec::new();
        for &(p, ci, amount) in &r.resources {
            if per_provider.last().is_none_or(|(last, _)| *last != p) {
                per_provider.push((p, Map::new()));
            }
            let m = &mut per_provider.last_mut().expect("pushed").1;
            m.insert(c.classes[ci as usize].clone(), json!(amount));
        }
        let body = if mv.at_least(12) {
            let mut allocations = Map::new();
            for (p, res) in per_provider {
                allocations.insert(uuid_of(p).to_string(), json!({ "resources": res }));
            }
            let mut one = Map::new();
            one.insert("allocations".into(), Value::Object(allocations));
            if mv.at_least(34) {
                let mut mappings: Map<String, Value> = Map::new();
                for &(gi, p) in &r.mappings {
                    let suffix = req
                        .groups
                        .get(gi as usize)
                        .map_or("", |g| g.suffix.as_str());
                    let entry = mappings
                        .entry(suffix.to_string())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = entry {
                        list.push(json!(uuid_of(p)));
                    }
                }
                one.insert("mappings".into(), Value::Object(mappings));
            }
            Value::Object(one)
        } else {
            let list: Vec<Value> = per_provider
                .into_iter()
                .map(|(p, res)| json!({ "resource_provider": { "uuid": uuid_of(p) }, "resources": res }))
                .collect();
            json!({ "allocations": list })
        };
        requests.push(body);
    }

    let mut summaries = Map::new();
    for &id in &c.summaries {
        let Some(p) = snap.get(id) else { continue };
        summaries.insert(p.uuid.clone(), summary(snap, p, c, mv));
    }
    json!({
        "allocation_requests": requests,
        "provider_summaries": summaries,
    })
}

fn summary(snap: &Snapshot, p: &Provider, c: &Candidates, mv: Microversion) -> Value {
    let all_classes = mv.at_least(27);
    let mut resources = Map::new();
    for (class, inv) in &p.inventories {
        if !all_classes && c.classes.binary_search(class).is_err() {
            continue;
        }
        resources.insert(
            class.clone(),
            json!({ "capacity": inv.capacity(), "used": p.used(class) }),
        );
    }
    let mut out = Map::new();
    out.insert("resources".into(), Value::Object(resources));
    if mv.at_least(17) {
        out.insert("traits".into(), json!(p.traits));
    }
    if mv.at_least(29) {
        let uuid = |id: i64| snap.get(id).map(|x| x.uuid.clone());
        out.insert(
            "parent_provider_uuid".into(),
            json!(p.parent.and_then(uuid)),
        );
        out.insert("root_provider_uuid".into(), json!(uuid(p.root)));
    }
    Value::Object(out)
}
