"""The KZ-BY exchange gateway: envelopes, SDK, nodes, agreement rules, CLI."""
