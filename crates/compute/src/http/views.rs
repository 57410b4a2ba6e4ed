//! Response bodies as Nova renders them, per microversion.

use crate::microversion::Microversion;
use ferrostack_common::time::iso_seconds;
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::Ctx;
use crate::model::{Flavor, Instance, Keypair};
use crate::states;

/// Nova's timestamps: `2024-01-02T03:04:05Z`.
pub fn time(micros: i64) -> String {
    iso_seconds(micros)
}

/// Timestamps with microseconds and no zone, as Nova's `OS-SRV-USG` and keypair fields.
pub fn naive(micros: i64) -> String {
    ferrostack_common::time::iso_naive_micros(micros)
}

pub fn flavor_brief(ctx: &Ctx, f: &Flavor) -> Value {
    let mut v = json!({"id": f.id, "name": f.name, "links": ctx.links("flavors", &f.id)});
    if ctx.mv.at_least(55) {
        v["description"] = json!(f.description);
    }
    v
}

pub fn flavor(ctx: &Ctx, f: &Flavor, show_specs: bool) -> Value {
    let mut v = json!({
        "id": f.id,
        "name": f.name,
        "ram": f.ram,
        "disk": f.disk,
        "vcpus": f.vcpus,
        "links": ctx.links("flavors", &f.id),
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
        "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": f.rxtx_factor,
        // Before 2.75 a flavor without swap shows it as an empty string.
        "swap": if f.swap == 0 && !ctx.mv.at_least(75) { json!("") } else { json!(f.swap) },
    });
    if ctx.mv.at_least(55) {
        v["description"] = json!(f.description);
    }
    if ctx.mv.at_least(61) && show_specs {
        v["extra_specs"] = json!(f.extra_specs);
    }
    v
}

pub fn keypair(k: &Keypair, ctx: &Ctx, detail: bool) -> Value {
    let mut v = json!({
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
    });
    if ctx.mv.at_least(2) {
        v["type"] = json!(k.key_type);
    }
    if detail {
        v["user_id"] = json!(k.user_id);
        v["created_at"] = json!(naive(k.created_at));
        v["deleted"] = json!(false);
        v["deleted_at"] = Value::Null;
        v["updated_at"] = Value::Null;
        v["id"] = json!(keypair_id(k));
    }
    v
}

/// Nova shows an integer id for key pairs; a stable one is derived from (user, name).
fn keypair_id(k: &Keypair) -> i64 {
    let d = sha2::Sha256::digest(format!("{}/{}", k.user_id, k.name).as_bytes());
    (u32::from_be_bytes([d[0], d[1], d[2], d[3]]) >> 1) as i64
}

/// `hostId`: an opaque id of the host, per project (sha224 of project id + host).
pub fn host_id(inst: &Instance) -> String {
    hashed_host(&inst.project_id, inst.host.as_deref())
}

/// Nova's `generate_hostid`: empty without a host.
pub fn hashed_host(project_id: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => {
            let d = sha2::Sha224::digest(format!("{project_id}{h}").as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect()
        }
        None => String::new(),
    }
}

pub fn server_brief(ctx: &Ctx, i: &Instance) -> Value {
    json!({"id": i.uuid, "name": i.name, "links": ctx.links("servers", &i.uuid)})
}

pub fn server(ctx: &Ctx, i: &Instance, admin: bool) -> Value {
    let mv = ctx.mv;
    let status = states::status(&i.vm_state, i.task_state.as_deref());
    let flavor = if mv.at_least(47) {
        let mut f = json!({
            "vcpus": i.flavor.vcpus,
            "ram": i.flavor.ram,
            "disk": i.flavor.disk,
            "ephemeral": i.flavor.ephemeral,
            "swap": i.flavor.swap,
            "original_name": i.flavor.name,
        });
        if admin {
            f["extra_specs"] = json!(i.flavor.extra_specs);
        }
        f
    } else {
        json!({"id": i.flavor.id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", ctx.base, i.flavor.id)}]})
    };
    let image = if i.image_ref.is_empty() {
        json!("")
    } else {
        json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", ctx.base, i.image_ref)}]})
    };
    let mut v = json!({
        "id": i.uuid,
        "name": i.name,
        "status": status,
        "tenant_id": i.project_id,
        "user_id": i.user_id,
        "metadata": i.metadata,
        "hostId": host_id(i),
        "image": image,
        "flavor": flavor,
        "created": time(i.created_at),
        "updated": time(i.updated_at),
        "addresses": addresses(i),
        "accessIPv4": i.access_ipv4.clone().unwrap_or_default(),
        "accessIPv6": i.access_ipv6.clone().unwrap_or_default(),
        "links": ctx.links("servers", &i.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": i.availability_zone.clone().unwrap_or_default(),
        "config_drive": if i.config_drive { "True" } else { "" },
        "key_name": i.key_name,
        "OS-SRV-USG:launched_at": i.launched_at.map(naive),
        "OS-SRV-USG:terminated_at": i.terminated_at.map(naive),
        "OS-EXT-STS:task_state": i.task_state,
        "OS-EXT-STS:vm_state": i.vm_state,
        "OS-EXT-STS:power_state": i.power_state,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": security_groups(i),
    });
    let m: &mut Map<String, Value> = v.as_object_mut().expect("object");
    if matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    ) {
        m.insert(
            "progress".into(),
            json!(if status == "ACTIVE" { 100 } else { 0 }),
        );
    }
    if admin {
        m.insert("OS-EXT-SRV-ATTR:host".into(), json!(i.host));
        m.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(i.node));
        m.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(i.instance_name()),
        );
        if mv.at_least(3) {
            m.insert(
                "OS-EXT-SRV-ATTR:reservation_id".into(),
                json!(i.reservation_id),
            );
            m.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(i.launch_index));
            m.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
            m.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            m.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(i.user_data));
        }
    } else if mv.at_least(90) {
        m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
    }
    if mv.at_least(9) {
        m.insert("locked".into(), json!(i.locked_by.is_some()));
    }
    if mv.at_least(16) && admin {
        m.insert(
            "host_status".into(),
            json!(if i.host.is_some() { "UP" } else { "" }),
        );
    }
    if mv.at_least(19) {
        m.insert("description".into(), json!(i.description));
    }
    if mv.at_least(26) {
        m.insert("tags".into(), json!(i.tags));
    }
    if mv.at_least(63) {
        m.insert("trusted_image_certificates".into(), Value::Null);
    }
    if mv.at_least(73) {
        m.insert("locked_reason".into(), json!(i.locked_reason));
    }
    if mv.at_least(96) {
        m.insert(
            "pinned_availability_zone".into(),
            json!(i.availability_zone),
        );
    }
    if mv.at_least(100) {
        m.insert(
            "scheduler_hints".into(),
            if i.request.scheduler_hints.is_object() {
                i.request.scheduler_hints.clone()
            } else {
                json!({})
            },
        );
    }
    if let Some(f) = &i.fault {
        let mut fault =
            json!({"code": f.code, "created": time(f.created_at), "message": f.message});
        if admin {
            fault["details"] = json!(f.details);
        }
        m.insert("fault".into(), fault);
    }
    v
}

