"""`POST /_egide/sql`: SQL over stored objects over HTTP, under the front door."""
