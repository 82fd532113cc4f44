"""The prospect base: versioned Parquet snapshots (attributes + encrypted contacts) and manifest."""
