//! The format inspector: what an uploaded image really is, before anything trusts it.
//!
//! Like Glance's format inspector, it reads the headers an image carries (never the whole
//! image), names the format, reads the virtual size, and refuses images that would make
//! `qemu-img` or QEMU open other files: a qcow2 with a backing file or an external data file,
//! a VMDK whose descriptor names extent files. The declared `disk_format` must match what the
//! bytes are; "raw" bytes that are really another format are refused too, since a consumer
//! that probes the format would treat them as that format. ami/ari/aki are opaque (kernel,
//! ramdisk, machine image) and are not probed.

/// How many leading bytes the inspector needs to decide.
pub const HEADER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Vdi,
    Iso,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vdi => "vdi",
            Format::Iso => "iso",
        }
    }
}

/// What the inspector learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub format: Format,
    /// The disk size a guest sees, when the format says it.
    pub virtual_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Image disk_format is {declared} but the data is {found}.")]
    Mismatch {
        declared: String,
        found: &'static str,
    },
    #[error("qcow2 images with a backing file are not allowed.")]
    BackingFile,
    #[error("qcow2 images with an external data file are not allowed.")]
    DataFile,
    #[error("VMDK images whose descriptor refers to other files are not allowed.")]
    VmdkExtents,
    #[error("VMDK subformat {0:?} is not allowed.")]
    VmdkSubformat(String),
    #[error("The {0} header is truncated or invalid.")]
    Invalid(&'static str),
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().unwrap_or([0; 8])))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// Names the format of `head` (the first bytes of the image, up to [`HEADER_BYTES`]).
/// `total` is the whole image's size (raw images are their own virtual size).
pub fn detect(head: &[u8], total: u64) -> Result<Inspection, Refusal> {
    if head.starts_with(b"QFI\xfb") {
        return inspect_qcow2(head);
    }
    if head.starts_with(b"KDMV") {
        return inspect_vmdk_sparse(head);
    }
    if head.starts_with(b"# Disk DescriptorFile") {
        // A bare descriptor is nothing but references to other files.
        return Err(Refusal::VmdkExtents);
    }
    if head.starts_with(b"vhdxfile") {
        return Ok(Inspection {
            format: Format::Vhdx,
            virtual_size: None,
        });
    }
    if head.starts_with(b"conectix") {
        // Dynamic VHDs keep a copy of the footer at offset 0; current size at 48 (big endian).
        return Ok(Inspection {
            format: Format::Vhd,
            virtual_size: be_u64(head, 48),
        });
    }
    if le_u32(head, 64) == Some(0xbeda_107f) {
        return Ok(Inspection {
            format: Format::Vdi,
            virtual_size: le_u64(head, 368),
        });
    }
    if head.get(0x8001..0x8006) == Some(b"CD001") {
        return Ok(Inspection {
            format: Format::Iso,
            virtual_size: Some(total),
        });
    }
    Ok(Inspection {
        format: Format::Raw,
        virtual_size: Some(total),
    })
}

fn inspect_qcow2(h: &[u8]) -> Result<Inspection, Refusal> {
    let version = be_u32(h, 4).ok_or(Refusal::Invalid("qcow2"))?;
    if !(2..=3).contains(&version) || h.len() < 72 {
        return Err(Refusal::Invalid("qcow2"));
    }
    let backing_offset = be_u64(h, 8).ok_or(Refusal::Invalid("qcow2"))?;
    if backing_offset != 0 {
        return Err(Refusal::BackingFile);
    }
    let size = be_u64(h, 24).ok_or(Refusal::Invalid("qcow2"))?;
    let mut header_length = 72usize;
    if version == 3 {
        let incompatible = be_u64(h, 72).ok_or(Refusal::Invalid("qcow2"))?;
        // Bit 2: the guest data lives in an external data file.
        if incompatible & (1 << 2) != 0 {
            return Err(Refusal::DataFile);
        }
        header_length = be_u32(h, 100).ok_or(Refusal::Invalid("qcow2"))? as usize;
        if header_length < 104 {
            return Err(Refusal::Invalid("qcow2"));
        }
    }
    // Header extensions follow the header; a data-file name extension (0x44415441) or a
    // backing-format one without a backing file are both suspicious; the first is fatal.
    let mut at = header_length;
    for _ in 0..64 {
        let (Some(kind), Some(len)) = (be_u32(h, at), be_u32(h, at + 4)) else {
            break;
        };
        if kind == 0 {
            break;
        }
        if kind == 0x4441_5441 {
            return Err(Refusal::DataFile);
        }
        at = at.saturating_add(8 + (len as usize).div_ceil(8) * 8);
        if at >= h.len() {
            break;
        }
    }
    Ok(Inspection {
        format: Format::Qcow2,
        virtual_size: Some(size),
    })
}

