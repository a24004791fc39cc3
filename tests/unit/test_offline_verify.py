"""The standalone verifier: random trees, strict parsing, custody chains and the CLI."""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import notes
from audit import offline_verify as ov

PROPERTY = settings(max_examples=60, deadline=None, database=None)
FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- A reference tree written straight from RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and
# §2.1.4.1 (PROOF, SUBPROOF). D[lo:hi] is a range of leaf hashes, MTH({d}) = leaf hash.


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class RfcTree:
    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.d = list(leaf_hashes)
        self.mth: Callable[[int, int], bytes] = functools.cache(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.d[lo]
        k = _k(n)
        return hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def rfc_path(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D_n): the inclusion proof of leaf m."""
    return RfcTree(leaf_hashes).path(m, 0, len(leaf_hashes))


def rfc_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D_n) = SUBPROOF(m, D_n, true): the consistency proof from size m."""
    return RfcTree(leaf_hashes).subproof(m, 0, len(leaf_hashes), True)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    # Distinct leaves: with two equal leaves, proofs for swapped indices coincide.
    return [b"leaf %d " % i + salt for i in range(n)]


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def _fails(*attempts: Callable[[], None]) -> None:
    for attempt in attempts:
        with pytest.raises(ov.VerificationError):
            attempt()


# --- Random trees -------------------------------------------------------------------------


@PROPERTY
@given(st.integers(1, 300), st.binary(max_size=8))
def test_every_proof_of_a_random_tree_verifies(n: int, salt: bytes) -> None:
    hashes = [ov.leaf_hash(x) for x in _leaves(n, salt)]
    tree = RfcTree(hashes)
    root = tree.mth(0, n)
    assert ov.merkle_root(hashes) == root
    for m in range(n):
        ov.verify_inclusion(hashes[m], m, n, tree.path(m, 0, n), root)
    for m in range(1, n + 1):
        assert ov.merkle_root(hashes[:m]) == tree.mth(0, m)
        ov.verify_consistency(m, n, tree.subproof(m, 0, n, True), tree.mth(0, m), root)


@PROPERTY
@given(st.integers(1, 300), st.data())
def test_any_change_to_an_inclusion_proof_fails(n: int, data: st.DataObject) -> None:
    hashes = [ov.leaf_hash(x) for x in _leaves(301)]
    tree = RfcTree(hashes)
    m = data.draw(st.integers(0, n - 1), label="index")
    proof, root, leaf = tree.path(m, 0, n), tree.mth(0, n), hashes[m]
    ov.verify_inclusion(leaf, m, n, proof, root)
    bit = data.draw(st.integers(0, 255), label="bit")
    other_size = data.draw(st.integers(1, 301).filter(lambda s: s != n), label="other size")
    junk = data.draw(st.binary(min_size=32, max_size=32), label="junk hash")
    _fails(
        lambda: ov.verify_inclusion(_flip(leaf, bit), m, n, proof, root),
        lambda: ov.verify_inclusion(leaf, m, n, proof, _flip(root, bit)),
        lambda: ov.verify_inclusion(leaf, m, n, [*proof, junk], root),
        lambda: ov.verify_inclusion(leaf, m, n, [junk, *proof], root),
        lambda: ov.verify_inclusion(leaf, m, n, [*proof, root], root),
        # Another size with that size's own root (see the test on sizes below).
        lambda: ov.verify_inclusion(leaf, m, other_size, proof, tree.mth(0, other_size)),
    )
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="proof position")
        flipped = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        _fails(
            lambda: ov.verify_inclusion(leaf, m, n, flipped, root),
            lambda: ov.verify_inclusion(leaf, m, n, proof[:-1], root),
            lambda: ov.verify_inclusion(leaf, m, n, proof[1:], root),
        )
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != m), label="other index")
        _fails(
            lambda: ov.verify_inclusion(leaf, other, n, proof, root),
            lambda: ov.verify_inclusion(hashes[other], m, n, proof, root),
        )


@PROPERTY
@given(st.integers(2, 300), st.data())
def test_any_change_to_a_consistency_proof_fails(n: int, data: st.DataObject) -> None:
    hashes = [ov.leaf_hash(x) for x in _leaves(301)]
    tree = RfcTree(hashes)
    m = data.draw(st.integers(1, n - 1), label="first size")
    proof, old, new = tree.subproof(m, 0, n, True), tree.mth(0, m), tree.mth(0, n)
    ov.verify_consistency(m, n, proof, old, new)
    bit = data.draw(st.integers(0, 255), label="bit")
    i = data.draw(st.integers(0, len(proof) - 1), label="proof position")
    m2 = data.draw(st.integers(1, n).filter(lambda s: s != m), label="other first size")
    n2 = data.draw(st.integers(m, 301).filter(lambda s: s != n), label="other second size")
    junk = data.draw(st.binary(min_size=32, max_size=32), label="junk hash")
    flipped = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
    _fails(
        lambda: ov.verify_consistency(m, n, proof, _flip(old, bit), new),
        lambda: ov.verify_consistency(m, n, proof, old, _flip(new, bit)),
        lambda: ov.verify_consistency(m, n, flipped, old, new),
        lambda: ov.verify_consistency(m, n, [*proof, junk], old, new),
        lambda: ov.verify_consistency(m, n, [junk, *proof], old, new),
        lambda: ov.verify_consistency(m, n, proof[:-1], old, new),
        lambda: ov.verify_consistency(m, n, proof[1:], old, new),
        lambda: ov.verify_consistency(m, n, proof, new, old),
        lambda: ov.verify_consistency(m2, n, proof, tree.mth(0, m2), new),
        lambda: ov.verify_consistency(m, n2, proof, old, tree.mth(0, n2)),
        lambda: ov.verify_consistency(n, m, proof, new, old),
    )


