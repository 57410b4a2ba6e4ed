//! The request schemas of the Placement API per microversion: the shapes and limits
//! upstream Placement enforces on bodies and on some queries, built once each.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::service::providers::MAX_INT;

const UUID_PATTERN: &str = "^[0-9a-fA-F-]{36}$";
/// Resource class and trait names.
const NAME_PATTERN: &str = "^[A-Z0-9_]+$";
const CUSTOM_PATTERN: &str = "^CUSTOM_[A-Z0-9_]+$";
/// Request group suffixes in allocation `mappings` (1.33 and later).
const GROUP_PATTERN: &str = "[a-zA-Z0-9_-]{1,64}";
/// Largest allocation ratio the database's single-precision column holds.
const SQL_FLOAT_MAX: f64 = 3.40282e38;

macro_rules! once {
    ($name:ident, $body:expr) => {
        pub fn $name() -> &'static Value {
            static CELL: OnceLock<Value> = OnceLock::new();
            CELL.get_or_init(|| $body)
        }
    };
}

fn bounded_int(min: i64) -> Value {
    json!({"type": "integer", "maximum": MAX_INT, "minimum": min})
}

fn inventory_record(required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "total": bounded_int(1),
            "reserved": bounded_int(0),
            "min_unit": bounded_int(1),
            "max_unit": bounded_int(1),
            "step_size": bounded_int(1),
            "allocation_ratio": {"type": "number", "maximum": SQL_FLOAT_MAX},
        },
        "required": required,
        "additionalProperties": false,
    })
}

// `PUT /resource_providers/{uuid}/inventories/{class}`.
once!(
    put_inventory,
    inventory_record(&["total", "resource_provider_generation"])
);

// `POST /resource_providers/{uuid}/inventories`: no generation, the class in the body.
once!(post_inventory, {
    let mut s = inventory_record(&["total", "resource_class"]);
    s["properties"]["resource_class"] = json!({"type": "string", "pattern": NAME_PATTERN});
    s
});

// `PUT /resource_providers/{uuid}/inventories`.
once!(
    put_inventories,
    json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "inventories": {
                "type": "object",
                "patternProperties": {NAME_PATTERN: inventory_record(&["total"])},
            },
        },
        "required": ["resource_provider_generation", "inventories"],
        "additionalProperties": false,
    })
);

fn provider_body(creating: bool, with_parent: bool) -> Value {
    let mut s = json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 200}},
        "required": ["name"],
        "additionalProperties": false,
    });
    if creating {
        s["properties"]["uuid"] = json!({"type": "string", "format": "uuid"});
    }
    if with_parent {
        s["properties"]["parent_provider_uuid"] =
            json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]});
    }
    s
}

once!(post_provider, provider_body(true, false));
once!(post_provider_1_14, provider_body(true, true));
once!(put_provider, provider_body(false, false));
once!(put_provider_1_14, provider_body(false, true));

/// `POST`/`PUT` of a provider at microversion `minor`.
pub fn provider(creating: bool, minor: u32) -> &'static Value {
    match (creating, minor >= 14) {
        (true, false) => post_provider(),
        (true, true) => post_provider_1_14(),
        (false, false) => put_provider(),
        (false, true) => put_provider_1_14(),
    }
}

fn trait_name(custom: bool) -> Value {
    let mut s = json!({"type": "string", "minLength": 1, "maxLength": 255});
    if custom {
        s["pattern"] = json!(CUSTOM_PATTERN);
    }
    s
}

// `PUT /resource_providers/{uuid}/traits`.
once!(
    set_provider_traits,
    json!({
        "type": "object",
        "properties": {
            "traits": {"type": "array", "items": trait_name(false)},
            "resource_provider_generation": {"type": "integer"},
        },
        "required": ["traits", "resource_provider_generation"],
        "additionalProperties": false,
    })
);

fn aggregate_list() -> Value {
    json!({"type": "array", "items": {"type": "string", "format": "uuid"}, "uniqueItems": true})
}

once!(put_aggregates_1_1, aggregate_list());
once!(
    put_aggregates_1_19,
    json!({
        "type": "object",
        "properties": {
            "aggregates": aggregate_list(),
            "resource_provider_generation": {"type": "integer"},
        },
        "required": ["aggregates", "resource_provider_generation"],
        "additionalProperties": false,
    })
);

/// `PUT /resource_providers/{uuid}/aggregates` at microversion `minor`.
pub fn aggregates(minor: u32) -> &'static Value {
    if minor >= 19 {
        put_aggregates_1_19()
    } else {
        put_aggregates_1_1()
    }
}

// `POST /resource_classes`, and `PUT /resource_classes/{name}` up to 1.6 (a body with
// the new name).
once!(
    resource_class,
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255}},
        "required": ["name"],
        "additionalProperties": false,
    })
);