fn inspect_vmdk_sparse(h: &[u8]) -> Result<Inspection, Refusal> {
    // Sparse extent header: capacity (sectors) at 12, descriptor offset/size (sectors) at 28/36.
    let capacity = le_u64(h, 12).ok_or(Refusal::Invalid("vmdk"))?;
    let desc_offset = le_u64(h, 28).ok_or(Refusal::Invalid("vmdk"))? as usize;
    let desc_size = le_u64(h, 36).ok_or(Refusal::Invalid("vmdk"))? as usize;
    if desc_offset == 0 || desc_size == 0 {
        return Err(Refusal::Invalid("vmdk"));
    }
    let start = desc_offset.saturating_mul(512);
    let end = start
        .saturating_add(desc_size.saturating_mul(512))
        .min(h.len());
    let desc = h.get(start..end).ok_or(Refusal::Invalid("vmdk"))?;
    let text = String::from_utf8_lossy(desc);
    let mut subformat = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("createType=") {
            subformat = Some(v.trim_matches('"').to_string());
        }
        // An extent line: ACCESS SIZE TYPE "FILENAME" [OFFSET]. Only the embedded one is safe.
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")) {
            let rest: Vec<&str> = words.collect();
            let file = rest.get(2).map(|f| f.trim_matches('"')).unwrap_or("");
            if !file.is_empty() {
                return Err(Refusal::VmdkExtents);
            }
        }
    }
    match subformat.as_deref() {
        Some("monolithicSparse" | "streamOptimized") => Ok(Inspection {
            format: Format::Vmdk,
            virtual_size: Some(capacity.saturating_mul(512)),
        }),
        Some(other) => Err(Refusal::VmdkSubformat(other.to_string())),
        None => Err(Refusal::Invalid("vmdk")),
    }
}

/// Checks the data against the declared `disk_format`; the inspection when it is acceptable.
pub fn check(declared: &str, head: &[u8], total: u64) -> Result<Inspection, Refusal> {
    if matches!(declared, "ami" | "ari" | "aki") {
        return Ok(Inspection {
            format: Format::Raw,
            virtual_size: Some(total),
        });
    }
    let found = detect(head, total)?;
    let ok = match declared {
        // An ISO is also valid raw data; a raw disk must not be another container format.
        "raw" => matches!(found.format, Format::Raw | Format::Iso),
        other => found.format.name() == other,
    };
    if ok {
        Ok(found)
    } else {
        Err(Refusal::Mismatch {
            declared: declared.to_string(),
            found: found.format.name(),
        })
    }
}

#[cfg(test)]
pub mod samples {
    //! Hand-made headers of each format, good and hostile, for tests.

    pub fn qcow2(
        version: u32,
        size: u64,
        backing: bool,
        data_file_bit: bool,
        data_file_ext: bool,
    ) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[0..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        if backing {
            h[8..16].copy_from_slice(&512u64.to_be_bytes());
            h[16..20].copy_from_slice(&10u32.to_be_bytes());
            h[512..522].copy_from_slice(b"/etc/passw");
        }
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        if version == 3 {
            if data_file_bit {
                h[72..80].copy_from_slice(&4u64.to_be_bytes());
            }
            h[100..104].copy_from_slice(&112u32.to_be_bytes());
            if data_file_ext {
                h[112..116].copy_from_slice(&0x4441_5441u32.to_be_bytes());
                h[116..120].copy_from_slice(&11u32.to_be_bytes());
                h[120..131].copy_from_slice(b"/etc/shadow");
            }
        }
        h
    }

