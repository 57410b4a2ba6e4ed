//! Domain-specific configuration (`/v3/domains/{id}/config`), as Keystone serves it: a domain
//! may override the `[identity]` and `[ldap]` options that choose and configure its user
//! backend. Only Keystone's whitelisted options are accepted (anything else is 403, as in
//! Keystone); `[ldap] password` is sensitive: stored, never shown. ferrostack keeps users in
//! SQL whatever a domain's configuration says: the options are stored and served so clients
//! and tools that manage them work, and the defaults shown are this server's.
//!
//! A configuration reads as `{"group": {"option": value}}`; values keep their JSON type.

use serde_json::{json, Map, Value};

use crate::error::{IdentityError, Result};
use crate::model::DomainConfigOption;
use crate::service::Identity;

pub type Config = Map<String, Value>;

/// Options a domain may override, with the default each has on this server.
fn whitelisted(group: &str) -> Option<&'static [(&'static str, DefaultValue)]> {
    match group {
        "identity" => Some(IDENTITY_OPTIONS),
        "ldap" => Some(LDAP_OPTIONS),
        _ => None,
    }
}

const SENSITIVE: &[(&str, &str)] = &[("ldap", "password")];

/// The group that Keystone lets anyone read for the default domain (password rules).
pub const SECURITY_COMPLIANCE: &str = "security_compliance";

#[derive(Clone, Copy)]
enum DefaultValue {
    Null,
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(&'static [&'static str]),
    /// Read from this server's configuration.
    Server,
}

use DefaultValue::*;

const IDENTITY_OPTIONS: &[(&str, DefaultValue)] = &[("driver", Str("sql")), ("list_limit", Server)];

const LDAP_OPTIONS: &[(&str, DefaultValue)] = &[
    ("url", Str("ldap://localhost")),
    ("user", Null),
    ("suffix", Str("cn=example,cn=com")),
    ("query_scope", Str("one")),
    ("page_size", Int(0)),
    ("alias_dereferencing", Str("default")),
    ("debug_level", Null),
    ("chase_referrals", Null),
    ("user_tree_dn", Null),
    ("user_filter", Null),
    ("user_objectclass", Str("inetOrgPerson")),
    ("user_id_attribute", Str("cn")),
    ("user_name_attribute", Str("sn")),
    ("user_mail_attribute", Str("mail")),
    ("user_description_attribute", Str("description")),
    ("user_pass_attribute", Str("userPassword")),
    ("user_enabled_attribute", Str("enabled")),
    ("user_enabled_invert", Bool(false)),
    ("user_enabled_mask", Int(0)),
    ("user_enabled_default", Str("True")),
    ("user_attribute_ignore", List(&["default_project_id"])),
    ("user_default_project_id_attribute", Null),
    ("user_enabled_emulation", Bool(false)),
    ("user_enabled_emulation_dn", Null),
    ("user_enabled_emulation_use_group_config", Bool(false)),
    ("user_additional_attribute_mapping", List(&[])),
    ("group_tree_dn", Null),
    ("group_filter", Null),
    ("group_objectclass", Str("groupOfNames")),
    ("group_id_attribute", Str("cn")),
    ("group_name_attribute", Str("ou")),
    ("group_members_are_ids", Bool(false)),
    ("group_member_attribute", Str("member")),
    ("group_desc_attribute", Str("description")),
    ("group_attribute_ignore", List(&[])),
    ("group_additional_attribute_mapping", List(&[])),
    ("tls_cacertfile", Null),
    ("tls_cacertdir", Null),
    ("use_tls", Bool(false)),
    ("tls_req_cert", Str("demand")),
    ("use_pool", Bool(true)),
    ("pool_size", Int(10)),
    ("pool_retry_max", Int(3)),
    ("pool_retry_delay", Float(0.1)),
    ("pool_connection_timeout", Int(-1)),
    ("pool_connection_lifetime", Int(600)),
    ("use_auth_pool", Bool(true)),
    ("auth_pool_size", Int(100)),
    ("auth_pool_connection_lifetime", Int(60)),
];

fn invalid(reason: impl std::fmt::Display) -> IdentityError {
    IdentityError::ForbiddenMessage(format!("Invalid domain specific configuration: {reason}."))
}

