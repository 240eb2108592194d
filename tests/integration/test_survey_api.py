"""The CRM event intake on PostgreSQL: signatures, validation, de-duplication, the outbox."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

from sqlalchemy import func, select

from services.survey import service
from services.survey.app import create_app as survey_app
from services.survey.models import ChannelOptOut, CrmEvent, Customer, Invitation, outbox
from services.survey.schemas import CrmEventSchema
from services.survey.unit_of_work import SurveyUnitOfWork
from shared.clock import utcnow
from shared.events import parse_event
from shared.signing import signed_headers
from tests.conftest import crm_event, make_settings, migrated_service, signed_request, statements_sent
from tests.survey_intake import decision_of, post_and_decide


def _post(client, event, **sign_options):
    body, headers = signed_request(event, **sign_options)
    return client.post("/v1/events", data=body, headers=headers)


def _count(runtime, what):
    with runtime.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(what))


def test_signed_purchase_is_accepted_at_once_and_decided_right_after(survey, survey_client):
    response = _post(survey_client, crm_event("order-1"))

    assert response.status_code == 202
    receipt = response.get_json()
    event_url = f"http://testserver/v1/events/{receipt['event_id']}"
    assert receipt == {
        "version": 2,
        "status": "accepted",
        "event_id": receipt["event_id"],
        "duplicate": False,
        "links": {"event": event_url},
    }
    assert response.headers["Location"] == event_url
    # Stored, not yet decided: the decider (the survey clock) takes it from here.
    waiting = survey_client.get(event_url).get_json()
    assert (waiting["status"], waiting["decision"], waiting["invitation_id"]) == ("received", None, None)
    assert waiting["customer_external_id"] == "crm-42"
    assert _count(survey, Customer) == 0 and _count(survey, Invitation) == 0 and _count(survey, outbox) == 0

    assert service.decide_received_events(survey) == 1

    decided = survey_client.get(event_url).get_json()
    assert (decided["status"], decided["decision"]) == ("decided", "invited") and decided["invitation_id"]
    with survey.database.transaction() as session:
        row = session.execute(select(outbox.c.payload)).one()
        invitation = session.get(Invitation, decided["invitation_id"])
        stored = session.get(CrmEvent, receipt["event_id"])
        assert stored.customer_fields is None  # kept in the customer's row once decided
    _, data = parse_event(row.payload, "invitation.requested")
    assert data["invitation_id"] == invitation.id
    assert data["contact"]["email"] == "jane@example.com"
    assert data["message"]["answer_url"] == f"http://testserver/s/{invitation.token}"
    assert survey_client.get("/v1/customers/crm-42/decisions").get_json() == [decided]


def test_same_event_id_twice_is_a_duplicate_and_creates_nothing_new(survey, survey_client):
    first = _post(survey_client, crm_event("order-1")).get_json()
    second = _post(survey_client, crm_event("order-1"))
    service.decide_received_events(survey)
    third = _post(survey_client, crm_event("order-1"))  # after its decision too

    for repeat in (second, third):
        assert repeat.status_code == 200
        assert repeat.get_json() == {**first, "status": "duplicate", "duplicate": True}
        assert repeat.headers["Location"] == first["links"]["event"]
    assert service.decide_received_events(survey) == 0
    assert _count(survey, CrmEvent) == 1 and _count(survey, Invitation) == 1 and _count(survey, outbox) == 1


def test_an_event_received_before_a_crash_is_decided_by_the_next_decider(survey, survey_client, postgres_url):
    receipt = _post(survey_client, crm_event("order-1")).get_json()
    # The process that accepted it dies before its clock decides: another one, started later, decides it.
    with migrated_service("survey", make_settings(postgres_url)) as restarted:
        assert service.decide_received_events(restarted) == 1
    assert survey_client.get(receipt["links"]["event"]).get_json()["decision"] == "invited"
    assert _count(survey, Invitation) == 1


def test_wrong_signature_is_refused_and_stores_nothing(survey, survey_client):
    response = _post(survey_client, crm_event(), secret="whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert _count(survey, CrmEvent) == 0


def test_missing_signature_is_refused(survey_client):
    response = survey_client.post("/v1/events", json=crm_event())
    assert response.status_code == 401


def test_signature_older_than_five_minutes_is_refused(survey, survey_client):
    response = _post(survey_client, crm_event(), timestamp=utcnow() - timedelta(minutes=6))
    assert response.status_code == 401
    assert "tolerance" in response.get_json()["detail"]


def test_malformed_event_gets_field_errors(survey, survey_client):
    event = crm_event(phone="0555 123", timezone="Mars/Olympus")
    event["type"] = "order.shipped"
    del event["occurred_at"]

    response = _post(survey_client, event)

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"type", "occurred_at", "customer"}
    assert set(errors["customer"]) == {"phone", "timezone"}
    assert _count(survey, CrmEvent) == 0


def test_customer_without_email_or_phone_is_refused(survey_client):
    response = _post(survey_client, crm_event(email=None))
    assert response.status_code == 422
    assert "email" in response.get_json()["errors"]["customer"]


def test_second_event_within_thirty_days_is_stored_but_not_surveyed(survey, survey_client):
    post_and_decide(survey_client, survey, crm_event("order-1"))
    second, decision = post_and_decide(survey_client, survey, crm_event("call-2", phone="+905555550100"))

    assert second.status_code == 202
    assert decision["decision"] == "skipped"
    assert _count(survey, Invitation) == 1
    with survey.database.transaction() as session:
        customer = session.scalars(select(Customer)).one()
    assert customer.phone == "+905555550100" and customer.email == "jane@example.com"


def test_openapi_document_describes_the_event_intake_and_its_versioned_answer(survey_client):
    document = survey_client.get("/openapi/survey.json").get_json()
    assert "/v1/events" in document["paths"]
    assert "CrmEvent" in document["components"]["schemas"]
    answers = document["paths"]["/v1/events"]["post"]["responses"]
    assert set(answers["202"]["headers"]) == {"Location"}
    receipt = document["components"]["schemas"]["EventReceipt"]["properties"]
    assert {"version", "status", "event_id", "links"} <= set(receipt)


def test_body_that_is_not_json_gets_a_clear_400(survey, survey_client):
    body = b"order=1"
    headers = {"Content-Type": "application/json", **signed_headers(survey.settings.webhook_secret, body)}
    response = survey_client.post("/v1/events", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["detail"] == "Invalid JSON body."


def test_fields_a_crm_adds_are_kept_in_the_events_properties_not_refused(survey, survey_client):
    event = {**crm_event(first_name="Jane"), "colour": "blue"}

    response = _post(survey_client, event)

    assert response.status_code == 202
    with survey.database.transaction() as session:
        stored = session.scalars(select(CrmEvent)).one()
        assert stored.properties == {"order_id": "A-1001", "first_name": "Jane", "colour": "blue"}


def _post_concurrently(survey, events):
    barrier = Barrier(len(events))
    app = survey_app(survey)

    def post(event):
        client = app.test_client()
        body, headers = signed_request(event)
        barrier.wait()
        return client.post("/v1/events", data=body, headers=headers)

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(post, events))


def _decide_concurrently(survey, deciders=3):
    """Several clocks' deciders at once, each taking two events at a time until none is left."""
    barrier = Barrier(deciders)

    def decide():
        barrier.wait()
        decided = 0
        while batch := service.decide_received_events(survey, limit=2):
            decided += batch
        return decided

    with ThreadPoolExecutor(deciders) as pool:
        decided = sum(pool.map(lambda _: decide(), range(deciders)))
    assert service.decide_received_events(survey) == 0  # nothing left received
    return decided


