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
# Modules loaded on first use although their package is loaded at start: prometheus_client's exposition (and
# its package __init__: http.server, wsgiref, urllib.request) with the first scrape of /metrics; Flask-WTF's
# forms and reCAPTCHA field (its package __init__; the guard's CSRF protection loads at start) with the first
# sign-in or API keys page.
ON_FIRST_USE_MODULES = {"prometheus_client.exposition", "flask_wtf.form", "flask_wtf.recaptcha"}
# SQLAlchemy's SQLite dialect is for embedded mode and tests; survey's models load it at start (an index
# with a ``sqlite_where`` has its argument checked by the dialect), the other services only on SQLite.
SQLITE_DIALECT = "sqlalchemy.dialects.sqlite"
WEB_STACK = {"flask", "flask_smorest", "apispec", "wtforms", "flask_wtf", "werkzeug", "jinja2"}


def modules_after(statements: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statements``."""
    code = f"{statements}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def imported_by(statements: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``statements``."""
    return top_level(modules_after(statements))


def top_level(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


def loaded_on_first_use(service: str, modules: set[str]) -> set[str]:
    """What of ``modules`` a process of ``service`` should have left to its first use."""
    first_use = ON_FIRST_USE_MODULES | ({SQLITE_DIALECT} if service != "survey" else set())
    return (top_level(modules) & ON_FIRST_USE) | (modules & first_use)


@pytest.mark.parametrize("service", SERVICES)
def test_a_worker_or_a_clock_loads_no_web_stack(service):
    # What `dramatiq services.<name>.worker` and `closeloop clock <name>` import before they run.
    modules = modules_after(f"import services.{service}.bootstrap, shared.broker, shared.scheduling")
    assert {"dramatiq", "prometheus_client.metrics"} <= modules  # the check sees what it should
    assert top_level(modules) & WEB_STACK == set()
    assert loaded_on_first_use(service, modules) == set()


@pytest.mark.parametrize("service", SERVICES)
def test_a_web_process_loads_no_broker_nor_sdk(service):
    # What `gunicorn services.<name>.wsgi:app` imports to build the app.
    modules = modules_after(f"import services.{service}.bootstrap, services.{service}.app")
    assert {"flask_smorest", "flask_wtf.csrf"} <= modules
    assert "dramatiq" not in top_level(modules)
    assert loaded_on_first_use(service, modules) == set()


@pytest.mark.parametrize("service", SERVICES)
def test_a_clock_loads_its_own_service_alone(service):
    # `closeloop clock <name>` (and `closeloop migrate <name>` before a web process) import one service.
    modules = modules_after(f"from closeloop import cli\ncli._wiring({service!r})")
    assert {module.split(".")[1] for module in modules if module.startswith("services.")} == {service}
    assert top_level(modules) & WEB_STACK == set()
    assert loaded_on_first_use(service, modules) == set()


def test_the_gateway_loads_no_broker_nor_sdk():
    modules = modules_after("import closeloop.gateway")
    assert "dramatiq" not in top_level(modules)
    # The gateway holds survey's app, whose models load the SQLite dialect.
    assert loaded_on_first_use("survey", modules) == set()


def test_the_first_scrape_loads_the_exposition_and_the_default_collectors():
    # Counting loads prometheus_client's metric classes alone; the first scrape runs the package's __init__,
    # which registers the process, platform and GC collectors before it collects, so /metrics shows them.
    code = (
        "import json, sys\n"
        "from shared import metrics\n"
        "metrics.SENDS.labels('sms', 'sent').inc()\n"
        "before = 'prometheus_client.exposition' in sys.modules\n"
        "body, content_type = metrics.exposition()\n"
        "text = body.decode()\n"
        "names = ('closeloop_sends_total', 'process_cpu_seconds_total', 'python_gc_objects_collected_total',"
        " 'python_info')\n"
        "shown = [name in text for name in names]\n"
        "from prometheus_client import CONTENT_TYPE_LATEST\n"
        "print(json.dumps([before, shown, content_type == CONTENT_TYPE_LATEST]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [False, [True, True, True, True], True]


def test_dispatch_renders_its_first_email_with_jinja_loaded_then():
    # Jinja loads with the first email dispatch renders, not when a worker or a clock starts (see above).
    code = (
        "import json, sys\n"
        "from services.dispatch import service\n"
        "before = 'jinja2' in sys.modules\n"
        "template = service._email_template('dispatch/message_email.html')\n"
        "print(json.dumps([before, template is service._email_template('dispatch/message_email.html')]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [False, True]


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


def test_sentiment_builds_its_runtime_and_app_without_the_analysis_and_loads_it_with_the_first_comment():
    # Light tier and the built-in topics (no SENTIMENT_TOPICS_FILE): nothing to check at start, so the web
    # process and the worker load the analysis with the first comment they score.
    code = (
        "import json, sys\n"
        "from shared.settings import Settings\n"
        "from services.sentiment.bootstrap import SERVICE\n"
        "runtime = SERVICE.bootstrap(Settings.from_env({'DATABASE_URL': 'sqlite://'}))\n"
        "SERVICE.create_app(runtime)\n"
        "before = 'services.sentiment.analysis' in sys.modules\n"
        "from services.sentiment import service\n"
        "hint = service.language_hint('tr-TR')\n"
        "print(json.dumps([before, hint, 'services.sentiment.analysis' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [False, "tr", True]


def test_the_default_model_tier_is_looked_for_at_start_and_loaded_with_the_first_comment():
    # An idle sentiment process must not hold the model (~370 MB): at start its packages are only looked for.
    code = (
        "import json, sys\n"
        "from shared.settings import Settings\n"
        "from services.sentiment.runtime import analyzer_tier\n"
        "tier = analyzer_tier(Settings.from_env({}))\n"
        "loaded = [name for name in ('numpy', 'onnx', 'onnxruntime', 'tokenizers') if name in sys.modules]\n"
        "print(json.dumps([tier, loaded]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == ["model", []]
