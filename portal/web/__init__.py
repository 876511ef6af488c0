"""The core's entry points: its pages (teams, tokens, audit, sign-in, errors), its API, and
what every page and endpoint shares (DRF defaults, one-time form tokens, Idempotency-
Key, rates).
"""
