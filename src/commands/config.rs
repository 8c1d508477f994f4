//! `AT+QICFG` (manual 2.1.15): the seven optional TCP/IP settings, typed.

use super::{Command, DEFAULT_TIMEOUT_MS, NoResponse, atat_command, first_with};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

/// A setting of `AT+QICFG` with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QicfgSetting<'a> {
    /// `"transpktsize"`: largest packet sent in transparent mode, 1–1460 (default 1024).
    TransPktSize(u16),
    /// `"transwaittm"`: in transparent mode, send a short packet after this many 100 ms,
    /// 0–20 (default 2).
    TransWaitTm(u8),
    /// `"dataformat"`: hex (true) or text (false) for sent and received data (non-transparent).
    DataFormat {
        /// `AT+QISEND` data given as hex.
        send_hex: bool,
        /// `AT+QIRD` data output as hex.
        recv_hex: bool,
    },
    /// `"viewmode"`: 0 = header `\r\n` data, 1 = header `,` data (non-transparent).
    ViewMode(u8),
    /// `"recvind"`: add the data length to buffer-mode `recv` URCs (firmware 01.008 and later).
    RecvInd(bool),
    /// `"prefix"`: IPv6 prefix for reaching IPv4 servers from an IPv6 network; the length is
    /// one of 32, 40, 48, 56, 64, 96.
    Prefix {
        /// The prefix, e.g. `"64:FF9B::"`.
        prefix: &'a str,
        /// Its length in bits.
        length: u8,
    },
    /// `"tcp/retranscfg"`: TCP retransmissions, 3–20 (default 8), and their longest interval in
    /// 100 ms, 5–1000 (default 600). Not saved to NV; applies to all TCP sockets.
    TcpRetransCfg {
        /// Maximum number of retransmissions.
        max_backoffs: u8,
        /// Maximum retransmission interval, in 100 ms.
        max_rto: u16,
    },
}

/// The name of an `AT+QICFG` setting, for queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QicfgName {
    /// `"transpktsize"`
    TransPktSize,
    /// `"transwaittm"`
    TransWaitTm,
    /// `"dataformat"`
    DataFormat,
    /// `"viewmode"`
    ViewMode,
    /// `"recvind"`
    RecvInd,
    /// `"prefix"`
    Prefix,
    /// `"tcp/retranscfg"`
    TcpRetransCfg,
}

impl QicfgName {
    /// The name as written in the command.
    pub fn as_str(self) -> &'static str {
        match self {
            QicfgName::TransPktSize => "transpktsize",
            QicfgName::TransWaitTm => "transwaittm",
            QicfgName::DataFormat => "dataformat",
            QicfgName::ViewMode => "viewmode",
            QicfgName::RecvInd => "recvind",
            QicfgName::Prefix => "prefix",
            QicfgName::TcpRetransCfg => "tcp/retranscfg",
        }
    }
}

impl QicfgSetting<'_> {
    /// The setting's name.
    pub fn name(&self) -> QicfgName {
        match self {
            QicfgSetting::TransPktSize(_) => QicfgName::TransPktSize,
            QicfgSetting::TransWaitTm(_) => QicfgName::TransWaitTm,
            QicfgSetting::DataFormat { .. } => QicfgName::DataFormat,
            QicfgSetting::ViewMode(_) => QicfgName::ViewMode,
            QicfgSetting::RecvInd(_) => QicfgName::RecvInd,
            QicfgSetting::Prefix { .. } => QicfgName::Prefix,
            QicfgSetting::TcpRetransCfg { .. } => QicfgName::TcpRetransCfg,
        }
    }
}

fn put_name(sink: &mut dyn Sink, name: QicfgName) -> Result<()> {
    sink.put(b"AT+QICFG=\"");
    sink.put(name.as_str().as_bytes());
    sink.put(b"\"");
    Ok(())
}

