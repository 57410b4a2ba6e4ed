//! Servers: create (validate, check quota, then in one transaction write the instance row in
//! `building/scheduling` together with its boot workflow), list with Nova's filters, show,
//! update, delete and the power actions. Everything that touches a host runs as a workflow
//! ([`super::workflows`]); this module only decides whether a request may start one.

use std::collections::BTreeMap;

use ferrostack_common::AuthContext;
use ferrostack_db::sqlx::{self, Row};
use ferrostack_db::Tx;
use serde_json::{json, Value};

use super::{now, ComputeService};
use crate::error::{ComputeError, Result};
use crate::model::{BootRequest, Fault, Flavor, Instance};
use crate::states::{self, task, vm, Action};

/// A validated `POST /servers` body.
#[derive(Debug, Clone, Default)]
pub struct CreateServer {
    pub name: String,
    pub image_ref: String,
    pub flavor_ref: String,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub config_drive: bool,
    pub availability_zone: Option<String>,
    pub requested_host: Option<String>,
    pub min_count: u32,
    pub max_count: u32,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub networks: Value,
    pub security_groups: Vec<String>,
    pub scheduler_hints: Value,
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
    pub hostname: Option<String>,
    pub admin_pass: Option<String>,
}

/// What a create answers with.
pub struct Created {
    pub servers: Vec<Instance>,
    pub reservation_id: String,
    pub admin_pass: String,
}

/// `GET /servers` filters (already restricted to what the caller may use).
#[derive(Debug, Default, Clone)]
pub struct ServerQuery {
    /// `None`: every project (admins with `all_tenants`).
    pub project_id: Option<String>,
    pub name: Option<regex::Regex>,
    pub vm_states: Option<Vec<String>>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
    pub image: Option<String>,
    pub flavor: Option<String>,
    pub host: Option<String>,
    pub reservation_id: Option<String>,
    pub user_id: Option<String>,
    pub uuid: Option<String>,
    pub locked: Option<bool>,
    pub availability_zone: Option<String>,
    pub ip: Option<regex::Regex>,
    pub tags: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags: Vec<String>,
    pub not_tags_any: Vec<String>,
    pub deleted: Option<bool>,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

pub fn not_found(uuid: &str) -> ComputeError {
    ComputeError::not_found(format!("Instance {uuid} could not be found."))
}

/// The hostname Nova derives from a display name: lower case, runs of other characters
/// turned into `-`, trimmed, at most 63 characters.
pub fn sanitize_hostname(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if matches!(c, ' ' | '_' | '-' | '.') && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(63)
        .collect();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        "server".to_string()
    } else {
        trimmed
    }
}

pub(crate) fn random_password() -> String {
    use rand_like::next;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..12)
        .map(|_| ALPHABET[next() % ALPHABET.len()] as char)
        .collect()
}

/// A few random numbers without a new dependency: uuid v4 is backed by the OS generator.
mod rand_like {
    pub fn next() -> usize {
        let b = uuid::Uuid::new_v4().into_bytes();
        usize::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[9]])
    }
}

