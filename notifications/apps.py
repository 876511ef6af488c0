from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's place for connecting receivers once the models are loaded.
        from notifications import dispatch

        dispatch.connect()
