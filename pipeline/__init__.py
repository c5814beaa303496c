"""The ML alone: base models, training crops, per-person LoRA training, styled generation, scoring.

models (load a base) · tiny (random demo models) · embeddings (the trigger token) · faces (training crops) ·
captions · train_lora · adapter (bytes in/out) · styles · backdrop · generate · safety · score · engine (the
whole compute flow, no storage) · instant and face_adapter_layout (Instant mode's face adapter) · speed/ (the
speed paths behind settings: fused LoRA for generation, channels-last, regional compile, Instant kept warm).
Takes `privacy.intake.ScreenedPhoto`s in and gives images back; never opens the vault, never imports gradio.
"""
