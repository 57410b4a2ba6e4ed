//! Writes the `clouds.yaml` that lets the `openstack` CLI and openstacksdk use this cloud
//! with `--os-cloud ferrostack` (the demo user) or `--os-cloud ferrostack-admin`.
//! Other clouds already in a user's clouds.yaml are kept.

use std::path::Path;

use anyhow::Context;
use serde_yaml_ng::{Mapping, Value};

pub struct CloudEntry<'a> {
    pub name: &'a str,
    pub auth_url: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub project: &'a str,
    pub region: &'a str,
}

fn entry(c: &CloudEntry) -> Value {
    let yaml = format!(
        "auth:\n  auth_url: {auth}\n  username: {user}\n  password: {pw}\n  project_name: {project}\n  user_domain_id: default\n  project_domain_id: default\nregion_name: {region}\nidentity_api_version: 3\ninterface: public\n",
        auth = serde_json::to_string(c.auth_url).unwrap_or_default(),
        user = serde_json::to_string(c.user).unwrap_or_default(),
        pw = serde_json::to_string(c.password).unwrap_or_default(),
        project = serde_json::to_string(c.project).unwrap_or_default(),
        region = serde_json::to_string(c.region).unwrap_or_default(),
    );
    serde_yaml_ng::from_str(&yaml).unwrap_or(Value::Null)
}

/// Adds or replaces `clouds` in the clouds.yaml at `path`, creating it (mode 0600: it holds
/// passwords) when missing.
pub fn write(path: &Path, clouds: &[CloudEntry]) -> anyhow::Result<()> {
    let mut doc: Mapping = match std::fs::read_to_string(path) {
        Ok(text) => serde_yaml_ng::from_str(&text).unwrap_or_default(),
        Err(_) => Mapping::new(),
    };
    let key = Value::String("clouds".into());
    let mut all = doc
        .get(&key)
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for c in clouds {
        all.insert(Value::String(c.name.into()), entry(c));
    }
    doc.insert(key, Value::Mapping(all));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_yaml_ng::to_string(&doc)?;
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_into_an_existing_file_and_keeps_other_clouds() {
        let dir = std::env::temp_dir().join(format!("fs-clouds-{}", std::process::id()));
        let path = dir.join("openstack/clouds.yaml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "clouds:\n  other:\n    auth:\n      auth_url: http://elsewhere/v3\n",
        )
        .unwrap();
        let entry = |name, password| CloudEntry {
            name,
            auth_url: "http://127.0.0.1:5000/identity/v3",
            user: "admin",
            password,
            project: "admin",
            region: "RegionOne",
        };
        write(&path, &[entry("ferrostack-admin", "p: \"quoted\"")]).unwrap();
        write(&path, &[entry("ferrostack-admin", "second")]).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            doc["clouds"]["other"]["auth"]["auth_url"],
            Value::String("http://elsewhere/v3".into())
        );
        let ours = &doc["clouds"]["ferrostack-admin"];
        assert_eq!(ours["auth"]["password"], Value::String("second".into()));
        assert_eq!(
            ours["auth"]["user_domain_id"],
            Value::String("default".into())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
