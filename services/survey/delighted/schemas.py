"""Delighted's payloads as its official clients send and read them: validation and documentation at once.

Bodies ignore fields they do not know (the clients send a whole response object back on PUT); queries take
both ``expand[]=person`` (Python, Ruby) and ``expand=person`` (Node).
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.channels import CHANNELS
from shared.sms import E164
from shared.validation import StorableString

from .domain import DEFAULT_PER_PAGE, MAX_PER_PAGE, from_unix, storable_json

# Unix seconds from 1970 to the year 5000: beyond that a datetime overflows.
_UNIX = validate.Range(min=0, max=95_617_584_000)
_ORDERS = ("asc", "desc", "asc:updated_at", "desc:updated_at")


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


def _unix_field(description: str) -> fields.Integer:
    return fields.Integer(load_default=None, validate=_UNIX, metadata={"description": description})


class _Properties(fields.Dict):
    def __init__(self, **kwargs) -> None:
        super().__init__(keys=StorableString(validate=validate.Length(max=200)), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if not storable_json(loaded):
            raise ValidationError("Text without NUL characters, finite numbers, at most 5 levels deep.")
        if len(repr(loaded)) > 20_000:
            raise ValidationError("At most 20,000 characters of properties.")
        return loaded


class _UnixTimes:
    """Turns the loaded Unix-second fields named in ``UNIX_FIELDS`` into datetimes."""

    UNIX_FIELDS: tuple[str, ...] = ()

    @post_load
    def _datetimes(self, data: dict, **_kwargs) -> dict:
        for name in self.UNIX_FIELDS:
            if data.get(name) is not None:
                data[name] = from_unix(data[name])
        return data


class PersonInSchema(_UnixTimes, _Lenient):
    UNIX_FIELDS = ("last_sent_at",)

    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone_number = fields.String(load_default=None, allow_none=True, validate=E164)
    channel = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CHANNELS))
    name = StorableString(load_default=None, allow_none=True, validate=validate.Length(max=200))
    delay = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=365 * 86400), metadata={"description": "Seconds."}
    )
    properties = _Properties(load_default=dict, allow_none=True)
    send = fields.Boolean(load_default=True)
    last_sent_at = _unix_field("Accepted and ignored: Closeloop throttles by its own invitations.")
    email_update = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone_number_update = fields.String(load_default=None, allow_none=True, validate=E164)

    @validates_schema
    def _reachable(self, data: dict, **_kwargs) -> None:
        if not data.get("email") and not data.get("phone_number"):
            raise ValidationError("An email or a phone_number is required.", "email")


class PersonOutSchema(Schema):
    id = fields.String()
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    phone_number = fields.String(allow_none=True)
    created_at = fields.Integer()
    last_sent_at = fields.Integer(allow_none=True)
    last_responded_at = fields.Integer(allow_none=True)
    next_survey_scheduled_at = fields.Integer(allow_none=True)


class PersonSentSchema(PersonOutSchema):
    survey_scheduled_at = fields.Integer(
        allow_none=True, metadata={"description": "Null when send is false or throttling skipped the survey."}
    )
    properties = fields.Dict()


class PeopleQuerySchema(_UnixTimes, _Lenient):
    UNIX_FIELDS = ("since", "until")

    @post_load
    def _plus(self, data: dict, **_kwargs) -> dict:
        if data.get("phone_number") and data["phone_number"].startswith(" "):
            data["phone_number"] = "+" + data["phone_number"].strip()
        return data

    email = StorableString(load_default=None, validate=validate.Length(max=320))
    # A "+" left unescaped in a query string arrives as a space.
    phone_number = StorableString(load_default=None, validate=validate.Length(max=20))
    since = _unix_field("People created at or after this Unix time.")
    until = _unix_field("People created at or before this Unix time.")
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    page_info = StorableString(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "The cursor of the Link header's next page."},
    )


class OkSchema(Schema):
    ok = fields.Boolean()


class SurveyResponseInSchema(_UnixTimes, _Lenient):
    UNIX_FIELDS = ("created_at",)

    person = fields.Raw(required=True, metadata={"description": "The person's id."})
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10))
    comment = StorableString(load_default=None, allow_none=True, validate=validate.Length(max=10_000))
    person_properties = _Properties(load_default=None, allow_none=True)
    created_at = _unix_field("When the answer was given (Unix time); now when left out.")

    @validates_schema
    def _person_id(self, data: dict, **_kwargs) -> None:
        person = data.get("person")
        if isinstance(person, bool) or not isinstance(person, str | int) or not 0 < len(str(person)) <= 36:
            raise ValidationError("The person's id.", "person")
        if not storable_json(str(person)):
            raise ValidationError("The person's id.", "person")


class SurveyResponseUpdateSchema(_Lenient):
    """The whole object as GET gave it: ``person`` may be the expanded person; ids and times are ignored."""

    score = fields.Integer(strict=True, validate=validate.Range(min=0, max=10))
    comment = StorableString(allow_none=True, validate=validate.Length(max=10_000))
    person_properties = _Properties(allow_none=True)
    id = fields.Raw(metadata={"description": "Node's client PUTs to /survey_responses with the id here."})


class SurveyResponseOutSchema(Schema):
    id = fields.String()
    person = fields.Raw(metadata={"description": "The person's id, or the person with expand[]=person."})
    survey_type = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    permalink = fields.String()
    created_at = fields.Integer()
    updated_at = fields.Integer(allow_none=True)
    person_properties = fields.Dict(allow_none=True)
    notes = fields.List(fields.Raw())
    tags = fields.List(fields.String())
    additional_answers = fields.List(fields.Raw())


class ExpandQuerySchema(_Lenient):
    expand = fields.List(fields.String(validate=validate.OneOf(("person", "notes"))), load_default=list)
    expand_brackets = fields.List(
        fields.String(validate=validate.OneOf(("person", "notes"))), data_key="expand[]", load_default=list
    )

    @post_load
    def _one_expand(self, data: dict, **_kwargs) -> dict:
        data["expand"] = set(data.pop("expand_brackets")) | set(data["expand"])
        return data


class SurveyResponsesQuerySchema(_UnixTimes, ExpandQuerySchema):
    UNIX_FIELDS = ("since", "until", "updated_since", "updated_until")

    since = _unix_field("Responses created at or after this Unix time.")
    until = _unix_field("Responses created at or before this Unix time.")
    updated_since = _unix_field("Responses updated at or after this Unix time.")
    updated_until = _unix_field("Responses updated at or before this Unix time.")
    person_id = StorableString(load_default=None, validate=validate.Length(max=36))
    person_email = StorableString(load_default=None, validate=validate.Length(max=320))
    order = fields.String(load_default="asc", validate=validate.OneOf(_ORDERS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class MetricsQuerySchema(_UnixTimes, _Lenient):
    UNIX_FIELDS = ("since", "until")

    since = _unix_field("Responses created at or after this Unix time.")
    until = _unix_field("Responses created at or before this Unix time.")


class MetricsSchema(Schema):
    nps = fields.Integer()
    promoter_count = fields.Integer()
    promoter_percent = fields.Integer()
    passive_count = fields.Integer()
    passive_percent = fields.Integer()
    detractor_count = fields.Integer()
    detractor_percent = fields.Integer()
    response_count = fields.Integer()


class UnsubscribeInSchema(_Lenient):
    person_email = fields.Email(required=True, validate=validate.Length(max=320))


class ListQuerySchema(_UnixTimes, _Lenient):
    UNIX_FIELDS = ("since", "until")

    since = _unix_field("At or after this Unix time.")
    until = _unix_field("At or before this Unix time.")
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class UnsubscribeOutSchema(Schema):
    person_id = fields.String(allow_none=True)
    email = fields.String()
    name = fields.String(allow_none=True)
    unsubscribed_at = fields.Integer()


class BounceOutSchema(Schema):
    person_id = fields.String(allow_none=True)
    email = fields.String()
    name = fields.String(allow_none=True)
    bounced_at = fields.Integer()


class DelightedErrorSchema(Schema):
    """Delighted's error body (not problem+json): what its clients show their callers."""

    status = fields.Integer()
    message = fields.String()
    errors = fields.Dict(metadata={"description": "Field name to its messages (422)."})
