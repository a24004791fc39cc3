"""Safe, bounded enumeration of a hostile camera volume by directory fd (§6 rules 2, 4, 9)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from dock.names import FileKind, classify
from dock.profiles import Profile
from dock.report import Alert, Entry, Outcome, SkipReason

# Until checked, the volume may present anything: links out of it, FIFOs that block a
# reader forever, device nodes whose open has side effects, sparse files claiming
# terabytes, names that are not text, directory trees without end. Everything here works on
# file descriptors and raw name bytes; a path string built from camera names is never
# handed to the kernel, so no name can lead outside the volume.
MAX_NAME_BYTES = 1020  # 255 UTF-16 units of UTF-8; no FAT name is longer
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_DIRECTORY | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class VolumeError(Exception):
    """The camera volume could not be read safely."""


class SourceChanged(VolumeError):
    """A file is no longer the one the scan saw (report it as skipped/file_unstable)."""


@dataclass(frozen=True)
class Candidate:
    """A regular file the scan found safe to open: identity as lstat saw it."""

    path_raw: bytes  # relative to the volume root, components joined by b"/"
    size: int
    mtime_ns: int
    ctime_ns: int
    st_dev: int
    st_ino: int
    kind: FileKind

    @property
    def parts(self) -> list[bytes]:
        return self.path_raw.split(b"/")


@dataclass
class VolumeScan:
    """What the volume holds: files safe to read, entries not taken, directories walked."""

    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)  # outcome skipped, or not_read
    directories: list[bytes] = field(default_factory=list)
    alerts: set[Alert] = field(default_factory=set)
    truncated: bool = False  # max_entries reached: the rest of the volume was not listed

    def all_paths(self) -> list[bytes]:
        """Every path listed: candidates, skipped entries and directories."""
        return (
            [c.path_raw for c in self.candidates]
            + [e.path_raw for e in self.skipped]
            + list(self.directories)
        )


def open_root(path: str | bytes | os.PathLike[str]) -> int:
    """Open the mounted volume's root directory (the path is the dock's, not the camera's)."""
    return os.open(path, _DIR_FLAGS)


def scan_volume(root_fd: int, profile: Profile, *, now: datetime) -> VolumeScan:
    """Walk the volume under root_fd with lstat semantics and classify every entry.

    Never follows a link and never opens a file: directories are opened O_NOFOLLOW|
    O_DIRECTORY (which fails before any device open), everything else is only lstat'ed.
    Work is bounded by the profile's max_depth and max_entries and by MAX_NAME_BYTES.
    Sizes are judged on st_size alone, so a sparse 5 GiB file costs one lstat. Files
    whose mtime or ctime lies within the stability window of `now` are skipped as
    unstable: something may still be writing them."""
    walk = _Walk(profile, int(now.timestamp() * 1_000_000_000))
    try:
        walk.directory(root_fd, b"", 0)
    except OSError as exc:
        raise VolumeError(f"cannot list the volume root: {exc.strerror}") from None
    walk.scan.candidates.sort(key=lambda c: c.path_raw)
    walk.scan.skipped.sort(key=lambda e: e.path_raw)
    walk.scan.directories.sort()
    return walk.scan


