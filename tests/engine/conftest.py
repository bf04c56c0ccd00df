"""Fixtures of the engine's tests."""

from __future__ import annotations

import pytest

from engine.workspace import sandbox


@pytest.fixture(params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test that asks for it with the kernel's openat2, and with the component walk the
    sandbox uses where the kernel lacks it."""
    if request.param == "openat2" and not sandbox.HAVE_OPENAT2:
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(sandbox, "HAVE_OPENAT2", request.param == "openat2")
    return str(request.param)
