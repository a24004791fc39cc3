"""The standalone verifier against published vectors, random trees, and its command line."""

from __future__ import annotations

import ast
import base64
import json
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import notes
from audit import offline_verify as ov

from .test_merkle import mth, path, subproof

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PROBES = VECTORS / "transparency-dev-merkle" / "testdata"
# The one transparency-dev probe a strict verifier disagrees with: equal sizes of 1 with
# 12-byte "roots". We reject non-32-byte hashes before any arithmetic (vectors README).
NON_32_BYTE_POLICY = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _b64list(value: list[str] | None) -> list[bytes]:
    return [base64.b64decode(x) for x in value or []]


def _probe_files(kind: str) -> list[Path]:
    files = sorted((PROBES / kind).rglob("*.json"))
    assert files, f"no {kind} probes found under {PROBES}"
    return files


@pytest.mark.parametrize(
    "probe", _probe_files("inclusion"), ids=lambda p: str(p.relative_to(PROBES))
)
def test_transparency_dev_inclusion_probes(probe: Path) -> None:
    case = json.loads(probe.read_text())

    def run() -> None:
        ov.verify_inclusion(
            base64.b64decode(case["leafHash"] or ""),
            case["leafIdx"],
            case["treeSize"],
            _b64list(case["proof"]),
            base64.b64decode(case["root"] or ""),
        )

    if case["wantErr"]:
        with pytest.raises(ov.VerificationError):
            run()
    else:
        run()


@pytest.mark.parametrize(
    "probe", _probe_files("consistency"), ids=lambda p: str(p.relative_to(PROBES))
)
def test_transparency_dev_consistency_probes(probe: Path) -> None:
    case = json.loads(probe.read_text())
    name = str(probe.relative_to(PROBES))

    def run() -> None:
        ov.verify_consistency(
            case["size1"],
            case["size2"],
            _b64list(case["proof"]),
            base64.b64decode(case["root1"] or ""),
            base64.b64decode(case["root2"] or ""),
        )

    if case["wantErr"] or name in NON_32_BYTE_POLICY:
        if name in NON_32_BYTE_POLICY:
            assert not case["wantErr"]  # the documented disagreement, and only that one
        with pytest.raises(ov.VerificationError):
            run()
    else:
        run()


def test_reference_tree_roots_and_proofs() -> None:
    data = json.loads((VECTORS / "rfc6962-reference-tree.json").read_text())
    leaves = [bytes.fromhex(x) for x in data["leaf_inputs_hex"]]
    hashes = [ov.leaf_hash(x) for x in leaves]
    for size, root in enumerate(data["root_hashes_by_size"]):
        assert ov.merkle_root(hashes[:size]).hex() == root
    for case in data["inclusion_proofs"]:
        ov.verify_inclusion(
            hashes[case["index"]],
            case["index"],
            case["tree_size"],
            [bytes.fromhex(h) for h in case["proof"]],
            bytes.fromhex(data["root_hashes_by_size"][case["tree_size"]]),
        )
    for case in data["consistency_proofs"]:
        if case["size1"] == 0:
            continue
        roots = data["root_hashes_by_size"]
        ov.verify_consistency(
            case["size1"],
            case["size2"],
            [bytes.fromhex(h) for h in case["proof"]],
            bytes.fromhex(roots[case["size1"]]),
            bytes.fromhex(roots[case["size2"]]),
        )


def test_c2sp_signed_note_example() -> None:
    data = json.loads((VECTORS / "c2sp-signed-note-example.json").read_text())
    key = ov.parse_verifier_key(data["vkey"])
    assert ov.verify_note(data["signed_note"], key).body == "This is an example message.\n"
    tampered = data["signed_note"].replace("example", "exemplary", 1)
    with pytest.raises(ov.VerificationError):
        ov.verify_note(tampered, key)


def test_armored_witness_cosignatures() -> None:
    data = json.loads((VECTORS / "armored-witness-cosignature-example.json").read_text())
    note = data["checkpoint_note"]
    for witness in data["witnesses"]:
        key = ov.parse_verifier_key(witness["vkey_type01"])
        assert ov.as_cosignature_key(key).key_id.hex() == witness["cosignature_key_id_hex"]
        assert ov.verify_cosignature(note, key) == witness["expected_timestamp"]
    flipped = note.replace("\n611\n", "\n612\n")
    with pytest.raises(ov.VerificationError):
        ov.verify_cosignature(flipped, ov.parse_verifier_key(data["witnesses"][0]["vkey_type01"]))


