"""Chain of custody and accountability: audit events, the ledger and its verifiers."""
