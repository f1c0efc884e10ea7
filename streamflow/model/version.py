"""The engine's version, recorded in every submission (``WorkflowSubmitted``)."""

__version__ = "0.1.0"
