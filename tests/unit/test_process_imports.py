"""Each kind of process loads only the libraries it uses (issue 19: resident memory per process).

A library imported at the top of a module every process shares stays in every process's memory: the web
stack in workers and clocks, the providers' SDKs in web processes, every service in one service's clock.
Each check imports a process's modules in a fresh interpreter and reads ``sys.modules``; bench/memory_bench.py
measures what that saves.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVICES = ("survey", "dispatch", "sentiment", "followup")
# Loaded on first use only, in every process: when a message is sent, a password checked, a phone number
# read, a migration run, a comment analysed, PostgreSQL first connected to (psycopg: never on SQLite).
ON_FIRST_USE = {
    "requests",
    "sendgrid",
    "twilio",
    "phonenumbers",
    "argon2",
    "alembic",
    "textblob",
    "nltk",
    "numpy",
    "psycopg",
}
WEB_STACK = {"flask", "flask_smorest", "apispec", "wtforms", "flask_wtf", "werkzeug"}


def modules_after(statements: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statements``."""
    code = f"{statements}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def imported_by(statements: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``statements``."""
    return {module.split(".")[0] for module in modules_after(statements)}


@pytest.mark.parametrize("service", SERVICES)
def test_a_worker_or_a_clock_loads_no_web_stack(service):
    # What `dramatiq services.<name>.worker` and `closeloop clock <name>` import before they run.
    loaded = imported_by(f"import services.{service}.bootstrap, shared.broker, shared.scheduling")
    assert "dramatiq" in loaded  # the check sees what it should
    assert loaded & (WEB_STACK | ON_FIRST_USE) == set()


@pytest.mark.parametrize("service", SERVICES)
def test_a_web_process_loads_no_broker_nor_sdk(service):
    # What `gunicorn services.<name>.wsgi:app` imports to build the app.
    loaded = imported_by(f"import services.{service}.bootstrap, services.{service}.app")
    assert "flask_smorest" in loaded
    assert loaded & ({"dramatiq"} | ON_FIRST_USE) == set()


@pytest.mark.parametrize("service", SERVICES)
def test_a_clock_loads_its_own_service_alone(service):
    # `closeloop clock <name>` (and `closeloop migrate <name>` before a web process) import one service.
    modules = modules_after(f"from closeloop import cli\ncli._wiring({service!r})")
    assert {module.split(".")[1] for module in modules if module.startswith("services.")} == {service}
    assert {module.split(".")[0] for module in modules} & (WEB_STACK | ON_FIRST_USE) == set()


def test_the_gateway_loads_no_broker_nor_sdk():
    loaded = imported_by("import closeloop.gateway")
    assert loaded & ({"dramatiq"} | ON_FIRST_USE) == set()


def test_scoring_english_loads_textblob_lexicon_without_nltk():
    # The sentiment worker's first English comment loads TextBlob's lexicon, not NLTK; the library itself
    # still works afterwards, with the same scores.
    code = (
        "import json, sys\n"
        "from services.sentiment.analysis.english import _pattern_sentiment\n"
        "text = 'The support agent was lovely, the refund was slow'\n"
        "ours = tuple(_pattern_sentiment()(text))\n"
        "before = 'nltk' in sys.modules\n"
        "from textblob import TextBlob\n"
        "print(json.dumps([before, ours == tuple(TextBlob(text).sentiment), 'nltk' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [False, True, True]


def test_building_a_sendgrid_email_loads_the_mail_helper_alone():
    # Dispatch's first email builds SendGrid's Mail without the package's __init__ (cryptography and the
    # API client); the SDK still works as usual afterwards.
    code = (
        "import json, sys\n"
        "from services.dispatch.providers.base import OutgoingEmail\n"
        "from services.dispatch.providers.sendgrid_email import SendGridEmailTransport\n"
        "transport = SendGridEmailTransport('SG.test', 'team@example.com')\n"
        "email = OutgoingEmail(to_email='pat@example.com', to_name='Pat', subject='Hi', text='Hi',"
        " html='<p>Hi</p>', reference='d-1')\n"
        "payload = transport.build_payload(email)\n"
        "heavy = ('sendgrid.sendgrid', 'sendgrid.helpers.eventwebhook')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "from sendgrid import SendGridAPIClient\n"
        "to = payload['personalizations'][0]['to'][0]['email']\n"
        "print(json.dumps([before, to, SendGridAPIClient.__name__]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [[], "pat@example.com", "SendGridAPIClient"]
