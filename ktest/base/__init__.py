"""Shared by every layer: errors and their exit codes, safe reading of outside files, safe text,
the cache, progress output, run records, where the checks live, shard arithmetic."""
