//! The driver on a microcontroller core: `firmware/qemu-lm3s6965` runs under QEMU's
//! `lm3s6965evb` (Cortex-M3) with its modem UART connected to bg96-sim over loopback, and does
//! an MQTT round trip to an in-process broker, once with the blocking stack and minimq 0.10
//! (`mqtt_blocking`), once with the async stack on embassy-executor and minimq 0.13
//! (`mqtt_async`). Each test asserts the firmware's exit status and the round trip in its log,
//! and prints the firmware's flash, static RAM and peak stack.
//!
//! Skipped, with a message, where `qemu-system-arm` or the `thumbv7m-none-eabi` target is
//! missing, unless `BG96_QEMU_REQUIRED=1` (CI sets it), which makes a missing tool a failure.

#[path = "support/firmware.rs"]
mod firmware;
mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bg96_sim::{SimConfig, Simulator};

/// How long one QEMU run may take (the firmware gives up after 60 s of its own time).
const RUN_LIMIT: Duration = Duration::from_secs(180);
const TARGET: &str = "thumbv7m-none-eabi";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why the test cannot run here, if it cannot.
fn missing_tool() -> Option<String> {
    if Command::new("qemu-system-arm").arg("--version").output().is_err() {
        return Some("qemu-system-arm is not installed (apt-get install qemu-system-arm)".into());
    }
    if !firmware::target_installed(TARGET) {
        return Some(format!("the {TARGET} target is not installed (rustup target add {TARGET})"));
    }
    None
}

/// Builds both firmwares once (in their own target directory: the outer `cargo test` holds
/// the lock of the workspace's) and returns the directory of the ELF files.
fn firmware() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(why) = missing_tool() {
                assert!(std::env::var("BG96_QEMU_REQUIRED").as_deref() != Ok("1"), "BG96_QEMU_REQUIRED=1 but {why}");
                eprintln!("SKIPPED: {why}");
                return None;
            }
            let dir = root().join("firmware/qemu-lm3s6965");
            let target = root().join("target/qemu-lm3s6965");
            let started = Instant::now();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--locked", "--bins"])
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(&dir)
                .status()
                .expect("run cargo for the firmware");
            assert!(status.success(), "the firmware did not build");
            eprintln!("firmware built in {:.1} s", started.elapsed().as_secs_f64());
            Some(target.join(TARGET).join("release"))
        })
        .clone()
}

fn broker() -> SocketAddr {
    static BROKER: OnceLock<SocketAddr> = OnceLock::new();
    *BROKER.get_or_init(support::start_broker)
}

/// Boots `bin` under QEMU with UART1 on a fresh simulator; returns its UART0 log.
fn boot(bin: &str) -> Option<String> {
    // QEMU runs are heavy on a 2-core machine: one at a time
    static ONE: Mutex<()> = Mutex::new(());
    let elf_dir = firmware()?;
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let elf = elf_dir.join(bin);
    let broker = broker();
    let (_sim, sim_addr) = Simulator::listen_tcp(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let log_path = std::env::temp_dir().join(format!("bg96-qemu-{bin}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log_path);
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m3", "-machine", "lm3s6965evb", "-display", "none", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log_path.display()))
        .arg("-serial")
        .arg(format!("tcp:{sim_addr}"))
        .arg("-semihosting-config")
        .arg(format!("enable=on,target=native,arg={bin},arg=host=localhost,arg=port={}", broker.port()))
        .arg("-kernel")
        .arg(&elf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-arm");
    let status = loop {
        if let Some(status) = qemu.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut qemu_out = String::new();
    if let Some(mut e) = qemu.stderr.take() {
        let _ = e.read_to_string(&mut qemu_out);
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    println!("--- {bin} (UART0) ---\n{log}\n--- qemu: {} ---", qemu_out.trim());
    match status {
        Some(s) => assert!(s.success(), "{bin} failed ({s}); its log:\n{log}"),
        None => panic!("{bin} did not finish within {RUN_LIMIT:?}; its log:\n{log}"),
    }
    let elf_bytes = std::fs::read(&elf).unwrap();
    let (flash, ram) = firmware::elf_sizes(&elf_bytes).expect("an ELF32 file");
    let stack = log.lines().find_map(|l| l.split("stack used: ").nth(1)).unwrap_or("?").trim().to_string();
    println!(
        "qemu {bin}: flash {flash} bytes, static RAM {ram} bytes, peak stack {stack}, run {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Some(log)
}

#[test]
fn blocking_firmware_does_an_mqtt_round_trip_under_qemu() {
    let Some(log) = boot("mqtt_blocking") else { return };
    assert!(log.contains("modem up: firmware BG96"), "no bring-up in the log");
    assert!(log.contains("ROUNDTRIP OK blocking 300 bytes"), "no round trip in the log");
    assert!(!log.contains("FAILED"));
}

#[test]
fn async_firmware_does_an_mqtt_round_trip_under_qemu() {
    let Some(log) = boot("mqtt_async") else { return };
    assert!(log.contains("modem up: firmware BG96"), "no bring-up in the log");
    assert!(log.contains("ROUNDTRIP OK async 300 bytes"), "no round trip in the log");
    assert!(!log.contains("FAILED"));
    // the futures' sizes on Cortex-M3 (the firmware logs them), with some headroom: a buffer
    // held across an await in the command path would show here
    for (name, budget) in [
        ("bring_up", 1024),
        ("get_host_by_name", 1024),
        ("connect", 1280),
        ("TcpConnection read", 1024),
        ("write", 1024),
    ] {
        let size = future_size(&log, name).unwrap_or_else(|| panic!("no size of {name} in the log"));
        assert!(size <= budget, "the {name} future takes {size} bytes (budget {budget})");
    }
}

/// The size the firmware logged for the future `name` (`... <name> <n> bytes ...`).
fn future_size(log: &str, name: &str) -> Option<usize> {
    log.lines().filter(|l| l.contains("future size:")).find_map(|l| {
        let rest = l.split(&format!(" {name} ")).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
