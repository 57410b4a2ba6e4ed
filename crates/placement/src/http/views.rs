//! JSON views of providers, inventories and allocations, per microversion.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::microversion::Microversion;
use crate::model::{Inventory, Provider};
use crate::service::PlacementService;
use crate::store::AllocationRow;

pub fn provider(s: &PlacementService, p: &Provider, mv: Microversion, prefix: &str) -> Value {
    let base = format!("{prefix}/resource_providers/{}", p.uuid);
    let mut links = vec![
        json!({"rel": "self", "href": base}),
        json!({"rel": "inventories", "href": format!("{base}/inventories")}),
        json!({"rel": "usages", "href": format!("{base}/usages")}),
    ];
    if mv.at_least(1) {
        links.push(json!({"rel": "aggregates", "href": format!("{base}/aggregates")}));
    }
    if mv.at_least(6) {
        links.push(json!({"rel": "traits", "href": format!("{base}/traits")}));
    }
    if mv.at_least(11) {
        links.push(json!({"rel": "allocations", "href": format!("{base}/allocations")}));
    }
    let mut out = json!({
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": links,
    });
    if mv.at_least(14) {
        out["parent_provider_uuid"] = json!(p.parent.and_then(|id| s.provider_uuid(id)));
        out["root_provider_uuid"] =
            json!(s.provider_uuid(p.root).unwrap_or_else(|| p.uuid.clone()));
    }
    out
}

pub fn inventory(inv: &Inventory) -> Value {
    json!({
        "total": inv.total,
        "reserved": inv.reserved,
        "min_unit": inv.min_unit,
        "max_unit": inv.max_unit,
        "step_size": inv.step_size,
        "allocation_ratio": inv.allocation_ratio,
    })
}

pub fn inventories(p: &Provider) -> Value {
    let invs: Map<String, Value> = p
        .inventories
        .iter()
        .map(|(c, i)| (c.clone(), inventory(i)))
        .collect();
    json!({"resource_provider_generation": p.generation, "inventories": invs})
}

/// `GET /allocations/{consumer}`.
pub fn consumer_allocations(
    view: &crate::service::allocations::ConsumerView,
    mv: Microversion,
) -> Value {
    let mut allocations: BTreeMap<String, Value> = BTreeMap::new();
    for r in &view.rows {
        let entry = allocations
            .entry(r.provider_uuid.clone())
            .or_insert_with(|| json!({"generation": r.provider_generation, "resources": {}}));
        entry["resources"][&r.resource_class] = json!(r.used);
    }
    let mut out = json!({"allocations": allocations});
    if let (Some(c), true) = (&view.consumer, mv.at_least(12)) {
        out["project_id"] = json!(c.project_id);
        out["user_id"] = json!(c.user_id);
        if mv.at_least(28) {
            out["consumer_generation"] = json!(c.generation);
        }
        if mv.at_least(38) {
            out["consumer_type"] =
                json!(c.consumer_type.clone().unwrap_or_else(|| "unknown".into()));
        }
    }
    out
}

/// `GET /resource_providers/{uuid}/allocations`.
pub fn provider_allocations(
    p: &Provider,
    rows: &[AllocationRow],
    generations: &std::collections::HashMap<String, i64>,
    mv: Microversion,
) -> Value {
    let mut allocations: BTreeMap<String, Value> = BTreeMap::new();
    for r in rows {
        let entry = allocations
            .entry(r.consumer.clone())
            .or_insert_with(|| json!({"resources": {}}));
        entry["resources"][&r.resource_class] = json!(r.used);
        if mv.at_least(28) {
            entry["consumer_generation"] = json!(generations.get(&r.consumer));
        }
    }
    json!({"allocations": allocations, "resource_provider_generation": p.generation})
}
