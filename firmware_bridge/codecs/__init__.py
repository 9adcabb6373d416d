"""Pure decoders: bytes from sensor firmware in, typed frames out (no I/O)."""
