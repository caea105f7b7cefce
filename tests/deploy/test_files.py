"""The files of deploy/ hold together: the nginx site's timeouts fit hubbub's heartbeat,
the systemd unit is one systemd accepts and outlasts the drain, and the alert rules pass
promtool (Debian's `prometheus` package), their own unit tests included.

A missing `promtool` or `systemd-analyze` fails in CI and skips loudly elsewhere.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hubbub.config import Settings
from tests.support.nginx import SITE
from tests.support.services import unavailable

DEPLOY = SITE.parents[1]
UNIT = DEPLOY / "systemd" / "hubbub@.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "hubbub.env.example"
PROMETHEUS = DEPLOY / "prometheus"


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        unavailable(name, FileNotFoundError(f"{name} is not on PATH (Debian: {package})"))
    assert found is not None
    return found


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd,
                          timeout=60)


def unit_section(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser[name]


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_the_proxy_timeouts_outlast_the_heartbeat() -> None:
    """nginx never cuts a live WebSocket: its read and send timeouts (between two frames)
    stay above hubbub's ping interval and its own dead-peer timeout."""
    text = SITE.read_text()
    settings = Settings()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        found = re.search(rf"^\s*{directive}\s+(\d+)s;", text, re.MULTILINE)
        assert found is not None, directive
        assert int(found.group(1)) > settings.heartbeat_timeout > settings.heartbeat_interval


def test_the_unit_waits_for_the_drain() -> None:
    """systemd's SIGKILL comes only after the SIGTERM drain's grace period (env example
    and default alike), and start waits for hubbub's READY=1."""
    service = unit_section("Service")
    assert service["Type"] == "notify"
    assert service["ExecStart"].endswith("hubbub serve")
    assert service["KillSignal"] == "SIGTERM"
    stop = float(service["TimeoutStopSec"])
    grace = float(env_example()["HUBBUB_SHUTDOWN_GRACE"])
    assert stop > grace
    assert stop > Settings().shutdown_grace


def test_the_env_example_names_only_real_settings() -> None:
    """Every variable of the example is a setting hubbub reads (a typo would be ignored)."""
    known = {"HUBBUB_" + name.upper() for name in Settings.model_fields}
    assert set(env_example()) <= known, set(env_example()) - known


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say about the unit (its ExecStart pointed
    at this checkout's hubbub, which it checks exists)."""
    analyze = tool("systemd-analyze", "systemd")
    hubbub = Path(sys.executable).with_name("hubbub")
    text = UNIT.read_text().replace("/opt/hubbub/.venv/bin/hubbub", str(hubbub))
    (tmp_path / "hubbub@.service").write_text(text)
    result = run(analyze, "verify", "--man=no", str(tmp_path / "hubbub@8081.service"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_alert_rules_pass_promtool() -> None:
    """`promtool check rules` accepts alerts.yml, and `promtool test rules` runs its unit
    tests: each alert fires on the series it watches, and only on those."""
    promtool = tool("promtool", "prometheus")
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
