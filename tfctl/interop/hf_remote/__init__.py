"""The files `tfctl export --hf` copies next to the weights (torch + transformers only; loaded by
`AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)`)."""
