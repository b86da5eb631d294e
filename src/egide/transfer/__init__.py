"""Leaving and entering Égide: `egide export` copies every object (versions, tags, locks) to a
directory or any S3 endpoint, `egide import` brings them back in from either.

Both are resumable jobs run by the command that holds the other side's credentials (never the
catalog); `shared.py` holds what they share (locations, cursor, finding the job to resume).
"""
