"""The outbound webhooks' rules with no I/O: the address policy, the retry schedule and the message shapes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_address

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.followup import webhooks
from services.followup.webhooks import (
    EVENT_TYPES,
    WEBHOOK_RETRIES,
    RefusedUrl,
    address_refusal,
    check_addresses,
    check_url,
)
from shared.clock import utcnow
from tests.conftest import TEST_SECRET

from .support import START

# --- URLs and addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://crm.example.com/hooks/closeloop?team=1", "crm.example.com", 443),
        ("http://crm.example.com:8080/in", "crm.example.com", 8080),
        ("HTTPS://CRM.example.com", "crm.example.com", 443),
        ("https://93.184.216.34/in", "93.184.216.34", 443),
        ("https://[2606:4700::1111]:8443/in", "2606:4700::1111", 8443),
    ],
)
def test_http_and_https_urls_to_public_hosts_are_accepted(url, host, port):
    target = check_url(url)

    assert (target.host, target.port, target.url) == (host, port, url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://crm.example.com/in", "https://"),
        ("javascript:alert(1)", "https://"),
        ("file:///etc/passwd", "https://"),
        ("crm.example.com/in", "https://"),
        ("https://", "names a host"),
        ("https://user:secret@crm.example.com/in", "no user name or password"),
        ("https://crm.example.com/in put", "no spaces"),
        ("https://crm.example.com/\x00", "control characters"),
        ("https://crm.example.com:99999/in", "not a valid URL"),
        ("https://crm.example.com/" + "a" * 2000, "at most 2000"),
    ],
)
def test_a_url_that_is_not_plain_http_or_https_is_refused_with_the_reason(url, words):
    with pytest.raises(RefusedUrl, match=words):
        check_url(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("fc00::1", "private"),
        ("169.254.10.20", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # Python counts the reserved 240/4 as private too
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        # IPv6 forms of IPv4 addresses go where the IPv4 address goes.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_loopback_private_link_local_multicast_and_metadata_addresses_are_refused(address, reason):
    assert reason in address_refusal(ip_address(address))
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(RefusedUrl, match=reason):
        check_url(f"https://{host}/in")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:80b::200e"]
)
def test_public_addresses_are_called(address):
    assert address_refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.10", "fe80::1", "::ffff:127.0.0.1"]
)
def test_allowing_private_addresses_lets_loopback_private_and_link_local_through(address):
    assert address_refusal(ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_metadata_addresses_stay_refused_even_when_private_ones_are_allowed(address):
    assert address_refusal(ip_address(address), allow_private=True) == "a cloud metadata address"


def test_a_host_name_is_refused_when_any_of_its_addresses_is_refused():
    check_addresses("crm.example.com", ["93.184.216.34", "2606:4700::1111"])

    with pytest.raises(
        RefusedUrl, match=r"crm.example.com resolves to 127.0.0.1, which is a loopback address"
    ):
        check_addresses("crm.example.com", ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(RefusedUrl, match="does not resolve"):
        check_addresses("crm.example.com", [])


def test_a_host_name_is_not_resolved_by_the_url_check_itself():
    # localhost is refused once resolved (check_addresses), at registration and before each attempt.
    assert check_url("http://localhost:8000/in").host == "localhost"


# --- The retry schedule ----------------------------------------------------------------------------------


def test_without_jitter_attempts_back_off_exponentially_for_about_a_day_then_stop():
    schedule = replace(WEBHOOK_RETRIES, jitter=0.0)
    delays = []
    for attempts in range(1, 20):
        retry_at = schedule.next_attempt_at(attempts, START)
        if retry_at is None:
            break
        delays.append(retry_at - START)

    minutes = [delay / timedelta(minutes=1) for delay in delays]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 480, 480]  # then the twelfth attempt is the last
    assert timedelta(hours=23) < sum(delays, timedelta()) < timedelta(hours=26)


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_stretches_or_shrinks_each_delay_by_up_to_a_fifth(draw, factor):
    schedule = replace(WEBHOOK_RETRIES, draw=lambda: draw)

    delay = schedule.next_attempt_at(3, START) - START

    assert delay.total_seconds() == pytest.approx(4 * 60 * factor, abs=0.01)


def test_jittered_delays_stay_within_their_bounds_and_differ():
    delays = {WEBHOOK_RETRIES.next_attempt_at(5, START) - START for _ in range(200)}

    assert all(timedelta(minutes=16 * 0.8) <= delay <= timedelta(minutes=16 * 1.2) for delay in delays)
    assert len(delays) > 100  # deliveries failing together do not come back together


def test_a_whole_jittered_schedule_still_lasts_about_a_day():
    for draw in (0.0, 0.999999):
        schedule = replace(WEBHOOK_RETRIES, draw=lambda draw=draw: draw)
        total = sum(
            (schedule.next_attempt_at(attempts, START) - START for attempts in range(1, 12)), timedelta()
        )
        assert timedelta(hours=19) < total < timedelta(hours=30)
        assert schedule.next_attempt_at(12, START) is None


# --- Messages --------------------------------------------------------------------------------------------


def test_a_message_is_type_timestamp_and_data_as_standard_webhooks_has_it():
    body = webhooks.message("followup.opened", START, {"task": {"id": "t-1"}})

    assert body == {
        "type": "followup.opened",
        "timestamp": "2026-11-25T10:00:00+00:00",
        "data": {"task": {"id": "t-1"}},
    }
    assert json.loads(webhooks.encode(body)) == body
    assert "Şahin".encode() in webhooks.encode({"name": "Şahin"})  # as written, not \\u escaped


def test_headers_are_signed_so_the_standardwebhooks_package_verifies_them():
    body = webhooks.encode(webhooks.message("response.scored", START, {"response": {"id": "r-1"}}))
    now = utcnow()  # the package checks the timestamp against the wall clock

    headers = webhooks.request_headers(TEST_SECRET, "msg_abc", body, now)

    assert headers["Content-Type"] == "application/json"
    verified = Webhook(TEST_SECRET).verify(body, headers)
    assert verified["data"] == {"response": {"id": "r-1"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(TEST_SECRET).verify(body.replace(b"r-1", b"r-2"), headers)


def test_the_timestamp_header_is_the_attempts_time_not_the_events():
    # Receivers refuse a timestamp older than a few minutes, and a retry may come hours after the event.
    attempt = START + timedelta(hours=3)

    headers = webhooks.request_headers(TEST_SECRET, "msg_abc", b"{}", attempt)

    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == str(int(attempt.timestamp()))


def test_an_alert_is_not_signed():
    headers = webhooks.request_headers(None, "msg_abc", b'{"text":"hi"}', START)

    assert "webhook-signature" not in headers and headers["Content-Type"] == "application/json"


def test_the_message_id_is_the_same_for_a_delivery_every_time():
    assert webhooks.new_message_id("3f2a-77") == webhooks.new_message_id("3f2a-77") == "msg_3f2a77"


def test_every_event_type_is_listed_once():
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES) == 7
    assert {"response.received", "referral.converted", "followup.resolved"} <= set(EVENT_TYPES)


def test_an_alert_names_the_customer_score_comment_and_links_the_task():
    text = webhooks.alert_message("Jane Doe", 2, "Nobody  called\nback", "https://closeloop.test/tasks/t-1")[
        "text"
    ]

    assert "*Jane Doe* scored 2/10" in text
    assert "> Nobody called back" in text
    assert text.endswith("<https://closeloop.test/tasks/t-1|Open the task>")


def test_an_alert_escapes_what_customers_wrote_so_it_cannot_mention_everyone():
    text = webhooks.alert_message("<!channel> & co", 1, "<https://evil.test|click>", "https://x.test/t")[
        "text"
    ]

    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text
    assert "&lt;https://evil.test|click&gt;" in text


def test_an_alert_quotes_only_the_start_of_a_long_comment():
    text = webhooks.alert_message("Jane", 0, "x" * 1000, "https://x.test/t")["text"]

    assert "x" * 199 + "…" in text and "x" * 200 not in text


# --- What an attempt did ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "delivered"), [(200, True), (202, True), (204, True), (299, True)])
def test_any_2xx_answer_delivers(status, delivered):
    assert webhooks.is_delivered(status) is delivered


@pytest.mark.parametrize("status", [301, 302, 307, 308, 400, 404, 410, 429, 500, 503])
def test_a_redirect_or_an_error_answer_does_not_deliver(status):
    assert webhooks.is_delivered(status) is False


def test_a_redirect_is_reported_as_not_followed():
    text = webhooks.failure_text(302, "http://169.254.169.254/latest")

    assert "redirect to http://169.254.169.254/latest" in text and "not followed" in text


def test_only_the_start_of_an_answer_is_kept_and_it_can_be_stored():
    kept = webhooks.excerpt(b"\x00" + "é".encode() * 1000)

    assert kept == "\ufffd" + "é" * 127  # the cut fell in the middle of the 128th é: it is left out
    assert webhooks.excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"
