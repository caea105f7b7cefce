"""Webhook signing, bodies, backoff and settings (hubbub/webhooks/): signatures the
`standardwebhooks` package verifies, and a malformed key refused at start by name."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hubbub.cli import main
from hubbub.storage.outbox import OutboxRow
from hubbub.webhooks import signing
from hubbub.webhooks.body import body
from hubbub.webhooks.dispatcher import Policy

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
JWT = "a-shared-secret-long-enough-for-hs256-0123456789"


def row(data: bytes = b'{"message_id":"m1"}') -> OutboxRow:
    return OutboxRow(seq=1, id="msg_abc", type="message.deleted", conversation_id="c1",
                     version=7, data=data, created_at=1_700_000_000_000_000, attempts=0,
                     retry_from=1_700_000_000_000_000)


def test_the_body_puts_conversation_and_version_in_front_of_the_data() -> None:
    """Standard Webhooks' payload form; `data` carries the conversation id and version."""
    assert json.loads(body(row())) == {
        "type": "message.deleted", "timestamp": "2023-11-14T22:13:20.000000Z",
        "data": {"conversation_id": "c1", "version": 7, "message_id": "m1"}}
    assert json.loads(body(row(b"{}")))["data"] == {"conversation_id": "c1", "version": 7}


def test_signatures_verify_with_the_reference_package() -> None:
    """What `standardwebhooks` accepts, and a changed byte it refuses."""
    payload = body(row())
    headers = signing.headers(signing.parse_secret(SECRET), "msg_abc", int(time.time()),
                              payload)
    assert Webhook(SECRET).verify(payload, headers)["data"]["version"] == 7
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(payload.replace(b"7", b"8"), headers)


@pytest.mark.parametrize("secret", ["", "k" * 32, "whsec_", "whsec_not base64!",
                                    "whsec_" + base64.b64encode(b"short").decode()])
def test_malformed_keys_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="Standard Webhooks key"):
        signing.parse_secret(secret)


def test_backoff_doubles_up_to_its_cap_with_full_jitter() -> None:
    policy = Policy(retry_base=1.0, retry_max_delay=60.0)
    assert [policy.delay(n, 1.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(3, 0.5) == 4.0
    assert policy.delay(10_000, 1.0) == 60.0  # no overflow, however many attempts
    assert policy.lease_s > 2 * policy.timeout  # a lease outlasts any attempt


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HUBBUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBBUB_JWT_SECRET", JWT)
    monkeypatch.setenv("HUBBUB_WEBHOOK_URL", "https://example.test/hooks")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("secret", ["k" * 32, "whsec_%%%"])
def test_a_malformed_secret_stops_the_start_naming_the_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        secret: str) -> None:
    monkeypatch.setenv("HUBBUB_WEBHOOK_SECRET", secret)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "HUBBUB_WEBHOOK_SECRET" in err
    assert "Standard Webhooks key" in err
    assert secret not in err  # a secret is never echoed


@pytest.mark.usefixtures("clean_env")
def test_a_url_without_a_secret_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 2
    assert "HUBBUB_WEBHOOK_SECRET" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_a_url_must_be_http(capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_WEBHOOK_URL", "ftp://example.test/")
    monkeypatch.setenv("HUBBUB_WEBHOOK_SECRET", SECRET)
    assert main(["check-config"]) == 2
    assert "HUBBUB_WEBHOOK_URL" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_a_moderation_url_needs_the_key_too(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBBUB_WEBHOOK_URL")
    monkeypatch.setenv("HUBBUB_MODERATION_URL", "https://example.test/review")
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "HUBBUB_WEBHOOK_SECRET" in err
    assert "HUBBUB_MODERATION_URL is set" in err
