"""Shard inspection without keys: which shard files a version has on which site (scan), and
whether a file's unencrypted framing and checksums hold (verify).

Shared by the proofs of `egide policy check` (admin) and by scrub and repair (maintenance), so
it sits below both.
"""
