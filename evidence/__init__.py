"""Evidence domain: items, derivatives, incidents, tags, access policy and their ports."""
