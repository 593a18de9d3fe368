"""The sampler service (k responses per probe prompt at temperature T) — planned in issue 5, not built yet."""
