"""RFC 9162 §2.1 Merkle tree arithmetic over stored perfect subtrees.

The ledger stores the hash of every *perfect* subtree as it completes: node (level L,
index i) covers leaves [i·2^L, (i+1)·2^L). Any range hash that RFC 9162's MTH, PATH and
PROOF need is a right fold of O(log n) such nodes, so a proof needs O(log n) ranges of
O(log n) stored nodes each, fetched in one batch — never a pass over the leaves.

The "frontier" of a tree of size n is the list of perfect subtrees that decompose
[0, n), largest first; it gives the root and absorbs the next leaf in O(log n)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

NodeId = tuple[int, int]  # (level, index)
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Largest k = 2^j with k < n, for n > 1 (RFC 9162's split point)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees that tile [start, end), largest first.

    For the ranges RFC 9162 recursion produces (start aligned to a power of two at
    least as large as the range), the sizes strictly decrease, so the range's MTH is
    the right fold of these nodes' hashes."""
    nodes: list[NodeId] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of a perfect cover's hashes into the range's MTH."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


@dataclass(frozen=True)
class Range:
    start: int
    end: int

    def cover(self) -> list[NodeId]:
        return perfect_cover(self.start, self.end)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose MTHs form RFC 9162 PATH(index, D[0:size]), bottom first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    ranges: list[Range] = []
    start, end, m = 0, size, index
    # Walk down from the root, collecting siblings; reverse at the end (RFC lists
    # the path from the leaf up).
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            ranges.append(Range(start + k, end))
            end = start + k
        else:
            ranges.append(Range(start, start + k))
            start, m = start + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose MTHs form RFC 9162 PROOF(first, D[0:second]), in proof order."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to {second}")
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            ranges.append(Range(start + k, end))
            end = start + k
        else:
            ranges.append(Range(start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append(Range(start, end))
    ranges.reverse()
    return ranges


NodeFetcher = Callable[[Iterable[NodeId]], Mapping[NodeId, bytes]]


def range_hashes(ranges: Sequence[Range], fetch: NodeFetcher) -> list[bytes]:
    """MTH of each range, reading every needed stored node in one batch."""
    needed = {node for r in ranges for node in r.cover()}
    stored = fetch(sorted(needed))
    missing = needed - stored.keys()
    if missing:
        raise LookupError(f"{len(missing)} tree nodes are missing, e.g. {min(missing)}")
    return [fold([stored[node] for node in r.cover()]) for r in ranges]


def root_of(size: int, fetch: NodeFetcher) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return range_hashes([Range(0, size)], fetch)[0]


# --- The frontier: appending leaves -------------------------------------------------


def frontier_ids(size: int) -> list[NodeId]:
    return perfect_cover(0, size)


def append_to_frontier(
    frontier: list[bytes], size: int, new_leaf_hash: bytes
) -> tuple[list[bytes], list[tuple[NodeId, bytes]]]:
    """Absorb leaf number `size` into the frontier of a tree of that size.

    Returns the new frontier and every perfect node the leaf completes (its own
    level-0 node first), which the caller stores."""
    completed: list[tuple[NodeId, bytes]] = [((0, size), new_leaf_hash)]
    stack = list(frontier)
    acc, level, index = new_leaf_hash, 0, size
    while index & 1:
        left = stack.pop()
        acc = node_hash(left, acc)
        level, index = level + 1, index >> 1
        completed.append(((level, index), acc))
    stack.append(acc)
    return stack, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    return fold(frontier)


def pack(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def unpack(blob: bytes) -> list[bytes]:
    if len(blob) % HASH_SIZE:
        raise ValueError("a frontier is a whole number of 32-byte hashes")
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