def test_real_rekor_v2_entry_verifies() -> None:
    bundle = json.loads(
        (VECTORS / "sigstore-python" / "staging-rekor-v2.txt.sigstore.json").read_text()
    )
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    trusted = json.loads((VECTORS / "sigstore-python" / "sigstage-trusted_root.json").read_text())
    log = next(t for t in trusted["tlogs"] if t["logId"]["keyId"] == entry["logId"]["keyId"])
    raw = load_der_public_key(base64.b64decode(log["publicKey"]["rawBytes"])).public_bytes_raw()
    note = entry["inclusionProof"]["checkpoint"]["envelope"]
    origin = note.split("\n", 1)[0]
    vkey = (
        f"{origin}+{ov.key_id(origin, ov.ED25519, raw).hex()}+"
        + base64.b64encode(b"\x01" + raw).decode()
    )
    checkpoint = ov.verify_checkpoint(note, ov.parse_verifier_key(vkey))
    leaf = base64.b64decode(entry["canonicalizedBody"])
    proof = entry["inclusionProof"]
    ov.verify_inclusion(
        ov.leaf_hash(leaf),
        int(proof["logIndex"]),
        checkpoint.size,
        _b64list(proof["hashes"]),
        checkpoint.root_hash,
    )


# --- Properties over random trees -----------------------------------------------------------


def _tree(n: int) -> list[bytes]:
    return [ov.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_inclusion_proof_verifies_and_any_change_fails(n: int, data: st.DataObject) -> None:
    hashes = _tree(n)
    root = mth(hashes)
    m = data.draw(st.integers(0, n - 1))
    proof = path(m, hashes)
    ov.verify_inclusion(hashes[m], m, n, proof, root)
    bit = data.draw(st.integers(0, 255))
    bad = [
        lambda: ov.verify_inclusion(_flip(hashes[m], bit), m, n, proof, root),
        lambda: ov.verify_inclusion(hashes[m], m, n, proof, _flip(root, bit)),
        lambda: ov.verify_inclusion(hashes[m], m, n, [*proof, root], root),
        # A size is only meaningful with its root: the claim "in the tree of size n+1
        # with that tree's root" must fail for the size-n proof.
        lambda: ov.verify_inclusion(hashes[m], m, n + 1, proof, mth(_tree(n + 1))),
    ]
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bad.append(
            lambda: ov.verify_inclusion(
                hashes[m], m, n, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]], root
            )
        )
        bad.append(lambda: ov.verify_inclusion(hashes[m], m, n, proof[:-1], root))
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != m))
        bad.append(lambda: ov.verify_inclusion(hashes[m], other, n, proof, root))
    for attempt in bad:
        with pytest.raises(ov.VerificationError):
            attempt()


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 300), st.data())
def test_every_consistency_proof_verifies_and_any_change_fails(n: int, data: st.DataObject) -> None:
    hashes = _tree(n)
    m = data.draw(st.integers(1, n - 1))
    proof = subproof(m, hashes, True)
    old, new = mth(hashes[:m]), mth(hashes)
    ov.verify_consistency(m, n, proof, old, new)
    bit = data.draw(st.integers(0, 255))
    i = data.draw(st.integers(0, len(proof) - 1))
    bad = [
        lambda: ov.verify_consistency(m, n, proof, _flip(old, bit), new),
        lambda: ov.verify_consistency(m, n, proof, old, _flip(new, bit)),
        lambda: ov.verify_consistency(
            m, n, [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]], old, new
        ),
        lambda: ov.verify_consistency(m, n, [*proof, old], old, new),
        lambda: ov.verify_consistency(m, n, proof[:-1], old, new),
        lambda: ov.verify_consistency(m, n + 1, proof, old, mth(_tree(n + 1))),
    ]
    if m > 1:
        bad.append(lambda: ov.verify_consistency(m - 1, n, proof, mth(hashes[: m - 1]), new))
    for attempt in bad:
        with pytest.raises(ov.VerificationError):
            attempt()


