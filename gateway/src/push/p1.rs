//! Reading a smart meter's P1 port: DSMR 5 pushes a telegram every second at 115200 Bd, 8N1, on
//! a serial line (a P1 cable on `/dev/ttyUSB0`). Telegrams are cut out of the byte stream and
//! checked ([`super::dsmr`]); each good one gives the device's points their values through its
//! profile, a refused one (bad CRC, cut off, malformed) is logged by name and does not count as
//! hearing the meter. The line is opened again after an error, with a growing pause.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::dsmr::{Framer, Telegram};
use super::{Feed, PointError};
use crate::modbus::{Backoff, Parity};

/// DSMR 5's line speed.
pub const BAUD: u32 = 115_200;

/// Reads telegrams from `stream` into `feed` until it ends or fails.
pub async fn read(mut stream: impl AsyncRead + Unpin, feed: &Feed) -> std::io::Result<()> {
    let mut framer = Framer::default();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        for telegram in framer.push(&buf[..n]) {
            match telegram {
                Ok(t) => feed.record(values(&t, feed)),
                Err(e) => {
                    tracing::warn!(device = %feed.device.config.name, error = %e, "P1 telegram refused");
                    feed.refuse(e.to_string());
                }
            }
        }
    }
}

/// Each point's value from a telegram, by index in the profile.
fn values(t: &Telegram, feed: &Feed) -> Vec<(usize, Result<f64, PointError>)> {
    feed.device
        .profile
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (Some(obis), Some(unit)) = (p.obis.as_deref(), p.obis_unit.as_deref()) else {
                // profiles are checked on load: a P1 point has both
                return (i, Err(PointError::NotYet));
            };
            (i, t.number(obis, unit).map(|v| v * p.scale).map_err(PointError::from))
        })
        .collect()
}

/// Reads the device's serial line for as long as the task runs, opening it again after errors.
pub async fn run(feed: Feed) {
    let c = &feed.device.config;
    let Some(path) = c.serial.clone() else {
        tracing::error!(device = %c.name, "P1 device without a serial line");
        return;
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let result = match crate::modbus::open_serial(&path, c.baud, Parity::None) {
            Ok(port) => {
                tracing::info!(device = %c.name, line = %path.display(), baud = c.baud, "P1 line open");
                backoff.reset();
                read(port, &feed).await
            }
            Err(e) => Err(e),
        };
        let delay = backoff.next_delay();
        match result {
            Ok(()) => tracing::warn!(device = %c.name, line = %path.display(), retry_in = ?delay, "P1 line closed"),
            Err(e) => {
                tracing::warn!(device = %c.name, line = %path.display(), error = %e, retry_in = ?delay, "P1 line failed")
            }
        }
        tokio::time::sleep(delay).await;
    }
}
