"""``passwords.yml``: generated once, mode 0600, new names added, existing values never changed."""

import base64
import secrets
import stat
import string
import struct
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import yaml

from osdeploy.errors import OsdeployError
from osdeploy.fileio import write_atomic

PASSWORDS_NAME = "passwords.yml"
PASSWORD_LENGTH = 32
# Letters and digits only: safe unquoted in INI files, URLs and shell.
_ALPHABET = string.ascii_letters + string.digits
_HEADER = (
    "# osdeploy passwords: generated once, never changed by osdeploy.\n"
    "# Keep this file secret (mode 0600) and backed up; services use these values.\n"
)


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_cephx_key() -> str:
    """A cephx secret as ``ceph-authtool --gen-print-key`` prints it.

    The base64 of: key type 1 (AES, le16), creation time (le32 seconds, le32
    nanoseconds), key length 16 (le16), 16 random bytes: 40 characters.
    """
    now = time.time_ns()
    header = struct.pack("<HIIH", 1, now // 10**9, now % 10**9, 16)
    return base64.b64encode(header + secrets.token_bytes(16)).decode("ascii")


#: Names of values that are generated once but are identifiers, not secrets:
#: a Ceph fsid is in every ceph.conf (0644), a libvirt secret's UUID in
#: nova-compute.conf; logs and diffs may show them.
IDENTIFIER_SUFFIXES = ("_fsid", "_uuid")

#: Keys a service encrypts with (Heat's auth_encryption_key, for the trusts
#: and credentials it keeps in its database): exactly this many characters.
ENCRYPTION_KEY_SUFFIX = "_encryption_key"
ENCRYPTION_KEY_LENGTH = 32
#: Signing keys (Horizon's Django SECRET_KEY): Django asks for at least 50
#: characters (its check security.W009).
SIGNING_KEY_SUFFIX = "_secret_key"
SIGNING_KEY_LENGTH = 64


def generate_secret(name: str) -> str:
    """A new value for the secret ``name``, in the form its name asks for.

    ``*_fsid`` and ``*_uuid``: a random UUID (a Ceph cluster's fsid, a libvirt
    secret's UUID); ``ceph_*_key``: a cephx key; ``*_encryption_key``: a
    password of ``ENCRYPTION_KEY_LENGTH``; ``*_secret_key``: one of
    ``SIGNING_KEY_LENGTH``; anything else a password.
    """
    if name.endswith(IDENTIFIER_SUFFIXES):
        return str(uuid.uuid4())
    if name.endswith(ENCRYPTION_KEY_SUFFIX):
        return generate_password(ENCRYPTION_KEY_LENGTH)
    if name.endswith(SIGNING_KEY_SUFFIX):
        return generate_password(SIGNING_KEY_LENGTH)
    if name.startswith("ceph_") and name.endswith("_key"):
        return generate_cephx_key()
    return generate_password()


def passwords_path(deploy_dir: Path) -> Path:
    return deploy_dir / PASSWORDS_NAME


def load_passwords(deploy_dir: Path) -> dict[str, str]:
    """The passwords of a deployment; raises ``OsdeployError`` if there are none yet."""
    path = passwords_path(deploy_dir)
    if not path.exists():
        raise OsdeployError(f"no {path} yet; run `osdeploy deploy` (or `osdeploy render`) first")
    return _read(path)


def ensure_passwords(deploy_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """Add a generated secret (``generate_secret``) for each missing name; return all.

    Existing values are never changed. The file is rewritten only when a name
    was added, atomically and with mode 0600.
    """
    path = passwords_path(deploy_dir)
    current = _read(path) if path.exists() else {}
    missing = sorted(set(names) - set(current))
    if not missing:
        return current
    merged = dict(sorted({**current, **{name: generate_secret(name) for name in missing}}.items()))
    write_atomic(path, _HEADER + yaml.safe_dump(merged, default_flow_style=False), 0o600)
    return merged


def _read(path: Path) -> dict[str, str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise OsdeployError(
            f"{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OsdeployError(f"cannot read {path}: {exc}; fix or restore the file") from None
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise OsdeployError(f"{path} must map names to string values; fix or restore the file")
    for name, value in data.items():
        if name.endswith(ENCRYPTION_KEY_SUFFIX) and len(value) != ENCRYPTION_KEY_LENGTH:
            raise OsdeployError(
                f"{name} in {path} has {len(value)} characters, but must have exactly "
                f"{ENCRYPTION_KEY_LENGTH}; set it to {ENCRYPTION_KEY_LENGTH} letters and digits, "
                "or, before the first deploy only, delete the line to have one generated "
                "(the service cannot read what it encrypted with an earlier key)"
            )
    return data