fn is_sensitive(group: &str, option: &str) -> bool {
    SENSITIVE.contains(&(group, option))
}

/// Refuses a group or option Keystone does not let a domain override.
fn check_group_and_option(group: Option<&str>, option: Option<&str>) -> Result<()> {
    let Some(group) = group else {
        return Ok(());
    };
    let Some(options) = whitelisted(group) else {
        return Err(invalid(format_args!(
            "Group {group} is not supported for domain specific configurations"
        )));
    };
    if let Some(option) = option {
        if !options.iter().any(|(o, _)| *o == option) && !is_sensitive(group, option) {
            return Err(invalid(format_args!(
                "Option {option} in group {group} is not supported for domain specific configurations"
            )));
        }
    }
    Ok(())
}

/// Validates a request's `config` and flattens it into options.
fn options_of(config: &Config) -> Result<Vec<DomainConfigOption>> {
    if config.is_empty() {
        return Err(invalid("No options specified"));
    }
    let mut out = Vec::new();
    for (group, options) in config {
        let options = match options {
            Value::Object(o) if !o.is_empty() => o,
            _ => {
                return Err(invalid(format_args!(
                    "The value of group {group} specified in the config should be a dictionary of options"
                )))
            }
        };
        for (option, value) in options {
            check_group_and_option(Some(group), Some(option))?;
            out.push(DomainConfigOption {
                group: group.clone(),
                option: option.clone(),
                value: value.clone(),
                sensitive: is_sensitive(group, option),
            });
        }
    }
    Ok(out)
}

/// `{"group": {"option": value}}` from options, sensitive ones left out.
fn to_config(options: &[DomainConfigOption]) -> Config {
    let mut config = Config::new();
    for o in options.iter().filter(|o| !o.sensitive) {
        config
            .entry(o.group.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("groups are objects")
            .insert(o.option.clone(), o.value.clone());
    }
    config
}

fn missing(domain_id: &str, group: Option<&str>, option: Option<&str>) -> IdentityError {
    let what = match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_string(),
    };
    IdentityError::NotFoundMessage(format!(
        "Could not find {what} in domain configuration for domain {domain_id}."
    ))
}

/// Reads a request body's `config` object (absent reads as empty, as in Keystone).
pub fn config_in(body: &Value) -> Result<Config> {
    match body.get("config") {
        None | Some(Value::Null) => Ok(Config::new()),
        Some(Value::Object(c)) => Ok(c.clone()),
        Some(_) => Err(IdentityError::bad(
            "Invalid input for field 'config': expected an object.",
        )),
    }
}

impl Identity {
    fn default_value(&self, v: DefaultValue) -> Value {
        match v {
            Null => Value::Null,
            Str(s) => json!(s),
            Int(i) => json!(i),
            Float(f) => json!(f),
            Bool(b) => json!(b),
            List(l) => json!(l),
            Server => json!(self.config.list_limit),
        }
    }

