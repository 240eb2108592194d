"""Identity and access, shared by every service: staff users, API keys and the guard in front of each app.

``domain`` holds the rules (password policy, key format, sign-in throttling), ``store`` keeps users and keys
in the identity database (its own tables and migrations), and ``web`` puts a principal on each Flask request,
refuses strangers, and serves the sign-in and API keys pages.
"""
