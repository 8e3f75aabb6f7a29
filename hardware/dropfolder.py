"""A folder others write into (the file drop's), handled without ever following a symbolic link.

Whoever writes into the folder — a monitoring system, or someone who took it over — can put a
link where a file or a subfolder should be. So every step goes through directory descriptors
opened with ``O_NOFOLLOW | O_DIRECTORY``: the folder itself (a link there is ``Misconfigured``),
its ``done/`` and ``rejected/`` (made 0700 when missing; a link or a file in their place is
``Misconfigured``, and nothing is written), and each file, opened with ``O_NOFOLLOW`` and taken
only if ``fstat`` says it is a regular file of one link, no larger than the limit (otherwise
``Malformed``, with the reason, before a byte of it is read). Moves are ``rename`` between the
descriptors, so a subfolder swapped for a link between the check and the move still receives
the file in the directory that was checked, never where the link points."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from domain.i18n import N_, Text, _
from hardware.errors import Malformed, Misconfigured
from hardware.monitorfiles import CHUNK

KEPT = ("done", "rejected")  # the subfolders files are moved to
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO put in a file's place between the look and the open does not block it
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def what(mode: int) -> Text:
    """What kind of entry a mode is, for a reason."""
    for test, name in (
        (stat.S_ISLNK, N_("a symbolic link")),
        (stat.S_ISDIR, N_("a directory")),
        (stat.S_ISFIFO, N_("a FIFO")),
        (stat.S_ISSOCK, N_("a socket")),
        (stat.S_ISCHR, N_("a character device")),
        (stat.S_ISBLK, N_("a block device")),
        (stat.S_ISREG, N_("a regular file")),
    ):
        if test(mode):
            return Text(name, {})
    return _("of an unknown kind")


def not_read(kind: Text) -> Text:
    """The reason an entry of ``kind`` is refused unread."""
    return _("{kind}: refused, not read", kind=kind)


def check_folder(path: Path) -> None:
    """``Misconfigured`` if ``path`` is a symbolic link or something other than a directory; a
    folder not there yet is fine (it is looked for again at every look)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise Misconfigured(
            _(
                "the file-drop folder {path} is a symbolic link: give the real folder's path"
                " ([[hardware.filedrop]] directory); a link is never followed",
                path=path,
            )
        )
    if not stat.S_ISDIR(mode):
        raise Misconfigured(
            _("the file-drop folder {path} is {kind}, not a directory", path=path, kind=what(mode))
        )


def _open_folder(name: str | Path, shown: str | Text, at: int | None = None) -> int:
    try:
        return os.open(name, DIRECTORY, dir_fd=at)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        mode = os.stat(name, dir_fd=at, follow_symlinks=False).st_mode
        kind = what(mode)
        raise Misconfigured(
            _(
                "{folder} is {kind}, not a directory: nothing is taken or written there until"
                " an operator puts a real folder in its place",
                folder=shown,
                kind=kind,
            )
        ) from None


@dataclass(frozen=True)
class Entry:
    """A ``*.txt`` entry of the folder as one look saw it."""

    name: str
    size: int
    mtime_ns: int
    refusal: Text | None  # why it is refused unread (a link, not a regular file), else None


