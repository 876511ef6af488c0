"""Admin forms that accept a secret but never show it back."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from portal.catalog.models import (
    CatalogSource,
    DroneServer,
    EnvironmentVariable,
    JenkinsServer,
    Registry,
)


class SecretInput(forms.PasswordInput):
    def __init__(self, **kwargs):
        super().__init__(render_value=False, **kwargs)


class KeepSecretForm(forms.ModelForm):
    """A blank secret on edit keeps the stored one; the stored one is never rendered."""

    secret_field: str = ""
    extra_secret_fields: tuple[str, ...] = ()

    def _secret_fields(self) -> tuple[str, ...]:
        return (self.secret_field, *self.extra_secret_fields)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self._secret_fields():
            field = self.fields[name]
            # Never rendered, and a blank one is no change (it keeps the stored secret).
            field.initial = self.initial[name] = ""
            if self.instance.pk:
                field.required = False
                field.help_text = "Stored encrypted. Leave blank to keep the current value."

    def clean(self):
        cleaned = super().clean()
        for name in self._secret_fields():
            if self.instance.pk and not cleaned.get(name):
                stored = type(self.instance).objects.get(pk=self.instance.pk)
                cleaned[name] = getattr(stored, name)
        return cleaned


class JenkinsServerForm(KeepSecretForm):
    secret_field = "api_token"
    extra_secret_fields = ("notification_secret",)
    api_token = forms.CharField(
        widget=SecretInput(), required=False, help_text="Stored encrypted; never shown again."
    )
    notification_secret = forms.CharField(
        widget=SecretInput(),
        required=False,
        help_text="Turns on build notifications (docs/jenkins.md): the token in the hook URL "
        "/hooks/jenkins/<name>?token=…; stored encrypted, never shown again.",
    )

    class Meta:
        model = JenkinsServer
        fields = ["name", "url", "username", "api_token", "notification_secret", "timeout_seconds"]


class DroneServerForm(KeepSecretForm):
    secret_field = "token"
    token = forms.CharField(
        widget=SecretInput(), required=False, help_text="Stored encrypted; never shown again."
    )

    class Meta:
        model = DroneServer
        fields = ["name", "url", "token", "timeout_seconds"]


class CatalogSourceForm(KeepSecretForm):
    secret_field = "webhook_secret"
    webhook_secret = forms.CharField(
        widget=SecretInput(),
        required=False,
        help_text="Turns on the push webhook /hooks/catalog/<id>?token=…; stored encrypted, "
        "never shown again.",
    )

    class Meta:
        model = CatalogSource
        fields = ["name", "repositories", "webhook_secret", "enabled"]


class RegistryForm(KeepSecretForm):
    secret_field = "password"
    password = forms.CharField(
        widget=SecretInput(), required=False, help_text="Stored encrypted; never shown again."
    )

    class Meta:
        model = Registry
        fields = ["name", "url", "username", "password", "ca_certificate", "timeout_seconds"]


class EnvironmentVariableForm(KeepSecretForm):
    secret_field = "secret_value"
    secret_value = forms.CharField(
        widget=SecretInput(),
        required=False,
        help_text="For a secret variable: stored encrypted, never shown again.",
    )

    class Meta:
        model = EnvironmentVariable
        fields = ["environment", "target", "name", "value", "is_secret", "secret_value"]

    def clean(self):
        data = super().clean()
        if data.get("is_secret") and data.get("value"):
            self.add_error("value", "A secret's value goes in the secret field, never here.")
        return data


class SignInForm(AuthenticationForm):
    """The sign-in form; says so when the directory, not the password, failed."""

    def get_invalid_login_error(self):
        if getattr(self.request, "slipway_directory_down", False):
            return forms.ValidationError(
                "The directory (LDAP) does not answer; try again shortly. Local accounts "
                "still sign in.",
                code="directory_down",
            )
        return forms.ValidationError("Wrong username or password.", code="invalid_login")
