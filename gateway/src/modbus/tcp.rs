//! Modbus TCP: each request carries a transaction id that its answer must echo. An answer with
//! an older id (a late answer to a request that timed out) is dropped and the wait goes on. The
//! connection is kept after a clean timeout (a late answer is told apart by its id), and made
//! again after garbled bytes, an I/O error, a timeout in the middle of a frame (the stream is
//! out of step), or [`TIMEOUTS_TO_RECONNECT`] timeouts in a row (a connection the device has
//! forgotten).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::LinkFault;
use super::frame::{Answer, FrameError, Request};
use super::rtu::Failed;

/// Timeouts in a row after which the connection is made again.
pub const TIMEOUTS_TO_RECONNECT: u32 = 3;

/// One Modbus TCP connection.
pub(crate) struct TcpConn {
    stream: TcpStream,
    next_id: u16,
    /// Bytes read and not yet a whole frame.
    buf: Vec<u8>,
    timeouts: u32,
}

impl TcpConn {
    pub(crate) async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            next_id: 1,
            buf: Vec::new(),
            timeouts: 0,
        })
    }

    /// Sends `req` to `unit` and reads its answer, within `timeout`.
    pub(crate) async fn call(&mut self, unit: u8, req: &Request<'_>, timeout: Duration) -> Result<Answer, Failed> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let pdu = req.pdu();
        let mut adu = Vec::with_capacity(7 + pdu.len());
        adu.extend(id.to_be_bytes());
        adu.extend(0u16.to_be_bytes());
        adu.extend((pdu.len() as u16 + 1).to_be_bytes());
        adu.push(unit);
        adu.extend(pdu);
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.stream.write_all(&adu)).await {
            Err(_) => return Err(self.timed_out(timeout)),
            Ok(Err(e)) => return Err((LinkFault::Io(e.to_string()), true)),
            Ok(Ok(())) => {}
        }
        loop {
            while let Some((got_id, got_unit, pdu)) = self.take_frame().map_err(|e| (LinkFault::Garbled(e), true))? {
                if got_id != id {
                    // an answer to an earlier request that timed out: not ours
                    tracing::debug!(expected = id, got = got_id, "late Modbus TCP answer dropped");
                    continue;
                }
                self.timeouts = 0;
                if got_unit != unit {
                    return Err((
                        LinkFault::Garbled(FrameError::WrongUnit {
                            expected: unit,
                            got: got_unit,
                        }),
                        false,
                    ));
                }
                return req.check(&pdu).map_err(|e| (LinkFault::Garbled(e), false));
            }
            let mut chunk = [0u8; 512];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(self.timed_out(timeout)),
                Ok(Ok(0)) => return Err((LinkFault::Io("connection closed by the device".into()), true)),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err((LinkFault::Io(e.to_string()), true)),
            }
        }
    }

    fn timed_out(&mut self, timeout: Duration) -> Failed {
        self.timeouts += 1;
        if self.buf.is_empty() {
            (LinkFault::Timeout(timeout), self.timeouts >= TIMEOUTS_TO_RECONNECT)
        } else {
            let got = self.buf.len();
            (LinkFault::Truncated { got, after: timeout }, true)
        }
    }

    /// The next whole frame read: transaction id, unit and PDU.
    fn take_frame(&mut self) -> Result<Option<(u16, u8, Vec<u8>)>, FrameError> {
        if self.buf.len() < 7 {
            return Ok(None);
        }
        let id = u16::from_be_bytes([self.buf[0], self.buf[1]]);
        let protocol = u16::from_be_bytes([self.buf[2], self.buf[3]]);
        let length = u16::from_be_bytes([self.buf[4], self.buf[5]]);
        // unit and at least a function code and one byte; a PDU is at most 253 bytes
        if protocol != 0 || !(3..=254).contains(&length) {
            return Err(FrameError::Header { protocol, length });
        }
        let end = 6 + usize::from(length);
        if self.buf.len() < end {
            return Ok(None);
        }
        let unit = self.buf[6];
        let pdu = self.buf[7..end].to_vec();
        self.buf.drain(..end);
        Ok(Some((id, unit, pdu)))
    }
}