class OpenFile:
    """A file of the folder opened for reading: its bytes (``chunks``), from the start each
    time, never more than ``limit``."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        st = os.fstat(fd)
        self.seen = (st.st_size, st.st_mtime_ns)

    def chunks(self) -> Iterator[bytes]:
        offset = 0
        while data := os.pread(self.fd, CHUNK, offset):
            offset += len(data)
            if offset > self.limit:  # it grew since it was looked at
                raise Malformed(
                    _(
                        "more than the {limit} bytes a file may have: refused, not read",
                        limit=self.limit,
                    )
                )
            yield data

    def unchanged(self) -> bool:
        """The same size and time as when opened (not rewritten in the meantime)."""
        st = os.fstat(self.fd)
        return (st.st_size, st.st_mtime_ns) == self.seen

    def close(self) -> None:
        os.close(self.fd)


class DropFolder:
    """One look at the folder through its descriptor; ``close`` it (or use ``with``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = _open_folder(path, _("the file-drop folder {path}", path=path))
        self._kept: dict[str, int] = {}

    def __enter__(self) -> DropFolder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._kept.values():
            os.close(fd)
        self._kept.clear()
        os.close(self.fd)

    def kept(self, name: str, create: bool = True) -> int | None:
        """The descriptor of ``done/`` or ``rejected/``, made (0700) when missing and
        ``create``, else None; ``Misconfigured`` when a link or a file stands there."""
        if name in self._kept:
            return self._kept[name]
        if create:
            with contextlib.suppress(FileExistsError):  # a link there is EEXIST: not followed
                os.mkdir(name, 0o700, dir_fd=self.fd)
        try:
            fd = _open_folder(name, f"{self.path / name}", self.fd)
        except FileNotFoundError:
            if create:
                raise
            return None
        self._kept[name] = fd
        return fd

    def check_kept(self) -> None:
        """``Misconfigured`` if ``done/`` or ``rejected/`` is a link or not a directory."""
        for name in KEPT:
            self.kept(name, create=False)

    def entries(self, folder: str | None = None) -> list[Entry]:
        """The ``*.txt`` entries (not hidden) of the folder, or of one kept subfolder."""
        at = self.fd if folder is None else self.kept(folder, create=False)
        if at is None:
            return []
        found = []
        with os.scandir(at) as listing:
            for e in listing:
                if e.name.startswith(".") or not e.name.lower().endswith(".txt"):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                refusal = None
                if not stat.S_ISREG(st.st_mode):
                    refusal = not_read(what(st.st_mode))
                found.append(Entry(e.name, st.st_size, st.st_mtime_ns, refusal))
        return found

    def open(self, name: str, limit: int, folder: str | None = None) -> OpenFile:
        """Open a file of the folder (or of a kept subfolder) for reading; ``Malformed`` with
        the reason if it is a link, not a regular file, linked elsewhere too, or too large."""
        at = self.fd if folder is None else self.kept(folder, create=False)
        try:
            fd = os.open(name, FILE, dir_fd=at)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Malformed(not_read(what(stat.S_IFLNK))) from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise Malformed(_("the node may not read it ({error})", error=e.strerror)) from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Malformed(not_read(what(st.st_mode)))
            if st.st_nlink != 1:  # a hard link to a file elsewhere, which it may not be given
                raise Malformed(
                    _(
                        "a file with {links} links (a hard link): refused, not read",
                        links=st.st_nlink,
                    )
                )
            if st.st_size > limit:
                raise Malformed(
                    _(
                        "{size} bytes, more than the {limit} a file may have"
                        " ([[hardware.filedrop]] max_file_bytes): refused, not read",
                        size=st.st_size,
                        limit=limit,
                    )
                )
            return OpenFile(fd, limit)
        except BaseException:
            os.close(fd)
            raise

    def move(self, name: str, to: str, reason: str | Text | None = None) -> str:
        """Move the entry ``name`` (whatever it is: a link is moved, not followed) into ``to``,
        with ``reason`` written beside it as ``NAME.reason`` (in the node's language); the name
        it has there. An entry of that name already there (a file sent twice, a directory
        dropped under a file's name) is never replaced nor in the way: the newcomer takes the
        next free name, ``NAME.1.txt``..."""
        folder = self.kept(to)
        assert folder is not None
        kept = _free_name(folder, name)
        if reason is not None:
            _write_new(folder, reason_name(kept), (str(reason) + "\n").encode("utf-8"))
        os.rename(name, kept, src_dir_fd=self.fd, dst_dir_fd=folder)
        return kept

    def prune(self, before_ns: int) -> int:
        """Delete what the kept subfolders hold (files, links) last modified before
        ``before_ns``; the number deleted. A link is deleted itself, never what it names."""
        deleted = 0
        for name in KEPT:
            folder = self.kept(name, create=False)
            if folder is None:
                continue
            with os.scandir(folder) as listing:
                entries = list(listing)
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode) or st.st_mtime_ns >= before_ns:
                        continue
                    os.unlink(e.name, dir_fd=folder)
                except FileNotFoundError:
                    continue
                deleted += 1
        return deleted


def _free_name(folder: int, name: str) -> str:
    """``name``, or if the kept folder holds that name (a file, a link, a directory), the first
    of ``STEM.1.txt``, ``STEM.2.txt``... it does not (the node alone writes its kept folders)."""
    stem, dot, suffix = name.rpartition(".")
    candidate, n = name, 0
    while True:
        try:
            os.stat(candidate, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return candidate
        n += 1
        candidate = f"{stem}.{n}.{suffix}" if dot else f"{name}.{n}"


def reason_name(name: str) -> str:
    """``NAME.reason``; for a name too long for that, a shortened one that is still unique."""
    full = f"{name}.reason"
    if len(os.fsencode(full)) <= 240:
        return full
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return f"{os.fsdecode(os.fsencode(name)[:180])}…{digest}.reason"


def _write_new(folder: int, name: str, data: bytes) -> None:
    """Write ``name`` in ``folder`` through a new file of its own (``O_EXCL``: nothing that was
    there is opened, link or not), renamed over whatever held the name."""
    temporary = f".{secrets.token_hex(8)}.partial"
    fd = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=folder,
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder)
        raise
