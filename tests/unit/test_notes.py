"""The service side of C2SP notes: everything it writes, the standalone verifier reads."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import notes
from audit import offline_verify as ov

from .test_offline_verify import RfcTree

ORIGIN = "log.example/d1"

# The example in the documentation of golang.org/x/mod/sumdb/note (BSD-3-Clause): a
# signer key string, its verifier key, and the note that key signs. Ed25519 signatures
# are deterministic, so we must reproduce the signed note byte for byte.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)
GO_SECOND_LINE = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnW"
    "Lox33WWd1RvMc+QQ=\n"
)


def _log(size: int = 5) -> tuple[RfcTree, Ed25519PrivateKey, str, ov.VerifierKey]:
    tree = RfcTree([ov.leaf_hash(b"entry %d" % i) for i in range(size)])
    key = notes.new_signing_key()
    note = notes.sign_note(notes.format_checkpoint(ORIGIN, size, tree.mth(0, size)), ORIGIN, key)
    return tree, key, note, ov.parse_verifier_key(notes.verifier_key(ORIGIN, key.public_key()))


# --- Keys ----------------------------------------------------------------------------------


def test_go_note_signer_key_example_round_trips_byte_for_byte() -> None:
    key = notes.load_private_key(GO_SKEY)
    assert notes.verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert notes.dump_private_key(key, "PeterNeumann") == GO_SKEY
    assert notes.sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    vkey = ov.parse_verifier_key(GO_VKEY)
    assert ov.verify_note(GO_NOTE + GO_SECOND_LINE, vkey).body == GO_TEXT
    assert notes.add_signatures(GO_NOTE, [GO_SECOND_LINE]) == GO_NOTE + GO_SECOND_LINE


def test_private_key_strings_round_trip() -> None:
    key = notes.new_signing_key()
    text = notes.dump_private_key(key, "log.example/d1")
    match = re.fullmatch(r"PRIVATE\+KEY\+log\.example/d1\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44})", text)
    assert match is not None
    assert base64.b64decode(match[2])[0] == 0x01
    vkey = ov.parse_verifier_key(notes.verifier_key("log.example/d1", key.public_key()))
    assert match[1] == vkey.key_id.hex()
    again = notes.parse_signer_key(text + "\n")
    assert (again.name, again.key_type) == ("log.example/d1", 0x01)
    assert again.private_key.public_key().public_bytes_raw() == vkey.public_key_bytes


def test_cosigning_key_strings_use_type_04() -> None:
    key = notes.new_signing_key()
    text = notes.dump_cosigning_key(key, "oversight.example")
    name, loaded = notes.load_cosigning_key(text)
    assert name == "oversight.example"
    assert base64.b64decode(text.split("+", 4)[4])[0] == 0x04
    vkey = ov.parse_verifier_key(notes.cosignature_verifier_key(name, loaded.public_key()))
    assert vkey.key_type == ov.COSIGNATURE_V1
    assert text.split("+")[3] == vkey.key_id.hex()


@pytest.mark.parametrize(
    "text",
    [
        GO_SKEY.replace("PRIVATE+KEY", "PUBLIC+KEY"),
        GO_SKEY.replace("PeterNeumann", "PeterNeuman"),
        GO_SKEY.replace("c74f20a3", "c74f20a4"),
        GO_SKEY.replace("c74f20a3", "c74f20"),
        GO_SKEY.replace("+AYEK", "+AoEK"),  # type 0x02
        GO_SKEY[:-4],
        GO_SKEY + "AAAA",
        GO_SKEY.replace("PeterNeumann", "Peter Neumann"),
        "PRIVATE+KEY+",
    ],
)
def test_malformed_private_key_strings_are_refused(text: str) -> None:
    with pytest.raises(ov.VerificationError):
        notes.parse_signer_key(text)


def test_writers_refuse_bad_key_names_and_types() -> None:
    key = notes.new_signing_key()
    for call in (
        lambda: notes.verifier_key("has space", key.public_key()),
        lambda: notes.verifier_key("a+b", key.public_key()),
        lambda: notes.verifier_key("", key.public_key()),
        lambda: notes.verifier_key("ok", key.public_key(), key_type=0x02),
        lambda: notes.dump_private_key(key, "a\u2003b"),
        lambda: notes.sign_note("text\n", "a b", key),
        lambda: notes.cosign(_log()[2], "a b", key, 1),
    ):
        with pytest.raises(ValueError):
            call()


# --- Notes and checkpoints -------------------------------------------------------------------


def test_checkpoint_text_is_the_c2sp_layout() -> None:
    root = bytes(range(32))
    body = notes.format_checkpoint("example.com/log", 20852163, root, ["ext one"])
    assert body == f"example.com/log\n20852163\n{base64.b64encode(root).decode()}\next one\n"
    assert ov.parse_checkpoint(body) == ov.Checkpoint(
        "example.com/log", 20852163, root, ["ext one"]
    )
    assert notes.format_checkpoint("e.example", 0, root).split("\n")[1] == "0"


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, b"r" * 32),
        ("two words", 1, b"r" * 32),
        ("a\nb", 1, b"r" * 32),
        ("x" * 256, 1, b"r" * 32),
        ("e.example", -1, b"r" * 32),
        ("e.example", 2**63, b"r" * 32),
        ("e.example", True, b"r" * 32),
        ("e.example", 1, b"r" * 31),
        ("e.example", 1, b"r" * 32, [""]),
        ("e.example", 1, b"r" * 32, ["two\nlines"]),
        ("e.example", 1, b"r" * 32, ["tab\there"]),
    ],
)
def test_format_checkpoint_refuses_what_would_not_parse(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        notes.format_checkpoint(*args)  # type: ignore[arg-type]


def test_checkpoint_round_trip_wrong_key_and_tampering() -> None:
    tree, _, note, key = _log(5)
    checkpoint = ov.verify_checkpoint(note, key)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (ORIGIN, 5, tree.mth(0, 5))
    _, _, _, other = _log(5)
    with pytest.raises(ov.VerificationError, match="no signature"):
        ov.verify_checkpoint(note, other)  # same name, another key: another key ID
    impostor = notes.new_signing_key()
    forged = notes.sign_note(notes.format_checkpoint(ORIGIN, 6, tree.mth(0, 5)), ORIGIN, impostor)
    with pytest.raises(ov.VerificationError):
        ov.verify_checkpoint(forged, key)
    for tampered in (
        note.replace("\n5\n", "\n6\n", 1),
        note.replace(ORIGIN, "log.example/d2", 1),
        note.replace(
            base64.b64encode(tree.mth(0, 5)).decode(), base64.b64encode(bytes(32)).decode()
        ),
    ):
        with pytest.raises(ov.VerificationError):
            ov.verify_checkpoint(tampered, key)


_LINE = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], min_codepoint=0x20), max_size=30
)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(_LINE, min_size=1, max_size=6))
def test_any_note_text_signs_and_verifies(lines: list[str]) -> None:
    body = "\n".join(lines) + "\n"  # empty lines included: the spec allows them
    key = notes.new_signing_key()
    vkey = ov.parse_verifier_key(notes.verifier_key("signer.example", key.public_key()))
    note = notes.sign_note(body, "signer.example", key)
    assert ov.verify_note(note, vkey).body == body
    with pytest.raises(ov.VerificationError):
        ov.verify_note("x" + note, vkey)


def test_sign_note_refuses_text_that_is_not_a_note() -> None:
    key = notes.new_signing_key()
    for body in ("no final newline", "", "a\rb\n", "nul\x00\n"):
        with pytest.raises(ValueError):
            notes.sign_note(body, "signer.example", key)


def test_add_signatures_appends_new_valid_lines_only() -> None:
    _, _, note, key = _log()
    witness = notes.new_signing_key()
    line = notes.cosign(note, "w.example", witness, 1_700_000_000)
    once = notes.add_signatures(note, [line])
    assert once == note + line
    assert notes.add_signatures(once, [line, line]) == once
    assert ov.verify_checkpoint(once, key).size == 5
    for bad in ("— w.example AAAA", "w.example AAAAAAAA\n", "— w.example !!\n", "— a b\n— c d\n"):
        with pytest.raises(ValueError):
            notes.add_signatures(note, [bad])


# --- Cosignatures -------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [0, 1, 1_738_713_836, 2**63 - 1])
def test_cosignatures_round_trip(timestamp: int) -> None:
    _, _, note, log_key = _log()
    witness = notes.new_signing_key()
    line = notes.cosign(note, "oversight.example", witness, timestamp)
    blob = base64.b64decode(line.split(" ")[2])
    wkey = ov.parse_verifier_key(
        notes.cosignature_verifier_key("oversight.example", witness.public_key())
    )
    assert len(blob) == 4 + 8 + 64 and blob[:4] == wkey.key_id
    assert int.from_bytes(blob[4:12], "big") == timestamp
    cosigned = notes.add_signatures(note, [line])
    assert ov.verify_cosignature(cosigned, wkey) == timestamp
    # Published as a type 0x01 vkey, the same witness key verifies too.
    w01 = ov.parse_verifier_key(notes.verifier_key("oversight.example", witness.public_key()))
    assert ov.verify_cosignature(cosigned, w01) == timestamp
    assert ov.verify_checkpoint(cosigned, log_key).size == 5


def test_cosignatures_fail_for_other_keys_checkpoints_and_uses() -> None:
    _, log_private, note, log_key = _log()
    _, _, other_note, _ = _log(6)
    witness, stranger = notes.new_signing_key(), notes.new_signing_key()
    wkey = ov.parse_verifier_key(notes.cosignature_verifier_key("w.example", witness.public_key()))
    line = notes.cosign(note, "w.example", witness, 1_700_000_000)
    with pytest.raises(ov.VerificationError, match="no cosignature"):
        ov.verify_cosignature(note, wkey)
    with pytest.raises(ov.VerificationError, match="no cosignature"):
        ov.verify_cosignature(note + notes.cosign(note, "w.example", stranger, 1), wkey)
    with pytest.raises(ov.VerificationError, match="does not verify"):
        ov.verify_cosignature(other_note + line, wkey)  # moved to another checkpoint
    # A cosignature is not a note signature, even by the log's own key and name: its
    # key ID is computed with type 0x04, so the log key does not recognise the line.
    as_log = notes.cosign(note, ORIGIN, log_private, 1)
    with pytest.raises(ov.VerificationError):
        ov.verify_note(note.split("\n\n")[0] + "\n\n" + as_log, log_key)
    with pytest.raises(ValueError):
        notes.cosign(note, "w.example", witness, 2**63)
    with pytest.raises(ValueError):
        notes.cosign(note, "w.example", witness, -1)
    with pytest.raises(ov.VerificationError):
        notes.cosign(notes.sign_note("not a checkpoint\n", "a", witness), "w.example", witness, 1)


# --- tlog-proofs ---------------------------------------------------------------------------


def test_tlog_proof_text_is_the_c2sp_layout() -> None:
    tree, _, note, _ = _log(5)
    path = tree.path(2, 0, 5)
    text = notes.format_tlog_proof(2, path, note, extra=b"bwc")
    expected = ["c2sp.org/tlog-proof@v1", "extra " + base64.b64encode(b"bwc").decode(), "index 2"]
    assert (
        text == "\n".join(expected + [base64.b64encode(h).decode() for h in path]) + "\n\n" + note
    )
    assert notes.format_tlog_proof(0, [], note).startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")


@pytest.mark.parametrize("extra", [None, b"", b"bwc", bytes(range(256))])
def test_tlog_proofs_round_trip_for_every_leaf(extra: bytes | None) -> None:
    tree, _, note, key = _log(7)
    for index in range(7):
        text = notes.format_tlog_proof(index, tree.path(index, 0, 7), note, extra=extra)
        parsed = ov.parse_tlog_proof(text)
        assert (parsed.index, parsed.extra, parsed.checkpoint_text) == (index, extra, note)
        assert ov.verify_tlog_proof(text, b"entry %d" % index, key).size == 7


def test_tlog_proofs_fail_for_wrong_leaf_key_index_or_hash() -> None:
    tree, _, note, key = _log(7)
    text = notes.format_tlog_proof(3, tree.path(3, 0, 7), note)
    _, _, _, other_key = _log(7)
    h = base64.b64encode(tree.path(3, 0, 7)[1]).decode()
    flipped = ("A" if h[0] != "A" else "B") + h[1:]
    for attempt in (
        lambda: ov.verify_tlog_proof(text, b"entry 4", key),
        lambda: ov.verify_tlog_proof(text, b"entry 3\n", key),
        lambda: ov.verify_tlog_proof(text, b"entry 3", other_key),
        lambda: ov.verify_tlog_proof(text.replace("index 3", "index 2"), b"entry 3", key),
        lambda: ov.verify_tlog_proof(text.replace(h, flipped), b"entry 3", key),
        lambda: ov.verify_tlog_proof(text.replace("\n7\n", "\n8\n"), b"entry 3", key),
    ):
        with pytest.raises(ov.VerificationError):
            attempt()


def test_format_tlog_proof_refuses_what_would_not_parse() -> None:
    tree, _, note, _ = _log(3)
    for args in (
        (-1, [], note),
        (0, [b"short"], note),
        (0, [bytes(32)] * 65, note),
        (0, [], "not a signed checkpoint\n"),
    ):
        with pytest.raises(ValueError):
            notes.format_tlog_proof(*args)  # type: ignore[arg-type]


# --- Proof JSON -----------------------------------------------------------------------------


def test_proof_json_shapes_round_trip() -> None:
    tree, *_ = _log(9)
    path, consistency = tree.path(6, 0, 9), tree.subproof(4, 0, 9, True)
    inclusion_json = notes.inclusion_proof_to_json(6, 9, path)
    assert inclusion_json == {"leaf_index": 6, "tree_size": 9, "hashes": [h.hex() for h in path]}
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in inclusion_json["hashes"])  # type: ignore[attr-defined]
    parsed = ov.inclusion_proof_from_json(inclusion_json)
    assert parsed == ov.InclusionProof(6, 9, path)
    assert notes.proof_to_json(parsed) == inclusion_json
    consistency_json = notes.consistency_proof_to_json(4, 9, consistency)
    assert consistency_json == {"first": 4, "second": 9, "hashes": [h.hex() for h in consistency]}
    parsed_c = ov.consistency_proof_from_json(consistency_json)
    assert parsed_c == ov.ConsistencyProof(4, 9, consistency)
    assert notes.proof_to_json(parsed_c) == consistency_json
    ov.verify_consistency(4, 9, parsed_c.hashes, tree.mth(0, 4), tree.mth(0, 9))
