"""Contact points: mobile numbers as people write them, read into E.164; digests that index them."""

from __future__ import annotations

import re

import pytest

from dispatcher.core.contacts import InvalidContact, contact_digest, normalise_mobile


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("0470 12 34 56", "BE", "+32470123456"),
        ("0470/12.34.56", "BE", "+32470123456"),
        ("0470-12-34-56", "BE", "+32470123456"),
        ("0470123456", "BE", "+32470123456"),
        ("  0496 12 34 56  ", "BE", "+32496123456"),
        ("+32 470 12 34 56", "BE", "+32470123456"),
        ("+32470123456", "BE", "+32470123456"),
        ("0032470123456", "BE", "+32470123456"),
        ("+31 6 12345678", "BE", "+31612345678"),
        ("0031612345678", "BE", "+31612345678"),
        ("06 12345678", "NL", "+31612345678"),
    ],
)
def test_mobile_numbers_are_read_into_e164(raw: str, region: str, e164: str) -> None:
    """A mobile number in a national or international format becomes its E.164 form."""
    assert normalise_mobile(raw, region=region) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("02 555 12 12", "not a mobile number: SMS cannot reach it"),
        ("+32 2 555 12 12", "not a mobile number: SMS cannot reach it"),
        ("hello", "not a phone number"),
        ("", "not a phone number"),
        ("0470", "not a valid phone number"),
        ("0470 12 34", "not a valid phone number"),
        ("06 12345678", "not a valid phone number"),  # a Dutch national number, read as Belgian
    ],
)
def test_unusable_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    """Text that is no number, an invalid number or a fixed line is refused, saying which."""
    with pytest.raises(InvalidContact, match=f"^{re.escape(reason)}"):
        normalise_mobile(raw, region="BE")


def test_the_refusal_is_a_value_error() -> None:
    """InvalidContact is a ValueError, so validation layers that catch ValueError report it."""
    assert issubclass(InvalidContact, ValueError)


def test_contact_digest_is_stable() -> None:
    """The same contact point always gives the same short hex digest."""
    first = contact_digest("phone", "+32470123456")
    assert first == contact_digest("phone", "+32470123456")
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_email_digest_ignores_case() -> None:
    """An e-mail address written with other capitals indexes the same member."""
    assert contact_digest("email", "Ann.Peeters@Example.ORG") == contact_digest("email", "ann.peeters@example.org")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("email", "ann@example.org"), ("email", "bob@example.org")),
        (("phone", "+32470123456"), ("phone", "+32470123457")),
        (("phone", "+32470123456"), ("email", "+32470123456")),
    ],
)
def test_different_contact_points_have_different_digests(one: tuple[str, str], other: tuple[str, str]) -> None:
    """Two contact points, or the same text as two kinds of contact, never share a digest."""
    assert contact_digest(*one) != contact_digest(*other)


def test_digest_does_not_contain_the_contact_point() -> None:
    """The digest is what key names hold, so it must not spell out the number."""
    assert "470123456" not in contact_digest("phone", "+32470123456")
