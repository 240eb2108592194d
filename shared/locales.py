"""The languages Closeloop speaks to customers in, and how a CRM's locale maps onto them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

SUPPORTED_LOCALES = ("en", "tr")
DEFAULT_LOCALE = "en"

T = TypeVar("T")


def resolve_locale(locale: str | None) -> str:
    """'tr-TR' and 'tr_TR' -> 'tr'; anything we have no texts for falls back to English."""
    language = (locale or "").replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


def localized(texts: Mapping[str, T], locale: str | None) -> T:
    """A service's texts for ``locale``: every table of texts is keyed by SUPPORTED_LOCALES."""
    return texts[resolve_locale(locale)]
