"""Verification of the BYODS data-source JWS that Webex attaches to every BYOVA RPC.

The recipe follows the protocol notes (§2.3) with hardening: the issuer is checked against an
allow-list before any network call (no SSRF through ``iss``), keys are selected by ``kid`` only,
only RS256 is accepted, and the Webex signing keys are cached per issuer with a rate-limited
refresh on an unknown ``kid`` and stale keys kept when the broker cannot be reached.

Rejection reasons (:attr:`JwsError.reason`, also the metric label) are a small fixed set:
``missing``, ``malformed``, ``alg``, ``issuer``, ``kid``, ``key_alg``, ``key_size``,
``jwks_unavailable``, ``signature``, ``expired``, ``iat_future``, ``not_yet_valid``, ``claims``,
``datasource_url``, ``schema``, ``org``, ``org_lookup``; and ``invalid_peer`` for a
server peer credential (``byova_media.peer``) this process did not issue or that expired.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import jwt

__all__ = [
    "BYOVA_SCHEMA_ID",
    "DEFAULT_ISSUERS",
    "JWKS_PATH",
    "MIN_RSA_KEY_BITS",
    "JwsError",
    "JwsVerifier",
    "VerifiedClaims",
]

log = logging.getLogger(__name__)

BYOVA_SCHEMA_ID = "5397013b-7920-4ffc-807c-e8a3e0a18f43"

#: The Webex identity brokers that sign data-source tokens (protocol notes §2.3).
DEFAULT_ISSUERS: tuple[str, ...] = (
    "https://idbroker.webex.com/idb",
    "https://idbroker-eu.webex.com/idb",
    "https://idbroker-b-us.webex.com/idb",
    "https://idbroker-ca.webex.com/idb",
    "https://idbrokerbts.webex.com/idb",
    "https://idbrokerbts-eu.webex.com/idb",
)

#: Appended to the issuer to find its verification keys.
JWKS_PATH = "/oauth2/v2/keys/verificationjwk"

_ALG = "RS256"
_CLAIM_URL = "com.cisco.datasource.url"
_CLAIM_SCHEMA = "com.cisco.datasource.schema.uuid"
_CLAIM_ORG = "com.cisco.org.uuid"
# Real tokens are ~1 KiB; anything far larger is refused before any decoding work.
_MAX_TOKEN_CHARS = 16 * 1024
_JWKS_TIMEOUT_S = 5.0
#: Smallest RSA modulus accepted (NIST SP 800-131A); a JWKS may not downgrade us below it.
MIN_RSA_KEY_BITS = 2048


class JwsError(Exception):
    """A token was refused; :attr:`reason` is a short fixed word, never token content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedClaims:
    """The claims of a token whose signature and BYOVA claims were checked."""

    org_id: str
    issuer: str
    subject: str
    audience: str
    jti: str
    expires_at: float
    raw: Mapping[str, Any] = field(repr=False)


@dataclass
class _KeySet:
    """Keys of one issuer by ``kid``; a published key we refuse to use maps to the reason."""

    keys: dict[str, jwt.PyJWK | str]
    fetched_at: float


