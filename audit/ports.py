"""Ports through which the rest of the service records audit events."""

from __future__ import annotations

from typing import Protocol

from audit.events import AuditEvent


class EventRecorder(Protocol):
    def record(self, event: AuditEvent) -> str:
        """Store event within the caller's open transaction and return its id.

        Nothing is committed here: the caller commits the event together with the
        change it describes, or rolls both back."""
        ...
