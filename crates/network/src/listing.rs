//! Neutron's generic list behaviour, the same for every collection: any attribute as a
//! filter (a repeated parameter means any of the values), tag filters, `fields=`
//! selection, `sort_key`/`sort_dir`, and `limit`/`marker`/`page_reverse` paging with
//! `<collection>_links`. It works on the rendered views, so a filter matches exactly what
//! the client sees.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::error::{NetworkError, Result};

const RESERVED: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "verbose",
];

#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// All pairs as sent, for the links.
    pub pairs: Vec<(String, String)>,
    pub filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    pub sorts: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    tags: Vec<String>,
    tags_any: Vec<String>,
    not_tags: Vec<String>,
    not_tags_any: Vec<String>,
}

fn tag_list(values: Vec<&str>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl ListQuery {
    pub fn parse(pairs: &[(String, String)], max_limit: usize) -> Result<ListQuery> {
        let all = |key: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let mut q = ListQuery {
            pairs: pairs.to_vec(),
            ..Default::default()
        };
        for (k, v) in pairs {
            if RESERVED.contains(&k.as_str()) {
                continue;
            }
            match q.filters.iter_mut().find(|(fk, _)| fk == k) {
                Some((_, vs)) => vs.push(v.clone()),
                None => q.filters.push((k.clone(), vec![v.clone()])),
            }
        }
        q.fields = all("fields")
            .iter()
            .flat_map(|f| f.split(','))
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        let keys = all("sort_key");
        let dirs = all("sort_dir");
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(NetworkError::bad_request(
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        for (i, k) in keys.iter().enumerate() {
            let asc = match dirs.get(i).copied().unwrap_or("asc") {
                "asc" => true,
                "desc" => false,
                other => {
                    return Err(NetworkError::bad_request(format!(
                        "{other} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
                    )))
                }
            };
            q.sorts.push((k.to_string(), asc));
        }
        if let Some(l) = all("limit").last() {
            let n: i64 = l.parse().map_err(|_| {
                NetworkError::bad_request(format!(
                    "Limit must be an integer 0 or greater and not '{l}'"
                ))
            })?;
            if n < 0 {
                return Err(NetworkError::bad_request(format!(
                    "Limit must be an integer 0 or greater and not '{l}'"
                )));
            }
            q.limit = (n > 0).then_some(n as usize);
        }
        if max_limit > 0 {
            q.limit = Some(q.limit.map_or(max_limit, |l| l.min(max_limit)));
        }
        q.marker = all("marker").last().map(|s| s.to_string());
        q.page_reverse = all("page_reverse")
            .last()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        q.tags = tag_list(all("tags"));
        q.tags_any = tag_list(all("tags-any"));
        q.not_tags = tag_list(all("not-tags"));
        q.not_tags_any = tag_list(all("not-tags-any"));
        Ok(q)
    }

    fn matches(&self, item: &Value) -> bool {
        for (key, wanted) in &self.filters {
            // Filters on attributes this resource does not show are ignored, as Neutron
            // does without the filter-validation extension.
            let Some(value) = item.get(key) else { continue };
            if key == "fixed_ips" {
                if !fixed_ips_match(value, wanted) {
                    return false;
                }
                continue;
            }
            if !wanted.iter().any(|w| value_matches(value, w)) {
                return false;
            }
        }
        let tags: Vec<&str> = item
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |t: &String| tags.contains(&t.as_str());
        (self.tags.is_empty() || self.tags.iter().all(has))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && (self.not_tags_any.is_empty() || !self.not_tags_any.iter().any(has))
    }

    /// Filters, sorts and pages `items`; the page and whether more items lie beyond it in
    /// the direction of travel.
    pub fn apply(&self, items: Vec<Value>) -> Result<(Vec<Value>, bool)> {
        let mut items: Vec<Value> = items.into_iter().filter(|i| self.matches(i)).collect();
        if let Some(first) = items.first() {
            for (k, _) in &self.sorts {
                if first.get(k).is_none() {
                    return Err(NetworkError::bad_request(format!(
                        "{k} is an invalid attribute for sort_keys"
                    )));
                }
            }
        }
        items.sort_by(|a, b| {
            for (k, asc) in &self.sorts {
                let o = compare(a.get(k), b.get(k));
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            compare(a.get("id"), b.get("id"))
        });
        if self.page_reverse {
            items.reverse();
        }
        if let Some(m) = &self.marker {
            if let Some(pos) = items
                .iter()
                .position(|i| i.get("id").and_then(Value::as_str) == Some(m))
            {
                items.drain(..=pos);
            }
        }
        let mut more = false;
        if let Some(limit) = self.limit {
            if items.len() > limit {
                items.truncate(limit);
                more = true;
            }
        }
        if self.page_reverse {
            items.reverse();
        }
        Ok((items, more))
    }

    /// Keeps only the requested fields of `item` (all when none were requested).
    pub fn select(&self, item: Value) -> Value {
        if self.fields.is_empty() {
            return item;
        }
        match item {
            Value::Object(map) => {
                let mut out = Map::new();
                for f in &self.fields {
                    if let Some(v) = map.get(f) {
                        out.insert(f.clone(), v.clone());
                    }
                }
                Value::Object(out)
            }
            other => other,
        }
    }

    /// Neutron's `<collection>_links`: `next` when more items follow, `previous` when the
    /// page did not start at the beginning.
    pub fn links(&self, url: &str, page: &[Value], more: bool) -> Vec<Value> {
        if self.limit.is_none() || page.is_empty() {
            return Vec::new();
        }
        let id = |v: &Value| {
            v.get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let href = |marker: String, reverse: bool| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.pairs {
                if !matches!(k.as_str(), "marker" | "page_reverse" | "limit") {
                    ser.append_pair(k, v);
                }
            }
            ser.append_pair("limit", &self.limit.unwrap_or_default().to_string());
            ser.append_pair("marker", &marker);
            if reverse {
                ser.append_pair("page_reverse", "True");
            }
            format!("{url}?{}", ser.finish())
        };
        let mut links = Vec::new();
        let (has_next, has_previous) = if self.page_reverse {
            (self.marker.is_some(), more)
        } else {
            (more, self.marker.is_some())
        };
        if has_next {
            links.push(json!({"rel": "next", "href": href(id(page.last().unwrap()), false)}));
        }
        if has_previous {
            links.push(json!({"rel": "previous", "href": href(id(&page[0]), true)}));
        }
        links
    }
}

/// Neutron's `fixed_ips` filter: `ip_address=`, `subnet_id=` and `ip_address_substr=`
/// values; values of one kind are alternatives, kinds must all match.
fn fixed_ips_match(value: &Value, wanted: &[String]) -> bool {
    let ips = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut kinds: Vec<&str> = Vec::new();
    for w in wanted {
        if let Some((k, _)) = w.split_once('=') {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    if kinds.is_empty() {
        return false;
    }
    kinds.iter().all(|kind| {
        wanted
            .iter()
            .filter_map(|w| w.split_once('=').filter(|(k, _)| k == kind).map(|(_, v)| v))
            .any(|v| {
                ips.iter().any(|ip| match *kind {
                    "ip_address_substr" => ip
                        .get("ip_address")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a.contains(v)),
                    k => ip.get(k).is_some_and(|x| value_matches(x, v)),
                })
            })
    })
}

fn value_matches(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Bool(b) => match wanted.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => wanted.parse::<f64>().ok() == n.as_f64(),
        Value::Null => wanted.is_empty() || wanted == "None",
        Value::Array(items) => items.iter().any(|i| match i {
            // `fixed_ips=ip_address=10.0.0.5` or `fixed_ips=subnet_id=...`
            Value::Object(o) => match wanted.split_once('=') {
                Some((k, v)) => o.get(k).is_some_and(|x| value_matches(x, v)),
                None => false,
            },
            other => value_matches(other, wanted),
        }),
        Value::Object(_) => false,
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    fn items() -> Vec<Value> {
        (1..=5)
            .map(|i| json!({"id": format!("id{i}"), "name": format!("n{}", 6 - i), "shared": i % 2 == 0, "tags": if i < 3 {vec!["a"]} else {vec!["b"]}, "fixed_ips": [{"ip_address": format!("10.0.0.{i}"), "subnet_id": "s"}]}))
            .collect()
    }

    fn ids(v: &[Value]) -> Vec<&str> {
        v.iter().map(|i| i["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn filters_sort_and_page() {
        let q = ListQuery::parse(&pairs("shared=True&name=n1&name=n2"), 0).unwrap();
        assert_eq!(ids(&q.apply(items()).unwrap().0), vec!["id4"]);
        let q = ListQuery::parse(&pairs("fixed_ips=ip_address%3D10.0.0.3"), 0).unwrap();
        assert_eq!(ids(&q.apply(items()).unwrap().0), vec!["id3"]);
        let q = ListQuery::parse(&pairs("fixed_ips=ip_address%3D10.0.0.3&fixed_ips=ip_address%3D10.0.0.4&fixed_ips=subnet_id%3Ds"), 0).unwrap();
        assert_eq!(ids(&q.apply(items()).unwrap().0), vec!["id3", "id4"]);
        let q = ListQuery::parse(
            &pairs("fixed_ips=ip_address%3D10.0.0.3&fixed_ips=subnet_id%3Dother"),
            0,
        )
        .unwrap();
        assert!(
            q.apply(items()).unwrap().0.is_empty(),
            "kinds must all match"
        );
        let q = ListQuery::parse(&pairs("fixed_ips=ip_address_substr%3D0.0.5"), 0).unwrap();
        assert_eq!(ids(&q.apply(items()).unwrap().0), vec!["id5"]);
        let q = ListQuery::parse(&pairs("tags-any=a&not-tags=zz"), 0).unwrap();
        assert_eq!(ids(&q.apply(items()).unwrap().0), vec!["id1", "id2"]);
        let q = ListQuery::parse(&pairs("sort_key=name&sort_dir=asc&limit=2"), 0).unwrap();
        let (page, more) = q.apply(items()).unwrap();
        assert_eq!((ids(&page), more), (vec!["id5", "id4"], true));
        let links = q.links("http://x/v2.0/networks", &page, more);
        assert_eq!(links.len(), 1);
        assert!(links[0]["href"].as_str().unwrap().contains("marker=id4"));
        let q =
            ListQuery::parse(&pairs("sort_key=name&sort_dir=asc&limit=2&marker=id4"), 0).unwrap();
        let (page, more) = q.apply(items()).unwrap();
        assert_eq!((ids(&page), more), (vec!["id3", "id2"], true));
        assert_eq!(q.links("u", &page, more).len(), 2);
        let q = ListQuery::parse(
            &pairs("sort_key=name&sort_dir=asc&limit=2&marker=id3&page_reverse=True"),
            0,
        )
        .unwrap();
        let (page, more) = q.apply(items()).unwrap();
        assert_eq!((ids(&page), more), (vec!["id5", "id4"], false));
        assert!(ListQuery::parse(&pairs("sort_key=name&sort_dir=up"), 0).is_err());
        assert!(ListQuery::parse(&pairs("sort_key=nope"), 0)
            .unwrap()
            .apply(items())
            .is_err());
        let q = ListQuery::parse(&pairs("fields=id&fields=name"), 0).unwrap();
        assert_eq!(
            q.select(items()[0].clone()),
            json!({"id": "id1", "name": "n5"})
        );
    }
}
