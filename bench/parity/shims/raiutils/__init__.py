"""Shim for the parity harness: raiutils is not packaged by Debian (see ../README.md)."""
