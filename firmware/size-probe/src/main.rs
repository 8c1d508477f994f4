//! Size probe: a firmware that brings the modem up and uses the blocking TCP client, UDP
//! client and DNS of `quectel-bg96` over a memory-mapped UART. It is never run; it is built
//! to read the crate's flash and RAM footprint from the ELF.
#![no_std]
#![no_main]

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cortex_m_rt::entry;
use embedded_nal::{Dns, TcpClientStack, UdpClientStack};
use panic_halt as _;
use quectel_bg96::blocking::Bg96;
use quectel_bg96::config::Config;

mod board;
use board::{Ticks, Uart};

#[entry]
fn main() -> ! {
    let Ok(config) = Config::new("internet") else { loop {} };
    // in a static, so that the stack's RAM shows in .bss
    let Some(modem) = cortex_m::singleton!(: Bg96<Uart, Ticks> = Bg96::new(Uart, Ticks, config)) else { loop {} };
    let modem: &Bg96<Uart, Ticks> = modem;
    let _ = modem.bring_up();
    let mut stack = modem;
    let broker = nb::block!(stack.get_host_by_name("broker.example.com", embedded_nal::AddrType::Either))
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let mut buf = [0u8; 512];
    if let Ok(mut s) = TcpClientStack::socket(&mut stack) {
        if nb::block!(TcpClientStack::connect(&mut stack, &mut s, SocketAddr::new(broker, 1883))).is_ok() {
            let _ = nb::block!(TcpClientStack::send(&mut stack, &mut s, b"hello"));
            let _ = nb::block!(TcpClientStack::receive(&mut stack, &mut s, &mut buf));
        }
        let _ = TcpClientStack::close(&mut stack, s);
    }
    if let Ok(mut u) = UdpClientStack::socket(&mut stack) {
        if UdpClientStack::connect(&mut stack, &mut u, SocketAddr::new(broker, 5683)).is_ok() {
            let _ = nb::block!(UdpClientStack::send(&mut stack, &mut u, b"ping"));
            let _ = nb::block!(UdpClientStack::receive(&mut stack, &mut u, &mut buf));
        }
        let _ = UdpClientStack::close(&mut stack, u);
    }
    loop {
        cortex_m::asm::wfi();
    }
}
