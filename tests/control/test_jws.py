"""JwsVerifier against a fake identity broker on 127.0.0.1 with keys generated here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from fake_idbroker import DATASOURCE_URL, ORG_ID, FakeIdBroker, new_signing_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byova_control.jws import BYOVA_SCHEMA_ID, DEFAULT_ISSUERS, JwsError, JwsVerifier

NOW = 1_800_000_000.0
REFRESH_S = 10.0


class Clock:
    """A clock the test moves by hand (claims and key cache both read it)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def broker() -> AsyncIterator[FakeIdBroker]:
    async with FakeIdBroker() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_verifier(
    broker: FakeIdBroker, http: httpx.AsyncClient, clock: Clock
) -> Callable[..., JwsVerifier]:
    def make(**overrides: Any) -> JwsVerifier:
        options: dict[str, Any] = {
            "issuers": [broker.issuer()],
            "datasource_url": DATASOURCE_URL,
            "http": http,
            "clock": clock,
            "jwks_refresh_interval_s": REFRESH_S,
        }
        options.update(overrides)
        return JwsVerifier(**options)

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., JwsVerifier]) -> JwsVerifier:
    return make_verifier()


async def rejected(verifier: JwsVerifier, token: str) -> str:
    """The reason ``token`` is refused (fails the test if it is accepted)."""
    with pytest.raises(JwsError) as caught:
        await verifier.verify(token)
    return caught.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HMAC-signed token built by hand (PyJWT refuses a PEM as an HMAC secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# -- accepted ------------------------------------------------------------------------------


async def test_valid_token_gives_claims_and_keys_are_cached(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    token = broker.mint(broker.claims(now=NOW))
    claims = await verifier.verify(token)
    assert claims.org_id == ORG_ID
    assert claims.issuer == broker.issuer()
    assert (claims.subject, claims.audience, claims.jti) == (
        "byova-media",
        "byova-media-test",
        "nonce-123456",
    )
    assert claims.expires_at == NOW + 3600
    assert claims.raw["com.cisco.datasource.schema.uuid"] == BYOVA_SCHEMA_ID
    await verifier.verify(token)
    assert broker.fetches() == 1


@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer ", "  Bearer  "])
async def test_bearer_prefix_is_optional(
    broker: FakeIdBroker, verifier: JwsVerifier, prefix: str
) -> None:
    claims = await verifier.verify(prefix + broker.mint(broker.claims(now=NOW)))
    assert claims.org_id == ORG_ID


async def test_default_issuers_are_the_official_https_brokers() -> None:
    assert "https://idbroker.webex.com/idb" in DEFAULT_ISSUERS
    assert "https://idbroker-eu.webex.com/idb" in DEFAULT_ISSUERS
    assert all(issuer.startswith("https://") for issuer in DEFAULT_ISSUERS)


async def test_leeway_accepts_small_clock_skew(broker: FakeIdBroker, verifier: JwsVerifier) -> None:
    token = broker.mint(broker.claims(now=NOW, exp=int(NOW) - 30, iat=int(NOW) + 30))
    assert (await verifier.verify(token)).org_id == ORG_ID


async def test_single_element_audience_list_is_accepted(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    claims = await verifier.verify(broker.mint(broker.claims(now=NOW, aud=["aud-1"])))
    assert claims.audience == "aud-1"


# -- time and claims -----------------------------------------------------------------------


async def test_expired_token_is_refused(broker: FakeIdBroker, verifier: JwsVerifier) -> None:
    token = broker.mint(broker.claims(now=NOW - 3600 - 120))
    assert await rejected(verifier, token) == "expired"


async def test_token_issued_in_the_future_is_refused(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    token = broker.mint(broker.claims(now=NOW, iat=int(NOW) + 600))
    assert await rejected(verifier, token) == "iat_future"


async def test_not_before_in_the_future_is_refused(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    token = broker.mint(broker.claims(now=NOW, nbf=int(NOW) + 600))
    assert await rejected(verifier, token) == "not_yet_valid"


@pytest.mark.parametrize(
    "override",
    [
        {"aud": None},
        {"aud": ""},
        {"aud": ["a", "b"]},
        {"sub": None},
        {"sub": ""},
        {"jti": None},
        {"jti": 123456},
        {"org": None},
        {"org": ""},
        {"exp": None},
        {"exp": "soon"},
        {"iat": None},
        {"iat": True},
    ],
    ids=repr,
)
async def test_missing_or_empty_required_claims_are_refused(
    broker: FakeIdBroker, verifier: JwsVerifier, override: dict[str, Any]
) -> None:
    assert await rejected(verifier, broker.mint(broker.claims(now=NOW, **override))) == "claims"


@pytest.mark.parametrize(
    "url",
    [
        "https://media.example.test:443/byova",
        "https://media.example.test/byova/",
        "https://MEDIA.example.test/byova",
        "http://media.example.test/byova",
        None,
    ],
)
async def test_datasource_url_must_match_exactly(
    broker: FakeIdBroker, verifier: JwsVerifier, url: str | None
) -> None:
    token = broker.mint(broker.claims(now=NOW, url=url))
    assert await rejected(verifier, token) == "datasource_url"


@pytest.mark.parametrize("schema", ["523e1b7f-4693-47bc-b84e-a7b7a505fb0b", None])
async def test_other_schema_is_refused(
    broker: FakeIdBroker, verifier: JwsVerifier, schema: str | None
) -> None:
    assert await rejected(verifier, broker.mint(broker.claims(now=NOW, schema=schema))) == "schema"


async def test_org_allow_list(
    broker: FakeIdBroker, make_verifier: Callable[..., JwsVerifier]
) -> None:
    asked: list[str] = []

    async def only_known(org_id: str) -> bool:
        asked.append(org_id)
        return org_id == ORG_ID

    verifier = make_verifier(org_allowed=only_known)
    assert (await verifier.verify(broker.mint(broker.claims(now=NOW)))).org_id == ORG_ID
    stranger = broker.mint(broker.claims(now=NOW, org=str(uuid.uuid4())))
    assert await rejected(verifier, stranger) == "org"
    assert asked[0] == ORG_ID
    assert len(asked) == 2


async def test_org_lookup_failure_fails_closed(
    broker: FakeIdBroker, make_verifier: Callable[..., JwsVerifier]
) -> None:
    async def broken(org_id: str) -> bool:
        raise ConnectionError("store down")

    verifier = make_verifier(org_allowed=broken)
    assert await rejected(verifier, broker.mint(broker.claims(now=NOW))) == "org_lookup"


# -- issuer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    ["other", "https://attacker.example/idb", "http://169.254.169.254/latest", None, 42],
)
async def test_unknown_issuer_is_refused_before_any_fetch(
    broker: FakeIdBroker, verifier: JwsVerifier, issuer: object
) -> None:
    iss = broker.issuer("other") if issuer == "other" else issuer
    token = broker.mint(broker.claims(now=NOW, iss=iss))
    assert await rejected(verifier, token) == "issuer"
    assert broker.total_fetches() == 0


async def test_each_issuer_has_its_own_keys(
    broker: FakeIdBroker, make_verifier: Callable[..., JwsVerifier]
) -> None:
    verifier = make_verifier(issuers=[broker.issuer(), broker.issuer("eu")])
    assert (await verifier.verify(broker.mint(broker.claims(now=NOW)))).issuer == broker.issuer()
    eu = await verifier.verify(broker.mint(broker.claims("eu", now=NOW), name="eu"))
    assert eu.issuer == broker.issuer("eu")
    # A token claiming the EU issuer but signed with the US key (and its kid) is refused.
    forged = broker.mint(broker.claims("eu", now=NOW), key=broker.key())
    assert await rejected(verifier, forged) == "kid"
    assert (broker.fetches(), broker.fetches("eu")) == (1, 1)


# -- keys ----------------------------------------------------------------------------------


async def test_rotated_keys_are_fetched_on_unknown_kid(
    broker: FakeIdBroker, verifier: JwsVerifier, clock: Clock
) -> None:
    old_token = broker.mint(broker.claims(now=NOW))
    await verifier.verify(old_token)
    clock.now += REFRESH_S + 1
    broker.rotate()
    new_token = broker.mint(broker.claims(now=clock.now))
    assert (await verifier.verify(new_token)).org_id == ORG_ID
    assert broker.fetches() == 2
    # The old key is gone from the broker, hence from the cache: no fallback to the new key.
    assert await rejected(verifier, old_token) == "kid"


async def test_unknown_kid_flood_is_rate_limited(
    broker: FakeIdBroker, verifier: JwsVerifier, clock: Clock
) -> None:
    await verifier.verify(broker.mint(broker.claims(now=NOW)))
    clock.now += REFRESH_S + 1
    claims = broker.claims(now=clock.now)

    def random_kid() -> str:
        return broker.mint(claims, headers={"kid": str(uuid.uuid4())})

    reasons = await asyncio.gather(*(rejected(verifier, random_kid()) for _ in range(50)))
    assert set(reasons) == {"kid"}
    for _ in range(50):
        assert await rejected(verifier, random_kid()) == "kid"
    assert broker.fetches() == 2
    clock.now += REFRESH_S + 1
    assert await rejected(verifier, random_kid()) == "kid"
    assert broker.fetches() == 3


async def test_concurrent_cold_verifications_share_one_fetch(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    broker.delay_s = 0.2
    token = broker.mint(broker.claims(now=NOW))
    results = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    assert {claims.org_id for claims in results} == {ORG_ID}
    assert broker.fetches() == 1


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_cached_keys_survive_broker_errors_after_ttl(
    broker: FakeIdBroker, verifier: JwsVerifier, clock: Clock, status: int
) -> None:
    await verifier.verify(broker.mint(broker.claims(now=NOW)))
    clock.now += 3600 + 1
    broker.fail_next(status)
    token = broker.mint(broker.claims(now=clock.now))
    assert (await verifier.verify(token)).org_id == ORG_ID
    assert broker.fetches() == 2
    # Still stale, but the rate limit holds back the next attempt.
    await verifier.verify(token)
    assert broker.fetches() == 2
    clock.now += REFRESH_S + 1
    await verifier.verify(token)
    assert broker.fetches() == 3


async def test_cached_keys_survive_broker_unreachable(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    async with FakeIdBroker() as broker:
        verifier = JwsVerifier(
            issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http, clock=clock
        )
        await verifier.verify(broker.mint(broker.claims(now=NOW)))
    clock.now += 7200
    token = broker.mint(broker.claims(now=clock.now))
    assert (await verifier.verify(token)).org_id == ORG_ID


async def test_no_keys_and_broker_failing_is_jwks_unavailable(
    broker: FakeIdBroker, verifier: JwsVerifier, clock: Clock
) -> None:
    broker.fail_next(500)
    token = broker.mint(broker.claims(now=NOW))
    assert await rejected(verifier, token) == "jwks_unavailable"
    clock.now += REFRESH_S + 1
    assert (await verifier.verify(broker.mint(broker.claims(now=clock.now)))).org_id == ORG_ID


async def test_key_is_chosen_by_kid_only(broker: FakeIdBroker, verifier: JwsVerifier) -> None:
    other = broker.rotate(keep_old=True)
    first = broker.published()[0]
    # Signed by the second key but naming the first: must fail, not try the other key.
    token = broker.mint(broker.claims(now=NOW), key=other, headers={"kid": first.kid})
    assert await rejected(verifier, token) == "signature"


async def test_unpublished_key_is_refused(broker: FakeIdBroker, verifier: JwsVerifier) -> None:
    stranger = new_signing_key()
    assert await rejected(verifier, broker.mint(broker.claims(now=NOW), key=stranger)) == "kid"


# -- algorithms ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(broker: FakeIdBroker, verifier: JwsVerifier, alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": broker.key().kid}).encode())
    payload = b64(json.dumps(broker.claims(now=NOW)).encode())
    assert await rejected(verifier, f"{header}.{payload}.") == "alg"
    assert broker.fetches() == 0


async def test_hs256_signed_with_the_public_key_is_refused(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    await verifier.verify(broker.mint(broker.claims(now=NOW)))  # keys are cached
    secret = broker.key().public_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": broker.key().kid}
    assert await rejected(verifier, hs256_token(header, broker.claims(now=NOW), secret)) == "alg"
    # Claiming RS256 in the header while carrying an HMAC signature fails the signature check.
    header["alg"] = "RS256"
    forged = hs256_token(header, broker.claims(now=NOW), secret)
    assert await rejected(verifier, forged) == "signature"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256"])
async def test_other_algorithms_are_refused(
    broker: FakeIdBroker, verifier: JwsVerifier, alg: str
) -> None:
    header = b64(json.dumps({"alg": alg, "kid": broker.key().kid}).encode())
    payload = b64(json.dumps(broker.claims(now=NOW)).encode())
    assert await rejected(verifier, f"{header}.{payload}.c2ln") == "alg"


async def test_jwk_advertising_another_alg_is_not_used(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    async with FakeIdBroker(key=new_signing_key(jwk_alg="RS512")) as broker:
        verifier = JwsVerifier(
            issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http, clock=clock
        )
        assert await rejected(verifier, broker.mint(broker.claims(now=NOW))) == "key_alg"


@pytest.mark.parametrize("bits", [512, 1024, 2047])
async def test_rsa_keys_under_2048_bits_are_refused(
    http: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture, bits: int
) -> None:
    weak = new_signing_key(key_size=bits)
    async with FakeIdBroker(key=weak) as broker:
        verifier = JwsVerifier(
            issuers=[broker.issuer()], datasource_url=DATASOURCE_URL, http=http, clock=clock
        )
        # PyJWT only warns when signing or verifying with a short key; we refuse outright.
        with pytest.warns(jwt.InsecureKeyLengthWarning):
            token = broker.mint(broker.claims(now=NOW))
        assert await rejected(verifier, token) == "key_size"
    assert f"{bits}-bit RSA" in caplog.text


async def test_weak_key_beside_a_strong_one_only_refuses_its_own_tokens(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    strong, weak = broker.key(), new_signing_key(key_size=1024)
    broker.publish(weak)
    token = broker.mint(broker.claims(now=NOW), key=strong)
    assert (await verifier.verify(token)).org_id == ORG_ID
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        token = broker.mint(broker.claims(now=NOW), key=weak)
    assert await rejected(verifier, token) == "key_size"


async def test_tampered_payload_is_refused(broker: FakeIdBroker, verifier: JwsVerifier) -> None:
    header, _, signature = broker.mint(broker.claims(now=NOW)).split(".")
    payload = b64(json.dumps(broker.claims(now=NOW, org=str(uuid.uuid4()))).encode())
    assert await rejected(verifier, f"{header}.{payload}.{signature}") == "signature"


# -- secrecy -------------------------------------------------------------------------------


async def test_tokens_never_reach_the_logs(
    broker: FakeIdBroker, verifier: JwsVerifier, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [
        broker.mint(broker.claims(now=NOW)),
        broker.mint(broker.claims(now=NOW - 7200)),
        broker.mint(broker.claims(now=NOW, url="https://elsewhere.test")),
        broker.mint(broker.claims(now=NOW), headers={"kid": "nope"}),
    ]
    await verifier.verify(tokens[0])
    for token in tokens[1:]:
        await rejected(verifier, token)
    clock.now += 7200
    broker.fail_next(500)
    await verifier.verify(broker.mint(broker.claims(now=clock.now)))
    assert caplog.records  # the JWKS fetches and the failure were logged
    for token in tokens:
        for part in token.split("."):
            assert part not in caplog.text
    assert "nope" not in repr(verifier)


def test_configuration_errors_are_explained() -> None:
    http = httpx.AsyncClient()
    with pytest.raises(ValueError, match="datasource_url"):
        JwsVerifier(issuers=DEFAULT_ISSUERS, datasource_url="", http=http)
    with pytest.raises(ValueError, match="allow-list"):
        JwsVerifier(issuers=[], datasource_url=DATASOURCE_URL, http=http)


# -- fuzz ----------------------------------------------------------------------------------

# Structured inputs name an allow-listed issuer on a bound but non-listening port: those that
# reach the key fetch fail fast there (connection refused), so every stage is exercised.
_FUZZ_ISSUER_TEMPLATE = "http://127.0.0.1:{port}/idb"
_REASONS = {
    "missing",
    "malformed",
    "alg",
    "issuer",
    "kid",
    "key_alg",
    "key_size",
    "jwks_unavailable",
    "signature",
    "expired",
    "iat_future",
    "not_yet_valid",
    "claims",
    "datasource_url",
    "schema",
    "org",
    "org_lookup",
}

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def _structured_tokens(draw: st.DrawFn, issuer: str) -> str:
    header = draw(
        st.fixed_dictionaries(
            {"alg": st.sampled_from(["RS256", "none", "HS256"]) | st.text()},
            optional={"kid": st.text() | _json_values, "typ": st.just("JWT")},
        )
    )
    claims = draw(
        st.fixed_dictionaries(
            {"iss": st.just(issuer) | _json_values},
            optional={
                "exp": _json_values,
                "com.cisco.datasource.url": st.just(DATASOURCE_URL) | st.text(),
            },
        )
    )
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())]
    parts.append(draw(st.text(alphabet="abcXYZ012-_", max_size=40)))
    prefix = draw(st.sampled_from(["", "Bearer ", "bearer"]))
    return prefix + ".".join(parts)


def test_fuzzed_authorization_values_only_raise_jws_error() -> None:
    with asyncio.Runner() as runner, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        issuer = _FUZZ_ISSUER_TEMPLATE.format(port=closed.getsockname()[1])
        http = httpx.AsyncClient(timeout=1.0)
        verifier = JwsVerifier(issuers=[issuer], datasource_url=DATASOURCE_URL, http=http)

        @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            st.text()
            | st.binary().map(lambda raw: raw.decode("latin-1"))
            | _structured_tokens(issuer)
        )
        def check(value: str) -> None:
            with pytest.raises(JwsError) as caught:
                runner.run(verifier.verify(value))
            assert caught.value.reason in _REASONS

        try:
            check()
        finally:
            runner.run(http.aclose())


async def test_malformed_jwks_entries_are_skipped(
    broker: FakeIdBroker, verifier: JwsVerifier
) -> None:
    good = broker.key()
    broken = new_signing_key()
    broker.publish(broken)
    # Corrupt the broken key's modulus in what the broker serves.
    original = broken.public_jwk

    def corrupt() -> dict[str, Any]:
        return {**original(), "n": "!!not base64!!"}

    object.__setattr__(broken, "public_jwk", corrupt)
    assert (await verifier.verify(broker.mint(broker.claims(now=NOW), key=good))).org_id == ORG_ID
    token = broker.mint(broker.claims(now=NOW), key=broken)
    assert await rejected(verifier, token) == "key_alg"