# --- Notes, checkpoints, cosignatures, tlog-proofs -------------------------------------------


def _signed(origin: str = "log.example/d1", size: int = 3) -> tuple[str, ov.VerifierKey, bytes]:
    key = notes.new_signing_key()
    root = mth(_tree(size))
    note = notes.sign_note(notes.format_checkpoint(origin, size, root), origin, key)
    return note, ov.parse_verifier_key(notes.verifier_key(origin, key.public_key())), root


def test_checkpoint_round_trip_and_wrong_key() -> None:
    note, key, root = _signed()
    checkpoint = ov.verify_checkpoint(note, key)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == ("log.example/d1", 3, root)
    _, other, _ = _signed()
    with pytest.raises(ov.VerificationError):
        ov.verify_checkpoint(note, other)
    with pytest.raises(ov.VerificationError):
        ov.verify_checkpoint(note.replace("\n3\n", "\n4\n"), key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no blank line\n",
        "body\n\nnot a signature\n",
        "body\n\n— name\n",
        "body\n\n— name !!notbase64!!\n",
        "x" * 70000,
        "body\r\n\r\n— a AAAAAAA=\n",
        "\n\n— name AAAAAAAA\n",
    ],
)
def test_malformed_notes_are_refused_cleanly(text: str) -> None:
    with pytest.raises(ov.VerificationError):
        ov.parse_note(text)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "a+b",
        "name+zzzzzzzz+AQ==",
        "name+00000000+" + base64.b64encode(b"\x01" + b"k" * 32).decode(),
        "na me+00000000+AQ==",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(ov.VerificationError):
        ov.parse_verifier_key(vkey)


def test_cosignature_round_trip() -> None:
    note, _, _ = _signed()
    witness = notes.new_signing_key()
    line = notes.cosign(note, "witness.example", witness, 1_700_000_000)
    cosigned = notes.add_signatures(note, [line])
    key = ov.parse_verifier_key(
        notes.cosignature_verifier_key("witness.example", witness.public_key())
    )
    assert ov.verify_cosignature(cosigned, key) == 1_700_000_000
    with pytest.raises(ov.VerificationError):
        ov.verify_cosignature(note, key)  # not cosigned
    assert notes.add_signatures(cosigned, [line]) == cosigned  # no duplicate lines


def test_private_keys_round_trip_and_are_checked() -> None:
    key = notes.new_signing_key()
    text = notes.dump_private_key(key, "log.example")
    assert text.startswith("PRIVATE+KEY+log.example+")
    again = notes.load_private_key(text)
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(ov.VerificationError):
        notes.load_private_key(text.replace("log.example", "other.example"))


def test_tlog_proof_round_trip() -> None:
    hashes = _tree(5)
    key = notes.new_signing_key()
    origin = "log.example/d1"
    note = notes.sign_note(notes.format_checkpoint(origin, 5, mth(hashes)), origin, key)
    vkey = ov.parse_verifier_key(notes.verifier_key(origin, key.public_key()))
    leaf = b"entry 2"
    text = notes.format_tlog_proof(2, path(2, hashes), note, extra=b"bwc")
    parsed = ov.parse_tlog_proof(text)
    assert (parsed.index, parsed.extra) == (2, b"bwc")
    assert ov.verify_tlog_proof(text, leaf, vkey).size == 5
    with pytest.raises(ov.VerificationError):
        ov.verify_tlog_proof(text, b"entry 3", vkey)
    with pytest.raises(ov.VerificationError):
        ov.parse_tlog_proof(text.replace("index 2", "index two"))


def _chain(evidence_id: str, n: int) -> list[bytes]:
    leaves, prev = [], None
    for seq in range(1, n + 1):
        event = {"evidence_id": evidence_id, "seq": seq, "type": "evidence.viewed"}
        if prev:
            event["prev"] = prev
        leaf = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        leaves.append(leaf)
        prev = ov.leaf_hash(leaf).hex()
    return leaves


