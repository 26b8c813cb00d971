"""Whether a worktree's index holds a commit's tree, read from the repository's own files.

The checkout guard (git/worktree.py `checkout_matches`) asks this at a pooled worktree's
reuse. libgit2 answers in ~0.3 ms, but loading pygit2 costs the daemon ~12 MB resident for
good (its own libcrypto, libssl and libgit2: +10-12 MB after the first pooled reuse, in
`bench/rss.py`), for a question git's files answer directly:

- the index's cache-tree extension (`TREE`) names the tree the whole index holds, whenever
  its root entry is valid: git keeps it valid after a checkout or a commit and marks it
  invalid (entry count -1) as soon as the index changes otherwise;
- the commit's tree is the first line of the commit object, a loose object (zlib) or an
  entry in a pack (found through the pack's `.idx`, version 2; a delta applied to its base).

It is also the one home of where a worktree's git dirs are (`git_dir_of`, `common_dir`),
and of how git's small text files are read (`read_git_text`), which git/repo.py and
git/worktree.py use too.

Anything else (an index version other than 2 or 3, a split or sparse index, an invalid
cache tree, an object in an alternate repository, SHA-256) is None: the caller asks libgit2,
then git, as before. Blocking like git/objects.py: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from prodigyd.files import read_regular

#: A SHA-1 object id in bytes; SHA-256 repositories are left to libgit2 and git.
_ID_BYTES = 20
#: Index extensions under which the index file alone does not describe the whole index.
_PARTIAL = (b"link", b"sdir")
#: Enough of an inflated commit for its first line (`tree <40 hex>\n`) and a loose header.
_HEAD_BYTES = 128
#: Pack entry types: a commit, and deltas against a base at an offset or with an id.
_PACK_COMMIT, _OFS_DELTA, _REF_DELTA = 1, 6, 7
#: git's own default limit of a delta chain's length (pack.depth).
_MAX_DEPTH = 50
#: Past this a text file of git's (packed-refs, in a repository of very many refs) is not
#: read here: the caller asks git.
GIT_TEXT_BYTES = 64 * 1024 * 1024


def index_holds(path: Path, commit: str) -> bool | None:
    """Whether the index of the worktree at `path` holds exactly `commit`'s tree; None
    when the files cannot tell (see the module's docstring)."""
    if len(commit) != 2 * _ID_BYTES:
        return None
    try:
        want = bytes.fromhex(commit)
        git_dir, common = _git_dirs(path)
        held = _index_tree(git_dir / "index")
        tree = _commit_tree(common / "objects", commit, want) if held is not None else None
    except (OSError, ValueError, IndexError, struct.error, zlib.error):
        return None
    return None if held is None or tree is None else held == tree


def _git_dirs(path: Path) -> tuple[Path, Path]:
    """(the worktree's git dir, the repository's common dir)."""
    git_dir = git_dir_of(path / ".git")
    return git_dir, common_dir(git_dir) or git_dir


def read_git_text(path: Path | str) -> str:
    """One of git's text files (HEAD, a loose ref, packed-refs, `.git`, `commondir`), read
    on the event loop: files.read_regular, so a FIFO or device put in its place is refused
    (an OSError: the caller asks git), never waited on, and in ~5 µs where `read_text`
    takes ~16 (a job's submission and start read a dozen). Bytes that are not UTF-8 are
    replaced: such a ref names no commit, and the caller asks git."""
    data, _ = read_regular(path, limit=GIT_TEXT_BYTES)
    return data.decode("utf-8", errors="replace")


def git_dir_of(dot_git: Path) -> Path:
    """The git dir a `.git` names: itself when it is a folder (a main worktree), else the
    `gitdir:` its file holds (a linked worktree's admin folder); OSError when neither."""
    if dot_git.is_dir():
        return dot_git
    line = read_git_text(dot_git).strip()
    if not line.startswith("gitdir:"):
        raise OSError(f"unexpected {dot_git}")
    target = Path(line.removeprefix("gitdir:").strip())
    return target if target.is_absolute() else (dot_git.parent / target).resolve()


def common_dir(git_dir: Path) -> Path | None:
    """The repository's shared git dir a worktree's own git dir points to (`commondir`);
    None for a main repository's git dir, which is its own."""
    try:
        return (git_dir / read_git_text(git_dir / "commondir").strip()).resolve()
    except OSError:
        return None


def _index_tree(index: Path) -> bytes | None:
    """The tree id the index's valid cache-tree root names, else None (also for a file
    whose checksum does not match: git refuses such an index, and so does this)."""
    data = index.read_bytes()
    if data[:4] != b"DIRC" or len(data) < 12 + _ID_BYTES:
        return None
    trailer = data[-_ID_BYTES:]  # all zeros: written with index.skipHash
    if trailer != bytes(_ID_BYTES) and hashlib.sha1(data[:-_ID_BYTES]).digest() != trailer:
        return None
    walked = _walk(data)
    if walked is None:
        return None
    pos = walked[0]
    root = None
    end = len(data) - _ID_BYTES  # the file's own checksum
    while pos + 8 <= end:
        signature, length = data[pos : pos + 4], struct.unpack_from(">I", data, pos + 4)[0]
        body = pos + 8
        if signature in _PARTIAL:
            return None
        if signature == b"TREE" and data[body] == 0:  # the root's path is empty
            line_end = data.index(b"\n", body)
            entries = int(data[body + 1 : line_end].split(b" ")[0])
            if entries >= 0:  # -1: invalidated since the tree was last written
                root = data[line_end + 1 : line_end + 1 + _ID_BYTES]
        pos = body + length
    return root


def index_extent(index: Path | str) -> tuple[int, int] | None:
    """(entries, bytes of the files they stage, as last staged) of the index file `index`:
    (0, 0) when there is none yet; None when it is not read here (version 4, not an
    index, one past INDEX_BYTES). What a status in process would hash at most
    (objects.worktree_state, once per map agent: read without Path or file objects)."""
    try:
        data, _ = read_regular(index, limit=INDEX_BYTES, refuse_larger=False)
    except FileNotFoundError:
        return 0, 0
    if len(data) > INDEX_BYTES:
        return None
    if data[:4] != b"DIRC":
        return None
    try:
        walked = _walk(data)
    except (ValueError, IndexError, struct.error):
        return None
    return None if walked is None else (struct.unpack_from(">I", data, 8)[0], walked[1])


#: The largest index `index_extent` reads (an index of ~2 million files).
INDEX_BYTES = 256 * 1024 * 1024


def _walk(data: bytes) -> tuple[int, int] | None:
    """(where the entries of index `data` end, the sum of their file sizes); None for an
    index version other than 2 and 3 (version 4 compresses names: not read here)."""
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3):
        return None
    pos, total = 12, 0
    for _ in range(count):
        total += struct.unpack_from(">I", data, pos + 36)[0]
        flags = struct.unpack_from(">H", data, pos + 60)[0]
        size = 62 + (2 if flags & 0x4000 else 0)  # the extended flags (version 3)
        name = flags & 0xFFF
        if name == 0xFFF:  # a longer name: up to its NUL
            name = data.index(b"\0", pos + size) - pos - size
        pos += (size + name + 8) & ~7  # 1-8 NULs pad each entry to a multiple of 8
    return pos, total


