//! The networks a new all-in-one cloud starts with, as DevStack makes them: `public`, an
//! external flat network on the physical network `public` (the bridge `br-ex`, whose host
//! address 172.24.4.1 is the subnet's gateway) with no DHCP; `private` (10.0.0.0/26) in the
//! demo project; and `router1`, the demo project's router from `private` to `public`, so a
//! server gets an address, reaches out through SNAT and can be given a floating IP.
//!
//! Each object is made only when no object of that name exists, so `up` may run again, and
//! an operator who deleted one is not overruled... until the next start; that is DevStack's
//! behaviour too (it seeds at every stack.sh).

use ferrostack_common::auth::{AuthContext, Scope};
use serde_json::{json, Value};

use crate::config::Config;
use crate::server::Services;

fn context(user_id: &str, project_id: &str, project: &str, admin: bool) -> AuthContext {
    let mut roles = vec!["reader".to_string(), "member".to_string()];
    if admin {
        roles.push("admin".into());
    }
    AuthContext {
        user_id: user_id.into(),
        user_name: String::new(),
        user_domain_id: "default".into(),
        user_domain_name: "Default".into(),
        scope: Scope::Project {
            id: project_id.into(),
            name: project.into(),
            domain_id: "default".into(),
            domain_name: "Default".into(),
        },
        roles,
        role_ids: vec![],
        methods: vec!["password".into()],
        audit_ids: vec![],
        expires_at: i64::MAX,
        application_credential_id: None,
        trust_id: None,
        is_admin_project: admin,
    }
}

fn id_of(v: &Value, kind: &str) -> anyhow::Result<String> {
    // The service returns the object itself (the HTTP layer wraps it in `{kind: ...}`).
    v.get(kind)
        .unwrap_or(v)
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no id in the created {kind}"))
}

/// Finds an object by name among `items` (a list the service returned).
fn named(items: &[Value], name: &str, project_id: &str) -> Option<String> {
    items
        .iter()
        .find(|n| n["name"] == name && n["project_id"] == project_id)
        .and_then(|n| n["id"].as_str().map(str::to_string))
}

