"""The allowlist decision on its own: parsing, case-insensitivity, and the order of the membership questions."""

from __future__ import annotations

import pytest
from mcpgw_auth.idp.allowlist import Allowlist

pytestmark = pytest.mark.anyio


class Members:
    """A MembershipSource answering from sets, recording the questions asked."""

    def __init__(self, orgs: set[str] | None = None, teams: set[tuple[str, str]] | None = None) -> None:
        self.orgs, self.teams = orgs or set(), teams or set()
        self.asked: list[str] = []

    async def in_org(self, org: str) -> bool:
        self.asked.append(f"org:{org}")
        return org in self.orgs

    async def in_team(self, org: str, team: str, login: str) -> bool:
        self.asked.append(f"team:{org}/{team}:{login}")
        return (org, team) in self.teams


def test_parsing_normalizes_case_and_duplicates() -> None:
    allowlist = Allowlist.parse(["Alice", "alice", "org:ACME", "org:acme", "team:Acme/Platform"], False)
    assert allowlist.logins == frozenset({"alice"})
    assert allowlist.orgs == ("acme",)
    assert allowlist.teams == (("acme", "platform"),)
    assert allowlist.needs_membership
    assert not allowlist.empty


def test_logins_only_never_need_membership() -> None:
    allowlist = Allowlist.parse(["alice", "bob"], False)
    assert not allowlist.needs_membership
    assert Allowlist.parse([], False).empty
    assert not Allowlist.parse([], True).empty
    assert not Allowlist.parse(["org:acme"], True).needs_membership  # everyone: nothing to check


async def test_a_login_decides_without_asking() -> None:
    members = Members()
    assert await Allowlist.parse(["ALICE", "org:acme"], False).allows("alice", members)
    assert members.asked == []


async def test_orgs_then_teams_first_match_wins() -> None:
    allowlist = Allowlist.parse(["org:one", "org:two", "team:three/core"], False)
    members = Members(orgs={"two"})
    assert await allowlist.allows("bob", members)
    assert members.asked == ["org:one", "org:two"]
    members = Members(teams={("three", "core")})
    assert await allowlist.allows("Bob", members)
    assert members.asked == ["org:one", "org:two", "team:three/core:Bob"]
    members = Members()
    assert not await allowlist.allows("bob", members)


async def test_everyone() -> None:
    assert await Allowlist.parse(["*"], True).allows("whoever", Members())


def test_star_needs_the_flag() -> None:
    with pytest.raises(ValueError, match="AUTH_ALLOW_ALL_USERS"):
        Allowlist.parse(["*"], False)
