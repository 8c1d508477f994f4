//! The wire-level benchmark: `cargo bench --bench wire`.
//!
//! Runs the stack through bg96-sim paced at a real baud rate (8N1: 10 bits a byte in both
//! directions) and prints one line per figure, `name value unit`. Efficiencies are payload
//! bytes over what the line could carry in the elapsed time. Counted figures (AT commands,
//! turn-arounds, bytes) come from the simulator's counters and wire log and do not depend on
//! the machine; timed figures do a little (this machine is shared: run it twice).
//!
//! `BENCH_KIB` sets the bulk transfer size (default 128 KiB); `BENCH_ONLY` (a substring) runs
//! only the figures whose name contains it.

#[path = "../tests/support/firmware.rs"]
mod firmware;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use bg96_sim::{Direction, SimConfig, Simulator};
use embedded_nal::TcpClientStack;
use quectel_bg96::blocking::{Bg96, TcpSocket};
use quectel_bg96::clock::Clock;
use quectel_bg96::config::Config;

#[derive(Clone, Copy)]
struct StdClock(Instant);
impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

type Modem = Bg96<bg96_sim::HostPort, StdClock>;

fn start(baud: Option<u32>) -> (Simulator, Modem) {
    let (sim, port) = Simulator::spawn(SimConfig { baud, ..SimConfig::default() });
    let mut config = Config::new("internet").unwrap();
    // the benchmark measures transfers, not the acknowledgement checks that follow them
    config.recovery.ack_supervision = false;
    let modem = Bg96::new(port, StdClock(Instant::now()), config);
    modem.bring_up().unwrap();
    (sim, modem)
}

fn print(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.4} {unit}");
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

fn connect(modem: &Modem, addr: SocketAddr) -> TcpSocket {
    let mut stack = modem;
    let mut s = stack.socket().unwrap();
    nb::block!(stack.connect(&mut s, addr)).unwrap();
    s
}

fn receive_all(modem: &Modem, sock: &mut TcpSocket, n: usize) -> Vec<u8> {
    let mut stack = modem;
    let mut got = Vec::with_capacity(n);
    let mut buf = [0u8; 1500];
    while got.len() < n {
        match stack.receive(sock, &mut buf) {
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(nb::Error::WouldBlock) => std::hint::spin_loop(),
            Err(nb::Error::Other(e)) => panic!("receive: {e:?}"),
        }
    }
    got
}

fn line_rate(baud: u32) -> f64 {
    f64::from(baud) / 10.0
}

/// Bulk TCP download in buffer access mode (or direct push).
fn tcp_download(baud: u32, size: usize, push: bool) -> f64 {
    let (_sim, modem) = start(Some(baud));
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap());
    let (mut conn, _) = peer.accept().unwrap();
    if push {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 16 * 1024].into_boxed_slice());
        modem.enable_direct_push(&sock, buf).unwrap();
    }
    let data = payload(size);
    // from the moment the peer sends: the recv URC and the first AT+QIRD are part of it
    let t0 = Instant::now();
    let writer = std::thread::spawn({
        let data = data.clone();
        move || conn.write_all(&data).map(|_| conn)
    });
    let got = receive_all(&modem, &mut sock, size);
    let elapsed = t0.elapsed().as_secs_f64();
    assert!(got == data, "payload must arrive intact");
    drop(writer.join().unwrap());
    let mut stack = &modem;
    stack.close(sock).unwrap();
    size as f64 / (elapsed * line_rate(baud))
}

