"""Browser tests: Debian's Chromium driven by Playwright over the embedded system, served on a free port.

One system serves the whole session; each test opens its own browser context (its own cookies), so tests
do not depend on each other's sign-ins. Every page a test visits is saved as a screenshot at a laptop's
and a tablet's width into var/browser-screenshots, printed at the end of the run.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from closeloop.home import create_home_app
from closeloop.system import build_system
from services.followup import service
from services.followup.domain import StaffMember
from shared.clock import utcnow
from shared.events import new_event
from shared.principal import Principal, Role
from tests.conftest import make_settings

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # reported as a failure by the browser fixture, not as a collection error of every file
    sync_playwright = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "browser-screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# From ../shared/DESIGN.md: without the background-networking ones Chromium keeps trying hosts this machine
# cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
PASSWORD = "browser-tests-password"


@dataclass(frozen=True)
class StaffLogin:
    email: str
    name: str
    role: Role


ANA = StaffLogin("ana@example.com", "Ana Lima", Role.AGENT)
BEN = StaffLogin("ben@example.com", "Ben Okafor", Role.AGENT)
MAYA = StaffLogin("maya@example.com", "Maya Şahin", Role.MANAGER)


@dataclass(frozen=True)
class Site:
    url: str
    # Task ids by customer name, as the session's data made them.
    tasks: dict[str, str]
    # The staff as the use cases see them, to act beside the browser (a colleague's claim).
    staff: dict[StaffLogin, Principal]
    followup: Any
    # Survey's runtime: invitations to open answer pages of, and answers for the NPS dashboard.
    survey: Any = None


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The embedded system as `make run` serves it, with staff, a team and five detractors' tasks."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path_factory.mktemp("browser") / "closeloop.db"
    settings = make_settings(f"sqlite:///{database}", public_base_url=url)
    system = build_system(settings)
    system.start()
    followup = system.runtimes["followup"]
    server = make_server(
        "127.0.0.1", port, system.wsgi_app(create_home_app(settings, followup.identity)), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, name="browser-tests-server", daemon=True)
    thread.start()
    try:
        staff = _create_staff(followup)
        yield Site(url, _load_tasks(followup, staff), staff, followup, system.runtimes["survey"])
    finally:
        server.shutdown()
        thread.join(timeout=5)
        system.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create_staff(followup: Any) -> dict[StaffLogin, Principal]:
    return {
        login: followup.identity.create_user(login.email, PASSWORD, login.role, login.name).principal()
        for login in (ANA, BEN, MAYA)
    }


@dataclass(frozen=True)
class Detractor:
    name: str
    touchpoint: str
    score: int
    comment: str | None
    key_phrases: list[str]
    properties: dict[str, Any]


DETRACTORS = [
    Detractor(
        "Mehmet Yılmaz",
        "support_call",
        3,
        "Teknisyen gelmedi, kimse de aramadı.",
        ["kimse aramadı"],
        {"ticket_id": "T-889", "agent": "Derya"},
    ),
    Detractor(
        "Grace Hopper", "support_call", 5, "Long wait on the phone.", ["long wait"], {"ticket_id": "T-890"}
    ),
    Detractor(
        "Zoë Ångström",
        "purchase",
        1,
        "The parcel arrived broken and nobody answered my emails.",
        ["parcel arrived broken", "nobody answered"],
        {"order_id": "A-1042", "amount": 129.5, "currency": "EUR"},
    ),
    Detractor("Ada Lovelace", "site_visit", 4, None, [], {"page": "/pricing"}),
    Detractor("Linus Pauling", "purchase", 6, "Late delivery.", ["late delivery"], {"order_id": "A-1043"}),
]


def _load_tasks(followup: Any, staff: dict[StaffLogin, Principal]) -> dict[str, str]:
    agents = [StaffMember(staff[login].id, login.name) for login in (ANA, BEN)]
    # Support calls go to the team, Ana and Ben in turn; purchases and site visits to nobody.
    service.create_team(followup, staff[MAYA], "Customer care", ["support_call"], agents)
    tasks = {}
    for number, detractor in enumerate(DETRACTORS, start=1):
        response_id = f"browser-{number}"
        service.act_on_scored_response(followup, _scored(response_id, f"c{number}", detractor))
        with followup.unit_of_work() as uow:
            tasks[detractor.name] = uow.tasks.for_response(response_id).id
    # Mehmet's task has waited longer than its SLA: the queue must show it as overdue.
    with followup.unit_of_work() as uow:
        uow.tasks.get(tasks["Mehmet Yılmaz"], for_update=True).due_at = utcnow() - timedelta(hours=3)
    return tasks


def _scored(response_id: str, slug: str, detractor: Detractor) -> dict[str, Any]:
    """A response.scored event as sentiment emits it."""
    sentiment = {
        "polarity": -0.7,
        "subjectivity": 0.6,
        "label": "negative",
        "language": "en",
        "key_phrases": detractor.key_phrases,
        "analyzer": "browser-test",
    }
    return new_event(
        "response.scored",
        {
            "response_id": response_id,
            "invitation_id": f"i-{response_id}",
            "revision": 1,
            "score": detractor.score,
            "comment": detractor.comment,
            "locale": "en",
            "touchpoint": detractor.touchpoint,
            "channel": "email",
            "customer": {
                "customer_id": f"customer-{slug}",
                "external_id": f"crm-{slug}",
                "name": detractor.name,
                "email": f"{slug}@example.com",
                "phone": "+15555550142",
            },
            "submitted_at": utcnow().isoformat(),
            "properties": detractor.properties,
            "sentiment": sentiment if detractor.comment else None,
        },
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.fail("Playwright is not installed: run .venv/bin/pip install -e '.[dev]'", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): apt-get install chromium (.ci/run installs it for CI)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        # Playwright's own browser download does not work here: Debian's Chromium is driven instead.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh browser context per test: no cookie of another test's sign-in."""
    context = browser.new_context(base_url=site.url, viewport=LAPTOP, locale="en-US")
    context.set_default_timeout(5_000)
    try:
        yield context.new_page()
    finally:
        context.close()


_SHOT_THIS_RUN = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path:
    """The session's screenshot folder, emptied of an earlier run's pictures."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    pytestconfig.stash[_SHOT_THIS_RUN] = True
    return SCREENSHOTS


@pytest.fixture
def camera(screenshots: Path) -> Callable[[Page, str], Callable[[str], None]]:
    """``shoot = camera(page, "agent")``; ``shoot("queue")`` then saves agent-01-queue-{laptop,tablet}.png."""

    def for_test(page: Page, prefix: str) -> Callable[[str], None]:
        taken = 0

        def shoot(what: str) -> None:
            nonlocal taken
            taken += 1
            for device, viewport in (("laptop", LAPTOP), ("tablet", TABLET)):
                page.set_viewport_size(viewport)
                page.screenshot(
                    path=screenshots / f"{prefix}-{taken:02d}-{what}-{device}.png", full_page=True
                )
            page.set_viewport_size(LAPTOP)

        return shoot

    return for_test


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.stash.get(_SHOT_THIS_RUN, False):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
