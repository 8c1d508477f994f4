//! Shared code of the integration tests through the simulator: loopback peers (echo servers,
//! an in-process MQTT broker), a non-blocking retry loop and payload checks.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// How long a test waits for anything before it fails (well under the suite's limits).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Retries a non-blocking call until it is done; panics after [`PATIENCE`].
pub fn retry<T, E>(what: &str, mut f: impl FnMut() -> nb::Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(nb::Error::Other(e)) => return Err(e),
            Err(nb::Error::WouldBlock) => {
                assert!(Instant::now() < deadline, "{what}: still WouldBlock after {PATIENCE:?}");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// Payload of `len` bytes: AT framing (`OK\r\n`, `\r\n> `, `+QIURC: "closed",0`, ...) and
/// every byte value, shifted by `seed` so that different connections carry different bytes.
pub fn payload(len: usize, seed: u8) -> Vec<u8> {
    let pieces: [&[u8]; 6] =
        [b"OK\r\n", b"\r\n> ", b"+QIURC: \"closed\",0", b"\r\nSEND OK\r\n", b"\r\n+QIRD: 1500\r\n", b"\r\nERROR\r\n"];
    let mut v = Vec::with_capacity(len + 300);
    let mut i = 0usize;
    while v.len() < len {
        v.extend_from_slice(pieces[i % pieces.len()]);
        v.extend((0..=255u8).map(|b| b.wrapping_add(seed).wrapping_add(i as u8)));
        i += 1;
    }
    v.truncate(len);
    v
}

/// Asserts that two byte strings are equal; on a difference it reports where, not the bytes.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| String::from_utf8_lossy(&b[at.min(b.len())..(at + 24).min(b.len())]).into_owned();
    panic!(
        "{what}: got {} bytes, want {}; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// A port nobody listens on right now (the OS picked it; it is free again after this call).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A UDP port nobody uses right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP echo server on loopback: every connection gets back what it sends, until it closes.
pub fn tcp_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

/// A UDP echo server on loopback: every datagram goes back to its sender.
pub fn udp_echo_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

/// A listener whose connections are handed to `serve` in a thread each.
pub fn tcp_server(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// An MQTT broker (rumqttd, MQTT 5 listener) in this process; returns its address.
pub fn start_broker() -> SocketAddr {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let port = free_tcp_port();
    let mut v5 = std::collections::HashMap::new();
    v5.insert(
        "v5".to_string(),
        ServerSettings {
            name: "v5".into(),
            listen: ([127, 0, 0, 1], port).into(),
            tls: None,
            next_connection_delay_ms: 1,
            connections: ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: 20_480,
                max_inflight_count: 100,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        },
    );
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: None,
        v5: Some(v5),
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    let mut broker = Broker::new(config);
    std::thread::spawn(move || broker.start().expect("rumqttd"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + PATIENCE;
    // wait until it listens (each probe makes rumqttd log a harmless connect error)
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "rumqttd did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    addr
}

/// The external broker CI provides (`MQTT_BROKER=host:port`), resolved on the host.
pub fn external_broker() -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let spec = std::env::var("MQTT_BROKER").ok().filter(|s| !s.is_empty())?;
    let addr = spec.to_socket_addrs().unwrap_or_else(|e| panic!("MQTT_BROKER={spec}: {e}")).next();
    Some(addr.unwrap_or_else(|| panic!("MQTT_BROKER={spec}: no address")))
}

/// Milliseconds since creation as an embedded-time 0.12 clock (what minimq 0.10 needs).
#[derive(Clone, Copy)]
pub struct MqttClock(pub Instant);

impl Default for MqttClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl embedded_time::Clock for MqttClock {
    type T = u32;
    const SCALING_FACTOR: embedded_time::rate::Fraction = embedded_time::rate::Fraction::new(1, 1000);

    fn try_now(&self) -> Result<embedded_time::Instant<Self>, embedded_time::clock::Error> {
        Ok(embedded_time::Instant::new(self.0.elapsed().as_millis() as u32))
    }
}

/// A client ID or topic suffix unique to this process and call (brokers are shared).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
