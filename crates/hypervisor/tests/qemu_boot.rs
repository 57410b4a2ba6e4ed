//! The QEMU driver with the project's guest image, for real (TCG on hosts whose KVM cannot
//! boot stock kernels): boot with a config drive, read the console, the power-state rules
//! (no-op unpause and resume of a running VM, refused power-on of a paused or suspended
//! one), pause, soft reboot of a paused guest (at once, not after the shutdown timeout),
//! re-adoption by a new driver, snapshot, ACPI power-off (a pause sent meanwhile waits for
//! it) and an immediate power-on (the disk's lock must be free), suspend to a file and
//! resume through `create`, a resume whose file removal was lost, the serial console's
//! login prompt, resize with revert and confirm, rescue and unrescue, destroy. One guest,
//! five boots.
//!
//! Prints the accelerator, the disk cache mode, the time of each step, and QEMU's resident
//! memory (VmRSS) at the ready line and after a resume, in lines starting `qemu-boot:` for
//! the benchmark docs (`cargo test ... -- --nocapture`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrostack_hypervisor::qemu::{resident_kib, QemuConfig, QemuDriver};
use ferrostack_hypervisor::{
    BootSource, DiskSpec, HvError, Hypervisor, NicBackend, NicSpec, PowerState, VmSpec,
};

