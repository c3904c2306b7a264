//! Modbus RTU on a serial line, where nothing ties an answer to its request but timing: the
//! line is kept clean so that an answer read is the answer to the request just sent.
//! - before each request, whatever is waiting on the line is discarded;
//! - after a timeout the line is left alone for one more timeout (a late answer arrives and is
//!   discarded, as libmodbus's protocol recovery does), then until it has been quiet for the
//!   inter-frame gap (3.5 character times, 1.75 ms above 19200 Bd); after a garbled answer, until
//!   it has been quiet for the gap;
//! - an answer must name the unit asked, the function asked (or its exception), and have the
//!   request's length and a good CRC, with nothing after it; else it is a [`LinkFault`], never a
//!   value;
//! - the first answer after a fault is taken only when nothing follows it for a while
//!   ([`settle`]): a very late answer followed by the real one is two frames, and an error.
//!
//! What remains: a device that answers later than twice the timeout, right when the next
//! request of the same unit, function and length goes unanswered, cannot be told apart on RTU.
//! A timeout longer than the device's slowest answer is the only cure.

use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::LinkFault;
use super::frame::{Answer, FrameError, Request, crc16};

/// A byte stream a Modbus RTU line runs on (a serial port, or a test's in-memory line).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How long a line may keep talking after a fault before it is called noisy.
const MAX_NOISE: Duration = Duration::from_secs(2);

/// The silent interval between RTU frames at `baud`: 3.5 characters of 11 bits, and 1.75 ms
/// above 19200 Bd (the Modbus serial line specification, 2.5.1.1).
pub fn inter_frame_gap(baud: u32) -> Duration {
    if baud > 19_200 || baud == 0 {
        Duration::from_micros(1_750)
    } else {
        Duration::from_micros((3.5 * 11.0 * 1e6 / f64::from(baud)).ceil() as u64)
    }
}

/// One serial line and its recovery state.
pub(crate) struct RtuLine {
    stream: Box<dyn Stream>,
    gap: Duration,
    /// After a fault: leave the line alone until then, then wait for it to go quiet.
    recover_at: Option<Instant>,
    /// A fault since the last clean exchange: the next answer must settle.
    suspect: bool,
}

/// How long the first answer after a fault must stand alone on the line: long enough for a
/// device to answer a request it had queued behind a late answer.
pub fn settle(gap: Duration, timeout: Duration) -> Duration {
    timeout.min(Duration::from_millis(50)).max(gap)
}

/// A failed exchange, and whether the line is unusable (an I/O error) and must be opened again.
pub(crate) type Failed = (LinkFault, bool);

impl RtuLine {
    pub(crate) fn new(stream: Box<dyn Stream>, baud: u32) -> Self {
        Self {
            stream,
            gap: inter_frame_gap(baud),
            recover_at: None,
            suspect: false,
        }
    }