/// `AT+QICFG=<setting>,<value>`: change a setting.
#[derive(Debug, Clone, Copy)]
pub struct Qicfg<'a>(pub QicfgSetting<'a>);
impl Command for Qicfg<'_> {
    const PREFIX: &'static [u8] = b"+QICFG:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        let s = self.0;
        let valid = match s {
            QicfgSetting::TransPktSize(v) => (1..=1460).contains(&v),
            QicfgSetting::TransWaitTm(v) => v <= 20,
            QicfgSetting::DataFormat { .. } | QicfgSetting::RecvInd(_) => true,
            QicfgSetting::ViewMode(v) => v <= 1,
            QicfgSetting::Prefix { prefix, length } => {
                matches!(length, 32 | 40 | 48 | 56 | 64 | 96) && !prefix.is_empty() && wire::quotable(prefix)
            }
            QicfgSetting::TcpRetransCfg { max_backoffs, max_rto } => {
                (3..=20).contains(&max_backoffs) && (5..=1000).contains(&max_rto)
            }
        };
        if !valid {
            return Err(Error::InvalidArgument);
        }
        put_name(sink, s.name())?;
        match s {
            QicfgSetting::TransPktSize(v) => wire::put_arg_u32(sink, u32::from(v)),
            QicfgSetting::TransWaitTm(v) | QicfgSetting::ViewMode(v) => wire::put_arg_u32(sink, u32::from(v)),
            QicfgSetting::DataFormat { send_hex, recv_hex } => {
                wire::put_arg_u32(sink, u32::from(send_hex));
                wire::put_arg_u32(sink, u32::from(recv_hex));
            }
            QicfgSetting::RecvInd(on) => wire::put_arg_u32(sink, u32::from(on)),
            QicfgSetting::Prefix { prefix, length } => {
                sink.put(b",");
                wire::put_quoted(sink, prefix, 64)?;
                wire::put_arg_u32(sink, u32::from(length));
            }
            QicfgSetting::TcpRetransCfg { max_backoffs, max_rto } => {
                wire::put_arg_u32(sink, u32::from(max_backoffs));
                wire::put_arg_u32(sink, u32::from(max_rto));
            }
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qicfg<'a> => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// The current value of a setting, from [`QicfgQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QicfgValue {
    /// See [`QicfgSetting::TransPktSize`].
    TransPktSize(u16),
    /// See [`QicfgSetting::TransWaitTm`].
    TransWaitTm(u8),
    /// See [`QicfgSetting::DataFormat`].
    DataFormat {
        /// `AT+QISEND` data given as hex.
        send_hex: bool,
        /// `AT+QIRD` data output as hex.
        recv_hex: bool,
    },
    /// See [`QicfgSetting::ViewMode`].
    ViewMode(u8),
    /// See [`QicfgSetting::RecvInd`].
    RecvInd(bool),
    /// See [`QicfgSetting::Prefix`] (`None` when no prefix is set).
    Prefix(Option<(heapless::String<64>, u8)>),
    /// See [`QicfgSetting::TcpRetransCfg`].
    TcpRetransCfg {
        /// Maximum number of retransmissions.
        max_backoffs: u8,
        /// Maximum retransmission interval, in 100 ms.
        max_rto: u16,
    },
}
impl atat::AtatResp for QicfgValue {}