def _decisions(client, responses):
    return sorted(decision_of(client, response)["decision"] for response in responses)


def test_concurrent_events_for_a_new_customer_invite_once(survey, survey_client):
    responses = _post_concurrently(survey, [crm_event(f"order-{n}") for n in range(6)])
    assert sorted(r.status_code for r in responses) == [202] * 6

    assert _decide_concurrently(survey) == 6
    assert _decisions(survey_client, responses) == ["invited"] + ["skipped"] * 5
    assert _count(survey, Customer) == 1 and _count(survey, Invitation) == 1


def test_the_same_event_posted_concurrently_is_stored_once(survey):
    responses = _post_concurrently(survey, [crm_event("order-1")] * 4)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 202]
    assert len({r.get_json()["event_id"] for r in responses}) == 1
    assert _decide_concurrently(survey) == 1
    assert _count(survey, CrmEvent) == 1 and _count(survey, Invitation) == 1


def test_the_session_path_of_the_intake_stores_once_on_postgresql(survey):
    # The hot path (a kept connection, autocommit) falls back to the unit of work's own transaction when a
    # concurrent request stored the event while its statement waited: that path must answer the stored id.
    def values(order: str) -> dict:
        return service.intake_values(CrmEventSchema().load(crm_event(order)), "default")

    first = service.accept_crm_event(survey, crm_event("order-7"))
    assert SurveyUnitOfWork.receive_crm_event(survey.unit_of_work(), values("order-7")) == (
        first.event_id,
        False,
    )
    assert _count(survey, CrmEvent) == 1
    other = values("order-8")
    assert SurveyUnitOfWork.receive_crm_event(survey.unit_of_work(), other) == (other["id"], True)
    assert _count(survey, CrmEvent) == 2


