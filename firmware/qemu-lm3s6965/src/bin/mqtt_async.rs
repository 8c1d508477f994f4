//! Async stack + minimq 0.13 on embassy-executor: the runner is one task, the MQTT client
//! another. Brings the modem up, resolves the broker through the modem's DNS, opens a
//! connection with `TcpConnect`, subscribes, publishes a message and waits for it to come
//! back.
//!
//! The executor is embassy's raw executor with a WFI idle loop (the stock thread executor
//! idles with WFE, which QEMU turns into a busy loop). The modem UART's receive interrupt
//! feeds the runner ([`fw::modem_uart::split_async`]).
//!
//! Success: logs `ROUNDTRIP OK async <n> bytes` and exits QEMU with status 0. Failure (any
//! error, or no round trip within 60 s of firmware time): logs `FAILED: <why>`, exits with 1.
#![no_std]
#![no_main]

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::Spawner;
use embassy_executor::raw::Executor;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer};
use embedded_nal_async::{AddrType, Dns, TcpConnect};
use fw::modem_uart::{AsyncRx, AsyncTx};
use fw::{Broker, log};
use minimq013::{Buffers, ConfigBuilder, Publication, QoS, Session, TopicFilter};
use quectel_bg96::asynch::{self, Resources, Runner, Stack};
use quectel_bg96::clock::EmbassyClock;
use quectel_bg96::config::Config;
use static_cell::StaticCell;

const TOPIC: &str = "bg96/qemu/async";
const CLIENT_ID: &str = "bg96-qemu-async";
/// The whole run (bring-up included) must finish within this much firmware time.
const DEADLINE: Duration = Duration::from_secs(60);

type ModemStack = Stack<'static, AsyncTx, EmbassyClock>;

/// Set by embassy whenever a task is woken (from a task or an interrupt handler).
static PENDED: AtomicBool = AtomicBool::new(false);

#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    PENDED.store(true, Ordering::Release);
}

static EXECUTOR: StaticCell<Executor> = StaticCell::new();
static RESOURCES: StaticCell<Resources<AsyncTx, EmbassyClock>> = StaticCell::new();
static CMDLINE: StaticCell<[u8; 128]> = StaticCell::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    fw::init();
    let executor: &'static Executor = EXECUTOR.init(Executor::new(core::ptr::null_mut()));
    if start(executor.spawner()).is_err() {
        log!("FAILED: could not spawn the tasks");
        fw::exit(false);
    }
    loop {
        // SAFETY: poll is only ever called from this one loop.
        unsafe { executor.poll() };
        // sleep only if nothing was woken meanwhile; with interrupts masked, WFI still returns
        // on a pending interrupt, which runs as soon as they are unmasked again
        cortex_m::interrupt::free(|_| {
            if !PENDED.swap(false, Ordering::AcqRel) {
                cortex_m::asm::wfi();
            }
        });
    }
}

// Out of line: what building the stack and spawning the tasks put on the stack is gone again
// when the executor runs (inlined into `main`, it would stay under every task for good).
#[inline(never)]
fn start(spawner: Spawner) -> Result<(), embassy_executor::SpawnError> {
    let broker = fw::broker_from_cmdline(CMDLINE.init([0; 128]));
    log!("mqtt_async: broker {}:{} as seen from the modem", broker.host, broker.port);
    let config = match Config::new("internet") {
        Ok(c) => c,
        Err(e) => {
            log!("FAILED: config: {}", e);
            fw::exit(false)
        }
    };
    let (rx, tx) = fw::modem_uart::split_async();
    let resources = RESOURCES.init_with(|| Resources::new(tx, EmbassyClock, config));
    let (stack, runner) = asynch::new(resources, rx);
    spawner.spawn(runner_task(runner)?);
    spawner.spawn(client_task(stack, broker)?);
    Ok(())
}

#[embassy_executor::task]
async fn runner_task(runner: Runner<'static, AsyncRx, AsyncTx, EmbassyClock>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn client_task(stack: ModemStack, broker: Broker<'static>) {
    let run = select(round_trip(stack, broker), Timer::after(DEADLINE)).await;
    match run {
        Either::First(Ok(n)) => {
            log!("ROUNDTRIP OK async {} bytes", n);
            fw::exit(true)
        }
        Either::First(Err(())) => fw::exit(false),
        Either::Second(()) => {
            log!("FAILED: no round trip within {} s", DEADLINE.as_secs());
            fw::exit(false)
        }
    }
}

