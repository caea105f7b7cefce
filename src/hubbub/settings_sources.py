"""Where settings come from: flags, then `HUBBUB_*` variables, then the config file, then the
defaults (the first one that sets a value wins).

Every value remembers its source, so an error names the variable, flag or file key that was
wrong (with what it accepts), and `hubbub check-config` can say where each value came from.
A setting marked `Hidden` may instead name a file to read it from: `HUBBUB_JWT_SECRET_FILE`,
`--jwt-secret-file`, `jwt_secret_file = …` in the config file.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hubbub.config import Settings, describe, hidden, unit
from hubbub.setting_types import SettingError

ENV_PREFIX = "HUBBUB_"
CONFIG_VARIABLE = "HUBBUB_CONFIG"
FILE_SUFFIX = "_file"
# The test suite's own variables (where its PostgreSQL and Redis are), not the server's.
FOREIGN_PREFIXES = ("HUBBUB_TEST_",)
# Longer values are cut in error messages: the line stays one readable line.
SHOWN_CHARS = 80

Kind = Literal["default", "file", "env", "flag"]


class SettingsError(Exception):
    """Settings that cannot be used; each problem is one line naming its source."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Sources(Settings, BaseSettings):
    """The fields of `Settings`, as pydantic-settings' sources want them described."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False,
                                      env_ignore_empty=True, enable_decoding=False)


@dataclass(frozen=True)
class Source:
    """Where one value came from."""

    kind: Kind
    name: str  # the variable, the flag or the file key that set it
    path: Path | None = None  # the config file

    def shown(self, value: Any, field_name: str) -> str:
        """`HUBBUB_PORT=99999`, `--port=99999`, `port = 99999 in FILE`: for error lines."""
        mark = hidden(field_name)
        text = ("(value not shown)" if mark and mark.whole and self.kind != "default"
                else _cut(mask(field_name, value)))
        if self.kind in ("env", "flag"):
            return f"{self.name}={text}"
        if self.kind == "file":
            return f"{self.name} = {text} in {self.path}"
        return f"{env_name(field_name)} (default {text})"

    def __str__(self) -> str:
        if self.kind == "default":
            return "default"
        if self.kind == "file":
            return f"file {self.path} ({self.name})"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Loaded:
    """Validated settings, where each value came from, and what deserves a warning."""

    settings: Settings
    sources: dict[str, Source]
    warnings: list[str] = field(default_factory=list)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def file_fields() -> list[str]:
    """The settings that may be read from a file named by `<NAME>_FILE`."""
    return [name for name in Settings.model_fields if hidden(name)]


def load_settings(flags: Mapping[str, str | None] | None = None,
                  config_file: str | None = None) -> Loaded:
    """Read flags (field names, and `<name>_file`, to text), the environment and the
    config file (`config_file`, else `HUBBUB_CONFIG`) into validated settings.

    Raises:
        SettingsError: one line per problem, each naming its variable, flag or file key.
    """
    problems: list[str] = []
    path_text = config_file or os.environ.get(CONFIG_VARIABLE) or None
    config_source = (Source("flag", "--config") if config_file
                     else Source("env", CONFIG_VARIABLE))
    given: list[tuple[str, Any, Source]] = []  # weakest first
    if path_text is not None:
        path = Path(path_text)
        data = _read_config(path, config_source, problems)
        given += [(key, value, Source("file", key, path)) for key, value in data.items()]
    env = EnvSettingsSource(_Sources)() | _file_variables()
    given += [(key, value, Source("env", env_name(key))) for key, value in env.items()]
    given += [(key, value, Source("flag", flag_name(key)))
              for key, value in (flags or {}).items() if value is not None]
    values: dict[str, Any] = {}
    sources = {name: Source("default", name) for name in Settings.model_fields}
    for key, raw, source in given:
        name, value = _resolve(key, raw, source, problems)
        if name is None:
            continue
        if sources[name].kind == source.kind:  # `X` and `X_FILE` from one place
            problems.append(f"{sources[name].name} and {source.name} both set {name}: "
                            "set one of them")
        values[name], sources[name] = value, source
    if problems:
        raise SettingsError(problems)
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError([_problem(error, values, sources)
                             for error in exc.errors()]) from None
    return Loaded(settings, sources, unknown_variables())


def require_key(loaded: Loaded) -> None:
    """Outside development mode a server without a JWT key is refused: instances would
    each generate a secret of their own and refuse each other's tokens.

    Raises:
        SettingsError: saying how to set one.
    """
    if loaded.settings.has_key or loaded.settings.dev:
        return
    raise SettingsError([
        "no JWT key: set HUBBUB_JWT_SECRET (or HUBBUB_JWT_SECRET_FILE) to the secret your "
        "backend signs tokens with, or HUBBUB_JWT_PUBLIC_KEY with HUBBUB_JWT_ALGORITHMS "
        "(RS256, ES256, …); for development only, HUBBUB_DEV=on (`hubbub serve --dev`, "
        "`make run`) generates one beside the database"])


def unknown_variables() -> list[str]:
    """A warning for each `HUBBUB_*` variable hubbub does not read (a typo, most likely)."""
    known = {env_name(name) for name in Settings.model_fields}
    known |= {env_name(name + FILE_SUFFIX) for name in file_fields()}
    known.add(CONFIG_VARIABLE)
    warnings = []
    for variable in sorted(os.environ):
        upper = variable.upper()
        if (not upper.startswith(ENV_PREFIX) or upper in known
                or upper.startswith(FOREIGN_PREFIXES)):
            continue
        hint = _guess(upper, known, ENV_PREFIX)
        warnings.append(f"unknown variable {variable} is ignored{hint}")
    return warnings


def mask(field_name: str, value: Any) -> str:
    """A value as `check-config` and errors show it: secrets as `***`, URL passwords too."""
    text = display(value)
    mark = hidden(field_name)
    if mark is None or value is None or value == ():  # unset shows as unset
        return text
    if mark.whole:
        return "***"
    parts = urlsplit(text)
    if parts.password is None:
        return text
    return text.replace(f":{parts.password}@", ":***@", 1)


def display(value: Any) -> str:
    """A value as an operator writes it: switches on/off, lists comma-separated."""
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value) or "unset"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _guess(name: str, known: Iterable[str], prefix: str = "") -> str:
    """` (did you mean X?)` for the closest known name, if one is close. The `prefix` all
    names share is left out of the comparison: with it every name looks alike."""
    stems = {option.removeprefix(prefix): option for option in known}
    guess = difflib.get_close_matches(name.removeprefix(prefix), stems, n=1)
    return f" (did you mean {stems[guess[0]]}?)" if guess else ""


def _cut(text: str) -> str:
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS] + "…"
    return text if text.isprintable() else repr(text)


def _read_config(path: Path, source: Source, problems: list[str]) -> dict[str, Any]:
    """The config file's keys; unknown keys and unreadable files are problems."""
    if not path.is_file():
        problems.append(f"{source.name}={path}: no such file")
        return {}
    try:
        data = TomlConfigSettingsSource(_Sources, toml_file=path).toml_data
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{path}: not a readable TOML file ({exc})")
        return {}
    known = set(Settings.model_fields) | {name + FILE_SUFFIX for name in file_fields()}
    for key in data:
        if key not in known:
            hint = _guess(key, known)
            problems.append(f"unknown key {key} in {path}{hint}")
    return {key: value for key, value in data.items() if key in known}


