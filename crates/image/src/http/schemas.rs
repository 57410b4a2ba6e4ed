//! The JSON schemas Glance publishes at `/v2/schemas/*` (clients use them to validate and to
//! know which attributes are core).

use serde_json::{json, Value};

use crate::config::ImageConfig;
use crate::model::{CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES};

pub fn image(config: &ImageConfig) -> Value {
    let nullable_string = |desc: &str| json!({"type": ["null", "string"], "description": desc});
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image", "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": VISIBILITIES},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.", "maxLength": 32},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128},
            "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "description": "Format of the container", "enum": CONTAINER_FORMATS.iter().map(|f| json!(f)).chain([Value::Null]).collect::<Vec<_>>()},
            "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": DISK_FORMATS.iter().map(|f| json!(f)).chain([Value::Null]).collect::<Vec<_>>()},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image", "items": {"type": "string", "maxLength": 255}, "maxItems": config.image_tag_quota},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "stores": {"type": "string", "readOnly": true, "description": "Store in which image data resides."},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store", "items": {"type": "object"}},
            "kernel_id": nullable_string("ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."),
            "ramdisk_id": nullable_string("ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."),
            "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this image is associated with."},
            "architecture": {"type": "string", "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_distro": {"type": "string", "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_version": {"type": "string", "description": "Operating system version as specified by the distributor."},
        },
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

pub fn images(config: &ImageConfig) -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image(config)},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}],
    })
}

pub fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "description": "The status of this image member", "enum": ["pending", "accepted", "rejected"]},
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true},
        },
    })
}

pub fn members() -> Value {
    json!({"name": "members", "properties": {"members": {"type": "array", "items": member()}, "schema": {"type": "string"}}, "links": [{"rel": "describedby", "href": "{schema}"}]})
}
