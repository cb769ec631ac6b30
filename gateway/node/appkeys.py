"""Every typed key of the node's aiohttp application, in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.node.service import Node

NODE = web.AppKey("node", Node)
# Listener name ("agency", "peer") -> local port, filled in when the sites start.
LISTENERS = web.AppKey("listeners", dict[str, int])
# The raw body of a peer request, kept for the answer signature (answers.py).
REQUEST_BODY = web.RequestKey("body", bytes)
