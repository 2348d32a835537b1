"""The slow fault tests (marker `slow_faults`: every corpus case as a real command, kill -9 runs) run only when
asked for by marker, as `make test-faults` does (`pytest tests/faults -m slow_faults`); `make test` leaves them out."""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "slow_faults" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow_faults")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow_faults")]
