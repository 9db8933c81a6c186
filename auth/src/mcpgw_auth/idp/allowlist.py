"""Who may sign in: GitHub logins, organisations (`org:acme`) and teams (`team:acme/platform`), or everyone.

Parsing and the decision are pure; membership answers come from a `MembershipSource` (the GitHub API at login and
at each refresh-time re-check).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# GitHub logins and organisation names: letters, digits and single inner hyphens, at most 39 characters.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
_LOGIN = re.compile(_NAME)
_ORG = re.compile(rf"org:({_NAME})")
_TEAM = re.compile(rf"team:({_NAME})/([A-Za-z0-9_.-]{{1,100}})")


class MembershipSource(Protocol):
    async def in_org(self, org: str) -> bool:
        """Whether the signed-in user is an active member of `org`."""
        ...

    async def in_team(self, org: str, team: str, login: str) -> bool:
        """Whether `login` is an active member of team `team` of `org`."""
        ...


@dataclass(frozen=True)
class Allowlist:
    everyone: bool
    logins: frozenset[str]  # lowercased: GitHub logins are case-insensitive
    orgs: tuple[str, ...]
    teams: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, entries: Iterable[str], allow_all_users: bool) -> Allowlist:
        """Raise ValueError naming the first bad entry; `*` is accepted only with the explicit flag."""
        logins: set[str] = set()
        orgs: dict[str, None] = {}
        teams: dict[tuple[str, str], None] = {}
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                if not allow_all_users:
                    raise ValueError("`*` in the allowlist needs AUTH_ALLOW_ALL_USERS=true to let everyone in")
            elif match := _ORG.fullmatch(entry):
                orgs[match[1].lower()] = None
            elif match := _TEAM.fullmatch(entry):
                teams[(match[1].lower(), match[2].lower())] = None
            elif _LOGIN.fullmatch(entry):
                logins.add(entry.lower())
            else:
                raise ValueError(
                    f"allowlist entry {entry[:60]!r} is not a GitHub login, org:NAME or team:ORG/TEAM-SLUG"
                )
        return cls(allow_all_users, frozenset(logins), tuple(orgs), tuple(teams))

    @property
    def empty(self) -> bool:
        return not (self.everyone or self.logins or self.orgs or self.teams)

    @property
    def needs_membership(self) -> bool:
        """Whether deciding may take GitHub API calls (and so a user's GitHub token at refresh time)."""
        return not self.everyone and bool(self.orgs or self.teams)

    def allows_login(self, login: str) -> bool:
        return self.everyone or login.lower() in self.logins

    async def allows(self, login: str, members: MembershipSource) -> bool:
        """Logins first (no API call), then organisations, then teams; the first match decides."""
        if self.allows_login(login):
            return True
        for org in self.orgs:
            if await members.in_org(org):
                return True
        for org, team in self.teams:
            if await members.in_team(org, team, login):
                return True
        return False
