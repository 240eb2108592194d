"""The staff's sign-in and API keys forms (Flask-WTF), loaded with the first of those pages (``.web``)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, Length

from shared.principal import Role

from .domain import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=MAX_EMAIL_LENGTH)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class NewApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=MAX_NAME_LENGTH)])
    role = SelectField("Role", choices=[role.value for role in Role], default=Role.AGENT.value)
