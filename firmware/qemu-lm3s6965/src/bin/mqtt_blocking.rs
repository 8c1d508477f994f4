//! Blocking stack + minimq 0.10: brings the modem up, resolves the broker through the modem's
//! DNS, subscribes to a topic, publishes a message on it and waits for it to come back.
//!
//! Success: logs `ROUNDTRIP OK blocking <n> bytes` and exits QEMU with status 0. Failure (any
//! error, or no round trip within 60 s of firmware time): logs `FAILED: <why>`, exits with 1.
#![no_std]
#![no_main]

use fw::modem_uart::PolledSerial;
use fw::time::{self, MinimqClock};
use fw::{Broker, log};
use minimq010::broker::{Broker as _, NamedBroker};
use minimq010::types::TopicFilter;
use minimq010::{ConfigBuilder, Minimq, Publication, QoS};
use quectel_bg96::blocking::Bg96;
use quectel_bg96::clock::EmbassyClock;
use quectel_bg96::config::Config;

const TOPIC: &str = "bg96/qemu/blocking";
const CLIENT_ID: &str = "bg96-qemu-blocking";
/// The whole run (bring-up included) must finish within this much firmware time.
const DEADLINE_MS: u64 = 60_000;

/// Logs why and fails.
macro_rules! fail {
    ($($arg:tt)*) => {{
        log!("FAILED: {}", format_args!($($arg)*));
        return Err(());
    }};
}

#[cortex_m_rt::entry]
fn main() -> ! {
    fw::init();
    let mut cmdline = [0u8; 128];
    let broker = fw::broker_from_cmdline(&mut cmdline);
    log!("mqtt_blocking: broker {}:{} as seen from the modem", broker.host, broker.port);
    match run(broker) {
        Ok(n) => {
            log!("ROUNDTRIP OK blocking {} bytes", n);
            fw::exit(true)
        }
        Err(()) => fw::exit(false),
    }
}

fn run(broker: Broker<'_>) -> Result<usize, ()> {
    let config = match Config::new("internet") {
        Ok(c) => c,
        Err(e) => fail!("config: {}", e),
    };
    let modem = Bg96::new(PolledSerial, EmbassyClock, config);
    let info = match modem.bring_up() {
        Ok(info) => info,
        Err(e) => fail!("bring-up: {}", e),
    };
    log!("modem up: firmware {}, local address {:?}", info.revision.0.as_str(), info.local_ip);

    // the broker's name is resolved by the modem (`&Bg96` is the `Dns` resolver as well as
    // the `TcpClientStack`)
    let mut named = match NamedBroker::<_, 64>::new(broker.host, &modem) {
        Ok(b) => b,
        Err(e) => fail!("broker name: {}", e),
    };
    named.set_port(broker.port);

    let mut buffer = [0u8; 1024];
    let mqtt_config = match ConfigBuilder::new(named, &mut buffer).client_id(CLIENT_ID) {
        Ok(c) => c.keepalive_interval(60),
        Err(e) => fail!("client id: {:?}", e),
    };
    let mut mqtt: Minimq<'_, _, _, _> = Minimq::new(&modem, MinimqClock, mqtt_config);

    let mut payload = [0u8; 300];
    fw::fill_payload(&mut payload, 0x11);
    let (mut subscribed, mut published) = (false, false);
    let start = time::now_ms();
    loop {
        if time::now_ms() - start > DEADLINE_MS {
            fail!(
                "no round trip within {} ms (connected {}, subscribed {}, published {})",
                DEADLINE_MS,
                mqtt.client().is_connected(),
                subscribed,
                published
            );
        }
        let got = mqtt.poll(|_client, topic, data, _props| (topic == TOPIC, data == &payload[..], data.len()));
        match got {
            Ok(Some((true, true, n))) => return Ok(n),
            Ok(Some((true, false, n))) => fail!("message on {} came back changed ({} bytes)", TOPIC, n),
            Ok(Some((false, _, _))) => log!("ignoring a message on another topic"),
            Ok(None) => {}
            // the broker had no session for us: expected on the first connection
            Err(minimq010::Error::SessionReset) => log!("MQTT session started"),
            Err(e) => fail!("MQTT poll: {:?}", e),
        }
        let client = mqtt.client();
        if !client.is_connected() {
            continue;
        }
        if !subscribed {
            match client.subscribe(&[TopicFilter::new(TOPIC)], &[]) {
                Ok(()) => {
                    log!("subscribing to {}", TOPIC);
                    subscribed = true;
                }
                Err(minimq010::Error::NotReady) => {}
                Err(e) => fail!("subscribe: {:?}", e),
            }
        } else if !published && !client.subscriptions_pending() {
            match client.publish(Publication::new(TOPIC, &payload[..]).qos(QoS::AtLeastOnce)) {
                Ok(()) => {
                    log!("published {} bytes to {} (QoS 1)", payload.len(), TOPIC);
                    published = true;
                }
                Err(minimq010::PubError::Error(minimq010::Error::NotReady)) => {}
                Err(e) => fail!("publish: {:?}", e),
            }
        }
    }
}
