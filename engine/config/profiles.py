"""Named run configurations: discovery, ``extends`` merging, environment expansion, validation.

Shipped profiles live in the ``profiles/`` directory of the distribution; a file of the same
name in the user profile directory (``$XDG_CONFIG_HOME/routeshell/profiles``) overrides it.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from engine.config import xdg
from engine.config.interpolate import InterpolationError, Unset, expand
from engine.errors import UsageError
from engine.kinds import ENDPOINT_ROLES, EndpointRole
from engine.schemas import describe_error, validator
from engine.urls import is_http_url, not_http_url

SECRET_KEYS = frozenset({"api_key"})
#: Paths whose contents never go to a model unless a profile's ``context.never_send`` says otherwise.
DEFAULT_NEVER_SEND = (".env", "*.pem", "*.key", "id_*")
DEFAULT_MAX_FILE_BYTES = 64 * 1024
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
#: The state directory in a workspace (engine.workspace.sandbox.STATE_DIR, which config may not
#: import: the LLM client reads profiles and must not reach the workspace layer).
STATE_DIR = ".routeshell"


class ProfileError(UsageError):
    """A profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ProfileSource:
    """Where a profile comes from: ``origin`` is ``"user"`` or ``"shipped"``."""

    name: str
    path: Path
    origin: str


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible chat endpoint; ``api_key`` is ``None`` when no key is configured."""

    base_url: str
    model: str
    api_key: str | None
    timeout_s: float
    max_retries: int
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    #: Where ``timeout_s`` is set, for the error that says to raise it ("": nowhere the user can).
    timeout_setting: str = "timeout_s in the profile's llm section"


@dataclass(frozen=True)
class ContextPolicy:
    """Which workspace files a role may see the text of (the profile's ``[context]`` section).

    ``never_send`` holds globs: one without ``/`` is matched against every component of a path
    (``id_*`` withholds ``keys/id_rsa`` and everything under a directory ``id_x``), one with ``/``
    against the relative path from the workspace root (``secrets/`` withholds all under ``secrets``).
    Files over ``max_file_bytes`` are listed but not sent.
    """

    never_send: tuple[str, ...] = DEFAULT_NEVER_SEND
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> ContextPolicy:
        """Return the policy of a validated ``[context]`` section; missing keys take the defaults."""
        return cls(
            never_send=tuple(section.get("never_send", DEFAULT_NEVER_SEND)),
            max_file_bytes=int(section.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)),
        )

    def withholds(self, path: str) -> bool:
        """Return whether the contents of the workspace path ``path`` must never reach a model."""
        parts = path.split("/")
        for pattern in self.never_send:
            if "/" in pattern:
                # Anchored at the workspace root; matching a directory withholds everything in it.
                anchored = pattern.strip("/")
                if any(fnmatch.fnmatchcase("/".join(parts[:n]), anchored) for n in range(1, len(parts) + 1)):
                    return True
            elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        return False


@dataclass(frozen=True)
class Profile:
    """A validated profile with environment variables expanded.

    ``data`` is the resolved document; ``unset`` maps dotted keys to the environment variable
    that was missing for them (those keys are absent from ``data``).
    """

    source: ProfileSource
    data: dict[str, Any]
    unset: dict[str, str]

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def workspace(self) -> Path:
        """The workspace directory, made absolute against the current directory."""
        return Path(os.path.expanduser(self.data["workspace"])).absolute()

    def resolve_workspace(
        self,
        given: str | os.PathLike[str] | None,
        *,
        yes: bool = False,
        confirm: Callable[[str], bool] | None = None,
        env: Mapping[str, str] | None = None,
        create: bool = True,
        again: str | None = None,
    ) -> Path:
        """Return the workspace to use: the one rule for choosing it.

        ``given`` (``--workspace``) must be a non-empty path to an existing directory; without it the
        profile's is used, created on first use unless ``create`` is false (a command that only
        reads creates nothing; the path is then returned even when it does not exist). A directory
        that is ``/``, the home directory (``$HOME`` in ``env``, default the environment) or outside
        it, and does not hold a state directory yet, is adopted only with ``yes`` or when
        ``confirm(question)`` returns True; ``again`` is the command that does so, for the error.
        Raises :class:`UsageError` saying what to do when any of this does not hold.
        """
        if given is not None:
            if not os.fspath(given):
                # An empty --workspace "" would otherwise quietly mean the current directory.
                raise UsageError("--workspace is empty; give a directory (--workspace . for this one)")
            path = Path(os.path.expanduser(given)).absolute()
            if not path.is_dir():
                raise UsageError(f"workspace {path} is not a directory; create it or pass another --workspace")
        else:
            path = self.workspace
            if path.exists() and not path.is_dir():
                raise UsageError(f"workspace {path} (from profile {self.name}) is not a directory")
        # A missing directory that will not be created is not adopted: there is nothing to ask.
        adopting = create or path.exists()
        why = _unusual_workspace(path, env if env is not None else os.environ) if adopting else None
        if why is not None and not yes:
            question = f"use {path} ({why}) as a workspace? routeshell keeps its state in {path / STATE_DIR}"
            if confirm is None:
                how = f"pass --yes: {again}" if again else "pass --yes"
                raise UsageError(f"not adopting {path} as a workspace: it is {why}; if it is meant to be, {how}")
            if not confirm(question):
                raise UsageError(f"not adopting {path} as a workspace; choose another with --workspace")
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def endpoint(self, role: EndpointRole) -> Endpoint:
        """Return the endpoint for ``role``: its own section over ``llm.default``."""
        if role not in ENDPOINT_ROLES:
            raise ValueError(f"unknown role {role!r}")
        merged = {**self.data["llm"]["default"], **self.data["llm"].get(role, {})}
        return Endpoint(
            base_url=merged["base_url"],
            model=merged["model"],
            api_key=merged.get("api_key") or None,
            timeout_s=float(merged.get("timeout_s", 60.0)),
            max_retries=int(merged.get("max_retries", 3)),
            max_reply_bytes=int(merged.get("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES)),
        )

    def prompt_style(self, role: EndpointRole) -> str:
        """How ``role`` is asked: ``chat`` (the default), or ``planner``: routeshell's own planner
        model, which gets a compact view of the workspace and writes file plans only."""
        merged = {**self.data["llm"]["default"], **self.data["llm"].get(role, {})}
        return str(merged.get("prompt", "chat"))

    @property
    def context(self) -> ContextPolicy:
        """What the roles may send to a model from the workspace (``[context]``)."""
        return ContextPolicy.from_profile(self.data.get("context", {}))


def _unusual_workspace(path: Path, env: Mapping[str, str]) -> str | None:
    """Why ``path`` should not become a workspace without asking, or None when it may."""
    if (path / STATE_DIR).is_dir():
        return None  # adopted before
    real = Path(os.path.realpath(path))
    if real == Path(real.anchor):
        return "the root directory"
    home = env.get("HOME")
    if not home:
        return None  # no home to compare with
    home_real = Path(os.path.realpath(home))
    if real == home_real:
        return "your home directory"
    if not real.is_relative_to(home_real):
        return f"outside your home directory {home}"
    return None


def shipped_dir() -> Path:
    """Return the directory of the profiles shipped with routeshell."""
    return Path(str(resources.files("routeshell_profiles")))


def user_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the user profile directory, which overrides shipped profiles by file name."""
    return xdg.config_dir(env) / "profiles"


