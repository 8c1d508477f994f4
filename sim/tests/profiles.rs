//! Profile differences, general commands, power handling and bad input.

mod common;

use std::time::Duration;

use bg96_sim::{Profile, SimConfig};
use common::*;

#[test]
fn manual_profile_cme_errors_and_no_boot_noise() {
    let mut t = T::booted(fast(Profile::Manual));
    // Echo is off after power-on in the manual profile.
    t.cmd("AT", "\r\nOK\r\n");
    t.cmd("AT+QIACT=17", "\r\nERROR\r\n");
    t.cmd("AT+CMEE=1", "\r\nOK\r\n");
    t.cmd("AT+QIACT=17", "\r\n+CME ERROR: 552\r\n");
    t.cmd("AT+CMEE=2", "\r\nOK\r\n");
    t.cmd("AT+QIACT=17", "\r\n+CME ERROR: invalid parameters\r\n");
    t.cmd("AT+CMEE?", "\r\n+CMEE: 2\r\n\r\nOK\r\n");
    t.cmd("AT+CMEE=3", "\r\n+CME ERROR: Incorrect parameters\r\n");
    t.cmd("AT+NOSUCH", "\r\nERROR\r\n");
}

#[test]
fn field_profile_bare_error_even_with_cmee() {
    let mut t = T::quiet(fast(Profile::Field));
    t.cmd("AT+CMEE=2", "\r\nOK\r\n");
    t.cmd("AT+QIACT=17", "\r\nERROR\r\n");
    t.cmd("AT+QIGETERROR", "\r\n+QIGETERROR: 552,invalid parameters\r\n\r\nOK\r\n");
    t.cmd("AT+CMEE=1", "\r\nOK\r\n");
    t.cmd("AT+CFUN=7", "\r\n+CME ERROR: 50\r\n");
    t.cmd("AT+CPIN=\"1234\"", "\r\n+CME ERROR: 3\r\n");
}

#[test]
fn field_boot_rejects_commands_before_app_rdy() {
    let cfg = SimConfig { boot_delay: Duration::from_millis(300), ..fast(Profile::Field) };
    let mut t = T::raw(cfg);
    // Before RDY the modem is not listening at all.
    t.send("AT\r");
    t.expect("\r\nRDY\r\n");
    t.cmd("AT", "\r\nERROR\r\n");
    t.expect("\r\nAPP RDY\r\n");
    t.cmd("AT", "\r\nOK\r\n");
    t.expect("\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n");
}

