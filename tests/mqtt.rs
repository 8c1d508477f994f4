//! MQTT client crates, unchanged, over the stack through the simulator to a real broker on
//! loopback: minimq 0.10 over the blocking stack (`TcpClientStack` + `Dns`), minimq 0.13 and
//! rust-mqtt 0.6 over connections from the async stack's `TcpConnect`.
//!
//! Each connects, subscribes, publishes and receives its own message: from an in-process
//! rumqttd, and also from the broker named by `MQTT_BROKER=host:port` when it is set (CI runs
//! mosquitto there).

mod common;
mod support;

use std::net::SocketAddr;
use std::num::NonZero;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bg96_sim::{HostPort, SimConfig};
use common::{SimStack, StdClock, config, sim_modem, sim_stack};
use embedded_nal_async::TcpConnect;
use quectel_bg96::blocking::Bg96;
use support::{MqttClock, PATIENCE, assert_bytes_eq, external_broker, payload, unique};

type Modem = Bg96<HostPort, StdClock>;

/// The in-process broker, shared by the tests of this file.
fn broker() -> SocketAddr {
    static BROKER: OnceLock<SocketAddr> = OnceLock::new();
    *BROKER.get_or_init(support::start_broker)
}

/// A message with AT framing and binary bytes in it.
fn message() -> Vec<u8> {
    let mut m = b"hello through the BG96 ".to_vec();
    m.extend(payload(400, 3));
    m
}

type Mqtt010<'a, B> = minimq010::Minimq<'a, &'a Modem, MqttClock, B>;

fn minimq010<'a, B: minimq010::broker::Broker>(modem: &'a Modem, broker: B, buffer: &'a mut [u8]) -> Mqtt010<'a, B> {
    let id = unique("bg96-m010");
    let config = minimq010::ConfigBuilder::new(broker, buffer).client_id(&id).unwrap().keepalive_interval(30);
    minimq010::Minimq::new(modem, MqttClock::default(), config)
}

/// Polls minimq 0.10 once; a session reset (a new session at the broker) is no error here.
fn poll010<B: minimq010::broker::Broker>(mqtt: &mut Mqtt010<'_, B>) -> Option<(String, Vec<u8>)> {
    match mqtt.poll(|_client, topic, payload, _props| (topic.to_string(), payload.to_vec())) {
        Ok(got) => got,
        Err(minimq010::Error::SessionReset) => None,
        Err(e) => panic!("poll: {e:?}"),
    }
}

