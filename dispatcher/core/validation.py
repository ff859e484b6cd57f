"""Validation errors as ``{field, reason}`` pairs that name the field at fault."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def field_path(where: str, loc: tuple[Any, ...]) -> str:
    """``("texts", "fr")`` under ``body`` -> ``body.texts.fr``; list positions as ``[i]``."""
    path = where
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.removeprefix(".")


def field_errors(exc: ValidationError, where: str) -> list[dict[str, str]]:
    """One ``{field, reason}`` per error of a pydantic validation."""
    errors = []
    for error in exc.errors(include_url=False):
        loc = tuple(
            p
            for p in error["loc"]
            if not (isinstance(p, str) and (p == "[key]" or p.startswith(("function-", "constrained-"))))
        )
        reason = error["msg"].removeprefix("Value error, ")
        errors.append({"field": field_path(where, loc) or where or "row", "reason": reason})
    return errors
