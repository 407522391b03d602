"""Peer credentials: bound to one conversation, short-lived, signed with the cluster secret."""

from __future__ import annotations

import pytest

from byova_media.cluster.credential import TOKEN_TTL_S, PeerAuthError, PeerCredential

SECRET = "a-cluster-secret-of-some-length"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_opens_its_own_conversation() -> None:
    credential = PeerCredential(SECRET)
    credential.verify(credential.sign("conv-1"), "conv-1")


@pytest.mark.parametrize(
    ("token", "reason"),
    [(None, "missing"), ("", "missing"), ("v1.notanumber.abc", "malformed"),
     ("v2.1.abc", "malformed"), ("garbage", "malformed")],
)  # fmt: skip
def test_malformed_tokens_are_refused_with_their_reason(token: str | None, reason: str) -> None:
    with pytest.raises(PeerAuthError) as info:
        PeerCredential(SECRET).verify(token, "conv-1")
    assert info.value.reason == reason


def test_a_token_is_bound_to_its_conversation() -> None:
    credential = PeerCredential(SECRET)
    with pytest.raises(PeerAuthError, match="bad_signature"):
        credential.verify(credential.sign("conv-1"), "conv-2")


def test_another_secret_cannot_sign() -> None:
    forged = PeerCredential("not-the-cluster-secret-at-all").sign("conv-1")
    with pytest.raises(PeerAuthError, match="bad_signature"):
        PeerCredential(SECRET).verify(forged, "conv-1")


def test_a_changed_expiry_breaks_the_signature() -> None:
    credential = PeerCredential(SECRET)
    version, expiry, mac = credential.sign("conv-1").split(".")
    with pytest.raises(PeerAuthError, match="bad_signature"):
        credential.verify(f"{version}.{int(expiry) + 60_000}.{mac}", "conv-1")


def test_tokens_expire() -> None:
    clock = Clock()
    credential = PeerCredential(SECRET, clock=clock)
    token = credential.sign("conv-1")
    clock.now += TOKEN_TTL_S - 1
    credential.verify(token, "conv-1")
    clock.now += 2
    with pytest.raises(PeerAuthError, match="expired"):
        credential.verify(token, "conv-1")


def test_the_secret_is_not_in_the_repr() -> None:
    assert SECRET not in repr(PeerCredential(SECRET))
