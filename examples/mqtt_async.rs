//! MQTT over the async stack with minimq 0.13, unchanged: a connection from `TcpConnect`
//! carries the session; subscribe, publish, receive the own message.
//!
//! ```sh
//! cargo run --example mqtt_async          # simulated BG96 + MQTT broker (rumqttd) in-process
//! cargo run --example mqtt_async -- --serial /dev/ttyUSB0 --apn APN --host test.mosquitto.org
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedded_nal_async::{AddrType, Dns, TcpConnect};
use minimq013::{Buffers, ConfigBuilder, Publication, QoS, Session, TopicFilter};
use quectel_bg96::asynch::Stack;
use support::{Args, BoxError, TokioClock};

const ABOUT: support::About = support::About {
    name: "mqtt_async",
    what: "MQTT with minimq 0.13 over the async stack's TcpConnect: subscribe, publish, receive",
    host: "with --serial: the MQTT 5 broker's name or address",
    port: "with --serial: the broker's port (default 1883)",
};

const TOPIC: &str = "bg96/example/async";

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
            let (host, port) = args.peer(Some(1883))?;
            let (rx, tx) = support::open_async(path, args.baud)?;
            let stack = support::start_async(rx, tx, args.config()?).await?;
            round_trip(stack, &host, port).await
        }
        None => {
            let broker = support::mqtt_broker();
            println!("MQTT broker (rumqttd) on {broker}");
            let (_sim, serial) = support::simulator(&[("broker.test", broker.ip())]);
            let (rx, tx) = serial.split();
            let stack = support::start_async(rx, tx, args.config()?).await?;
            round_trip(stack, "broker.test", broker.port()).await
        }
    }
}

async fn round_trip<W: embedded_io_async::Write>(
    stack: Stack<'static, W, TokioClock>,
    host: &str,
    port: u16,
) -> Result<(), BoxError> {
    let started = Instant::now();
    let ip = stack.get_host_by_name(host, AddrType::Either).await?;
    let connection = TcpConnect::connect(&stack, SocketAddr::new(ip, port)).await?;
    println!("TCP connection to {ip}:{port} on connectID {}", connection.connect_id());

    let client_id = format!("bg96-async-{}", std::process::id());
    let message = format!("hello from {client_id}");
    let (rx, tx) = (&mut [0u8; 1024], &mut [0u8; 1024]);
    let mut session =
        Session::new(ConfigBuilder::new(Buffers::new(rx, tx)).client_id(&client_id).map_err(support::err)?);
    let mut mqtt = session.connect(connection).await.map_err(support::err)?;
    println!("connected as {client_id} ({})", support::ms(started));
    mqtt.subscribe(&[TopicFilter::new(TOPIC)], &[]).await.map_err(support::err)?;
    mqtt.publish(Publication::new(TOPIC, message.as_bytes()).qos(QoS::AtLeastOnce)).await.map_err(support::err)?;
    println!("subscribed to {TOPIC} and published");
    let received = tokio::time::timeout(Duration::from_secs(30), mqtt.recv()).await?.map_err(support::err)?;
    println!("received on {}: {:?}", received.topic(), String::from_utf8_lossy(received.payload()));
    if received.payload() != message.as_bytes() {
        return Err("received a different message".into());
    }
    mqtt.disconnect().await.map_err(support::err)?;
    stack.flush_closes().await?;
    println!("MQTT round trip through the BG96 done in {}; disconnected", support::ms(started));
    Ok(())
}
