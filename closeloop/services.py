"""The four services, found one way by everything that runs them: the embedded process, the CLI, the tests."""

from __future__ import annotations

from typing import Any

from services.dispatch.bootstrap import SERVICE as DISPATCH
from services.followup.bootstrap import SERVICE as FOLLOWUP
from services.sentiment.bootstrap import SERVICE as SENTIMENT
from services.survey.bootstrap import SERVICE as SURVEY
from shared.wiring import ServiceWiring

# In the order of the loop.
SERVICES: dict[str, ServiceWiring[Any]] = {
    wiring.name: wiring for wiring in (SURVEY, DISPATCH, SENTIMENT, FOLLOWUP)
}