def test_an_inclusion_proof_alone_does_not_fix_the_tree_size() -> None:
    # RFC 9162 inclusion proofs bind the leaf, index and root, not the size: the proof of
    # leaf 0 in a 5-leaf tree also "verifies" as if the tree had 6 leaves with the same
    # root. The size must come from the signed checkpoint, which is what
    # verify_tlog_proof and the CLI do.
    hashes = [ov.leaf_hash(x) for x in _leaves(6)]
    proof, root5 = rfc_path(0, hashes[:5]), ov.merkle_root(hashes[:5])
    ov.verify_inclusion(hashes[0], 0, 5, proof, root5)
    ov.verify_inclusion(hashes[0], 0, 6, proof, root5)
    with pytest.raises(ov.VerificationError):
        ov.verify_inclusion(hashes[0], 0, 6, proof, ov.merkle_root(hashes))


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (0, 0, "outside a tree of size 0"),
        (3, 3, "outside a tree of size 3"),
        (-1, 3, "non-negative integer"),
        (True, 3, "non-negative integer"),
        (0.0, 3, "non-negative integer"),
    ],
)
def test_inclusion_refuses_impossible_positions(index: object, size: object, message: str) -> None:
    h = ov.leaf_hash(b"x")
    with pytest.raises(ov.VerificationError, match=message):
        ov.verify_inclusion(h, index, size, [], h)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "0" * 64, bytearray(32)])
def test_every_hash_must_be_32_bytes(bad: object) -> None:
    good = ov.leaf_hash(b"x")
    _fails(
        lambda: ov.verify_inclusion(bad, 0, 1, [], good),  # type: ignore[arg-type]
        lambda: ov.verify_inclusion(good, 0, 1, [], bad),  # type: ignore[arg-type]
        lambda: ov.verify_inclusion(good, 0, 2, [bad], good),  # type: ignore[list-item]
        lambda: ov.verify_consistency(1, 1, [], bad, bad),  # type: ignore[arg-type]
        lambda: ov.verify_consistency(1, 2, [bad], good, good),  # type: ignore[list-item]
        lambda: ov.merkle_root([bad]),  # type: ignore[list-item]
    )


def test_consistency_edge_sizes() -> None:
    h = ov.leaf_hash(b"x")
    ov.verify_consistency(3, 3, [], h, h)
    _fails(
        lambda: ov.verify_consistency(0, 0, [], h, h),
        lambda: ov.verify_consistency(0, 3, [], ov.EMPTY_TREE_ROOT, h),
        lambda: ov.verify_consistency(3, 2, [h], h, h),
        lambda: ov.verify_consistency(3, 3, [h], h, h),
        lambda: ov.verify_consistency(1, 2, [], h, h),
    )


# --- Proof JSON ----------------------------------------------------------------------------


def test_proof_json_is_read_strictly() -> None:
    h = "ab" * 32
    assert ov.inclusion_proof_from_json({"leaf_index": 1, "tree_size": 2, "hashes": [h]}) == (
        ov.InclusionProof(1, 2, [bytes.fromhex(h)])
    )
    assert ov.consistency_proof_from_json({"first": 2, "second": 2, "hashes": []}) == (
        ov.ConsistencyProof(2, 2, [])
    )


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        "{}",
        {"leaf_index": 0, "tree_size": 1},
        {"leaf_index": 0, "tree_size": 1, "hashes": [], "root": ""},
        {"leaf_index": 1, "tree_size": 1, "hashes": []},
        {"leaf_index": -1, "tree_size": 1, "hashes": []},
        {"leaf_index": True, "tree_size": 2, "hashes": []},
        {"leaf_index": 0.0, "tree_size": 1, "hashes": []},
        {"leaf_index": "0", "tree_size": 1, "hashes": []},
        {"leaf_index": 0, "tree_size": 2**63, "hashes": []},
        {"leaf_index": 0, "tree_size": 2, "hashes": ["AB" * 32]},
        {"leaf_index": 0, "tree_size": 2, "hashes": ["ab" * 31]},
        {"leaf_index": 0, "tree_size": 2, "hashes": ["zz" * 32]},
        {"leaf_index": 0, "tree_size": 2, "hashes": [" " + "ab" * 32]},
        {"leaf_index": 0, "tree_size": 2, "hashes": "ab" * 32},
        {"leaf_index": 0, "tree_size": 2, "hashes": [None]},
        {"leaf_index": 0, "tree_size": 2, "hashes": ["ab" * 32] * 65},
    ],
)
def test_malformed_inclusion_proof_json_is_refused(obj: object) -> None:
    with pytest.raises(ov.VerificationError):
        ov.inclusion_proof_from_json(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"first": 3, "second": 2, "hashes": []},
        {"first": 1, "second": 2},
        {"first": 1, "second": 2, "hashes": [], "extra": 1},
        {"first": False, "second": 2, "hashes": []},
        {"first": 1, "second": 2, "hashes": ["ab" * 33]},
    ],
)
def test_malformed_consistency_proof_json_is_refused(obj: object) -> None:
    with pytest.raises(ov.VerificationError):
        ov.consistency_proof_from_json(obj)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["leaf_index", "tree_size", "hashes", "first", "second", "x"]), inner
        )
    ),
    max_leaves=12,
)


