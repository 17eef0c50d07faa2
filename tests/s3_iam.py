"""moto's S3 made faithful to AWS in the two places least-privilege policies depend on.

moto (5.2) ignores every IAM condition but `StringEquals` on S3 requests (it never passes the
request's condition keys) and answers 404 for a missing key whoever asks. AWS:

- evaluates `s3:prefix` on ListBucket (`StringLike`, `StringEquals`, their negations, `Null`);
  a statement whose condition does not hold does not apply (moto would make it an explicit Deny);
- answers a GET or HEAD of a missing key with **403** unless the caller may list the bucket
  (ListBucket granted with no condition on the prefix: the GET carries no `s3:prefix`).

Without both, a test of the documented client policy would pass whatever the policy said about
listing. `install()` patches moto's evaluator for the session's server; `hides_missing()` is
asked by the server's WSGI wrapper before it lets a 404 out.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACCOUNT = "123456789012"  # moto's default account


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))  # IAM wildcards: * and ? only


_POSITIVE = {"StringLike": _like, "StringEquals": str.__eq__}


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM condition evaluation for the operators a store policy uses; anything else fails loudly."""
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = context.get(key)
            if operator == "Null":
                if (actual is None) != (str(values[0]).lower() == "true"):
                    return False
                continue
            negated = operator.startswith("StringNot")
            base = operator.replace("Not", "", 1) if negated else operator
            if base not in _POSITIVE:
                raise AssertionError(f"tests/s3_iam.py does not evaluate IAM operator {operator}")
            if actual is None:  # a missing key: positive operators fail, negated ones hold (AWS)
                if not negated:
                    return False
                continue
            matched = any(_POSITIVE[base](str(v), actual) for v in values)
            if matched == negated:
                return False
    return True


def _context(action: str, path: str) -> dict[str, str]:
    """Condition keys of a request: `s3:prefix` of a listing that names one."""
    if action != "s3:ListBucket":
        return {}
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    return {"s3:prefix": query["prefix"][0]} if "prefix" in query else {}


def _decide(policies: list[Any], action: str, resource: str, context: dict[str, str]) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource, incoming_condition_values=context)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def install() -> None:
    """Patch moto's statement and S3 request evaluation (idempotent)."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult, S3IAMRequest

    if getattr(IAMPolicyStatement, "_regen_faithful", False):
        return
    original = IAMPolicyStatement.is_action_permitted

    def statement(self: Any, action: str, resource: str = "*", principal: str | None = None,
                  incoming_condition_values: dict[str, str] | None = None) -> Any:
        cond = self._statement.get("Condition")
        if cond:
            concerned = IAMPolicyStatement({k: v for k, v in self._statement.items() if k != "Condition"})
            result = original(concerned, action, resource, principal, None)
            if result == PermissionResult.NEUTRAL or not conditions_hold(cond, incoming_condition_values or {}):
                return PermissionResult.NEUTRAL  # a statement whose condition fails does not apply
            return result
        return original(self, action, resource, principal, incoming_condition_values)

    def check(self: Any, resource: str) -> None:
        if not _decide(self._access_key.collect_policies(), self._action, resource,
                       _context(self._action, self._path)):
            self._raise_access_denied()

    IAMPolicyStatement.is_action_permitted = statement  # type: ignore[method-assign]
    S3IAMRequest.check_action_permitted = check  # type: ignore[method-assign]
    IAMPolicyStatement._regen_faithful = True  # type: ignore[attr-defined]


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def hides_missing(environ: dict[str, Any]) -> bool:
    """Whether AWS would answer this request's 404 (a GET or HEAD of a missing key) with 403: the
    caller may not list the bucket (the GET carries no `s3:prefix`, so prefix-limited grants fail)."""
    from moto.iam.access_control import create_access_key

    parts = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or len(parts) != 2 or not parts[1]:
        return False
    m = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m is None:
        return False
    key = create_access_key(account_id=ACCOUNT, partition="aws", access_key_id=m.group(1), headers={})
    return not _decide(key.collect_policies(), "s3:ListBucket", f"arn:aws:s3:::{parts[0]}", {})


ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message></Error>")
