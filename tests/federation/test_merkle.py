"""RFC 6962 / 9162 Merkle trees against the reference tree of the public test data, and
proofs for every leaf and every prefix of it."""

import base64
import json
from pathlib import Path

import pytest

from federation.errors import VerificationError
from federation.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves of the reference tree used by RFC 6962 implementations' test data
# (transparency-dev/merkle testdata, e.g. consistency/1/happy-path.json).
DATA = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [leaf_hash(d) for d in DATA]
b64 = base64.b64decode


def test_the_reference_roots_and_consistency_proof():
    assert root(LEAVES[:1]) == b64("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    assert root(LEAVES) == b64("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    assert consistency_proof(1, LEAVES) == [
        b64("lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c="),
        b64("Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4="),
        b64("a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="),
    ]
    assert root([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_every_inclusion_and_consistency_proof_verifies_and_any_change_fails(size):
    tree = LEAVES[:size]
    for i in range(size):
        proof = inclusion_proof(i, tree)
        verify_inclusion(i, size, tree[i], proof, root(tree))
        for j, node in enumerate(proof):
            altered = [*proof[:j], bytes([node[0] ^ 1]) + node[1:], *proof[j + 1 :]]
            with pytest.raises(VerificationError):
                verify_inclusion(i, size, tree[i], altered, root(tree))
        if size > 1:
            with pytest.raises(VerificationError):
                verify_inclusion((i + 1) % size, size, tree[i], proof, root(tree))
    for m in range(1, size + 1):
        proof = consistency_proof(m, tree)
        verify_consistency(m, size, proof, root(tree[:m]), root(tree))
        for j in range(len(proof)):
            altered = [*proof[:j], bytes([proof[j][0] ^ 1]) + proof[j][1:], *proof[j + 1 :]]
            with pytest.raises(VerificationError):
                verify_consistency(m, size, altered, root(tree[:m]), root(tree))
        if proof:
            with pytest.raises(VerificationError):
                verify_consistency(m, size, proof[:-1], root(tree[:m]), root(tree))
            with pytest.raises(VerificationError):
                verify_consistency(m, size, [*proof, proof[0]], root(tree[:m]), root(tree))


def test_hashes_that_are_not_32_bytes_are_rejected():
    with pytest.raises(VerificationError, match="bad_hash_length"):
        verify_inclusion(0, 2, LEAVES[0], [b"\x00" * 31], root(LEAVES[:2]))


# The published probes of transparency-dev/merkle (Apache License 2.0), see the file's "source".
VECTORS = json.loads((Path(__file__).parent / "data" / "merkle_vectors.json").read_text())


def _b64_list(items):
    return [b64(x) for x in items]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: c["file"])
def test_public_inclusion_vectors(case):
    """Every inclusion probe of the public test data: the happy paths verify, and every
    altered, truncated, extended or misplaced proof is rejected."""
    args = (
        case["leafIdx"],
        case["treeSize"],
        b64(case["leafHash"]),
        _b64_list(case["proof"] or []),
        b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: c["file"])
def test_public_consistency_vectors(case):
    args = (
        case["size1"],
        case["size2"],
        _b64_list(case["proof"] or []),
        b64(case["root1"]),
        b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
