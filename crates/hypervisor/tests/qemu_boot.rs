//! The QEMU driver with the project's guest image, for real (TCG on hosts whose KVM cannot
//! boot stock kernels): boot with a config drive, read the console, pause, hard reboot,
//! ACPI power-off, power-on, suspend to a file and resume, snapshot, re-adoption by a new
//! driver, destroy. Prints the accelerator, the boot time and the VM's resident memory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrostack_hypervisor::qemu::{QemuConfig, QemuDriver};
use ferrostack_hypervisor::{
    BootSource, DiskSpec, Hypervisor, NicBackend, NicSpec, PowerState, VmSpec,
};

fn guest_image() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
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

async fn wait_ready(d: &QemuDriver, uuid: &str, count: usize) -> Duration {
    let t0 = Instant::now();
    loop {
        let log = d.console_log(uuid, 1 << 20).await.unwrap();
        if log.matches("ferrostack-guest ready:").count() >= count {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no ready line #{count}; console:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn power(d: &QemuDriver, uuid: &str) -> PowerState {
    d.status(uuid).await.unwrap().unwrap().power_state
}

#[tokio::test]
async fn boots_and_controls_the_guest_image() {
    assert!(
        std::process::Command::new("qemu-system-x86_64").arg("--version").output().is_ok(),
        "qemu-system-x86_64 is missing: the test script installs it (scripts/guest-image/smoke.sh does too)"
    );
    let base = guest_image();
    let work = std::env::temp_dir().join(format!("fs-qemu-{}", uuid::Uuid::new_v4()));
    let cd = work.join("cd/openstack/latest");
    std::fs::create_dir_all(&cd).unwrap();
    let uuid = uuid::Uuid::new_v4().to_string();
    std::fs::write(
        cd.join("meta_data.json"),
        format!(r#"{{"uuid": "{uuid}", "hostname": "qemu-test", "name": "qemu-test"}}"#),
    )
    .unwrap();
    let iso = work.join("config.iso");
    let ok = std::process::Command::new("genisoimage")
        .args(["-quiet", "-J", "-r", "-V", "config-2", "-o"])
        .arg(&iso)
        .arg(work.join("cd"))
        .status()
        .expect("genisoimage is missing");
    assert!(ok.success());
    let instances = work.join("instances");
    let driver = QemuDriver::new(QemuConfig {
        instances_dir: instances.clone(),
        ..Default::default()
    })
    .unwrap();
    eprintln!("accel: {}", driver.info().accel);
    let spec = VmSpec {
        uuid: uuid.clone(),
        name: "instance-00000001".into(),
        vcpus: 1,
        memory_mb: 128,
        root_disk: DiskSpec {
            base_image: base,
            base_format: "qcow2".into(),
            size_gb: 1,
        },
        config_drive: Some(iso),
        nics: vec![NicSpec {
            port_id: "p0".into(),
            mac: "fa:16:3e:12:34:56".into(),
            backend: NicBackend::User {
                ssh_forward_port: None,
            },
        }],
        iothreads: 1,
        boot: BootSource::Disk,
    };
    let t0 = Instant::now();
    driver.create(&spec).await.unwrap();
    let created = t0.elapsed();
    driver.create(&spec).await.unwrap(); // idempotent
    let boot = wait_ready(&driver, &uuid, 1).await + created;
    let log = driver.console_log(&uuid, 1 << 20).await.unwrap();
    assert!(
        log.contains("hostname=qemu-test"),
        "the config drive was not read:\n{log}"
    );
    let pid = driver.status(&uuid).await.unwrap().unwrap().pid.unwrap();
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .map(|l| l.to_string())
        .unwrap_or_default();
    eprintln!("create() {created:?}, process start to ready {boot:?}, QEMU {rss}");

    driver.pause(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Paused);
    driver.unpause(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);

    // A new driver on the same directory re-adopts the running VM.
    let again = QemuDriver::new(QemuConfig {
        instances_dir: instances.clone(),
        ..Default::default()
    })
    .unwrap();
    let st = again.status(&uuid).await.unwrap().unwrap();
    assert_eq!((st.power_state, st.pid), (PowerState::Running, Some(pid)));
    assert_eq!(again.list().await.unwrap(), vec![uuid.clone()]);

    driver.reboot(&uuid, true).await.unwrap();
    wait_ready(&driver, &uuid, 2).await;

    let snap = work.join("snap.qcow2");
    driver.snapshot(&uuid, &snap).await.unwrap();
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&snap)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert!(
        info.get("backing-filename").is_none(),
        "snapshot has a backing file: {info}"
    );
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);

    let t = Instant::now();
    driver
        .power_off(&uuid, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!("ACPI power-off took {:?}", t.elapsed());
    assert_eq!(power(&driver, &uuid).await, PowerState::Shutdown);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
    assert!(driver
        .console_log(&uuid, 4096)
        .await
        .unwrap()
        .contains("ACPI power button"));
    driver
        .power_off(&uuid, Duration::from_secs(1))
        .await
        .unwrap(); // idempotent

    driver.power_on(&uuid).await.unwrap();
    wait_ready(&driver, &uuid, 3).await;

    driver.suspend(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Suspended);
    driver.resume(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);

    driver.destroy(&uuid).await.unwrap();
    assert!(driver.status(&uuid).await.unwrap().is_none());
    assert!(!instances.join(&uuid).exists());
    driver.destroy(&uuid).await.unwrap();
    std::fs::remove_dir_all(&work).unwrap();
}