class _Walk:
    def __init__(self, profile: Profile, now_ns: int) -> None:
        self.profile = profile
        self.limits = profile.limits
        self.now_ns = now_ns
        self.window_ns = int(profile.limits.stability_window_seconds * 1_000_000_000)
        self.budget = profile.limits.max_entries
        self.scan = VolumeScan()

    def skip(self, path: bytes, reason: SkipReason | None, size: int | None = None) -> None:
        outcome = Outcome.SKIPPED if reason else Outcome.NOT_READ
        self.scan.skipped.append(Entry(path, outcome, reason=reason, size=size))

    def directory(self, dir_fd: int, prefix: bytes, depth: int) -> None:
        for name in self.names(dir_fd):
            path = prefix + name if not prefix else prefix + b"/" + name
            if len(name) > MAX_NAME_BYTES:
                self.skip(path, None)  # not_read; names.py flags it fs_impossible_name
                self.scan.alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                self.skip(path, SkipReason.FILE_UNSTABLE)  # vanished since the listing
                continue
            except OSError:
                self.skip(path, None)
                self.scan.alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
                continue
            self.entry(dir_fd, path, name, st, depth + 1)

    def names(self, dir_fd: int) -> Iterator[bytes]:
        # scandir iterates lazily, so a directory of a million entries costs only the
        # budget; names come back surrogate-escaped and fsencode restores the raw bytes.
        with os.scandir(dir_fd) as listing:
            batch: list[bytes] = []
            for entry in listing:
                if self.budget <= 0:
                    self.scan.truncated = True
                    self.scan.alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
                    break
                self.budget -= 1
                batch.append(os.fsencode(entry.name))
        yield from sorted(batch)

    def entry(self, dir_fd: int, path: bytes, name: bytes, st: os.stat_result, depth: int) -> None:
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            self.skip(path, SkipReason.SYMLINK, st.st_size)
        elif stat.S_ISDIR(mode):
            self.subdirectory(dir_fd, path, name, depth)
        elif not stat.S_ISREG(mode):
            self.skip(path, SkipReason.NOT_REGULAR_FILE, st.st_size)
        elif st.st_nlink != 1:
            self.skip(path, SkipReason.MULTIPLE_LINKS, st.st_size)
        elif st.st_size > self.limits.max_file_size:
            self.skip(path, SkipReason.EXCEEDS_SIZE_LIMIT, st.st_size)
            self.scan.alerts.add(Alert.FILE_TOO_LARGE)
        elif abs(self.now_ns - max(st.st_mtime_ns, st.st_ctime_ns)) < self.window_ns:
            self.skip(path, SkipReason.FILE_UNSTABLE, st.st_size)
        else:
            kind = classify(self.profile, path)
            self.scan.candidates.append(
                Candidate(
                    path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino, kind
                )
            )

    def subdirectory(self, dir_fd: int, path: bytes, name: bytes, depth: int) -> None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # became a link after the lstat
                self.skip(path, SkipReason.SYMLINK)
            elif exc.errno in {errno.ENOENT, errno.ENOTDIR}:
                self.skip(path, SkipReason.FILE_UNSTABLE)
            else:
                self.skip(path, None)
                self.scan.alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
            return
        try:
            if depth >= self.limits.max_depth:
                # Its entries would lie deeper than the limit: list the directory itself
                # once if it holds anything, and never descend.
                if _has_entries(fd):
                    self.skip(path, SkipReason.TOO_DEEP)
                self.scan.directories.append(path)
                return
            self.scan.directories.append(path)
            try:
                self.directory(fd, path, depth)
            except OSError:
                self.skip(path, None)  # unreadable directory: not_read, and suspicious
                self.scan.alerts.add(Alert.VOLUME_INTEGRITY_SUSPECT)
        finally:
            os.close(fd)


def _has_entries(dir_fd: int) -> bool:
    try:
        with os.scandir(dir_fd) as listing:
            return next(listing, None) is not None
    except OSError:
        return True


def open_for_read(root_fd: int, candidate: Candidate) -> int:
    """Open a scanned file for reading, or raise SourceChanged.

    Re-walks the path one component at a time from root_fd with O_NOFOLLOW, so a
    directory swapped for a link since the scan cannot redirect us. The file itself is
    first opened O_PATH (no open side effects even if it is now a device node or FIFO),
    checked by fstat to be the same regular, singly linked inode with the same size,
    mtime and ctime, and only then reopened for reading through /proc/self/fd.
    The caller owns the returned fd and should call still_same() after reading."""
    *dirs, leaf = candidate.parts
    fd = os.dup(root_fd)
    try:
        for part in dirs:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise SourceChanged(f"directory changed: {exc.strerror}") from None
            os.close(fd)
            fd = next_fd
        try:
            path_fd = os.open(leaf, _PATH_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise SourceChanged(f"file changed: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        if not still_same(path_fd, candidate):
            raise SourceChanged("file is not the one scanned")
        try:
            read_fd = os.open(f"/proc/self/fd/{path_fd}", _READ_FLAGS)
        except OSError as exc:
            raise VolumeError(f"cannot reopen through /proc: {exc.strerror}") from None
    finally:
        os.close(path_fd)
    if not still_same(read_fd, candidate):
        os.close(read_fd)
        raise SourceChanged("file changed while opened")
    return read_fd


def still_same(fd: int, candidate: Candidate) -> bool:
    """True when fd is still the scanned file, unmodified: regular, one link, same
    device, inode, size, mtime and ctime. ctime catches a write whose mtime was set back.

    A False after copying means the copy may not be what the camera holds: raise
    Alert.SOURCE_CHANGED_AFTER_COPY and never wipe that file."""
    st = os.fstat(fd)
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_nlink == 1
        and (st.st_dev, st.st_ino) == (candidate.st_dev, candidate.st_ino)
        and st.st_size == candidate.size
        and st.st_mtime_ns == candidate.mtime_ns
        and st.st_ctime_ns == candidate.ctime_ns
    )


def read_small(root_fd: int, candidate: Candidate, limit: int) -> bytes:
    """The whole of a small file (metadata, sidecar) of at most limit bytes.

    Reads at most limit + 1 bytes whatever the file claims, and raises SourceChanged if
    it changed meanwhile or turned out longer than scanned."""
    if candidate.size > limit:
        raise VolumeError(f"file of {candidate.size} bytes is over the {limit}-byte limit")
    fd = open_for_read(root_fd, candidate)
    try:
        data = b"".join(read_chunks(fd, candidate.size + 1))
        if len(data) != candidate.size or not still_same(fd, candidate):
            raise SourceChanged("file changed while read")
        return data
    finally:
        os.close(fd)


def read_chunks(fd: int, limit: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    """Yield the file's bytes from offset 0 in chunks, never more than limit in total."""
    offset = 0
    while offset < limit:
        data = os.pread(fd, min(chunk, limit - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data
