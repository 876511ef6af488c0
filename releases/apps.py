from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"

    def ready(self) -> None:
        # Django's place for work that needs the models loaded: the metrics read them.
        from portal.catalog.signals import service_declared
        from releases import metrics
        from releases.declared import gates_declared, verification_declared

        metrics.register()
        service_declared.connect(verification_declared, dispatch_uid="releases-verification")
        service_declared.connect(gates_declared, dispatch_uid="releases-gates")
