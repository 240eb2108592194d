from __future__ import annotations

import pytest

from services.dispatch import bootstrap as dispatch_bootstrap
from services.dispatch.app import create_app as create_dispatch_app
from services.survey import bootstrap as survey_bootstrap
from services.survey.app import create_app as create_survey_app
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def survey(postgres_url):
    runtime = survey_bootstrap.bootstrap(make_settings(postgres_url))
    survey_bootstrap.migrate(runtime)
    yield runtime
    runtime.database.dispose()


@pytest.fixture
def survey_client(survey):
    return create_survey_app(survey).test_client()


@pytest.fixture
def dispatch_settings(postgres_url):
    return make_settings(postgres_url, twilio_auth_token="twilio-test-token")


@pytest.fixture
def dispatch(dispatch_settings):
    runtime = dispatch_bootstrap.bootstrap(dispatch_settings)
    dispatch_bootstrap.migrate(runtime)
    yield runtime
    runtime.database.dispose()


@pytest.fixture
def dispatch_client(dispatch):
    return create_dispatch_app(dispatch).test_client()
