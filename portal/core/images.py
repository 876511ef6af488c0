"""Images by digest: the one pattern for a digest and for `repository@digest`."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
# A full git commit id: SHA-1 (40 hex digits) or SHA-256 (64).
COMMIT_SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DIGEST_RE = re.compile(DIGEST_PATTERN)
# `repo@sha256:…`, `repo:tag@sha256:…` or a bare `sha256:…` somewhere in a text.
IMAGE_REFERENCE_RE = re.compile(rf"(?:(?P<repository>[\w.\-/:]+)@)?(?P<digest>{DIGEST_PATTERN})")


def is_digest(value: str | None) -> bool:
    return bool(value) and DIGEST_RE.fullmatch(value) is not None


def split_image(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; missing parts are ''.

    `registry:5000/team/app:1.2@sha256:…` → ('registry:5000/team/app', '1.2', 'sha256:…').
    """
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, _, tag = name.rpartition(":")
    return name, tag, digest


PLACEHOLDERS = ("repository", "digest", "reference", "tag")


def default_image_values() -> dict:
    """Today's convention: `image.repository` + `image.digest` (see charts/demo-service)."""
    return {"image": {"repository": "{repository}", "digest": "{digest}"}}


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def validate_image_values(value) -> None:
    """A values template must be an object whose strings pin the digest somewhere."""
    if not isinstance(value, dict) or not value:
        raise ValidationError("Give a JSON object, e.g. " + str(default_image_values()))
    strings = _strings(value)
    if not any("{digest}" in s or "{reference}" in s for s in strings):
        raise ValidationError("The template must place {digest} or {reference} somewhere.")
    for text in strings:
        try:
            text.format(**dict.fromkeys(PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationError(
                f"{text!r}: only {{repository}}, {{digest}}, {{reference}} and {{tag}} may be "
                f"used ({exc})."
            ) from exc


def render_image_values(template: dict, *, repository: str, digest: str, tag: str) -> dict:
    """The template with its placeholders filled in, for one release's image."""
    fill = {
        "repository": repository,
        "digest": digest,
        "reference": f"{repository}@{digest}",
        "tag": tag,
    }

    def walk(value):
        if isinstance(value, str):
            return value.format(**fill)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(template)


def tag_for(ref: str) -> str:
    """A Docker tag made from a git ref, for humans reading `repo:tag@digest`."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", ref).lstrip(".-")[:128]
    return tag or "release"
