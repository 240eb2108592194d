from __future__ import annotations

import pytest

from services.dispatch.app import create_app as create_dispatch_app
from services.survey.app import create_app as create_survey_app
from tests.conftest import make_settings, migrated_service, staff_client


@pytest.fixture
def survey(postgres_url):
    with migrated_service("survey", make_settings(postgres_url)) as runtime:
        yield runtime


@pytest.fixture
def survey_client(survey):
    return staff_client(create_survey_app(survey), survey.identity)


@pytest.fixture
def dispatch(postgres_url):
    with migrated_service(
        "dispatch", make_settings(postgres_url, twilio_auth_token="twilio-test-token")
    ) as runtime:
        yield runtime


@pytest.fixture
def dispatch_client(dispatch):
    return staff_client(create_dispatch_app(dispatch), dispatch.identity)
