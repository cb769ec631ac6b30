"""The sealed envelope: DER format, sealing, opening, and the node-side check.

docs/protocol.md specifies it; the modules, in the order a newcomer might read them:

- ``limits``: every size and time bound;
- ``errors``: the ``envelope.*`` and ``body.*`` codes;
- ``kinds``: the kind registry (name, number, whether it opens a case);
- ``schema``: the ASN.1 module and its asn1crypto classes;
- ``der``: those classes' DER, written and read faster, byte for byte asn1crypto's;
- ``wire``: the header value and strict decoding of an envelope (R1-R10);
- ``fields`` and ``body``: the body schema language and one table per kind;
- ``check``: signatory policy, signature, and ``EnvelopeVerifier`` for nodes (R11-R13);
- ``seal``: sealing, and opening for the recipient (R14-R15).

Agency systems use ``gateway.sdk``, which wraps these.
"""