def discover(env: Mapping[str, str] | None = None) -> dict[str, ProfileSource]:
    """Return every known profile by name, sorted, user profiles winning over shipped ones."""
    found: dict[str, ProfileSource] = {}
    for origin, directory in (("shipped", shipped_dir()), ("user", user_dir(env))):
        if not directory.is_dir():
            continue
        for path in directory.glob("*.toml"):
            found[path.stem] = ProfileSource(path.stem, path, origin)
    return dict(sorted(found.items()))


def load_profile(name: str, env: Mapping[str, str] | None = None) -> Profile:
    """Load, merge, expand and validate the profile ``name``.

    Raises :class:`ProfileError` (exit code 2) with a one-line message naming the file and key.
    """
    env = os.environ if env is None else env
    sources = discover(env)
    if name not in sources:
        known = ", ".join(sources) or "none"
        raise ProfileError(f"unknown profile {name!r} (known profiles: {known})")
    chain = _extends_chain(sources[name], sources)
    merged: dict[str, Any] = {}
    for _, raw in reversed(chain):
        merged = _deep_merge(merged, raw)
    merged.pop("extends", None)

    unset: dict[str, str] = {}
    try:
        resolved = _expand_tree(merged, env, [], unset)
    except _KeyedInterpolationError as exc:
        raise ProfileError(f"{_blame(chain, exc.path)}: key {_dotted(exc.path)}: {exc}") from None

    # TOML has nan and inf; JSON Schema's bounds let NaN through ("nan >= 0" is false, and so is "nan > 1").
    if (odd := _non_finite(resolved, [])) is not None:
        raise ProfileError(f"{_blame(chain, odd)}: key {_dotted(odd)}: must be a finite number")
    errors = sorted(validator("profile").iter_errors(resolved), key=lambda e: list(e.absolute_path))
    described = [describe_error(error) for error in errors]
    for path, _ in described:
        # A required key whose value is an unset variable: that variable is what is missing.
        variable = unset.get(_dotted(path))
        if variable is not None:
            first = variable.split("/")[0]
            raise ProfileError(
                f"{_blame(chain, path)}: {variable} is not set (used by key {_dotted(path)} in profile {name}); "
                f"set it, or give the key a default: ${{{first}:-VALUE}}"
            )
    if described:
        path, reason = described[0]
        raise ProfileError(f"{_blame(chain, path)}: key {_dotted(path)}: {reason}")
    # An endpoint is an http(s) URL, said when the profile loads rather than when a task asks it.
    for role, endpoint in resolved.get("llm", {}).items():
        url = endpoint.get("base_url") if isinstance(endpoint, dict) else None
        if isinstance(url, str) and not is_http_url(url):
            path = ["llm", role, "base_url"]
            raise ProfileError(f"{_blame(chain, path)}: key {_dotted(path)}: {not_http_url(url)}")
    return Profile(sources[name], resolved, unset)