/// Logs why and fails.
macro_rules! fail {
    ($($arg:tt)*) => {{
        log!("FAILED: {}", format_args!($($arg)*));
        return Err(());
    }};
}

/// The size of the future `f` would return, without calling it (so that measuring does not
/// put the future on the stack).
fn future_size<F: FnOnce() -> Fut, Fut>(_: &F) -> usize {
    core::mem::size_of::<Fut>()
}

/// Logs the sizes of the driver's futures (what each costs in a task's state) and of the
/// whole MQTT round trip (minimq 0.13 with 2 x 1 KiB buffers).
fn log_sizes(stack: ModemStack, broker: Broker<'static>) {
    let addr = SocketAddr::new(core::net::Ipv4Addr::LOCALHOST.into(), broker.port);
    log!("static size: Resources {} bytes", core::mem::size_of::<Resources<AsyncTx, EmbassyClock>>());
    log!(
        "future size: bring_up {} bytes, get_host_by_name {} bytes, connect {} bytes, MQTT round trip {} bytes",
        future_size(&|| stack.bring_up()),
        future_size(&|| stack.get_host_by_name(broker.host, AddrType::Either)),
        future_size(&|| stack.connect(addr)),
        future_size(&|| round_trip(stack, broker)),
    );
}

async fn round_trip(stack: ModemStack, broker: Broker<'static>) -> Result<usize, ()> {
    log_sizes(stack, broker);
    let info = match stack.bring_up().await {
        Ok(info) => info,
        Err(e) => fail!("bring-up: {}", e),
    };
    log!("modem up: firmware {}, local address {:?}", info.revision.0.as_str(), info.local_ip);
    let ip = match stack.get_host_by_name(broker.host, AddrType::Either).await {
        Ok(ip) => ip,
        Err(e) => fail!("DNS {}: {}", broker.host, e),
    };
    let mut connection = match stack.connect(SocketAddr::new(ip, broker.port)).await {
        Ok(c) => c,
        Err(e) => fail!("connect {}:{}: {}", ip, broker.port, e),
    };
    log!("TCP connection to {}:{} on connectID {}", ip, broker.port, connection.connect_id());
    {
        let mut byte = [0u8; 1];
        let (c, b) = (&mut connection, &mut byte);
        let read = future_size(&move || embedded_io_async::Read::read(c, b));
        let c = &mut connection;
        let write = future_size(&move || embedded_io_async::Write::write(c, &[0]));
        log!("future size: TcpConnection read {} bytes, write {} bytes", read, write);
    }

    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
    let config = match ConfigBuilder::new(Buffers::new(&mut rx, &mut tx)).client_id(CLIENT_ID) {
        Ok(c) => c,
        Err(e) => fail!("client id: {:?}", e),
    };
    let mut session = Session::new(config);
    let mut mqtt = match session.connect(connection).await {
        Ok(m) => m,
        Err(e) => fail!("MQTT connect: {:?}", e),
    };
    log!("MQTT connected as {}", CLIENT_ID);
    if let Err(e) = mqtt.subscribe(&[TopicFilter::new(TOPIC)], &[]).await {
        fail!("subscribe: {:?}", e);
    }
    let mut payload = [0u8; 300];
    fw::fill_payload(&mut payload, 0x22);
    if let Err(e) = mqtt.publish(Publication::new(TOPIC, &payload[..]).qos(QoS::AtLeastOnce)).await {
        fail!("publish: {:?}", e);
    }
    log!("subscribed to {} and published {} bytes (QoS 1)", TOPIC, payload.len());
    let n = match mqtt.recv().await {
        Ok(m) if m.topic() == TOPIC && m.payload() == &payload[..] => m.payload().len(),
        Ok(m) => fail!("unexpected message on {} ({} bytes)", m.topic(), m.payload().len()),
        Err(e) => fail!("receive: {:?}", e),
    };
    if let Err(e) = mqtt.disconnect().await {
        fail!("disconnect: {:?}", e);
    }
    if let Err(e) = stack.flush_closes().await {
        fail!("close: {}", e);
    }
    Ok(n)
}
