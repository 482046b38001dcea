"""Meeting other tools: the Hugging Face export (`hf_export.py` + the remote-code files in `hf_remote/`) and
the import of the official TokenFormer checkpoints (`official.py`)."""
