"""Pages of the release engine, one module per subject. Thin: check access with the
access policy (portal/permissions.py), call one workflow function or selector, render.
Every action form carries a one-time token (portal/once.py)."""
