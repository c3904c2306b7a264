//! A Modbus device for tests that misbehaves on purpose, over RTU (on any byte stream) and over
//! TCP: at random (seeded) it answers late, not at all, garbled (bad CRC, a cut-short frame, the
//! wrong unit, the wrong function, bytes after the frame, an older transaction id, a broken TCP
//! header) or with an exception. Every register has one true value ([`truth`]), except a
//! writable setpoint (an `i32` at holding 110, limits ±5000, like the battery profile's) that
//! holds what was written; every value written there is logged.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridshare_gateway::modbus::crc16;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The setpoint's first register and limits.
pub const SETPOINT: u16 = 110;
pub const LIMITS: (i32, i32) = (-5_000, 5_000);

/// A register's true value: differs between neighbours and between the two tables.
pub fn truth(function: u8, address: u16) -> u16 {
    let x = (u32::from(address) << 1 | u32::from(function == 4)).wrapping_mul(2_654_435_761);
    (x >> 16) as u16
}

/// What the device does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    None,
    /// The right answer, after the client's timeout (but within twice it).
    Late,
    /// The right answer, after two and a half times the client's timeout.
    VeryLate,
    Drop,
    BadCrc,
    Truncated,
    WrongUnit,
    WrongFunction,
    Exception,
    /// RTU: junk after a good frame.
    Trailing,
    /// TCP: first an answer with the previous transaction id and other data, then the right one.
    StaleId,
    /// TCP: a header whose protocol id is not 0.
    BadHeader,
}

/// Faults and their shares, per thousand requests.
pub type Mix = &'static [(Fault, u32)];

/// The device's state, shared with the test.
#[derive(Debug)]
pub struct State {
    rng: u64,
    mix: Mix,
    /// When false, every request is answered right.
    pub storm: bool,
    /// The setpoint's registers.
    pub setpoint: [u16; 2],
    /// Every value written to the setpoint (refused ones included).
    pub written: Vec<i32>,
    /// How often each fault was played.
    pub played: std::collections::HashMap<Fault, u32>,
    /// The client's timeout, for late answers.
    pub timeout: Duration,
    /// Faults to play first, in order, before the random ones.
    pub script: std::collections::VecDeque<Fault>,
    /// TCP connections accepted.
    pub accepted: u32,
}

/// The device.
#[derive(Debug, Clone)]
pub struct Faulty {
    pub unit: u8,
    pub state: Arc<Mutex<State>>,
}

impl Faulty {
    pub fn new(unit: u8, seed: u64, mix: Mix, timeout: Duration) -> Self {
        Self {
            unit,
            state: Arc::new(Mutex::new(State {
                rng: seed,
                mix,
                storm: true,
                setpoint: [0, 0],
                written: Vec::new(),
                played: Default::default(),
                timeout,
                script: Default::default(),
                accepted: 0,
            })),
        }
    }

    /// A device that plays `script` and then behaves.
    pub fn scripted(unit: u8, script: &[Fault], timeout: Duration) -> Self {
        let d = Self::new(unit, 0, &[], timeout);
        d.state.lock().unwrap().script = script.iter().copied().collect();
        d
    }

    pub fn calm(&self) {
        self.state.lock().unwrap().storm = false;
    }

    /// The setpoint the device holds.
    pub fn setpoint(&self) -> i32 {
        let w = self.state.lock().unwrap().setpoint;
        ((u32::from(w[0]) << 16) | u32::from(w[1])) as i32
    }

    fn next(&self) -> (Fault, u64) {
        let mut st = self.state.lock().unwrap();
        let r = splitmix(&mut st.rng);
        let fault = if let Some(f) = st.script.pop_front() {
            f
        } else if st.storm {
            let mut pick = (r % 1_000) as u32;
            st.mix
                .iter()
                .find(|(_, share)| {
                    let hit = pick < *share;
                    pick = pick.saturating_sub(*share);
                    hit
                })
                .map_or(Fault::None, |(f, _)| *f)
        } else {
            Fault::None
        };
        *st.played.entry(fault).or_default() += 1;
        (fault, splitmix(&mut st.rng))
    }

    fn late_by(&self, r: u64) -> Duration {
        let t = self.state.lock().unwrap().timeout;
        t + t.mul_f64(0.2 + 0.6 * (r % 1_000) as f64 / 1_000.0)
    }

    fn very_late(&self) -> Duration {
        self.state.lock().unwrap().timeout.mul_f64(2.5)
    }

