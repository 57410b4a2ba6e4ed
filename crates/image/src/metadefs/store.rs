//! All SQL of the metadata definitions catalog. Children of a namespace are keyed by the
//! namespace's id; deleting a namespace removes them in the same transaction.

use ferrostack_db::sqlx::{self, any::AnyRow, Row};
use ferrostack_db::{Db, RowExt, Tx};
use serde_json::{Map, Value};

use super::model::*;

type R<T> = Result<T, sqlx::Error>;

fn json_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn namespace(r: AnyRow) -> Namespace {
    Namespace {
        id: r.get("id"),
        namespace: r.get("namespace"),
        display_name: r.get("display_name"),
        description: r.get("description"),
        visibility: r.get("visibility"),
        protected: r.flag("protected"),
        owner: r.get("owner"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn object(r: AnyRow) -> MetaObject {
    MetaObject {
        name: r.get("name"),
        description: r.get("description"),
        required: serde_json::from_str(&r.get::<String, _>("required")).unwrap_or_default(),
        properties: json_map(&r.get::<String, _>("properties")),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn property(r: AnyRow) -> Property {
    Property {
        name: r.get("name"),
        schema: json_map(&r.get::<String, _>("json_schema")),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn tag(r: AnyRow) -> Tag {
    Tag {
        name: r.get("name"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn association(r: AnyRow) -> Association {
    Association {
        name: r.get("resource_type"),
        prefix: r.get("prefix"),
        properties_target: r.get("properties_target"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Clone, Copy)]
pub struct MetadefStore<'a> {
    pub db: &'a Db,
}

/// The child tables of a namespace that hold named rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Objects,
    Properties,
    Tags,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Objects => "metadef_objects",
            Kind::Properties => "metadef_properties",
            Kind::Tags => "metadef_tags",
        }
    }
}

impl MetadefStore<'_> {
    pub async fn namespace(&self, name: &str) -> R<Option<Namespace>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_namespaces WHERE namespace=$1")
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .map(namespace),
        )
    }

    /// Namespaces `project` may see (public ones and its own); `None` reads all of them.
    pub async fn namespaces(&self, project: Option<&str>) -> R<Vec<Namespace>> {
        let rows = match project {
            None => {
                sqlx::query("SELECT * FROM metadef_namespaces")
                    .fetch_all(self.db.pool())
                    .await?
            }
            Some(p) => {
                sqlx::query(
                    "SELECT * FROM metadef_namespaces WHERE visibility='public' OR owner=$1",
                )
                .bind(p)
                .fetch_all(self.db.pool())
                .await?
            }
        };
        Ok(rows.into_iter().map(namespace).collect())
    }

    /// Every association, keyed by namespace id (for list views and the resource type filter).
    pub async fn all_associations(&self) -> R<Vec<(String, Association)>> {
        Ok(sqlx::query(
            "SELECT * FROM metadef_namespace_resource_types ORDER BY created_at, resource_type",
        )
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>("namespace_id"), association(r)))
        .collect())
    }

    /// Creates a namespace with its initial contents in one transaction.
    pub async fn insert_namespace(&self, d: &NamespaceDetail) -> R<()> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        let ns = &d.namespace;
        sqlx::query(
            "INSERT INTO metadef_namespaces (id, namespace, display_name, description, visibility, protected, owner, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        )
        .bind(&ns.id).bind(&ns.namespace).bind(&ns.display_name).bind(&ns.description).bind(&ns.visibility)
        .bind(ns.protected).bind(&ns.owner).bind(ns.created_at).bind(ns.updated_at)
        .execute(&mut *tx).await?;
        for a in &d.associations {
            insert_association(&mut tx, &ns.id, a).await?;
        }
        for o in &d.objects {
            insert_object(&mut tx, &ns.id, o).await?;
        }
        for p in &d.properties {
            insert_property(&mut tx, &ns.id, p).await?;
        }
        for t in &d.tags {
            insert_tag(&mut tx, &ns.id, t).await?;
        }
        tx.commit().await
    }

    pub async fn update_namespace(&self, ns: &Namespace) -> R<bool> {
        let n = sqlx::query(
            "UPDATE metadef_namespaces SET namespace=$2, display_name=$3, description=$4, visibility=$5, protected=$6, owner=$7, updated_at=$8 WHERE id=$1",
        )
        .bind(&ns.id).bind(&ns.namespace).bind(&ns.display_name).bind(&ns.description).bind(&ns.visibility)
        .bind(ns.protected).bind(&ns.owner).bind(ns.updated_at)
        .execute(self.db.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    pub async fn delete_namespace(&self, id: &str) -> R<bool> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        for table in [
            "metadef_objects",
            "metadef_properties",
            "metadef_tags",
            "metadef_namespace_resource_types",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE namespace_id=$1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let n = sqlx::query("DELETE FROM metadef_namespaces WHERE id=$1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Removes every row of one kind from a namespace.
    pub async fn delete_all(&self, kind: Kind, namespace_id: &str) -> R<()> {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE namespace_id=$1",
            kind.table()
        ))
        .bind(namespace_id)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    pub async fn delete_named(&self, kind: Kind, namespace_id: &str, name: &str) -> R<bool> {
        let n = sqlx::query(&format!(
            "DELETE FROM {} WHERE namespace_id=$1 AND name=$2",
            kind.table()
        ))
        .bind(namespace_id)
        .bind(name)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn count(&self, kind: Kind, namespace_id: &str) -> R<i64> {
        sqlx::query(&format!(
            "SELECT COUNT(*) FROM {} WHERE namespace_id=$1",
            kind.table()
        ))
        .bind(namespace_id)
        .fetch_one(self.db.pool())
        .await
        .map(|r| r.get::<i64, _>(0))
    }

    pub async fn objects(&self, namespace_id: &str) -> R<Vec<MetaObject>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_objects WHERE namespace_id=$1 ORDER BY name")
                .bind(namespace_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(object)
                .collect(),
        )
    }

    pub async fn object(&self, namespace_id: &str, name: &str) -> R<Option<MetaObject>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_objects WHERE namespace_id=$1 AND name=$2")
                .bind(namespace_id)
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .map(object),
        )
    }

    pub async fn insert_object(&self, namespace_id: &str, o: &MetaObject) -> R<()> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        insert_object(&mut tx, namespace_id, o).await?;
        tx.commit().await
    }

    /// Replaces the object called `old_name` (which may be renamed).
    pub async fn update_object(
        &self,
        namespace_id: &str,
        old_name: &str,
        o: &MetaObject,
    ) -> R<bool> {
        let n = sqlx::query(
            "UPDATE metadef_objects SET name=$3, description=$4, required=$5, properties=$6, updated_at=$7 WHERE namespace_id=$1 AND name=$2",
        )
        .bind(namespace_id).bind(old_name).bind(&o.name).bind(&o.description)
        .bind(Value::from(o.required.clone()).to_string()).bind(Value::Object(o.properties.clone()).to_string())
        .bind(o.updated_at)
        .execute(self.db.pool()).await?.rows_affected();
        Ok(n > 0)
    }

    pub async fn properties(&self, namespace_id: &str) -> R<Vec<Property>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_properties WHERE namespace_id=$1 ORDER BY name")
                .bind(namespace_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(property)
                .collect(),
        )
    }

    pub async fn property(&self, namespace_id: &str, name: &str) -> R<Option<Property>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_properties WHERE namespace_id=$1 AND name=$2")
                .bind(namespace_id)
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .map(property),
        )
    }

    pub async fn insert_property(&self, namespace_id: &str, p: &Property) -> R<()> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        insert_property(&mut tx, namespace_id, p).await?;
        tx.commit().await
    }

    pub async fn update_property(
        &self,
        namespace_id: &str,
        old_name: &str,
        p: &Property,
    ) -> R<bool> {
        let n = sqlx::query(
            "UPDATE metadef_properties SET name=$3, json_schema=$4, updated_at=$5 WHERE namespace_id=$1 AND name=$2",
        )
        .bind(namespace_id)
        .bind(old_name)
        .bind(&p.name)
        .bind(Value::Object(p.schema.clone()).to_string())
        .bind(p.updated_at)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn tags(&self, namespace_id: &str) -> R<Vec<Tag>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_tags WHERE namespace_id=$1 ORDER BY name")
                .bind(namespace_id)
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(tag)
                .collect(),
        )
    }

    pub async fn tag(&self, namespace_id: &str, name: &str) -> R<Option<Tag>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_tags WHERE namespace_id=$1 AND name=$2")
                .bind(namespace_id)
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .map(tag),
        )
    }

    /// Adds tags in one transaction; with `replace`, the namespace's other tags go first.
    pub async fn insert_tags(&self, namespace_id: &str, tags: &[Tag], replace: bool) -> R<()> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        if replace {
            sqlx::query("DELETE FROM metadef_tags WHERE namespace_id=$1")
                .bind(namespace_id)
                .execute(&mut *tx)
                .await?;
        }
        for t in tags {
            insert_tag(&mut tx, namespace_id, t).await?;
        }
        tx.commit().await
    }

    pub async fn rename_tag(
        &self,
        namespace_id: &str,
        old_name: &str,
        name: &str,
        now: i64,
    ) -> R<bool> {
        let n = sqlx::query(
            "UPDATE metadef_tags SET name=$3, updated_at=$4 WHERE namespace_id=$1 AND name=$2",
        )
        .bind(namespace_id)
        .bind(old_name)
        .bind(name)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub async fn resource_types(&self) -> R<Vec<ResourceType>> {
        Ok(
            sqlx::query("SELECT * FROM metadef_resource_types ORDER BY created_at, name")
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .map(|r| ResourceType {
                    name: r.get("name"),
                    created_at: r.get("created_at"),
                    updated_at: r.get("updated_at"),
                })
                .collect(),
        )
    }

    pub async fn resource_type_exists(&self, name: &str) -> R<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM metadef_resource_types WHERE name=$1")
                .bind(name)
                .fetch_optional(self.db.pool())
                .await?
                .is_some(),
        )
    }

    pub async fn associations(&self, namespace_id: &str) -> R<Vec<Association>> {
        Ok(sqlx::query(
            "SELECT * FROM metadef_namespace_resource_types WHERE namespace_id=$1 ORDER BY created_at, resource_type",
        )
        .bind(namespace_id)
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(association)
        .collect())
    }

    pub async fn insert_association(&self, namespace_id: &str, a: &Association) -> R<()> {
        let mut tx = self.db.begin().await.map_err(db_err)?;
        insert_association(&mut tx, namespace_id, a).await?;
        tx.commit().await
    }

    pub async fn delete_association(&self, namespace_id: &str, resource_type: &str) -> R<bool> {
        let n = sqlx::query(
            "DELETE FROM metadef_namespace_resource_types WHERE namespace_id=$1 AND resource_type=$2",
        )
        .bind(namespace_id)
        .bind(resource_type)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}

