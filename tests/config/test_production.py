"""Production mode (``PLP_ENV=production``, the default): nothing degrades silently. Each unsafe configuration stops
the real entry points (``plp web``, ``plp worker``, ``plp clock``), started here as a new host's process manager
starts them, with a minimal environment, with a sentence naming the variable at fault; so does a stored charter
naming a channel with no credentials and no outbox allowed. Secrets may be read from ``*_FILE`` variables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import Settings, SettingsFileError
from dispatcher.core.models import ChannelName, Charter, ClassPlan, Plp, PlpIn
from dispatcher.storage.runtime import Runtime
from dispatcher.storage.store import Store, new_id
from tests.support import start_web

SECRET = "production-tests-secret-key-0123456789"
ALL_CHANNELS = "sms,voice,email,telegram"


@pytest.fixture
def production_env(runtime: Runtime, tmp_path: Path) -> dict[str, str]:
    """What a production host sets, and nothing else: not even PLP_ENV, production being the default."""
    return {
        "PATH": os.environ["PATH"],
        "REDIS_URL": runtime.redis_url,
        "PLP_KEY_PREFIX": runtime.settings.key_prefix,
        "PLP_QUEUE_PREFIX": runtime.settings.queue_prefix,
        "PLP_SECRET_KEY": SECRET,
        "PLP_DATA_DIR": str(tmp_path / "data"),
        "PLP_LOG_FORMAT": "json",
    }


def plp(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``plp COMMAND`` to its end (a refusal ends it at once), with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *command], env=env, capture_output=True, text=True, timeout=60
    )


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The error a refused command printed, once checked that it exited 1 with a sentence, not a traceback."""
    assert done.returncode == 1, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and "\nError: " in "\n" + done.stderr, done.stderr
    return " ".join(done.stderr.split())


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"REDIS_URL": None}, "REDIS_URL is not set: in production"),
        ({"PLP_SECRET_KEY": None}, "PLP_SECRET_KEY is not set: in production"),
        ({"PLP_DATA_DIR": "var"}, "PLP_DATA_DIR is 'var', a relative path"),
        ({"PLP_DATA_DIR": None}, "PLP_DATA_DIR is 'var', a relative path"),
        ({"PLP_OUTBOX_PATH": "outbox.jsonl"}, "PLP_OUTBOX_PATH is 'outbox.jsonl', a relative path"),
        ({"PLP_SECRET_KEY_FILE": "{secret_file}"}, "set PLP_SECRET_KEY or PLP_SECRET_KEY_FILE, not both"),
        ({"TWILIO_AUTH_TOKEN_FILE": "{missing_file}"}, "TWILIO_AUTH_TOKEN_FILE: cannot read"),
        ({"PLP_OUTBOX_CHANNELS": "sms,fax"}, "PLP_OUTBOX_CHANNELS: 'fax' is no channel"),
        ({"PLP_ENV": "staging"}, "PLP_ENV"),
        ({"PLP_OIDC_ISSUER": "https://login.example.be"}, "PLP_OIDC_ISSUER is set without PLP_OIDC_CLIENT_ID"),
        (
            {"PLP_OIDC_ISSUER": "http://login.example.be", "PLP_OIDC_CLIENT_ID": "plp", "PLP_OIDC_CLIENT_SECRET": "s"},
            "PLP_OIDC_ISSUER is 'http://login.example.be': in production",
        ),
    ],
)
def test_each_unsafe_configuration_stops_plp_web_with_a_sentence_naming_its_variable(
    production_env: dict[str, str], tmp_path: Path, change: dict[str, str | None], sentence: str
) -> None:
    """plp web exits 1 at once, saying which variable is at fault and why; nothing is started in its place."""
    secret_file = tmp_path / "plp_secret_key"
    secret_file.write_text(SECRET + "\n")
    env = dict(production_env)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value.format(secret_file=secret_file, missing_file=tmp_path / "no-such-file")
    assert sentence in refused(plp("web", env=env))
    assert not (tmp_path / "data" / "redis").exists(), "an embedded Redis was started"


@pytest.mark.parametrize("command", [("worker", "urgent"), ("worker", "general"), ("clock",), ("status",)])
def test_workers_the_clock_and_the_operators_commands_refuse_the_same(
    production_env: dict[str, str], command: tuple[str, ...]
) -> None:
    """Every process working on Redis directly names every fault at once: here REDIS_URL and PLP_SECRET_KEY."""
    env = {k: v for k, v in production_env.items() if k not in {"REDIS_URL", "PLP_SECRET_KEY"}}
    error = refused(plp(*command, env=env))
    assert "REDIS_URL is not set" in error and "PLP_SECRET_KEY is not set" in error


def test_development_allows_what_production_refuses(production_env: dict[str, str], tmp_path: Path) -> None:
    """With PLP_ENV=development, no secret key and a relative data folder are accepted (plp dev, the tests)."""
    env = {k: v for k, v in production_env.items() if k != "PLP_SECRET_KEY"}
    done = plp("status", env={**env, "PLP_ENV": "development", "PLP_DATA_DIR": "var"})
    assert "Traceback" not in done.stderr and "refusing" not in done.stderr, done.stderr


