"""Logging that cannot carry a client address (privacy.md §4)."""

from __future__ import annotations

import logging
import re

from flask import Flask

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])|::1\b|::ffff:[\d.]+")


class RedactAddresses(logging.Filter):
    """Replace anything shaped like an IP address in a log record with a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without addresses; never drop the record."""
        message = record.getMessage()
        redacted = _IPV6.sub("[addr]", _IPV4.sub("[addr]", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction(*logger_names: str) -> None:
    """Attach the redacting filter to the named loggers and to every root handler."""
    redact = RedactAddresses()
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAddresses) for f in logger.filters):
            logger.addFilter(redact)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactAddresses) for f in handler.filters):
            handler.addFilter(redact)


def init_app(app: Flask) -> None:
    """Silence per-request access logs and redact addresses from what is still logged."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    install_redaction("werkzeug", "gunicorn.error", "gunicorn.access", app.logger.name)
