"""Bulk TCP through the real bond tunnel with and without FEC for other classes (root).

The bond lab (tquic.testing.bond_lab: a site with two tbf-shaped links of 20 and
10 Mbit/s, the bond server, an internet namespace).  Two client configurations
take turns, ``--rounds`` times each: ``none`` (no ``[fec]`` table: the extension
is negotiated, nothing is protected) and ``fec`` (``[fec]`` with the built-in
classes: calls protected, bulk TCP off).  In both, a call-like UDP flow (iperf3
``-u`` 200-byte packets at 80 kbit/s to port 3478, a STUN/TURN port: protected
under ``fec``) runs beside one iperf3 TCP flow; the table gives the TCP
throughput of each round and the medians.  The target: FEC for other classes
costs bulk TCP <= 3 %.

Also printed: the per-packet CPU cost of the FEC stage for a TCP packet (it is
classified and passed on), from a loop over the pipeline without any network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tquic.testing.bond_lab import INTERNET, BondLab
from tquic.testing.netns import LinkSpec, unavailable_reason

FEC_TOML = "[fec]\nmode = \"adaptive\"\n"


def stage_cost(n: int = 5000) -> tuple[float, float]:
    """(µs per TCP packet through a pipeline with the FEC stage, without it)."""
    import struct

    from tquic.bond.fec import FecConfig, FecSession
    from tquic.bond.fec.stage import FecStage
    from tquic.bond.pipeline import DatagramPipeline

    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 0, 0, 5 << 4, 0x18, 65535, 0, 0) + bytes(1100)
    packet = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + tcp
    out: list[bytes] = []
    best = {True: float("inf"), False: float("inf")}
    for _ in range(5):  # alternate, keep the best of each: the machine is shared
        for with_stage in (True, False):
            pipe = DatagramPipeline(out.append, out.append, seq_context=2)
            if with_stage:
                pipe.add_stage(FecStage(FecSession(FecConfig()), 4, 2,
                                        lambda d, _: out.append(d), 1154))
            start = time.perf_counter()
            for i in range(n):
                pipe.send_packet(packet, i * 1e-4)
            best[with_stage] = min(best[with_stage], (time.perf_counter() - start) / n * 1e6)
            out.clear()
    return best[True], best[False]


def _iperf_tcp(lab: BondLab, seconds: int) -> float:
    server = lab.spawn(lab.internet_ns, ["iperf3", "-s", "-1", "-B", INTERNET, "-p", "5201"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    udp_server = lab.spawn(lab.internet_ns, ["iperf3", "-s", "-1", "-B", INTERNET, "-p", "3478"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    call = lab.spawn(lab.site_ns, ["iperf3", "-c", INTERNET, "-p", "3478", "-u", "-b", "80k",
                                   "-l", "172", "-t", str(seconds + 1)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = lab.run(lab.site_ns, ["iperf3", "-c", INTERNET, "-p", "5201", "-t", str(seconds),
                                   "-J"], timeout=seconds + 30)
    for p in (call, server, udp_server):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    data = json.loads(result.stdout)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3, help="runs per configuration (default 3)")
    ap.add_argument("--seconds", type=int, default=8, help="length of each TCP run")
    args = ap.parse_args(argv)
    with_stage, without = stage_cost()
    print(f"FEC stage, TCP packet (classified, passed on): {with_stage:.2f} µs per packet "
          f"through the pipeline vs {without:.2f} µs without the stage")
    reason = unavailable_reason()
    if reason is not None:
        print(f"namespace runs skipped: {reason}")
        return 0
    rows: dict[str, list[float]] = {"none": [], "fec": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "fec.toml").write_text(FEC_TOML)
        with BondLab([LinkSpec(20), LinkSpec(10)], work) as lab:
            lab.start_server()
            if not lab.wait_for(work / "server.log", "server listening", 20):
                print((work / "server.log").read_text())
                return 1
            for _ in range(args.rounds):
                for name in ("none", "fec"):
                    extra = ("--config", str(work / "fec.toml")) if name == "fec" else ()
                    log = work / f"client-{name}.log"
                    log.unlink(missing_ok=True)
                    client = lab.start_client(*extra, log=log)
                    try:
                        if not (lab.wait_for(log, "tunnel up", 20)
                                and lab.wait_for(log, "link wan2 (%wan2): up", 10)):
                            print(log.read_text())
                            return 1
                        rows[name].append(_iperf_tcp(lab, args.seconds))
                        print(f"  {name:4} {rows[name][-1]:6.2f} Mbit/s", file=sys.stderr)
                    finally:
                        client.terminate()
                        client.wait(timeout=15)
                        time.sleep(1.0)
    print(f"{'client [fec]':14} {'TCP Mbit/s per round':30} {'median':>7}")
    for name, values in rows.items():
        label = "none" if name == "none" else "built-in"
        print(f"{label:14} {' '.join(f'{v:6.2f}' for v in values):30} "
              f"{statistics.median(values):7.2f}")
    loss = 1 - statistics.median(rows["fec"]) / statistics.median(rows["none"])
    print(f"bulk TCP throughput change with FEC for other classes: {-100 * loss:+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
