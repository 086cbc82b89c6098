"""What a running app holds: settings, the object runtime and the procedure table."""

from __future__ import annotations

from dataclasses import dataclass

from dos.fork import ForkService
from dos.runtime import ObjectRuntime
from rpc.auth import TokenCache
from rpc.router import Router
from rpc.settings import Settings


@dataclass
class Services:
    settings: Settings
    runtime: ObjectRuntime
    router: Router
    forks: ForkService
    tokens: TokenCache
