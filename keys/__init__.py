"""Keys, key files, the Party directory and signatory lists. Never imports gateway."""
