"""The artifact store: audio and image files under ARTIFACT_DIR, written atomically, never outside it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class StorageError(Exception):
    """Writing or reading an artifact failed; the message names the reason, never a secret."""


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the store root, with forward slashes
    size_bytes: int
    sha256: str


class LocalArtifactStore:
    """A directory on local disk or a shared mount; workers on several machines can share one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _resolve(self, relative: str) -> Path:
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise StorageError("Artifact path is outside the artifact directory.")
        return candidate

    def save(self, relative: str, data: bytes) -> StoredFile:
        target = self._resolve(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"Could not write the artifact to storage: {exc.strerror or exc}") from None
        return StoredFile(relative, len(data), hashlib.sha256(data).hexdigest())

    def read(self, relative: str) -> bytes:
        try:
            return self._resolve(relative).read_bytes()
        except OSError as exc:
            raise StorageError(f"Could not read the artifact: {exc.strerror or exc}") from None

    def exists(self, relative: str) -> bool:
        try:
            return self._resolve(relative).is_file()
        except StorageError:
            return False

    def absolute(self, relative: str) -> Path:
        return self._resolve(relative)
