"""Who may do what: teams, roles, permissions, API tokens, sign-in (LDAP and local),
offboarding.
"""
