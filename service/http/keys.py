"""API keys: where they come from (settings, a TOML key file), and the lookup (its time does not
depend on the key presented, nor on the number of keys).

Only SHA-256 digests are kept in memory; a key is never stored, logged or put in an error
message. A key file (`api_key_file`) names each key and may give it its own limits and a
priority class:

    [[keys]]
    name = "team-a"               # logged as key_name, next to the hashed key_id
    key_sha256 = "<64 hex>"       # sha256 of the key; or key = "sk-..." (plaintext, discouraged)
    requests_per_minute = 600     # optional, overrides the settings' default
    tokens_per_minute = 200000    # optional, overrides the settings' default
    priority = "high"             # optional: high | normal | low (default normal)
    weight = 2                    # optional: share of the queue within its class (default 1)
    tokens_per_day = 5000000      # optional budgets, prompt + completion, UTC calendar windows
    tokens_per_month = 100000000
    admin = true                  # optional: may load/unload LoRA adapters, manage keys

Keys given in `api_keys` have the settings' default limits, priority normal and weight 1. A file
that cannot be read or is not valid raises `KeyFileError` at start-up, naming the entry at fault.
Keys made at runtime by admin keys (`service/http/keyring.py`) join these in the same `KeyStore`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

# vLLM's convention (`priority` of a request under priority scheduling): lower runs earlier.
PRIORITIES: Mapping[str, int] = {"high": -10, "normal": 0, "low": 10}
DEFAULT_PRIORITY = "normal"
KEY_ID_CHARS = 12  # hex characters of sha256(key) shown in logs as the key's id

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_FIELDS = frozenset(
    {
        "name",
        "key",
        "key_sha256",
        "requests_per_minute",
        "tokens_per_minute",
        "priority",
        "weight",
        "tokens_per_day",
        "tokens_per_month",
        "admin",
    }
)
MAX_WEIGHT = 1000.0  # a weight is a share: beyond a thousand to one it means nothing more

# Where a key comes from: `api_keys`, the key file, or an admin's call at runtime.
KeySource = Literal["settings", "file", "runtime"]


class KeyFileError(ValueError):
    """The key file (or `api_keys`) is unusable; the message says where, never which key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    digest: bytes = field(repr=False)  # sha256 of the key
    name: str | None = None  # from the key file; settings keys have none
    requests_per_minute: int | None = None  # None: the settings' default
    tokens_per_minute: int | None = None
    priority: int = PRIORITIES[DEFAULT_PRIORITY]
    admin: bool = False  # may load and unload LoRA adapters and manage keys at runtime
    weight: float = 1.0  # its share of the admission queue within its priority class
    tokens_per_day: int | None = None  # budgets (prompt + completion); None: none
    tokens_per_month: int | None = None
    source: KeySource = "settings"
    expires_at: float | None = None  # Unix seconds; None: never (runtime keys may expire)
    # The key's public id: the first hex characters of its sha256 (safe to log).
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", self.digest.hex()[:KEY_ID_CHARS])


def key_digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


# What a presented key is compared with when no stored key has its digest (never equal to one).
_NOT_A_KEY = bytes(32)