def test_item_chain_complete_and_broken() -> None:
    item = "11111111-2222-3333-4444-555555555555"
    leaves = _chain(item, 4)
    noise = b'{"type":"auth.logout"}'
    assert ov.check_item_chain([leaves[0], noise, *leaves[1:]], item) == 4
    with pytest.raises(ov.VerificationError, match="expected event seq 3"):
        ov.check_item_chain([leaves[0], leaves[1], leaves[3]], item)
    forged = json.dumps(
        {
            "evidence_id": item,
            "prev": ov.leaf_hash(leaves[0]).hex(),
            "seq": 3,
            "type": "evidence.viewed",
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    with pytest.raises(ov.VerificationError, match="does not link"):
        ov.check_item_chain([leaves[0], leaves[1], forged.encode()], item)
    with pytest.raises(ov.VerificationError, match="no events"):
        ov.check_item_chain([noise], item)


# --- Command line ------------------------------------------------------------------------------


def test_cli_checks_checkpoint_inclusion_consistency_and_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hashes_leaves = [f"entry {i}".encode() for i in range(9)]
    hashes = [ov.leaf_hash(x) for x in hashes_leaves]
    key = notes.new_signing_key()
    origin = "log.example/d1"
    old = notes.sign_note(notes.format_checkpoint(origin, 4, mth(hashes[:4])), origin, key)
    new = notes.sign_note(notes.format_checkpoint(origin, 9, mth(hashes)), origin, key)
    (tmp_path / "key").write_text(notes.verifier_key(origin, key.public_key()) + "\n")
    (tmp_path / "old").write_text(old)
    (tmp_path / "new").write_text(new)
    (tmp_path / "leaf").write_bytes(hashes_leaves[6])
    (tmp_path / "inclusion.json").write_text(
        json.dumps(notes.inclusion_proof_json(6, 9, path(6, hashes)))
    )
    (tmp_path / "consistency.json").write_text(
        json.dumps(notes.consistency_proof_json(4, 9, subproof(4, hashes, True)))
    )
    (tmp_path / "proof.tlog-proof").write_text(notes.format_tlog_proof(6, path(6, hashes), new))
    k = str(tmp_path / "key")
    assert ov.main(["checkpoint", "--key", k, str(tmp_path / "new")]) == 0
    assert (
        ov.main(
            [
                "inclusion",
                "--key",
                k,
                "--leaf",
                str(tmp_path / "leaf"),
                "--checkpoint",
                str(tmp_path / "new"),
                "--proof",
                str(tmp_path / "inclusion.json"),
            ]
        )
        == 0
    )
    assert (
        ov.main(
            [
                "inclusion",
                "--key",
                k,
                "--leaf",
                str(tmp_path / "leaf"),
                "--tlog-proof",
                str(tmp_path / "proof.tlog-proof"),
            ]
        )
        == 0
    )
    assert (
        ov.main(
            [
                "consistency",
                "--key",
                k,
                "--proof",
                str(tmp_path / "consistency.json"),
                str(tmp_path / "old"),
                str(tmp_path / "new"),
            ]
        )
        == 0
    )
    item = "11111111-2222-3333-4444-555555555555"
    (tmp_path / "chain").write_text(
        "\n".join(base64.b64encode(x).decode() for x in _chain(item, 3)) + "\n"
    )
    assert ov.main(["chain", "--evidence-id", item, str(tmp_path / "chain")]) == 0
    assert capsys.readouterr().out.count("ok:") == 5

    (tmp_path / "leaf").write_bytes(b"entry 7")
    assert (
        ov.main(
            [
                "inclusion",
                "--key",
                k,
                "--leaf",
                str(tmp_path / "leaf"),
                "--checkpoint",
                str(tmp_path / "new"),
                "--proof",
                str(tmp_path / "inclusion.json"),
            ]
        )
        == 1
    )
    assert (
        ov.main(
            [
                "consistency",
                "--key",
                k,
                "--proof",
                str(tmp_path / "consistency.json"),
                str(tmp_path / "new"),
                str(tmp_path / "old"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("FAILED:") == 2 and "Traceback" not in err
    assert ov.main(["checkpoint", "--key", k, str(tmp_path / "missing")]) == 2
    assert ov.main(["bundle", str(tmp_path)]) == 2
    assert ov.main(["--help"]) == 0


def test_verifier_imports_only_stdlib_and_cryptography() -> None:
    source = Path(ov.__file__).read_text()
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add((node.module or "").split(".")[0])
    outside = {m for m in modules if m not in sys.stdlib_module_names and m != "cryptography"}
    assert outside == set()
