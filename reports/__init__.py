"""Anonymised send reports (issue: reports): aggregates with small-cell suppression."""
