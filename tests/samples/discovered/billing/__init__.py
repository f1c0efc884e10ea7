"""Billing: its actors are in tasks.py."""
