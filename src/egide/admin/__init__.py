"""What an administrator asks of a running store, shared by the `egide` command and the admin API:
which sites hold what and answer how, which policy a bucket follows and why, whether what is
stored obeys it (the proofs of `egide policy check`), and what it costs.

Nothing here needs the keys: it reads the catalog, the configuration and the shard files'
unencrypted framing (headers, checksums), never their content.
"""
