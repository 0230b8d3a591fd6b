#!/usr/bin/env python3
"""A Modbus TCP machine-room sensor for the tests, on pymodbus' server.

Four separate blocks (coils, discrete inputs, holding and input registers),
addresses 0..99 each, all zero except the input registers given with
--input ADDR=VALUE. Unit id 1. The tests change values the way a SCADA
client would: by writing holding registers and coils over Modbus. Prints
"ready" once listening.

Usage: modbus_sim.py --port N [--input ADDR=VALUE ...]
"""
import argparse
import asyncio

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--input", action="append", default=[])
    args = ap.parse_args()
    inputs = [0] * 100
    for item in args.input:
        addr, value = item.split("=")
        inputs[int(addr)] = int(value)
    device = SimDevice(
        id=1,
        simdata=(
            [SimData(0, count=100, values=False, datatype=DataType.BITS)],
            [SimData(0, count=100, values=False, datatype=DataType.BITS)],
            [SimData(0, values=[0] * 100, datatype=DataType.REGISTERS)],
            [SimData(0, values=inputs, datatype=DataType.REGISTERS)],
        ),
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", args.port))
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())