def _file_variables() -> dict[str, str]:
    """`HUBBUB_<NAME>_FILE` variables, keyed `<name>_file` (empty ones count as unset)."""
    found = {}
    for name in file_fields():
        value = os.environ.get(env_name(name + FILE_SUFFIX))
        if value:
            found[name + FILE_SUFFIX] = value
    return found


def _resolve(key: str, value: Any, source: Source,
             problems: list[str]) -> tuple[str | None, Any]:
    """The field a key sets and its value: a `<name>_file` key reads the named file."""
    if not key.endswith(FILE_SUFFIX) or key in Settings.model_fields:
        return key, value
    name = key.removesuffix(FILE_SUFFIX)
    try:
        return name, Path(str(value)).read_text().strip()
    except OSError as exc:
        problems.append(f"{source.name} names a file that cannot be read: {value} "
                        f"({exc.strerror or exc})")
        return None, None


def _problem(error: ErrorDetails, values: dict[str, Any], sources: dict[str, Source]) -> str:
    """One line for one validation error: where the value came from, what is accepted."""
    cause = error.get("ctx", {}).get("error")
    name = str(error["loc"][0]) if error["loc"] else getattr(cause, "field", "")
    if name not in Settings.model_fields:
        return error["msg"]
    if error["type"] == "value_error" and cause is not None:
        accepted = str(cause)
    else:
        accepted = describe(name)
    source = sources[name]
    value = values.get(name, Settings.model_fields[name].default)
    prefix = "" if isinstance(cause, SettingError) else "invalid "
    return f"{prefix}{source.shown(value, name)}: expected {accepted}"


def report(loaded: Loaded) -> list[str]:
    """`hubbub check-config`'s table: every setting, its effective value, its source."""
    settings = loaded.settings
    width = max(len(name) for name in Settings.model_fields)
    lines = []
    for name in Settings.model_fields:
        value = mask(name, getattr(settings, name))
        measure = unit(name)
        if measure is not None:
            value += measure.suffix
        if name == "jwt_secret" and not settings.has_key:
            value = "unset (dev mode: a secret generated beside the database)"
        lines.append(f"{name:<{width}}  {value}  ({loaded.sources[name]})")
    return lines