/// `AT+QICFG=<setting>`: read a setting.
#[derive(Debug, Clone, Copy)]
pub struct QicfgQuery(pub QicfgName);
impl Command for QicfgQuery {
    const PREFIX: &'static [u8] = b"+QICFG:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        put_name(sink, self.0)?;
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<QicfgValue> {
        let params = first_with(resp, b"+QICFG:");
        if self.0 == QicfgName::Prefix && params.is_err() {
            return Ok(QicfgValue::Prefix(None));
        }
        let mut f = fields(params?);
        if f.quoted() != Some(self.0.as_str().as_bytes()) {
            return Err(Error::Parse);
        }
        let p = Error::Parse;
        Ok(match self.0 {
            QicfgName::TransPktSize => QicfgValue::TransPktSize(f.u16().ok_or(p)?),
            QicfgName::TransWaitTm => QicfgValue::TransWaitTm(f.u8().ok_or(p)?),
            QicfgName::DataFormat => {
                QicfgValue::DataFormat { send_hex: f.u8().ok_or(p)? == 1, recv_hex: f.u8().ok_or(p)? == 1 }
            }
            QicfgName::ViewMode => QicfgValue::ViewMode(f.u8().ok_or(p)?),
            QicfgName::RecvInd => QicfgValue::RecvInd(f.u8().ok_or(p)? == 1),
            QicfgName::Prefix => {
                let prefix = core::str::from_utf8(f.quoted().ok_or(p)?).map_err(|_| p)?;
                let prefix = heapless::String::try_from(prefix).map_err(|_| Error::Overflow)?;
                QicfgValue::Prefix(Some((prefix, f.u8().ok_or(p)?)))
            }
            QicfgName::TcpRetransCfg => {
                QicfgValue::TcpRetransCfg { max_backoffs: f.u8().ok_or(p)?, max_rto: f.u16().ok_or(p)? }
            }
        })
    }
}
atat_command!(QicfgQuery => QicfgValue, timeout_ms = DEFAULT_TIMEOUT_MS);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    #[test]
    fn every_setting() {
        assert_eq!(bytes(&Qicfg(QicfgSetting::TransPktSize(1460))), "AT+QICFG=\"transpktsize\",1460\r");
        assert_eq!(bytes(&Qicfg(QicfgSetting::TransWaitTm(0))), "AT+QICFG=\"transwaittm\",0\r");
        assert_eq!(
            bytes(&Qicfg(QicfgSetting::DataFormat { send_hex: false, recv_hex: true })),
            "AT+QICFG=\"dataformat\",0,1\r"
        );
        assert_eq!(bytes(&Qicfg(QicfgSetting::ViewMode(1))), "AT+QICFG=\"viewmode\",1\r");
        assert_eq!(bytes(&Qicfg(QicfgSetting::RecvInd(true))), "AT+QICFG=\"recvind\",1\r");
        assert_eq!(
            bytes(&Qicfg(QicfgSetting::Prefix { prefix: "64:FF9B::", length: 96 })),
            "AT+QICFG=\"prefix\",\"64:FF9B::\",96\r"
        );
        assert_eq!(
            bytes(&Qicfg(QicfgSetting::TcpRetransCfg { max_backoffs: 8, max_rto: 600 })),
            "AT+QICFG=\"tcp/retranscfg\",8,600\r"
        );
        assert_eq!(bytes(&QicfgQuery(QicfgName::RecvInd)), "AT+QICFG=\"recvind\"\r");
        assert!(refused(&Qicfg(QicfgSetting::TransPktSize(0))));
        assert!(refused(&Qicfg(QicfgSetting::TransPktSize(1461))));
        assert!(refused(&Qicfg(QicfgSetting::TransWaitTm(21))));
        assert!(refused(&Qicfg(QicfgSetting::ViewMode(2))));
        assert!(refused(&Qicfg(QicfgSetting::Prefix { prefix: "64:FF9B::", length: 33 })));
        assert!(refused(&Qicfg(QicfgSetting::TcpRetransCfg { max_backoffs: 2, max_rto: 600 })));
        assert!(refused(&Qicfg(QicfgSetting::TcpRetransCfg { max_backoffs: 8, max_rto: 1001 })));
    }

    #[test]
    fn queries() {
        assert_eq!(
            parse(&QicfgQuery(QicfgName::TransPktSize), &["+QICFG: \"transpktsize\",1024"]),
            Ok(QicfgValue::TransPktSize(1024))
        );
        assert_eq!(
            parse(&QicfgQuery(QicfgName::TcpRetransCfg), &["+QICFG: \"tcp/retranscfg\",8,600"]),
            Ok(QicfgValue::TcpRetransCfg { max_backoffs: 8, max_rto: 600 })
        );
        assert_eq!(parse(&QicfgQuery(QicfgName::RecvInd), &["+QICFG: \"recvind\",0"]), Ok(QicfgValue::RecvInd(false)));
        assert_eq!(parse(&QicfgQuery(QicfgName::Prefix), &[]), Ok(QicfgValue::Prefix(None)));
        assert_eq!(parse(&QicfgQuery(QicfgName::ViewMode), &["+QICFG: \"recvind\",0"]), Err(Error::Parse));
    }
}