@FUZZ
@given(_JSON)
def test_proof_json_readers_raise_only_verification_errors(obj: object) -> None:
    for reader in (ov.inclusion_proof_from_json, ov.consistency_proof_from_json):
        try:
            reader(obj)
        except ov.VerificationError:
            pass


# --- Signed notes, keys, checkpoints and tlog-proofs: strict parsing --------------------------


def _key(name: str = "log.example/d1") -> tuple[ov.VerifierKey, notes.Ed25519PrivateKey]:
    private = notes.new_signing_key()
    return ov.parse_verifier_key(notes.verifier_key(name, private.public_key())), private


def _checkpoint_note(size: int = 3, name: str = "log.example/d1") -> tuple[str, ov.VerifierKey]:
    key, private = _key(name)
    root = ov.merkle_root([ov.leaf_hash(x) for x in _leaves(size)])
    return notes.sign_note(notes.format_checkpoint(name, size, root), name, private), key


def test_note_text_may_hold_empty_lines_and_splits_at_the_last_one() -> None:
    # The example in c2sp.org/signed-note: a poem with an empty line in its text.
    sig = (
        "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0x"
        "McXxj99ihAQwaqP3ZekRwNtIc="
    )
    text = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n\n"
        f"— quasimodo.example/salvatore {sig}\n"
    )
    note = ov.parse_note(text)
    assert note.body.endswith(":\n\ned è subito sera.\n")
    assert [(s.name, s.key_id.hex()) for s in note.signatures] == [
        ("quasimodo.example/salvatore", "367ba04b")
    ]


SIG = base64.b64encode(b"\x01\x02\x03\x04" + b"s" * 64).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "blank line"),
        ("no blank line\n— a " + SIG + "\n", "blank line"),
        ("body\n\n", "end with signature lines"),
        ("body\n\n— a " + SIG, "end with signature lines"),
        ("body\n\n- a " + SIG + "\n", "em dash"),
        ("body\n\n\u2013 a " + SIG + "\n", "em dash"),
        ("body\n\n—a " + SIG + "\n", "em dash"),
        ("body\n\n— a\n", "signature line is"),
        ("body\n\n—  " + SIG + "\n", "signature line is"),
        ("body\n\n— a+b " + SIG + "\n", "signature line is"),
        ("body\n\n— a\u00a0b " + SIG + "\n", "signature line is"),
        ("body\n\n— a " + SIG + " extra\n", "base64"),
        ("body\n\n— a !!notbase64!!\n", "base64"),
        ("body\n\n— a AQIDBA==\n", "at least one byte"),
        ("body\n\n— a AQIDBAU\n", "base64"),
        ("body\n\n— a AQIDBAV=\n", "canonical"),
        ("body\r\n\r\n— a " + SIG + "\r\n", "CRLF"),
        ("bo\x00dy\n\n— a " + SIG + "\n", "control character"),
        ("body\n\n" + ("— a " + SIG + "\n") * 101, "at most 100"),
        ("x" * 1_000_001, "at most"),
        ("body \ud800\n\n— a " + SIG + "\n", "UTF-8"),
    ],
)
def test_malformed_notes_are_refused_with_verification_errors(text: str, message: str) -> None:
    with pytest.raises(ov.VerificationError, match=message):
        ov.parse_note(text)


def test_note_parsing_accepts_sixteen_and_a_hundred_signatures() -> None:
    for count in (16, 100):
        assert len(ov.parse_note("body\n\n" + ("— a " + SIG + "\n") * count).signatures) == count


_ANY_TEXT = st.text(max_size=300) | st.text(
    st.characters(categories=["Cs", "Cc", "L", "N", "P", "S", "Z"]), max_size=60
)  # Cs: lone surrogates, which no UTF-8 encoder accepts


@FUZZ
@given(_ANY_TEXT)
def test_parsers_raise_only_verification_errors_on_any_text(text: str) -> None:
    for parse in (ov.parse_note, ov.parse_checkpoint, ov.parse_tlog_proof, ov.parse_verifier_key):
        try:
            parse(text)
        except ov.VerificationError:
            pass


