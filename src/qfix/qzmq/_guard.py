"""Server admission control: cookies, token buckets, nets and known nets (docs/qzmq.md §3.5).

Theory of operation. Before the server spends ML-KEM or ML-DSA work on a hello it
must (a) have a valid cookie if one is required, (b) pass the cheap checks, and (c)
find a token in the hello bucket of the peer's *net* (IPv4 address or IPv6 /64) and
in the global bucket. Nets where a client authenticated recently are "known" and
draw from a reserved bucket instead of the global one, so a flood from strangers
can empty the global bucket without locking out recent clients. Cookies are
stateless MACs under a rotating key; only *accepted* cookies are remembered (to
refuse their reuse), and those cost tokens, so the memory is bounded by the rates.
All times are the caller's monotonic ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from qfix.qzmq import _schedule as ks
from qfix.qzmq._constants import (
    COOKIE_KEY_ROTATION,
    COOKIE_LEN,
    COOKIE_LIFETIME,
    KNOWN_NET_TTL,
    KNOWN_NETS_PER_KID,
)
from qfix.qzmq._util import Copyable

__all__ = ["Guard", "TokenBucket", "net_of"]


_NETS: dict[str, str] = {}
_NETS_MAX = 4096


def net_of(peer: str) -> str:
    """The rate-limit unit of a peer address: IPv4 address or IPv6 /64 (text).
    (Remembered for up to 4,096 addresses: parsing costs more than the rest of a
    refused hello's checks.)"""
    net = _NETS.get(peer)
    if net is None:
        if len(_NETS) >= _NETS_MAX:
            _NETS.clear()
        net = _NETS[peer] = _net_of(peer)
    return net


def _net_of(peer: str) -> str:
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class TokenBucket(Copyable):
    """``rate`` tokens per second up to ``burst``; starts full."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class Guard(Copyable):
    """Cookie keys, used cookies, hello buckets and known nets of one server."""

    __slots__ = (
        "_buckets",
        "_global",
        "_k_created",
        "_k_cur",
        "_k_prev",
        "_known",
        "_known_bucket",
        "_known_by_net",
        "_net_rate",
        "_rng",
        "_used",
        "_used_purge",
    )

    def __init__(
        self,
        *,
        net_rate: tuple[float, float],
        total_rate: tuple[float, float],
        known_rate: tuple[float, float],
        rng: Callable[[int], bytes],
        now: float,
    ) -> None:
        self._rng = rng
        self._k_cur = rng(32)
        self._k_prev = rng(32)  # random, so nothing verifies under it before a rotation
        self._k_created = now
        self._used: dict[bytes, float] = {}
        self._used_purge = now + COOKIE_LIFETIME
        self._net_rate = net_rate
        self._buckets: dict[str, TokenBucket] = {}
        self._global = TokenBucket(*total_rate, now)
        self._known_bucket = TokenBucket(*known_rate, now)
        # kid -> {net: expiry}, insertion order = age (oldest first)
        self._known: dict[bytes, dict[str, float]] = {}
        # the same facts indexed by net (net -> {kid: expiry}): a hello's lookup costs
        # O(kids known in its net), not O(allow-list)
        self._known_by_net: dict[str, dict[bytes, float]] = {}

    # --- cookies ----------------------------------------------------------------------

    def _rotate(self, now: float) -> None:
        if now - self._k_created >= 2 * COOKIE_KEY_ROTATION:
            self._k_prev = self._rng(32)
            self._k_cur = self._rng(32)
            self._k_created = now
        elif now - self._k_created >= COOKIE_KEY_ROTATION:
            self._k_prev = self._k_cur
            self._k_cur = self._rng(32)
            self._k_created += COOKIE_KEY_ROTATION

    def make_cookie(self, now: float, peer: bytes, routing_id: bytes, body: bytes) -> bytes:
        self._rotate(now)
        return ks.cookie_mac(self._k_cur, int(now), peer, routing_id, body)

    def cookie_valid(self, cookie: bytes, now: float, peer: bytes, routing_id: bytes, body: bytes) -> bool:
        """MAC under the current or previous key, age <= 60 s, never accepted before."""
        if len(cookie) != COOKIE_LEN:
            return False
        self._rotate(now)
        ts = int.from_bytes(cookie[:4], "big")
        if (int(now) - ts) & 0xFFFF_FFFF > COOKIE_LIFETIME:
            return False
        ok = False
        for key in (self._k_cur, self._k_prev):
            ok |= hmac.compare_digest(ks.cookie_mac(key, ts, peer, routing_id, body), cookie)
        if not ok:
            return False
        exp = self._used.get(cookie)
        return exp is None or exp <= now

    def record_cookie(self, cookie: bytes, now: float) -> None:
        ts = int.from_bytes(cookie[:4], "big")
        age = (int(now) - ts) & 0xFFFF_FFFF
        # remembered until it could no longer pass the age check
        self._used[cookie] = now + (COOKIE_LIFETIME - age) + 1
        if now >= self._used_purge:
            self._used = {c: e for c, e in self._used.items() if e > now}
            self._used_purge = now + COOKIE_LIFETIME

    # --- buckets ----------------------------------------------------------------------

    def is_known(self, net: str, now: float, allowed: Callable[[bytes], bool]) -> bool:
        kids = self._known_by_net.get(net)
        if not kids:
            return False
        return any(exp > now and allowed(kid) for kid, exp in kids.items())

    def known_nets(self, now: float, allowed: Callable[[bytes], bool]) -> list[str]:
        """Every net :meth:`is_known` holds known now."""
        return [net for net in self._known_by_net if self.is_known(net, now, allowed)]

    def can_admit(self, net: str, known: bool, now: float) -> bool:
        """Whether :meth:`admit` would succeed now (takes nothing)."""
        bucket = self._buckets.get(net)
        shared = self._known_bucket if known else self._global
        return (bucket is None or bucket.available(now)) and shared.available(now)

    def admit(self, net: str, known: bool, now: float) -> bool:
        """Take a token from the net's bucket and the global (or known) one, or refuse."""
        bucket = self._buckets.get(net)
        if bucket is None:
            if len(self._buckets) >= 4096:
                # a full bucket is the same as none: forget those to bound memory
                self._buckets = {n: b for n, b in self._buckets.items() if not b.full(now)}
            bucket = TokenBucket(*self._net_rate, now)
            self._buckets[net] = bucket
        shared = self._known_bucket if known else self._global
        if not bucket.available(now) or not shared.available(now):
            return False
        bucket.take()
        shared.take()
        return True

    def remember(self, kid: bytes, net: str, now: float) -> None:
        """A CLIENT_AUTH from ``kid`` verified from ``net``."""
        nets = self._known.setdefault(kid, {})
        nets.pop(net, None)
        nets[net] = exp = now + KNOWN_NET_TTL
        self._known_by_net.setdefault(net, {})[kid] = exp
        while len(nets) > KNOWN_NETS_PER_KID:
            oldest = next(iter(nets))
            del nets[oldest]
            self._unindex(oldest, kid)

    def _unindex(self, net: str, kid: bytes) -> None:
        kids = self._known_by_net.get(net)
        if kids is not None:
            kids.pop(kid, None)
            if not kids:
                del self._known_by_net[net]

    def forget_kids(self, keep: Callable[[bytes], bool]) -> None:
        """Drop known nets of kids that left the allow-list."""
        for kid in [k for k in self._known if not keep(k)]:
            for net in self._known.pop(kid):
                self._unindex(net, kid)