class KeyStore:
    """The accepted keys, by the SHA-256 of each (`find`)."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys: tuple[ApiKey, ...] = ()
        self._by_digest: dict[bytes, ApiKey] = {}
        self.replace(keys)

    def replace(self, keys: Sequence[ApiKey]) -> None:
        """Accept `keys` from now on (the runtime keys' refresh); a lookup on the event loop
        sees either the old keys or the new ones, never a mix."""
        if not keys:
            raise ValueError("a key store needs at least one key")
        self._keys, self._by_digest = tuple(keys), {key.digest: key for key in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._keys)

    def by_id(self, key_id: str) -> ApiKey | None:
        """The key whose public id is `key_id`, or None (no longer accepted): work stored
        under a key (a batch's lines) looks its key up again before it runs."""
        return next((key for key in self._keys if key.key_id == key_id), None)

    def find(self, presented: bytes) -> ApiKey | None:
        """The key matching `presented`, or None, in the same time for any number of keys.

        The presented key is hashed, and its digest looked up in a dict: the dict's hashing and
        equality test run on a SHA-256 digest that a caller cannot bring closer to a stored one
        without inverting SHA-256, so how long they take says nothing about the stored keys.
        Then one `hmac.compare_digest`, found or not, confirms it. (Comparing with every key
        took 0.2 us a key: 0.2 ms a request at a thousand runtime keys.)
        """
        digest = key_digest(presented)
        key = self._by_digest.get(digest)
        if not hmac.compare_digest(digest, _NOT_A_KEY if key is None else key.digest):
            return None
        if key is None or (key.expires_at is not None and time.time() >= key.expires_at):
            return None  # an expired runtime key is a wrong key
        return key


def _check_key_text(key: str, where: str) -> bytes:
    if not key:
        raise KeyFileError(f"{where}: the key is empty")
    if key != key.strip() or any(ch.isspace() for ch in key):
        raise KeyFileError(f"{where}: the key holds whitespace (clients could never send it)")
    if not key.isprintable():
        raise KeyFileError(f"{where}: the key holds non-printable characters")
    return key.encode()


def _limit(entry: Mapping[str, Any], name: str, where: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KeyFileError(f"{where}: {name} must be a whole number >= 1")
    return value


def _weight(entry: Mapping[str, Any], where: str) -> float:
    value = entry.get("weight", 1.0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_WEIGHT
    ):
        raise KeyFileError(f"{where}: weight must be a number > 0 and <= {MAX_WEIGHT:g}")
    return float(value)


def _file_entry(entry: Any, index: int, path: Path) -> ApiKey:
    where = f"{path}: keys[{index}]"
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: each entry must be a [[keys]] table")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise KeyFileError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
            f"(allowed: {', '.join(sorted(_FIELDS))})"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise KeyFileError(f"{where}: `name` is required (a non-empty string)")
    where = f"{path}: key {name!r}"
    if ("key" in entry) == ("key_sha256" in entry):
        raise KeyFileError(f"{where}: give exactly one of `key` and `key_sha256`")
    if "key" in entry:
        if not isinstance(entry["key"], str):
            raise KeyFileError(f"{where}: `key` must be a string")
        digest = key_digest(_check_key_text(entry["key"], where))
    else:
        hex_digest = entry["key_sha256"]
        if not isinstance(hex_digest, str) or not _SHA256_HEX.fullmatch(hex_digest):
            raise KeyFileError(f"{where}: `key_sha256` must be 64 hex characters")
        digest = bytes.fromhex(hex_digest)
    priority = entry.get("priority", DEFAULT_PRIORITY)
    if priority not in PRIORITIES:
        raise KeyFileError(f"{where}: priority must be one of {', '.join(PRIORITIES)}")
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise KeyFileError(f"{where}: `admin` must be true or false")
    return ApiKey(
        digest,
        name=name,
        requests_per_minute=_limit(entry, "requests_per_minute", where),
        tokens_per_minute=_limit(entry, "tokens_per_minute", where),
        priority=PRIORITIES[priority],
        admin=admin,
        weight=_weight(entry, where),
        tokens_per_day=_limit(entry, "tokens_per_day", where),
        tokens_per_month=_limit(entry, "tokens_per_month", where),
        source="file",
    )


def load_key_file(path: Path) -> list[ApiKey]:
    """The keys of a TOML key file; `KeyFileError` if it is missing or malformed."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise KeyFileError(f"api_key_file {path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        # The parser's message names a line and column, never the file's contents.
        raise KeyFileError(f"api_key_file {path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"keys"}
    if unknown:
        raise KeyFileError(
            f"api_key_file {path}: unknown top-level field(s) {', '.join(sorted(unknown))} "
            "(expected [[keys]] tables)"
        )
    entries = data.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"api_key_file {path}: no [[keys]] entries")
    keys = [_file_entry(entry, i, path) for i, entry in enumerate(entries)]
    names = [k.name for k in keys]
    duplicates = sorted({n for n in names if n is not None and names.count(n) > 1})
    if duplicates:
        raise KeyFileError(f"api_key_file {path}: duplicate name(s) {', '.join(duplicates)}")
    return keys


def settings_keys(api_keys: Iterable[SecretStr]) -> list[ApiKey]:
    return [
        ApiKey(key_digest(_check_key_text(key.get_secret_value(), f"api_keys[{i}]")))
        for i, key in enumerate(api_keys)
    ]


def build_key_store(api_keys: Iterable[SecretStr], api_key_file: Path | None) -> KeyStore | None:
    """The store for `api_keys` and `api_key_file`, or None (auth off) when both are unset."""
    keys = settings_keys(api_keys)
    if api_key_file is not None:
        keys += load_key_file(api_key_file)
    if not keys:
        return None
    seen: dict[bytes, str] = {}
    for i, key in enumerate(keys):
        label = repr(key.name) if key.name is not None else f"api_keys[{i}]"
        if key.digest in seen:
            raise KeyFileError(f"the same key is given twice: {seen[key.digest]} and {label}")
        seen[key.digest] = label
    return KeyStore(keys)
