"""Doors to outside systems reached over HTTP or LDAP: the one outbound HTTP door (egress)
and the Jenkins, Prometheus, registry and directory clients. They take plain values,
return small dataclasses, raise their own errors, and import no model and no workflow.
"""
