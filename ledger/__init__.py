"""The append-only Merkle ledger: storage, checkpoints, proofs, offline audit.

Never imports gateway: an auditor needs only this package.
"""