#[test]
fn lenient_profile() {
    let mut t = T::quiet(fast(Profile::Lenient));
    t.cmd("AT+QCFG=\"nwscanmode\",0", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"sister-option\",1", "\r\nOK\r\n");
    t.cmd("AT+NOSUCH?", "\r\nERROR\r\n");
    let (l, port) = tcp_peer();
    // No QIACT needed, unquoted strings accepted.
    t.cmd(&format!("AT+QIOPEN=1,0,TCP,127.0.0.1,{port},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    let _p = accept(&l);
    t.cmd(
        "AT+QIDNSGIP=1,localhost",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n",
    );
    let mut f = T::quiet(fast(Profile::Field));
    f.cmd("AT+QCFG=\"nwscanmode\",0", "\r\nERROR\r\n");
}

#[test]
fn general_commands() {
    let mut t = T::booted(fast(Profile::Field));
    t.cmd("ATE0", "\r\nOK\r\n");
    t.echo = false;
    t.cmd("AT+QGMR", "\r\nBG96MAR02A08M1G\r\n\r\nOK\r\n");
    t.cmd("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    t.cmd("AT+CREG?", "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
    t.cmd("AT+CGREG?", "\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    t.cmd("AT+CEREG=2", "\r\nOK\r\n");
    t.cmd("AT+CEREG?", "\r\n+CEREG: 2,1\r\n\r\nOK\r\n");
    t.cmd("AT+QURCCFG=\"urcport\"", "\r\n+QURCCFG: \"urcport\",\"uart1\"\r\n\r\nOK\r\n");
    t.cmd("AT+QURCCFG=\"urcport\",\"uart1\"", "\r\nOK\r\n");
    t.cmd("AT+IFC=2,2", "\r\nOK\r\n");
    t.cmd("AT+IFC?", "\r\n+IFC: 2,2\r\n\r\nOK\r\n");
    t.cmd("AT&D1", "\r\nOK\r\n");
    t.cmd("AT+CFUN?", "\r\n+CFUN: 1\r\n\r\nOK\r\n");
    t.cmd("AT+CCLK=\"20/02/29,23:59:58+04\"", "\r\nOK\r\n");
    t.cmd("AT+CCLK?", "\r\n+CCLK: \"20/02/29,23:59:58+04\"\r\n\r\nOK\r\n");
    t.cmd("AT+QIGETERROR=?", "\r\nOK\r\n");
    t.cmd("AT+QISDE=?", "\r\n+QISDE: (0,1)\r\n\r\nOK\r\n");
    t.cmd(
        "AT+QICFG=?",
        "\r\n+QICFG: \"transpktsize\",(1-1460)\r\n+QICFG: \"transwaittm\",(0-20)\r\n+QICFG: \"dataformat\",(0,1),(0,1)\r\n+QICFG: \"viewmode\",(0,1)\r\n+QICFG: \"recvind\",(0,1)\r\n+QICFG: \"prefix\",<ipv6_prefix>,<prefix_length>\r\n+QICFG: \"tcp/retranscfg\",(3-20),(5-1000)\r\n\r\nOK\r\n",
    );
    for (cmd, resp) in [
        ("AT+QICSGP=?", "+QICSGP: (1-16),(1-3),<APN>,<username>,<password>,(0-3)"),
        ("AT+QIACT=?", "+QIACT: (1-16)"),
        ("AT+QIDEACT=?", "+QIDEACT: (1-16)"),
        (
            "AT+QIOPEN=?",
            "+QIOPEN: (1-16),(0-11),\"TCP/UDP/TCP LISTENER/UDP SERVICE\",\"<IP_address>/<domain_name>\",<remote_port>,<local_port>,(0-2)",
        ),
        ("AT+QICLOSE=?", "+QICLOSE: (0-11),(0-65535)"),
        ("AT+QISEND=?", "+QISEND: (0-11),(0-1460)"),
        ("AT+QIRD=?", "+QIRD: (0-11),(0-1500)"),
        ("AT+QISENDEX=?", "+QISENDEX: (0-11),<hex_string>"),
        ("AT+QISWTMD=?", "+QISWTMD: (0-11),(0-2)"),
        ("AT+QNTP=?", "+QNTP: (1-16),<server>,(1-65535),(0,1)"),
        ("AT+QIDNSCFG=?", "+QIDNSCFG: (1-16),<pridnsaddr>,<secdnsaddr>"),
        ("AT+QIDNSGIP=?", "+QIDNSGIP: (1-16),<hostname>"),
    ] {
        t.cmd(cmd, format!("\r\n{resp}\r\n\r\nOK\r\n"));
    }
    for (q, v) in
        [("transwaittm", "2"), ("dataformat", "0,0"), ("tcp/retranscfg", "8,600"), ("prefix", "\"64:ff9b::\",96")]
    {
        t.cmd(&format!("AT+QICFG=\"{q}\""), format!("\r\n+QICFG: \"{q}\",{v}\r\n\r\nOK\r\n"));
    }
    t.cmd("AT+QICFG=\"tcp/retranscfg\",3,5", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"prefix\",\"2001:db8::\",64", "\r\nOK\r\n");
    let st = t.sim.stats();
    assert!(st.commands >= 30);
    assert_eq!(st.command_counts.get("AT+QICFG"), Some(&7));
    assert!(st.bytes_to_modem > 0 && st.bytes_from_modem > 0);
}

#[test]
fn urcport_elsewhere_silences_urcs() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QURCCFG=\"urcport\",\"usbat\"", "\r\nOK\r\n");
    t.sim.inject_urc(bg96_sim::InjectPoint::Now, "+QIURC: \"recv\",1");
    t.silence(Duration::from_millis(50));
    t.cmd("AT+QURCCFG=\"urcport\",\"uart1\"", "\r\nOK\r\n");
}

#[test]
fn qpowd_and_cfun_reset() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QPOWD", "\r\nOK\r\n\r\nPOWERED DOWN\r\n");
    t.send("AT\r");
    t.silence(Duration::from_millis(50));
    t.sim.reboot();
    t.expect(BOOT_FIELD);
    t.echo = true;
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+CFUN=1,1", format!("\r\nOK\r\n\r\n+QIURC: \"pdpdeact\",1\r\n{BOOT_FIELD}"));
    t.cmd("AT+QPOWD=0", "\r\nPOWERED DOWN\r\n");
}

#[test]
fn cfun_minimum_functionality() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+CFUN=0", "\r\nOK\r\n\r\n+QIURC: \"pdpdeact\",1\r\n");
    t.cmd("AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    t.cmd("AT+QIACT=1", "\r\nERROR\r\n");
    t.cmd("AT+CFUN=1", "\r\nOK\r\n");
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
}

#[test]
fn bad_input_gets_error_and_the_modem_keeps_working() {
    let mut t = T::booted(fast(Profile::Field));
    // Binary junk is echoed (echo is on) and answered with ERROR.
    t.send(b"\x00\xff\x80junk\r");
    t.expect(b"\x00\xff\x80junk\r\r\nERROR\r\n");
    t.cmd("ATE0", "\r\nOK\r\n");
    t.echo = false;
    // Overlong line.
    t.send(vec![b'A'; 5000]);
    t.send("\r");
    t.expect("\r\nERROR\r\n");
    t.cmd("AT+QIOPEN=1,0,\"TCP", "\r\nERROR\r\n");
    t.cmd("AT+QIOPEN=1,0,\"TCP\"x,\"a\",1", "\r\nERROR\r\n");
    t.cmd("AT+QI\"ACT", "\r\nERROR\r\n");
    t.cmd("AT+QIACT=99999999999999999999", "\r\nERROR\r\n");
    t.cmd("AT+", "\r\nERROR\r\n");
    t.cmd("ATX", "\r\nERROR\r\n");
    t.cmd("AT+QIACT=1;+QIACT=2", "\r\nERROR\r\n");
    // An empty line is ignored, an LF after CR is swallowed, backspace edits.
    t.send("\r\r\n");
    t.cmd("ATQ\x08\x08\x08AT", "\r\nOK\r\n");
    t.cmd("at", "\r\nOK\r\n");
    // A flood of random bytes without CR stays bounded and a CR ends it with ERROR.
    let mut x: u32 = 12345;
    let junk: Vec<u8> = (0..100_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = (x >> 16) as u8;
            if b == b'\r' { b'x' } else { b }
        })
        .collect();
    t.send(&junk);
    t.send("\r");
    t.expect("\r\nERROR\r\n");
    t.cmd("AT", "\r\nOK\r\n");
    assert!(t.sim.stats().command_counts.get("<invalid>").copied().unwrap_or(0) >= 3);
}
