"""Contact points: phone numbers read the way people write them, kept in E.164; e-mail addresses
kept in one written form, look-alike addresses refused."""

from __future__ import annotations

import hashlib
import unicodedata

import phonenumbers
from confusable_homoglyphs import categories
from email_validator import EmailNotValidError, validate_email
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


#: Characters of every script (digits, punctuation) and combining marks: they mix with any script.
_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})
#: Scripts written together in one word, as Unicode's "highly restrictive" profile allows (UTS #39 5.2).
_WRITTEN_TOGETHER = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def normalise_email(raw: str) -> str:
    """Return an e-mail address in its one written form, refusing look-alike addresses.

    The address is read with compatibility forms folded (NFKC: full-width ``ａｎｎｅ`` is ``anne``)
    and its domain as IDNA reads it (lower case, in Unicode: ``xn--bcher-kva.be`` is ``bücher.be``);
    the local part keeps its capitals (``contact_digest`` ignores them). Raises ``InvalidContact``
    for an address that is not valid, or whose local part or a domain label mixes scripts, as
    ``аnne`` with a Cyrillic ``а`` does (a local part all in one script, Cyrillic or Greek, is fine).
    """
    text = unicodedata.normalize("NFKC", raw).strip()
    try:
        found = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(f"not a valid e-mail address: {exc}") from None
    _one_script(found.local_part, "the part before @")
    for label in found.domain.split("."):
        _one_script(label, "the domain")
    return f"{found.local_part}@{found.domain}"


def _one_script(text: str, where: str) -> None:
    scripts = categories.unique_aliases(text) - _ANY_SCRIPT
    if len(scripts) > 1 and not any(scripts <= together for together in _WRITTEN_TOGETHER):
        names = " and ".join(s.title() for s in sorted(scripts, key=lambda s: (s != "LATIN", s)))
        raise InvalidContact(f"{where} mixes {names} letters, as look-alike addresses do; write it in one alphabet")


def contact_digest(kind: str, value: str) -> str:
    """A stable digest of a contact point, to index members without writing it in key names."""
    return hashlib.sha256(f"{kind}:{value.lower()}".encode()).hexdigest()[:32]
