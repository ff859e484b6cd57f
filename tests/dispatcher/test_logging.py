"""Logs never hold a phone number or an e-mail address in clear, whatever the format and the path."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest
import structlog

from config import LogFormat, Settings
from dispatcher.core.logging import configure_logging, mask_address, mask_text

# -- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("+32470123456", "+324******56"),
        ("+31612345678", "+316******78"),
        ("0470 12 34 56", "04******56"),
        ("ann@example.org", "a***@example.org"),
        ("Ann.Peeters@x.be", "A***@x.be"),
        ("123456", "******"),
    ],
)
def test_mask_address(address: str, masked: str) -> None:
    """A masked phone keeps its prefix and last two digits; a masked e-mail its first letter and domain."""
    assert mask_address(address) == masked


@pytest.mark.parametrize(
    ("text", "clear"),
    [
        ("call +32 470 12 34 56 now", "470123456"),
        ("call +32470123456", "470123456"),
        ("call 0470 12 34 56", "470123456"),
        ("call 0470/12.34.56", "470123456"),
        ("call 0470-12-34-56", "470123456"),
        ("call 0470.12.34.56", "470123456"),
        ("call 0032 470 12 34 56", "470123456"),
        ("call 0032470123456", "470123456"),
        ("bel +31 6 12345678", "612345678"),
        ("tel:+32470123456;", "470123456"),
        ("(+32470123456)", "470123456"),
        ("mail ann.peeters@example.org", "ann.peeters"),
        ("mail Ann.Peeters+plp@Sub.Example.BE.", "ann.peeters"),
        ("two: ann@example.org, bob@example.org", "bob@"),
        ("mail иван@пример.рф", "иван"),
        ("mail anne.dubois@bücher.be", "anne.dubois"),
        ("mail anne.dubois@xn--bcher-kva.be", "anne.dubois"),
        ("mail ａｎｎｅ.ｄｕｂｏｉｓ@example.org", "ａｎｎｅ.ｄｕｂｏｉｓ"),
        ("sent as 910000001:42", "910000001"),
        ("sent to group -1001234567890:7", "1001234567890"),
        ("chat_id=910000001", "910000001"),
        ("{'chat_id': 910000001, 'text': 'x'}", "910000001"),
    ],
)
def test_mask_text_masks_contact_points(text: str, clear: str) -> None:
    """Phone numbers in the formats people write, e-mail addresses (in any script) and Telegram chat ids
    (named, or in a provider's message id) do not survive in a text."""
    masked = mask_text(text)
    assert clear not in re.sub(r"[ ./-]", "", masked).lower()
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01T21:04:35.123456+00:00",
        "2025-03-01T21:04:05.123456+00:00",  # seconds below 10, then microseconds
        "2025-03-01T21:04:05Z",
        "2025-03-01 21:04:05",
        "alert 3f2a9c0e1b7d4a66 delivery sms:0a1b2c3d4e5f6789",
        "job 0123456789abcdef",
        "plate 1-ABC-123",
        "plate 2-XYZ-987 seen",
        "police zone 5340",
        "call 101 or 112",
        "ticket 0470",
        "attempt 3 of 5, took 0.25 s",
        "version 1.2.3",
        "redis 127.0.0.1:6379, stream entry 1700000000000-0",
        "at 21:04, from 8:00 to 21:00",
    ],
)
def test_mask_text_leaves_other_numbers_alone(text: str) -> None:
    """Timestamps, hex ids, licence plates, addresses and short numbers are not contact points and stay
    readable."""
    assert mask_text(text) == text


def test_the_same_number_keeps_its_last_digits_whatever_the_format() -> None:
    """A masked number keeps its last two digits, so a coordinator can tell two members apart."""
    for written in ("+32 470 12 34 56", "0470/12.34.56", "0032470123456"):
        assert mask_text(written).endswith("56")


# -- configured logging --------------------------------------------------------------------

PHONES = ("+32 470 12 34 56", "0470/12.34.56", "+32470123456")
EMAIL = "ann.peeters@example.org"
CHAT = 910000001  # a member's Telegram chat id


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    level = root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in root.handlers[:]:
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            root.removeHandler(handler)
    root.setLevel(level)


def configured(log_format: LogFormat) -> structlog.typing.FilteringBoundLogger:
    configure_logging(Settings(redis_url=None, log_format=log_format))
    return structlog.get_logger("tests.logging")


def assert_no_contact_point(output: str) -> None:
    assert output.strip(), "nothing was logged"
    for phone in PHONES:
        assert phone not in output
    assert "470123456" not in re.sub(r"[ ./-]", "", output)
    assert EMAIL not in output
    assert "ann.peeters" not in output
    assert str(CHAT) not in output