@FUZZ
@given(st.data())
def test_parsers_raise_only_verification_errors_on_damaged_real_input(
    data: st.DataObject,
) -> None:
    note, key = _checkpoint_note()
    hashes = [ov.leaf_hash(x) for x in _leaves(3)]
    proof = notes.format_tlog_proof(1, rfc_path(1, hashes), note, extra=b"x")
    for text in (note, proof):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 4)))
        damaged = text[:i] + data.draw(st.text(max_size=3)) + text[j:]
        for check, args in (
            (ov.verify_checkpoint, (damaged, key)),
            (ov.verify_cosignature, (damaged, key)),
            (ov.verify_tlog_proof, (damaged, _leaves(3)[1], key)),
        ):
            try:
                check(*args)  # type: ignore[operator]
            except ov.VerificationError:
                pass


def test_unknown_signatures_are_ignored_and_a_bad_known_one_rejects_the_note() -> None:
    note, key = _checkpoint_note()
    body, line = note.split("\n\n")
    stranger = "— stranger.example " + SIG + "\n"
    same_name_other_id = f"— {key.name} " + SIG + "\n"
    assert ov.verify_note(body + "\n\n" + stranger + line + same_name_other_id, key).body == (
        body + "\n"
    )
    bad = bytearray(base64.b64decode(line.split(" ")[2]))
    bad[-1] ^= 1
    forged = f"— {key.name} {base64.b64encode(bytes(bad)).decode()}\n"
    for text in (body + "\n\n" + forged, body + "\n\n" + line + forged):
        with pytest.raises(ov.VerificationError, match="does not verify"):
            ov.verify_note(text, key)
    with pytest.raises(ov.VerificationError, match="no signature"):
        ov.verify_note(body + "\n\n" + stranger, key)


def test_notes_are_verified_with_type_01_keys_only() -> None:
    note, key = _checkpoint_note()
    witness = ov.as_cosignature_key(key)
    assert witness.key_type == ov.COSIGNATURE_V1 and witness.key_id != key.key_id
    with pytest.raises(ov.VerificationError, match="type 0x01"):
        ov.verify_note(note, witness)


def _vkey(name: str, blob: bytes, key_id: bytes | None = None) -> str:
    kid = key_id if key_id is not None else ov.key_id(name, blob[0], blob[1:])
    return f"{name}+{kid.hex()}+{base64.b64encode(blob).decode()}"


def test_verifier_keys_are_parsed_and_checked() -> None:
    raw = notes.new_signing_key().public_key().public_bytes_raw()
    key = ov.parse_verifier_key(_vkey("log.example", b"\x01" + raw) + "\n")
    assert (key.name, key.key_type, key.public_key_bytes) == ("log.example", 1, raw)
    upper = _vkey("log.example", b"\x01" + raw).replace(key.key_id.hex(), key.key_id.hex().upper())
    assert ov.parse_verifier_key(upper) == key
    assert ov.parse_verifier_key(_vkey("w.example", b"\x04" + raw)).key_type == 4


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "log.example",
        "log.example+530d903a",
        "+530d903a+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "log example+530d903a+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "log.example+530d903+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "log.example+0x530d90+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "log.example+00000000+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        _vkey("log.example", b"\x02" + b"k" * 32),
        _vkey("log.example", b"\x01" + b"k" * 31),
        _vkey("log.example", b"\x01" + b"k" * 33),
        _vkey("log.example", b"\x01"),
        "log.example+530d903a+",
        "log.example+530d903a+!!!",
        "x" * 1001,
        _vkey("log\ud800", b"\x01" + b"k" * 32, b"\x00" * 4),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(ov.VerificationError):
        ov.parse_verifier_key(vkey)


ROOT = base64.b64encode(b"r" * 32).decode()


def test_checkpoints_are_parsed() -> None:
    cp = ov.parse_checkpoint(f"example.com/log\n0\n{ROOT}\n")
    assert cp == ov.Checkpoint("example.com/log", 0, b"r" * 32, [])
    cp = ov.parse_checkpoint(f"an origin with spaces\n{2**63 - 1}\n{ROOT}\next 1\next 2\n")
    assert (cp.origin, cp.size, cp.extensions) == (
        "an origin with spaces",
        2**63 - 1,
        ["ext 1", "ext 2"],
    )


