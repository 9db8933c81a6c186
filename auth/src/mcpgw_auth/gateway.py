"""Everything a request handler needs, built once in `create_app` and held by the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcpgw_auth.grants import Grants
from mcpgw_auth.idp.base import IdentityProvider
from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.verification import AccessTokenVerifier, KeyManager, RevocationList
from mcpgw_auth.web.pages import Pages


@dataclass
class Gateway:
    settings: Settings
    store: Store
    keys: KeyManager
    revocations: RevocationList
    verifier: AccessTokenVerifier
    grants: Grants
    idp: IdentityProvider
    pages: Pages
    clock: Callable[[], float] = field(default=time.time)

    def now(self) -> int:
        return int(self.clock())
