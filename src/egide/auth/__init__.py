"""Who is asking, and may they: SigV4 verification, credential lookup, and the one
`authorize` hook every request of every mounted app passes (see authorize.py)."""
