"""Égide: a sovereign data cloud behind the S3 API."""

__version__ = "0.1.0"
