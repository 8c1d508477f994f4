//! Every command's `Command::parse_lines` on arbitrary answers. The first byte picks the command,
//! the rest is the answer (information lines separated by CRLF, as `Core::response` gives them).
//!
//! Checked: no panic; commands without information lines accept anything; what the parsers
//! return stays within the bounds the types promise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quectel_bg96::commands::*;
use quectel_bg96::wire::SliceSink;

/// Parses and, for commands with no information lines, checks that anything is accepted.
fn none<C: Command<Response = NoResponse>>(cmd: C, resp: &[u8]) {
    assert_eq!(cmd.parse_lines(resp), Ok(NoResponse));
    // the command line is valid and bounded
    let mut buf = [0u8; 1024];
    let mut line = SliceSink::new(&mut buf);
    if cmd.write_to(&mut line).is_ok() {
        let line = line.written();
        assert!(line.starts_with(b"AT") && line.ends_with(b"\r"));
    }
}

fn text_ok(t: &str) {
    assert!(t.len() <= 64 && t.bytes().all(|b| (0x20..0x7f).contains(&b)));
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, resp)) = data.split_first() else {
        return;
    };
    // the helpers every parser uses
    for l in lines(resp) {
        assert!(!l.is_empty() && !l.contains(&b'\n'));
        let _ = parse_socket_status(l);
    }
    let _ = first_with(resp, b"+QIRD:");
    let ip = core::net::IpAddr::from([10, 0, 0, 1]);
    match which % 48 {
        0 => {
            if let Ok(id) = Ati.parse_lines(resp) {
                text_ok(&id.manufacturer);
                text_ok(&id.model);
                text_ok(&id.revision);
            }
        }
        1 => {
            if let Ok(r) = Qgmr.parse_lines(resp) {
                text_ok(&r.0);
            }
        }
        2 => drop(CpinRead.parse_lines(resp)),
        3 => drop(RegistrationRead(Domain::Cs).parse_lines(resp)),
        4 => drop(RegistrationRead(Domain::Gprs).parse_lines(resp)),
        5 => drop(RegistrationRead(Domain::Eps).parse_lines(resp)),
        6 => {
            if let Ok(c) = CclkRead.parse_lines(resp) {
                text_ok(&c.0);
            }
        }
        7 => {
            if let Ok(e) = Qigeterror.parse_lines(resp) {
                text_ok(&e.description);
                assert_eq!(e.error_code().is_none(), e.code == 0);
            }
        }
        8 => {
            if let Ok(states) = QiactRead.parse_lines(resp) {
                assert!(states.len() <= 16);
            }
        }
        9 => drop(QicsgpQuery { context_id: 1 }.parse_lines(resp)),
        10 => drop(QidnscfgQuery { context_id: 1 }.parse_lines(resp)),
        11 => {
            if let Ok(p) = QntpRead.parse_lines(resp)
                && let Some((name, _)) = p.server
            {
                assert!(name.len() <= 64);
            }
        }
        12..=14 => {
            let q = [Qistate::All, Qistate::Context(1), Qistate::Socket(0)][usize::from(which % 48 - 12)];
            if let Ok(st) = q.parse_lines(resp) {
                assert!(st.len() <= 12);
            }
        }
        15 => drop(QisendQuery { connect_id: 0 }.parse_lines(resp)),
        16 => drop(QirdQuery { connect_id: 0 }.parse_lines(resp)),
        17 => drop(QisdeRead.parse_lines(resp)),
        18..=24 => {
            let name = [
                QicfgName::TransPktSize,
                QicfgName::TransWaitTm,
                QicfgName::DataFormat,
                QicfgName::ViewMode,
                QicfgName::RecvInd,
                QicfgName::Prefix,
                QicfgName::TcpRetransCfg,
            ][usize::from(which % 48 - 18)];
            let v = QicfgQuery(name).parse_lines(resp);
            if let Ok(v) = v {
                let same = matches!(
                    (name, &v),
                    (QicfgName::TransPktSize, QicfgValue::TransPktSize(_))
                        | (QicfgName::TransWaitTm, QicfgValue::TransWaitTm(_))
                        | (QicfgName::DataFormat, QicfgValue::DataFormat { .. })
                        | (QicfgName::ViewMode, QicfgValue::ViewMode(_))
                        | (QicfgName::RecvInd, QicfgValue::RecvInd(_))
                        | (QicfgName::Prefix, QicfgValue::Prefix(_))
                        | (QicfgName::TcpRetransCfg, QicfgValue::TcpRetransCfg { .. })
                );
                assert!(same, "{name:?} answered with {v:?}");
            }
        }
        25 => none(At, resp),
        26 => none(Ate { echo: false }, resp),
        27 => none(Cmee { mode: 1 }, resp),
        28 => none(Qurccfg { port: "uart1" }, resp),
        29 => none(Cfun { fun: 1, reset: false }, resp),
        30 => none(Qpowd { normal: true }, resp),
        31 => none(Ifc { rts_cts: true }, resp),
        32 => none(AndD { mode: 1 }, resp),
        33 => none(Ato, resp),
        34 => none(Qicfg(QicfgSetting::RecvInd(true)), resp),
        35 => none(
            Qicsgp {
                context_id: 1,
                context_type: ContextType::Ipv4,
                apn: "internet",
                username: "",
                password: "",
                authentication: Authentication::None,
            },
            resp,
        ),
        36 => none(Qiact { context_id: 1 }, resp),
        37 => none(Qideact { context_id: 1 }, resp),
        38 => none(Qidnscfg { context_id: 1, primary: ip, secondary: None }, resp),
        39 => none(Qidnsgip { context_id: 1, hostname: "example.com" }, resp),
        40 => none(Qping { context_id: 1, host: Host::Ip(ip), timeout_s: None, count: None }, resp),
        41 => none(Qntp { context_id: 1, server: Host::Name("pool.ntp.org"), port: None, set_clock: None }, resp),
        42 => none(
            Qiopen {
                context_id: 1,
                connect_id: 0,
                service_type: ServiceType::Tcp,
                remote: Host::Ip(ip),
                remote_port: 80,
                local_port: 0,
                access_mode: AccessMode::Buffer,
            },
            resp,
        ),
        43 => none(Qiclose { connect_id: 0, timeout_s: None }, resp),
        44 => none(Qisend { connect_id: 0, len: Some(4), remote: None }, resp),
        45 => none(Qird { connect_id: 0, len: Some(1500) }, resp),
        46 => none(Qisendex { connect_id: 0, data: b"1234" }, resp),
        _ => {
            none(Qiswtmd { connect_id: 0, access_mode: AccessMode::DirectPush }, resp);
            none(Qisde { echo: false }, resp);
        }
    }
});