    pub fn vmdk(create_type: &str, extent_file: &str) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[0..4].copy_from_slice(b"KDMV");
        h[12..20].copy_from_slice(&2048u64.to_le_bytes());
        h[28..36].copy_from_slice(&1u64.to_le_bytes());
        h[36..44].copy_from_slice(&2u64.to_le_bytes());
        let desc = format!(
            "# Disk DescriptorFile\nversion=1\ncreateType=\"{create_type}\"\nRW 2048 SPARSE \"{extent_file}\"\n"
        );
        h[512..512 + desc.len()].copy_from_slice(desc.as_bytes());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_images_pass_with_their_virtual_size() {
        let q = qcow2(3, 1 << 30, false, false, false);
        assert_eq!(
            check("qcow2", &q, 4096).unwrap(),
            Inspection {
                format: Format::Qcow2,
                virtual_size: Some(1 << 30)
            }
        );
        assert_eq!(
            check("qcow2", &qcow2(2, 5, false, false, false), 4096)
                .unwrap()
                .virtual_size,
            Some(5)
        );
        assert_eq!(
            check("raw", b"just some bytes", 15).unwrap().virtual_size,
            Some(15)
        );
        assert_eq!(
            check("ami", &q, 4096).unwrap().format,
            Format::Raw,
            "ami is opaque"
        );
        let mut iso = vec![0u8; 0x9000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(check("iso", &iso, 0x9000).unwrap().format, Format::Iso);
        assert_eq!(check("raw", &iso, 0x9000).unwrap().format, Format::Iso);
    }

    #[test]
    fn hostile_images_are_refused() {
        assert_eq!(
            check("qcow2", &qcow2(3, 1, true, false, false), 4096),
            Err(Refusal::BackingFile)
        );
        assert_eq!(
            check("qcow2", &qcow2(2, 1, true, false, false), 4096),
            Err(Refusal::BackingFile)
        );
        assert_eq!(
            check("qcow2", &qcow2(3, 1, false, true, false), 4096),
            Err(Refusal::DataFile)
        );
        assert_eq!(
            check("qcow2", &qcow2(3, 1, false, false, true), 4096),
            Err(Refusal::DataFile)
        );
        assert_eq!(
            check("vmdk", &vmdk("monolithicSparse", "/etc/passwd"), 4096),
            Err(Refusal::VmdkExtents)
        );
        assert_eq!(
            check("vmdk", &vmdk("twoGbMaxExtentFlat", ""), 4096),
            Err(Refusal::VmdkSubformat("twoGbMaxExtentFlat".into()))
        );
        assert_eq!(
            check(
                "vmdk",
                b"# Disk DescriptorFile\nRW 10 FLAT \"/dev/sda\" 0\n",
                40
            ),
            Err(Refusal::VmdkExtents)
        );
        assert!(
            matches!(
                check("qcow2", b"plain bytes, not qcow2", 22),
                Err(Refusal::Mismatch { .. })
            ),
            "raw data claiming qcow2"
        );
        assert!(
            matches!(
                check("raw", &qcow2(3, 1, false, false, false), 4096),
                Err(Refusal::Mismatch { .. })
            ),
            "qcow2 data claiming raw"
        );
        assert_eq!(
            check("qcow2", b"QFI\xfb\x00\x00\x00\x03", 8),
            Err(Refusal::Invalid("qcow2")),
            "truncated header"
        );
        assert_eq!(
            check("vmdk", b"KDMV\x01\x00", 6),
            Err(Refusal::Invalid("vmdk"))
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048), fmt in prop_oneof![Just("raw"), Just("qcow2"), Just("vmdk"), Just("iso")]) {
            let _ = check(fmt, &bytes, bytes.len() as u64);
        }

        #[test]
        fn never_panics_on_mangled_headers(pos in 0usize..4096, byte in any::<u8>(), which in 0usize..3) {
            let mut h = match which { 0 => qcow2(3, 1, false, false, false), 1 => qcow2(2, 1, false, false, false), _ => vmdk("monolithicSparse", "") };
            h[pos] = byte;
            let _ = detect(&h, 4096);
        }
    }
}
