"""E-mail addresses as people type them: one written form per mailbox, look-alike letters refused.

A member is one person per e-mail address, so an address must have one written form: full-width
letters are read as the letters they stand for (NFKC), the domain as IDNA reads it (capitals, Unicode
or punycode alike). An address that mixes scripts, such as a Cyrillic "а" among Latin letters, looks
like another person's address while being a different one: it is refused, saying why.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatcher.core.contacts import contact_digest
from dispatcher.core.models import MemberIn, MemberPatch, PlpIn


def email_of(raw: str) -> str:
    email = MemberIn(name="X", email=raw).email
    assert email is not None
    return str(email)


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        pytest.param("anne.dubois@example.org", "anne.dubois@example.org", id="plain"),
        pytest.param("ａｎｎｅ.ｄｕｂｏｉｓ@example.org", "anne.dubois@example.org", id="full-width-local-part"),
        pytest.param("anne.dubois＠ｅｘａｍｐｌｅ.ｏｒｇ", "anne.dubois@example.org", id="full-width-at-and-domain"),
        pytest.param("anne.dubois@EXAMPLE.ORG", "anne.dubois@example.org", id="upper-case-domain"),
        pytest.param("Anne.Dubois@Example.Org", "Anne.Dubois@example.org", id="capitals-kept-in-local-part"),
        pytest.param("anne@bücher.be", "anne@bücher.be", id="idn-domain-in-unicode"),
        pytest.param("anne@xn--bcher-kva.be", "anne@bücher.be", id="idn-domain-in-punycode"),
        pytest.param("anne@BÜCHER.BE", "anne@bücher.be", id="idn-domain-in-capitals"),
        pytest.param("élodie.müller@example.be", "élodie.müller@example.be", id="latin-with-accents"),
        pytest.param("иван@пример.рф", "иван@пример.рф", id="cyrillic-local-part-and-domain"),
        pytest.param("иван.петров@example.org", "иван.петров@example.org", id="cyrillic-local-part"),
        pytest.param("θεσσαλονίκη@example.gr", "θεσσαλονίκη@example.gr", id="greek-local-part"),
        pytest.param("山田たろう@example.jp", "山田たろう@example.jp", id="han-with-hiragana"),
        pytest.param("  anne.dubois@example.org ", "anne.dubois@example.org", id="spaces-around"),
    ],
)
def test_an_address_has_one_written_form(raw: str, written: str) -> None:
    """Full-width letters, capitals in the domain and IDN domains in either form give the one written
    form of the address; a local part in one script other than Latin is accepted as it is."""
    assert email_of(raw) == written


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("anne.dubois@example.org", "ａｎｎｅ.ｄｕｂｏｉｓ@example.org"),
        ("anne.dubois@example.org", "ANNE.DUBOIS@Example.ORG"),
        ("anne@bücher.be", "anne@xn--bcher-kva.be"),
    ],
)
def test_two_writings_of_one_address_are_the_same_person(one: str, other: str) -> None:
    """Two writings of one mailbox index the same member."""
    assert contact_digest("email", email_of(one)) == contact_digest("email", email_of(other))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("аnne.dubois@example.org", "mixes Latin and Cyrillic", id="cyrillic-a"),
        pytest.param("annе.dubois@example.org", "mixes Latin and Cyrillic", id="cyrillic-e"),
        pytest.param("anne.dubоis@example.org", "mixes Latin and Cyrillic", id="cyrillic-o"),
        pytest.param("ａnnе@example.org", "mixes Latin and Cyrillic", id="full-width-and-cyrillic"),
        pytest.param("anne.dubοis@example.org", "mixes Latin and Greek", id="greek-omicron"),
        pytest.param("anne@exаmple.org", "the domain mixes Latin and Cyrillic", id="cyrillic-a-in-domain"),
        pytest.param("anne@", "not a valid e-mail address", id="no-domain"),
    ],
)
def test_look_alike_addresses_are_refused_saying_why(raw: str, reason: str) -> None:
    """An address mixing scripts (letters that look Latin but are not) is refused, naming the scripts."""
    with pytest.raises(ValidationError) as refused:
        MemberIn(name="X", email=raw)
    (error,) = refused.value.errors()
    assert error["loc"] == ("email",)
    assert reason in error["msg"]


def test_the_same_rules_hold_wherever_an_address_is_written() -> None:
    """A member's change and a PLP's reply-to addresses are read the same way."""
    assert MemberPatch(email="ａｎｎｅ@EXAMPLE.org").email == "anne@example.org"
    assert PlpIn(name="P", commune="C", police_zone="1", reply_to=["Coord@Bücher.BE"]).reply_to == ["Coord@bücher.be"]
    with pytest.raises(ValidationError, match="mixes Latin and Cyrillic"):
        MemberPatch(email="аnne@example.org")
    with pytest.raises(ValidationError, match="mixes Latin and Cyrillic"):
        PlpIn(name="P", commune="C", police_zone="1", reply_to=["соord@example.org"])
