"""Business rules, one module per domain. Functions take the session first, flush, never commit."""
