//! SunSpec discovery: find the "SunS" marker at register 40000, 0 or 50000, walk the model chain
//! (model id and length, one after the other, to the end marker 0xFFFF), read the common model
//! (1) for maker, model and serial number, and read an inverter model (101, 102 or 103) with its
//! scale factors. "Not implemented" values (0x8000, 0xFFFF, a scale factor of 0x8000) come back
//! as `None`, never as zero.

use crate::modbus::{Link, ModbusError};
use crate::profile::Table;

/// Where SunSpec devices put their marker, in the order tried.
pub const BASES: [u16; 3] = [40_000, 0, 50_000];
/// "SunS" as two registers.
pub const MARKER: [u16; 2] = [0x5375, 0x6e53];
/// Most models walked before giving up on a chain that does not end.
const MAX_MODELS: usize = 64;

/// One model in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRef {
    /// Model id.
    pub id: u16,
    /// Register of its id (its data starts 2 further on).
    pub address: u16,
    /// Registers of data.
    pub length: u16,
}

/// A SunSpec device found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SunSpecDevice {
    /// Where the marker is.
    pub base: u16,
    /// Its models, in chain order.
    pub models: Vec<ModelRef>,
    /// Common model: manufacturer.
    pub manufacturer: Option<String>,
    /// Common model: model name.
    pub model: Option<String>,
    /// Common model: serial number.
    pub serial: Option<String>,
}

impl SunSpecDevice {
    /// The first model with this id.
    pub fn model(&self, id: u16) -> Option<ModelRef> {
        self.models.iter().copied().find(|m| m.id == id)
    }
}

/// A SunSpec string: two characters per register, NUL-padded.
fn string(words: &[u16]) -> Option<String> {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .take_while(|b| *b != 0)
        .collect();
    let s = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Looks for SunSpec on `link`'s device. `Ok(None)`: it answered, but is not SunSpec; `Err`: the
/// link failed, so nothing can be said.
pub async fn discover(link: &mut Link) -> Result<Option<SunSpecDevice>, ModbusError> {
    for base in BASES {
        match link.read(Table::Holding, base, 2).await {
            Ok(words) if words == MARKER => return walk(link, base).await.map(Some),
            Ok(_) | Err(ModbusError::Exception { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

async fn walk(link: &mut Link, base: u16) -> Result<SunSpecDevice, ModbusError> {
    let mut models = Vec::new();
    let mut at = u32::from(base) + 2;
    while models.len() < MAX_MODELS && at < u32::from(u16::MAX) {
        let head = link.read(Table::Holding, at as u16, 2).await?;
        if head[0] == 0xFFFF {
            break;
        }
        models.push(ModelRef {
            id: head[0],
            address: at as u16,
            length: head[1],
        });
        at += 2 + u32::from(head[1]);
    }
    let mut device = SunSpecDevice {
        base,
        models,
        manufacturer: None,
        model: None,
        serial: None,
    };
    if let Some(common) = device.model(1).filter(|m| m.length >= 65) {
        let words = link.read(Table::Holding, common.address + 2, 64).await?;
        device.manufacturer = string(&words[0..16]);
        device.model = string(&words[16..32]);
        device.serial = string(&words[48..64]);
    }
    Ok(device)
}

/// What an inverter model (101–103) says, scaled; `None` where not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InverterValues {
    /// AC power, W.
    pub power_w: Option<f64>,
    /// Lifetime energy, Wh.
    pub energy_wh: Option<f64>,
    /// AC current, A.
    pub current_a: Option<f64>,
    /// Frequency, Hz.
    pub frequency_hz: Option<f64>,
    /// Operating state (1 off, 2 sleeping, 3 starting, 4 MPPT, 5 throttled, 6 shutting down,
    /// 7 fault, 8 standby).
    pub state: Option<u16>,
}

fn scaled(raw: Option<f64>, sf: u16) -> Option<f64> {
    (sf != 0x8000).then(|| raw.map(|v| v * 10f64.powi(i32::from(sf as i16))))?
}

/// Reads the first inverter model (101, 102 or 103) of `device`, in one request.
pub async fn read_inverter(link: &mut Link, device: &SunSpecDevice) -> Result<Option<InverterValues>, ModbusError> {
    let Some(m) = [101, 102, 103].into_iter().find_map(|id| device.model(id)) else {
        return Ok(None);
    };
    if m.length < 39 {
        return Ok(None);
    }
    // the id and length, then the model's data: offsets below count from the id
    let w = link.read(Table::Holding, m.address, 41).await?;
    let u16v = |i: usize| (w[i] != 0xFFFF).then(|| f64::from(w[i]));
    let i16v = |i: usize| (w[i] != 0x8000).then(|| f64::from(w[i] as i16));
    let acc32 = |i: usize| {
        let v = (u32::from(w[i]) << 16) | u32::from(w[i + 1]);
        (v != 0).then(|| f64::from(v)) // an accumulator of 0 is "not implemented"
    };
    Ok(Some(InverterValues {
        current_a: scaled(u16v(2), w[6]),
        power_w: scaled(i16v(14), w[15]),
        frequency_hz: scaled(u16v(16), w[17]),
        energy_wh: scaled(acc32(24), w[26]),
        state: (w[38] != 0xFFFF).then_some(w[38]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_scale_factors() {
        assert_eq!(string(&[0x4772, 0x6964, 0x0000]), Some("Grid".into()));
        assert_eq!(string(&[0, 0]), None);
        assert_eq!(scaled(Some(1234.0), (-1i16) as u16), Some(123.4));
        assert_eq!(scaled(Some(5.0), 2), Some(500.0));
        assert_eq!(scaled(Some(5.0), 0x8000), None, "scale factor not implemented");
        assert_eq!(scaled(None, 0), None);
    }
}
