"""The store: the only Redis code below the runtime. Connection, key names, the Lua
scripts and their typed wrappers, reading logs, definitions, dead letters, and the
embedded server."""
