"""The ``streamflow`` command."""