/// Bulk TCP upload in buffer access mode.
fn tcp_upload(baud: u32, size: usize) -> f64 {
    let (_sim, modem) = start(Some(baud));
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap());
    let (mut conn, _) = peer.accept().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = vec![0u8; size];
        conn.read_exact(&mut v).map(|_| v)
    });
    let data = payload(size);
    let mut stack = &modem;
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < size {
        match stack.send(&mut sock, &data[sent..]) {
            Ok(n) => sent += n,
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            Err(nb::Error::Other(e)) => panic!("send: {e:?}"),
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    assert!(reader.join().unwrap().unwrap() == data, "payload must arrive intact");
    stack.close(sock).unwrap();
    size as f64 / (elapsed * line_rate(baud))
}

/// Transparent access mode, one direction.
fn transparent(baud: u32, size: usize, upload: bool) -> f64 {
    use embedded_io::{Read as _, Write as _};
    let (_sim, modem) = start(Some(baud));
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let sock = connect(&modem, peer.local_addr().unwrap());
    let (mut conn, _) = peer.accept().unwrap();
    let data = payload(size);
    let elapsed;
    {
        let mut t = modem.enter_transparent(&sock).unwrap();
        if upload {
            let reader = std::thread::spawn(move || {
                let mut v = vec![0u8; size];
                conn.read_exact(&mut v).map(|_| (v, Instant::now(), conn))
            });
            let t0 = Instant::now();
            t.write_all(&data).unwrap();
            let (v, done, c) = reader.join().unwrap().unwrap();
            elapsed = (done - t0).as_secs_f64();
            assert!(v == data);
            conn = c;
        } else {
            let t0 = Instant::now();
            let writer = std::thread::spawn({
                let data = data.clone();
                move || conn.write_all(&data).map(|_| conn)
            });
            let mut got = vec![0u8; size];
            let mut n = 0;
            while n < size {
                n += t.read(&mut got[n..]).unwrap();
            }
            elapsed = t0.elapsed().as_secs_f64();
            assert!(got == data);
            conn = writer.join().unwrap().unwrap();
        }
        t.exit().unwrap();
    }
    drop(conn);
    let mut stack = &modem;
    let _ = stack.close(sock);
    size as f64 / (elapsed * line_rate(baud))
}

fn udp_roundtrip_ms(baud: u32, rounds: u32) -> f64 {
    let (_sim, modem) = start(Some(baud));
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut b) {
            let _ = echo.send_to(&b[..n], from);
        }
    });
    let mut stack = &modem;
    let mut s = embedded_nal::UdpClientStack::socket(&mut stack).unwrap();
    embedded_nal::UdpClientStack::connect(&mut stack, &mut s, addr).unwrap();
    let mut buf = [0u8; 1500];
    let t0 = Instant::now();
    for _ in 0..rounds {
        nb::block!(embedded_nal::UdpClientStack::send(&mut stack, &mut s, &[0x55; 32])).unwrap();
        let (n, _) = nb::block!(embedded_nal::UdpClientStack::receive(&mut stack, &mut s, &mut buf)).unwrap();
        assert_eq!(n, 32);
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    embedded_nal::UdpClientStack::close(&mut stack, s).unwrap();
    ms
}

/// AT commands that one QoS 0 publication of 64 bytes costs with minimq 0.10 (unchanged) over
/// the blocking stack, on an established MQTT connection to an in-process broker.
fn mqtt_publish_qos0() -> f64 {
    use minimq010::{ConfigBuilder, Minimq, Publication, QoS, broker::IpBroker};
    let (sim, modem) = start(Some(115_200));
    let broker_addr = support::start_broker();
    let mut broker = IpBroker::new(broker_addr.ip());
    minimq010::broker::Broker::set_port(&mut broker, broker_addr.port());
    let mut buffer = [0u8; 1024];
    let config = ConfigBuilder::new(broker, &mut buffer).client_id("bg96-bench").unwrap();
    let mut mqtt = Minimq::new(&modem, support::MqttClock::default(), config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let poll = |mqtt: &mut Minimq<'_, &Modem, support::MqttClock, IpBroker>| {
        match mqtt.poll(|_, _, _, _| ()) {
            Ok(_) | Err(minimq010::Error::SessionReset) => {}
            Err(e) => panic!("MQTT poll: {e:?}"),
        }
        assert!(Instant::now() < deadline, "no MQTT connection");
        std::thread::sleep(Duration::from_millis(1));
    };
    while !mqtt.client().is_connected() {
        poll(&mut mqtt);
    }
    // let the connection settle (CONNACK read, nothing pending)
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(200) {
        poll(&mut mqtt);
    }
    let message = payload(64);
    let cmds0 = sim.stats().commands;
    mqtt.client().publish(Publication::new("bg96/bench", &message[..]).qos(QoS::AtMostOnce)).unwrap();
    sim.stats().commands.saturating_sub(cmds0) as f64
}

/// AT commands and wire turn-arounds of one 1 KiB echo (send 1 KiB, receive it back).
fn echo_1k() -> (f64, f64) {
    let (sim, modem) = start(Some(115_200));
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap());
    let (mut conn, _) = peer.accept().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = conn.read(&mut b) {
            if n == 0 || conn.write_all(&b[..n]).is_err() {
                break;
            }
        }
    });
    let data = payload(1024);
    let mut stack = &modem;
    // settle: everything of the connect is on the wire log already
    std::thread::sleep(Duration::from_millis(50));
    let cmds0 = sim.stats().commands;
    let log0 = sim.wire_log().len();
    let mut sent = 0;
    while sent < data.len() {
        sent += nb::block!(stack.send(&mut sock, &data[sent..])).unwrap();
    }
    let got = receive_all(&modem, &mut sock, data.len());
    assert!(got == data);
    let commands = sim.stats().commands - cmds0;
    let turns = turnarounds(&sim, log0);
    stack.close(sock).unwrap();
    (commands as f64, turns as f64)
}

/// Direction changes on the wire after the first `from` log records.
fn turnarounds(sim: &Simulator, from: usize) -> usize {
    let log = sim.wire_log();
    let dirs: Vec<Direction> = log.iter().skip(from).map(|r| r.direction).collect();
    dirs.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!dirs.is_empty())
}

