"""The `facompress` command line (installed as `fa_compress.cli`)."""
