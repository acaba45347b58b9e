//! The validity dates of an X.509 certificate, read from its DER, for the pinned self-signed case.
use rustls::pki_types::UnixTime;
use rustls::CertificateError;

/// Checks `now` against the certificate's notBefore and notAfter.
pub fn check(der: &[u8], now: UnixTime) -> Result<(), CertificateError> {
    let (not_before, not_after) = validity(der).ok_or(CertificateError::BadEncoding)?;
    let now = now.as_secs() as i64;
    if now < not_before {
        return Err(CertificateError::NotValidYet);
    }
    if now > not_after {
        return Err(CertificateError::Expired);
    }
    Ok(())
}

/// (notBefore, notAfter) in Unix seconds.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(cert)?;
    // version [0] is optional; then serial, signature algorithm, issuer.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, validity, _) = tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag_a, a, rest) = tlv(validity)?;
    let (tag_b, b, _) = tlv(rest)?;
    Some((time(tag_a, a)?, time(tag_b, b)?))
}

/// One DER element: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |l, &b| (l << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, RFC 5280: 50..99 are 19xx) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = text.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |s: &[u8]| s.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = num(&digits[..2]);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (num(&digits[..4]), &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| num(&rest[2 * i..2 * i + 2]);
    let days = days_from_civil(year, field(0), field(1));
    Some(days * 86_400 + field(2) * 3600 + field(3) * 60 + field(4))
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use std::time::Duration;

    fn der(pem: &[u8]) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem).unwrap().to_vec()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn reads_the_dates_openssl_wrote() {
        // notBefore=Jan  1 00:00:00 2020 GMT, notAfter=Jan  1 00:00:00 2021 GMT
        let expired = der(include_bytes!(
            "../tests/support/tls/self-signed-expired.pem"
        ));
        assert_eq!(validity(&expired), Some((1_577_836_800, 1_609_459_200)));
        assert_eq!(check(&expired, at(1_600_000_000)), Ok(()));
        assert_eq!(
            check(&expired, at(1_700_000_000)),
            Err(CertificateError::Expired)
        );
        assert_eq!(
            check(&expired, at(1_500_000_000)),
            Err(CertificateError::NotValidYet)
        );
        // Valid for 100 years from its making (GeneralizedTime after 2049).
        let fresh = der(include_bytes!("../tests/support/tls/self-signed.pem"));
        let (from, to) = validity(&fresh).unwrap();
        assert_eq!((to - from) / 86_400, 36_500);
    }

    #[test]
    fn garbage_is_a_bad_encoding() {
        assert_eq!(
            check(b"\x30\x85", at(0)),
            Err(CertificateError::BadEncoding)
        );
        assert_eq!(check(b"", at(0)), Err(CertificateError::BadEncoding));
        assert_eq!(time(0x17, b"2001010000Z"), None);
        assert_eq!(time(0x18, b"20210101000000Z"), Some(1_609_459_200));
        assert_eq!(time(0x17, b"991231235959Z"), Some(946_684_799));
    }
}