def _commit_tree(objects: Path, commit: str, want: bytes) -> bytes | None:
    """The tree id on the first line of commit `commit`, loose or packed; else None."""
    try:
        raw = (objects / commit[:2] / commit[2:]).read_bytes()
    except FileNotFoundError:
        text = _packed(objects / "pack", want)
    else:
        header, _, text = zlib.decompressobj().decompress(raw, _HEAD_BYTES).partition(b"\0")
        if not header.startswith(b"commit "):
            return None
    if text is None or not text.startswith(b"tree "):
        return None
    return bytes.fromhex(text[5 : 5 + 2 * _ID_BYTES].decode())


def _packed(packs: Path, want: bytes) -> bytes | None:
    """Commit `want` from one of the packs (deltas resolved), else None."""
    try:
        names = os.listdir(packs)
    except FileNotFoundError:
        return None
    for name in names:
        if name.endswith(".idx"):
            offset = _offset(packs / name, want)
            if offset is not None:
                with open(packs / (name.removesuffix(".idx") + ".pack"), "rb") as pack:
                    kind, body = _entry(pack, packs / name, offset, _MAX_DEPTH)
                return body if kind == _PACK_COMMIT else None
    return None


def _offset(idx: Path, want: bytes) -> int | None:
    """Where `want` starts in the pack of index `idx` (version 2), by binary search."""
    with open(idx, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:8] != b"\377tOc\0\0\0\2":
            return None
        fanout = 8
        total = struct.unpack_from(">I", data, fanout + 255 * 4)[0]
        low = struct.unpack_from(">I", data, fanout + (want[0] - 1) * 4)[0] if want[0] else 0
        high = struct.unpack_from(">I", data, fanout + want[0] * 4)[0]
        ids = fanout + 256 * 4
        while low < high:
            middle = (low + high) // 2
            found = data[ids + middle * _ID_BYTES : ids + (middle + 1) * _ID_BYTES]
            if found == want:
                break
            low, high = (middle + 1, high) if found < want else (low, middle)
        else:
            return None
        offsets = ids + total * (_ID_BYTES + 4)  # past the ids and their CRCs
        offset = struct.unpack_from(">I", data, offsets + middle * 4)[0]
        if offset & 0x80000000:  # an index into the table of 8-byte offsets
            large = offsets + total * 4 + (offset & 0x7FFFFFFF) * 8
            offset = struct.unpack_from(">Q", data, large)[0]
        return int(offset)


