"""A key provider backed by an AWS KMS symmetric key: KEKs never leave KMS."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from evidence.errors import IntegrityError, KeyProviderError
from evidence.ports import WrappedKey

_DEK_SIZE = 32
_T = TypeVar("_T")

# The ciphertext, its key or its encryption context do not match: tampering or a wrapped
# key moved to another row. Real KMS says IncorrectKeyException when the blob was made
# under another key than the KeyId given; moto says AccessDeniedException instead.
_INTEGRITY_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class AwsKmsKeyProvider:
    """KEKs held by AWS KMS; DEKs are wrapped by KMS Encrypt/GenerateDataKey.

    A version is a key ARN. Rotation: construct the service with a new key id and that
    key becomes the current version; wrapped keys name their own ARN, so old ones still
    unwrap (Decrypt with KeyId=their version) for as long as the old key is enabled and
    the service's role may use it. KMS automatic rotation is transparent and keeps the
    ARN. An alias is resolved once, at first use: a re-pointed alias takes effect on
    restart. Scheduling a key's deletion crypto-shreds every DEK wrapped under it.

    The context travels as the KMS encryption context: KMS binds it into the ciphertext
    (and logs it in CloudTrail, so it must name things, never hold secrets)."""

    def __init__(self, client: Any, key_id: str) -> None:
        """client is a boto3 KMS client (untyped: boto3 ships no stubs); key_id is a key
        id, ARN or alias of a SYMMETRIC_DEFAULT encrypt/decrypt key."""
        self._client = client
        self._key_id = key_id
        self._arn: str | None = None

    @classmethod
    def from_settings(
        cls, key_id: str, region: str | None = None, endpoint_url: str | None = None
    ) -> AwsKmsKeyProvider:
        """A provider with its own client: adaptive retries and bounded timeouts, so a KMS
        throttle slows ingest down instead of failing it, and an outage fails fast."""
        config = Config(
            retries={"mode": "adaptive", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=10,
        )
        client = boto3.client("kms", region_name=region, endpoint_url=endpoint_url, config=config)
        return cls(client, key_id)

    def __repr__(self) -> str:
        return f"AwsKmsKeyProvider({self._key_id!r})"

    def _call(self, operation: str, call: Callable[[], _T]) -> _T:
        # Messages carry only the operation and error code: botocore's own messages may
        # echo request parameters (a parameter validation error prints the Plaintext).
        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            if code in _INTEGRITY_CODES:
                raise IntegrityError("wrapped key does not authenticate") from None
            raise KeyProviderError(f"KMS {operation} failed: {code}") from None
        except BotoCoreError as exc:
            raise KeyProviderError(f"KMS {operation} failed: {type(exc).__name__}") from None

    def current_version(self) -> str:
        """The key's ARN (DescribeKey once, then cached); KeyProviderError if unusable."""
        if self._arn is None:
            response = self._call(
                "DescribeKey", lambda: self._client.describe_key(KeyId=self._key_id)
            )
            meta = response["KeyMetadata"]
            if meta.get("KeyState") != "Enabled":
                raise KeyProviderError(f"KMS key {meta['Arn']} is {meta.get('KeyState')}")
            if (
                meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
                or meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT"
            ):
                raise KeyProviderError(f"KMS key {meta['Arn']} is not a symmetric encryption key")
            self._arn = str(meta["Arn"])
        return self._arn

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        arn, ctx = self.current_version(), _context(context)
        response = self._call(
            "GenerateDataKey",
            lambda: self._client.generate_data_key(
                KeyId=arn, KeySpec="AES_256", EncryptionContext=ctx
            ),
        )
        return bytes(response["Plaintext"]), WrappedKey(arn, bytes(response["CiphertextBlob"]))

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> WrappedKey:
        if not isinstance(dek, bytes) or len(dek) != _DEK_SIZE:
            raise ValueError(f"dek must be {_DEK_SIZE} bytes")
        arn, ctx = self.current_version(), _context(context)
        response = self._call(
            "Encrypt",
            lambda: self._client.encrypt(KeyId=arn, Plaintext=dek, EncryptionContext=ctx),
        )
        return WrappedKey(arn, bytes(response["CiphertextBlob"]))

    def unwrap(self, wrapped: WrappedKey, context: Mapping[str, str]) -> bytes:
        """The DEK. KeyId is always passed, so a blob cannot pick its own key (KMS would
        otherwise decrypt with whatever key the ciphertext names)."""
        if not wrapped.version.startswith("arn:"):
            raise KeyProviderError(f"key version {wrapped.version!r} is not a KMS key ARN")
        ctx = _context(context)
        response = self._call(
            "Decrypt",
            lambda: self._client.decrypt(
                CiphertextBlob=wrapped.blob,
                KeyId=wrapped.version,
                EncryptionContext=ctx,
            ),
        )
        dek = bytes(response["Plaintext"])
        if len(dek) != _DEK_SIZE:
            raise IntegrityError("wrapped key does not authenticate")
        return dek


def _context(context: Mapping[str, str]) -> dict[str, str]:
    for name, value in context.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
    return dict(context)
