"""Console sessions: a bearer token exchanged once for a cookie, and the guard on logins.

A session lives in the daemon's memory only (a restart logs everyone out: the safer
choice, nothing to steal from disk). It carries the token's hash, so a revoked token ends
its sessions at their next request, and a CSRF token that every state-changing request
made with the cookie must echo in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

COOKIE = "ferry_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 8 * 3600  # a working night, then log in again
IDLE_SECONDS = 3600
MAX_SESSIONS = 1000
LOGIN_FAILURES = 5  # per client address and LOGIN_WINDOW, then 429 until the window passes
LOGIN_WINDOW = 60.0


@dataclass
class Session:
    id: str
    token_sha256: str
    csrf: str
    created: float
    seen: float
    expires: float

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf, given or "")


@dataclass
class SessionStore:
    """The sessions of this daemon, and the failed logins of each client address."""

    lifetime: float = SESSION_SECONDS
    idle: float = IDLE_SECONDS
    _sessions: dict[str, Session] = field(default_factory=dict)
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    @staticmethod
    def _key(session_id: str) -> str:
        # Stored by hash: a memory dump or a debug print does not hand out live cookies.
        return hashlib.sha256(session_id.encode()).hexdigest()

    def open(self, token_sha256: str, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        self._expire(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].seen)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        session = Session(
            id=session_id,
            token_sha256=token_sha256,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
            expires=now + self.lifetime,
        )
        self._sessions[self._key(session_id)] = session
        return session

    def get(self, session_id: str, now: float | None = None) -> Session | None:
        now = time.time() if now is None else now
        session = self._sessions.get(self._key(session_id))
        if session is None:
            return None
        if now >= session.expires or now - session.seen > self.idle:
            del self._sessions[self._key(session_id)]
            return None
        session.seen = now
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(self._key(session_id), None)

    def _expire(self, now: float) -> None:
        gone = [
            k for k, s in self._sessions.items() if now >= s.expires or now - s.seen > self.idle
        ]
        for key in gone:
            del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)

    # ------------------------------------------------------------------ failed logins

    def login_blocked(self, address: str, now: float | None = None) -> float:
        """Seconds until address may try again (0: now)."""
        now = time.time() if now is None else now
        seen = self._failures.get(address)
        if not seen:
            return 0.0
        while seen and now - seen[0] > LOGIN_WINDOW:
            seen.popleft()
        if not seen:
            del self._failures[address]
            return 0.0
        return LOGIN_WINDOW - (now - seen[0]) if len(seen) >= LOGIN_FAILURES else 0.0

    def login_failed(self, address: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if len(self._failures) > 10000:  # a spray from many addresses: forget the oldest
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, deque(maxlen=LOGIN_FAILURES)).append(now)
