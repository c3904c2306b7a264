//! Helpers shared by the service's end-to-end tests (each test crate uses some of them).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// One HTTP request to the service on `port` with a bearer `key`; the status and the JSON body
/// (`Null` when there is none).
pub fn http(port: u16, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp[9..12].parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    // chunked bodies: take the JSON between the first '{' or '[' and the last '}' or ']'
    let start = body.find(['{', '[']).unwrap_or(body.len());
    let end = body.rfind(['}', ']']).map_or(start, |e| e + 1);
    let v = if start < end {
        serde_json::from_str(&body[start..end]).unwrap()
    } else {
        Value::Null
    };
    (status, v)
}

/// The interval of the furthest open book. Tests at 900x order there: a book nearer delivery may
/// close between two orders, and how many are open changes as the scheduler closes one and opens
/// the next.
pub fn furthest_open_interval(port: u16, key: &str) -> String {
    let (st, books) = http(port, "GET", "/api/v1/markets", key, None);
    books
        .as_array()
        .and_then(|b| b.last())
        .and_then(|b| b["interval"].as_str())
        .unwrap_or_else(|| panic!("open books: {st} {books}"))
        .to_owned()
}
