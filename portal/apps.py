from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        from portal import auth_audit  # noqa: F401 (connects the sign-in audit receivers)
        from portal.logs import configure_structlog

        configure_structlog()
