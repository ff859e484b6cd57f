"""An e-mail's words are rendered once for every member who reads them; each member's links are put in after.

The reference is the rendering for each member (``email_texts``: the plain text formatted, the HTML by Jinja with
autoescaping); the shared rendering with the links put in (``email_for_member``) must give the same strings.
"""

from __future__ import annotations

import pytest

from dispatcher.core.models import Language
from dispatcher.pipeline.compose import EmailLinks, email_for_member, email_texts

ANSWERS = (("Je suis chez moi", "home"), ("J'ai vu « quelque chose » & <autre>", "seen"))
LINKS = {
    "plain": EmailLinks(
        receipt="https://plp.example.be/v1/r/eyJwIjoicmVjZWlwdCJ9.axMGzg.juRdkJOcs",
        unsubscribe="https://plp.example.be/v1/u/eyJwIjoidW5zdWIifQ.axMGzg.s5EKQVz",
        export="https://plp.example.be/v1/x/eyJwIjoiZXhwb3J0In0.axMGzg.dh6DPet",
        profile="https://plp.example.be/v1/p/eyJwIjoicHJvZmlsZSJ9.axMGzg.xOQsqSU",
    ),
    "characters HTML escapes": EmailLinks(
        receipt="https://p.be/r?a=1&b='2'",
        unsubscribe='https://p.be/u/"x"<y>',
        export="https://p.be/x/&amp;",
        profile="https://p.be/p/" + "z" * 300,
    ),
    "short": EmailLinks(receipt="https://p.be/r", unsubscribe="https://p.be/u", export="x", profile="p"),
}
WORDS = {
    "an alert": ("PLP Forêt-Église", "[PLP Forêt-Église] URGENT: cambriolage", "Cambriolage rue de l'Église."),
    "markup in the words": ("PLP <b>&</b>", '[PLP <b>&</b>] "Alerte"', "<script>alert('x')</script> & co"),
    "a text that holds a NUL": ("PLP", "[PLP] URGENT", "Texte\x00r\x00 étrange"),
}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("links", list(LINKS))
@pytest.mark.parametrize("words", list(WORDS))
def test_a_members_email_from_the_shared_rendering_is_their_own_rendering(
    language: Language, links: str, words: str
) -> None:
    """In every language, with links of any length and any character, the shared rendering gives each member the
    plain text and HTML that rendering for them alone gives."""
    plp_name, subject, text = WORDS[words]
    for answers in ((), ANSWERS):
        kwargs = {"language": language, "plp_name": plp_name, "subject": subject, "text": text, "answers": answers}
        assert email_for_member(**kwargs, links=LINKS[links]) == email_texts(**kwargs, links=LINKS[links])  # type: ignore[arg-type]


def test_the_html_links_are_escaped() -> None:
    """A link's ``&`` and quotes are escaped in the HTML, kept as they are in the plain text."""
    plain, html = email_for_member(
        language=Language.EN, plp_name="PLP", subject="s", text="t", answers=(), links=LINKS["characters HTML escapes"]
    )
    assert 'href="https://p.be/r?a=1&amp;b=&#39;2&#39;"' in html
    assert "https://p.be/r?a=1&b='2'" in plain
