//! An in-memory Networking service for the compute crate's own tests: networks given by the
//! test, ports with addresses handed out in order, and security groups (a `default` group
//! per project with Neutron's default rules, groups on ports), nothing else. The product uses the real
//! Networking service; this fake only lets the compute workflows be tested on their own.

mod groups;

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferrostack_common::AuthContext;

use super::{
    BoxFut, NetError, NetworkRequest, Networking, NewRule, NicRequest, PortGroups, SecGroup,
    SecRule, Vif, VifIp,
};

/// A network of the fake: IPv4 `/24`, addresses from `.10` up.
#[derive(Debug, Clone)]
pub struct FakeNet {
    pub id: String,
    pub name: String,
    /// `None`: shared with every project.
    pub project_id: Option<String>,
    /// The first three octets, `10.0.0`.
    pub prefix: String,
}

#[derive(Debug, Clone)]
struct FakePort {
    vif: Vif,
    project_id: String,
    device_id: Option<String>,
    host: Option<String>,
    /// Security group ids.
    groups: Vec<String>,
}

#[derive(Default)]
pub struct FakeNetworking {
    nets: Mutex<Vec<FakeNet>>,
    ports: Mutex<BTreeMap<String, FakePort>>,
    next_host_octet: Mutex<u32>,
    groups: Mutex<BTreeMap<String, SecGroup>>,
    /// Every call, for tests that check what Compute asked for.
    pub calls: Mutex<Vec<String>>,
    /// Behave as a data plane does: new ports stay `DOWN` until [`Self::set_up`] (otherwise
    /// they are `ACTIVE` at once and Compute does not wait for them).
    pub reports_status: std::sync::atomic::AtomicBool,
}

impl FakeNetworking {
    pub fn new() -> FakeNetworking {
        FakeNetworking::default()
    }

    pub fn add_network(&self, net: FakeNet) {
        self.nets.lock().unwrap().push(net);
    }

    /// A port the user made beforehand (not bound to any server).
    pub fn add_port(&self, project_id: &str, network_id: &str) -> Result<String, NetError> {
        let net = self.network(project_id, network_id)?;
        let vif = self.new_vif(&net, true);
        let id = vif.port_id.clone();
        self.ports.lock().unwrap().insert(
            id.clone(),
            FakePort {
                vif,
                project_id: project_id.into(),
                device_id: None,
                host: None,
                groups: Vec::new(),
            },
        );
        Ok(id)
    }

    /// The data plane has the port up.
    pub fn set_up(&self, port_id: &str) {
        if let Some(p) = self.ports.lock().unwrap().get_mut(port_id) {
            p.vif.status = "ACTIVE".into();
        }
    }

    fn bound_status(&self) -> String {
        if self
            .reports_status
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            "DOWN".into()
        } else {
            "ACTIVE".into()
        }
    }

    /// Every port's `(id, device_id, host)`, to check for leaks.
    pub fn ports(&self) -> Vec<(String, Option<String>, Option<String>)> {
        self.ports
            .lock()
            .unwrap()
            .values()
            .map(|p| (p.vif.port_id.clone(), p.device_id.clone(), p.host.clone()))
            .collect()
    }

    fn network(&self, project_id: &str, id: &str) -> Result<FakeNet, NetError> {
        self.nets
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.id == id && n.project_id.as_deref().is_none_or(|p| p == project_id))
            .cloned()
            .ok_or_else(|| NetError::NotFound(format!("Network {id} could not be found.")))
    }

    fn usable(&self, project_id: &str) -> Vec<FakeNet> {
        self.nets
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.project_id.as_deref().is_none_or(|p| p == project_id))
            .cloned()
            .collect()
    }

    fn new_vif(&self, net: &FakeNet, preserve: bool) -> Vif {
        let mut n = self.next_host_octet.lock().unwrap();
        *n += 1;
        let octet = 9 + *n;
        Vif {
            port_id: uuid::Uuid::new_v4().to_string(),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            mac: format!(
                "fa:16:3e:00:{:02x}:{:02x}",
                (octet >> 8) & 0xff,
                octet & 0xff
            ),
            mtu: Some(1442),
            fixed_ips: vec![VifIp {
                address: format!("{}.{}", net.prefix, octet % 250),
                version: 4,
                cidr: format!("{}.0/24", net.prefix),
                subnet_id: format!("subnet-{}", net.id),
                gateway: Some(format!("{}.1", net.prefix)),
                dns_nameservers: vec![],
                host_routes: vec![],
                dhcp: true,
            }],
            floating_ips: vec![],
            preserve_on_delete: preserve,
            tag: None,
            status: "DOWN".into(),
            metadata_port: None,
        }
    }

    fn plan(&self, project_id: &str, request: &NetworkRequest) -> Result<Vec<Want>, NetError> {
        match request {
            NetworkRequest::None => Ok(vec![]),
            NetworkRequest::Auto => {
                let nets = self.usable(project_id);
                match nets.len() {
                    0 => Ok(vec![]),
                    1 => Ok(vec![Want::Net(nets[0].clone(), None)]),
                    _ => Err(NetError::Conflict(
                        "Multiple possible networks found, use a Network ID to be more specific."
                            .into(),
                    )),
                }
            }
            NetworkRequest::Nics(list) => list
                .iter()
                .map(|nic| match (&nic.port_id, &nic.network_id) {
                    (Some(p), _) => {
                        let ports = self.ports.lock().unwrap();
                        let port = ports
                            .get(p)
                            .filter(|x| x.project_id == project_id)
                            .ok_or_else(|| {
                                NetError::NotFound(format!("Port id {p} could not be found."))
                            })?;
                        Ok(Want::Port(
                            p.clone(),
                            port.device_id.clone(),
                            nic.tag.clone(),
                        ))
                    }
                    (None, Some(n)) => Ok(Want::Net(self.network(project_id, n)?, nic.tag.clone())),
                    (None, None) => Err(NetError::Bad("A NIC needs a network or a port.".into())),
                })
                .collect(),
        }
    }
}

