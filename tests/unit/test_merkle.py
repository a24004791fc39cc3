"""Proof generation from stored perfect subtrees equals RFC 9162's definitions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from audit import merkle

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962-reference-tree.json"


class NodeStore:
    """Builds a tree leaf by leaf, as the ledger does, and counts node reads."""

    def __init__(self) -> None:
        self.nodes: dict[merkle.NodeId, bytes] = {}
        self.frontier: list[bytes] = []
        self.size = 0
        self.reads = 0

    def append(self, leaf: bytes) -> None:
        self.frontier, completed = merkle.append_to_frontier(
            self.frontier, self.size, merkle.leaf_hash(leaf)
        )
        self.nodes.update(completed)
        self.size += 1

    def fetch(self, ids: Iterable[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        wanted = list(ids)
        self.reads += len(wanted)
        return {i: self.nodes[i] for i in wanted if i in self.nodes}

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.range_hashes(merkle.inclusion_ranges(index, size), self.fetch)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return merkle.range_hashes(merkle.consistency_ranges(first, second), self.fetch)


# Straight from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, over all leaf hashes.
def mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [mth(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, hashes[:k], whole) + [mth(hashes[k:])]
    return subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def leaves(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


def test_reference_tree_roots_and_proofs() -> None:
    vectors = json.loads(VECTORS.read_text())
    store = NodeStore()
    roots = vectors["root_hashes_by_size"]
    assert merkle.root_of(0, store.fetch).hex() == roots[0]
    for leaf_hex in vectors["leaf_inputs_hex"]:
        store.append(bytes.fromhex(leaf_hex))
        assert merkle.root_of(store.size, store.fetch).hex() == roots[store.size]
        assert merkle.frontier_root(store.frontier).hex() == roots[store.size]
    for case in vectors["inclusion_proofs"]:
        got = store.inclusion(case["index"], case["tree_size"])
        assert [h.hex() for h in got] == case["proof"], case
    for case in vectors["consistency_proofs"]:
        if case["size1"] == 0:
            continue
        got = store.consistency(case["size1"], case["size2"])
        assert [h.hex() for h in got] == case["proof"], case


def test_every_proof_matches_the_rfc_definition_up_to_70_leaves() -> None:
    store = NodeStore()
    all_leaves = leaves(70)
    hashes = [merkle.leaf_hash(leaf) for leaf in all_leaves]
    for leaf in all_leaves:
        store.append(leaf)
        n = store.size
        assert merkle.root_of(n, store.fetch) == mth(hashes[:n])
        for m in range(n):
            assert store.inclusion(m, n) == path(m, hashes[:n])
        for m in range(1, n + 1):
            assert store.consistency(m, n) == subproof(m, hashes[:n], True)


def test_proofs_of_older_sizes_stay_answerable_as_the_tree_grows() -> None:
    store = NodeStore()
    all_leaves = leaves(40)
    for leaf in all_leaves:
        store.append(leaf)
    hashes = [merkle.leaf_hash(leaf) for leaf in all_leaves]
    assert store.inclusion(5, 13) == path(5, hashes[:13])
    assert store.consistency(7, 13) == subproof(7, hashes[:13], True)


def test_proofs_read_logarithmically_many_nodes() -> None:
    store = NodeStore()
    for leaf in leaves(5000):
        store.append(leaf)
    store.reads = 0
    store.inclusion(2345, 4999)
    assert store.reads <= 13 * 13
    store.reads = 0
    store.consistency(1234, 4999)
    assert store.reads <= 13 * 13


def test_each_append_completes_at_most_log_n_nodes() -> None:
    store = NodeStore()
    for leaf in leaves(1024):
        store.append(leaf)
    assert len(store.nodes) == 2 * 1024 - 1  # every perfect subtree, once
    assert len(store.frontier) == 1


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0)])
def test_impossible_inclusion_requests_are_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(index, size)


@pytest.mark.parametrize(("first", "second"), [(0, 3), (4, 3)])
def test_impossible_consistency_requests_are_refused(first: int, second: int) -> None:
    with pytest.raises(ValueError):
        merkle.consistency_ranges(first, second)


def test_missing_nodes_are_reported_not_guessed() -> None:
    store = NodeStore()
    for leaf in leaves(8):
        store.append(leaf)
    del store.nodes[(1, 1)]
    with pytest.raises(LookupError, match="missing"):
        store.inclusion(0, 8)


def test_frontier_packs_and_unpacks() -> None:
    store = NodeStore()
    for leaf in leaves(11):
        store.append(leaf)
    assert merkle.unpack(merkle.pack(store.frontier)) == store.frontier
    with pytest.raises(ValueError):
        merkle.unpack(b"\x00" * 33)
