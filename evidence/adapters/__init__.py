"""Adapters: the only place where storage and database libraries appear."""
