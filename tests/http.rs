//! reqwless 0.14, unchanged, over the async stack (`TcpConnect` + `Dns`) through the
//! simulator, against a real HTTP server (tiny_http) on loopback: GET and POST with 100 KiB
//! bodies both ways, checked byte for byte.

mod common;
mod support;

use std::net::SocketAddr;

use bg96_sim::SimConfig;
use common::{SimStack, config, sim_stack};
use embedded_io_async::Read;
use reqwless::client::HttpClient;
use reqwless::headers::ContentType;
use reqwless::request::{Method, RequestBuilder};
use reqwless::response::StatusCode;
use support::{PATIENCE, assert_bytes_eq, payload};

const BODY: usize = 100 * 1024;

/// An HTTP server on loopback: `GET /bytes/<n>/<seed>` answers `payload(n, seed)`, `POST /reverse`
/// answers the request body reversed.
fn http_server() -> SocketAddr {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let url = req.url().to_string();
            let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
            let response = match (req.method(), parts.as_slice()) {
                (tiny_http::Method::Get, ["bytes", n, seed]) => {
                    tiny_http::Response::from_data(payload(n.parse().unwrap(), seed.parse().unwrap()))
                }
                (tiny_http::Method::Post, ["reverse"]) => {
                    let mut body = Vec::new();
                    req.as_reader().read_to_end(&mut body).unwrap();
                    body.reverse();
                    tiny_http::Response::from_data(body)
                }
                _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = req.respond(response);
        }
    });
    addr
}

async fn local<F: std::future::Future<Output = ()>>(f: F) {
    let set = tokio::task::LocalSet::new();
    set.run_until(async { tokio::time::timeout(PATIENCE * 2, f).await.expect("test timed out") }).await;
}

/// The simulator resolves `web.test` to the server (reqwless asks the stack's `Dns`).
async fn stack_and_server() -> (bg96_sim::Simulator, SimStack, u16) {
    let server = http_server();
    let sim_config = SimConfig { dns: vec![("web.test".into(), vec![server.ip()])], ..SimConfig::default() };
    let (sim, stack) = sim_stack(sim_config, config()).await;
    (sim, stack, server.port())
}

async fn read_body<R: Read>(mut reader: R) -> Vec<u8>
where
    R::Error: std::fmt::Debug,
{
    let mut body = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = reader.read(&mut chunk).await.expect("body read");
        if n == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn get_a_100_kib_body() {
    local(async {
        let (sim, stack, port) = stack_and_server().await;
        let mut client = HttpClient::new(&stack, &stack);
        let url = format!("http://web.test:{port}/bytes/{BODY}/7");
        let mut rx = [0u8; 4096];
        let mut req = client.request(Method::GET, &url).await.unwrap();
        let resp = req.send(&mut rx).await.unwrap();
        assert_eq!(resp.status, StatusCode(200));
        let body = read_body(resp.body().reader()).await;
        assert_bytes_eq(&body, &payload(BODY, 7), "GET body");
        drop(req);
        stack.flush_closes().await.unwrap();
        assert_eq!(sim.open_sockets(), vec![]);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn post_a_100_kib_body_and_get_100_kib_back() {
    local(async {
        let (sim, stack, port) = stack_and_server().await;
        let mut client = HttpClient::new(&stack, &stack);
        let url = format!("http://web.test:{port}/reverse");
        let up = payload(BODY, 11);
        let mut rx = [0u8; 4096];
        let mut req = client
            .request(Method::POST, &url)
            .await
            .unwrap()
            .body(&up[..])
            .content_type(ContentType::ApplicationOctetStream);
        let resp = req.send(&mut rx).await.unwrap();
        assert_eq!(resp.status, StatusCode(200));
        let body = read_body(resp.body().reader()).await;
        let want: Vec<u8> = up.iter().rev().copied().collect();
        assert_bytes_eq(&body, &want, "POST answer");
        drop(req);
        stack.flush_closes().await.unwrap();
        assert_eq!(sim.open_sockets(), vec![]);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn get_and_post_on_one_kept_alive_connection() {
    local(async {
        let (_sim, stack, port) = stack_and_server().await;
        let mut client = HttpClient::new(&stack, &stack);
        let base = format!("http://web.test:{port}");
        let mut resource = client.resource(&base).await.unwrap();
        let mut rx = [0u8; 4096];
        for round in 0..3u8 {
            let path = format!("/bytes/{}/{round}", 20_000 + 1000 * usize::from(round));
            let resp = resource.get(&path).send(&mut rx).await.unwrap();
            assert_eq!(resp.status, StatusCode(200));
            let body = read_body(resp.body().reader()).await;
            assert_bytes_eq(&body, &payload(20_000 + 1000 * usize::from(round), round), "GET on the resource");

            let up = payload(15_000, round + 100);
            let resp = resource
                .post("/reverse")
                .body(&up[..])
                .content_type(ContentType::ApplicationOctetStream)
                .send(&mut rx)
                .await
                .unwrap();
            assert_eq!(resp.status, StatusCode(200));
            let body = read_body(resp.body().reader()).await;
            let want: Vec<u8> = up.iter().rev().copied().collect();
            assert_bytes_eq(&body, &want, "POST on the resource");
        }
        let resp = resource.get("/nothing").send(&mut rx).await.unwrap();
        assert_eq!(resp.status, StatusCode(404));
    })
    .await;
}
