//! The async stack (embedded-nal-async 0.9) through the simulator under tokio, against real
//! peers on loopback: concurrent connections from different tasks, a slow reader among them,
//! UDP through `UdpStack`, DNS, and connectIDs freed when connections are dropped.

mod common;
mod support;

use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use bg96_sim::SimConfig;
use common::{SimStack, config, sim_stack};
use embedded_io_async::{Read, Write};
use embedded_nal_async::{AddrType, ConnectedUdp, Dns, TcpConnect, UdpStack, UnconnectedUdp};
use quectel_bg96::Error;
use support::{PATIENCE, assert_bytes_eq, free_udp_port, payload, tcp_echo_server, tcp_server};

/// Runs `f` on a `LocalSet` (the runner is spawned there), failing after [`PATIENCE`].
async fn local<F: Future<Output = ()>>(f: F) {
    let set = tokio::task::LocalSet::new();
    set.run_until(async { tokio::time::timeout(PATIENCE * 2, f).await.expect("test timed out") }).await;
}

async fn stack() -> (bg96_sim::Simulator, SimStack) {
    sim_stack(SimConfig::default(), config()).await
}

async fn read_exact<R: Read>(r: &mut R, n: usize, what: &str) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = match tokio::time::timeout(PATIENCE, r.read(&mut v[got..])).await {
            Ok(Ok(k)) => k,
            Ok(Err(e)) => panic!("{what}: read after {got} of {n} bytes: {e:?}"),
            Err(_) => panic!("{what}: read timed out after {got} of {n} bytes"),
        };
        assert!(k > 0, "{what}: end of stream after {got} of {n} bytes");
        got += k;
    }
    v
}

async fn assert_no_sockets(sim: &bg96_sim::Simulator, stack: &SimStack) {
    stack.flush_closes().await.unwrap();
    assert_eq!(stack.sockets_in_use(), 0, "the stack still counts connectIDs in use");
    assert_eq!(sim.open_sockets(), vec![], "the modem still has connectIDs open");
}

/// Echoes `rounds` payloads on one connection and checks them; returns the connectID.
async fn echo_task(stack: SimStack, echo: SocketAddr, i: usize, rounds: usize) -> u8 {
    let mut conn = TcpConnect::connect(&stack, echo).await.unwrap_or_else(|e| panic!("connect {i}: {e:?}"));
    let id = conn.connect_id();
    for round in 0..rounds {
        // sizes differ per connection and round; each fits the modem's receive buffer, so
        // writing all before reading cannot stall
        let data = payload(700 + 1234 * i + 3001 * round, (i * 16 + round) as u8);
        conn.write_all(&data).await.unwrap_or_else(|e| panic!("write {i}/{round}: {e:?}"));
        let back = read_exact(&mut conn, data.len(), &format!("connection {i} round {round}")).await;
        assert_bytes_eq(&back, &data, &format!("echo on connection {i} round {round}"));
    }
    conn.close().await.unwrap();
    id
}

