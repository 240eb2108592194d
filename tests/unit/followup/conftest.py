from __future__ import annotations

import pytest

from services.followup import service
from services.followup.runtime import FollowupRuntime
from tests.clock import Clock

from .fakes import FakeFollowupUnitOfWork, fake_runtime
from .support import START


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(START)
    monkeypatch.setattr(service, "utcnow", clock)
    return clock


@pytest.fixture
def uow() -> FakeFollowupUnitOfWork:
    return FakeFollowupUnitOfWork()


@pytest.fixture
def runtime(uow: FakeFollowupUnitOfWork) -> FollowupRuntime:
    return fake_runtime(uow)
