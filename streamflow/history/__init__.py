"""Reading workflows after the fact: audit, replay, traces, export and listings."""
