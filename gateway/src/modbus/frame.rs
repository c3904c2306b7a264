//! The Modbus requests the gateway sends, as protocol data units (function code and data), and
//! the check of an answer's bytes against the request it is meant to answer: the function code
//! (or the function code with 0x80 for an exception), the byte count and, for a write, the echo
//! of the address and register count (of the address and value for a single-register write).
//! An answer that fails the check is a [`FrameError`], never a value. Also the CRC-16 of Modbus
//! RTU.

use tokio_modbus::ExceptionCode;

use crate::profile::Table;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    /// Read `count` registers of `table` from `address` (function 0x03 or 0x04).
    Read(Table, u16, u16),
    /// Write holding registers from `address` (function 0x10).
    Write(u16, &'a [u16]),
    /// Write one holding register (function 0x06), for devices that take no other write.
    WriteSingle(u16, u16),
}

/// What a device answered, once checked against the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The registers read (exactly as many as asked for), or none after a write.
    Words(Vec<u16>),
    /// The device's Modbus exception.
    Exception(ExceptionCode),
}

/// Why an answer's bytes are not an answer to the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The answer names another unit.
    #[error("answer from unit {got}, not {expected}")]
    WrongUnit {
        /// Asked.
        expected: u8,
        /// Answered.
        got: u8,
    },
    /// The answer's function code is neither the request's nor its exception.
    #[error("answer with function 0x{got:02x} to a request with 0x{expected:02x}")]
    WrongFunction {
        /// Asked.
        expected: u8,
        /// Answered.
        got: u8,
    },
    /// The answer's length is not the request's.
    #[error("answer of {got} bytes where {expected} were due")]
    WrongLength {
        /// Due.
        expected: usize,
        /// Answered.
        got: usize,
    },
    /// A write's answer echoes another address or register count.
    #[error("write answer echoes {got_address}+{got_count}, not {address}+{count}")]
    WrongEcho {
        /// Written.
        address: u16,
        /// Registers written.
        count: u16,
        /// Echoed.
        got_address: u16,
        /// Echoed count.
        got_count: u16,
    },
    /// A single-register write's answer echoes another address or value.
    #[error("write answer echoes {got_address} = {got_value}, not {address} = {value}")]
    WrongSingleEcho {
        /// Written.
        address: u16,
        /// Value written.
        value: u16,
        /// Echoed address.
        got_address: u16,
        /// Echoed value.
        got_value: u16,
    },
    /// More bytes followed a whole answer on an RTU line: two frames, and which one answers the
    /// request cannot be known.
    #[error("{bytes} more bytes followed the answer (a late answer and the real one?)")]
    Trailing {
        /// Bytes after the frame.
        bytes: usize,
    },
    /// The RTU frame's checksum does not match its bytes.
    #[error("bad CRC (0x{got:04x}, computed 0x{computed:04x})")]
    Crc {
        /// In the frame.
        got: u16,
        /// Computed.
        computed: u16,
    },
    /// A Modbus TCP header that is not one (protocol id not 0, or an impossible length).
    #[error("garbled Modbus TCP header (protocol {protocol}, length {length})")]
    Header {
        /// Protocol id.
        protocol: u16,
        /// Length field.
        length: u16,
    },
}

