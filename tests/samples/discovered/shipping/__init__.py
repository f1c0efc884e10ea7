"""Shipping: its actors are in the tasks package."""
