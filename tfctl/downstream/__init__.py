"""Downstream evaluation through lm-evaluation-harness (the `eval` extra): `TfctlLM`, tasks, the compare table.

Importing this package imports lm_eval and torch; the CLI does so only inside `tfctl eval --tasks` and
`tfctl compare --tasks`.
"""
