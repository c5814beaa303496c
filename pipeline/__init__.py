"""The identity pipeline: base models, face crops, per-person LoRA training, styled generation, scoring.

models (load a base) · tiny (random demo models) · faces (crops + captions) · train_lora · adapter
(bytes in/out) · styles · generate · safety · score · engine (the whole compute flow, no storage).
"""
