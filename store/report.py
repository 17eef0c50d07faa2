"""The run report a client writes and the manager reads (pure).

A client signs its reports with its own host key and a counter (hostkey.py, issue 12); the
manager still treats every report as untrusted input: `Report.from_json` validates shape and
types and raises RecordInvalid, and keeps the exact bytes the signature covers (`signed_body`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RecordInvalid, RecordTooLarge
from .text import json_safe

FORMAT = 1
REPORT_TYPE = "regen-report"
MAX_REPORT_BYTES = 1 << 20  # read side: a larger latest.json is refused (issue 12 step 6)
OUTCOMES = ("ok", "repaired", "updated", "quarantined", "failing")
SEVERITIES = ("info", "warn", "fail")
STORE_STATES = ("ok", "unreachable", "misconfigured", "damaged")  # errors.FAILURES, and ok


@dataclass(frozen=True, slots=True)
class Finding:
    """One hardware observation. `usable` says whether the part can still be relied on."""

    component: str
    severity: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    usable: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "evidence": dict(self.evidence),
            "message": self.message,
            "severity": self.severity,
            "usable": self.usable,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        if not isinstance(d, Mapping):
            raise RecordInvalid("report finding is not an object")
        comp, sev, msg = d.get("component"), d.get("severity"), d.get("message")
        if not isinstance(comp, str) or sev not in SEVERITIES or not isinstance(msg, str):
            raise RecordInvalid(f"report finding {d!r:.80} is malformed")
        ev = d.get("evidence", {})
        return cls(comp, sev, msg, ev if isinstance(ev, dict) else {}, bool(d.get("usable", True)))


@dataclass(frozen=True, slots=True)
class Report:
    host: str
    run_id: str
    started: str
    finished: str
    outcome: str
    exit_code: int
    channel: str | None = None
    generation_before: int | None = None
    generation_after: int | None = None
    steps: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    drift: Mapping[str, Any] = field(default_factory=dict)
    actions: Mapping[str, Any] = field(default_factory=dict)
    bytes_fetched: int = 0
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    version: str = ""
    store_state: str | None = None  # STORE_STATES; None: the run did not need the store (or an older client)
    store_error: str | None = None  # the one line saying what was wrong and the fix
    counter: int | None = None  # the host's report counter (signed reports only; strictly increasing)
    signature: Mapping[str, str] | None = None  # {"keyid", "sig"}: ed25519 over `signed_body`
    signed_body: bytes | None = field(default=None, compare=False, repr=False)  # canonical JSON without signature

    def as_dict(self) -> dict[str, Any]:
        signed: dict[str, Any] = {} if self.counter is None else {"counter": self.counter}
        if self.signature is not None:
            signed["signature"] = dict(self.signature)
        return {**signed,
            "actions": dict(self.actions),
            "bytes_fetched": self.bytes_fetched,
            "channel": self.channel,
            "drift": dict(self.drift),
            "errors": list(self.errors),
            "exit_code": self.exit_code,
            "findings": [f.as_dict() for f in self.findings],
            "finished": self.finished,
            "format": FORMAT,
            "generation_after": self.generation_after,
            "generation_before": self.generation_before,
            "host": self.host,
            "outcome": self.outcome,
            "run_id": self.run_id,
            "started": self.started,
            "steps": dict(self.steps),
            "store_error": self.store_error,
            "store_state": self.store_state,
            "type": REPORT_TYPE,
            "version": self.version,
            "warnings": list(self.warnings),
        }

    def to_json(self) -> bytes:
        return json.dumps(json_safe(self.as_dict()), sort_keys=True, indent=1, ensure_ascii=False,
                          allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str = "report") -> Report:
        if len(data) > MAX_REPORT_BYTES:
            raise RecordTooLarge(f"{where} is {len(data)} bytes, over the limit of {MAX_REPORT_BYTES}")
        try:
            d = json.loads(data, parse_constant=lambda _c: None)  # NaN, Infinity: strict JSON has none
            json.dumps(d, ensure_ascii=False).encode("utf-8")  # no lone surrogate (\ud800): it could not be shown
        except (ValueError, RecursionError):  # (UnicodeEncodeError is a ValueError)
            raise RecordInvalid(f"{where} is not valid JSON", path=where) from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d: Any, where: str = "report") -> Report:
        if not isinstance(d, dict) or d.get("type") != REPORT_TYPE:
            raise RecordInvalid(f"{where} is not a regen report", path=where)
        if d.get("format") != FORMAT:
            raise RecordInvalid(f"{where} has unsupported format {d.get('format')!r}", path=where)

        def get(key: str, types: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
            if key not in d or d[key] is None:
                if required:
                    raise RecordInvalid(f"{where} lacks field {key!r}", path=where)
                return default
            v = d[key]
            allowed = types if isinstance(types, tuple) else (types,)
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in allowed):
                raise RecordInvalid(f"{where} field {key!r} has the wrong type", path=where)
            return v

        outcome = get("outcome", str, required=True)
        if outcome not in OUTCOMES:
            raise RecordInvalid(f"{where} has unknown outcome {outcome!r}", path=where)
        store_state = get("store_state", str)
        if store_state is not None and store_state not in STORE_STATES:
            raise RecordInvalid(f"{where} has unknown store_state {store_state!r}", path=where)
        return cls(
            host=get("host", str, required=True),
            run_id=get("run_id", str, required=True),
            started=get("started", str, required=True),
            finished=get("finished", str, required=True),
            outcome=outcome,
            exit_code=get("exit_code", int, required=True),
            channel=get("channel", str),
            generation_before=get("generation_before", int),
            generation_after=get("generation_after", int),
            steps=get("steps", dict, {}),
            findings=tuple(Finding.from_dict(f) for f in get("findings", list, [])),
            drift=get("drift", dict, {}),
            actions=get("actions", dict, {}),
            bytes_fetched=get("bytes_fetched", int, 0),
            errors=tuple(str(e) for e in get("errors", list, [])),
            warnings=tuple(str(e) for e in get("warnings", list, [])),
            version=get("version", str, ""),
            store_state=store_state,
            store_error=get("store_error", str),
            counter=get("counter", int),
            signature=_signature(d.get("signature"), where),
            signed_body=_signed_body(d, where) if d.get("signature") is not None else None,
        )


def _signature(value: Any, where: str) -> Mapping[str, str] | None:
    if value is None:
        return None
    if (not isinstance(value, dict) or not isinstance(value.get("keyid"), str)
            or not isinstance(value.get("sig"), str)):
        raise RecordInvalid(f"{where} has a malformed signature", path=where)
    return {"keyid": value["keyid"], "sig": value["sig"]}


def _signed_body(d: Mapping[str, Any], where: str) -> bytes:
    """The bytes a report's signature covers: its canonical JSON without the signature itself."""
    from .signing import canonical  # late: signing loads PyNaCl, which an unsigned report never needs

    try:
        return canonical({k: v for k, v in d.items() if k != "signature"})
    except (ValueError, TypeError):
        raise RecordInvalid(f"{where} holds values that have no canonical form", path=where) from None


def drift_of(drift: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Counts and listed paths per kind, from a report's drift section, whatever its quality."""
    counts: dict[str, int] = {}
    paths: dict[str, list[str]] = {}
    for kind, value in drift.items():
        if not isinstance(kind, str):
            continue
        if isinstance(value, Mapping):
            listed = [p for p in value.get("paths", []) if isinstance(p, str)] if isinstance(
                value.get("paths"), list) else []
            count = value.get("count")
            counts[kind] = (count if isinstance(count, int) and not isinstance(count, bool) and count >= 0
                            else len(listed))
            paths[kind] = listed
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            counts[kind] = value
        elif isinstance(value, list):
            paths[kind] = [p for p in value if isinstance(p, str)]
            counts[kind] = len(paths[kind])
    return counts, paths