// A resource class name in a URL: what `PUT /resource_classes/{name}` from 1.7 checks.
once!(
    custom_class_name,
    json!({"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255})
);

// A trait name in a URL (`PUT /traits/{name}`).
once!(custom_trait_name, trait_name(true));

fn id_string() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

/// The query of `GET /usages` at microversion `minor`.
pub fn usages_query(minor: u32) -> &'static Value {
    static OLD: OnceLock<Value> = OnceLock::new();
    static NEW: OnceLock<Value> = OnceLock::new();
    let build = |with_type: bool| {
        let mut s = json!({
            "type": "object",
            "properties": {"project_id": id_string(), "user_id": id_string()},
            "required": ["project_id"],
            "additionalProperties": false,
        });
        if with_type {
            s["properties"]["consumer_type"] = json!({"type": "string", "pattern": "^[A-Z0-9_]+$|^all|^unknown$", "minLength": 1, "maxLength": 255});
        }
        s
    };
    if minor >= 38 {
        NEW.get_or_init(|| build(true))
    } else {
        OLD.get_or_init(|| build(false))
    }
}

fn resources() -> Value {
    json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": {NAME_PATTERN: {"type": "integer", "minimum": 1}},
        "additionalProperties": false,
    })
}

/// The allocations of one consumer as `PUT /allocations/{consumer}` takes them at
/// microversion `minor` (and, from 1.13, as each consumer's entry of `POST /allocations`,
/// where an empty `allocations` deletes the consumer's).
fn consumer_allocations(minor: u32, in_post: bool) -> Value {
    if minor < 12 {
        let mut s = json!({
            "type": "object",
            "properties": {
                "allocations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "resource_provider": {
                                "type": "object",
                                "properties": {"uuid": {"type": "string", "format": "uuid"}},
                                "additionalProperties": false,
                                "required": ["uuid"],
                            },
                            "resources": resources(),
                        },
                        "required": ["resource_provider", "resources"],
                        "additionalProperties": false,
                    },
                },
            },
            "required": ["allocations"],
            "additionalProperties": false,
        });
        if minor >= 8 {
            s["properties"]["project_id"] = id_string();
            s["properties"]["user_id"] = id_string();
            s["required"] = json!(["allocations", "project_id", "user_id"]);
        }
        return s;
    }
    // From 1.28 on a PUT may empty a consumer's allocations as POST always could.
    let min_providers = if in_post || minor >= 28 { 0 } else { 1 };
    let mut s = json!({
        "type": "object",
        "properties": {
            "allocations": {
                "type": "object",
                "minProperties": min_providers,
                "patternProperties": {
                    UUID_PATTERN: {
                        "type": "object",
                        "properties": {
                            "generation": {"type": "integer"},
                            "resources": resources(),
                        },
                        "required": ["resources"],
                        "additionalProperties": false,
                    },
                },
                "additionalProperties": false,
            },
            "project_id": id_string(),
            "user_id": id_string(),
        },
        "additionalProperties": false,
        "required": ["allocations", "project_id", "user_id"],
    });
    let mut required = vec!["allocations", "project_id", "user_id"];
    if minor >= 28 {
        s["properties"]["consumer_generation"] = json!({"type": ["integer", "null"]});
        required.push("consumer_generation");
    }
    if minor >= 34 {
        s["properties"]["mappings"] = json!({
            "type": "object",
            "minProperties": 1,
            "patternProperties": {
                GROUP_PATTERN: {"type": "array", "minItems": 1, "items": {"type": "string", "format": "uuid"}},
            },
        });
    }
    if minor >= 38 {
        s["properties"]["consumer_type"] =
            json!({"type": "string", "pattern": NAME_PATTERN, "minLength": 1, "maxLength": 255});
        required.push("consumer_type");
    }
    s["required"] = json!(required);
    s
}

/// Schemas that differ per microversion, built on first use for each version.
fn per_version(
    cells: &'static [OnceLock<Value>; 40],
    minor: u32,
    build: impl FnOnce() -> Value,
) -> &'static Value {
    cells[(minor as usize).min(39)].get_or_init(build)
}

/// `PUT /allocations/{consumer}` at microversion `minor`.
pub fn put_allocations(minor: u32) -> &'static Value {
    static CELLS: [OnceLock<Value>; 40] = [const { OnceLock::new() }; 40];
    per_version(&CELLS, minor, || consumer_allocations(minor, false))
}

/// `POST /allocations` (1.13 and later) at microversion `minor`.
pub fn post_allocations(minor: u32) -> &'static Value {
    static CELLS: [OnceLock<Value>; 40] = [const { OnceLock::new() }; 40];
    per_version(&CELLS, minor, || {
        json!({
            "type": "object",
            "minProperties": 1,
            "additionalProperties": false,
            "patternProperties": {UUID_PATTERN: consumer_allocations(minor, true)},
        })
    })
}
