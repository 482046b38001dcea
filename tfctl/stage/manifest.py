"""A checkpoint's `manifest.json`: the size and SHA-256 of every file in it, written after the files.

A checkpoint directory counts only if its manifest exists and every file matches it: a crash mid-save leaves
no manifest, a truncated or bit-flipped file fails the check. Verified before DeepSpeed opens any file.
"""

import hashlib
import json
import os
from pathlib import Path

from tfctl.files import fsync_dir, fsync_file

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(directory: Path, fingerprint: str | None = None) -> dict:
    """fsync every file of `directory`, then record size + sha256 of each in manifest.json (fsynced too),
    with the fingerprint of the stage settings it was written under."""
    files = {}
    for path in _files(directory):
        fsync_file(path)
        files[str(path.relative_to(directory))] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"files": files, "fingerprint": fingerprint}
    with open(directory / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(directory)
    return manifest


def manifest_fingerprint(directory: Path) -> str | None:
    """The fingerprint a checkpoint was written under (None: unknown, an older or unreadable manifest)."""
    try:
        value = json.loads((directory / MANIFEST).read_bytes()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def verify_manifest(directory: Path) -> str | None:
    """None when every file matches the manifest; otherwise what is wrong, in a few words."""
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (never completely written)"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable {MANIFEST} ({error})"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected["size"]:
            return f"{name} has {size} bytes, the manifest says {expected['size']}"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its sha256"
    return None
