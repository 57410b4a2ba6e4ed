//! A backend that keeps what it was told in memory, so tests can assert the desired state
//! the service sends, and can be told to fail to exercise the reconciler.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::backend::*;

#[derive(Debug, Default, Clone)]
pub struct FakeState {
    pub networks: BTreeMap<String, NetworkState>,
    pub ports: BTreeMap<String, PortState>,
    pub security_groups: BTreeMap<String, SecurityGroupState>,
    pub routers: BTreeMap<String, RouterState>,
    pub floating_ips: BTreeMap<String, FloatingIpState>,
    /// The agents `list_agents` shows (none unless a test sets some).
    pub agents: Vec<Agent>,
    /// Every call in order, e.g. `sync_port <id>`.
    pub calls: Vec<String>,
}

#[derive(Default)]
pub struct FakeBackend {
    state: Mutex<FakeState>,
    failing: AtomicBool,
}

impl FakeBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// While set, every call fails (and changes nothing), as an unreachable OVN would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn state(&self) -> FakeState {
        self.lock().clone()
    }

    pub fn network(&self, id: &str) -> Option<NetworkState> {
        self.lock().networks.get(id).cloned()
    }

    pub fn port(&self, id: &str) -> Option<PortState> {
        self.lock().ports.get(id).cloned()
    }

    pub fn security_group(&self, id: &str) -> Option<SecurityGroupState> {
        self.lock().security_groups.get(id).cloned()
    }

    pub fn router(&self, id: &str) -> Option<RouterState> {
        self.lock().routers.get(id).cloned()
    }

    pub fn floating_ip(&self, id: &str) -> Option<FloatingIpState> {
        self.lock().floating_ips.get(id).cloned()
    }

    /// The agents the backend shows from now on (a stand-in for OVN's chassis).
    pub fn set_agents(&self, agents: Vec<Agent>) {
        self.lock().agents = agents;
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, call: String, f: impl FnOnce(&mut FakeState)) -> Result<(), BackendError> {
        let mut s = self.lock();
        if self.failing.load(Ordering::SeqCst) {
            s.calls.push(format!("{call} (failed)"));
            return Err(BackendError("the fake backend is set to fail".into()));
        }
        s.calls.push(call);
        f(&mut s);
        Ok(())
    }
}

impl NetworkBackend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn sync_network<'a>(&'a self, st: &'a NetworkState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("sync_network {}", st.network.id), |s| {
                s.networks.insert(st.network.id.clone(), st.clone());
            })
        })
    }

    fn delete_network<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("delete_network {id}"), |s| {
                s.networks.remove(id);
            })
        })
    }

    fn sync_port<'a>(&'a self, st: &'a PortState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("sync_port {}", st.port.id), |s| {
                s.ports.insert(st.port.id.clone(), st.clone());
            })
        })
    }

    fn delete_port<'a>(&'a self, st: &'a PortState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("delete_port {}", st.port.id), |s| {
                s.ports.remove(&st.port.id);
            })
        })
    }

    fn sync_security_group<'a>(
        &'a self,
        st: &'a SecurityGroupState,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("sync_security_group {}", st.group.id), |s| {
                s.security_groups.insert(st.group.id.clone(), st.clone());
            })
        })
    }

    fn delete_security_group<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("delete_security_group {id}"), |s| {
                s.security_groups.remove(id);
            })
        })
    }

    fn sync_router<'a>(&'a self, st: &'a RouterState) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("sync_router {}", st.router.id), |s| {
                s.routers.insert(st.router.id.clone(), st.clone());
            })
        })
    }

    fn delete_router<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("delete_router {id}"), |s| {
                s.routers.remove(id);
            })
        })
    }

    fn sync_floating_ip<'a>(
        &'a self,
        st: &'a FloatingIpState,
    ) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("sync_floating_ip {}", st.floating_ip.id), |s| {
                s.floating_ips.insert(st.floating_ip.id.clone(), st.clone());
            })
        })
    }

    fn delete_floating_ip<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply(format!("delete_floating_ip {id}"), |s| {
                s.floating_ips.remove(id);
            })
        })
    }

    fn full_sync<'a>(&'a self, snap: &'a Snapshot) -> BoxFut<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.apply("full_sync".into(), |s| {
                s.networks = snap
                    .networks
                    .iter()
                    .map(|n| (n.network.id.clone(), n.clone()))
                    .collect();
                s.ports = snap
                    .ports
                    .iter()
                    .map(|p| (p.port.id.clone(), p.clone()))
                    .collect();
                s.security_groups = snap
                    .security_groups
                    .iter()
                    .map(|g| (g.group.id.clone(), g.clone()))
                    .collect();
                s.routers = snap
                    .routers
                    .iter()
                    .map(|r| (r.router.id.clone(), r.clone()))
                    .collect();
                s.floating_ips = snap
                    .floating_ips
                    .iter()
                    .map(|f| (f.floating_ip.id.clone(), f.clone()))
                    .collect();
            })
        })
    }

    fn list_agents(&self) -> BoxFut<'_, Result<Vec<Agent>, BackendError>> {
        Box::pin(async move { Ok(self.lock().agents.clone()) })
    }

    fn set_agent_description<'a>(
        &'a self,
        id: &'a str,
        description: &'a str,
    ) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let mut found = false;
            self.apply(format!("set_agent_description {id}"), |s| {
                for a in s.agents.iter_mut().filter(|a| a.id == id) {
                    a.description = description.to_string();
                    found = true;
                }
            })?;
            Ok(found)
        })
    }

    fn delete_agent<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let mut found = false;
            self.apply(format!("delete_agent {id}"), |s| {
                let before = s.agents.len();
                s.agents.retain(|a| a.id != id);
                found = s.agents.len() != before;
            })?;
            Ok(found)
        })
    }
}
