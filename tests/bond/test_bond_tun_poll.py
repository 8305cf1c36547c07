"""TunDevice.poll (bond/tun.py): the kernel's answer to a packet written to the TUN is
in the device's queue when the write returns, and poll() hands it over at once, in the
same call (the daemons run it in each flush, so a TCP receiver's ACK leaves with the
QUIC ACKs of the batch).  Root: a TUN in a namespace of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tquic.testing.netns import unavailable_reason

pytestmark = pytest.mark.timeout(60)

_SCRIPT = textwrap.dedent('''
    import asyncio, ipaddress, struct
    from tquic.bond import netlink
    from tquic.bond.packet import checksum
    from tquic.bond.tun import TunDevice

    def echo_request(src: bytes, dst: bytes, ident: int) -> bytes:
        icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"poll" * 8
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0,
                             src, dst)
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        return header + icmp

    device = TunDevice("tqpoll0")  # netlink outside the loop (pyroute2 runs its own)
    netlink.configure_interface("tqpoll0", 1400, [ipaddress.ip_interface("10.201.0.1/24")], [])

    async def main() -> None:
        got: list[bytes] = []
        device.start(got.extend)
        device.poll()  # nothing written: nothing read, no error
        assert got == [], got
        peer, own = bytes([10, 201, 0, 2]), bytes([10, 201, 0, 1])
        device.write(echo_request(peer, own, 77))
        device.poll()  # no await in between: the reply is read by this call
        replies = [p for p in got if p[9] == 1 and p[20] == 0 and p[16:20] == peer]
        assert replies and struct.unpack("!H", replies[0][24:26])[0] == 77, got
        device.close()
        print("OK")

    asyncio.run(main())
''')


def test_poll_reads_the_kernels_answer_in_the_same_call(tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    ns = f"tqpoll{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _SCRIPT],
                              capture_output=True, text=True, timeout=40, env=env,
                              check=False)
        assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
