"""Database adapters of the audit package."""
