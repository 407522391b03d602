"""PeerCredential: tokens only this process can mint, that expire."""

from __future__ import annotations

from byova_media.peer import PEER_TOKEN_PREFIX, PeerCredential


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_verifies_where_it_was_issued_only() -> None:
    mine, other = PeerCredential(), PeerCredential()
    token = mine.issue()
    assert token.startswith(PEER_TOKEN_PREFIX)
    assert mine.verify(token)
    assert not other.verify(token)


def test_tokens_expire() -> None:
    clock = Clock()
    peer = PeerCredential(clock=clock)
    token = peer.issue(ttl_s=60)
    clock.now += 59
    assert peer.verify(token)
    clock.now += 2
    assert not peer.verify(token)


def test_tampered_and_foreign_values_are_refused() -> None:
    peer = PeerCredential()
    token = peer.issue()
    body, _, signature = token.rpartition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for value in (
        f"{body}.{flipped}",
        token.replace(PEER_TOKEN_PREFIX, PEER_TOKEN_PREFIX + "x"),
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig",
        PEER_TOKEN_PREFIX,
        f"{PEER_TOKEN_PREFIX}not-base64!.{signature}",
        "",
    ):
        assert not peer.verify(value), value


def test_the_key_never_shows() -> None:
    assert repr(PeerCredential()) == "PeerCredential(key=<redacted>)"
