"""A Delighted-compatible API under ``/delighted/v1/``: Delighted's people, survey responses, metrics,
unsubscribes and bounces, served from survey's customers, invitations and responses, so integrations written
against Delighted's official clients keep working with only their base URL changed."""
