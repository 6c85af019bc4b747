"""Data-items service: typed tables from CSV and Excel files over a REST API."""

__version__ = "0.1.0"