@pytest.mark.parametrize(
    "body",
    [
        f"example.com/log\n1\n{ROOT}",
        f"example.com/log\n1\n{ROOT}\n\n",
        f"example.com/log\n1\n{ROOT}\n\next\n",
        f"\n1\n{ROOT}\n",
        "example.com/log\n1\n",
        f"example.com/log\n01\n{ROOT}\n",
        f"example.com/log\n-1\n{ROOT}\n",
        f"example.com/log\n+1\n{ROOT}\n",
        f"example.com/log\n 1\n{ROOT}\n",
        f"example.com/log\n\uff11\n{ROOT}\n",
        f"example.com/log\n{2**63}\n{ROOT}\n",
        f"example.com/log\n1\n{base64.b64encode(b'r' * 31).decode()}\n",
        f"example.com/log\n1\n{ROOT[:-2]}J=\n",  # the same bytes, non-zero pad bits
        f"example.com/log\n1\n{ROOT.rstrip('=')}\n",
        f"example.com/log\r\n1\r\n{ROOT}\r\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(ov.VerificationError):
        ov.parse_checkpoint(body)


def test_checkpoint_origin_must_be_the_log_keys_name() -> None:
    key, private = _key("log.example/d1")
    body = notes.format_checkpoint("log.example/d2", 1, b"r" * 32)
    note = body + "\n" + notes.signature_line(key.name, key.key_id, private.sign(body.encode()))
    assert ov.verify_note(note, key).body == body
    with pytest.raises(ov.VerificationError, match="origin"):
        ov.verify_checkpoint(note, key)


def test_cosignatures_are_checked_strictly() -> None:
    note, _ = _checkpoint_note()
    witness = notes.new_signing_key()
    wkey = ov.parse_verifier_key(notes.cosignature_verifier_key("w.example", witness.public_key()))
    body = ov.parse_note(note).body

    def line(timestamp: int, signed: int | None = None, extra: bytes = b"") -> str:
        message = ov.cosignature_message(body, timestamp if signed is None else signed)
        sig = timestamp.to_bytes(8, "big") + witness.sign(message) + extra
        return notes.signature_line("w.example", wkey.key_id, sig)

    assert ov.verify_cosignature(note + line(2**63 - 1), wkey) == 2**63 - 1
    assert ov.verify_cosignature(note + line(0), wkey) == 0
    _fails(
        lambda: ov.verify_cosignature(note + line(2**63), wkey),
        lambda: ov.verify_cosignature(note + line(5, signed=6), wkey),
        lambda: ov.verify_cosignature(note + line(5) + line(6, signed=7), wkey),
        lambda: ov.verify_cosignature(note, wkey),
    )
    with pytest.raises(ov.VerificationError, match="not a timestamp and an Ed25519 signature"):
        ov.verify_cosignature(note + line(5, extra=b"!"), wkey)
    not_a_checkpoint = "hello\n\n" + notes.signature_line("w.example", wkey.key_id, SIG.encode())
    with pytest.raises(ov.VerificationError, match="checkpoint"):
        ov.verify_cosignature(not_a_checkpoint, wkey)


def test_cosignature_message_is_the_spec_layout() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert ov.cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )


def _tlog(index: str = "index 1", extra: str = "", hashes: Sequence[str] = ()) -> str:
    note, _ = _checkpoint_note()
    head = ["c2sp.org/tlog-proof@v1", *([extra] if extra else []), index, *hashes]
    return "\n".join(head) + "\n\n" + note


H = base64.b64encode(b"h" * 32).decode()


def test_tlog_proofs_are_parsed() -> None:
    proof = ov.parse_tlog_proof(_tlog("index 0", "extra " + base64.b64encode(b"x").decode(), [H]))
    assert (proof.extra, proof.index, proof.hashes) == (b"x", 0, [b"h" * 32])
    assert ov.parse_tlog_proof(_tlog("index 12")).extra is None


@pytest.mark.parametrize(
    "text",
    [
        _tlog().replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        _tlog().replace("c2sp.org/tlog-proof@v1\n", ""),
        _tlog("index 01"),
        _tlog("index two"),
        _tlog("index -1"),
        _tlog("index"),
        _tlog("Index 1"),
        _tlog(f"index {2**63}"),
        _tlog(extra="extra !!"),
        _tlog(extra="extra"),
        _tlog(hashes=[base64.b64encode(b"h" * 31).decode()]),
        _tlog(hashes=[H + " "]),
        _tlog(hashes=[H] * 65),
        _tlog().replace("index 1\n", "index 1\nextra eA==\n"),
        "c2sp.org/tlog-proof@v1\nindex 1\n" + H + "\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n\nnot a note\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n\nhello\n\n— a " + SIG + "\n",
    ],
)
def test_malformed_tlog_proofs_are_refused(text: str) -> None:
    with pytest.raises(ov.VerificationError):
        ov.parse_tlog_proof(text)


# --- Custody chains ------------------------------------------------------------------------

ITEM = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"


def _event(item: str, seq: int, prev: bytes | None, **extra: object) -> bytes:
    event: dict[str, object] = {"evidence_id": item, "seq": seq, "type": "evidence.viewed"}
    if prev is not None:
        event["prev"] = ov.leaf_hash(prev).hex()
    event.update(extra)
    return bytes(rfc8785.dumps(event))


def _chain(item: str, n: int) -> list[bytes]:
    leaves: list[bytes] = []
    for seq in range(1, n + 1):
        leaves.append(_event(item, seq, leaves[-1] if leaves else None))
    return leaves


def _interleave(*chains: list[bytes]) -> list[bytes]:
    out: list[bytes] = [b'{"type":"auth.logout"}']
    for i, group in enumerate(zip(*chains, strict=True)):
        out += [*group, b'{"id":%d,"type":"system.start"}' % i]
    return out


def test_a_complete_chain_among_other_events_verifies() -> None:
    leaves = _interleave(_chain(ITEM, 5), _chain(OTHER, 5))
    assert ov.check_item_chain(leaves, ITEM) == 5
    assert ov.check_item_chain(leaves, OTHER) == 5
    assert ov.check_item_chain(_chain(ITEM, 1), ITEM) == 1


def test_chain_problems_are_named() -> None:
    a = _chain(ITEM, 4)
    cases = [
        ("expected seq 3, but the event skips to 4", [a[0], a[1], a[3]]),
        ("expected seq 3, but the event repeats 2", [a[0], a[1], a[1]]),
        ("expected seq 1, but the event skips to 2", a[1:]),
        ("seq 3 does not link", [a[0], a[1], _event(ITEM, 3, a[0])]),
        ("seq 1 must not have a prev", [_event(ITEM, 1, b"x")]),
        ("no integer seq", [a[0], _event(ITEM, True, a[0])]),
        ("no integer seq", [a[0], _event(ITEM, "2", a[0])]),  # type: ignore[arg-type]
        ("position 2 is not UTF-8 JSON", [a[0], b"\xff", a[1]]),
        ("position 2 is not UTF-8 JSON", [a[0], b"{", a[1]]),
        ("repeats a JSON key", [a[0], a[1][:-1] + b',"seq":2}']),
        ("not JSON", [b'{"seq":NaN}']),
        ("no events", [b'{"type":"auth.logout"}', b"[1,2]", b'"text"']),
    ]
    for message, leaves in cases:
        with pytest.raises(ov.VerificationError, match=message):
            ov.check_item_chain(leaves, ITEM)


def test_chain_links_are_to_the_exact_leaf_bytes() -> None:
    a = _chain(ITEM, 2)
    respaced = a[0].replace(b",", b", ")  # the same JSON, other bytes
    with pytest.raises(ov.VerificationError, match="does not link"):
        ov.check_item_chain([respaced, a[1]], ITEM)
    upper = json.loads(a[1])
    upper["prev"] = upper["prev"].upper()
    with pytest.raises(ov.VerificationError, match="does not link"):
        ov.check_item_chain([a[0], bytes(rfc8785.dumps(upper))], ITEM)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=5))
