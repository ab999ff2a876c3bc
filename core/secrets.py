"""Encrypt connection secrets at rest with a key that never enters the database."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, SecretStr

from core.errors import ConfigError
from core.redaction import REDACTOR, redact_value
from core.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

KEY_FILE = "secret.key"
SECRET_WORDS = ("token", "secret", "password", "key")  # in every secret field's name


def _fernet_from_text(text: str) -> Fernet:
    raw = text.strip().encode()
    try:
        return Fernet(raw)
    except ValueError:
        # Any passphrase works: derive a Fernet key from it.
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))


def load_key(home: Path | None = None) -> Fernet:
    """The store's Fernet key: LEARNLOOP_SECRET_KEY, else a 0600 key file under the home."""
    env = os.environ.get("LEARNLOOP_SECRET_KEY")
    if env:
        return _fernet_from_text(env)
    home = home or get_settings().home
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
    os.chmod(path, 0o600)
    return _fernet_from_text(path.read_text())


def secret_field_names(model: type[BaseModel]) -> list[str]:
    """Names of the fields of `model` that hold secrets (typed SecretStr)."""
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if ann is SecretStr or SecretStr in getattr(ann, "__args__", ()):
            out.append(name)
    return out


def split_config(config: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a validated config into plain fields (JSON) and secret values (to encrypt)."""
    secret_names = set(secret_field_names(type(config)))
    plain = config.model_dump(mode="json", exclude=secret_names)
    secrets = {}
    for name in secret_names:
        value = getattr(config, name)
        if value is not None:
            secrets[name] = value.get_secret_value()
    return plain, secrets


def encrypt(secrets: dict[str, str], key: Fernet | None = None) -> str | None:
    """Encrypt a mapping of secret values; None when there is nothing to keep."""
    if not secrets:
        return None
    REDACTOR.add(secrets.values())
    return (key or load_key()).encrypt(json.dumps(secrets).encode()).decode()


def decrypt(token: str | None, key: Fernet | None = None) -> dict[str, str]:
    """Decrypt what `encrypt` produced.

    Raises:
        ConfigError: when the key is not the one the secrets were stored with.
    """
    if not token:
        return {}
    try:
        data = (key or load_key()).decrypt(token.encode())
    except InvalidToken as exc:
        raise ConfigError(
            "the stored secrets cannot be decrypted: LEARNLOOP_SECRET_KEY or the key file "
            "is not the one they were saved with"
        ) from exc
    result: dict[str, str] = json.loads(data)
    REDACTOR.add(result.values())  # whatever this process holds in clear, it hides
    _seen.add(token)
    return result


_seen: set[str] = set()  # stored tokens whose secrets the redactor already knows


def remember(token: str | None) -> None:
    """Teach the redactor the secrets of a stored token (decrypted once per process)."""
    if token and token not in _seen:
        try:
            decrypt(token)
        except ConfigError:
            _seen.add(token)  # cannot be decrypted with this key: it cannot be sent either


def remember_config(config: BaseModel) -> None:
    """Teach the redactor the secrets of a validated config (environment overrides too)."""
    REDACTOR.add(split_config(config)[1].values())


def remember_store(engine: Engine) -> None:
    """Teach the redactor every secret of the store and of the LEARNLOOP_<TOOL>__ variables.

    Called where a process starts serving (CLI, web app, worker): text written by another
    process or an older release is then hidden too.
    """
    from sqlalchemy import select

    from core.model import Connection

    with engine.connect() as c:
        tokens = c.scalars(select(Connection.secrets)).all()
    for token in tokens:
        remember(token)
    REDACTOR.add(v for k, v in os.environ.items() if k.startswith("LEARNLOOP_") and "__" in k
                 and any(w in k.rsplit("__", 1)[1].lower() for w in SECRET_WORDS))


def readable(token: str | None, key: Fernet | None = None) -> dict[str, str] | None:
    """The decrypted secrets, or None when the current key cannot decrypt them."""
    try:
        return decrypt(token, key)
    except ConfigError:
        return None


def redact_stored(text: str, token: str | None) -> str:
    """`redact` with the secrets of a stored token too (still redacted when they cannot be
    decrypted: every secret this process knows is hidden)."""
    remember(token)
    return REDACTOR(text)


def redact(text: str, secrets: dict[str, str] | None = None) -> str:
    """`text` with every known secret (and `secrets`), in every encoding a client sends, and
    every Authorization header value replaced by ***."""
    if secrets:
        REDACTOR.add(secrets.values())
    return REDACTOR(text)


__all__ = ["REDACTOR", "decrypt", "encrypt", "load_key", "readable", "redact", "redact_stored",
           "redact_value", "remember", "remember_config", "remember_store", "secret_field_names",
           "split_config"]
