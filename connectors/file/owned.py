"""Which files learnloop created: a manifest beside its copies, so it never replaces a user's."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from connectors.file.client import is_xlsx
from core.tabular.written import COLUMNS

MANIFEST = ".learnloop-copies.json"
"""In the copy's directory: the names of the files learnloop wrote there."""
FINGERPRINT = "learnloop_copy"
"""Custom document property of an XLSX copy: what it was written from, to skip rewrites."""
_SNIFF_BYTES = 1 << 16


def _manifest(directory: Path) -> Path:
    return directory / MANIFEST


def _names(directory: Path) -> set[str]:
    try:
        data = json.loads(_manifest(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    copies = data.get("copies") if isinstance(data, dict) else None
    return {str(n) for n in copies} if isinstance(copies, list) else set()


def _save(directory: Path, names: set[str]) -> None:
    path = _manifest(directory)
    if not names:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    text = json.dumps({"written_by": "learnloop", "copies": sorted(names)}, indent=1)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".learnloop-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _is_old_copy(out: Path) -> bool:
    """A copy written before the manifest existed, recognised by what only learnloop writes."""
    try:
        if is_xlsx(out):
            with zipfile.ZipFile(out) as book:
                if "docProps/custom.xml" not in book.namelist():
                    return False
                return f'name="{FINGERPRINT}"'.encode() in book.read("docProps/custom.xml")
        with out.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    except (OSError, zipfile.BadZipFile, KeyError):
        return False
    return all(title in head for title in COLUMNS.values())


def created_by_learnloop(out: Path) -> bool:
    """Whether learnloop wrote the regular file at `out` (recorded, or an older copy of its own).

    A path where nothing exists yet counts as learnloop's to create.
    """
    if not out.exists() and not out.is_symlink():
        return True
    if out.is_symlink() or not out.is_file():
        return False
    return out.name in _names(out.parent) or _is_old_copy(out)


def not_ours_message(out: Path) -> str:
    """Why learnloop does not write or delete `out`."""
    return (f"{out} exists and was not written by learnloop, which never replaces or deletes "
            "a file it did not create: move it away or set output_path to a new file")


def record(out: Path) -> None:
    """Note that learnloop wrote `out` (call with the directory's write lock held)."""
    names = _names(out.parent)
    if out.name not in names:
        _save(out.parent, names | {out.name})


def forget(out: Path) -> None:
    """Note that learnloop removed `out` (call with the directory's write lock held)."""
    names = _names(out.parent)
    if out.name in names:
        _save(out.parent, names - {out.name})
