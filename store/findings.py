"""What fsck found: one `Finding` per problem, collected as values, never raised (pure).

A leaf module: check.py and packcheck.py both produce findings, and neither imports the other's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # corrupt | missing | signature | record | ref | stray | index
    subject: str
    detail: str
    severity: str = "error"  # error | warning

    def as_dict(self) -> dict[str, str]:
        return {"detail": self.detail, "kind": self.kind, "severity": self.severity, "subject": self.subject}


__all__ = ["Finding"]
