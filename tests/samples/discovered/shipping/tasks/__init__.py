"""A ``tasks`` package: discovery imports it and every module in it."""
