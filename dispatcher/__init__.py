"""plp-dispatch: the policy of the service (who gets what, when, over which channel)."""
