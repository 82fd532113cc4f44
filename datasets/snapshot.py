"""Snapshot layout, manifest and atomic writes.

    <base>/CURRENT                 name of the current version, e.g. "v0002"
    <base>/v0002/attributes.parquet   prospect_id + targeting attributes (no number)
    <base>/v0002/contacts.parquet     the vault: encrypted number, HMAC, territory, time zone
    <base>/v0002/manifest.json

A version directory is built under a temporary name and renamed into place, and CURRENT is
replaced by rename: a reader sees a whole snapshot or the previous one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import ConfigurationError

SCHEMA_VERSION = 1
ROW_GROUP = 122_880  # DuckDB's row-group size: min/max pruning works per group
ATTRIBUTES = "attributes.parquet"
CONTACTS = "contacts.parquet"
# Written by a refresh beside the two tables: the consent proofs of people who left (no number,
# no attribute), kept while the law needs them (datasets/refresh.py).
PROOFS = "consent_proofs.parquet"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Snapshot:
    root: Path
    version: str
    manifest: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.root / self.version

    @property
    def attributes(self) -> Path:
        return self.path / ATTRIBUTES

    @property
    def contacts(self) -> Path:
        return self.path / CONTACTS

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic"))


def version_name(number: int) -> str:
    return f"v{number:04d}"


def version_number(name: str) -> int:
    return int(name.lstrip("v"))


def current(root: Path) -> Snapshot:
    """The current snapshot under `root`; a clear error when there is none."""
    pointer = root / "CURRENT"
    if not pointer.exists():
        raise ConfigurationError(
            f"no prospect base under {root}: run `rental base generate --rows N --seed S` first"
        )
    version = pointer.read_text().strip()
    return load(root, version)


def load(root: Path, version: str) -> Snapshot:
    path = root / version / MANIFEST
    if not path.exists():
        raise ConfigurationError(f"snapshot {version} not found under {root}")
    return Snapshot(root, version, json.loads(path.read_text()))


def next_version(root: Path) -> str:
    existing = [version_number(p.name) for p in root.glob("v[0-9]*") if p.is_dir()]
    return version_name(max(existing, default=0) + 1)


@contextmanager
def building(root: Path, version: str) -> Iterator[Path]:
    """A temporary directory that becomes `root/version` when the block succeeds."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=root))
    try:
        yield tmp
        target = root / version
        if target.exists():
            raise ConfigurationError(f"snapshot {version} already exists under {root}")
        os.rename(tmp, target)
        _fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_durably(tmp: Path, path: Path) -> None:
    """fsync a finished temp file, rename it into place, fsync the directory: after a crash
    the path holds the old content or the whole new one."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(snap: Snapshot) -> None:
    """Check the files against the manifest's checksums (a truncated or altered file)."""
    for name, expected in snap.manifest.get("checksums", {}).items():
        if sha256(snap.path / name) != expected:
            raise ConfigurationError(
                f"snapshot {snap.version}: {name} does not match its manifest checksum; "
                "restore it or generate a new snapshot"
            )


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    names = (ATTRIBUTES, CONTACTS, *((PROOFS,) if (directory / PROOFS).exists() else ()))
    manifest["checksums"] = {name: sha256(directory / name) for name in names}
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def prune(root: Path, keep: int) -> list[str]:
    """Remove every version but the current one and the `keep - 1` before it (an erased
    person's row, a left prospect's number, stay in older versions until they go); returns
    the versions removed. Versions after the current one (a refresh being made) stay."""
    if keep < 1:
        raise ConfigurationError("keep at least the current version (--keep 1 or more)")
    now = version_number(current(root).version)
    removed = []
    for path in sorted(root.glob("v[0-9]*")):
        if path.is_dir() and version_number(path.name) <= now - keep:
            if path.is_symlink():  # a version read from a shared directory: not ours to delete
                path.unlink()
            else:
                shutil.rmtree(path)
            removed.append(path.name)
    return removed


def set_current(root: Path, version: str) -> None:
    atomic_write_text(root / "CURRENT", version + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    replace_durably(tmp, path)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
