"""The bytes of objects on disk, under `data_dir/storage`, safe against any key a caller sends.

Layout as Storage's file backend lays it out: `<bucket>/<key>/#<version>`, one file per
version (a new upload is a new version, so a reader of the old one never sees half a file).
`#` cannot appear in a valid key, so a version file can never collide with a key's folder.

Why this is safe with hostile keys: `check_key` refuses what Storage's `secure-path.ts`
refuses (NUL, absolute paths, `.` and `..` segments, backslashes) on top of the key's own
character set, and `Blobs.path` then checks that the resolved path is still inside the
bucket's folder. A file path is only ever derived there.

Writes are atomic: the body is streamed into a temporary file in the same file system
(`#staging/`), then renamed into place once the metadata says so; a crash leaves at most a
temporary file, which a later start removes once it is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO

from fnkit.local.storage.errors import StorageError

__all__ = ["Blobs", "Staged", "check_bucket_name", "check_key"]

# Storage's src/storage/limits.ts (the hyphen last so it stays a literal).
_VALID_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]+")
_VALID_BUCKET = re.compile(r"[A-Za-z0-9_!.*'() &$=@;:+,?-]+")
_CHUNK = 64 * 1024
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
STALE_UPLOAD_S = 15 * 60
# Where uploads are staged: `#` is in no valid bucket name, so no bucket can be this folder.
STAGING = "#staging"


def check_key(key: str) -> str:
    """The key when Storage would store it and it maps to a path inside the root.

    A key is at most 1024 bytes (S3's limit, which Storage's backends share) and each of its
    segments, a folder on disk here, at most 255 (NAME_MAX): longer is InvalidKey, not an
    OSError from the file system."""
    if not key or not _VALID_KEY.fullmatch(key) or len(key.encode()) > MAX_KEY_BYTES:
        raise StorageError.invalid_key(key)
    if any(len(part.encode()) > MAX_SEGMENT_BYTES for part in key.split("/")):
        raise StorageError.invalid_key(key)
    if key.startswith("/") or any(part in (".", "..") for part in key.split("/")):
        raise StorageError.invalid_key(key)
    return key


def check_bucket_name(name: str) -> str:
    """Storage's bucket rules, plus no `.`/`..` (a bucket is a folder on disk here)."""
    if (
        not name
        or len(name) > 100
        or name.strip() != name
        or not _VALID_BUCKET.fullmatch(name)
        or name in (".", "..")
    ):
        raise StorageError.invalid_bucket_name()
    return name


class Staged:
    """An upload's bytes in a temporary file: size and MD5 known, not yet anywhere visible."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file: IO[bytes] = path.open("wb")

    def write(self, chunk: bytes) -> int:
        """Append; past the limit the upload is refused (Storage's `EntityTooLarge`)."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise StorageError.entity_too_large()
        self._md5.update(chunk)
        return self._file.write(chunk)

    def fill(self, stream: IO[bytes]) -> None:
        while chunk := stream.read(_CHUNK):
            self.write(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Werkzeug's form parser rewinds a finished part; the staged file is write-only."""
        return 0

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    @property
    def etag(self) -> str:
        return f'"{self._md5.hexdigest()}"'

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class Blobs:
    """The files of every bucket under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._tmp = self.root / STAGING
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Uploads cut short by a crash; nothing refers to them. Only old ones: another app on
        # the same folder (a second dev server, a test's restart) may be mid-upload now.
        stale = time.time() - STALE_UPLOAD_S
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < stale:
                    leftover.unlink()

    def path(self, bucket: str, key: str, version: str) -> Path:
        """Where a version lives; refuses anything that would resolve outside the root."""
        check_bucket_name(bucket)
        check_key(key)
        uuid.UUID(version)  # versions are ours, always uuids
        candidate = (self.root / bucket / key / f"#{version}").resolve()
        if not candidate.is_relative_to(self.root / bucket):
            raise StorageError.invalid_key(key)
        return candidate

    def stage(self, limit: int) -> Staged:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        os.close(fd)
        return Staged(Path(name), limit)

    def commit(self, staged: Staged, bucket: str, key: str, version: str) -> Path:
        """Move a staged upload into place (one rename: all or nothing)."""
        staged.close()
        target = self.path(bucket, key, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        return target

    def copy(self, source: Path, bucket: str, key: str, version: str) -> Path:
        """A new version elsewhere with the bytes of `source` (copied, then renamed)."""
        staged = self.stage(limit=source.stat().st_size)
        with source.open("rb") as stream:
            staged.fill(stream)
        return self.commit(staged, bucket, key, version)

    def remove(self, bucket: str, key: str, version: str | None) -> None:
        """Delete a version and the folders it leaves empty; a missing file is no error."""
        if not version:
            return
        try:
            target = self.path(bucket, key, version)
        except (StorageError, ValueError):
            return
        target.unlink(missing_ok=True)
        folder = target.parent
        stop = self.root / bucket
        while folder != stop and folder.is_relative_to(stop):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
