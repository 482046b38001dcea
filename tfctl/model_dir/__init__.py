"""A model directory (`model.safetensors` + `config.json` + `tokenizer.json`): what stages export, growth reads
and writes, eval/generate/export load. `config.py` (file names, `is_model_dir`, the config; no torch),
`weights.py` (load and write, atomically), `safetensors_io.py` (streaming reads and writes of the same files), `optimizer_file.py` (the AdamW
moments a stage exports beside its weights and growth carries).
"""