async def _store_plp(runtime: Runtime, charter: Charter) -> Plp:
    """A PLP with this charter, stored as the API stores one (no check on the way: this one predates the rule)."""
    plp = Plp(
        **PlpIn(name="PLP Flagey", commune="Ixelles", police_zone="5340", charter=charter).model_dump(),
        id=new_id(),
        created_at=datetime.now(UTC),
    )
    redis = runtime.async_redis()
    try:
        await Store(redis, runtime.keys).save_plp(plp)
    finally:
        await redis.aclose()
    return plp


@pytest.mark.parametrize("command", [("web",), ("worker", "urgent"), ("clock",)])
def test_a_stored_charter_naming_a_channel_without_credentials_stops_every_process(
    runtime: Runtime, production_env: dict[str, str], command: tuple[str, ...]
) -> None:
    """A PLP whose charter names SMS and calls, with no Twilio account and no outbox allowed for them: each process
    refuses to start, naming the PLP, each place in its charter, and the variables that would enable the channel."""
    escalating = ClassPlan(channels=[ChannelName.SMS], ttl_seconds=3600, escalate_after_seconds=300)
    stored = asyncio.run(_store_plp(runtime, Charter(urgent=escalating)))
    env = {**production_env, "PLP_OUTBOX_CHANNELS": "email,telegram"}
    error = refused(plp(*command, env=env))
    places = "urgent.channels[0] names sms, urgent.escalate_to names voice"
    assert f"the charter of PLP {stored.id!r} (PLP Flagey): {places}" in error
    assert "sms: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID" in error
    voice = "voice: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_VOICE_FROM, or allow the outbox with "
    assert voice + "PLP_OUTBOX_CHANNELS=voice" in error


def test_with_the_outbox_allowed_for_its_channels_the_service_starts(
    runtime: Runtime, production_env: dict[str, str], tmp_path: Path
) -> None:
    """The same charter is served once PLP_OUTBOX_CHANNELS allows the outbox for its channels: plp web answers."""
    asyncio.run(_store_plp(runtime, Charter()))
    process, _ = start_web({**production_env, "PLP_OUTBOX_CHANNELS": ALL_CHANNELS}, tmp_path / "web.log")
    process.terminate()
    process.wait(timeout=10)
    assert "channel.outbox_fallback" in (tmp_path / "web.log").read_text()


# -- secrets from files ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("REDIS_URL", "PLP_SECRET_KEY", "TWILIO_AUTH_TOKEN", "SMTP_PASSWORD", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("PLP_SECRET_KEY", "secret_key"),
        ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
        ("SMTP_PASSWORD", "smtp_password"),
        ("TELEGRAM_BOT_TOKEN", "telegram_bot_token"),
        ("REDIS_URL", "redis_url"),
    ],
)
def test_a_secret_is_read_from_the_file_its_file_variable_names(
    no_secrets: pytest.MonkeyPatch, tmp_path: Path, variable: str, field: str
) -> None:
    """<VARIABLE>_FILE's file gives the value, without its final newline (as Docker secrets and `echo` write it)."""
    value = "redis://:pass@redis:6379/0" if variable == "REDIS_URL" else "s3cret value"
    (tmp_path / "secret").write_text(value + "\n")
    no_secrets.setenv(f"{variable}_FILE", str(tmp_path / "secret"))
    read = getattr(Settings(), field)
    assert (read if isinstance(read, str) else read.get_secret_value()) == value


def test_an_empty_secret_file_counts_as_unset(no_secrets: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty file (a Docker secret kept for a provider not used) is as an empty variable: unset."""
    (tmp_path / "empty").write_text("")
    no_secrets.setenv("TELEGRAM_BOT_TOKEN_FILE", str(tmp_path / "empty"))
    assert Settings().telegram_bot_token is None


@pytest.mark.parametrize(
    ("given", "sentence"),
    [
        ({"PLP_SECRET_KEY": "k", "PLP_SECRET_KEY_FILE": "{file}"},
         "set PLP_SECRET_KEY or PLP_SECRET_KEY_FILE, not both"),
        ({"SMTP_PASSWORD_FILE": "{folder}/missing"}, "SMTP_PASSWORD_FILE: cannot read {folder}/missing: No such file"),
        ({"SMTP_PASSWORD_FILE": "{folder}"}, "SMTP_PASSWORD_FILE: cannot read {folder}: Is a directory"),
        ({"SMTP_PASSWORD_FILE": "{binary}"}, "SMTP_PASSWORD_FILE: cannot read {binary}: it is not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_secret_given_twice_or_unreadable_is_refused_naming_the_variable(
    no_secrets: pytest.MonkeyPatch, tmp_path: Path, given: dict[str, str], sentence: str
) -> None:
    """Both the variable and its _FILE, or a file that cannot be read, is an error naming the variable and why."""
    places = {"file": tmp_path / "secret", "folder": tmp_path, "binary": tmp_path / "binary"}
    places["file"].write_text("k")
    places["binary"].write_bytes(b"\xff\xfe\x00k")
    for name, value in given.items():
        no_secrets.setenv(name, value.format(**places))
    with pytest.raises(SettingsFileError) as refused_with:
        Settings()
    assert sentence.format(**places) in str(refused_with.value)


def test_secrets_read_from_files_stay_out_of_the_settings_repr(no_secrets: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A secret read from a file is as secret as one from a variable: never shown in a repr or a log line."""
    (tmp_path / "key").write_text("do-not-show-me")
    no_secrets.setenv("PLP_SECRET_KEY_FILE", str(tmp_path / "key"))
    assert "do-not-show-me" not in repr(Settings())
