"""Every typed key of the node's aiohttp application, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

NODE = web.AppKey["Node"]("node")
# Listener name ("agency", "peer") -> local port, filled in when the sites start.
LISTENERS = web.AppKey("listeners", dict[str, int])
# The raw body of a peer request, kept for the answer signature (answers.py).
REQUEST_BODY = web.RequestKey("body", bytes)
