"""The contract between the orchestrator and the ranks of a stage: what both sides read and write.

`spec.py` (the StageSpec the orchestrator writes, every rank reads) with `schedule.py` (its learning rates),
`exit_codes.py` (how a rank ends), `manifest.py` + `completion.py` (when a stage's export counts as done),
`preemption.py` (the stop file and the signals, both sides), `watchdog.py` (ranks stop when the orchestrator
dies), `throughput.py` (the peak FLOP/s that MFU divides by), `extensions.py` (where DeepSpeed's ops are
built, and their build locks). The files a stage exports are the model-directory format (tfctl/model_dir/,
the optimizer moments included). The rank's training loop (tfctl/worker/) imports this package, never the
other way round.
"""
