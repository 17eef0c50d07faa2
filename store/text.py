"""Text that reaches a terminal, a log or a report: control characters escaped, credentials out,
strict JSON (pure). One place for these rules (issue 13), used by regend's and regen's renderers.

`printable` escapes as `ls -b` does: every C0 control character, DEL and the C1 controls become
backslash escapes (\\n, \\t, \\033, \\302\\233 ...), undecodable bytes of a name \\xNN, so a report
string, a manifest path or a file name can never move the cursor, set a window title or write
the clipboard of the admin's terminal. It is idempotent (an escaped text passes unchanged), so
a message holding an escaped path can be escaped again where it is printed.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

_NAMED = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # (surrogates: undecodable bytes of a name)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@:]*):([^/\s@]*)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pw|secret|token|key|access_key|secret_key|sig|"
                           r"signature|x-amz-signature|x-amz-credential)=)[^&\s#]*")


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    if "\ud800" <= c <= "\udfff":  # an undecodable byte of a file name (surrogateescape), or a lone surrogate
        return f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else f"\\u{ord(c):04x}"
    return _NAMED.get(c) or "".join(f"\\{b:03o}" for b in c.encode("utf-8"))


def printable(text: str) -> str:
    """`text` with every control character escaped (like `ls -b`); plain text unchanged."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def redact(text: str) -> str:
    """`text` with the password of every URL (scheme://user:PASSWORD@host) and secret query
    parameters replaced by ***: store URLs reach errors, logs, the index and reports."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1\2:***@", text))


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through `redact` (the CLIs install it on their
    handler: a store URL with a password in a library's log message never reaches stderr or a journal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = printable(redact(record.getMessage()))
        record.args = None
        return True


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None (strict JSON: json.dumps(allow_nan=False)
    then never fails, and strict parsers accept the output)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = ["RedactingFilter", "json_safe", "printable", "redact"]
