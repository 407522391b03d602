"""A fake Webex identity broker on 127.0.0.1 (aiohttp) that signs data-source tokens.

It serves ``{issuer}/oauth2/v2/keys/verificationjwk`` for any number of issuers (one path
prefix each) from RSA keys generated in the test, rotates keys, counts fetches, answers
chosen errors (429/500) and mints tokens with given claims and headers.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["DATASOURCE_URL", "ORG_ID", "FakeIdBroker", "SigningKey", "new_signing_key"]

DATASOURCE_URL = "https://media.example.test/byova"
ORG_ID = "9a1b2c3d-0000-4000-8000-00000000abcd"
_BYOVA_SCHEMA_ID = "5397013b-7920-4ffc-807c-e8a3e0a18f43"
_JWKS_PATH = "/oauth2/v2/keys/verificationjwk"


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with its ``kid`` and the ``alg`` its JWK advertises."""

    kid: str
    private_key: rsa.RSAPrivateKey
    jwk_alg: str = "RS256"

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private_key.public_key(), as_dict=True
        )
        jwk.update(kid=self.kid, alg=self.jwk_alg, use="sig")
        return jwk

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_signing_key(
    kid: str | None = None, *, jwk_alg: str = "RS256", key_size: int = 2048
) -> SigningKey:
    """A fresh key, 2048 bits unless asked (the size Webex uses; smaller ones are refused)."""
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        if key_size >= _SMALLEST_GENERATED_BITS
        else _small_rsa_key(key_size)
    )
    return SigningKey(kid=kid or str(uuid.uuid4()), private_key=private, jwk_alg=jwk_alg)


# cryptography refuses to generate keys under 1024 bits; smaller ones are built by hand.
_SMALLEST_GENERATED_BITS = 1024


def _probable_prime(bits: int) -> int:
    """A random prime of exactly ``bits`` bits (Miller-Rabin, 40 rounds)."""
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if _is_probable_prime(candidate):
            return candidate


def _is_probable_prime(n: int) -> bool:
    if n % 3 == 0 or n % 5 == 0 or n % 7 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(40):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _small_rsa_key(bits: int) -> rsa.RSAPrivateKey:
    """An RSA key with a ``bits``-bit modulus, for tests of weak-key refusal."""
    e = 65537
    while True:
        p, q = _probable_prime(bits // 2), _probable_prime(bits - bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and (p * q).bit_length() == bits and math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


@dataclass
class _Issuer:
    keys: list[SigningKey]
    fetches: int = 0
    #: Answer the next fetches with these statuses (popped one per fetch).
    errors: list[int] = field(default_factory=list)


class FakeIdBroker:
    """Identity broker(s) on a free port: ``async with FakeIdBroker() as broker: ...``.

    ``broker.issuer()`` is the default issuer URL (``http://127.0.0.1:<port>/idb``);
    ``broker.issuer("eu")`` another one with its own keys and counters.
    """

    def __init__(self, *, key: SigningKey | None = None) -> None:
        self._initial_key = key
        self._issuers: dict[str, _Issuer] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: When set, every fetch waits for this many seconds first (single-flight tests).
        self.delay_s = 0.0

    async def __aenter__(self) -> FakeIdBroker:
        app = web.Application()
        app.router.add_get("/{name}" + _JWKS_PATH, self._jwks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        self._state("idb", self._initial_key)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- control --------------------------------------------------------------------------

    def issuer(self, name: str = "idb") -> str:
        self._state(name)
        return f"http://127.0.0.1:{self.port}/{name}"

    def key(self, name: str = "idb") -> SigningKey:
        """The current (newest) signing key of an issuer."""
        return self._state(name).keys[-1]

    def published(self, name: str = "idb") -> list[SigningKey]:
        """The keys the issuer currently publishes, oldest first."""
        return list(self._state(name).keys)

    def fetches(self, name: str = "idb") -> int:
        return self._state(name).fetches

    def total_fetches(self) -> int:
        return sum(state.fetches for state in self._issuers.values())

    def rotate(self, name: str = "idb", *, keep_old: bool = False) -> SigningKey:
        """Publish a new key (and drop the old ones unless ``keep_old``); returns it."""
        state = self._state(name)
        new = new_signing_key()
        state.keys = [*state.keys, new] if keep_old else [new]
        return new

    def publish(self, key: SigningKey, name: str = "idb") -> None:
        """Add ``key`` to the issuer's published set."""
        self._state(name).keys.append(key)

    def fail_next(self, *statuses: int, name: str = "idb") -> None:
        """Answer the next fetches with these HTTP statuses, in order."""
        self._state(name).errors.extend(statuses)

    # -- tokens ---------------------------------------------------------------------------

    def claims(
        self, name: str = "idb", *, now: float | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """Realistic BYOVA data-source claims; ``overrides`` replace them (``None`` removes)."""
        issued = time.time() if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer(name),
            "aud": "byova-media-test",
            "sub": "byova-media",
            "jti": "nonce-123456",
            "iat": int(issued),
            "exp": int(issued) + 3600,
            "com.cisco.datasource.url": DATASOURCE_URL,
            "com.cisco.datasource.schema.uuid": _BYOVA_SCHEMA_ID,
            "com.cisco.org.uuid": ORG_ID,
        }
        for claim, value in overrides.items():
            claim = _CLAIM_ALIASES.get(claim, claim)
            if value is None:
                claims.pop(claim, None)
            else:
                claims[claim] = value
        return claims

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        name: str = "idb",
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """An RS256 token signed by the issuer's current key (or ``key``), with its ``kid``."""
        signer = key or self.key(name)
        header: dict[str, Any] = {"kid": signer.kid, "typ": "JWT"}
        header.update(headers or {})
        # JWS-level encoding so tests can sign claims PyJWT's JWT layer would refuse (iss: 42).
        payload = json.dumps(dict(claims if claims is not None else self.claims(name)))
        return jwt.api_jws.encode(
            payload.encode(),
            signer.private_key,
            algorithm="RS256",
            headers=header,
        )

    # -- internals ------------------------------------------------------------------------

    def _state(self, name: str, key: SigningKey | None = None) -> _Issuer:
        state = self._issuers.get(name)
        if state is None:
            state = _Issuer(keys=[key or new_signing_key()])
            self._issuers[name] = state
        return state

    async def _jwks(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._issuers:
            raise web.HTTPNotFound()
        state = self._issuers[name]
        state.fetches += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if state.errors:
            status = state.errors.pop(0)
            headers = {"Retry-After": "1"} if status == 429 else {}
            return web.json_response({"message": "fault"}, status=status, headers=headers)
        return web.json_response({"keys": [key.public_jwk() for key in state.keys]})


#: Short names for the long Cisco claims in :meth:`FakeIdBroker.claims` overrides.
_CLAIM_ALIASES = {
    "url": "com.cisco.datasource.url",
    "schema": "com.cisco.datasource.schema.uuid",
    "org": "com.cisco.org.uuid",
}
