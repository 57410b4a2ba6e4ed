//! NIC hot-plug with the QEMU driver and the project's guest image, for real: a NIC
//! attached to a running guest shows up on a spare root port (`query-pci`), stays across a
//! hard reboot, and is released by the guest on detach; a NIC attached to a stopped VM is
//! there at its next start. User-mode NICs stand in for taps (no Open vSwitch needed); the
//! QMP calls are the same but for the backend.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrostack_hypervisor::qemu::{pci_has, QemuConfig, QemuDriver};
use ferrostack_hypervisor::{qmp, BootSource, DiskSpec, Hypervisor, NicBackend, NicSpec, VmSpec};

fn guest_image() -> PathBuf {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..");
    let out = std::process::Command::new(root.join("scripts/guest-image/build.sh"))
        .output()
        .expect("running scripts/guest-image/build.sh");
    assert!(
        out.status.success(),
        "guest image build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    PathBuf::from(dir).join("disk.qcow2")
}

async fn wait_ready(d: &QemuDriver, uuid: &str, count: usize) {
    let t0 = Instant::now();
    loop {
        let log = d.console_log(uuid, 1 << 20).await.unwrap();
        if log.matches("ferrostack-guest ready:").count() >= count {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no ready line #{count}; console:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn nic(port: &str, mac: &str) -> NicSpec {
    NicSpec {
        port_id: port.into(),
        mac: mac.into(),
        backend: NicBackend::User {
            ssh_forward_port: None,
        },
        mtu: Some(1400),
        hotplug_slot: None,
    }
}

async fn pci(dir: &Path) -> serde_json::Value {
    qmp::execute(
        &dir.join("qmp.sock"),
        "query-pci",
        None,
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

fn recorded(dir: &Path) -> VmSpec {
    serde_json::from_str(&std::fs::read_to_string(dir.join("spec.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn hot_plugs_and_unplugs_a_nic() {
    assert!(
        std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_ok(),
        "qemu-system-x86_64 is missing: the test script installs it"
    );
    let base = guest_image();
    // Short: the QMP socket path must fit in 108 bytes.
    let work = std::env::temp_dir().join(format!("fs-qhp-{}", uuid::Uuid::new_v4()));
    let instances = work.join("instances");
    let driver = QemuDriver::new(QemuConfig {
        instances_dir: instances.clone(),
        ..Default::default()
    })
    .unwrap();
    let uuid = uuid::Uuid::new_v4().to_string();
    let dir = instances.join(&uuid);
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: "instance-00000002".into(),
        vcpus: 1,
        memory_mb: 128,
        root_disk: DiskSpec {
            base_image: base,
            base_format: "qcow2".into(),
            size_gb: 1,
        },
        config_drive: None,
        nics: vec![nic("p0", "fa:16:3e:12:34:56")],
        iothreads: 1,
        boot: BootSource::Disk,
        rescue: None,
    };
    driver.create(&spec).await.unwrap();
    wait_ready(&driver, &uuid, 1).await;

    // Hot-plugged into the first spare root port, recorded with it; a repeat is a no-op.
    let t0 = Instant::now();
    driver
        .attach_nic(&uuid, &nic("p1", "fa:16:3e:12:34:57"))
        .await
        .unwrap();
    eprintln!("qemu-hotplug: attach took {:?}", t0.elapsed());
    driver
        .attach_nic(&uuid, &nic("p1", "fa:16:3e:12:34:57"))
        .await
        .unwrap();
    assert!(pci_has(&pci(&dir).await, "nic-p1"), "{}", pci(&dir).await);
    let nics = recorded(&dir).nics;
    assert_eq!(nics.len(), 2);
    assert_eq!(nics[1].hotplug_slot, Some(0));

    // A hard reboot starts QEMU again with it on the same root port.
    driver.reboot(&uuid, true).await.unwrap();
    wait_ready(&driver, &uuid, 2).await;
    assert!(pci_has(&pci(&dir).await, "nic-p1"));

    // The guest lets it go on detach.
    let t0 = Instant::now();
    driver.detach_nic(&uuid, "p1").await.unwrap();
    eprintln!("qemu-hotplug: detach took {:?}", t0.elapsed());
    assert!(!pci_has(&pci(&dir).await, "nic-p1"));
    assert_eq!(recorded(&dir).nics.len(), 1);
    driver.detach_nic(&uuid, "p1").await.unwrap(); // fine when gone

    // A stopped VM gets it at its next start.
    driver
        .power_off(&uuid, Duration::from_secs(30))
        .await
        .unwrap();
    driver
        .attach_nic(&uuid, &nic("p2", "fa:16:3e:12:34:58"))
        .await
        .unwrap();
    assert_eq!(recorded(&dir).nics[1].hotplug_slot, None);
    driver.power_on(&uuid).await.unwrap();
    wait_ready(&driver, &uuid, 3).await;
    assert!(pci_has(&pci(&dir).await, "nic-p2"));
    let log = driver.console_log(&uuid, 1 << 20).await.unwrap();
    let last = log.lines().rev().find(|l| l.contains("ready:")).unwrap();
    eprintln!("qemu-hotplug: {last}");

    driver.destroy(&uuid).await.unwrap();
    let _ = std::fs::remove_dir_all(&work);
}
