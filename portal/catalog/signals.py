"""What the catalog tells the rest of Slipway: a service declared in its repository
(`slipway.yaml`) is being planned or applied, so the parts that own what else the file
declares (verification: the release engine) plan and apply it too, without the catalog
importing them.

    service_declared.send(sender=Service, service=…, spec=ServiceSpec, apply=bool)

A receiver returns what it changes (or would change), in words, and raises
`DeclarationRefused(message, line)` for what the file may not say.
"""

from django.dispatch import Signal

service_declared = Signal()
