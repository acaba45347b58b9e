//! HTTP/1.1 wire format for the fakes: request parsing (Content-Length or chunked), responses.
use super::{Request, Response};
use std::collections::HashMap;
use std::io::{self, Read, Write};

/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest request body accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Reads the request head byte by byte (so nothing past it is consumed), then the body
/// (`Content-Length` or chunked; `Expect: 100-continue` is answered).
pub fn read_request<S: Read + Write>(s: &mut S) -> io::Result<Request> {
    let head = read_head(s).inspect_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    })?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let (path, query) = split_target(&target);
    let mut req = Request {
        method,
        target,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    if req
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        s.flush()?;
    }
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    req.body = match chunked {
        true => read_chunked(s)?,
        false => {
            let len = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            read_exact_body(s, len)?
        }
    };
    Ok(req)
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "body too large")
}

fn read_exact_body(s: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    if len > MAX_BODY {
        return Err(too_large());
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// One CRLF-terminated line, read byte by byte.
fn read_line(s: &mut impl Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.push(b[0]);
        if line.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A chunked body: `size CRLF data CRLF` ... `0 CRLF` trailers `CRLF`.
fn read_chunked(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(s)?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let bad = |_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size");
        let size = usize::from_str_radix(size_hex, 16).map_err(bad)?;
        if size == 0 {
            while !read_line(s)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(too_large());
        }
        body.extend(read_exact_body(s, size)?);
        read_line(s)?;
    }
}

fn read_head(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Node's HTTP parser stops at the first byte that cannot start a
        // method (a TLS hello starts with 0x16) and Node's server answers 400
        // and closes (lib/_http_server.js, socketOnError), as Rocket.Chat does.
        if head.is_empty() && !b[0].is_ascii_uppercase() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not HTTP"));
        }
        head.push(b[0]);
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    }
    head.truncate(head.len() - 4);
    Ok(head)
}

fn split_target(target: &str) -> (String, HashMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect();
    (url_decode(path), query)
}

/// Percent-decoding, with `+` as a space.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a full response with `Content-Length`; `keep`: the connection
/// stays open for the next request (`Keep-Alive`), else `Connection: close`.
pub fn write_response(s: &mut impl Write, r: &Response, keep: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let connection = match keep {
        true => format!("Keep-Alive: timeout={}", super::KEEP_ALIVE_IDLE.as_secs()),
        false => "Connection: close".to_string(),
    };
    head.push_str(&format!(
        "Content-Length: {}\r\n{connection}\r\n\r\n",
        r.body.len()
    ));
    let mut all = head.into_bytes();
    all.extend_from_slice(&r.body);
    s.write_all(&all)?;
    s.flush()
}

/// Reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
