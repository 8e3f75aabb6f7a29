"""RFC 6962 / RFC 9162 Merkle trees: the tree hash, inclusion and consistency proofs, and their
verification (RFC 9162 §2.1.3.2 and §2.1.4.2). Hashes are 32-byte SHA-256 digests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from domain.i18n import _
from federation.errors import VerificationError

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree hash over leaf hashes (not leaf data)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree over ``leaves`` (RFC 9162 §2.1.3.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(_("leaf {index} is not in a tree of size {size}", index=index, size=n))
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree over ``leaves``."""
    if not 0 < size1 <= len(leaves):
        raise ValueError(
            _("no consistency proof from size {old} to {new}", old=size1, new=len(leaves))
        )
    return _subproof(size1, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != 32:
            raise VerificationError(
                "bad_hash_length", _("a hash of {length} bytes, not 32", length=len(h))
            )


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2)."""
    _check_hashes(leaf, *proof)
    if not 0 <= index < size:
        raise VerificationError(
            "bad_inclusion_proof",
            _("leaf index {index} not below tree size {size}", index=index, size=size),
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("bad_inclusion_proof", _("the proof is longer than the path"))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("bad_inclusion_proof", _("the proof is shorter than the path"))
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected: bytes
) -> None:
    _check_hashes(expected)
    if root_from_inclusion(index, size, leaf, proof) != expected:
        raise VerificationError(
            "bad_inclusion_proof", _("the proof does not lead to the signed root")
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2; raises VerificationError unless tree 1 is a prefix of tree 2.
    (Equal sizes compare the roots as given, as the reference implementation does.)"""
    if size2 < size1:
        raise VerificationError(
            "bad_consistency_proof",
            _("size {new} is smaller than {old}", new=size2, old=size1),
        )
    if size1 == 0:
        raise VerificationError(
            "bad_consistency_proof", _("a proof from the empty tree is meaningless")
        )
    if size1 == size2:
        if proof:
            raise VerificationError("bad_consistency_proof", _("equal sizes take an empty proof"))
        if root1 != root2:
            raise VerificationError("bad_consistency_proof", _("equal sizes with different roots"))
        return
    if not proof:
        raise VerificationError("bad_consistency_proof", _("the proof is empty"))
    _check_hashes(root1, root2, *proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("bad_consistency_proof", _("the proof is longer than needed"))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("bad_consistency_proof", _("the proof is shorter than needed"))
    if fr != root1 or sr != root2:
        raise VerificationError("bad_consistency_proof", _("the proof does not lead to both roots"))


class CompactRange:
    """The roots of the perfect subtrees covering leaves 0..size-1 (largest first): enough to
    append a leaf and to compute the tree hash in O(log size), without the leaves."""

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != bin(size).count("1"):
            raise ValueError(
                _(
                    "{peaks} peaks do not describe a tree of {size} leaves",
                    peaks=len(peaks),
                    size=size,
                )
            )
        self.size = size
        self.peaks = list(peaks)

    def append(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        while size & 1:  # merge equal-sized subtrees, as in a binary counter
            node = node_hash(self.peaks.pop(), node)
            size >>= 1
        self.peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        node = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            node = node_hash(peak, node)
        return node
