//! HTTP over the async stack with reqwless 0.14, unchanged (`HttpClient::new(&stack, &stack)`:
//! the stack is both its `TcpConnect` and its `Dns`): a GET and a POST.
//!
//! ```sh
//! cargo run --example http                # simulated BG96 + HTTP server (tiny_http) in-process
//! cargo run --example http -- --serial /dev/ttyUSB0 --apn APN --host example.com
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Instant;

use embedded_io_async::Read;
use reqwless::client::HttpClient;
use reqwless::headers::ContentType;
use reqwless::request::{Method, RequestBuilder};
use support::{Args, BoxError, TokioClock};

const ABOUT: support::About = support::About {
    name: "http",
    what: "HTTP with reqwless 0.14 over the async stack: a GET (and a POST on the simulator)",
    host: "with --serial: the web server's name (GET http://HOST:PORT/)",
    port: "with --serial: the web server's port (default 80)",
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    support::init_logging();
    let args = Args::parse(&ABOUT);
    let local = tokio::task::LocalSet::new();
    support::exit_on_error(local.run_until(run(&args)).await);
}

async fn run(args: &Args) -> Result<(), BoxError> {
    match &args.serial {
        Some(path) => {
            let (host, port) = args.peer(Some(80))?;
            let (rx, tx) = support::open_async(path, args.baud)?;
            let stack = support::start_async(rx, tx, args.config()?).await?;
            let body = get(&stack, &format!("http://{host}:{port}/")).await?;
            println!("{}", String::from_utf8_lossy(&body[..body.len().min(200)]));
            Ok(())
        }
        None => {
            let server = web_server();
            println!("HTTP server (tiny_http) on {server}");
            let (_sim, serial) = support::simulator(&[("web.test", server.ip())]);
            let (rx, tx) = serial.split();
            let stack = support::start_async(rx, tx, args.config()?).await?;
            let base = format!("http://web.test:{}", server.port());
            let body = get(&stack, &format!("{base}/hello")).await?;
            if body != b"hello from tiny_http\n" {
                return Err("unexpected GET body".into());
            }
            let upload: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
            post(&stack, &format!("{base}/echo"), &upload).await
        }
    }
}

type AsyncStack<W> = quectel_bg96::asynch::Stack<'static, W, TokioClock>;

async fn get<W: embedded_io_async::Write>(stack: &AsyncStack<W>, url: &str) -> Result<Vec<u8>, BoxError> {
    let started = Instant::now();
    let mut client = HttpClient::new(stack, stack);
    let mut rx = [0u8; 4096];
    let mut request = client.request(Method::GET, url).await.map_err(support::err)?;
    let response = request.send(&mut rx).await.map_err(support::err)?;
    let status = response.status;
    let body = read_all(response.body().reader()).await?;
    println!("GET {url}: status {}, {} bytes in {}", status.0, body.len(), support::ms(started));
    Ok(body)
}

async fn post<W: embedded_io_async::Write>(stack: &AsyncStack<W>, url: &str, upload: &[u8]) -> Result<(), BoxError> {
    let started = Instant::now();
    let mut client = HttpClient::new(stack, stack);
    let mut rx = [0u8; 4096];
    let request = client.request(Method::POST, url).await.map_err(support::err)?;
    let mut request = request.body(upload).content_type(ContentType::ApplicationOctetStream);
    let response = request.send(&mut rx).await.map_err(support::err)?;
    let status = response.status;
    let body = read_all(response.body().reader()).await?;
    println!(
        "POST {url}: {} bytes up, status {}, {} bytes back in {}",
        upload.len(),
        status.0,
        body.len(),
        support::ms(started)
    );
    if body != upload {
        return Err("the echoed body differs".into());
    }
    Ok(())
}

async fn read_all<R: Read>(mut reader: R) -> Result<Vec<u8>, BoxError> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) => return Ok(body),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(support::err(e)),
        }
    }
}

/// `GET /hello` and `POST /echo` on loopback.
fn web_server() -> SocketAddr {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let response = match (request.method(), request.url()) {
                (tiny_http::Method::Get, "/hello") => {
                    tiny_http::Response::from_data(b"hello from tiny_http\n".to_vec())
                }
                (tiny_http::Method::Post, "/echo") => {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    tiny_http::Response::from_data(body)
                }
                _ => tiny_http::Response::from_data(b"not found\n".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    addr
}
