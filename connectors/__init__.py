"""Channel connectors: each package turns one provider's input into InboundMessage and sends OutboundMessage.

Every package listed in INSTALLED exposes ``init_app(app)``, which registers its outbound factory with
``connectors.base.register`` and any webhook blueprint or command it needs.
"""

INSTALLED: tuple[str, ...] = (
    "connectors.api",
    "connectors.email",
    "connectors.twilio",
    "connectors.chat",
    "connectors.form",
)
