"""The HTML interface: blueprints, request context and error pages."""
