"""Scheduler and controller registries: complete from their literal tables in a
fresh interpreter, without importing the engine or PathManager first (issue 16:
no registration as a side effect of an import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tquic.cc.base import ControllerFactory
from tquic.cc.registry import BUILTIN_CONTROLLERS
from tquic.paths.schedulers.builtin import BUILTIN_SCHEDULERS

_PROBE = """
import json, sys
from tquic.paths.schedulers import available_schedulers, create_scheduler
from tquic.cc.base import available_controllers, create_controller
print(json.dumps({
    "schedulers": available_schedulers(),
    "controllers": available_controllers(),
    "made": [create_scheduler(n).name for n in available_schedulers()],
    "cc_ok": all(create_controller(n, 1200) is not None for n in available_controllers()),
    "manager_loaded": "tquic.paths.manager" in sys.modules,
    "engine_loaded": "tquic.core.connection" in sys.modules,
}))
"""


def test_registries_are_complete_in_a_fresh_interpreter() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    seen = json.loads(out)
    assert seen["manager_loaded"] is False and seen["engine_loaded"] is False
    assert seen["schedulers"] == sorted(BUILTIN_SCHEDULERS)
    assert seen["made"] == seen["schedulers"]  # each factory builds the scheduler it names
    assert seen["controllers"] == sorted(BUILTIN_CONTROLLERS)
    assert seen["cc_ok"] is True
    assert {"minrtt", "blest", "redundant"} <= set(seen["schedulers"])
    assert {"newreno", "cubic", "lia", "bbr", "prague"} <= set(seen["controllers"])


def test_plugins_join_and_can_replace_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    from tquic.cc import base, registry
    from tquic.cc.newreno import NewReno
    from tquic.paths.schedulers import available_schedulers, create_scheduler
    from tquic.paths.schedulers import registry as sreg
    from tquic.paths.schedulers.roundrobin import RoundRobinScheduler

    monkeypatch.setattr(registry, "_PLUGINS", {})
    monkeypatch.setattr(sreg, "_PLUGINS", {})
    factory: ControllerFactory = NewReno
    base.register_controller("Mine", factory)
    base.register_controller("cubic", factory)  # a plugin takes a built-in's place
    assert "mine" in base.available_controllers()
    assert type(base.create_controller("MINE", 1200)) is NewReno
    assert type(base.create_controller("cubic", 1200)) is NewReno
    sreg.register_scheduler("minrtt", RoundRobinScheduler)
    assert isinstance(create_scheduler("minrtt"), RoundRobinScheduler)
    assert available_schedulers().count("minrtt") == 1
    with pytest.raises(ValueError, match="choose one of"):
        base.create_controller("nope", 1200)
    with pytest.raises(ValueError, match="choose one of"):
        create_scheduler("nope")
