"""Accounts: passwords, TOTP, recovery codes, sessions, throttling and user administration."""
