"""The node: aiohttp server (agency and peer APIs), peer client, outbox, witness."""
