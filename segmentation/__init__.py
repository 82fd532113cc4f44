"""Criteria to counts: bound-parameter DuckDB SQL over a base snapshot, with privacy-safe output."""