def test_concurrent_events_for_a_known_customer_invite_once(survey, survey_client):
    stale = crm_event("old-order")
    stale["occurred_at"] = (utcnow() - timedelta(days=30)).isoformat()
    _, decision = post_and_decide(survey_client, survey, stale)
    assert decision["decision"] == "skipped"  # the customer exists, uninvited

    responses = _post_concurrently(survey, [crm_event(f"order-{n}") for n in range(6)])

    assert _decide_concurrently(survey) == 6
    assert _decisions(survey_client, responses) == ["invited"] + ["skipped"] * 5
    assert _count(survey, Invitation) == 1


def test_deciders_running_at_once_share_every_customer_and_keep_one_customers_events_in_order(survey):
    # A backlog: the oldest quarter of the limit is decided first, alone; then every event left is in one
    # decider's share, and a customer's three events there are decided one after the other (the later ones
    # see the first one's invitation).
    events = [crm_event(event_id=f"evt-{n}", external_id=f"cust-{n}") for n in range(30)]
    events += [crm_event(event_id=f"evt-again-{n}", external_id="cust-again") for n in range(3)]
    for event in events:
        service.accept_crm_event(survey, CrmEventSchema().load(event))
    assert service.decide_received_events(survey, limit=100) == len(events)
    assert service.decide_received_events(survey) == 0
    with survey.database.transaction() as session:
        rows = session.scalars(select(CrmEvent).order_by(CrmEvent.received_at)).all()
        repeat = [row.decision for row in rows if row.external_id.startswith("evt-again-")]
    assert repeat[0] == "invited" and "invited" not in repeat[1:]


def test_a_few_events_waiting_are_decided_in_one_transaction(survey):
    # The loop's usual pace: the clock is woken by each few events, and finds them all in its first batch.
    for n in range(3):
        service.accept_crm_event(survey, CrmEventSchema().load(crm_event(event_id=f"evt-{n}")))
    with statements_sent(survey.database.engine) as statements:
        assert service.decide_received_events(survey) == 3
    claims = [s for s in statements if s.startswith("SELECT survey_crm_events") and "SKIP LOCKED" in s]
    assert len(claims) == 1


def test_a_batch_of_decisions_inserts_its_new_customers_together_before_the_rows_naming_them(survey):
    # A decider's batch adds its customers without a flush each (issue 19): they are written together by the
    # few flushes its look-ups cause (staff's settings, when read) and its commit, each before the events and
    # invitations naming them.
    events = [crm_event(event_id=f"evt-{n}", external_id=f"cust-{n}") for n in range(40)]
    for event in events:
        service.accept_crm_event(survey, CrmEventSchema().load(event))
    with statements_sent(survey.database.engine) as statements:
        assert service.decide_received_events(survey, limit=100) == len(events)
    customer_inserts = [s for s in statements if s.startswith("INSERT INTO survey_customers")]
    assert 1 <= len(customer_inserts) <= len(events) // 2
    assert _count(survey, Customer) == len(events) and _count(survey, Invitation) == len(events)
    with survey.database.transaction() as session:
        assert all(row.customer_id and row.decision == "invited" for row in session.scalars(select(CrmEvent)))


def test_a_batch_of_decisions_sees_the_opt_outs_of_every_address_its_customers_have(survey):
    # Opt-outs are looked up once per batch, for the addresses the events bring and those stored before.
    now = utcnow()
    with survey.database.transaction() as session:
        for channel, address in (("email", "opted@example.com"), ("sms", "+15005550100")):
            session.add(
                ChannelOptOut(channel=channel, address=address, opted_out=True, reason="test", changed_at=now)
            )
    known = crm_event("evt-known-0", external_id="cust-known", email="fine@example.com")
    known["occurred_at"] = (now - timedelta(days=30)).isoformat()  # too old to survey: only stores them
    service.accept_crm_event(survey, CrmEventSchema().load(known))
    assert service.decide_received_events(survey) == 1
    events = [
        crm_event("evt-case", external_id="cust-case", email="Opted@Example.COM"),
        crm_event("evt-fine", external_id="cust-fine", email="other@example.com"),
        # Brings an opted-out phone only: the email stored before still reaches them.
        crm_event("evt-known", external_id="cust-known", email=None, phone="+15005550100"),
        crm_event("evt-sms", external_id="cust-sms", email="opted@example.com", phone="+15005550100"),
    ]
    for event in events:
        service.accept_crm_event(survey, CrmEventSchema().load(event))
    assert service.decide_received_events(survey, limit=100) == len(events)
    with survey.database.transaction() as session:
        rows = session.scalars(select(CrmEvent)).all()
        decided = {row.external_id: (row.decision, row.reason_code) for row in rows}
    assert decided["evt-case"] == ("skipped", "opted_out")
    assert decided["evt-fine"][0] == "invited"
    assert decided["evt-known"][0] == "invited"
    assert decided["evt-sms"] == ("skipped", "opted_out")
