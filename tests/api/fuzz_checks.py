"""A check of our own for the schemathesis fuzz test (``test_fuzz``), loaded through its ``hooks`` setting.

schemathesis' ``not_a_server_error`` refuses every 5xx, and its status code check lets the
"default" response cover any status. The fuzz test lets 503 through the first (Redis out of
reach is a documented answer, not a server error) and this check then requires what the
"default" response would hide: the operation declares 503 itself, and the answer carries the
Retry-After the document promises.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def unavailable_only_where_declared(ctx: Any, response: Any, case: Any) -> None:
    """A 503 only from an operation whose document declares it, with its Retry-After if declared."""
    if response.status_code != 503:
        return
    statuses = [str(code) for code in case.operation.responses.status_codes]
    if "503" not in statuses:
        raise AssertionError(f"{case.operation.label} answered 503, which its document does not declare")
    declared = case.operation.responses.find_by_status_code(503)
    headers = (declared.definition or {}).get("headers", {}) if declared is not None else {}
    if "Retry-After" in headers and "retry-after" not in response.headers:
        raise AssertionError(f"{case.operation.label} answered 503 without the Retry-After its document declares")
