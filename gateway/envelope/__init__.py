"""The sealed envelope: DER format, sealing, opening, and the node-side check."""
