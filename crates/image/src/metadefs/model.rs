//! The records of the metadata definitions catalog. Timestamps are microseconds.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub id: String,
    /// The unique name clients address it by (`OS::Compute::Libvirt`).
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `public` or `private`.
    pub visibility: String,
    /// A protected namespace and its contents cannot be deleted.
    pub protected: bool,
    pub owner: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A namespace with everything it holds, as the show call and create answer.
#[derive(Debug, Clone)]
pub struct NamespaceDetail {
    pub namespace: Namespace,
    pub associations: Vec<Association>,
    pub objects: Vec<MetaObject>,
    pub properties: Vec<Property>,
    pub tags: Vec<Tag>,
}

/// A named group of property definitions (`CPU Limits`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetaObject {
    pub name: String,
    pub description: Option<String>,
    pub required: Vec<String>,
    /// Property name to its definition (a JSON schema fragment).
    pub properties: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One property definition: its name and the JSON schema fragment describing its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub schema: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A namespace applies to a resource type (`OS::Glance::Image`), optionally with a prefix
/// the property names take on that resource (`hw_`).
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}