def _in_message(log: structlog.typing.FilteringBoundLogger) -> None:
    log.info(f"texting {PHONES[0]} and {PHONES[1]}, copy to {EMAIL}")


def _as_values(log: structlog.typing.FilteringBoundLogger) -> None:
    log.info("member.changed", phone=PHONES[2], email=EMAIL, was=[PHONES[0], {"email": EMAIL}], pair=(PHONES[1], 1))


def _bound(log: structlog.typing.FilteringBoundLogger) -> None:
    log.bind(to=PHONES[1], cc=EMAIL).warning("send.failed")


def _in_context(log: structlog.typing.FilteringBoundLogger) -> None:
    with structlog.contextvars.bound_contextvars(member_email=EMAIL, member_phone=PHONES[0]):
        log.info("api.request")


def _in_traceback(log: structlog.typing.FilteringBoundLogger) -> None:
    try:
        raise ValueError(f"no route to {PHONES[0]} nor {EMAIL}")
    except ValueError:
        log.exception("send.crashed")


def _in_chained_traceback(log: structlog.typing.FilteringBoundLogger) -> None:
    try:
        try:
            raise KeyError(PHONES[2])
        except KeyError as exc:
            raise RuntimeError(f"lookup failed for {EMAIL}") from exc
    except RuntimeError:
        log.error("send.crashed", exc_info=True)


def _as_exc_info(log: structlog.typing.FilteringBoundLogger) -> None:
    log.warning("send.failed", exc_info=ValueError(f"bounced: {EMAIL} / {PHONES[1]}"))


def _exception_as_value(log: structlog.typing.FilteringBoundLogger) -> None:
    log.warning("send.failed", error=ValueError(f"bounced: {EMAIL} / {PHONES[1]}"))


def _from_a_library(log: structlog.typing.FilteringBoundLogger) -> None:
    logging.getLogger("some.library").warning("delivering to %s (%s)", PHONES[0], EMAIL)


def _library_traceback(log: structlog.typing.FilteringBoundLogger) -> None:
    try:
        raise ConnectionError(f"smtp refused {EMAIL}, sms refused {PHONES[2]}")
    except ConnectionError:
        logging.getLogger("some.library").exception("vendor call failed")


def _provider_ids(log: structlog.typing.FilteringBoundLogger) -> None:
    log.info("send.sent", provider_id=f"{CHAT}:42", chat_id=CHAT, telegram_chat_id=CHAT)
    log.info(f"telegram answered message {CHAT}:42")


LEAKS: dict[str, Callable[[structlog.typing.FilteringBoundLogger], None]] = {
    "in the message": _in_message,
    "as values, nested too": _as_values,
    "bound to the logger": _bound,
    "in context variables": _in_context,
    "in a traceback": _in_traceback,
    "in a chained traceback": _in_chained_traceback,
    "as exc_info": _as_exc_info,
    "an exception as a value": _exception_as_value,
    "from the standard library": _from_a_library,
    "in a standard library traceback": _library_traceback,
    "a chat id in a provider id, or as a value": _provider_ids,
}


@pytest.mark.parametrize("log_format", [LogFormat.JSON, LogFormat.CONSOLE])
@pytest.mark.parametrize("how", LEAKS)
def test_logs_never_show_contact_points(how: str, log_format: LogFormat, capsys: pytest.CaptureFixture[str]) -> None:
    """Whichever way a contact point reaches a log event, it is rendered masked."""
    LEAKS[how](configured(log_format))
    captured = capsys.readouterr()
    assert_no_contact_point(captured.err)
    assert captured.out == ""


def test_json_format_writes_one_json_object_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    """In JSON format each event is one line of JSON, tracebacks included, with the masked values."""
    log = configured(LogFormat.JSON)
    log.info("member.changed", phone=PHONES[2])
    _in_traceback(log)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["member.changed", "send.crashed"]
    assert lines[0]["phone"] == "+324******56"
    assert lines[1]["level"] == "error"
    assert "ValueError: no route to" in lines[1]["exception"]


def test_console_format_writes_readable_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """In console format, events are plain text lines rather than JSON."""
    log = configured(LogFormat.CONSOLE)
    log.info("member.changed", phone=PHONES[2])
    line = capsys.readouterr().err.strip()
    assert not line.startswith("{")
    assert "[info" in line
    assert "member.changed" in line
    assert "phone=+324******56" in line


def test_level_filters_events(capsys: pytest.CaptureFixture[str]) -> None:
    """Events below the configured level are not written."""
    configure_logging(Settings(redis_url=None, log_format=LogFormat.JSON, log_level="WARNING"))
    log = structlog.get_logger("tests.logging")
    log.info("quiet")
    log.warning("loud")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["loud"]