impl Request<'_> {
    /// The function code.
    pub(crate) fn function(&self) -> u8 {
        match self {
            Self::Read(Table::Holding, ..) => 0x03,
            Self::Read(Table::Input, ..) => 0x04,
            Self::Write(..) => 0x10,
            Self::WriteSingle(..) => 0x06,
        }
    }

    /// The request's PDU.
    pub(crate) fn pdu(&self) -> Vec<u8> {
        let mut b = vec![self.function()];
        match self {
            Self::Read(_, address, count) => {
                b.extend(address.to_be_bytes());
                b.extend(count.to_be_bytes());
            }
            Self::Write(address, words) => {
                b.extend(address.to_be_bytes());
                b.extend((words.len() as u16).to_be_bytes());
                b.push((words.len() * 2) as u8);
                b.extend(words.iter().flat_map(|w| w.to_be_bytes()));
            }
            Self::WriteSingle(address, value) => {
                b.extend(address.to_be_bytes());
                b.extend(value.to_be_bytes());
            }
        }
        b
    }

    /// How long the answer's PDU is, from its first two bytes (function code and the byte after
    /// it); an error as soon as they show it is not this request's answer.
    pub(crate) fn answer_len(&self, head: [u8; 2]) -> Result<usize, FrameError> {
        let [function, next] = head;
        if function == self.function() | 0x80 {
            return Ok(2);
        }
        if function != self.function() {
            return Err(FrameError::WrongFunction {
                expected: self.function(),
                got: function,
            });
        }
        match self {
            Self::Read(_, _, count) => {
                let due = usize::from(*count) * 2;
                if usize::from(next) != due {
                    return Err(FrameError::WrongLength {
                        expected: due + 2,
                        got: usize::from(next) + 2,
                    });
                }
                Ok(due + 2)
            }
            Self::Write(..) | Self::WriteSingle(..) => Ok(5),
        }
    }

    /// Checks a whole answer PDU against the request.
    pub(crate) fn check(&self, pdu: &[u8]) -> Result<Answer, FrameError> {
        let head = [pdu.first().copied().unwrap_or(0), pdu.get(1).copied().unwrap_or(0)];
        let due = self.answer_len(head)?;
        if pdu.len() != due {
            return Err(FrameError::WrongLength {
                expected: due,
                got: pdu.len(),
            });
        }
        if head[0] & 0x80 != 0 {
            return Ok(Answer::Exception(ExceptionCode::new(head[1])));
        }
        match self {
            Self::Read(..) => Ok(Answer::Words(
                pdu[2..].chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(),
            )),
            Self::Write(address, words) => {
                let got_address = u16::from_be_bytes([pdu[1], pdu[2]]);
                let got_count = u16::from_be_bytes([pdu[3], pdu[4]]);
                let count = words.len() as u16;
                if (got_address, got_count) != (*address, count) {
                    return Err(FrameError::WrongEcho {
                        address: *address,
                        count,
                        got_address,
                        got_count,
                    });
                }
                Ok(Answer::Words(Vec::new()))
            }
            Self::WriteSingle(address, value) => {
                let got_address = u16::from_be_bytes([pdu[1], pdu[2]]);
                let got_value = u16::from_be_bytes([pdu[3], pdu[4]]);
                if (got_address, got_value) != (*address, *value) {
                    return Err(FrameError::WrongSingleEcho {
                        address: *address,
                        value: *value,
                        got_address,
                        got_value,
                    });
                }
                Ok(Answer::Words(Vec::new()))
            }
        }
    }
}

/// The CRC-16 of Modbus RTU (polynomial 0xA001 reflected, start 0xFFFF), sent low byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_specification_example() {
        // read holding 0x006B+3 from unit 0x11: CRC 0x8776, sent 76 87
        assert_eq!(crc16(&[0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]), 0x8776);
    }

    #[test]
    fn answers_are_checked_against_their_request() {
        let read = Request::Read(Table::Holding, 100, 2);
        assert_eq!(read.pdu(), [0x03, 0, 100, 0, 2]);
        assert_eq!(read.check(&[0x03, 4, 0, 1, 0, 2]), Ok(Answer::Words(vec![1, 2])));
        assert_eq!(
            read.check(&[0x83, 2]),
            Ok(Answer::Exception(ExceptionCode::IllegalDataAddress))
        );
        assert!(matches!(
            read.check(&[0x04, 4, 0, 1, 0, 2]),
            Err(FrameError::WrongFunction { .. })
        ));
        assert!(matches!(read.check(&[0x84, 2]), Err(FrameError::WrongFunction { .. })));
        assert!(matches!(
            read.check(&[0x03, 2, 0, 1]),
            Err(FrameError::WrongLength { .. })
        ));
        assert!(matches!(
            read.check(&[0x03, 4, 0, 1]),
            Err(FrameError::WrongLength { .. })
        ));
        let words = [7, 8];
        let write = Request::Write(40_010, &words);
        assert_eq!(write.pdu(), [0x10, 0x9c, 0x4a, 0, 2, 4, 0, 7, 0, 8]);
        assert_eq!(write.check(&[0x10, 0x9c, 0x4a, 0, 2]), Ok(Answer::Words(vec![])));
        assert!(matches!(
            write.check(&[0x10, 0x9c, 0x4b, 0, 2]),
            Err(FrameError::WrongEcho { .. })
        ));
        // function 06: the answer echoes the request
        let single = Request::WriteSingle(528, 16);
        assert_eq!(single.pdu(), [0x06, 0x02, 0x10, 0, 16]);
        assert_eq!(single.check(&[0x06, 0x02, 0x10, 0, 16]), Ok(Answer::Words(vec![])));
        assert!(matches!(
            single.check(&[0x06, 0x02, 0x10, 0, 15]),
            Err(FrameError::WrongSingleEcho { got_value: 15, .. })
        ));
        assert!(matches!(
            single.check(&[0x10, 0x02, 0x10, 0, 1]),
            Err(FrameError::WrongFunction {
                expected: 0x06,
                got: 0x10
            })
        ));
        assert_eq!(
            single.check(&[0x86, 3]),
            Ok(Answer::Exception(ExceptionCode::IllegalDataValue))
        );
    }
}