    /// The defaults a domain's configuration overrides: all of them, one group's, or one
    /// option's (`{"option": value}`).
    pub fn domain_config_default(
        &self,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Config> {
        check_group_and_option(group, option)?;
        let groups: Vec<&str> = match group {
            Some(g) => vec![g],
            None => vec!["identity", "ldap"],
        };
        let mut config = Config::new();
        for g in groups {
            let options = whitelisted(g).unwrap_or_default();
            if let Some(o) = option {
                let Some((_, v)) = options.iter().find(|(name, _)| *name == o) else {
                    return Err(invalid(format_args!(
                        "Reading the default for option {o} in group {g} is not supported"
                    )));
                };
                config.insert(o.to_string(), self.default_value(*v));
                return Ok(config);
            }
            let values: Config = options
                .iter()
                .map(|(name, v)| (name.to_string(), self.default_value(*v)))
                .collect();
            config.insert(g.to_string(), Value::Object(values));
        }
        Ok(config)
    }

    /// A domain's configuration (sensitive options left out), one group of it, or one option
    /// (`{"option": value}`); 404 when there is nothing to show.
    pub async fn domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Config> {
        check_group_and_option(group, option)?;
        let options: Vec<DomainConfigOption> = self
            .store
            .domain_config(domain_id)
            .await?
            .into_iter()
            .filter(|o| !o.sensitive)
            .filter(|o| group.is_none_or(|g| o.group == g))
            .filter(|o| option.is_none_or(|name| o.option == name))
            .collect();
        if options.is_empty() {
            return Err(missing(domain_id, group, option));
        }
        if let Some(o) = options.first().filter(|_| option.is_some()) {
            let mut config = Config::new();
            config.insert(o.option.clone(), o.value.clone());
            return Ok(config);
        }
        Ok(to_config(&options))
    }

    /// Replaces the domain's configuration; also says whether it had one before (200 vs 201).
    pub async fn create_domain_config(
        &self,
        domain_id: &str,
        config: &Config,
    ) -> Result<(Config, bool)> {
        let options = options_of(config)?;
        let existed = !self.store.domain_config(domain_id).await?.is_empty();
        self.store
            .write_domain_config(domain_id, &options, true)
            .await?;
        self.changed().await?;
        Ok((to_config(&options), existed))
    }

    /// Merges `config` into the domain's configuration. With a group (and option) in the
    /// URL, the body must hold that group (that option) only, and it must already be set.
    /// For one option the body is `{"option": value}`. Answers the whole configuration.
    pub async fn update_domain_config(
        &self,
        domain_id: &str,
        config: Config,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Config> {
        let config = match (group, option) {
            (Some(g), Some(_)) => {
                let mut wrapped = Config::new();
                wrapped.insert(g.to_string(), Value::Object(config));
                wrapped
            }
            _ => config,
        };
        let options = options_of(&config)?;
        check_group_and_option(group, option)?;
        if let Some(g) = group {
            let only_group = config.len() == 1 && config.contains_key(g);
            let only_option = option.is_none_or(|o| options.len() == 1 && options[0].option == o);
            if !only_group || !only_option {
                return Err(invalid(match option {
                    Some(o) => format!("Trying to update option {o} in group {g}, so that, and only that, option must be specified in the config"),
                    None => format!("Trying to update group {g}, so that, and only that, group must be specified in the config"),
                }));
            }
            let current = self.store.domain_config(domain_id).await?;
            let exists = current
                .iter()
                .any(|o| o.group == g && option.is_none_or(|name| o.option == name));
            if !exists {
                return Err(missing(domain_id, group, option));
            }
        }
        self.store
            .write_domain_config(domain_id, &options, false)
            .await?;
        self.changed().await?;
        self.domain_config(domain_id, None, None).await
    }

    /// Removes the whole configuration, one group or one option; a group or option that is
    /// not set is 404.
    pub async fn delete_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<()> {
        check_group_and_option(group, option)?;
        let removed = self
            .store
            .delete_domain_config(domain_id, group, option)
            .await?;
        if removed == 0 && group.is_some() {
            return Err(missing(domain_id, group, option));
        }
        self.changed().await
    }

    /// The password rules of the default domain (`security_compliance`), which Keystone lets
    /// any user read so clients can explain them; other domains and options are 403.
    pub fn security_compliance_config(
        &self,
        domain_id: &str,
        option: Option<&str>,
    ) -> Result<Config> {
        if domain_id != "default" {
            return Err(invalid("Reading security compliance information for any domain other than the default domain is not allowed or supported"));
        }
        let rules = &self.config.security_compliance;
        let readable = [
            ("password_regex", json!(rules.password_regex)),
            (
                "password_regex_description",
                json!(rules.password_regex_description),
            ),
        ];
        let mut config = Config::new();
        match option {
            Some(o) => {
                let Some((name, v)) = readable.iter().find(|(name, _)| *name == o) else {
                    return Err(invalid("Reading security compliance values other than password_regex and password_regex_description is not allowed"));
                };
                config.insert(name.to_string(), v.clone());
            }
            None => {
                let values: Config = readable
                    .iter()
                    .map(|(name, v)| (name.to_string(), v.clone()))
                    .collect();
                config.insert(SECURITY_COMPLIANCE.to_string(), Value::Object(values));
            }
        }
        Ok(config)
    }
}
