from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # Django's documented place for connecting signal receivers and configuring logging
        # once the app registry is ready: these imports need models loaded.
        from portal.access import ldap, signin  # noqa: F401 (connect their receivers)
        from portal.core.logs import configure_structlog

        configure_structlog()
        from portal.web.live import install_resilient_listeners

        install_resilient_listeners()
