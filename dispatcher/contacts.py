"""Contact points: phone numbers read the way people write them, kept in E.164."""

from __future__ import annotations

import hashlib

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class InvalidContact(ValueError):
    """A contact point that cannot be used; the message says why, for a coordinator."""


def normalise_mobile(raw: str, *, region: str) -> str:
    """Return a mobile number in E.164, reading national formats in ``region``.

    ``"0470 12 34 56"`` with region ``BE`` gives ``"+32470123456"``. Raises
    ``InvalidContact`` for text that is no number, an invalid number, or a fixed line.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        raise InvalidContact(f"not a phone number ({exc.args[0]})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact("not a valid phone number")
    if phonenumbers.number_type(number) not in _MOBILE:
        raise InvalidContact("not a mobile number: SMS cannot reach it")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_digest(kind: str, value: str) -> str:
    """A stable digest of a contact point, to index members without writing it in key names."""
    return hashlib.sha256(f"{kind}:{value.lower()}".encode()).hexdigest()[:32]