def _entry(pack: BinaryIO, idx: Path, offset: int, depth: int) -> tuple[int, bytes]:
    """(type, content) of the pack entry at `offset`, a delta applied to its base (git
    deltifies commits too, against similar ones)."""
    pack.seek(offset)
    head = pack.read(32)
    kind, pos = (head[0] >> 4) & 7, 1
    base: int | None = None
    while head[pos - 1] & 0x80:  # the size's continuation bytes
        pos += 1
    if kind == _OFS_DELTA:
        byte = head[pos]
        distance, pos = byte & 0x7F, pos + 1
        while byte & 0x80:
            byte = head[pos]
            distance, pos = ((distance + 1) << 7) | (byte & 0x7F), pos + 1
        base = offset - distance
    elif kind == _REF_DELTA:
        base, pos = _offset(idx, head[pos : pos + _ID_BYTES]), pos + _ID_BYTES
    data = _inflate(pack, offset + pos)
    if kind not in (_OFS_DELTA, _REF_DELTA):
        return kind, data
    if base is None or depth == 0:
        raise ValueError("a delta whose base is not in this pack")
    base_kind, source = _entry(pack, idx, base, depth - 1)
    return base_kind, _apply(source, data)


def _inflate(pack: BinaryIO, offset: int) -> bytes:
    pack.seek(offset)
    inflater = zlib.decompressobj()
    parts = []
    while not inflater.eof:
        chunk = pack.read(16384)
        if not chunk:
            raise ValueError("a pack entry cut short")
        parts.append(inflater.decompress(chunk))
    return b"".join(parts)


def _apply(source: bytes, delta: bytes) -> bytes:
    """git's delta format: two sizes, then copy-from-source and insert instructions."""
    pos = 0
    for _ in range(2):  # the source's and the result's sizes (varints): not needed here
        while delta[pos] & 0x80:
            pos += 1
        pos += 1
    out = bytearray()
    while pos < len(delta):
        op, pos = delta[pos], pos + 1
        if op & 0x80:  # copy: up to 4 offset bytes and 3 size bytes, as the bits say
            start = size = 0
            for bit in range(7):
                if op & (1 << bit):
                    value, pos = delta[pos], pos + 1
                    if bit < 4:
                        start |= value << (8 * bit)
                    else:
                        size |= value << (8 * (bit - 4))
            out += source[start : start + (size or 0x10000)]
        elif op:  # insert the next `op` bytes
            out += delta[pos : pos + op]
            pos += op
        else:
            raise ValueError("a delta instruction 0 (reserved)")
    return bytes(out)
