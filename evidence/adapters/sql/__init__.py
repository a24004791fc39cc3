"""SQLAlchemy models and repositories of the evidence domain."""

from evidence.adapters.sql.base import Base, metadata

__all__ = ["Base", "metadata"]
