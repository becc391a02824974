"""Analytics over the daily rollups: pure rollup deltas, queries, and ``optin report``."""