    /// The right answer PDU to a request PDU.
    fn answer(&self, pdu: &[u8]) -> Vec<u8> {
        let f = pdu[0];
        let word = |i: usize| u16::from_be_bytes([pdu[i], pdu[i + 1]]);
        match f {
            3 | 4 => {
                let (address, count) = (word(1), word(3));
                if !(1..=125).contains(&count) {
                    return vec![f | 0x80, 3];
                }
                let st = self.state.lock().unwrap();
                let mut out = vec![f, (count * 2) as u8];
                for a in address..address.saturating_add(count) {
                    let w = match (f, a) {
                        (3, SETPOINT) => st.setpoint[0],
                        (3, a) if a == SETPOINT + 1 => st.setpoint[1],
                        _ => truth(f, a),
                    };
                    out.extend(w.to_be_bytes());
                }
                out
            }
            0x10 => {
                let (address, count) = (word(1), word(3));
                if (address, count) != (SETPOINT, 2) {
                    return vec![f | 0x80, 2];
                }
                let words = [word(6), word(8)];
                let v = ((u32::from(words[0]) << 16) | u32::from(words[1])) as i32;
                let mut st = self.state.lock().unwrap();
                st.written.push(v);
                if !(LIMITS.0..=LIMITS.1).contains(&v) {
                    return vec![f | 0x80, 3];
                }
                st.setpoint = words;
                pdu[..5].to_vec()
            }
            _ => vec![f | 0x80, 1],
        }
    }

    /// Serves Modbus RTU on `line` until it closes.
    pub async fn serve_rtu(self, mut line: impl AsyncRead + AsyncWrite + Unpin) {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // one request: unit, function, fields, CRC
            let len = loop {
                let due = match buf.get(1) {
                    Some(3 | 4) => Some(8),
                    Some(0x10) => buf.get(6).map(|n| 9 + usize::from(*n)),
                    Some(_) => Some(buf.len()),
                    None => None,
                };
                if let Some(n) = due.filter(|n| buf.len() >= *n) {
                    break n;
                }
                let mut chunk = [0u8; 256];
                match line.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let frame: Vec<u8> = buf.drain(..len).collect();
            assert_eq!(crc16(&frame), 0, "the client sent a bad CRC: {frame:02x?}");
            if frame[0] != self.unit {
                continue;
            }
            let (fault, r) = self.next();
            let mut pdu = self.answer(&frame[1..len - 2]);
            let mut unit = self.unit;
            match fault {
                Fault::WrongUnit => unit = unit.wrapping_add(1),
                Fault::WrongFunction => pdu[0] ^= 0x07, // 3 <-> 4, 0x10 -> 0x17
                Fault::Exception => pdu = vec![pdu[0] | 0x80, 4],
                _ => {}
            }
            let mut out = vec![unit];
            out.extend(pdu);
            out.extend(crc16(&out).to_le_bytes());
            match fault {
                Fault::Drop => continue,
                Fault::Late => tokio::time::sleep(self.late_by(r)).await,
                Fault::VeryLate => tokio::time::sleep(self.very_late()).await,
                Fault::BadCrc => {
                    let n = out.len();
                    out[n - 1] ^= 0x5a;
                }
                Fault::Truncated => out.truncate(out.len() / 2),
                Fault::Trailing => out.extend([0x00, 0xff, 0x13]),
                _ => {}
            }
            if line.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    /// Serves Modbus TCP on `listener`, each connection in its own task.
    pub async fn serve_tcp(self, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            self.state.lock().unwrap().accepted += 1;
            tokio::spawn(self.clone().serve_tcp_connection(stream));
        }
    }

    async fn serve_tcp_connection(self, stream: tokio::net::TcpStream) {
        let (mut rx, tx) = stream.into_split();
        let tx = Arc::new(tokio::sync::Mutex::new(tx));
        loop {
            let mut head = [0u8; 7];
            if rx.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            let mut pdu = vec![0u8; len - 1];
            if rx.read_exact(&mut pdu).await.is_err() {
                return;
            }
            let id = u16::from_be_bytes([head[0], head[1]]);
            let (fault, r) = self.next();
            let mut answer = self.answer(&pdu);
            let mut unit = head[6];
            let mut protocol = 0u16;
            match fault {
                Fault::WrongUnit => unit = unit.wrapping_add(1),
                Fault::WrongFunction => answer[0] ^= 0x07,
                Fault::Exception => answer = vec![answer[0] | 0x80, 4],
                Fault::BadHeader => protocol = 1,
                _ => {}
            }
            let adu = |id: u16, pdu: &[u8]| {
                let mut out = Vec::new();
                out.extend(id.to_be_bytes());
                out.extend(protocol.to_be_bytes());
                out.extend((pdu.len() as u16 + 1).to_be_bytes());
                out.push(unit);
                out.extend(pdu);
                out
            };
            let mut out = adu(id, &answer);
            match fault {
                Fault::Drop => continue,
                Fault::Late | Fault::VeryLate => {
                    let wait = if fault == Fault::Late {
                        self.late_by(r)
                    } else {
                        self.very_late()
                    };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = tx.lock().await.write_all(&out).await;
                    });
                    continue;
                }
                Fault::Truncated => out.truncate(out.len() / 2),
                Fault::StaleId => {
                    // an older request's answer: same shape, other values
                    let mut other = answer.clone();
                    for b in other.iter_mut().skip(2) {
                        *b ^= 0xa5;
                    }
                    let mut both = adu(id.wrapping_sub(1), &other);
                    both.extend(out);
                    out = both;
                }
                _ => {}
            }
            if tx.lock().await.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