enum Want {
    Net(FakeNet, Option<String>),
    /// A user's port, with the server it is bound to now.
    Port(String, Option<String>, Option<String>),
}

impl Networking for FakeNetworking {
    fn reports_port_status(&self) -> bool {
        self.reports_status
            .load(std::sync::atomic::Ordering::SeqCst)
    }
    fn check_request<'a>(
        &'a self,
        project_id: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<usize, NetError>> {
        Box::pin(async move {
            self.resolve_groups(project_id, security_groups)?;
            let plan = self.plan(project_id, request)?;
            for w in &plan {
                if let Want::Port(p, Some(_), _) = w {
                    return Err(NetError::Conflict(format!("Port {p} is still in use.")));
                }
            }
            Ok(plan.len())
        })
    }

    fn allocate<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        request: &'a NetworkRequest,
        security_groups: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vif>, NetError>> {
        Box::pin(async move {
            let groups = self.resolve_groups(project_id, security_groups)?;
            self.calls
                .lock()
                .unwrap()
                .push(format!("allocate {server_id} on {host}"));
            let plan = self.plan(project_id, request)?;
            let mut out = Vec::new();
            let mut ports = self.ports.lock().unwrap();
            // Ports made for this server by an earlier run of the same step, oldest first.
            let mut mine: Vec<String> = ports
                .values()
                .filter(|p| p.device_id.as_deref() == Some(server_id) && !p.vif.preserve_on_delete)
                .map(|p| p.vif.port_id.clone())
                .collect();
            for w in plan {
                match w {
                    Want::Port(id, bound, tag) => {
                        if bound.as_deref().is_some_and(|b| b != server_id) {
                            return Err(NetError::Conflict(format!("Port {id} is still in use.")));
                        }
                        let p = ports.get_mut(&id).expect("planned port exists");
                        p.device_id = Some(server_id.into());
                        p.host = Some(host.into());
                        p.vif.tag = tag;
                        p.vif.status = self.bound_status();
                        if p.groups.is_empty() {
                            p.groups = groups.clone();
                        }
                        out.push(p.vif.clone());
                    }
                    Want::Net(net, tag) => {
                        let again = mine
                            .iter()
                            .position(|id| ports[id].vif.network_id == net.id)
                            .map(|i| mine.remove(i));
                        let vif = match again {
                            Some(id) => ports[&id].vif.clone(),
                            None => {
                                let mut vif = self.new_vif(&net, false);
                                vif.tag = tag;
                                vif.status = self.bound_status();
                                ports.insert(
                                    vif.port_id.clone(),
                                    FakePort {
                                        vif: vif.clone(),
                                        project_id: project_id.into(),
                                        device_id: Some(server_id.into()),
                                        host: Some(host.into()),
                                        groups: groups.clone(),
                                    },
                                );
                                vif
                            }
                        };
                        out.push(vif);
                    }
                }
            }
            Ok(out)
        })
    }

