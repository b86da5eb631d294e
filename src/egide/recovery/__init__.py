"""Catalog recovery: the catalog rebuilt from the pieces on the sites (rebuild, shardscan),
snapshots taken while serving, and a snapshot restored and brought up to date (restore).

None of it is on the data path; it runs from `egide catalog …` or the server's snapshot
schedule, and works on a catalog that is closed or about to be replaced.
"""
