from __future__ import annotations

import pytest

from shared.locales import SUPPORTED_LOCALES, localized, resolve_locale


@pytest.mark.parametrize(
    ("locale", "expected"), [("tr-TR", "tr"), ("tr_TR", "tr"), ("EN", "en"), ("de", "en"), (None, "en")]
)
def test_locale_resolves_to_a_language_we_have_texts_for(locale, expected):
    assert resolve_locale(locale) == expected


def test_texts_of_an_unsupported_locale_are_the_default_languages():
    texts = {"en": "Thank you", "tr": "Teşekkürler"}
    assert set(texts) == set(SUPPORTED_LOCALES)
    assert localized(texts, "tr-TR") == "Teşekkürler"
    assert localized(texts, "fr") == "Thank you"