    fn deallocate<'a>(
        &'a self,
        server_id: &'a str,
        _user_ports: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("deallocate {server_id}"));
            let mut ports = self.ports.lock().unwrap();
            ports.retain(|_, p| {
                p.device_id.as_deref() != Some(server_id) || p.vif.preserve_on_delete
            });
            for p in ports.values_mut() {
                if p.device_id.as_deref() == Some(server_id) {
                    p.device_id = None;
                    p.host = None;
                    p.vif.status = "DOWN".into();
                }
            }
            Ok(())
        })
    }

    fn attach_port<'a>(
        &'a self,
        project_id: &'a str,
        server_id: &'a str,
        host: &'a str,
        nic: &'a NicRequest,
        known: &'a [String],
    ) -> BoxFut<'a, Result<Vif, NetError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("attach_port {server_id} on {host}"));
            let groups = self.resolve_groups(project_id, &[])?;
            let want = self.plan(project_id, &NetworkRequest::Nics(vec![nic.clone()]))?;
            let mut ports = self.ports.lock().unwrap();
            match want.into_iter().next() {
                Some(Want::Port(id, bound, tag)) => {
                    if bound.as_deref().is_some_and(|b| b != server_id) {
                        return Err(NetError::Conflict(format!("Port {id} is still in use.")));
                    }
                    let p = ports.get_mut(&id).expect("planned port exists");
                    p.device_id = Some(server_id.into());
                    p.host = Some(host.into());
                    p.vif.tag = tag;
                    p.vif.status = self.bound_status();
                    if p.groups.is_empty() {
                        p.groups = groups;
                    }
                    Ok(p.vif.clone())
                }
                Some(Want::Net(net, tag)) => {
                    if let Some(p) = ports.values().find(|p| {
                        p.device_id.as_deref() == Some(server_id)
                            && !p.vif.preserve_on_delete
                            && p.vif.network_id == net.id
                            && !known.contains(&p.vif.port_id)
                    }) {
                        return Ok(p.vif.clone());
                    }
                    let mut vif = self.new_vif(&net, false);
                    if let Some(ip) = &nic.fixed_ip {
                        if ports
                            .values()
                            .any(|p| p.vif.fixed_ips.iter().any(|f| &f.address == ip))
                        {
                            return Err(NetError::Conflict(format!(
                                "Fixed IP address {ip} is already in use on instance."
                            )));
                        }
                        vif.fixed_ips[0].address = ip.clone();
                    }
                    vif.tag = tag;
                    vif.status = self.bound_status();
                    ports.insert(
                        vif.port_id.clone(),
                        FakePort {
                            vif: vif.clone(),
                            project_id: project_id.into(),
                            device_id: Some(server_id.into()),
                            host: Some(host.into()),
                            groups,
                        },
                    );
                    Ok(vif)
                }
                None => Err(NetError::Bad("A NIC needs a network or a port.".into())),
            }
        })
    }

    fn detach_port<'a>(
        &'a self,
        server_id: &'a str,
        port_id: &'a str,
        preserve: bool,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("detach_port {server_id} {port_id}"));
            let mut ports = self.ports.lock().unwrap();
            let Some(p) = ports.get_mut(port_id) else {
                return Ok(());
            };
            if p.device_id.as_deref() != Some(server_id) {
                return Ok(());
            }
            if preserve {
                p.device_id = None;
                p.host = None;
                p.vif.status = "DOWN".into();
            } else {
                ports.remove(port_id);
            }
            Ok(())
        })
    }

    fn vifs<'a>(&'a self, server_id: &'a str) -> BoxFut<'a, Result<Vec<Vif>, NetError>> {
        Box::pin(async move {
            Ok(self
                .ports
                .lock()
                .unwrap()
                .values()
                .filter(|p| p.device_id.as_deref() == Some(server_id))
                .map(|p| p.vif.clone())
                .collect())
        })
    }

    fn list_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        all_projects: bool,
    ) -> BoxFut<'a, Result<Vec<SecGroup>, NetError>> {
        Box::pin(async move { self.sg_list(auth, all_projects) })
    }

    fn show_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move { self.sg_show(auth, id) })
    }

    fn create_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move { self.sg_create(auth, name, description) })
    }

    fn update_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
        name: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<SecGroup, NetError>> {
        Box::pin(async move { self.sg_update(auth, id, name, description) })
    }

    fn delete_security_group<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move { self.sg_delete(auth, id) })
    }

    fn show_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<SecRule, NetError>> {
        Box::pin(async move { self.rule_show(auth, id) })
    }

    fn create_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        rule: &'a NewRule,
    ) -> BoxFut<'a, Result<SecRule, NetError>> {
        Box::pin(async move { self.rule_create(auth, rule) })
    }

    fn delete_security_group_rule<'a>(
        &'a self,
        auth: &'a AuthContext,
        id: &'a str,
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move { self.rule_delete(auth, id) })
    }

    fn server_ports<'a>(
        &'a self,
        _auth: &'a AuthContext,
        server_id: &'a str,
    ) -> BoxFut<'a, Result<Vec<PortGroups>, NetError>> {
        Box::pin(async move { Ok(self.ports_of_server(server_id)) })
    }

    fn set_port_security_groups<'a>(
        &'a self,
        auth: &'a AuthContext,
        port_id: &'a str,
        groups: &'a [String],
    ) -> BoxFut<'a, Result<(), NetError>> {
        Box::pin(async move { self.set_port_groups(auth, port_id, groups) })
    }
}
