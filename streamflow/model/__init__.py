"""The pure model: events, definitions, ``fold`` and ``decide``, the retry policy, the
codec. No Redis, no I/O, no clock: everything above is a shell around it."""
