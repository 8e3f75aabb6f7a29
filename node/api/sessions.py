"""Login sessions of the web console, in memory (a restart of the node logs everyone out):
a session cookie with a CSRF token, ended by logout, by ``[http] session_idle_minutes``
without a request, by a changed password or a removed user; and the lockout of a user name
after ``[http] lockout_failures`` failed logins in a row, for ``lockout_minutes``. Unknown
names are counted and locked exactly like real ones, so answers never tell which names exist.
Times are the node's clock in milliseconds (tests set it)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass

from domain.i18n import _

COOKIE = "anjian_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 10_000  # past this, the least recently used session ends
MAX_NAMES = 10_000  # names with failed logins remembered; past this, half are forgotten
CHECKS = 2  # password checks at once (argon2id: 64 MiB and ~0.2 s of a core each)
WAITING = 32  # logins waiting for a password check, beyond which one is answered busy


class SessionEnded(Exception):
    """The cookie names no live session; the message says why, for the user."""


@dataclass
class Session:
    user: str
    csrf: str
    password: str  # the user's password hash at login: a new password ends the session
    last_ms: int  # the last request


@dataclass
class _Attempts:
    failures: int = 0  # in a row, counting the attempt under way
    locked_until: int = 0
    told: bool = False  # a refusal during this lockout is in the access log already


class Sessions:
    def __init__(self, idle_minutes: int, lockout_failures: int, lockout_minutes: int) -> None:
        self.idle_ms = idle_minutes * 60_000
        self.idle_minutes = idle_minutes
        self.lockout_failures = lockout_failures
        self.lockout_ms = lockout_minutes * 60_000
        self._sessions: dict[str, Session] = {}  # by the SHA-256 of the cookie's value
        self._attempts: dict[str, _Attempts] = {}
        # a flood of logins under made-up names queues here instead of taking the memory, and
        # beyond WAITING waiting ones is answered "busy" before it costs anything
        self.checks = asyncio.Semaphore(CHECKS)
        self.waiting = 0

    # -- logins ---------------------------------------------------------------------------------
    def attempt(self, name: str, now: int) -> int | None:
        """Start a login attempt for ``name``: the time its lockout ends if it is locked (the
        attempt is refused), else None. The attempt counts as failed until
        :meth:`succeeded` says otherwise, so that parallel guesses cannot pass the limit."""
        key = name[:128]
        state = self._attempts.get(key)
        if state is not None and state.locked_until:
            if now < state.locked_until:
                return state.locked_until
            state = self._attempts[key] = _Attempts()  # the lockout is over: a fresh count
        if state is None:
            self._forget_some()
            state = self._attempts[key] = _Attempts()
        state.failures += 1
        if state.failures >= self.lockout_failures:
            state.failures, state.locked_until = 0, now + self.lockout_ms
        return None

    def first_refusal(self, name: str) -> bool:
        """Whether this is the first refused attempt of ``name``'s lockout (the one the access
        log records: the others would only fill the disk)."""
        state = self._attempts.get(name[:128])
        if state is None or state.told:
            return False
        state.told = True
        return True

    def succeeded(self, name: str) -> None:
        self._attempts.pop(name[:128], None)

    def _forget_some(self) -> None:
        """Past MAX_NAMES names, forget half: those with the fewest failures first (made-up
        names tried once go before a real name's run of failures), locked names last."""
        if len(self._attempts) < MAX_NAMES:
            return
        order = sorted(
            self._attempts,
            key=lambda k: (self._attempts[k].locked_until, self._attempts[k].failures),
        )
        for key in order[: len(order) - MAX_NAMES // 2]:
            del self._attempts[key]

    # -- sessions -------------------------------------------------------------------------------
    def open(self, user: str, password_hash: str, now: int) -> tuple[str, Session]:
        """A new session: the cookie's value (shown once, kept as its digest) and the session."""
        self._sweep(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].last_ms)
            del self._sessions[oldest]
        cookie = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), password_hash, now)
        self._sessions[_key(cookie)] = session
        return cookie, session

    def touch(self, cookie: str, now: int) -> Session:
        """The session a request's cookie names, its idle time restarted; SessionEnded if
        there is none or it was idle too long."""
        key = _key(cookie)
        session = self._sessions.get(key)
        if session is None:
            raise SessionEnded(
                _(
                    "no such session (it ended with a logout, a password change or a restart "
                    "of the node): log in again"
                )
            )
        if now - session.last_ms >= self.idle_ms:
            del self._sessions[key]
            raise SessionEnded(
                _(
                    "the session ended after {minutes} minutes without a request: log in again",
                    minutes=self.idle_minutes,
                )
            )
        session.last_ms = now
        return session

    def close(self, cookie: str) -> None:
        self._sessions.pop(_key(cookie), None)

    def _sweep(self, now: int) -> None:
        idle = [k for k, s in self._sessions.items() if now - s.last_ms >= self.idle_ms]
        for key in idle:
            del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()
