//! SQL of OAuth1 consumers. The secret column holds what the service gives it (sealed).

use ferrostack_db::sqlx::{self, any::AnyRow, Row};

use super::{map, text, Store, R};
use crate::model::OauthConsumer;

fn consumer(r: AnyRow) -> OauthConsumer {
    OauthConsumer {
        id: r.get("id"),
        description: r.get("description"),
        secret: r.get("secret"),
        extra: map(r.get("extra")),
    }
}

impl Store {
    pub async fn insert_consumer(&self, c: &OauthConsumer) -> R<()> {
        sqlx::query("INSERT INTO oauth_consumers (id, description, secret, extra, created_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(&c.id)
            .bind(&c.description)
            .bind(&c.secret)
            .bind(text(&c.extra))
            .bind(ferrostack_common::time::now_micros())
            .execute(self.pool())
            .await
            .map(drop)
    }

    /// Changes the description and extra attributes (never the id or the secret).
    pub async fn update_consumer(&self, c: &OauthConsumer) -> R<()> {
        sqlx::query("UPDATE oauth_consumers SET description=$2, extra=$3 WHERE id=$1")
            .bind(&c.id)
            .bind(&c.description)
            .bind(text(&c.extra))
            .execute(self.pool())
            .await
            .map(drop)
    }

    pub async fn consumer(&self, id: &str) -> R<Option<OauthConsumer>> {
        Ok(sqlx::query("SELECT * FROM oauth_consumers WHERE id=$1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(consumer))
    }

    pub async fn consumers(&self) -> R<Vec<OauthConsumer>> {
        Ok(
            sqlx::query("SELECT * FROM oauth_consumers ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .map(consumer)
                .collect(),
        )
    }

    pub async fn delete_consumer(&self, id: &str) -> R<bool> {
        Ok(sqlx::query("DELETE FROM oauth_consumers WHERE id=$1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }
}
