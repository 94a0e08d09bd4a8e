"""The management commands (``commands/``) and the base class they share (``base``)."""
