//! AT command line parsing helpers (pure, no I/O).

/// Form of an extended command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// `AT+X`
    Exec,
    /// `AT+X?`
    Read,
    /// `AT+X=?`
    Test,
    /// `AT+X=<params>`
    Write(Args),
}

/// One parameter as written on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// Omitted (`1,,2`).
    Empty,
    /// Quoted string (quotes removed).
    Str(Vec<u8>),
    /// Unquoted token, trimmed.
    Bare(String),
}

/// Parsed parameters of a write command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub params: Vec<Param>,
    /// Accept unquoted tokens where a string is expected.
    pub lenient: bool,
}

/// Parameter error (the handler maps it to its own error result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bad;

impl Args {
    pub fn len(&self) -> usize {
        self.params.len()
    }

    fn get(&self, i: usize) -> &Param {
        self.params.get(i).unwrap_or(&Param::Empty)
    }

    /// Whether parameter `i` is present (not omitted).
    pub fn has(&self, i: usize) -> bool {
        !matches!(self.get(i), Param::Empty)
    }

    /// An optional integer.
    pub fn num(&self, i: usize) -> Result<Option<u32>, Bad> {
        match self.get(i) {
            Param::Empty => Ok(None),
            Param::Str(_) => Err(Bad),
            Param::Bare(s) => {
                if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Bad);
                }
                s.parse::<u32>().map(Some).map_err(|_| Bad)
            }
        }
    }

    /// A required integer in `lo..=hi`.
    pub fn req(&self, i: usize, lo: u32, hi: u32) -> Result<u32, Bad> {
        match self.num(i)? {
            Some(v) if v >= lo && v <= hi => Ok(v),
            _ => Err(Bad),
        }
    }

    /// An optional integer in `lo..=hi`, `default` when omitted.
    pub fn opt(&self, i: usize, lo: u32, hi: u32, default: u32) -> Result<u32, Bad> {
        match self.num(i)? {
            None => Ok(default),
            Some(v) if v >= lo && v <= hi => Ok(v),
            Some(_) => Err(Bad),
        }
    }

    /// An optional string (quoted; unquoted only when lenient).
    pub fn string(&self, i: usize) -> Result<Option<String>, Bad> {
        match self.get(i) {
            Param::Empty => Ok(None),
            Param::Str(b) => String::from_utf8(b.clone()).map(Some).map_err(|_| Bad),
            Param::Bare(s) if self.lenient => Ok(Some(s.clone())),
            Param::Bare(_) => Err(Bad),
        }
    }

    /// A required string.
    pub fn req_str(&self, i: usize) -> Result<String, Bad> {
        self.string(i)?.ok_or(Bad)
    }
}

/// Splits a parameter list. `None` on a syntax error (unterminated quote, junk after a
/// closing quote).
pub(crate) fn parse_params(s: &[u8], lenient: bool) -> Option<Args> {
    let mut params = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && s[i] == b' ' {
            i += 1;
        }
        if i < s.len() && s[i] == b'"' {
            let start = i + 1;
            let end = start + s[start..].iter().position(|&b| b == b'"')?;
            params.push(Param::Str(s[start..end].to_vec()));
            i = end + 1;
            while i < s.len() && s[i] == b' ' {
                i += 1;
            }
            if i < s.len() && s[i] != b',' {
                return None;
            }
        } else {
            let start = i;
            while i < s.len() && s[i] != b',' {
                if s[i] == b'"' {
                    return None;
                }
                i += 1;
            }
            let tok = std::str::from_utf8(&s[start..i]).ok()?.trim();
            if tok.is_empty() {
                params.push(Param::Empty);
            } else {
                params.push(Param::Bare(tok.to_string()));
            }
        }
        if i >= s.len() {
            break;
        }
        // s[i] == ','
        i += 1;
    }
    Some(Args { params, lenient })
}

/// Splits `rest` (the text after `AT+NAME`) into a form.
pub(crate) fn parse_form(rest: &[u8], lenient: bool) -> Option<Form> {
    match rest {
        [] => Some(Form::Exec),
        [b'?'] => Some(Form::Read),
        [b'=', b'?'] => Some(Form::Test),
        [b'=', tail @ ..] => parse_params(tail, lenient).map(Form::Write),
        _ => None,
    }
}

/// Lower-case hex encoding? The BG96 prints upper-case hex; so do we.
pub(crate) fn hex_encode(data: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut v = Vec::with_capacity(data.len() * 2);
    for &b in data {
        v.push(HEX[(b >> 4) as usize]);
        v.push(HEX[(b & 15) as usize]);
    }
    v
}

/// Decodes a hex string (either case); `None` on odd length or a non-hex digit.
pub(crate) fn hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    s.chunks(2).map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day, hour, minute, second) of a Unix time.
pub(crate) fn split_time(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, (secs / 3600) as u32, (secs / 60 % 60) as u32, (secs % 60) as u32)
}

/// Parses `yy/MM/dd,hh:mm:ss±zz` (AT+CCLK) into (unix time, quarter hours).
pub(crate) fn parse_cclk(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    if b.len() != 20 || b[2] != b'/' || b[5] != b'/' || b[8] != b',' || b[11] != b':' {
        return None;
    }
    if b[14] != b':' || (b[17] != b'+' && b[17] != b'-') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let (yy, mo, d, h, mi, se, zz) = (n(0..2)?, n(3..5)?, n(6..8)?, n(9..11)?, n(12..14)?, n(15..17)?, n(18..20)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 || zz > 96 {
        return None;
    }
    let tz = if b[17] == b'-' { -(zz as i32) } else { zz as i32 };
    let local = days_from_civil(2000 + i64::from(yy), mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(se);
    Some((local - i64::from(tz) * 900, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let a = parse_params(br#"1,0,"TCP","127.0.0.1",80,,2"#, false).unwrap();
        assert_eq!(a.len(), 7);
        assert_eq!(a.req(0, 1, 16), Ok(1));
        assert_eq!(a.req_str(2), Ok("TCP".to_string()));
        assert!(!a.has(5));
        assert_eq!(a.opt(6, 0, 2, 0), Ok(2));
        assert!(a.req_str(4).is_err());
        assert!(parse_params(br#""abc"#, false).is_none());
        assert!(parse_params(br#""abc"x"#, false).is_none());
        assert!(parse_params(br#"ab"c"#, false).is_none());
        assert_eq!(parse_params(b"", false).unwrap().params, vec![Param::Empty]);
        let l = parse_params(b"1,TCP", true).unwrap();
        assert_eq!(l.req_str(1), Ok("TCP".to_string()));
        assert!(a.req(0, 2, 16).is_err());
        assert!(parse_params(b"99999999999", false).unwrap().num(0).is_err());
    }

    #[test]
    fn hex_and_time() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), b"00ABFF".to_vec());
        assert_eq!(hex_decode(b"00abFF"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(hex_decode(b"0"), None);
        assert_eq!(hex_decode(b"zz"), None);
        assert_eq!(split_time(1_376_910_610), (2013, 8, 19, 11, 10, 10));
        assert_eq!(days_from_civil(2013, 8, 19), 15_936);
        assert_eq!(parse_cclk("13/08/19,11:10:10+00"), Some((1_376_910_610, 0)));
        assert_eq!(parse_cclk("13/08/19,19:10:10+32"), Some((1_376_910_610, 32)));
        assert_eq!(parse_cclk("13/13/19,11:10:10+00"), None);
    }
}
