"""The per-connection factory for the coupled controllers ("lia", "olia", "balia").

``create_controller("lia", mds)`` alone gives a controller in a group of its own
(it then behaves as Reno on its single path).  To couple the paths of one
connection the engine builds ONE factory per connection and creates every
path's controller through it:

    factory = connection_controller_factory(config.congestion_control)
    path_controller = factory(max_datagram_size)      # for each new path
    ...
    release_controller(path.recovery.controller)       # when the path is abandoned

For a name that is not coupled the factory simply calls ``create_controller``,
so the engine needs no special case.
"""

from __future__ import annotations

from tquic.cc.base import CongestionController, ControllerFactory
from tquic.cc.coupled import COUPLED_CONTROLLERS, CoupledController, CoupledGroup
from tquic.cc.registry import create_controller


def is_coupled(name: str) -> bool:
    return name.lower() in COUPLED_CONTROLLERS


def connection_controller_factory(name: str) -> ControllerFactory:
    """A factory for the controllers of ONE connection: coupled ones share a group.

    Raises ValueError (naming the choices) for an unknown name, at once rather than
    at the first path.
    """
    cls = COUPLED_CONTROLLERS.get(name.lower())
    if cls is None:
        create_controller(name, 1200)  # validate the name now
        return lambda max_datagram_size: create_controller(name, max_datagram_size)
    group = CoupledGroup()

    def factory(max_datagram_size: int) -> CongestionController:
        return cls(max_datagram_size, group)
    return factory


def release_controller(controller: object) -> None:
    """A path was abandoned: take its controller out of its coupling group (no-op for
    uncoupled controllers)."""
    if isinstance(controller, CoupledController):
        controller.detach()


__all__ = ["connection_controller_factory", "is_coupled", "release_controller"]