impl ComputeService {
    /// Loads a server row with its metadata, tags and latest fault.
    pub async fn instance(&self, uuid: &str) -> Result<Option<Instance>> {
        let row = sqlx::query("SELECT * FROM compute_instances WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut inst = Instance::from_row(&row);
        self.decorate(std::slice::from_mut(&mut inst)).await?;
        Ok(Some(inst))
    }

    async fn decorate(&self, list: &mut [Instance]) -> Result<()> {
        for inst in list.iter_mut() {
            let meta = sqlx::query(
                "SELECT meta_key, meta_value FROM compute_instance_metadata WHERE instance_uuid = $1",
            )
            .bind(&inst.uuid)
            .fetch_all(self.db.pool())
            .await?;
            inst.metadata = meta
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect();
            let tags = sqlx::query(
                "SELECT tag FROM compute_instance_tags WHERE instance_uuid = $1 ORDER BY tag",
            )
            .bind(&inst.uuid)
            .fetch_all(self.db.pool())
            .await?;
            inst.tags = tags.iter().map(|r| r.get::<String, _>(0)).collect();
            if inst.vm_state == vm::ERROR {
                let f = sqlx::query(
                    "SELECT code, message, details, created_at FROM compute_instance_faults \
                     WHERE instance_uuid = $1 ORDER BY created_at DESC LIMIT 1",
                )
                .bind(&inst.uuid)
                .fetch_optional(self.db.pool())
                .await?;
                inst.fault = f.map(|r| Fault {
                    code: r.get(0),
                    message: r.get(1),
                    details: r.get(2),
                    created_at: r.get(3),
                });
            }
        }
        Ok(())
    }

    /// A server the caller may see: its own project's (any non-deleted), or any for admins.
    pub async fn get_server(&self, ctx: &AuthContext, uuid: &str, rule: &str) -> Result<Instance> {
        let inst = self.instance(uuid).await?.ok_or_else(|| not_found(uuid))?;
        if inst.deleted && !self.is_admin(ctx) {
            return Err(not_found(uuid));
        }
        if !self.allowed(ctx, rule, &inst.project_id, &inst.user_id) {
            // Another project's server does not exist for the caller.
            if ctx.project_id() != Some(inst.project_id.as_str()) && !self.is_admin(ctx) {
                return Err(not_found(uuid));
            }
            return Err(ComputeError::forbidden(format!(
                "Policy doesn't allow {rule} to be performed."
            )));
        }
        Ok(inst)
    }

    pub(crate) async fn flavor_for_boot(
        &self,
        ctx: &AuthContext,
        flavor_ref: &str,
    ) -> Result<Flavor> {
        let id = flavor_ref.rsplit('/').next().unwrap_or(flavor_ref);
        match self.get_flavor(ctx, id).await {
            Ok(f) if !f.disabled => Ok(f),
            Ok(_) => Err(ComputeError::bad(format!("Flavor {id} is disabled."))),
            Err(e) if e.status.as_u16() == 404 => {
                Err(ComputeError::bad("Invalid flavorRef provided."))
            }
            Err(e) => Err(e),
        }
    }

    /// The id of the image `image_ref` (an id or a link) that a server of `flavor` may boot
    /// from: visible to the caller, active, and within the flavor's memory and disk.
    pub(crate) async fn boot_image(
        &self,
        ctx: &AuthContext,
        image_ref: &str,
        flavor: &Flavor,
    ) -> Result<String> {
        let image_id = image_ref
            .rsplit('/')
            .next()
            .unwrap_or(image_ref)
            .to_string();
        let image = match self.image.visible_image(ctx, &image_id).await {
            Ok(i) => i,
            Err(_) => {
                return Err(ComputeError::bad(format!(
                    "Image {image_id} could not be found."
                )))
            }
        };
        if image.status != "active" {
            return Err(ComputeError::bad(format!(
                "Image {image_id} is not active."
            )));
        }
        if flavor.ram < image.min_ram {
            return Err(ComputeError::bad(
                "Flavor's memory is too small for requested image.",
            ));
        }
        if flavor.disk > 0 {
            let size_gb = image.size.unwrap_or(0).max(image.virtual_size.unwrap_or(0));
            if flavor.disk < image.min_disk || size_gb > flavor.disk << 30 {
                return Err(ComputeError::bad(
                    "Flavor's disk is too small for requested image.",
                ));
            }
        }
        Ok(image_id)
    }

    /// Quota as Nova's unified limits count it: `servers`, `class:VCPU`, `class:MEMORY_MB`.
    async fn check_quota(&self, project: &str, flavor: &Flavor, count: i64) -> Result<()> {
        self.check_quota_for(project, count, flavor.vcpus * count, flavor.ram * count)
            .await
    }

    /// Whether `project` may use `servers` more servers, `cores` more vCPUs and `ram` more
    /// MiB (a resize asks for the difference between its flavors).
    pub(crate) async fn check_quota_for(
        &self,
        project: &str,
        servers_wanted: i64,
        cores_wanted: i64,
        ram_wanted: i64,
    ) -> Result<()> {
        let Some(limits) = self.limits() else {
            return Ok(());
        };
        let (servers, cores, ram) = self.project_usage(project).await?;
        for (resource, name, used, requested) in [
            ("servers", "instances", servers, servers_wanted),
            ("class:VCPU", "cores", cores, cores_wanted),
            ("class:MEMORY_MB", "ram", ram, ram_wanted),
        ] {
            if requested <= 0 {
                continue;
            }
            if let Some(limit) = limits.project_limit(project, "compute", resource).await {
                if used + requested > limit {
                    return Err(ComputeError::over_limit(format!(
                        "Quota exceeded for {name}: Requested {requested}, but already used {used} of {limit} {name}"
                    )));
                }
            }
        }
        Ok(())
    }

    pub async fn create_server(
        &self,
        ctx: &AuthContext,
        req: CreateServer,
        request_id: &str,
    ) -> Result<Created> {
        self.authorize(ctx, "os_compute_api:servers:create")?;
        if req.requested_host.is_some() {
            self.authorize(ctx, "os_compute_api:servers:create:forced_host")?;
        }
        let project = ctx
            .project_id()
            .ok_or_else(|| ComputeError::forbidden("A project-scoped token is required."))?
            .to_string();
        let flavor = self.flavor_for_boot(ctx, &req.flavor_ref).await?;
        let image_id = self.boot_image(ctx, &req.image_ref, &flavor).await?;
        let key_data = match &req.key_name {
            Some(name) => Some(
                self.keypair_of(&ctx.user_id, name)
                    .await?
                    .ok_or_else(|| ComputeError::bad("Invalid key_name provided."))?
                    .public_key,
            ),
            None => None,
        };
        if let Some(zone) = &req.availability_zone {
            let zones: std::collections::BTreeSet<String> = self
                .services()
                .await?
                .into_iter()
                .filter(|s| s.binary == "nova-compute")
                .map(|s| s.zone)
                .collect();
            if !zones.contains(zone) && zone != &self.config.default_availability_zone {
                return Err(ComputeError::bad(
                    "The requested availability zone is not available",
                ));
            }
        }
        let group = req
            .scheduler_hints
            .get("group")
            .and_then(Value::as_str)
            .map(str::to_string);
        let count = req.max_count.max(1);
        self.check_quota(&project, &flavor, count as i64).await?;
        if let Some(g) = &group {
            self.check_group_hint(ctx, g, count as i64).await?;
        }
        let nics = crate::network::NetworkRequest::from_stored(&req.networks);
        if let crate::network::NetworkRequest::Nics(list) = &nics {
            if count > 1 && list.iter().any(|n| n.port_id.is_some()) {
                return Err(ComputeError::bad(
                    "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.",
                ));
            }
        }
        self.check_networks(&project, &nics, &req.security_groups)
            .await?;
        let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let admin_pass = req.admin_pass.clone().unwrap_or_else(random_password);
        let request = BootRequest {
            networks: req.networks.clone(),
            security_groups: req.security_groups.clone(),
            scheduler_hints: req.scheduler_hints.clone(),
            server_group: group,
            requested_host: req.requested_host.clone(),
        };
        let mut created = Vec::new();
        let mut runs = Vec::new();
        let mut tx = self.db.begin_write().await?;
        for index in 0..count {
            let uuid = uuid::Uuid::new_v4().to_string();
            let id: i64 = sqlx::query(
                "UPDATE compute_counters SET value = value + 1 WHERE name = 'instance_id' RETURNING value",
            )
            .fetch_one(&mut *tx)
            .await?
            .get(0);
            let (name, hostname) = if count > 1 {
                (
                    format!("{}-{}", req.name, index + 1),
                    sanitize_hostname(&format!(
                        "{}-{}",
                        req.hostname.as_deref().unwrap_or(&req.name),
                        index + 1
                    )),
                )
            } else {
                (
                    req.name.clone(),
                    req.hostname
                        .clone()
                        .unwrap_or_else(|| sanitize_hostname(&req.name)),
                )
            };
            let t = now();
            sqlx::query(
                "INSERT INTO compute_instances (uuid, id, display_name, project_id, user_id, image_ref, \
                 flavor, vm_state, task_state, power_state, availability_zone, key_name, key_data, \
                 user_data, config_drive, access_ipv4, access_ipv6, description, hostname, reservation_id, \
                 launch_index, request, created_at, updated_at, deleted) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                 $20, $21, $22, $22, FALSE)",
            )
            .bind(&uuid)
            .bind(id)
            .bind(&name)
            .bind(&project)
            .bind(&ctx.user_id)
            .bind(&image_id)
            .bind(serde_json::to_string(&flavor).map_err(ComputeError::internal)?)
            .bind(vm::BUILDING)
            .bind(task::SCHEDULING)
            .bind(&req.availability_zone)
            .bind(&req.key_name)
            .bind(&key_data)
            .bind(&req.user_data)
            .bind(req.config_drive)
            .bind(&req.access_ipv4)
            .bind(&req.access_ipv6)
            .bind(&req.description)
            .bind(&hostname)
            .bind(&reservation_id)
            .bind(index as i64)
            .bind(serde_json::to_string(&request).map_err(ComputeError::internal)?)
            .bind(t)
            .execute(&mut *tx)
            .await?;
            for (k, v) in &req.metadata {
                sqlx::query("INSERT INTO compute_instance_metadata (instance_uuid, meta_key, meta_value) VALUES ($1, $2, $3)")
                    .bind(&uuid)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
            }
            for tag in &req.tags {
                sqlx::query(
                    "INSERT INTO compute_instance_tags (instance_uuid, tag) VALUES ($1, $2)",
                )
                .bind(&uuid)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(g) = &request.server_group {
                sqlx::query("INSERT INTO compute_server_group_members (group_uuid, instance_uuid) VALUES ($1, $2)")
                    .bind(g)
                    .bind(&uuid)
                    .execute(&mut *tx)
                    .await?;
            }
            record_action(&mut tx, &uuid, "create", request_id, ctx).await?;
            let run = self
                .engine
                .insert(
                    &mut tx,
                    super::workflows::BOOT,
                    &uuid,
                    json!({"admin_pass": admin_pass, "request_id": request_id}),
                )
                .await
                .map_err(ComputeError::internal)?;
            runs.push(run);
            created.push(uuid);
        }
        tx.commit().await?;
        for run in &runs {
            self.engine.kick(run);
        }
        let mut servers = Vec::new();
        for uuid in created {
            if let Some(i) = self.instance(&uuid).await? {
                servers.push(i);
            }
        }
        Ok(Created {
            servers,
            reservation_id,
            admin_pass,
        })
    }

    pub async fn list_servers(&self, q: &ServerQuery) -> Result<Vec<Instance>> {
        let mut sql = String::from("SELECT * FROM compute_instances WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, col: &str, v: &str| {
            binds.push(v.to_string());
            sql.push_str(&format!(" AND {col} = ${}", binds.len()));
        };
        if let Some(p) = &q.project_id {
            bind(&mut sql, "project_id", p);
        }
        if let Some(h) = &q.host {
            bind(&mut sql, "host", h);
        }
        if let Some(u) = &q.user_id {
            bind(&mut sql, "user_id", u);
        }
        if let Some(r) = &q.reservation_id {
            bind(&mut sql, "reservation_id", r);
        }
        if let Some(u) = &q.uuid {
            bind(&mut sql, "uuid", u);
        }
        if let Some(i) = &q.image {
            bind(&mut sql, "image_ref", i);
        }
        if let Some(z) = &q.availability_zone {
            bind(&mut sql, "availability_zone", z);
        }
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut list: Vec<Instance> = rows.iter().map(Instance::from_row).collect();
        let show_deleted =
            q.deleted == Some(true) || q.changes_since.is_some() || q.changes_before.is_some();
        list.retain(|i| match q.deleted {
            Some(d) => i.deleted == d,
            None => show_deleted || !i.deleted,
        });
        list.retain(|i| {
            q.name.as_ref().is_none_or(|re| re.is_match(&i.name))
                && q.vm_states.as_ref().is_none_or(|s| s.contains(&i.vm_state))
                && q.changes_since.is_none_or(|t| i.updated_at >= t)
                && q.changes_before.is_none_or(|t| i.updated_at <= t)
                && q.flavor.as_ref().is_none_or(|f| &i.flavor.id == f)
                && q.locked.is_none_or(|l| i.locked_by.is_some() == l)
        });
        self.decorate(&mut list).await?;
        list.retain(|i| {
            let has = |t: &String| i.tags.contains(t);
            (q.tags.is_empty() || q.tags.iter().all(has))
                && (q.tags_any.is_empty() || q.tags_any.iter().any(has))
                && (q.not_tags.is_empty() || !q.not_tags.iter().all(has))
                && (q.not_tags_any.is_empty() || !q.not_tags_any.iter().any(has))
        });
        if let Some(re) = &q.ip {
            // No addresses until servers have ports: an ip filter matches nothing.
            let _ = re;
            list.clear();
        }
        let sort = if q.sort.is_empty() {
            vec![("created_at".to_string(), true)]
        } else {
            q.sort.clone()
        };
        list.sort_by(|a, b| {
            let mut o = std::cmp::Ordering::Equal;
            for (key, desc) in &sort {
                let c = compare(a, b, key);
                let c = if *desc { c.reverse() } else { c };
                o = o.then(c);
            }
            o.then_with(|| b.id.cmp(&a.id))
        });
        if let Some(m) = &q.marker {
            let pos = list
                .iter()
                .position(|i| &i.uuid == m)
                .ok_or_else(|| ComputeError::bad(format!("marker [{m}] not found")))?;
            list.drain(..=pos);
        }
        if let Some(l) = q.limit {
            list.truncate(l);
        }
        Ok(list)
    }

    /// `PUT /servers/{id}`: name, description, hostname, access addresses.
    pub async fn update_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        changes: &serde_json::Map<String, Value>,
    ) -> Result<Instance> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:servers:update")
            .await?;
        let mut tx = self.db.begin_write().await?;
        for (field, column) in [
            ("name", "display_name"),
            ("description", "description"),
            ("hostname", "hostname"),
            ("accessIPv4", "access_ipv4"),
            ("accessIPv6", "access_ipv6"),
        ] {
            if let Some(v) = changes.get(field) {
                let value = v.as_str().map(str::to_string);
                sqlx::query(&format!(
                    "UPDATE compute_instances SET {column} = $1, updated_at = $2 WHERE uuid = $3"
                ))
                .bind(value)
                .bind(now())
                .bind(&inst.uuid)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.instance(uuid).await?.ok_or_else(|| not_found(uuid))
    }

    pub(crate) fn check_lock(&self, ctx: &AuthContext, inst: &Instance) -> Result<()> {
        if inst.locked_by.is_some() && !self.is_admin(ctx) {
            return Err(ComputeError::conflict(format!(
                "Instance {} is locked",
                inst.uuid
            )));
        }
        Ok(())
    }

    /// `DELETE /servers/{id}` (and forceDelete): moves the server to `deleting` and starts the
    /// delete workflow, which first stops any boot or action still running on it.
    pub async fn delete_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:servers:delete")
            .await?;
        if inst.deleted {
            return Err(not_found(uuid));
        }
        self.check_lock(ctx, &inst)?;
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE compute_instances SET task_state = $1, updated_at = $2 WHERE uuid = $3 AND deleted = FALSE \
             AND (task_state IS NULL OR task_state <> $1)",
        )
        .bind(task::DELETING)
        .bind(now())
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Already being deleted: deleting twice is not an error.
            return Ok(());
        }
        record_action(&mut tx, uuid, "delete", request_id, ctx).await?;
        let run = self
            .engine
            .insert(
                &mut tx,
                super::workflows::DELETE,
                uuid,
                json!({"request_id": request_id}),
            )
            .await
            .map_err(ComputeError::internal)?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }

    /// Starts a power action: checks the state, sets the task state with a compare-and-swap
    /// on the state it checked, and starts the action workflow.
    pub async fn server_action(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        action: Action,
        rule: &str,
        request_id: &str,
    ) -> Result<()> {
        let inst = self.get_server(ctx, uuid, rule).await?;
        self.check_lock(ctx, &inst)?;
        self.check_state(&inst, action)?;
        let mut tx = self.db.begin_write().await?;
        let data = json!({"action": format!("{action:?}"), "from_vm_state": inst.vm_state});
        let run = self
            .begin_task(
                &mut tx,
                ctx,
                &inst,
                action,
                super::workflows::ACTION,
                data,
                request_id,
            )
            .await?;
        tx.commit().await?;
        self.engine.kick(&run);
        Ok(())
    }

    /// Inside `tx`: moves the server into `action`'s task state (a compare-and-swap on the
    /// state the caller checked, so two requests never both start), records the instance
    /// action, and adds the workflow `kind` that carries it out. The caller commits, then
    /// kicks the returned run.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn begin_task(
        &self,
        tx: &mut Tx<'_>,
        ctx: &AuthContext,
        inst: &Instance,
        action: Action,
        kind: &str,
        data: Value,
        request_id: &str,
    ) -> Result<String> {
        let done = sqlx::query(
            "UPDATE compute_instances SET task_state = $1, updated_at = $2 WHERE uuid = $3 AND vm_state = $4 \
             AND (task_state IS NULL OR task_state = $5) AND deleted = FALSE",
        )
        .bind(action.task_state())
        .bind(now())
        .bind(&inst.uuid)
        .bind(&inst.vm_state)
        .bind(inst.task_state.as_deref().unwrap_or(""))
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ComputeError::conflict(format!(
                "Cannot '{}' instance {}: its state changed, try again",
                action.name(),
                inst.uuid
            )));
        }
        record_action(tx, &inst.uuid, action.name(), request_id, ctx).await?;
        // The workflow records its events on this action.
        let mut data = data;
        if let Some(fields) = data.as_object_mut() {
            fields.insert("request_id".into(), json!(request_id));
        }
        self.engine
            .insert(tx, kind, &inst.uuid, data)
            .await
            .map_err(ComputeError::internal)
    }

    /// Nova's 409 when `action` may not start from the server's state.
    pub(crate) fn check_state(&self, inst: &Instance, action: Action) -> Result<()> {
        action
            .check(&inst.vm_state, inst.task_state.as_deref())
            .map_err(|(attr, state)| {
                ComputeError::invalid_state(action.name(), attr, &state, &inst.uuid)
            })
    }

    pub async fn lock_server(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        lock: bool,
        reason: Option<String>,
    ) -> Result<()> {
        let rule = if lock {
            "os_compute_api:os-lock-server:lock"
        } else {
            "os_compute_api:os-lock-server:unlock"
        };
        let inst = self.get_server(ctx, uuid, rule).await?;
        if !lock {
            if let Some(by) = &inst.locked_by {
                if by == "admin" && !self.is_admin(ctx) {
                    self.authorize(ctx, "os_compute_api:os-lock-server:unlock:unlock_override")?;
                }
            }
        }
        let by = lock.then(|| if self.is_admin(ctx) { "admin" } else { "owner" });
        sqlx::query("UPDATE compute_instances SET locked_by = $1, locked_reason = $2, updated_at = $3 WHERE uuid = $4")
            .bind(by)
            .bind(if lock { reason } else { None })
            .bind(now())
            .bind(uuid)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn console_output(
        &self,
        ctx: &AuthContext,
        uuid: &str,
        length: Option<usize>,
    ) -> Result<String> {
        let inst = self
            .get_server(ctx, uuid, "os_compute_api:os-console-output")
            .await?;
        let host = inst
            .host
            .clone()
            .filter(|_| inst.vm_state != vm::BUILDING || inst.power_state != 0);
        let agent = match host.as_deref() {
            Some(h) => self.agent(h).await?,
            None => None,
        };
        let agent = agent.ok_or_else(|| {
            ComputeError::conflict(format!(
                "Cannot 'get_console_output' instance {uuid} while it is in vm_state {}",
                inst.vm_state
            ))
        })?;
        let text = agent
            .console(uuid, 1 << 20)
            .await
            .map_err(|e| ComputeError::internal(format!("console of {uuid}: {e}")))?;
        Ok(match length {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n")
            }
            None => text,
        })
    }

    /// Records a state change on the server row, if it is still in `expect_task` (a delete
    /// that started meanwhile wins).
    pub async fn set_state(
        &self,
        uuid: &str,
        expect_task: Option<&str>,
        vm_state: &str,
        task_state: Option<&str>,
        power_state: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE compute_instances SET vm_state = $1, task_state = $2, \
             power_state = COALESCE($3, power_state), updated_at = $4 \
             WHERE uuid = $5 AND COALESCE(task_state, '') = $6",
        )
        .bind(vm_state)
        .bind(task_state)
        .bind(power_state)
        .bind(now())
        .bind(uuid)
        .bind(expect_task.unwrap_or(""))
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn record_fault(
        &self,
        uuid: &str,
        code: i64,
        message: &str,
        details: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO compute_instance_faults (instance_uuid, code, message, details, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid)
        .bind(code)
        .bind(message)
        .bind(details)
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Finishes the newest unfinished instance action of `uuid` named `action`.
    pub async fn finish_action(&self, uuid: &str, action: &str, error: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE compute_instance_actions SET finish_time = $1, updated_at = $1, message = $2 \
             WHERE instance_uuid = $3 AND action = $4 AND finish_time IS NULL",
        )
        .bind(now())
        .bind(error.map(|_| "Error"))
        .bind(uuid)
        .bind(action)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Every server row a host should have (not deleted), for the agent's reconciliation.
    pub async fn servers_on_host(&self, host: &str) -> Result<Vec<Instance>> {
        let rows =
            sqlx::query("SELECT * FROM compute_instances WHERE host = $1 AND deleted = FALSE")
                .bind(host)
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.iter().map(Instance::from_row).collect())
    }

    /// The periodic power-state sync: the host saw `power_state` for a server. A running
    /// server found shut down (from inside the guest, or QEMU died) becomes SHUTOFF, as
    /// Nova's `_sync_power_states` does; servers with a task in flight are left alone.
    pub async fn observe_power_state(&self, uuid: &str, power_state: i64) -> Result<()> {
        let Some(inst) = self.instance(uuid).await? else {
            return Ok(());
        };
        if inst.task_state.is_some() || inst.deleted || inst.power_state == power_state {
            return Ok(());
        }
        let vm_state = match (inst.vm_state.as_str(), power_state) {
            (
                vm::ACTIVE,
                states::power::SHUTDOWN | states::power::CRASHED | states::power::NOSTATE,
            ) => vm::STOPPED,
            (s, _) => states::vm_state_named(s).unwrap_or(vm::ERROR),
        };
        self.set_state(uuid, None, vm_state, None, Some(power_state))
            .await?;
        Ok(())
    }
}