/// Which answer a server view is for: `GET`, or the shorter one `PUT /servers/{id}` and
/// `rebuild` gave before 2.75.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ServerAnswer {
    Show,
    Update,
    Rebuild,
}

/// Before 2.75, `PUT /servers/{id}` and `rebuild` answered with the base server only (no
/// `OS-EXT-*`, `OS-SRV-USG`, key, security groups or volumes), plus the fields later
/// microversions added to those two answers; from 2.75 they answer as `GET` does. Rebuild
/// also shows the key from 2.54 and the user data from 2.57.
pub fn answer_view(
    mv: Microversion,
    mut view: Value,
    answer: ServerAnswer,
    user_data: Option<&str>,
) -> Value {
    if answer == ServerAnswer::Show {
        return view;
    }
    let rebuild = answer == ServerAnswer::Rebuild;
    if rebuild && mv.at_least(57) {
        view["user_data"] = json!(user_data);
    }
    if mv.at_least(75) {
        if rebuild {
            // The user data is the top-level field here, not the admin attribute.
            view.as_object_mut()
                .map(|m| m.remove("OS-EXT-SRV-ATTR:user_data"));
        }
        return view;
    }
    let mut keep = vec![
        "id",
        "name",
        "status",
        "image",
        "flavor",
        "fault",
        "user_id",
        "tenant_id",
        "created",
        "updated",
        "progress",
        "metadata",
        "links",
        "addresses",
        "hostId",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
    ];
    for (minor, field) in [
        (9, "locked"),
        (19, "description"),
        (26, "tags"),
        (63, "trusted_image_certificates"),
        (71, "server_groups"),
        (73, "locked_reason"),
    ] {
        if mv.at_least(minor) {
            keep.push(field);
        }
    }
    if rebuild && mv.at_least(54) {
        keep.push("key_name");
    }
    if rebuild && mv.at_least(57) {
        keep.push("user_data");
    }
    if let Some(m) = view.as_object_mut() {
        m.retain(|k, _| keep.contains(&k.as_str()));
    }
    view
}

/// `security_groups` of a server view from the names of its ports' groups.
pub fn group_names(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| json!({ "name": n })).collect())
}

/// The groups of the boot request (`default` when it named none): what a server without
/// ports shows; the handlers put the ports' groups in when the server has ports.
fn security_groups(i: &Instance) -> Value {
    let names: Vec<Value> = if i.request.security_groups.is_empty() {
        vec![json!({"name": "default"})]
    } else {
        i.request
            .security_groups
            .iter()
            .map(|n| json!({"name": n}))
            .collect()
    };
    Value::Array(names)
}

/// A server's addresses by network name, as Nova shows them in server views: fixed addresses
/// and then floating ones, each with the NIC's MAC.
pub fn addresses(i: &Instance) -> Value {
    let mut out = serde_json::Map::new();
    for vif in &i.network_info {
        let list = out
            .entry(vif.network_name.clone())
            .or_insert_with(|| json!([]));
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        for ip in &vif.fixed_ips {
            list.push(json!({
                "OS-EXT-IPS-MAC:mac_addr": vif.mac,
                "version": ip.version,
                "addr": ip.address,
                "OS-EXT-IPS:type": "fixed",
            }));
        }
        for f in &vif.floating_ips {
            list.push(json!({
                "OS-EXT-IPS-MAC:mac_addr": vif.mac,
                "version": if f.contains(':') { 6 } else { 4 },
                "addr": f,
                "OS-EXT-IPS:type": "floating",
            }));
        }
    }
    Value::Object(out)
}
