"""SQL over stored objects: an fsspec filesystem over the engine and DuckDB on it (issue 17)."""
