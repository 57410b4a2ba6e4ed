//! The JSON schemas of the metadefs resources, served at `/v2/schemas/metadefs/*` with the
//! names and shapes Glance publishes (clients such as Horizon read them to build forms).

use serde_json::{json, Value};

const PROPERTY_TYPES: [Option<&str>; 7] = [
    Some("array"),
    Some("boolean"),
    Some("integer"),
    Some("number"),
    Some("object"),
    Some("string"),
    None,
];

fn timestamp(description: &str) -> Value {
    json!({"type": "string", "readOnly": true, "description": description, "format": "date-time"})
}

/// The attributes a property definition may have.
fn property_attributes() -> Value {
    json!({
        "name": {"type": "string", "maxLength": 255},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": PROPERTY_TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {"type": "object", "properties": {"type": {"type": "string", "enum": PROPERTY_TYPES}, "enum": {"type": "array"}}},
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": false},
        "additionalItems": {"type": "boolean"},
    })
}

fn definitions(with_property: bool) -> Value {
    let mut defs = json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
    });
    if with_property {
        defs["property"] = json!({
            "type": "object",
            "additionalProperties": {"type": "object", "required": ["title", "type"], "properties": property_attributes()},
        });
    }
    defs
}

fn collection(name: &str, member: &str, item: Value, definitions: Option<Value>) -> Value {
    let mut schema = json!({
        "name": name,
        "properties": {
            member: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}],
    });
    if let Some(defs) = definitions {
        schema["definitions"] = defs;
    }
    schema
}

fn without_definitions(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("definitions");
    }
    schema
}

pub fn namespace() -> Value {
    json!({
        "name": "namespace",
        "additionalProperties": false,
        "required": ["namespace"],
        "definitions": definitions(true),
        "properties": {
            "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
            "display_name": {"type": "string", "maxLength": 80, "description": "The user friendly name for the namespace. Used by UI if available."},
            "description": {"type": "string", "maxLength": 500, "description": "Provides a user friendly description of the namespace."},
            "visibility": {"type": "string", "enum": ["public", "private"], "description": "Scope of namespace accessibility."},
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
            "created_at": timestamp("Date and time of namespace creation"),
            "updated_at": timestamp("Date and time of the last namespace modification"),
            "schema": {"type": "string", "readOnly": true},
            "self": {"type": "string", "readOnly": true},
            "resource_type_associations": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "prefix": {"type": "string"}, "properties_target": {"type": "string"}}}},
            "properties": {"$ref": "#/definitions/property"},
            "objects": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "description": {"type": "string"},
                "required": {"$ref": "#/definitions/stringArray"}, "properties": {"$ref": "#/definitions/property"}}}},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
    })
}

pub fn namespaces() -> Value {
    collection(
        "namespaces",
        "namespaces",
        without_definitions(namespace()),
        Some(definitions(true)),
    )
}

pub fn object() -> Value {
    json!({
        "name": "object",
        "additionalProperties": false,
        "required": ["name"],
        "definitions": definitions(true),
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": {"type": "string", "readOnly": true},
            "self": {"type": "string", "readOnly": true},
            "created_at": timestamp("Date and time of object creation"),
            "updated_at": timestamp("Date and time of the last object modification"),
        },
    })
}

pub fn objects() -> Value {
    collection(
        "objects",
        "objects",
        without_definitions(object()),
        Some(definitions(true)),
    )
}

pub fn property() -> Value {
    json!({
        "name": "property",
        "additionalProperties": false,
        "required": ["type", "title", "name"],
        "definitions": definitions(false),
        "properties": property_attributes(),
    })
}

pub fn properties() -> Value {
    let mut item = without_definitions(property());
    item["required"] = json!(["type", "title"]);
    json!({
        "name": "properties",
        "definitions": definitions(false),
        "properties": {
            "properties": {"type": "object", "additionalProperties": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}],
    })
}

pub fn tag() -> Value {
    json!({
        "name": "tag",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "created_at": timestamp("Date and time of tag creation"),
            "updated_at": timestamp("Date and time of the last tag modification"),
        },
    })
}

pub fn tags() -> Value {
    collection("tags", "tags", tag(), None)
}

pub fn resource_type_association() -> Value {
    json!({
        "name": "resource_type_association",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 80, "description": "Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html"},
            "prefix": {"type": "string", "maxLength": 80, "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :)."},
            "properties_target": {"type": "string", "maxLength": 80, "description": "Some resource types allow more than one key / value pair per instance. For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity."},
            "created_at": timestamp("Date and time of resource type association"),
            "updated_at": timestamp("Date and time of the last resource type association modification"),
        },
    })
}

pub fn resource_type_associations() -> Value {
    collection(
        "resource_type_associations",
        "resource_type_associations",
        resource_type_association(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_carry_glance_names_and_resolvable_references() {
        for (schema, name) in [
            (namespace(), "namespace"),
            (namespaces(), "namespaces"),
            (object(), "object"),
            (objects(), "objects"),
            (property(), "property"),
            (properties(), "properties"),
            (tag(), "tag"),
            (tags(), "tags"),
            (resource_type_association(), "resource_type_association"),
            (resource_type_associations(), "resource_type_associations"),
        ] {
            assert_eq!(schema["name"], name);
            // Every "#/definitions/x" used must be defined at the top of the same document.
            let text = schema.to_string();
            for reference in text.split("\"#/definitions/").skip(1) {
                let def = reference.split('"').next().unwrap();
                assert!(
                    schema["definitions"].get(def).is_some(),
                    "{name}: {def} is undefined"
                );
            }
        }
    }
}
