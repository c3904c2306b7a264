"""Third-party Modbus devices for the gateway's interop test, served by pymodbus.

Unit 1: an Eastron SDM630 map (input registers, float32, high word first), sparse like the real
meter: reading across an undefined register is refused with IllegalDataAddress.
Unit 2: a SunSpec inverter: "SunS" at 40000, common model 1, inverter model 103 with scale
factors, one value not implemented (frequency), MPPT model 160 with two modules, battery model 802,
end marker. Offsets are laid out by hand from the SunSpec model definitions.

Usage: python3 devices.py PORT   (listens on 127.0.0.1:PORT until killed)
"""

import asyncio
import struct
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext, ModbusSparseDataBlock
from pymodbus.server import StartAsyncTcpServer

# The values the test expects (keep in step with gateway/tests/interop.rs).
SDM630 = {0: 231.5, 6: 5.25, 52: -1234.5, 70: 50.0, 72: 12345.5, 74: 321.25}


def f32(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def text(s, words):
    b = s.encode().ljust(words * 2, b"\0")[: words * 2]
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b), 2)]


def sdm630():
    regs = {}
    for address, value in SDM630.items():
        hi, lo = f32(value)
        regs[address], regs[address + 1] = hi, lo
    return ModbusDeviceContext(ir=ModbusSparseDataBlock(regs))


def sunspec():
    regs = [0x5375, 0x6E53, 1, 66]
    regs += text("pymodbus", 16) + text("interop 103", 16) + text("", 8) + text("3.16", 8)
    regs += text("PM-0001", 16) + [2, 0x8000]
    model = [0x8000] * 50  # not implemented unless set below
    model[0] = 123  # A: 12.3 A with A_SF −1
    model[4] = (-1) & 0xFFFF  # A_SF, register 40076
    model[12] = 4321  # W
    model[13] = 0  # W_SF
    model[14] = 0xFFFF  # Hz: not implemented
    model[22], model[23] = 0x0001, 0xE240  # WH: 123456
    model[24] = 1  # WH_SF: ×10
    model[36] = 4  # St: MPPT
    regs += [103, 50] + model
    # MPPT: DCA_SF −2, DCV_SF −1, DCW_SF 0, DCWH_SF 0, Evt, N = 2, TmsPer; then two modules
    mppt = [(-2) & 0xFFFF, (-1) & 0xFFFF, 0, 0, 0, 0, 2, 0xFFFF]
    for module, (amps, volts, watts) in enumerate([(950, 3805, 3615), (1010, 3790, 0xFFFF)], start=1):
        mppt += [module] + text(f"string {module}", 8) + [amps, volts, watts, 0, 0, 0, 0, 250, 4, 0, 0]
    regs += [160, len(mppt)] + mppt
    # battery (802): WHRtg 1350 × 10^1 Wh, SoC 655 × 10^−1 %, W −1200, V not implemented
    battery = [0] * 62
    battery[3 - 2] = 1350  # WHRtg
    battery[11 - 2] = 655  # SoC
    battery[34 - 2] = 0xFFFF  # V: not implemented
    battery[47 - 2] = (-1200) & 0xFFFF  # W
    battery[53 - 2] = 1  # WHRtg_SF
    battery[56 - 2] = (-1) & 0xFFFF  # SoC_SF
    battery[63 - 2] = 0  # W_SF
    regs += [802, 62] + battery + [0xFFFF, 0]
    assert len(regs) == 124 + (2 + 48) + (2 + 62), len(regs)
    # a sparse block addresses registers as sent on the wire (a sequential one is off by one)
    return ModbusDeviceContext(hr=ModbusSparseDataBlock(dict(enumerate(regs, start=40000))))


async def main(port):
    context = ModbusServerContext(devices={1: sdm630(), 2: sunspec()}, single=False)
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