def test_chain_check_raises_only_verification_errors(leaves: list[bytes]) -> None:
    try:
        ov.check_item_chain(leaves, ITEM)
    except ov.VerificationError:
        pass


# --- Command line --------------------------------------------------------------------------


class Log:
    """A small signed log on disk: leaves, checkpoints, proofs, a witness, key files."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.origin = "log.example/d1"
        self.leaves = _interleave(_chain(ITEM, 3), _chain(OTHER, 3))  # 10 leaves
        self.hashes = [ov.leaf_hash(x) for x in self.leaves]
        self.tree = RfcTree(self.hashes)
        key = notes.new_signing_key()
        witness, idle = notes.new_signing_key(), notes.new_signing_key()
        self.old = self.sign(key, 4)
        self.new = self.sign(key, len(self.leaves))
        line = notes.cosign(self.new, "oversight.example", witness, 1_767_225_600)
        self.new = notes.add_signatures(self.new, [line])
        self.write(
            "keys",
            "\n".join(
                [
                    notes.verifier_key(self.origin, key.public_key()),
                    "# witnesses",
                    notes.cosignature_verifier_key("oversight.example", witness.public_key()),
                    notes.verifier_key("clerk.example", idle.public_key()),
                ]
            )
            + "\n",
        )
        self.write("old.checkpoint", self.old)
        self.write("new.checkpoint", self.new)
        self.write("leaf", self.leaves[6])
        self.write("inclusion.json", json.dumps(self.inclusion(6)))
        self.write("consistency.json", json.dumps(self.consistency(4, len(self.leaves))))
        self.write("proof.tlog-proof", notes.format_tlog_proof(6, self.path(6), self.new))
        self.write("leaves.jsonl", b"\n".join(self.leaves) + b"\n")

    def sign(self, key: notes.Ed25519PrivateKey, size: int) -> str:
        body = notes.format_checkpoint(self.origin, size, self.tree.mth(0, size))
        return notes.sign_note(body, self.origin, key)

    def path(self, index: int) -> list[bytes]:
        return self.tree.path(index, 0, len(self.leaves))

    def inclusion(self, index: int) -> dict[str, object]:
        return notes.inclusion_proof_to_json(index, len(self.leaves), self.path(index))

    def consistency(self, m: int, n: int) -> dict[str, object]:
        return notes.consistency_proof_to_json(m, n, self.tree.subproof(m, 0, n, True))

    def write(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def __truediv__(self, name: str) -> str:
        return str(self.tmp / name)


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = ov.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _fails_with_one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 1, (out, err)
    assert err.startswith("FAILED: ") and err.count("\n") == 1, err
    return err


def test_cli_checkpoint_reports_signature_and_cosignatures(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "checkpoint", "--key", log / "keys", log / "new.checkpoint")
    assert (code, err) == (0, "")
    assert "ok: checkpoint of log.example/d1 at tree size 10 is signed by the log key" in out
    assert "ok: cosigned by witness oversight.example at 2026-01-01T00:00:00Z (1767225600)" in out
    assert "note: no cosignature by witness clerk.example" in out


def test_cli_inclusion_with_json_and_with_tlog_proof(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["inclusion", "--key", log / "keys", "--leaf", log / "leaf"]
    for how in (
        ["--checkpoint", log / "new.checkpoint", "--proof", log / "inclusion.json"],
        ["--tlog-proof", log / "proof.tlog-proof"],
        ["--tlog-proof", log / "proof.tlog-proof", "--checkpoint", log / "new.checkpoint"],
    ):
        code, out, err = _run(capsys, *common, *how)
        assert (code, err) == (0, ""), err
        assert f"is entry 6 of {log.origin} at tree size 10" in out


def test_cli_consistency_and_chain(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "consistency",
        "--key",
        log / "keys",
        "--proof",
        log / "consistency.json",
        log / "old.checkpoint",
        log / "new.checkpoint",
    )
    assert code == 0 and "the tree of size 10 extends the tree of size 4" in out
    code, out, _ = _run(capsys, "chain", "--evidence-id", ITEM, log / "leaves.jsonl")
    assert code == 0 and "unbroken custody chain of 3 events" in out and "note:" in out
    code, out, _ = _run(
        capsys,
        "chain",
        "--evidence-id",
        OTHER,
        "--key",
        log / "keys",
        "--checkpoint",
        log / "new.checkpoint",
        log / "leaves.jsonl",
    )
    assert code == 0 and "complete up to that checkpoint" in out


def test_cli_consistency_from_an_empty_tree(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    key = notes.new_signing_key()
    log.write("keys", notes.verifier_key(log.origin, key.public_key()) + "\n")
    log.write("empty.checkpoint", log.sign(key, 0))
    log.write("new.checkpoint", log.sign(key, 10))
    log.write("c.json", json.dumps(notes.consistency_proof_to_json(0, 10, [])))
    argv = ["consistency", "--key", log / "keys", "--proof", log / "c.json"]
    assert _run(capsys, *argv, log / "empty.checkpoint", log / "new.checkpoint")[0] == 0


def test_cli_refuses_tampered_evidence_in_one_line(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    keys, new, old = log / "keys", log / "new.checkpoint", log / "old.checkpoint"
    inclusion = ["inclusion", "--key", keys, "--leaf", log / "leaf", "--checkpoint", new]

    log.write("other-leaf", log.leaves[7])
    err = _fails_with_one_line(
        capsys,
        "inclusion",
        "--key",
        keys,
        "--leaf",
        log / "other-leaf",
        "--checkpoint",
        new,
        "--proof",
        log / "inclusion.json",
    )
    assert "does not lead from leaf 6" in err

    log.write("leaf-nl", log.leaves[6] + b"\n")
    err = _fails_with_one_line(
        capsys,
        "inclusion",
        "--key",
        keys,
        "--leaf",
        log / "leaf-nl",
        "--checkpoint",
        new,
        "--proof",
        log / "inclusion.json",
    )
    assert "ends with a newline" in err

    bad = log.inclusion(6)
    bad["hashes"] = [("0" if h[0] != "0" else "1") + h[1:] for h in bad["hashes"]]  # type: ignore[attr-defined]
    log.write("bad.json", json.dumps(bad))
    _fails_with_one_line(capsys, *inclusion, "--proof", log / "bad.json")
    log.write("other-size.json", json.dumps(notes.inclusion_proof_to_json(6, 9, log.path(6))))
    assert "tree size 9" in _fails_with_one_line(
        capsys, *inclusion, "--proof", log / "other-size.json"
    )
    log.write("not.json", "{")
    assert "is not JSON" in _fails_with_one_line(capsys, *inclusion, "--proof", log / "not.json")

    log.write("changed.checkpoint", log.new.replace("\n10\n", "\n11\n", 1))
    err = _fails_with_one_line(capsys, "checkpoint", "--key", keys, log / "changed.checkpoint")
    assert "does not verify" in err
    log.write("crlf.checkpoint", log.new.replace("\n", "\r\n"))
    assert "CRLF" in _fails_with_one_line(
        capsys, "checkpoint", "--key", keys, log / "crlf.checkpoint"
    )

    witness_line = log.new.splitlines()[-1]
    blob = bytearray(base64.b64decode(witness_line.split(" ")[2]))
    blob[-1] ^= 0x80
    forged = log.new.replace(
        witness_line,
        witness_line.split(" ")[0] + " oversight.example " + base64.b64encode(bytes(blob)).decode(),
    )
    log.write("forged.checkpoint", forged)
    err = _fails_with_one_line(capsys, "checkpoint", "--key", keys, log / "forged.checkpoint")
    assert "cosignature by 'oversight.example' does not verify" in err

    tlog = notes.format_tlog_proof(6, log.path(6), log.new).replace("index 6", "index 7")
    log.write("moved.tlog-proof", tlog)
    _fails_with_one_line(
        capsys,
        "inclusion",
        "--key",
        keys,
        "--leaf",
        log / "leaf",
        "--tlog-proof",
        log / "moved.tlog-proof",
    )
    err = _fails_with_one_line(
        capsys,
        "inclusion",
        "--key",
        keys,
        "--leaf",
        log / "leaf",
        "--tlog-proof",
        log / "proof.tlog-proof",
        "--checkpoint",
        old,
    )
    assert "is not the --checkpoint given" in err

    consistency = ["consistency", "--key", keys, "--proof", log / "consistency.json"]
    assert "sizes 10 and 4" in _fails_with_one_line(capsys, *consistency, new, old)
    log.write("c.json", json.dumps(log.consistency(5, 10)))
    _fails_with_one_line(capsys, "consistency", "--key", keys, "--proof", log / "c.json", old, new)


def test_cli_chain_failures(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    leaves = log.leaves
    log.write("gap.jsonl", b"\n".join(leaves[:3] + leaves[5:]) + b"\n")
    err = _fails_with_one_line(capsys, "chain", "--evidence-id", ITEM, log / "gap.jsonl")
    assert "expected seq 2, but the event skips to 3" in err
    log.write("crlf.jsonl", b"\r\n".join(leaves) + b"\r\n")
    err = _fails_with_one_line(capsys, "chain", "--evidence-id", ITEM, log / "crlf.jsonl")
    assert "carriage return" in err
    log.write("blank.jsonl", b"\n".join([leaves[0], b"", leaves[1]]))
    assert "line 2 is empty" in _fails_with_one_line(
        capsys, "chain", "--evidence-id", ITEM, log / "blank.jsonl"
    )
    # An unbroken chain, but the file is not the whole log the checkpoint commits to.
    log.write("short.jsonl", b"\n".join(leaves[:-1]) + b"\n")
    err = _fails_with_one_line(
        capsys,
        "chain",
        "--evidence-id",
        ITEM,
        "--key",
        log / "keys",
        "--checkpoint",
        log / "new.checkpoint",
        log / "short.jsonl",
    )
    assert "the file holds 9 leaves, the checkpoint's tree has 10" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["checkpoint"],
        ["checkpoint", "--key", "{tmp}/missing", "{tmp}/new.checkpoint"],
        ["checkpoint", "--key", "{tmp}/keys", "{tmp}/missing"],
        ["checkpoint", "--key", "{tmp}/new.checkpoint", "{tmp}/new.checkpoint"],
        [
            "inclusion",
            "--key",
            "{tmp}/keys",
            "--leaf",
            "{tmp}/leaf",
            "--proof",
            "{tmp}/inclusion.json",
        ],
        [
            "inclusion",
            "--key",
            "{tmp}/keys",
            "--leaf",
            "{tmp}/leaf",
            "--checkpoint",
            "{tmp}/new.checkpoint",
            "--proof",
            "{tmp}/inclusion.json",
            "--tlog-proof",
            "{tmp}/p",
        ],
        [
            "inclusion",
            "--key",
            "{tmp}/keys",
            "--leaf",
            "{tmp}/missing",
            "--tlog-proof",
            "{tmp}/proof.tlog-proof",
        ],
        ["chain", "--evidence-id", ITEM, "--key", "{tmp}/keys", "{tmp}/leaves.jsonl"],
        ["chain", "--evidence-id", ITEM, "{tmp}"],
        ["frobnicate", "--now"],
        ["--frobnicate"],
    ],
)
def test_cli_usage_and_file_errors_exit_2(
    log: Log, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = _run(capsys, *[a.format(tmp=log.tmp) for a in argv])
    assert code == 2 and out == "" and err


def test_cli_key_file_needs_the_log_key_first(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    witness_first = "\n".join((Path(log / "keys").read_text().splitlines())[2:]) + "\n"
    log.write("witness-first", witness_first)
    code, _, err = _run(
        capsys, "checkpoint", "--key", log / "witness-first", log / "new.checkpoint"
    )
    assert code == 2 and "first key must be the log's Ed25519" in err


def test_cli_bundle_verification_is_not_available_yet(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["bundle", str(log.tmp)], [str(log.tmp)]):
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "not available yet" in err


def test_cli_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert ov.main(["--help"]) == 0
    assert "Exit status: 0" in capsys.readouterr().out
    for command in ("checkpoint", "inclusion", "consistency", "chain", "bundle"):
        assert ov.main([command, "--help"]) == 0


# --- Standalone -------------------------------------------------------------------------------


def test_verifier_imports_only_stdlib_and_cryptography() -> None:
    tree = ast.parse(Path(ov.__file__).read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "no relative imports"
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"__import__", "exec", "eval"}
    assert "cryptography" in modules
    outside = {m for m in modules if m not in sys.stdlib_module_names and m != "cryptography"}
    assert outside == set()


def test_the_verifier_file_runs_alone(log: Log, tmp_path_factory: pytest.TempPathFactory) -> None:
    alone = tmp_path_factory.mktemp("court") / "bwc_verify.py"
    shutil.copyfile(ov.__file__, alone)
    result = subprocess.run(  # noqa: S603 - our own interpreter and a copied file
        [
            sys.executable,
            "-I",
            str(alone),
            "checkpoint",
            "--key",
            log / "keys",
            log / "new.checkpoint",
        ],
        capture_output=True,
        text=True,
        cwd=alone.parent,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ok: checkpoint of log.example/d1" in result.stdout