#[tokio::test(flavor = "current_thread")]
async fn twelve_concurrent_echo_connections_from_different_tasks() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = tcp_echo_server();
        let tasks: Vec<_> = (0..12).map(|i| tokio::task::spawn_local(echo_task(stack, echo, i, 3))).collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 12, "twelve connections, twelve connectIDs");
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn thirteenth_connection_is_no_free_socket() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = tcp_echo_server();
        let mut conns = Vec::new();
        for _ in 0..12 {
            conns.push(TcpConnect::connect(&stack, echo).await.unwrap());
        }
        assert_eq!(TcpConnect::connect(&stack, echo).await.err(), Some(Error::NoFreeSocket));
        assert_eq!(
            stack.bind_single(SocketAddr::from(([0, 0, 0, 0], free_udp_port()))).await.err(),
            Some(Error::NoFreeSocket)
        );
        drop(conns.pop());
        let mut again = TcpConnect::connect(&stack, echo).await.unwrap();
        again.write_all(b"ping").await.unwrap();
        assert_eq!(read_exact(&mut again, 4, "13th after a drop").await, b"ping");
        drop(again);
        drop(conns);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_reader_and_an_idle_reader_do_not_stall_the_others() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = tcp_echo_server();
        // the slow reader's peer sends far more than the modem buffers
        let flood = payload(200_000, 9);
        let sent = flood.clone();
        let firehose = tcp_server(move |mut s| {
            let _ = s.write_all(&sent);
        });
        // the idle reader's peer says nothing until the others are done
        let (say_bye, bye) = std::sync::mpsc::channel::<()>();
        let bye = std::sync::Mutex::new(bye);
        let idle_addr = tcp_server(move |mut s| {
            let _ = bye.lock().unwrap().recv();
            let _ = s.write_all(b"bye");
        });

        let others_done = Rc::new(tokio::sync::Notify::new());
        let slow = {
            let done = others_done.clone();
            let flood = flood.clone();
            tokio::task::spawn_local(async move {
                let mut conn = TcpConnect::connect(&stack, firehose).await.unwrap();
                let mut got = read_exact(&mut conn, 100, "slow reader's first bytes").await;
                // stop reading until every other connection finished its work
                done.notified().await;
                got.extend(read_exact(&mut conn, flood.len() - 100, "slow reader's rest").await);
                assert_bytes_eq(&got, &flood, "the slow reader's stream");
                let mut end = [0u8; 8];
                assert_eq!(conn.read(&mut end).await.unwrap(), 0, "end of stream after the peer closed");
            })
        };
        let idle = tokio::task::spawn_local(async move {
            let mut conn = TcpConnect::connect(&stack, idle_addr).await.unwrap();
            let mut buf = [0u8; 16];
            // waits for the modem's recv URC while the others work
            let n = conn.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"bye");
            assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
        });

        let fast: Vec<_> = (0..10).map(|i| tokio::task::spawn_local(echo_task(stack, echo, i, 2))).collect();
        for t in fast {
            t.await.unwrap();
        }
        others_done.notify_one();
        say_bye.send(()).unwrap();
        slow.await.unwrap();
        idle.await.unwrap();
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn udp_connected_socket_echo() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = support::udp_echo_server();
        let (_local, mut sock) = UdpStack::connect(&stack, echo).await.unwrap();
        let mut buf = [0u8; 1500];
        let mut datagrams: Vec<Vec<u8>> = vec![b"OK\r\n".to_vec(), b"\r\n> ".to_vec(), (0..=255u8).collect()];
        datagrams.extend([1usize, 99, 1000, 1460].iter().enumerate().map(|(i, &n)| payload(n, i as u8)));
        for d in &datagrams {
            sock.send(d).await.unwrap();
            let n = tokio::time::timeout(PATIENCE, sock.receive_into(&mut buf)).await.unwrap().unwrap();
            assert_bytes_eq(&buf[..n], d, &format!("datagram of {} bytes", d.len()));
        }
        assert_eq!(sock.send(&[0u8; 1461]).await, Err(Error::InvalidArgument));
        drop(sock);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn udp_bound_socket_serves_several_peers_with_their_addresses() {
    local(async {
        let (sim, stack) = stack().await;
        let port = free_udp_port();
        let (local, mut sock) = stack.bind_single(SocketAddr::from(([0, 0, 0, 0], port))).await.unwrap();
        assert_eq!(local.port(), port);
        let service = SocketAddr::from(([127, 0, 0, 1], port));
        let peers: Vec<UdpSocket> = (0..3)
            .map(|_| {
                let p = UdpSocket::bind("127.0.0.1:0").unwrap();
                p.set_read_timeout(Some(PATIENCE)).unwrap();
                p
            })
            .collect();
        for (i, p) in peers.iter().enumerate() {
            p.send_to(&payload(200 + i * 500, i as u8), service).unwrap();
        }
        let mut buf = [0u8; 1500];
        let mut seen = Vec::new();
        for _ in 0..peers.len() {
            let (n, to, from) = tokio::time::timeout(PATIENCE, sock.receive_into(&mut buf)).await.unwrap().unwrap();
            assert_eq!(to, local);
            let i = peers.iter().position(|p| p.local_addr().unwrap() == from).expect("sender is a peer");
            assert_bytes_eq(&buf[..n], &payload(200 + i * 500, i as u8), &format!("datagram from peer {i}"));
            seen.push(i);
            let reply = format!("hello peer {i}");
            sock.send(local, from, reply.as_bytes()).await.unwrap();
        }
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);
        for (i, p) in peers.iter().enumerate() {
            let mut b = [0u8; 64];
            let (n, from) = p.recv_from(&mut b).unwrap();
            assert_eq!(from, service);
            assert_eq!(&b[..n], format!("hello peer {i}").as_bytes());
        }
        // another local address than the modem's is refused
        let other = SocketAddr::from(([10, 0, 0, 1], port));
        let to = peers[0].local_addr().unwrap();
        assert_eq!(sock.send(other, to, b"x").await, Err(Error::InvalidArgument));
        drop(sock);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn dns_lookups_including_concurrent_ones() {
    local(async {
        let names: Vec<(String, Vec<IpAddr>)> = (0..4)
            .map(|i| (format!("host{i}.test"), vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1))]))
            .chain([("v6.test".to_string(), vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])])
            .collect();
        let (_sim, stack) = sim_stack(SimConfig { dns: names, ..SimConfig::default() }, config()).await;
        assert_eq!(stack.get_host_by_name("localhost", AddrType::IPv4).await, Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(stack.get_host_by_name("v6.test", AddrType::Either).await, Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(stack.get_host_by_name("v6.test", AddrType::IPv4).await, Err(Error::NotFound));
        assert_eq!(
            stack.get_host_by_name("missing.test", AddrType::Either).await,
            Err(Error::Modem(quectel_bg96::ErrorCode::DnsParseFailed))
        );
        // one query at a time in the modem: concurrent callers take turns
        let tasks: Vec<_> = (0..4u8)
            .map(|i| {
                tokio::task::spawn_local(async move {
                    let got = stack.get_host_by_name(&format!("host{i}.test"), AddrType::Either).await;
                    assert_eq!(got, Ok(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1))), "host{i}.test");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut out = [0u8; 32];
        assert_eq!(
            stack.get_host_by_address(IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out).await,
            Err(Error::NotSupported)
        );
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_connections_frees_their_connect_ids() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = tcp_echo_server();
        let conn = TcpConnect::connect(&stack, echo).await.unwrap();
        drop(conn);
        assert_no_sockets(&sim, &stack).await;

        // twelve, dropped, and twelve again
        for round in 0..2 {
            let mut conns = Vec::new();
            for _ in 0..12 {
                conns.push(TcpConnect::connect(&stack, echo).await.unwrap());
            }
            for (i, c) in conns.iter_mut().enumerate() {
                c.write_all(&[i as u8; 10]).await.unwrap();
            }
            for (i, c) in conns.iter_mut().enumerate() {
                assert_eq!(read_exact(c, 10, &format!("round {round}")).await, vec![i as u8; 10]);
            }
            drop(conns);
            assert_no_sockets(&sim, &stack).await;
        }

        // dropped with unread data, and in the middle of a read
        let mut conn = TcpConnect::connect(&stack, echo).await.unwrap();
        conn.write_all(&payload(5000, 1)).await.unwrap();
        drop(conn);
        let mut conn = TcpConnect::connect(&stack, echo).await.unwrap();
        let mut buf = [0u8; 64];
        assert!(tokio::time::timeout(Duration::from_millis(50), conn.read(&mut buf)).await.is_err());
        drop(conn);
        let (_, udp) = UdpStack::connect(&stack, support::udp_echo_server()).await.unwrap();
        drop(udp);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn peer_close_is_end_of_stream_after_the_data() {
    local(async {
        let (sim, stack) = stack().await;
        let data = payload(30_000, 5);
        let sent = data.clone();
        let server = tcp_server(move |mut s| {
            s.write_all(&sent).unwrap();
        });
        let mut conn = TcpConnect::connect(&stack, server).await.unwrap();
        let got = read_exact(&mut conn, data.len(), "before the close").await;
        assert_bytes_eq(&got, &data, "data before the close");
        let mut buf = [0u8; 100];
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0, "end of stream stays");
        assert!(conn.write_all(b"late").await.is_err(), "writing after the peer closed fails");
        drop(conn);
        assert_no_sockets(&sim, &stack).await;

        // a refused connection is an error and leaks nothing
        let refused = SocketAddr::from(([127, 0, 0, 1], support::free_tcp_port()));
        assert_eq!(
            TcpConnect::connect(&stack, refused).await.err(),
            Some(Error::Modem(quectel_bg96::ErrorCode::SocketConnectFailed))
        );
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_connect_is_closed_in_the_background() {
    local(async {
        let (sim, stack) = stack().await;
        let echo = tcp_echo_server();
        // the modem says OK but its +QIOPEN never comes: the caller gives up
        sim.drop_deferred("AT+QIOPEN");
        let attempt = tokio::time::timeout(Duration::from_millis(200), TcpConnect::connect(&stack, echo)).await;
        assert!(attempt.is_err(), "the connect should still be waiting");
        assert_no_sockets(&sim, &stack).await;
        // and the stack works on
        let mut conn = TcpConnect::connect(&stack, echo).await.unwrap();
        conn.write_all(b"after").await.unwrap();
        assert_eq!(read_exact(&mut conn, 5, "after a cancelled connect").await, b"after");
        drop(conn);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn udp_bind_to_port_0_picks_a_port() {
    local(async {
        let (sim, stack) = stack().await;
        let (local, mut sock) = stack.bind_single(SocketAddr::from(([0, 0, 0, 0], 0))).await.unwrap();
        assert_ne!(local.port(), 0);
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"to the picked port", ("127.0.0.1", local.port())).unwrap();
        let mut buf = [0u8; 64];
        let (n, _, from) = tokio::time::timeout(PATIENCE, sock.receive_into(&mut buf)).await.unwrap().unwrap();
        assert_eq!((&buf[..n], from), (&b"to the picked port"[..], peer.local_addr().unwrap()));
        drop(sock);
        assert_no_sockets(&sim, &stack).await;
    })
    .await;
}

/// Found here: `bind_single` to port 0 took the next port from 49152 up without checking
/// whether the stack's own services used it, so the modem answered "port busy" (574) and the
/// bind failed instead of moving on to a free port.
#[tokio::test(flavor = "current_thread")]
async fn regression_udp_bind_to_port_0_skips_ports_in_use() {
    local(async {
        let (_sim, stack) = stack().await;
        // the stack's own service on the first port it would pick
        let (_, _own) = stack.bind_single(SocketAddr::from(([0, 0, 0, 0], 49152))).await.expect("bind 49152");
        let (local, _picked) = stack.bind_single(SocketAddr::from(([0, 0, 0, 0], 0))).await.expect("bind port 0");
        assert_ne!(local.port(), 49152);
        assert!(local.port() >= 49152);
    })
    .await;
}
