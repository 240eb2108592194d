"""CLOSELOOP_SOURCES: named CRM event sources, each with its format and its own secret variable."""

from __future__ import annotations

import pytest

from shared.settings import Settings, source_secret_variable

WHSEC = "whsec_dGVzdC1zZWNyZXQtZm9yLWNsb3NlbG9vcC10ZXN0cw=="


def test_sources_are_read_with_their_own_secret_variables():
    settings = Settings.from_env(
        {
            "CLOSELOOP_SOURCES": "shop-eu:shopify, helpdesk:zendesk,erp:standard",
            "CLOSELOOP_SOURCE_SHOP_EU_SECRET": "shpss_abc",
            "CLOSELOOP_SOURCE_HELPDESK_SECRET": "zendesk-secret",
            "CLOSELOOP_SOURCE_ERP_SECRET": WHSEC,
        }
    )
    assert {name: source.format for name, source in settings.sources.items()} == {
        "shop-eu": "shopify",
        "helpdesk": "zendesk",
        "erp": "standard",
    }
    assert settings.sources["shop-eu"].secret == "shpss_abc"
    assert "shpss_abc" not in repr(settings.sources["shop-eu"])


def test_no_sources_by_default():
    assert Settings.from_env({}).sources == {}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CLOSELOOP_SOURCES": "shop:shopify"}, "CLOSELOOP_SOURCE_SHOP_SECRET"),
        ({"CLOSELOOP_SOURCES": "shop:magento", "CLOSELOOP_SOURCE_SHOP_SECRET": "x"}, "format"),
        ({"CLOSELOOP_SOURCES": "default:standard"}, "source name"),
        ({"CLOSELOOP_SOURCES": "Shop:shopify"}, "source name"),
        ({"CLOSELOOP_SOURCES": "erp:standard", "CLOSELOOP_SOURCE_ERP_SECRET": "plain"}, "whsec_"),
        ({"CLOSELOOP_SOURCES": "a:zendesk a:zendesk", "CLOSELOOP_SOURCE_A_SECRET": "x"}, "source name"),
    ],
)
def test_a_wrong_source_setting_stops_the_start_naming_what_is_wrong(environ, named):
    with pytest.raises(ValueError, match=named):
        Settings.from_env(environ)


def test_the_secret_variable_is_named_after_the_source():
    assert source_secret_variable("shop-eu") == "CLOSELOOP_SOURCE_SHOP_EU_SECRET"