def masked(profile: Profile) -> dict[str, Any]:
    """Return the resolved profile with secrets masked and unset values marked, for display."""
    shown = copy.deepcopy(profile.data)
    for dotted, var in profile.unset.items():
        node = shown
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = f"<unset: {var}>"
    _mask_secrets(shown)
    return shown


def mask_secret(value: str) -> str:
    """Mask a secret, keeping the last four characters of long ones so keys can be told apart."""
    if value.startswith("<unset"):
        return value
    if not value:
        return "(none)"
    return "****" + value[-4:] if len(value) >= 12 else "****"


def _mask_secrets(node: dict[str, Any]) -> None:
    for key, value in node.items():
        if isinstance(value, dict):
            _mask_secrets(value)
        elif key in SECRET_KEYS and isinstance(value, str):
            node[key] = mask_secret(value)


#: The most bytes a profile file may hold (a profile is a few hundred).
MAX_PROFILE_BYTES = 1 << 20


def _non_finite(node: Any, path: list[str | int]) -> list[str | int] | None:
    """The path of the first number under ``node`` that is NaN or infinite, or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if (found := _non_finite(value, [*path, key])) is not None:
            return found
    return None


def _read_toml(source: ProfileSource) -> dict[str, Any]:
    from engine.textfile import read_capped

    try:
        return tomllib.loads(read_capped(source.path, MAX_PROFILE_BYTES).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source.path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{source.path}: not UTF-8 text") from None
    except ValueError:
        # What is left: an integer longer than Python reads (tomllib's own error is a bare ValueError).
        from engine.jsonl import NumberTooLong

        raise ProfileError(f"{source.path}: invalid TOML: {NumberTooLong()}") from None
    except RecursionError:
        raise ProfileError(f"{source.path}: invalid TOML: nested too deeply") from None
    except OSError as exc:
        raise ProfileError(f"{source.path}: cannot read: {exc.strerror}") from None


def _extends_chain(
    first: ProfileSource, sources: Mapping[str, ProfileSource]
) -> list[tuple[ProfileSource, dict[str, Any]]]:
    chain: list[tuple[ProfileSource, dict[str, Any]]] = []
    current: ProfileSource | None = first
    seen: set[str] = set()
    while current is not None:
        raw = _read_toml(current)
        chain.append((current, raw))
        seen.add(current.name)
        parent = raw.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str) or parent not in sources:
            raise ProfileError(f"{current.path}: key extends: no profile named {parent!r}")
        # A user profile may extend the shipped profile of the same name it overrides.
        shipped_twin = shipped_dir() / f"{parent}.toml"
        if parent == current.name and current.origin == "user" and shipped_twin.is_file():
            current = ProfileSource(parent, shipped_twin, "shipped")
            continue
        if parent in seen:
            raise ProfileError(f"{current.path}: key extends: profile {parent!r} extends itself in a cycle")
        current = sources[parent]
    return chain


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


class _KeyedInterpolationError(ValueError):
    def __init__(self, message: str, path: list[str | int]) -> None:
        super().__init__(message)
        self.path = path


def _expand_tree(node: Any, env: Mapping[str, str], path: list[str | int], unset: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            try:
                out[key] = _expand_tree(value, env, [*path, key], unset)
            except Unset as missing:
                unset[_dotted([*path, key])] = missing.name
        return out
    if isinstance(node, list):
        return [_expand_tree(item, env, [*path, index], unset) for index, item in enumerate(node)]
    if isinstance(node, str):
        try:
            return expand(node, env)
        except InterpolationError as exc:
            raise _KeyedInterpolationError(str(exc), path) from None
    return node


def _dotted(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) if path else "(top level)"


def _blame(chain: list[tuple[ProfileSource, dict[str, Any]]], path: list[str | int]) -> Path:
    """Return the file that set ``path``: the nearest one in the extends chain that has the key."""
    for source, raw in chain:
        node: Any = raw
        for part in path:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            )
            if found:
                node = node[part]
            else:
                break
        else:
            return source.path
    return chain[0][0].path
