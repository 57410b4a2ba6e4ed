//! SQL of domain-specific configuration: a domain's options as rows of
//! (group, option, JSON value, sensitive). Writes run in one transaction so a refused or
//! failed request leaves the previous configuration whole.

use ferrostack_db::sqlx::{self, any::AnyRow, Row};
use ferrostack_db::RowExt;

use super::{Store, R};
use crate::model::DomainConfigOption;

fn config_option(r: AnyRow) -> DomainConfigOption {
    let value: String = r.get("value");
    DomainConfigOption {
        group: r.get("config_group"),
        option: r.get("config_option"),
        value: serde_json::from_str(&value).unwrap_or(serde_json::Value::Null),
        sensitive: r.flag("sensitive"),
    }
}

impl Store {
    /// Every option of the domain's configuration, sensitive ones included.
    pub async fn domain_config(&self, domain_id: &str) -> R<Vec<DomainConfigOption>> {
        Ok(sqlx::query(
            "SELECT * FROM domain_configs WHERE domain_id=$1 ORDER BY config_group, config_option",
        )
        .bind(domain_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(config_option)
        .collect())
    }

    /// Writes `options` into the domain's configuration; with `replace`, the options not
    /// given are removed first (a PUT), otherwise they stay (a PATCH).
    pub async fn write_domain_config(
        &self,
        domain_id: &str,
        options: &[DomainConfigOption],
        replace: bool,
    ) -> R<()> {
        let mut tx = self.pool().begin().await?;
        if replace {
            sqlx::query("DELETE FROM domain_configs WHERE domain_id=$1")
                .bind(domain_id)
                .execute(&mut *tx)
                .await?;
        }
        for o in options {
            sqlx::query(
                "DELETE FROM domain_configs WHERE domain_id=$1 AND config_group=$2 AND config_option=$3",
            )
            .bind(domain_id)
            .bind(&o.group)
            .bind(&o.option)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO domain_configs (domain_id, config_group, config_option, value, sensitive) VALUES ($1,$2,$3,$4,$5)")
                .bind(domain_id)
                .bind(&o.group)
                .bind(&o.option)
                .bind(o.value.to_string())
                .bind(o.sensitive)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Removes the whole configuration, one group of it, or one option; the rows removed.
    pub async fn delete_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> R<u64> {
        let q = match (group, option) {
            (Some(g), Some(o)) => sqlx::query(
                "DELETE FROM domain_configs WHERE domain_id=$1 AND config_group=$2 AND config_option=$3",
            )
            .bind(domain_id)
            .bind(g)
            .bind(o),
            (Some(g), None) => {
                sqlx::query("DELETE FROM domain_configs WHERE domain_id=$1 AND config_group=$2")
                    .bind(domain_id)
                    .bind(g)
            }
            _ => sqlx::query("DELETE FROM domain_configs WHERE domain_id=$1").bind(domain_id),
        };
        Ok(q.execute(self.pool()).await?.rows_affected())
    }
}