/// minimq 0.10: (connect,) subscribe, publish (QoS 1), receive the own message.
fn minimq010_round_trip<B: minimq010::broker::Broker>(mqtt: &mut Mqtt010<'_, B>) {
    use minimq010::{Publication, QoS};
    let topic = format!("bg96/test/{}", unique("m010"));
    let message = message();
    let (mut subscribed, mut published) = (false, false);
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no round trip: subscribed {subscribed}, published {published}");
        if let Some((t, p)) = poll010(mqtt) {
            assert_eq!(t, topic);
            assert_bytes_eq(&p, &message, "received message");
            return;
        }
        let client = mqtt.client();
        if !subscribed && client.is_connected() {
            client.subscribe(&[topic.as_str().into()], &[]).unwrap();
            subscribed = true;
        } else if subscribed && !published && !client.subscriptions_pending() {
            client.publish(Publication::new(&topic, &message[..]).qos(QoS::AtLeastOnce)).unwrap();
            published = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn minimq010_over_the_blocking_stack_with_a_named_broker() {
    let broker_addr = broker();
    // the broker's name resolves in the modem (AT+QIDNSGIP), through minimq's NamedBroker
    let sim_config = SimConfig { dns: vec![("broker.test".into(), vec![broker_addr.ip()])], ..SimConfig::default() };
    let (_sim, modem) = sim_modem(sim_config, config());
    let mut named: minimq010::broker::NamedBroker<&Modem> =
        minimq010::broker::NamedBroker::new("broker.test", &modem).unwrap();
    minimq010::broker::Broker::set_port(&mut named, broker_addr.port());
    let mut buffer = [0u8; 2048];
    minimq010_round_trip(&mut minimq010(&modem, named, &mut buffer));
}

#[test]
fn minimq010_reconnects_after_the_network_closed_its_connection() {
    let broker_addr = broker();
    let (sim, modem) = sim_modem(SimConfig::default(), config());
    let mut broker = minimq010::broker::IpBroker::new(broker_addr.ip());
    minimq010::broker::Broker::set_port(&mut broker, broker_addr.port());
    let mut buffer = [0u8; 2048];
    let mut mqtt = minimq010(&modem, broker, &mut buffer);
    minimq010_round_trip(&mut mqtt);

    // the network drops the connection (+QIURC: "closed"): minimq sees PipeClosed, closes the
    // socket, opens a new one and connects again
    let to_broker = |s: &bg96_sim::SocketInfo| s.remote_addr == Some(broker_addr);
    let old = sim.open_sockets().into_iter().find(to_broker).expect("the connection to the broker").connect_id;
    sim.close_from_peer(old);
    let deadline = Instant::now() + PATIENCE;
    let mut saw_disconnect = false;
    loop {
        assert!(Instant::now() < deadline, "no reconnection (disconnect seen: {saw_disconnect})");
        poll010(&mut mqtt);
        let connected = mqtt.client().is_connected();
        saw_disconnect |= !connected;
        if saw_disconnect && connected {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    minimq010_round_trip(&mut mqtt);
    let open: Vec<_> = sim.open_sockets().into_iter().filter(|s| to_broker(s)).collect();
    assert_eq!(open.len(), 1, "one connection to the broker: {open:?}");
    assert_eq!(modem.sockets_in_use(), 1);
}

#[test]
fn minimq010_over_the_blocking_stack_to_the_external_broker() {
    let Some(addr) = external_broker() else {
        eprintln!("MQTT_BROKER not set: only the in-process broker was used");
        return;
    };
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let mut broker = minimq010::broker::IpBroker::new(addr.ip());
    minimq010::broker::Broker::set_port(&mut broker, addr.port());
    let mut buffer = [0u8; 2048];
    minimq010_round_trip(&mut minimq010(&modem, broker, &mut buffer));
}

/// The brokers to try: the in-process one, and the external one when it is set.
fn brokers() -> Vec<SocketAddr> {
    let mut v = vec![broker()];
    v.extend(external_broker());
    v
}

async fn local<F: std::future::Future<Output = ()>>(f: F) {
    let set = tokio::task::LocalSet::new();
    set.run_until(async { tokio::time::timeout(PATIENCE * 2, f).await.expect("test timed out") }).await;
}

/// minimq 0.13 over one connection of the async stack.
async fn minimq013_round_trip(stack: SimStack, broker: SocketAddr) {
    use minimq013::{Buffers, ConfigBuilder, Publication, QoS, Session, TopicFilter};
    let id = unique("bg96-m013");
    let topic = format!("bg96/test/{id}");
    let message = message();
    let (rx, tx) = (&mut [0u8; 2048], &mut [0u8; 2048]);
    let mut session =
        Session::new(ConfigBuilder::new(Buffers::new(rx, tx)).client_id(&id).unwrap().keepalive_interval(30));
    let io = TcpConnect::connect(&stack, broker).await.unwrap();
    let mut conn = session.connect(io).await.unwrap();
    conn.subscribe(&[TopicFilter::new(&topic)], &[]).await.unwrap();
    conn.publish(Publication::new(&topic, &message[..]).qos(QoS::AtLeastOnce)).await.unwrap();
    let msg = tokio::time::timeout(PATIENCE, conn.recv()).await.expect("no message").unwrap();
    assert_eq!(msg.topic(), topic);
    assert_bytes_eq(msg.payload(), &message, "received message");
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn minimq013_over_a_tcp_connect_connection() {
    local(async {
        let (_sim, stack) = sim_stack(SimConfig::default(), config()).await;
        for broker in brokers() {
            minimq013_round_trip(stack, broker).await;
        }
        stack.flush_closes().await.unwrap();
        assert_eq!(stack.sockets_in_use(), 0);
    })
    .await;
}

/// rust-mqtt 0.6 over one connection of the async stack.
async fn rust_mqtt_round_trip(stack: SimStack, broker: SocketAddr) {
    use rust_mqtt::Bytes;
    use rust_mqtt::buffer::AllocBuffer;
    use rust_mqtt::client::Client;
    use rust_mqtt::client::event::Event;
    use rust_mqtt::client::options::{
        ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
    };
    use rust_mqtt::config::KeepAlive;
    use rust_mqtt::types::{MqttString, TopicFilter, TopicName};

    let id = unique("bg96-rust-mqtt");
    let topic = format!("bg96/test/{id}");
    let message = message();
    let mut buffer = AllocBuffer;
    let mut client = Client::<'_, '_, _, _, 1, 1, 1, 1, 16, 0, 1>::new(&mut buffer);
    let conn = TcpConnect::connect(&stack, broker).await.unwrap();
    // rumqttd refuses keep-alive 0, rust-mqtt's default
    let options = ConnectOptions::new().clean_start().keep_alive(KeepAlive::Seconds(NonZero::new(30).unwrap()));
    client.connect(conn, &options, Some(MqttString::try_from(id.as_str()).unwrap())).await.unwrap();
    let topic_string = MqttString::try_from(topic.as_str()).unwrap();
    client.subscribe(TopicFilter::new(topic_string.as_borrowed()).unwrap(), &SubscriptionOptions::new()).await.unwrap();
    match tokio::time::timeout(PATIENCE, client.poll()).await.expect("no SUBACK").unwrap() {
        Event::Suback(_) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
    let name = TopicName::new(topic_string.as_borrowed()).unwrap();
    client.publish(&PublicationOptions::new(TopicReference::Name(name)), Bytes::from(&message[..])).await.unwrap();
    loop {
        match tokio::time::timeout(PATIENCE, client.poll()).await.expect("no PUBLISH").unwrap() {
            Event::Publish(p) => {
                assert_bytes_eq(&p.message, &message, "received message");
                break;
            }
            _ => continue,
        }
    }
    client.disconnect(&DisconnectOptions::new()).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn rust_mqtt_over_a_tcp_connect_connection() {
    local(async {
        let (_sim, stack) = sim_stack(SimConfig::default(), config()).await;
        for broker in brokers() {
            rust_mqtt_round_trip(stack, broker).await;
        }
    })
    .await;
}
