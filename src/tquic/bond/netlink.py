"""Interface configuration and link watching through netlink (pyroute2), never ``ip``.

pyroute2 0.9's synchronous ``IPRoute`` runs an event loop of its own, so it
cannot be called from the daemon's loop: every call here is synchronous and
the daemons run it in a worker thread (``loop.run_in_executor``).  The
:class:`NetlinkWatcher` keeps one subscribed netlink socket in a thread and
tells the loop "something changed" on every link, address or route message;
the link manager then re-reads what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tquic.h3.connect_ip import IPNetwork

logger = logging.getLogger("tquic.bond.netlink")

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class NetlinkError(OSError):
    """A netlink request failed; the message names the interface and the operation."""


def _iproute() -> Any:
    from pyroute2 import IPRoute

    return IPRoute()


def _index(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise NetlinkError(19, f"no interface named {name!r}")  # ENODEV
    return int(found[0])


# Packets the kernel may queue for the daemon to read (the TUN's "transmit" queue;
# Linux's default is 500).  500 packets are 0.17 s at 24 Mbit/s of 1000-byte UDP: a
# daemon that a busy machine does not schedule for longer dropped them (TX drops on
# the server's TUN were most of the UDP benchmark's loss).  4096 is 1.4 s there, 0.45 s
# at 100 Mbit/s; the queue fills only while the daemon is not scheduled.
TUN_QUEUE = 4096


def configure_interface(name: str, mtu: int, addresses: Sequence[IPInterface],
                        routes: Sequence[IPNetwork]) -> None:
    """Set MTU and queue length, add addresses (``ADDR/PREFIX``), bring the link up, add
    routes through it."""
    with _iproute() as ipr:
        try:
            index = _index(ipr, name)
            ipr.link("set", index=index, mtu=mtu, txqlen=TUN_QUEUE)
            for iface in addresses:
                ipr.addr("replace", index=index, address=str(iface.ip),
                         prefixlen=iface.network.prefixlen)
            ipr.link("set", index=index, state="up")
            for net in routes:
                ipr.route("replace", dst=str(net), oif=index)
        except NetlinkError:
            raise
        except Exception as exc:  # pyroute2's NetlinkError and friends
            raise NetlinkError(getattr(exc, "code", 0) or 0,
                               f"configuring {name}: {exc}") from None


def remove_addresses(name: str, addresses: Sequence[IPInterface]) -> None:
    """Delete addresses from ``name``; one that is gone already (or the interface) is no
    error: the aim is that they are not there."""
    with _iproute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return
        for iface in addresses:
            with contextlib.suppress(Exception):  # pyroute2's NetlinkError: not there
                ipr.addr("del", index=found[0], address=str(iface.ip),
                         prefixlen=iface.network.prefixlen)


def set_mtu(name: str, mtu: int) -> None:
    with _iproute() as ipr:
        try:
            ipr.link("set", index=_index(ipr, name), mtu=mtu)
        except NetlinkError:
            raise
        except Exception as exc:
            raise NetlinkError(0, f"setting the MTU of {name}: {exc}") from None


def replace_routes(name: str, old: Sequence[IPNetwork], new: Sequence[IPNetwork]) -> None:
    """Routes through ``name``: remove those of ``old`` not in ``new``, add ``new``."""
    with _iproute() as ipr:
        try:
            index = _index(ipr, name)
        except NetlinkError:
            return  # the interface is gone: so are its routes
        for net in old:
            if net not in new:
                with contextlib.suppress(Exception):
                    ipr.route("del", dst=str(net), oif=index)
        for net in new:
            try:
                ipr.route("replace", dst=str(net), oif=index)
            except Exception as exc:
                raise NetlinkError(0, f"route {net} via {name}: {exc}") from None


def interface_addresses(name: str, version: int | None = None) -> list[str]:
    """The addresses configured on ``name`` (global scope first); [] if it does not exist."""
    with _iproute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return []
        out: list[tuple[int, str]] = []
        for msg in ipr.get_addr(index=found[0]):
            address = msg.get_attr("IFA_ADDRESS")
            if address is None:
                continue
            ip = ipaddress.ip_address(address)
            if version is not None and ip.version != version:
                continue
            out.append((1 if ip.is_link_local else 0, address))
        return [a for _, a in sorted(out)]


def interface_exists(name: str) -> bool:
    with _iproute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


class NetlinkWatcher:
    """Calls ``on_change()`` on the loop whenever a link, address or route changes."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._loop = asyncio.get_running_loop()
        self._ipr: Any = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tquic-bond-netlink",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            ipr = self._ipr = _iproute()
            ipr.bind()  # RTMGRP link, address and route groups
        except Exception as exc:
            logger.info("netlink events unavailable (%s); links are polled only", exc)
            return
        while not self._stopped:
            try:
                messages = ipr.get()
            except Exception:
                return  # closed by stop(), or the socket failed: polling still works
            if messages and not self._stopped:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    self._loop.call_soon_threadsafe(self._on_change)

    def stop(self) -> None:
        self._stopped = True
        ipr = self._ipr
        if ipr is not None:
            with contextlib.suppress(Exception):
                ipr.close()