class JwsVerifier:
    """Verifies data-source tokens for one configured data-source URL.

    ``org_allowed``, when given, is awaited with the token's org id after every other check
    (e.g. "do we hold tokens for this org"). ``clock`` drives both the claim time checks and
    the key cache, so tests can move time. Unknown ``kid`` values refresh an issuer's keys at
    most once per ``jwks_refresh_interval_s``; a failed fetch is retried no sooner either.
    """

    def __init__(
        self,
        *,
        issuers: Sequence[str],
        datasource_url: str,
        http: httpx.AsyncClient,
        schema_id: str = BYOVA_SCHEMA_ID,
        org_allowed: Callable[[str], Awaitable[bool]] | None = None,
        leeway_s: float = 60.0,
        jwks_ttl_s: float = 3600.0,
        jwks_refresh_interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not datasource_url:
            raise ValueError("datasource_url is required: it is the URL the JWS must name")
        if not issuers:
            raise ValueError("the issuer allow-list is empty: no token could ever be accepted")
        self._issuers = frozenset(issuers)
        self._datasource_url = datasource_url
        self._http = http
        self._schema_id = schema_id
        self._org_allowed = org_allowed
        self._leeway_s = leeway_s
        self._jwks_ttl_s = jwks_ttl_s
        self._refresh_interval_s = jwks_refresh_interval_s
        self._clock = clock
        self._keysets: dict[str, _KeySet] = {}
        self._last_attempt: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"JwsVerifier(datasource_url={self._datasource_url!r}, issuers={len(self._issuers)})"

    async def verify(self, token: str) -> VerifiedClaims:
        """Check ``token`` (bare or ``Bearer <jws>``); raise :class:`JwsError` when refused."""
        token = _strip_bearer(token)
        header, unverified = _parse_unverified(token)
        if header.get("alg") != _ALG:
            raise JwsError("alg")
        issuer = unverified.get("iss")
        # Before any network call: only allow-listed issuers decide where keys come from.
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise JwsError("issuer")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise JwsError("kid")
        key = await self._key(issuer, kid)
        claims = self._check_signature(token, key)
        expires_at = self._check_times(claims)
        verified = self._check_claims(claims, issuer, expires_at)
        await self._check_org(verified.org_id)
        return verified

    # -- keys -----------------------------------------------------------------------------

    async def _key(self, issuer: str, kid: str) -> jwt.PyJWK:
        keyset = self._keysets.get(issuer)
        stale = keyset is None or self._clock() - keyset.fetched_at >= self._jwks_ttl_s
        if stale or keyset is None or kid not in keyset.keys:
            await self._refresh(issuer)
            keyset = self._keysets.get(issuer)
        if keyset is None:
            raise JwsError("jwks_unavailable")
        if kid not in keyset.keys:
            raise JwsError("kid")
        key = keyset.keys[kid]
        if isinstance(key, str):
            raise JwsError(key)
        return key

    async def _refresh(self, issuer: str) -> None:
        """Join the running fetch for ``issuer``, or start one if the rate limit allows."""
        running = self._fetching.get(issuer)
        if running is None:
            last = self._last_attempt.get(issuer)
            if last is not None and self._clock() - last < self._refresh_interval_s:
                return
            self._last_attempt[issuer] = self._clock()
            # A task, not an inline await: a cancelled RPC must not cancel the shared fetch.
            running = asyncio.create_task(self._fetch(issuer), name=f"jwks-fetch {issuer}")
            self._fetching[issuer] = running
            running.add_done_callback(lambda _t: self._fetching.pop(issuer, None))
        await asyncio.shield(running)

    async def _fetch(self, issuer: str) -> None:
        """Replace the cached keys of ``issuer``; on failure keep what we have (stale)."""
        url = issuer.rstrip("/") + JWKS_PATH
        try:
            response = await self._http.get(url, timeout=_JWKS_TIMEOUT_S)
        except httpx.HTTPError as exc:
            log.warning(
                "JWKS fetch from %s failed (%s); keeping cached keys", url, type(exc).__name__
            )
            return
        if response.status_code != 200:
            log.warning(
                "JWKS fetch from %s answered HTTP %d; keeping cached keys",
                url,
                response.status_code,
            )
            return
        try:
            keys = _parse_jwks(response.json())
        except ValueError as exc:
            log.warning("JWKS from %s is unusable (%s); keeping cached keys", url, exc)
            return
        self._keysets[issuer] = _KeySet(keys=keys, fetched_at=self._clock())
        log.info("loaded %d verification key(s) from %s", len(keys), url)

    # -- checks ---------------------------------------------------------------------------

    def _check_signature(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[_ALG],
                # Times are checked by us against the injected clock; audience is per data
                # source and only required to be present.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise JwsError("signature") from None
        except jwt.InvalidAlgorithmError:
            raise JwsError("alg") from None
        except jwt.PyJWTError:
            raise JwsError("malformed") from None
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """Check ``exp``/``iat``/``nbf`` with the leeway; return ``exp``."""
        now = self._clock()
        exp = _number(claims.get("exp"))
        iat = _number(claims.get("iat"))
        if exp is None or iat is None:
            raise JwsError("claims")
        if now > exp + self._leeway_s:
            raise JwsError("expired")
        if iat > now + self._leeway_s:
            raise JwsError("iat_future")
        if "nbf" in claims:
            nbf = _number(claims["nbf"])
            if nbf is None:
                raise JwsError("claims")
            if nbf > now + self._leeway_s:
                raise JwsError("not_yet_valid")
        return exp

    def _check_claims(
        self, claims: dict[str, Any], issuer: str, expires_at: float
    ) -> VerifiedClaims:
        audience = _audience(claims.get("aud"))
        subject = claims.get("sub")
        jti = claims.get("jti")
        org_id = claims.get(_CLAIM_ORG)
        if audience is None or not _text(subject) or not _text(jti) or not _text(org_id):
            raise JwsError("claims")
        # Exact string comparison on purpose: "https://h" and "https://h:443" differ.
        if claims.get(_CLAIM_URL) != self._datasource_url:
            raise JwsError("datasource_url")
        if claims.get(_CLAIM_SCHEMA) != self._schema_id:
            raise JwsError("schema")
        return VerifiedClaims(
            org_id=str(org_id),
            issuer=issuer,
            subject=str(subject),
            audience=audience,
            jti=str(jti),
            expires_at=expires_at,
            raw=MappingProxyType(claims),
        )

    async def _check_org(self, org_id: str) -> None:
        if self._org_allowed is None:
            return
        try:
            allowed = await self._org_allowed(org_id)
        except Exception as exc:
            # Fail closed: a store we cannot ask must not let every org in.
            log.warning("org allow-list lookup failed (%s)", type(exc).__name__)
            raise JwsError("org_lookup") from None
        if not allowed:
            raise JwsError("org")


def _strip_bearer(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    if not value:
        raise JwsError("missing")
    return value


def _b64_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (UnicodeError, binascii.Error, ValueError, RecursionError):
        raise JwsError("malformed") from None
    if not isinstance(decoded, dict):
        raise JwsError("malformed")
    return decoded


def _parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, unverified: only to route to the right key."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise JwsError("malformed")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise JwsError("malformed")
    return _b64_json(parts[0]), _b64_json(parts[1])


def _parse_jwks(document: Any) -> dict[str, jwt.PyJWK | str]:
    """Keys by ``kid`` from a JWK Set (or a single JWK).

    Keys we refuse are kept by ``kid`` with their refusal reason, so a token naming one is
    told why: ``key_alg`` for a key that is not a usable RS256 key, ``key_size`` for an RSA
    modulus under :data:`MIN_RSA_KEY_BITS` (PyJWT only warns about those).
    """
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        entries: list[Any] = document["keys"]
    elif isinstance(document, dict) and "kty" in document:
        entries = [document]
    else:
        raise ValueError("not a JWK Set")
    keys: dict[str, jwt.PyJWK | str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not _text(entry.get("kid")):
            continue
        kid = str(entry["kid"])
        usable = (
            entry.get("kty") == "RSA"
            and entry.get("alg", _ALG) == _ALG
            and entry.get("use", "sig") == "sig"
        )
        if not usable:
            keys[kid] = "key_alg"
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=_ALG)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            keys[kid] = "key_alg"
            continue
        bits = getattr(key.key, "key_size", 0)
        if bits < MIN_RSA_KEY_BITS:
            log.warning(
                "refusing JWKS key %r: %d-bit RSA is under the %d-bit minimum",
                kid[:64],
                bits,
                MIN_RSA_KEY_BITS,
            )
            keys[kid] = "key_size"
            continue
        keys[kid] = key
    return keys


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _audience(value: object) -> str | None:
    """A single non-empty audience (a one-element list is accepted)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) and value else None
