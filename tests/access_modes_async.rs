//! The async stack's access modes on one connection through the simulator, with a real peer.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use bg96_sim::SimConfig;
use common::{config, nasty_payload, sim_stack};
use embedded_io_async::Write as _;
use embedded_nal_async::TcpConnect;
use quectel_bg96::commands::AccessMode;

const GUARD: Duration = Duration::from_millis(150);

fn configs() -> (SimConfig, quectel_bg96::config::Config) {
    let mut c = config();
    c.timeouts.guard_time_ms = GUARD.as_millis() as u32;
    (SimConfig { guard_time: GUARD, ..SimConfig::default() }, c)
}

async fn read_exact<R: embedded_io_async::Read>(r: &mut R, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = tokio::time::timeout(Duration::from_secs(10), r.read(&mut v[got..])).await.expect("read timed out");
        let k = k.unwrap_or_else(|e| panic!("read: {e:?}"));
        assert!(k > 0, "early end of stream after {got} of {n}");
        got += k;
    }
    v
}

#[tokio::test(flavor = "current_thread")]
async fn one_connection_through_buffer_push_transparent_buffer() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (sim_cfg, cfg) = configs();
            let (_sim, stack) = sim_stack(sim_cfg, cfg).await;
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut conn = stack.connect(addr).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

            // buffer
            let up = nasty_payload(3000);
            conn.write_all(&up).await.unwrap();
            let mut v = vec![0u8; up.len()];
            peer.read_exact(&mut v).unwrap();
            assert_eq!(v, up);
            let down = nasty_payload(3000);
            peer.write_all(&down).unwrap();
            assert_eq!(read_exact(&mut conn, down.len()).await, down);

            // direct push
            let buffer: &'static mut [u8] = Box::leak(vec![0u8; 8192].into_boxed_slice());
            conn.enable_direct_push(buffer).await.unwrap();
            assert_eq!(conn.status().await.unwrap().access_mode, AccessMode::DirectPush);
            let down = nasty_payload(5000);
            peer.write_all(&down).unwrap();
            assert_eq!(read_exact(&mut conn, down.len()).await, down);

            // transparent
            {
                let mut t = conn.transparent().await.unwrap();
                let up = nasty_payload(4000);
                t.write_all(&up).await.unwrap();
                let mut v = vec![0u8; up.len()];
                peer.read_exact(&mut v).unwrap();
                assert_eq!(v, up);
                let down = nasty_payload(4000);
                peer.write_all(&down).unwrap();
                assert_eq!(read_exact(&mut t, down.len()).await, down);
                t.exit().await.unwrap();
            }
            assert_eq!(conn.status().await.unwrap().access_mode, AccessMode::Buffer);

            // buffer again
            let down = nasty_payload(2500);
            peer.write_all(&down).unwrap();
            assert_eq!(read_exact(&mut conn, down.len()).await, down);
            conn.close().await.unwrap();
            assert_eq!(stack.sockets_in_use(), 0);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_transparent_connection_leaves_transparent_mode_first() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (sim_cfg, cfg) = configs();
            let (_sim, stack) = sim_stack(sim_cfg, cfg).await;
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut conn = stack.connect(listener.local_addr().unwrap()).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            {
                let mut t = conn.transparent().await.unwrap();
                t.write_all(b"raw").await.unwrap();
            }
            // the next command waits until the runner has left transparent mode
            let ctx = tokio::time::timeout(Duration::from_secs(5), stack.contexts()).await.unwrap().unwrap();
            assert_eq!(ctx.len(), 1);
            let mut v = [0u8; 3];
            peer.read_exact(&mut v).unwrap();
            assert_eq!(&v, b"raw", "no AT command leaked into the stream");
            peer.write_all(b"after").unwrap();
            assert_eq!(read_exact(&mut conn, 5).await, b"after");
            conn.close().await.unwrap();
        })
        .await;
}
