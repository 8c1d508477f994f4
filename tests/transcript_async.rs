//! Transcript-exact tests of the async stack (runner + stack) on a scripted modem, including
//! what happens when futures are cancelled half-way.

mod common;

use std::time::Duration;

use common::{MockSerial, Script, TokioClock, bring_up_script, config};
use embedded_io_async::{Read, Write};
use embedded_nal_async::TcpConnect;
use quectel_bg96::Error;
use quectel_bg96::asynch::{self, Resources, Stack};

type TestStack = Stack<'static, MockSerial, TokioClock>;

/// Runs `test` with a brought-up stack whose runner is spawned on the same thread.
async fn with_stack<F, Fut>(s: &Script, test: F)
where
    F: FnOnce(TestStack) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    bring_up_script(s);
    let res: &'static Resources<MockSerial, TokioClock> =
        Box::leak(Box::new(Resources::new(s.serial(), TokioClock::default(), config())));
    let (stack, runner) = asynch::new(res, s.serial());
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            tokio::task::spawn_local(async move {
                runner.run().await;
            });
            let info = stack.bring_up().await.unwrap();
            assert_eq!(info.local_ip, Some("10.0.0.2".parse().unwrap()));
            test(stack).await;
        })
        .await;
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn connect_write_read_eof_and_drop_closes() {
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",8009,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
        let mut conn = stack.connect("127.0.0.1:8009".parse().unwrap()).await.unwrap();
        assert_eq!(conn.connect_id(), 0);
        s.exchange("AT+QISEND=0,5\r", "\r\n> ").exchange("hello", "\r\nSEND OK\r\n");
        conn.write_all(b"hello").await.unwrap();

        // read waits for the recv URC: nothing is written while idle
        let before = s.written().len();
        let mut buf = [0u8; 64];
        let pending = tokio::time::timeout(Duration::from_millis(30), conn.read(&mut buf)).await;
        assert!(pending.is_err(), "no data yet");
        assert_eq!(s.written().len(), before, "no polling of the modem while idle");

        s.exchange("AT+QIRD=0,64\r", "\r\n+QIRD: 6\r\n\r\nOK\r\n\r\n\r\nOK\r\n");
        s.inject("\r\n+QIURC: \"recv\",0\r\n");
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\r\nOK\r\n");

        s.inject("\r\n+QIURC: \"closed\",0\r\n");
        s.exchange("AT+QIRD=0,64\r", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0, "end of stream after the drain");
        assert!(matches!(conn.write(b"x").await, Err(Error::Closed)));

        s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
        drop(conn);
        stack.flush_closes().await.unwrap();
        settle().await;
        s.assert_done();
        assert_eq!(stack.sockets_in_use(), 0);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_read_keeps_its_payload_for_the_next_read() {
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
        let mut conn = stack.connect("127.0.0.1:80".parse().unwrap()).await.unwrap();
        s.inject("\r\n+QIURC: \"recv\",0\r\n");
        s.expect(b"AT+QIRD=0,64\r");
        let mut buf = [0u8; 64];
        // the read sends AT+QIRD, then its future is dropped before the answer
        let cancelled = tokio::time::timeout(Duration::from_millis(30), conn.read(&mut buf)).await;
        assert!(cancelled.is_err());
        s.inject("\r\n+QIRD: 5\r\nhello\r\n\r\nOK\r\n");
        settle().await;
        let written = s.written().len();
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello", "nothing lost");
        assert_eq!(s.written().len(), written, "delivered from what the cancelled read received");
        s.assert_done();
        s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
        conn.close().await.unwrap();
        s.assert_done();
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_send_is_filled_up_so_the_modem_stays_in_step() {
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
        let mut conn = stack.connect("127.0.0.1:80".parse().unwrap()).await.unwrap();
        s.expect(b"AT+QISEND=0,5\r");
        let cancelled = tokio::time::timeout(Duration::from_millis(30), conn.write(b"hello")).await;
        assert!(cancelled.is_err());
        // the prompt comes late; the next command fills the payload up first
        s.inject("\r\n> ");
        s.expect(b"\r\r\r\r\r").reply(b"\r\nSEND OK\r\n");
        s.exchange("AT\r", "\r\nOK\r\n");
        stack.command(&quectel_bg96::commands::At).await.unwrap();
        assert!(matches!(conn.write(b"more").await, Err(Error::Closed)), "that stream is broken now");
        s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
        drop(conn);
        stack.flush_closes().await.unwrap();
        s.assert_done();
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_connect_closes_its_socket() {
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n");
        // no +QIOPEN comes; the caller gives up and the socket is closed in the background
        s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
        let cancelled =
            tokio::time::timeout(Duration::from_millis(30), stack.connect("127.0.0.1:80".parse().unwrap())).await;
        assert!(cancelled.is_err());
        stack.flush_closes().await.unwrap();
        settle().await;
        s.assert_done();
        assert_eq!(stack.sockets_in_use(), 0);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_lookup_gives_its_query_up_and_the_next_one_gets_its_own_answer() {
    use embedded_nal_async::Dns;
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        // the first lookup's query is accepted, then the lookup is dropped before its answer
        s.exchange("AT+QIDNSGIP=1,\"first.example\"\r", "\r\nOK\r\n");
        let cancelled = tokio::time::timeout(
            Duration::from_millis(50),
            stack.get_host_by_name("first.example", embedded_nal_async::AddrType::Either),
        )
        .await;
        assert!(cancelled.is_err());
        s.assert_done();

        // the modem runs one query at a time: the next lookup waits for the abandoned one ...
        s.exchange(
            "AT+QIDNSGIP=1,\"second.example\"\r",
            "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"10.0.0.22\"\r\n",
        );
        let written = s.written().len();
        let mut second = std::pin::pin!(stack.get_host_by_name("second.example", embedded_nal_async::AddrType::Either));
        let waiting = tokio::time::timeout(Duration::from_millis(100), &mut second).await;
        assert!(waiting.is_err(), "waits for the first query");
        assert_eq!(s.written().len(), written, "no second query while the first still runs");

        // ... whose late answer is dropped, and not handed to the second lookup
        let started = std::time::Instant::now();
        s.inject("\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"10.0.0.11\"\r\n");
        let ip = tokio::time::timeout(Duration::from_secs(5), second).await.expect("not held up");
        assert_eq!(ip, Ok("10.0.0.22".parse::<std::net::IpAddr>().unwrap()));
        assert!(started.elapsed() < Duration::from_secs(5));
        s.assert_done();

        // and the stack resolves on as before
        s.exchange(
            "AT+QIDNSGIP=1,\"third.example\"\r",
            "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"10.0.0.33\"\r\n",
        );
        let ip = stack.get_host_by_name("third.example", embedded_nal_async::AddrType::Either).await;
        assert_eq!(ip, Ok("10.0.0.33".parse::<std::net::IpAddr>().unwrap()));
        s.assert_done();
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn dns_and_errors() {
    use embedded_nal_async::Dns;
    let s = Script::new();
    let s2 = s.clone();
    with_stack(&s, |stack| async move {
        let s = s2;
        s.exchange(
            "AT+QIDNSGIP=1,\"localhost\"\r",
            "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n",
        );
        let ip = stack.get_host_by_name("localhost", embedded_nal_async::AddrType::Either).await.unwrap();
        assert_eq!(ip, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
        // a command line longer than the pieces the async front writes it in (64 bytes)
        let long = format!("{}.example.com", ["a-long-label"; 12].join("."));
        s.exchange(
            &format!("AT+QIDNSGIP=1,\"{long}\"\r"),
            "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"10.9.8.7\"\r\n",
        );
        let ip2 = stack.get_host_by_name(&long, embedded_nal_async::AddrType::Either).await.unwrap();
        assert_eq!(ip2, "10.9.8.7".parse::<std::net::IpAddr>().unwrap());
        let mut out = [0u8; 8];
        assert_eq!(stack.get_host_by_address(ip, &mut out).await, Err(Error::NotSupported));
        s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",1,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,566\r\n");
        s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
        assert_eq!(
            stack.connect("127.0.0.1:1".parse().unwrap()).await.err(),
            Some(Error::Modem(quectel_bg96::ErrorCode::SocketConnectFailed))
        );
        stack.flush_closes().await.unwrap();
        s.assert_done();
    })
    .await;
}
