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

/// The same body as [`render`], written straight to JSON text: no intermediate
/// `serde_json::Value` tree, so 10,000 candidates cost a few milliseconds instead of a
/// hundred. The HTTP handler should send this.
pub fn render_json(
    snap: &Snapshot,
    c: &Candidates,
    req: &CandidateRequest,
    mv: Microversion,
) -> String {
    let mut w = String::with_capacity(64 + c.requests.len() * 160 + c.summaries.len() * 220);
    let uuid_of = |id: i64| snap.get(id).map_or("", |p| p.uuid.as_str());
    w.push_str("{\"allocation_requests\":[");
    for (i, r) in c.requests.iter().enumerate() {
        if i > 0 {
            w.push(',');
        }
        if mv.at_least(12) {
            w.push_str("{\"allocations\":{");
        } else {
            w.push_str("{\"allocations\":[");
        }
        let mut last: Option<i64> = None;
        for &(p, ci, amount) in &r.resources {
            if last != Some(p) {
                if last.is_some() {
                    w.push_str("}},");
                }
                if mv.at_least(12) {
                    push_str_lit(&mut w, uuid_of(p));
                    w.push_str(":{\"resources\":{");
                } else {
                    w.push_str("{\"resource_provider\":{\"uuid\":");
                    push_str_lit(&mut w, uuid_of(p));
                    w.push_str("},\"resources\":{");
                }
                last = Some(p);
            } else {
                w.push(',');
            }
            push_str_lit(&mut w, &c.classes[ci as usize]);
            w.push(':');
            push_int(&mut w, amount);
        }
        if last.is_some() {
            w.push_str("}}");
        }
        if mv.at_least(12) {
            w.push('}');
            if mv.at_least(34) {
                w.push_str(",\"mappings\":{");
                let mut prev: Option<u16> = None;
                for &(gi, p) in &r.mappings {
                    if prev != Some(gi) {
                        if prev.is_some() {
                            w.push_str("],");
                        }
                        let suffix = req
                            .groups
                            .get(gi as usize)
                            .map_or("", |g| g.suffix.as_str());
                        push_str_lit(&mut w, suffix);
                        w.push_str(":[");
                        prev = Some(gi);
                    } else {
                        w.push(',');
                    }
                    push_str_lit(&mut w, uuid_of(p));
                }
                if prev.is_some() {
                    w.push(']');
                }
                w.push('}');
            }
            w.push('}');
        } else {
            w.push_str("]}");
        }
    }
    w.push_str("],\"provider_summaries\":{");
    let all_classes = mv.at_least(27);
    let mut first = true;
    for &id in &c.summaries {
        let Some(p) = snap.get(id) else { continue };
        if !first {
            w.push(',');
        }
        first = false;
        push_str_lit(&mut w, &p.uuid);
        w.push_str(":{\"resources\":{");
        let mut first_class = true;
        for (class, inv) in &p.inventories {
            if !all_classes && c.classes.binary_search(class).is_err() {
                continue;
            }
            if !first_class {
                w.push(',');
            }
            first_class = false;
            push_str_lit(&mut w, class);
            w.push_str(":{\"capacity\":");
            push_int(&mut w, inv.capacity());
            w.push_str(",\"used\":");
            push_int(&mut w, p.used(class));
            w.push('}');
        }
        w.push('}');
        if mv.at_least(17) {
            w.push_str(",\"traits\":[");
            for (i, t) in p.traits.iter().enumerate() {
                if i > 0 {
                    w.push(',');
                }
                push_str_lit(&mut w, t);
            }
            w.push(']');
        }
        if mv.at_least(29) {
            w.push_str(",\"parent_provider_uuid\":");
            match p.parent.and_then(|x| snap.get(x)) {
                Some(parent) => push_str_lit(&mut w, &parent.uuid),
                None => w.push_str("null"),
            }
            w.push_str(",\"root_provider_uuid\":");
            match snap.get(p.root) {
                Some(root) => push_str_lit(&mut w, &root.uuid),
                None => w.push_str("null"),
            }
        }
        w.push('}');
    }
    w.push_str("}}");
    w
}

/// A JSON string literal.
fn push_str_lit(w: &mut String, s: &str) {
    w.push('"');
    // Names and uuids are plain ASCII; escape anything else the way JSON requires.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        w.push_str(s);
    } else {
        for ch in s.chars() {
            match ch {
                '"' => w.push_str("\\\""),
                '\\' => w.push_str("\\\\"),
                '\n' => w.push_str("\\n"),
                '\r' => w.push_str("\\r"),
                '\t' => w.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    use std::fmt::Write;
                    let _ = write!(w, "\\u{:04x}", c as u32);
                }
                c => w.push(c),
            }
        }
    }
    w.push('"');
}

fn push_int(w: &mut String, n: i64) {
    use std::fmt::Write;
    let _ = write!(w, "{n}");
}