fn db_err(e: ferrostack_db::DbError) -> sqlx::Error {
    match e {
        ferrostack_db::DbError::Sqlx(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Adds the association, creating its resource type first when the catalog lacks it (as
/// Glance does).
async fn insert_association(tx: &mut Tx<'static>, namespace_id: &str, a: &Association) -> R<()> {
    let known = sqlx::query("SELECT 1 FROM metadef_resource_types WHERE name=$1")
        .bind(&a.name)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !known {
        sqlx::query("INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES ($1, $2, $3, $3)")
            .bind(&a.name)
            .bind(false)
            .bind(a.created_at)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO metadef_namespace_resource_types (namespace_id, resource_type, prefix, properties_target, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6)",
    )
    .bind(namespace_id).bind(&a.name).bind(&a.prefix).bind(&a.properties_target).bind(a.created_at).bind(a.updated_at)
    .execute(&mut **tx).await.map(drop)
}

async fn insert_object(tx: &mut Tx<'static>, namespace_id: &str, o: &MetaObject) -> R<()> {
    sqlx::query(
        "INSERT INTO metadef_objects (id, namespace_id, name, description, required, properties, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
    )
    .bind(new_id()).bind(namespace_id).bind(&o.name).bind(&o.description)
    .bind(Value::from(o.required.clone()).to_string()).bind(Value::Object(o.properties.clone()).to_string())
    .bind(o.created_at).bind(o.updated_at)
    .execute(&mut **tx).await.map(drop)
}

async fn insert_property(tx: &mut Tx<'static>, namespace_id: &str, p: &Property) -> R<()> {
    sqlx::query(
        "INSERT INTO metadef_properties (id, namespace_id, name, json_schema, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6)",
    )
    .bind(new_id())
    .bind(namespace_id)
    .bind(&p.name)
    .bind(Value::Object(p.schema.clone()).to_string())
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut **tx)
    .await
    .map(drop)
}

async fn insert_tag(tx: &mut Tx<'static>, namespace_id: &str, t: &Tag) -> R<()> {
    sqlx::query(
        "INSERT INTO metadef_tags (id, namespace_id, name, created_at, updated_at) VALUES ($1,$2,$3,$4,$5)",
    )
    .bind(new_id())
    .bind(namespace_id)
    .bind(&t.name)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(&mut **tx)
    .await
    .map(drop)
}
