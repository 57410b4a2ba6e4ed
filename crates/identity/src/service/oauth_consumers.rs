//! OAuth1 consumers (`/v3/OS-OAUTH1/consumers`): the clients that OAuth1 delegation is
//! granted to. A consumer is an id, an optional description, extra attributes and a secret
//! generated here and shown once, in the create response (as Keystone shows it). The secret
//! is kept sealed with the credential keys, because OAuth1 signatures need it in clear.
//! The request/access token flows are not served yet.

use serde_json::{Map, Value};

use crate::error::{IdentityError, Result};
use crate::model::OauthConsumer;
use crate::service::credentials::{open_blob, seal_blob};
use crate::service::resources::Input;
use crate::service::{new_id, Identity};

const KNOWN: &[&str] = &["id", "description", "secret"];

impl Identity {
    /// Creates a consumer; the returned record carries the secret in clear. A body without
    /// `consumer` makes a consumer with no description, as in Keystone.
    pub async fn create_consumer(&self, body: &Value) -> Result<OauthConsumer> {
        let empty = Value::Object(Map::from_iter([(
            "consumer".to_string(),
            Value::Object(Map::new()),
        )]));
        let body = if body.get("consumer").is_none() {
            &empty
        } else {
            body
        };
        let i = Input::from_body(body, "consumer")?;
        let c = OauthConsumer {
            id: new_id(),
            description: i.string("description", 65_535)?,
            secret: new_id(),
            extra: i.extra(KNOWN),
        };
        let mut sealed = c.clone();
        sealed.secret = seal_blob(&self.credential_keys, &c.secret);
        self.store.insert_consumer(&sealed).await?;
        self.changed().await?;
        Ok(c)
    }

    /// The consumer as stored (its secret sealed).
    pub async fn existing_consumer(&self, id: &str) -> Result<OauthConsumer> {
        self.store
            .consumer(id)
            .await?
            .ok_or_else(|| IdentityError::not_found("consumer", id))
    }

    /// The consumer's secret in clear, for verifying OAuth1 signatures.
    pub fn consumer_secret(&self, c: &OauthConsumer) -> Result<String> {
        open_blob(&self.credential_keys, &c.secret).ok_or_else(|| {
            IdentityError::Internal(anyhow::anyhow!(
                "consumer {} secret cannot be opened with the current credential keys",
                c.id
            ))
        })
    }

    /// Changes the description or extra attributes; the secret cannot be changed.
    pub async fn update_consumer(&self, id: &str, body: &Value) -> Result<OauthConsumer> {
        let i = Input::from_body(body, "consumer")?;
        if i.extra(&[]).is_empty() {
            return Err(IdentityError::bad(
                "Invalid input for field 'consumer': give at least one attribute to change.",
            ));
        }
        if i.has("secret") {
            return Err(IdentityError::bad(
                "Invalid input for field 'secret': a consumer's secret cannot be changed.",
            ));
        }
        if i.string("id", 64)?.is_some_and(|given| given != id) {
            return Err(IdentityError::bad(
                "Cannot change the ID of a consumer: the body's id differs from the URL's.",
            ));
        }
        let description = i.string("description", 65_535)?;
        let mut c = self.existing_consumer(id).await?;
        if i.has("description") {
            c.description = description;
        }
        c.extra.extend(i.extra(KNOWN));
        self.store.update_consumer(&c).await?;
        self.changed().await?;
        Ok(c)
    }

    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        if !self.store.delete_consumer(id).await? {
            return Err(IdentityError::not_found("consumer", id));
        }
        self.changed().await
    }
}
