"""Congestion controllers by name: the built-in table plus the ones users add.

Built-ins are the literal table below; ``register_controller`` is the
documented plugin call (docs/congestion.md).  A plugin registered under a
built-in's name takes its place, as it always has.  Nothing is registered as a
side effect of importing a module.
"""

from __future__ import annotations

from collections.abc import Mapping

from tquic.cc.base import CongestionController, ControllerFactory
from tquic.cc.bbr1 import create_bbr1
from tquic.cc.bbr3 import create_bbr2, create_bbr3
from tquic.cc.copa import create_copa
from tquic.cc.coupled import Balia, CoupledController, Lia, Olia
from tquic.cc.cubic import create_cubic
from tquic.cc.newreno import create_newreno
from tquic.cc.prague import create_prague
from tquic.cc.westwood import create_westwood


def _alone(cls: type[CoupledController]) -> ControllerFactory:
    # By name alone a coupled controller is in a group of its own (Reno on its
    # one path); the engine couples a connection's paths through
    # tquic.cc.coupled_registry.connection_controller_factory.
    def factory(max_datagram_size: int) -> CongestionController:
        return cls(max_datagram_size)
    return factory


BUILTIN_CONTROLLERS: Mapping[str, ControllerFactory] = {
    "newreno": create_newreno,            # RFC 9002 §7
    "cubic": create_cubic,                # RFC 9438 with HyStart++ (RFC 9406)
    "lia": _alone(Lia),                   # RFC 6356
    "olia": _alone(Olia),
    "balia": _alone(Balia),
    "bbr1": create_bbr1,                  # draft-cardwell-iccrg-bbr-congestion-control-00
    "bbr2": create_bbr2,
    "bbr3": create_bbr3,                  # draft-ietf-ccwg-bbr
    "bbr": create_bbr3,
    "copa": create_copa,                  # NSDI 2018
    "westwood": create_westwood,          # Westwood+
    "prague": create_prague,              # L4S, RFC 9331
}

_PLUGINS: dict[str, ControllerFactory] = {}


def register_controller(name: str, factory: ControllerFactory) -> None:
    """Make ``factory`` available as ``name`` (e.g. for ``--cc NAME``)."""
    _PLUGINS[name.lower()] = factory


def available_controllers() -> list[str]:
    """Names of every built-in and registered controller, sorted."""
    return sorted({*BUILTIN_CONTROLLERS, *_PLUGINS})


def create_controller(name: str, max_datagram_size: int) -> CongestionController:
    """A new controller by name; ValueError naming the choices when unknown."""
    key = name.lower()
    factory = _PLUGINS.get(key) or BUILTIN_CONTROLLERS.get(key)
    if factory is None:
        raise ValueError(
            f"unknown congestion controller {name!r}; choose one of: "
            f"{', '.join(available_controllers())}"
        )
    return factory(max_datagram_size)


__all__ = ["BUILTIN_CONTROLLERS", "available_controllers", "create_controller",
           "register_controller"]
