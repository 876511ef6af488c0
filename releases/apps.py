from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"

    def ready(self) -> None:
        # Django's place for work that needs the models loaded: the metrics read them.
        from releases import metrics

        metrics.register()