fn guest_image() -> PathBuf {
    // Read at run time: a cached test binary may have been built in another checkout.
    let root =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../..");
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

/// The virtual size of a qcow2, in GiB.
fn virtual_gb(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["virtual-size"].as_u64().unwrap() >> 30
}

async fn power(d: &QemuDriver, uuid: &str) -> PowerState {
    d.status(uuid).await.unwrap().unwrap().power_state
}

async fn pid(d: &QemuDriver, uuid: &str) -> u32 {
    d.status(uuid)
        .await
        .unwrap()
        .unwrap()
        .pid
        .expect("a QEMU process")
}

fn refused(r: &Result<(), HvError>) -> bool {
    matches!(r, Err(HvError::InvalidState(_)))
}

/// Whether a process is gone (or a zombie, which holds no file or lock any more).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// QEMU's resident memory, printed for the benchmark docs.
fn report_rss(uuid: &str, pid: u32, memory_mb: u64, when: &str) -> u64 {
    let kib = resident_kib(pid).expect("VmRSS of the QEMU process");
    eprintln!(
        "qemu-boot: vm={uuid} guest_memory_mb={memory_mb} qemu_rss_kib={kib} qemu_rss_mib={} at={when}",
        kib / 1024
    );
    kib
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
            mtu: None,
            hotplug_slot: None,
        }],
        iothreads: 1,
        boot: BootSource::Disk,
        rescue: None,
    };
    eprintln!(
        "qemu-boot: accel={} disk_cache={}",
        driver.info().accel,
        driver.host_setup().disk_cache
    );
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
    let first = pid(&driver, &uuid).await;
    let rss = report_rss(&uuid, first, spec.memory_mb, "ready");
    assert!(rss > 16 * 1024, "a booted guest in {rss} KiB?");
    eprintln!("qemu-boot: create={created:?} start_to_ready={boot:?}");

    // The serial console: a client on the socket gets the guest's login prompt.
    let sock = driver.serial_socket(&uuid).await.unwrap();
    let mut serial = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let prompt = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            serial.write_all(b"\r").await.unwrap();
            let n = tokio::time::timeout(Duration::from_millis(500), serial.read(&mut buf))
                .await
                .unwrap_or(Ok(0))
                .unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_string();
            if text.contains("login:") {
                return text;
            }
        }
    })
    .await
    .expect("no login prompt on the serial console");
    assert!(prompt.contains("login:"), "{prompt}");
    drop(serial);

    // The rules table: a running VM takes unpause and resume as no-ops.
    driver.unpause(&uuid).await.unwrap();
    driver.resume(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    driver.pause(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Paused);
    assert!(refused(&driver.power_on(&uuid).await));
    driver.unpause(&uuid).await.unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);

    // A new driver on the same directory re-adopts the running VM.
    let again = QemuDriver::new(QemuConfig {
        instances_dir: instances.clone(),
        ..Default::default()
    })
    .unwrap();
    let st = again.status(&uuid).await.unwrap().unwrap();
    assert_eq!((st.power_state, st.pid), (PowerState::Running, Some(first)));
    assert_eq!(again.list().await.unwrap(), vec![uuid.clone()]);

    // A paused guest cannot see the power button: a soft reboot resets it at once.
    driver.pause(&uuid).await.unwrap();
    let t = Instant::now();
    driver.reboot(&uuid, false).await.unwrap();
    let rebooted = t.elapsed();
    assert!(
        rebooted < Duration::from_secs(20),
        "soft reboot of a paused guest took {rebooted:?}"
    );
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    wait_ready(&driver, &uuid, 2).await;
    eprintln!("qemu-boot: soft_reboot_of_paused={rebooted:?}");

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

    // Power-off returns once the process is gone, so a start right after it finds the
    // disk's lock free. A pause sent meanwhile waits for the VM's lock: run between the
    // power button and the shutdown, it would leave a guest that cannot shut down, and the
    // power-off would run out its timeout.
    let t = Instant::now();
    let (off, paused) = tokio::join!(driver.power_off(&uuid, Duration::from_secs(60)), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        driver.pause(&uuid).await
    });
    let took = t.elapsed();
    off.unwrap();
    assert!(
        refused(&paused),
        "pause ran during the power-off: {paused:?}"
    );
    assert!(took < Duration::from_secs(20), "power-off took {took:?}");
    eprintln!("qemu-boot: acpi_power_off={took:?}");
    assert!(
        gone(first),
        "power_off returned while QEMU {first} still lives"
    );
    assert_eq!(power(&driver, &uuid).await, PowerState::Shutdown);
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

    // Suspend; `create` of a suspended VM resumes it (no cold boot: no new ready line).
    let dir = instances.join(&uuid);
    let t = Instant::now();
    driver.suspend(&uuid).await.unwrap();
    eprintln!("qemu-boot: suspend={:?}", t.elapsed());
    assert_eq!(power(&driver, &uuid).await, PowerState::Suspended);
    assert!(dir.join("memory.state").exists() && !dir.join("memory.state.tmp").exists());
    assert!(refused(&driver.power_on(&uuid).await));
    let t = Instant::now();
    driver.create(&spec).await.unwrap();
    eprintln!("qemu-boot: resume_by_create={:?}", t.elapsed());
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    assert!(!dir.join("memory.state").exists());
    report_rss(&uuid, pid(&driver, &uuid).await, spec.memory_mb, "resumed");

    // A resume that crashed after the guest ran again but before it deleted the file: the
    // VM runs, and a later stop must not read as suspended.
    driver.suspend(&uuid).await.unwrap();
    let kept = work.join("memory.state.copy");
    std::fs::copy(dir.join("memory.state"), &kept).unwrap();
    driver.resume(&uuid).await.unwrap();
    std::fs::rename(&kept, dir.join("memory.state")).unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    driver
        .power_off(&uuid, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(power(&driver, &uuid).await, PowerState::Shutdown);
    assert!(!dir.join("memory.state").exists());
    let log = driver.console_log(&uuid, 1 << 20).await.unwrap();
    assert_eq!(log.matches("ferrostack-guest ready:").count(), 3, "{log}");

    // Resize of the stopped VM: the disk grows, the old one is kept until confirm; a
    // revert gives back the old disk and size.
    let mut bigger = spec.clone();
    bigger.memory_mb = 192;
    bigger.root_disk.size_gb = 2;
    driver.resize(&bigger).await.unwrap();
    assert_eq!(virtual_gb(&dir.join("disk.qcow2")), 2);
    assert!(dir.join("disk.qcow2.pre-resize").exists());
    driver.resize(&bigger).await.unwrap(); // a retry keeps the first backup
    driver.revert_resize(&uuid).await.unwrap();
    assert_eq!(virtual_gb(&dir.join("disk.qcow2")), 1);
    assert!(std::fs::read_to_string(dir.join("spec.json"))
        .unwrap()
        .contains("\"memory_mb\": 128"));
    driver.resize(&bigger).await.unwrap();
    driver.confirm_resize(&uuid).await.unwrap();
    assert!(!dir.join("disk.qcow2.pre-resize").exists());
    assert_eq!(virtual_gb(&dir.join("disk.qcow2")), 2);

    // Rescue: the VM boots the rescue disk with its own config drive (its hostname shows),
    // the own disk second; unrescue boots the own disk again and drops the rescue disk.
    let rescue_cd = work.join("rescue-cd/openstack/latest");
    std::fs::create_dir_all(&rescue_cd).unwrap();
    std::fs::write(
        rescue_cd.join("meta_data.json"),
        format!(r#"{{"uuid": "{uuid}", "hostname": "rescue-test", "name": "qemu-test"}}"#),
    )
    .unwrap();
    let rescue_iso = work.join("rescue.iso");
    assert!(std::process::Command::new("genisoimage")
        .args(["-quiet", "-J", "-r", "-V", "config-2", "-o"])
        .arg(&rescue_iso)
        .arg(work.join("rescue-cd"))
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    driver
        .rescue(&uuid, &spec.root_disk, Some(&rescue_iso))
        .await
        .unwrap();
    wait_ready(&driver, &uuid, 4).await;
    eprintln!("qemu-boot: rescue_to_ready={:?}", t.elapsed());
    assert!(dir.join("rescue.qcow2").exists());
    let log = driver.console_log(&uuid, 1 << 20).await.unwrap();
    assert!(log.contains("hostname=rescue-test"), "{log}");
    driver
        .rescue(&uuid, &spec.root_disk, Some(&rescue_iso))
        .await
        .unwrap(); // a retry leaves it rescued and running
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    driver.unrescue(&uuid).await.unwrap();
    wait_ready(&driver, &uuid, 5).await;
    assert!(!dir.join("rescue.qcow2").exists());
    assert_eq!(power(&driver, &uuid).await, PowerState::Running);
    let log = driver.console_log(&uuid, 1 << 20).await.unwrap();
    assert_eq!(log.matches("hostname=qemu-test").count(), 4, "{log}");

    driver.destroy(&uuid).await.unwrap();
    assert!(driver.status(&uuid).await.unwrap().is_none());
    assert!(!instances.join(&uuid).exists());
    driver.destroy(&uuid).await.unwrap();
    std::fs::remove_dir_all(&work).unwrap();
}