    /// Sends `req` to `unit` and reads its answer, within `timeout`.
    pub(crate) async fn call(&mut self, unit: u8, req: &Request<'_>, timeout: Duration) -> Result<Answer, Failed> {
        match self.recover_at.take() {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                self.quiet().await?;
            }
            None => self.discard_waiting().await?,
        }
        let mut frame = vec![unit];
        frame.extend(req.pdu());
        frame.extend(crc16(&frame).to_le_bytes());
        let deadline = Instant::now() + timeout;
        let sent = tokio::time::timeout_at(deadline, async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await
        })
        .await;
        match sent {
            Err(_) => return Err(self.timed_out(timeout, LinkFault::Timeout(timeout))),
            Ok(Err(e)) => return Err((LinkFault::Io(e.to_string()), true)),
            Ok(Ok(())) => {}
        }
        let mut buf: Vec<u8> = Vec::with_capacity(256);
        let mut due: Option<usize> = None;
        loop {
            if due.is_none() && buf.len() >= 3 {
                if buf[0] != unit {
                    return Err(self.garbled(FrameError::WrongUnit {
                        expected: unit,
                        got: buf[0],
                    }));
                }
                // unit, the PDU, two bytes of CRC
                due = Some(req.answer_len([buf[1], buf[2]]).map_err(|e| self.garbled(e))? + 3);
            }
            if let Some(n) = due
                && buf.len() >= n
            {
                break;
            }
            let mut chunk = [0u8; 256];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => {
                    let fault = if buf.is_empty() {
                        LinkFault::Timeout(timeout)
                    } else {
                        LinkFault::Truncated {
                            got: buf.len(),
                            after: timeout,
                        }
                    };
                    return Err(self.timed_out(timeout, fault));
                }
                Ok(Ok(0)) => return Err((LinkFault::Io("the line was closed".into()), true)),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err((LinkFault::Io(e.to_string()), true)),
            }
        }
        let n = due.unwrap_or(buf.len());
        if buf.len() > n {
            // more than one frame: which one answers the request cannot be known
            return Err(self.garbled(FrameError::Trailing { bytes: buf.len() - n }));
        }
        let computed = crc16(&buf[..n - 2]);
        let got = u16::from_le_bytes([buf[n - 2], buf[n - 1]]);
        if got != computed {
            return Err(self.garbled(FrameError::Crc { got, computed }));
        }
        let answer = req.check(&buf[1..n - 2]).map_err(|e| self.garbled(e))?;
        if self.suspect {
            let mut more = [0u8; 256];
            if let Ok(Ok(extra @ 1..)) =
                tokio::time::timeout(settle(self.gap, timeout), self.stream.read(&mut more)).await
            {
                return Err(self.garbled(FrameError::Trailing { bytes: extra }));
            }
            self.suspect = false;
        }
        Ok(answer)
    }

    /// A late answer may still come: leave the line alone for one more timeout.
    fn timed_out(&mut self, timeout: Duration, fault: LinkFault) -> Failed {
        self.recover_at = Some(Instant::now() + timeout);
        self.suspect = true;
        (fault, false)
    }

    /// The rest of a garbled answer may still come: wait for the line to go quiet.
    fn garbled(&mut self, e: FrameError) -> Failed {
        self.recover_at = Some(Instant::now());
        self.suspect = true;
        (LinkFault::Garbled(e), false)
    }

    /// Reads and drops bytes until the line has been quiet for the inter-frame gap.
    async fn quiet(&mut self) -> Result<(), Failed> {
        let until = Instant::now() + MAX_NOISE;
        let mut sink = [0u8; 256];
        loop {
            if Instant::now() >= until {
                self.recover_at = Some(Instant::now());
                return Err((LinkFault::Noisy(MAX_NOISE), false));
            }
            match tokio::time::timeout(self.gap, self.stream.read(&mut sink)).await {
                Err(_) | Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err((LinkFault::Io(e.to_string()), true)),
            }
        }
    }

    /// Drops whatever is already waiting on the line, without waiting for more.
    async fn discard_waiting(&mut self) -> Result<(), Failed> {
        // lets the runtime see the line's readiness first
        tokio::task::yield_now().await;
        let mut sink = [0u8; 256];
        loop {
            let got = std::future::poll_fn(|cx| {
                let mut b = ReadBuf::new(&mut sink);
                match std::pin::Pin::new(&mut self.stream).poll_read(cx, &mut b) {
                    Poll::Pending => Poll::Ready(Ok(0)),
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(b.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                }
            })
            .await;
            match got {
                Ok(0) => return Ok(()),
                Ok(n) => tracing::debug!(bytes = n, "discarded before a request"),
                Err(e) => return Err((LinkFault::Io(e.to_string()), true)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_three_and_a_half_characters_and_fixed_above_19200_baud() {
        assert_eq!(inter_frame_gap(9_600), Duration::from_micros(4_011));
        assert_eq!(inter_frame_gap(19_200), Duration::from_micros(2_006));
        assert_eq!(inter_frame_gap(38_400), Duration::from_micros(1_750));
        assert_eq!(inter_frame_gap(115_200), Duration::from_micros(1_750));
    }
}