pub async fn seed(services: &Services, config: &Config) -> anyhow::Result<Vec<String>> {
    let net = &services.network;
    let store = &services.identity.store;
    let admin_user = store
        .user_by_name("default", &config.admin.user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the admin user is missing; bootstrap first"))?;
    let admin_project = store
        .project_by_name("default", &config.admin.project)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the admin project is missing; bootstrap first"))?;
    let demo_user = store
        .user_by_name("default", &config.demo.user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo user is missing"))?;
    let demo_project = store
        .project_by_name("default", &config.demo.project)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo project is missing"))?;
    let admin = context(&admin_user.id, &admin_project.id, &admin_project.name, true);
    let demo = context(&demo_user.id, &demo_project.id, &demo_project.name, false);
    let e = |what: &'static str| {
        move |e: ferrostack_network::error::NetworkError| anyhow::anyhow!("creating {what}: {e}")
    };
    let mut made = Vec::new();

    let networks = net.list_networks(&admin).await.map_err(e("networks"))?;
    let public = match named(&networks, "public", &admin_project.id) {
        Some(id) => id,
        None => {
            let n = net
                .create_network(
                    &admin,
                    &json!({"network": {"name": "public", "router:external": true,
                        "provider:network_type": "flat", "provider:physical_network": "public"}}),
                )
                .await
                .map_err(e("the public network"))?;
            let id = id_of(&n, "network")?;
            net.create_subnet(
                &admin,
                &json!({"subnet": {"name": "public-subnet", "network_id": id, "ip_version": 4,
                    "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": false,
                    "allocation_pools": [{"start": "172.24.4.2", "end": "172.24.4.254"}]}}),
            )
            .await
            .map_err(e("the public subnet"))?;
            made.push("public (external, flat on br-ex, 172.24.4.0/24)".to_string());
            id
        }
    };
    let private_subnet = match named(&networks, "private", &demo_project.id) {
        Some(_) => None,
        None => {
            let n = net
                .create_network(&demo, &json!({"network": {"name": "private"}}))
                .await
                .map_err(e("the private network"))?;
            let id = id_of(&n, "network")?;
            let s = net
                .create_subnet(
                    &demo,
                    &json!({"subnet": {"name": "private-subnet", "network_id": id,
                        "ip_version": 4, "cidr": "10.0.0.0/26", "gateway_ip": "10.0.0.1"}}),
                )
                .await
                .map_err(e("the private subnet"))?;
            made.push("private (demo project, 10.0.0.0/26)".to_string());
            Some(id_of(&s, "subnet")?)
        }
    };
    let routers = net.list_routers(&demo).await.map_err(e("routers"))?;
    if named(&routers, "router1", &demo_project.id).is_none() {
        let r = net
            .create_router(
                &demo,
                &json!({"router": {"name": "router1",
                    "external_gateway_info": {"network_id": public}}}),
            )
            .await
            .map_err(e("router1"))?;
        if let Some(subnet) = private_subnet {
            net.add_router_interface(&demo, &id_of(&r, "router")?, &json!({"subnet_id": subnet}))
                .await
                .map_err(e("router1's interface"))?;
        }
        made.push("router1 (demo project, private to public with SNAT)".to_string());
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use ferrostack_compute::network::{NetworkRequest, Networking};
    use ferrostack_identity::service::bootstrap::ProjectMember;

    use crate::config::Config;
    use crate::server;

    /// A server's NIC on the seeded `private` network carries the network's metadata port
    /// (id, MAC, address with its prefix length), which the host's metadata proxy needs.
    #[tokio::test]
    async fn a_nic_carries_its_networks_metadata_port() {
        let dir = std::env::temp_dir().join(format!("fs-cli-meta-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = Config {
            data_dir: dir.clone(),
            ..Default::default()
        };
        config.network.backend = "fake".into();
        config.compute.metadata_proxy_shared_secret = Some("s".into());
        let services = server::open_services(&config).await.unwrap();
        services
            .identity
            .bootstrap(&crate::bootstrap_spec(&config, "pw".into()))
            .await
            .unwrap();
        services
            .identity
            .ensure_member(&ProjectMember {
                user: &config.demo.user,
                password: "pw",
                project: &config.demo.project,
                role: "member",
            })
            .await
            .unwrap();
        super::seed(&services, &config).await.unwrap();
        let demo = services
            .identity
            .store
            .project_by_name("default", &config.demo.project)
            .await
            .unwrap()
            .unwrap();

        let neutron = ferrostack_compute::network::neutron::Neutron(services.network.clone());
        let vifs = neutron
            .allocate(&demo.id, "server-1", "host-1", &NetworkRequest::Auto, &[])
            .await
            .unwrap();
        assert_eq!(vifs.len(), 1);
        let meta = vifs[0].metadata_port.clone().expect("a metadata port");
        let port = services
            .network
            .ports_of_device(&format!("ovnmeta-{}", vifs[0].network_id))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(meta.id, port.id);
        assert_eq!(meta.mac, port.mac_address);
        assert_eq!(meta.ips.len(), 1);
        assert!(
            meta.ips[0].starts_with("10.0.0.") && meta.ips[0].ends_with("/26"),
            "{:?}",
            meta.ips
        );
        // The refreshed network info keeps it.
        let again = neutron.vifs("server-1").await.unwrap();
        assert_eq!(again[0].metadata_port, Some(meta));

        // And the in-process agent gets the secret and the listener's metadata URL.
        let agent = server::agent_config(&config, &server::listener_url(&config));
        assert_eq!(
            agent.metadata_url.as_deref(),
            Some("http://127.0.0.1:5000/metadata")
        );
        assert_eq!(agent.metadata_secret.as_deref(), Some("s"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