impl ComputeService {
    /// Records where the scheduler put a booting server and moves it on to `spawning`;
    /// false when its server group no longer lets it go there (see [`Self::place_in`]).
    pub async fn place(
        &self,
        uuid: &str,
        placed: &super::scheduler::Placed,
        zone: Option<&str>,
    ) -> Result<bool> {
        self.place_in(
            uuid,
            placed,
            zone,
            vm::BUILDING,
            task::SCHEDULING,
            task::SPAWNING,
        )
        .await
    }

    /// Records the host of a server in `vm_state` whose task is `task` (or already `next`),
    /// and moves the task on to `next`.
    ///
    /// For a member of a server group the policy is checked again in the same transaction,
    /// under a lock on the group row: two members scheduled at once (by two control nodes)
    /// both passed the filters before either had a host, and only one of them may take the
    /// last place on a host. The loser writes nothing and gets false; its caller gives the
    /// claim back and schedules it again, as Nova's late check on the compute host does.
    pub(crate) async fn place_in(
        &self,
        uuid: &str,
        placed: &super::scheduler::Placed,
        zone: Option<&str>,
        vm_state: &str,
        task: &str,
        next: &str,
    ) -> Result<bool> {
        let mut tx = self.db.begin_write().await?;
        let group: Option<String> = sqlx::query(
            "SELECT group_uuid FROM compute_server_group_members WHERE instance_uuid = $1",
        )
        .bind(uuid)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get(0));
        if let Some(group) = group {
            // A row lock on PostgreSQL; SQLite's write transaction is exclusive already.
            sqlx::query("UPDATE compute_server_groups SET name = name WHERE uuid = $1")
                .bind(&group)
                .execute(&mut *tx)
                .await?;
            let state = Self::group_state(&mut tx, &group, uuid).await?;
            if state.is_some_and(|g| !g.admits(&placed.host)) {
                return Ok(false);
            }
        }
        sqlx::query(
            "UPDATE compute_instances SET host = $1, node = $2, availability_zone = COALESCE(availability_zone, $3), \
             task_state = $4, updated_at = $5 WHERE uuid = $6 AND vm_state = $7 AND task_state IN ($8, $4)",
        )
        .bind(&placed.host)
        .bind(&placed.host)
        .bind(zone)
        .bind(next)
        .bind(now())
        .bind(uuid)
        .bind(vm_state)
        .bind(task)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A system metadata item of a server (what the service remembers, users do not see).
    pub(crate) async fn system_metadata(&self, uuid: &str, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query(
            "SELECT meta_value FROM compute_instance_system_metadata WHERE instance_uuid = $1 AND meta_key = $2",
        )
        .bind(uuid)
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?
        .map(|r| r.get::<String, _>(0)))
    }

    pub(crate) async fn set_system_metadata(
        &self,
        tx: &mut Tx<'_>,
        uuid: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM compute_instance_system_metadata WHERE instance_uuid = $1 AND meta_key = $2",
        )
        .bind(uuid)
        .bind(key)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO compute_instance_system_metadata (instance_uuid, meta_key, meta_value) VALUES ($1, $2, $3)",
        )
        .bind(uuid)
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_system_metadata(&self, uuid: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM compute_instance_system_metadata WHERE instance_uuid = $1 AND meta_key = $2",
        )
        .bind(uuid)
        .bind(key)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Undoes [`Self::place`]: the server has no host again.
    pub async fn unplace(&self, uuid: &str) -> Result<()> {
        sqlx::query("UPDATE compute_instances SET host = NULL, node = NULL, updated_at = $1 WHERE uuid = $2")
            .bind(now())
            .bind(uuid)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// The boot's last step: ACTIVE and running (unless a delete took over meanwhile).
    pub async fn activate(&self, uuid: &str) -> Result<()> {
        sqlx::query(
            "UPDATE compute_instances SET vm_state = $1, task_state = NULL, power_state = $2, \
             launched_at = COALESCE(launched_at, $3), updated_at = $3 WHERE uuid = $4 AND vm_state = $5 \
             AND task_state = $6",
        )
        .bind(vm::ACTIVE)
        .bind(states::power::RUNNING)
        .bind(now())
        .bind(uuid)
        .bind(vm::BUILDING)
        .bind(task::SPAWNING)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// A boot that unwound: ERROR, no task, no host.
    pub async fn fail_build(&self, uuid: &str) -> Result<()> {
        sqlx::query(
            "UPDATE compute_instances SET vm_state = $1, task_state = NULL, power_state = 0, updated_at = $2 \
             WHERE uuid = $3 AND deleted = FALSE AND COALESCE(task_state, '') <> $4",
        )
        .bind(vm::ERROR)
        .bind(now())
        .bind(uuid)
        .bind(task::DELETING)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The delete's last step.
    pub async fn mark_deleted(&self, uuid: &str) -> Result<()> {
        let t = now();
        sqlx::query(
            "UPDATE compute_instances SET vm_state = $1, task_state = NULL, power_state = 0, deleted = TRUE, \
             deleted_at = $2, terminated_at = $2, updated_at = $2 WHERE uuid = $3",
        )
        .bind(vm::DELETED)
        .bind(t)
        .bind(uuid)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn leave_groups(&self, uuid: &str) -> Result<()> {
        sqlx::query("DELETE FROM compute_server_group_members WHERE instance_uuid = $1")
            .bind(uuid)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

fn compare(a: &Instance, b: &Instance, key: &str) -> std::cmp::Ordering {
    match key {
        "display_name" => a.name.cmp(&b.name),
        "uuid" => a.uuid.cmp(&b.uuid),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "launched_at" => a.launched_at.cmp(&b.launched_at),
        "vm_state" => a.vm_state.cmp(&b.vm_state),
        "task_state" => a.task_state.cmp(&b.task_state),
        "power_state" => a.power_state.cmp(&b.power_state),
        "host" | "node" => a.host.cmp(&b.host),
        "hostname" => a.hostname.cmp(&b.hostname),
        "image_ref" => a.image_ref.cmp(&b.image_ref),
        "instance_type_id" => a.flavor.id.cmp(&b.flavor.id),
        "key_name" => a.key_name.cmp(&b.key_name),
        "project_id" => a.project_id.cmp(&b.project_id),
        "user_id" => a.user_id.cmp(&b.user_id),
        "availability_zone" => a.availability_zone.cmp(&b.availability_zone),
        _ => a.created_at.cmp(&b.created_at),
    }
}

/// Starts an instance action record (what `GET /servers/{id}/os-instance-actions` lists).
pub async fn record_action(
    tx: &mut Tx<'_>,
    uuid: &str,
    action: &str,
    request_id: &str,
    ctx: &AuthContext,
) -> Result<()> {
    let t = now();
    sqlx::query(
        "INSERT INTO compute_instance_actions (id, instance_uuid, action, request_id, user_id, project_id, start_time, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(uuid)
    .bind(action)
    .bind(request_id)
    .bind(&ctx.user_id)
    .bind(ctx.project_id().unwrap_or_default())
    .bind(t)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl ComputeService {
    /// (servers, vCPUs, RAM MiB) a project uses now.
    pub async fn project_usage(&self, project: &str) -> Result<(i64, i64, i64)> {
        let rows = sqlx::query(
            "SELECT flavor FROM compute_instances WHERE project_id = $1 AND deleted = FALSE",
        )
        .bind(project)
        .fetch_all(self.db.pool())
        .await?;
        let (mut cores, mut ram) = (0i64, 0i64);
        for r in &rows {
            if let Ok(f) = serde_json::from_str::<Flavor>(&r.get::<String, _>(0)) {
                cores += f.vcpus;
                ram += f.ram;
            }
        }
        Ok((rows.len() as i64, cores, ram))
    }

    /// A project's limit of a compute resource, when one is registered.
    pub async fn limit_of(&self, project: &str, resource: &str) -> Option<i64> {
        self.limits()?
            .project_limit(project, "compute", resource)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_from_display_names() {
        assert_eq!(sanitize_hostname("My Server_1"), "my-server-1");
        assert_eq!(sanitize_hostname("--x--"), "x");
        assert_eq!(sanitize_hostname("ünïcode!"), "ncode");
        assert_eq!(sanitize_hostname("!!!"), "server");
        assert_eq!(sanitize_hostname(&"a".repeat(100)).len(), 63);
    }
}
