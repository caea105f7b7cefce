"""Settings as an operator meets them: `hubbub check-config` (and `--version`) run in-process
with the variables, flags and files an operator would set.

Each bad value is one line on stderr naming the variable, flag or file key and what it
accepts, exit status 2, no traceback; a credential is never echoed.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from hubbub.cli import main
from hubbub.config import Settings

SECRET = "a-shared-secret-long-enough-for-hs256-0123456789"


@pytest.fixture(autouse=True)
def operator_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A clean slate: no `HUBBUB_*` of the test run's own, a fresh working directory."""
    for name in list(os.environ):
        if name.upper().startswith("HUBBUB_") and not name.upper().startswith("HUBBUB_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def check(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, list[str]]:
    """Run `hubbub check-config FLAGS`: exit status, stdout, stderr lines."""
    status = main(["check-config", *flags])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def refused(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """The one stderr line of a refused configuration."""
    status, out, err = check(capsys, *flags)
    assert status == 2, (out, err)
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert out == ""
    return err[0]


def shown(out: str, name: str) -> str:
    """`check-config`'s line for one setting."""
    lines = [line for line in out.splitlines() if line.split(" ", 1)[0] == name]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_JWT_SECRET", SECRET)


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("value", "words"), [
    ("99999", "HUBBUB_PORT=99999: expected an integer from 1 to 65535"),
    ("0", "HUBBUB_PORT=0: expected an integer from 1 to 65535"),
    ("abc", "HUBBUB_PORT=abc: expected an integer from 1 to 65535"),
])
def test_a_bad_port_names_the_variable_and_the_range(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        value: str, words: str) -> None:
    monkeypatch.setenv("HUBBUB_PORT", value)
    assert refused(capsys) == f"hubbub: invalid {words}"


@pytest.mark.usefixtures("keyed")
def test_a_bad_flag_is_named_as_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert refused(capsys, "--port", "65536") == (
        "hubbub: invalid --port=65536: expected an integer from 1 to 65535")


@pytest.mark.usefixtures("keyed")
def test_a_bad_file_key_is_named_with_its_file(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text("port = 70000\n")
    assert refused(capsys, "--config", str(config)) == (
        f"hubbub: invalid port = 70000 in {config}: expected an integer from 1 to 65535")


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("word", "on"), [
    ("on", True), ("off", False), ("true", True), ("false", False), ("1", True), ("0", False),
    ("yes", True), ("no", False), ("OFF", False), (" Yes ", True),
])
def test_switches_take_exactly_the_listed_words(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch,
                                                word: str, on: bool) -> None:
    monkeypatch.setenv("HUBBUB_AUTO_MIGRATE", word)
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "auto_migrate").split()[1] == ("on" if on else "off")


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("word", ["disabled", "enabled", "t", "y", "2", "nope"])
def test_any_other_switch_word_is_refused_with_the_list(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        word: str) -> None:
    monkeypatch.setenv("HUBBUB_AUTO_MIGRATE", word)
    assert refused(capsys) == (f"hubbub: invalid HUBBUB_AUTO_MIGRATE={word}: expected one of "
                               "on, off, true, false, 1, 0, yes, no")


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_durations_are_positive_seconds(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HUBBUB_HEARTBEAT_INTERVAL", value)
    assert refused(capsys) == (f"hubbub: invalid HUBBUB_HEARTBEAT_INTERVAL={value}: expected "
                               "a number greater than 0 (seconds)")


@pytest.mark.usefixtures("keyed")
def test_counts_are_positive_integers(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_MAX_FRAME_BYTES", "0")
    assert refused(capsys) == ("hubbub: invalid HUBBUB_MAX_FRAME_BYTES=0: expected an "
                               "integer of at least 1")


@pytest.mark.usefixtures("keyed")
def test_log_level_and_format_are_enums(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_LOG_LEVEL", "verbose")
    assert refused(capsys) == ("hubbub: invalid HUBBUB_LOG_LEVEL=verbose: expected one of "
                               "debug, info, warning, error")
    monkeypatch.setenv("HUBBUB_LOG_LEVEL", "WARNING")  # any case
    monkeypatch.setenv("HUBBUB_LOG_FORMAT", "xml")
    assert refused(capsys) == ("hubbub: invalid HUBBUB_LOG_FORMAT=xml: expected one of "
                               "json, text")
    monkeypatch.setenv("HUBBUB_LOG_FORMAT", "text")
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "log_level").split()[1] == "warning"


@pytest.mark.usefixtures("keyed")
def test_url_schemes_are_checked_and_passwords_never_shown(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_DATABASE_URL", "mysql://chat:hunter2@db/chat")
    line = refused(capsys)
    assert line == ("hubbub: invalid HUBBUB_DATABASE_URL=mysql://chat:***@db/chat: expected "
                    "a sqlite:///PATH or postgresql://USER@HOST/DB URL")
    monkeypatch.setenv("HUBBUB_DATABASE_URL", "postgresql://chat:hunter2@db/chat")
    monkeypatch.setenv("HUBBUB_REDIS_URL", "http://cache:6379")
    assert refused(capsys) == ("hubbub: invalid HUBBUB_REDIS_URL=http://cache:6379: expected "
                               "a redis://HOST:PORT/DB, rediss://…, unix://PATH, "
                               "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER or "
                               "redis+cluster://HOST:PORT[,HOST:PORT] URL")
    monkeypatch.setenv("HUBBUB_REDIS_URL", "redis://:s3cret@cache:6379/0")
    status, out, err = check(capsys)
    assert status == 0, err
    assert shown(out, "database_url").split()[1] == "postgresql://chat:***@db/chat"
    assert shown(out, "redis_url").split()[1] == "redis://:***@cache:6379/0"
    assert "hunter2" not in out
    assert "s3cret" not in out


@pytest.mark.usefixtures("keyed")
def test_sentinel_and_cluster_urls_are_read_and_their_passwords_never_shown(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_REDIS_URL", "redis+sentinel://:s3cret@s1:26379,s2:26379")
    assert refused(capsys) == ("hubbub: invalid HUBBUB_REDIS_URL=redis+sentinel://:***@s1:"
                               "26379,s2:26379: expected the master's name as the path "
                               "of redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER")
    for url in ("redis+sentinel://:s3cret@s1:26379,s2:26379/main?db=1",
                "redis+cluster://:s3cret@n1:7000,n2:7001"):
        monkeypatch.setenv("HUBBUB_REDIS_URL", url)
        status, out, err = check(capsys)
        assert status == 0, err
        assert shown(out, "redis_url").split()[1] == url.replace("s3cret", "***")
        assert "s3cret" not in out


@pytest.mark.usefixtures("keyed")
def test_lists_are_comma_separated(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_ALLOWED_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("HUBBUB_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "allowed_origins").split()[1] == "https://a.example,https://b.example"
    monkeypatch.setenv("HUBBUB_TRUSTED_PROXIES", "10.0.0.0/8,the-proxy")
    assert refused(capsys) == (
        "hubbub: invalid HUBBUB_TRUSTED_PROXIES=10.0.0.0/8,the-proxy: expected IP addresses "
        "or CIDR networks, comma-separated ('the-proxy' is neither)")


def test_algorithms_must_suit_the_key(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_JWT_SECRET", SECRET)
    monkeypatch.setenv("HUBBUB_JWT_ALGORITHMS", "none")
    assert refused(capsys).startswith(
        "hubbub: HUBBUB_JWT_ALGORITHMS=none: expected algorithms from ES256, ")
    monkeypatch.setenv("HUBBUB_JWT_ALGORITHMS", "RS256")
    assert refused(capsys) == (
        "hubbub: HUBBUB_JWT_ALGORITHMS=RS256: expected algorithms that verify with a shared "
        "secret (HS256, HS384, HS512); RS256 does not")
    monkeypatch.delenv("HUBBUB_JWT_SECRET")
    monkeypatch.delenv("HUBBUB_JWT_ALGORITHMS")
    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    monkeypatch.setenv("HUBBUB_JWT_PUBLIC_KEY", public)
    line = refused(capsys)
    assert line.startswith("hubbub: HUBBUB_JWT_ALGORITHMS (default HS256): expected "
                           "algorithms that verify with a public key (ES256, ")
    monkeypatch.setenv("HUBBUB_JWT_ALGORITHMS", "ES256")
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "jwt_public_key").split()[1] == "***"


def test_a_jwks_url_stands_alone_and_takes_asymmetric_algorithms(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`HUBBUB_JWT_JWKS_URL` alone: RS256, ES256, EdDSA by default; beside a secret, with
    an HMAC algorithm, or not an http(s) URL, it is refused naming the variable."""
    monkeypatch.setenv("HUBBUB_JWT_JWKS_URL", "https://auth.example/.well-known/jwks.json")
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "jwt_algorithms").split()[1] == "RS256,ES256,EdDSA"
    monkeypatch.setenv("HUBBUB_JWT_ALGORITHMS", "HS256")
    assert "HUBBUB_JWT_ALGORITHMS=HS256: expected algorithms that verify with a JWKS" in (
        refused(capsys))
    monkeypatch.delenv("HUBBUB_JWT_ALGORITHMS")
    monkeypatch.setenv("HUBBUB_JWT_SECRET", SECRET)
    assert "HUBBUB_JWT_JWKS_URL" in refused(capsys)
    monkeypatch.delenv("HUBBUB_JWT_SECRET")
    monkeypatch.setenv("HUBBUB_JWT_JWKS_URL", "file:///etc/passwd")
    assert "HUBBUB_JWT_JWKS_URL" in refused(capsys)


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("name", "value"), [
    ("HUBBUB_JWT_LEEWAY", "-1"), ("HUBBUB_JWT_LEEWAY", "nan"), ("HUBBUB_JWT_LEEWAY", "inf"),
    ("HUBBUB_JWT_USER_CLAIM", " "), ("HUBBUB_JWT_NAME_CLAIM", " name"),
])
def test_claim_and_leeway_settings_are_checked(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, name: str,
                                               value: str) -> None:
    monkeypatch.setenv(name, value)
    assert f"{name}=" in refused(capsys)


def test_a_public_key_must_parse_and_is_never_echoed(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nnot-a-key\n")
    monkeypatch.setenv("HUBBUB_JWT_ALGORITHMS", "RS256")
    line = refused(capsys)
    assert line == ("hubbub: invalid HUBBUB_JWT_PUBLIC_KEY=(value not shown): expected a PEM "
                    "public key (-----BEGIN PUBLIC KEY----- …)")


@pytest.mark.usefixtures("keyed")
def test_every_problem_is_a_line_of_its_own(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_PORT", "abc")
    monkeypatch.setenv("HUBBUB_RATE_LIMITS", "disabled")
    status, _, err = check(capsys)
    assert status == 2
    assert [line.split("=")[0] for line in err] == [
        "hubbub: invalid HUBBUB_PORT", "hubbub: invalid HUBBUB_RATE_LIMITS"]


@pytest.mark.usefixtures("keyed")
def test_unknown_variables_warn_with_a_guess(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_PROT", "9000")
    monkeypatch.setenv("HUBBUB_ZZZ", "1")
    status, out, err = check(capsys)
    assert status == 0
    assert err == ["hubbub: warning: unknown variable HUBBUB_PROT is ignored (did you mean "
                   "HUBBUB_PORT?)", "hubbub: warning: unknown variable HUBBUB_ZZZ is ignored"]
    assert shown(out, "port").split()[1] == "8080"


@pytest.mark.usefixtures("keyed")
def test_the_config_file_refuses_unknown_keys_and_bad_files(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text('prot = 9000\n')
    assert refused(capsys, "--config", str(config)) == (
        f"hubbub: unknown key prot in {config} (did you mean port?)")
    config.write_text('port = \n')
    assert refused(capsys, "--config", str(config)).startswith(
        f"hubbub: {config}: not a readable TOML file (")
    assert refused(capsys, "--config", str(tmp_path / "absent.toml")) == (
        f"hubbub: --config={tmp_path / 'absent.toml'}: no such file")


def test_precedence_is_flags_then_variables_then_file_then_defaults(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text(f'port = 7000\nhost = "0.0.0.0"\njwt_secret = "{SECRET}"\n'
                      'allowed_origins = ["https://a.example"]\nrate_limits = false\n')
    monkeypatch.setenv("HUBBUB_CONFIG", str(config))
    status, out, _ = check(capsys)
    assert status == 0
    assert shown(out, "port") == f"port                      7000  (file {config} (port))"
    assert shown(out, "allowed_origins").split()[1] == "https://a.example"
    assert shown(out, "rate_limits").split()[1] == "off"
    assert shown(out, "jwt_secret").split()[1] == "***"
    assert SECRET not in out
    monkeypatch.setenv("HUBBUB_PORT", "8000")
    _, out, _ = check(capsys)
    assert shown(out, "port").endswith("8000  (env HUBBUB_PORT)")
    _, out, _ = check(capsys, "--port", "9000")
    assert shown(out, "port").endswith("9000  (flag --port)")
    assert shown(out, "host").split()[1] == "0.0.0.0"
    assert shown(out, "heartbeat_interval").endswith("25 s  (default)")


def test_secrets_can_come_from_files(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("HUBBUB_JWT_SECRET_FILE", str(secret_file))
    status, out, err = check(capsys)
    assert status == 0, err
    assert shown(out, "jwt_secret").endswith("***  (env HUBBUB_JWT_SECRET_FILE)")
    assert SECRET not in out
    url_file = tmp_path / "db-url"
    url_file.write_text("postgresql://chat:hunter2@db/chat")
    _, out, _ = check(capsys, "--database-url-file", str(url_file))
    assert shown(out, "database_url").endswith(
        "postgresql://chat:***@db/chat  (flag --database-url-file)")
    config = tmp_path / "hubbub.toml"
    config.write_text(f'jwt_secret_file = "{secret_file}"\n')
    monkeypatch.delenv("HUBBUB_JWT_SECRET_FILE")
    _, out, _ = check(capsys, "--config", str(config))
    assert shown(out, "jwt_secret").endswith(f"***  (file {config} (jwt_secret_file))")


def test_a_secret_file_must_be_readable_and_alone(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("HUBBUB_JWT_SECRET_FILE", str(tmp_path / "missing"))
    assert refused(capsys) == (
        f"hubbub: HUBBUB_JWT_SECRET_FILE names a file that cannot be read: "
        f"{tmp_path / 'missing'} (No such file or directory)")
    (tmp_path / "jwt").write_text(SECRET)
    monkeypatch.setenv("HUBBUB_JWT_SECRET_FILE", str(tmp_path / "jwt"))
    monkeypatch.setenv("HUBBUB_JWT_SECRET", "another")
    assert refused(capsys) == ("hubbub: HUBBUB_JWT_SECRET and HUBBUB_JWT_SECRET_FILE both "
                               "set jwt_secret: set one of them")


def test_without_a_key_only_dev_mode_runs(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    line = refused(capsys)
    assert line.startswith("hubbub: no JWT key: set HUBBUB_JWT_SECRET (or "
                           "HUBBUB_JWT_SECRET_FILE)")
    assert "HUBBUB_DEV=on" in line
    status, out, _ = check(capsys, "--dev")
    assert status == 0
    assert shown(out, "dev").endswith("on  (flag --dev)")
    assert "generated beside the database" in shown(out, "jwt_secret")
    monkeypatch.setenv("HUBBUB_DEV", "on")
    assert check(capsys)[0] == 0


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"hubbub {importlib.metadata.version('hubbub')}\n"


def test_a_misspelt_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--prot", "9000"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("hubbub: unrecognized arguments: --prot 9000 "
                                       "(see hubbub --help)\n")


def test_constructed_settings_validate_the_same_way() -> None:
    assert Settings(rate_limits="off", allowed_origins="a,b").rate_limits is False
    assert Settings(allowed_origins="a, b").allowed_origins == ("a", "b")
    with pytest.raises(ValidationError):
        Settings(port=0)
    with pytest.raises(ValidationError):
        Settings(unknown_setting=1)  # type: ignore[call-arg]


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize("value", ["0", "-5", "many", "2.5"])
def test_the_rank_window_is_a_positive_count(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             value: str) -> None:
    monkeypatch.setenv("HUBBUB_SEARCH_RANK_WINDOW", value)
    assert refused(capsys) == (f"hubbub: invalid HUBBUB_SEARCH_RANK_WINDOW={value}: "
                               "expected an integer of at least 1")
