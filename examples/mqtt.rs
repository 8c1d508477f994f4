//! MQTT over the blocking stack with minimq 0.10, unchanged: connects to a broker by name (the
//! modem resolves it), subscribes, publishes, and receives its own message.
//!
//! ```sh
//! cargo run --example mqtt                # simulated BG96 + MQTT broker (rumqttd) in-process
//! cargo run --example mqtt -- --serial /dev/ttyUSB0 --apn APN --host test.mosquitto.org
//! ```
//!
//! minimq 0.10 takes the stack by value: `&Bg96` is the `TcpClientStack`, and the same `&Bg96`
//! is the `Dns` of minimq's `NamedBroker`.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use embedded_io::{Read, ReadReady, Write};
use minimq010::broker::{Broker, NamedBroker};
use minimq010::{ConfigBuilder, Minimq, Publication, QoS};
use quectel_bg96::blocking::Bg96;
use support::{Args, BoxError, MqttClock, Serial, StdClock};

const ABOUT: support::About = support::About {
    name: "mqtt",
    what: "MQTT with minimq 0.10 over the blocking stack: subscribe, publish, receive",
    host: "with --serial: the MQTT 5 broker's name or address",
    port: "with --serial: the broker's port (default 1883)",
};

const TOPIC: &str = "bg96/example/hello";

fn main() {
    support::init_logging();
    let args = Args::parse(&ABOUT);
    support::exit_on_error(run(&args));
}

fn run(args: &Args) -> Result<(), BoxError> {
    match &args.serial {
        Some(path) => {
            let (host, port) = args.peer(Some(1883))?;
            let modem = Bg96::new(Serial::open(path, args.baud)?, StdClock::default(), args.config()?);
            round_trip(&modem, &host, port)
        }
        None => {
            let broker = support::mqtt_broker();
            println!("MQTT broker (rumqttd) on {broker}");
            let (_sim, serial) = support::simulator(&[("broker.test", broker.ip())]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            round_trip(&modem, "broker.test", broker.port())
        }
    }
}

fn round_trip<S: Read + ReadReady + Write>(modem: &Bg96<S, StdClock>, host: &str, port: u16) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let client_id = format!("bg96-example-{}", std::process::id());
    let message = format!("hello from {client_id}");
    let mut broker: NamedBroker<_> = NamedBroker::new(host, modem).map_err(support::err)?;
    broker.set_port(port);
    let mut buffer = [0u8; 1024];
    let config = ConfigBuilder::new(broker, &mut buffer).client_id(&client_id).map_err(support::err)?;
    let mut mqtt: Minimq<'_, _, _, NamedBroker<_>> =
        Minimq::new(modem, MqttClock::default(), config.keepalive_interval(60));

    let started = Instant::now();
    let (mut connected, mut subscribed, mut published) = (false, false, false);
    loop {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("no round trip in 60 s (connected {connected}, subscribed {subscribed})").into());
        }
        let received = match mqtt.poll(|_client, topic, payload, _properties| (topic.to_string(), payload.to_vec())) {
            Ok(received) => received,
            // a new session on the first connection: nothing to worry about
            Err(minimq010::Error::SessionReset) => None,
            Err(e) => return Err(format!("MQTT: {e:?}").into()),
        };
        if let Some((topic, payload)) = received {
            println!("received on {topic}: {:?}", String::from_utf8_lossy(&payload));
            if payload != message.as_bytes() {
                return Err("received a different message".into());
            }
            break;
        }
        let client = mqtt.client();
        if !connected && client.is_connected() {
            connected = true;
            println!("connected to {host}:{port} as {client_id} ({})", support::ms(started));
        }
        if connected && !subscribed {
            client.subscribe(&[TOPIC.into()], &[]).map_err(support::err)?;
            subscribed = true;
        } else if subscribed && !published && !client.subscriptions_pending() {
            println!("subscribed to {TOPIC}; publishing");
            client.publish(Publication::new(TOPIC, message.as_bytes()).qos(QoS::AtLeastOnce)).map_err(support::err)?;
            published = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("MQTT round trip through the BG96 done in {}", support::ms(started));
    Ok(())
}