/// Bytes on the wire in 10 s with open, idle sockets, while the application keeps polling.
fn idle_wire_bytes(seconds: u64) -> f64 {
    let (sim, modem) = start(Some(115_200));
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut socks: Vec<TcpSocket> = (0..3).map(|_| connect(&modem, peer.local_addr().unwrap())).collect();
    let mut stack = &modem;
    std::thread::sleep(Duration::from_millis(100));
    let s0 = sim.stats();
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    while t0.elapsed() < Duration::from_secs(seconds) {
        for s in socks.iter_mut() {
            assert!(matches!(stack.receive(s, &mut buf), Err(nb::Error::WouldBlock)));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let s1 = sim.stats();
    for s in socks {
        stack.close(s).unwrap();
    }
    ((s1.bytes_to_modem - s0.bytes_to_modem) + (s1.bytes_from_modem - s0.bytes_from_modem)) as f64
}

/// The probe's flash and static RAM (with the crate's default features, or with `extra` cargo
/// arguments); `None`, with the reason printed, where it cannot be built.
fn firmware_size(extra: &[&str]) -> Option<firmware::Footprint> {
    firmware_sizes(extra).map(|(probe, _)| probe)
}

/// [`firmware_size`] of the probe and of its baseline (the same board without the stack).
fn firmware_sizes(extra: &[&str]) -> Option<(firmware::Footprint, firmware::Footprint)> {
    firmware::size_probe_sizes(extra).map_err(|why| println!("# flash/ram: {why}")).ok()
}

fn main() {
    let kib: usize = std::env::var("BENCH_KIB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let want = |name: &str| name.contains(only.as_str());
    let size = kib * 1024;
    println!("# quectel-bg96 wire benchmark: {kib} KiB bulk transfers through bg96-sim (8N1)");
    if want("tcp_download_115200") {
        print("tcp_download_115200_efficiency", tcp_download(115_200, size, false), &format!("fraction ({kib} KiB)"));
    }
    if want("tcp_upload_115200") {
        print("tcp_upload_115200_efficiency", tcp_upload(115_200, size), &format!("fraction ({kib} KiB)"));
    }
    if want("tcp_download_921600") {
        print("tcp_download_921600_efficiency", tcp_download(921_600, size, false), &format!("fraction ({kib} KiB)"));
    }
    if want("tcp_upload_921600") {
        print("tcp_upload_921600_efficiency", tcp_upload(921_600, size), &format!("fraction ({kib} KiB)"));
    }
    if want("direct_push") {
        print(
            "direct_push_download_115200_efficiency",
            tcp_download(115_200, size, true),
            &format!("fraction ({kib} KiB)"),
        );
    }
    if want("transparent_download") {
        print(
            "transparent_download_115200_efficiency",
            transparent(115_200, size, false),
            &format!("fraction ({kib} KiB)"),
        );
    }
    if want("transparent_upload") {
        print(
            "transparent_upload_115200_efficiency",
            transparent(115_200, size, true),
            &format!("fraction ({kib} KiB)"),
        );
    }
    if want("udp_roundtrip") {
        print("udp_roundtrip_115200_ms", udp_roundtrip_ms(115_200, 20), "ms (32-byte datagram, mean of 20)");
    }
    if want("mqtt_publish_qos0") {
        print("mqtt_publish_qos0_at_commands", mqtt_publish_qos0(), "commands (minimq 0.10, 64-byte QoS 0 publish)");
    }
    if want("echo_1k") {
        let (c, t) = echo_1k();
        print("echo_1k_at_commands", c, "commands (1 KiB out and back)");
        print("echo_1k_wire_turnarounds", t, "turn-arounds (1 KiB out and back)");
    }
    if want("idle_wire_bytes") {
        print("idle_wire_bytes", idle_wire_bytes(10), "bytes (10 s, 3 open idle sockets)");
    }
    if want("flash") || want("ram") {
        match firmware_sizes(&[]) {
            Some(((flash, ram), (base_flash, base_ram))) => {
                print("flash_text_bytes", flash as f64, "bytes (firmware/size-probe, opt-level z, LTO; features ipv6)");
                print("ram_static_bytes", ram as f64, "bytes (firmware/size-probe, whole stack in .bss)");
                print(
                    "flash_crate_bytes",
                    flash.saturating_sub(base_flash) as f64,
                    "bytes (the probe minus its baseline: the same board, vector table and user buffer without the stack)",
                );
                print("ram_crate_bytes", ram.saturating_sub(base_ram) as f64, "bytes (the same)");
                if let Some((flash, ram)) = firmware_size(&["--features", "ping,ntp,transparent,direct-push,server"]) {
                    print(
                        "flash_text_bytes_default_features",
                        flash as f64,
                        "bytes (the same probe with all the crate's default features: ipv6, ping, ntp, transparent, direct-push, server)",
                    );
                    print("ram_static_bytes_default_features", ram as f64, "bytes (the same)");
                }
                if let Some((flash, _)) = firmware_size(&["--no-default-features"]) {
                    print(
                        "flash_text_bytes_ipv4_only",
                        flash as f64,
                        "bytes (the same probe without the crate's ipv6 feature)",
                    );
                }
            }
            None => {
                println!("# flash/ram: could not build firmware/size-probe (rustup target add thumbv7em-none-eabihf)")
            }
        }
    }
}
